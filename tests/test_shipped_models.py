"""The models that ship inside the package (``make models``): load by name, small, and the default of infer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import facedyn
from facedyn import api
from test_cli import run

SHIPPED = {"dr-t3": (3, 1), "dr-t5": (5, 2), "dr-t9": (9, 4)}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_loads_by_name(name: str) -> None:
    assert name in api.shipped_models()
    weights = api.SHIPPED_DIR / name / "checkpoints" / "best.safetensors"
    assert weights.stat().st_size <= 10 * 2**20  # each shipped model stays under 10 MB
    model = facedyn.load(name, device="cpu")
    assert SHIPPED[name] == (model.cfg.T, model.cfg.S)
    assert model.data.size == 64 and model.data.align == "similarity"
    x = torch.rand(2, 3, 64, 64)
    assert model.dr(x).shape == (2, 3, 64, 64) and model.encode(x).shape == (2, 3 * 64 * 64)


def _box_embedding(name: str) -> None:
    """Shipped model ``name`` is under 10 MB, loads by name, takes 64 px box crops and ``encode`` gives finite
    256-d embeddings that depend on the input."""
    assert name in api.shipped_models()
    assert (api.SHIPPED_DIR / name / "checkpoints" / "best.safetensors").stat().st_size <= 10 * 2**20
    model = facedyn.load(name, device="cpu")
    assert model.name == name and model.data.size == 64 and model.data.align == "box"
    emb = model.encode(torch.rand(3, 3, 64, 64))
    assert emb.shape == (3, 256) and torch.isfinite(emb).all()
    assert not torch.allclose(emb[0], emb[1])  # depends on the input


def test_shipped_fabnet_encodes_and_analyzes(real_data: Path) -> None:
    """``facedyn.load("fabnet").encode(images)``: 256-d embeddings of 64 px box crops; usable in analyze."""
    _box_embedding("fabnet")
    df = facedyn.analyze(real_data / "single_face.jpg", runs=["fabnet"])
    cols = [c for c in df.columns if c.startswith("fabnet_")]
    assert len(cols) == 256 and df[cols].notna().all().all()


def test_shipped_tcae_encodes_phi_and_analyzes_both_embeddings(real_data: Path) -> None:
    """``facedyn.load("tcae").encode(images)`` is the AU embedding phi; analyze writes phi as ``tcae_*`` and the
    pose embedding psi as ``tcae.pose_*``, apart from the head-pose columns ``pose_*_deg``."""
    _box_embedding("tcae")
    df = facedyn.analyze(real_data / "single_face.jpg", runs=["tcae"])
    phi_cols = [c for c in df.columns if c.startswith("tcae_")]
    psi_cols = [c for c in df.columns if c.startswith("tcae.pose_")]
    assert len(phi_cols) == 256 and len(psi_cols) == 256 and df[phi_cols + psi_cols].notna().all().all()
    assert {"pose_yaw_deg", "pose_pitch_deg", "pose_roll_deg"} <= set(df.columns)
    assert not [c for c in df.columns if c.startswith("pose_") and not c.endswith("_deg")]


def test_infer_a_photo_without_a_run_uses_the_shipped_dr_t5(real_data: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(["infer", str(real_data / "single_face.jpg"), "--out", str(tmp_path / "o")], capsys,
                       monkeypatch)
    assert code == 0, err
    files = {p.name for p in (tmp_path / "o").rglob("*") if p.is_file()}
    assert "faces.csv" in files
    dr = next((tmp_path / "o").rglob("*.npy"))
    arr = np.load(dr)
    assert arr.shape[-3:] == (3, 64, 64) and np.isfinite(arr).all() and arr.std() > 0


def _ok(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> str:
    code, out, err = run(args, capsys, monkeypatch)
    assert code == 0, err
    return out


def test_eval_rank_and_metrics_take_a_shipped_name(synth_store64: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _ok(["eval", "rank", "--data", str(synth_store64), "--run", "dr-t5", "--methods", "centred", "--max-windows",
         "8", "--out", str(tmp_path / "rank")], capsys, monkeypatch)
    table = pd.read_csv(tmp_path / "rank" / "ranking.csv")
    assert set(table["method"]) == {"dr", "centred"} and (table["T"] == 5).all()
    out = _ok(["eval", "rank", "--data", str(synth_store64), "--run", "dr-t5", "--T", "3", "--S", "1", "--methods",
               "centred", "--max-windows", "8", "--out", str(tmp_path / "rank3")], capsys, monkeypatch)
    assert set(pd.read_csv(tmp_path / "rank3" / "ranking.csv")["method"]) == {"centred"}
    assert "Not evaluated, trained at another window than T=3 S=1:" in out and "(T=5, S=2)" in out
    out = _ok(["eval", "metrics", "--data", str(synth_store64), "--run", "dr-t5", "--split", "all"], capsys,
              monkeypatch)
    assert "acc" in {line.split()[0] for line in out.strip().splitlines()}


def test_eval_probe_takes_a_shipped_name(synth_store64: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    _ok(["eval", "probe", "--run", "dr-t5", "--data", str(synth_store64), "--task", "pose", "--folds", "3",
         "--max-frames", "12", "--out", str(tmp_path / "p")], capsys, monkeypatch)
    assert (tmp_path / "p" / "probes_pose.csv").is_file()


def test_represent_and_config_take_a_shipped_name(synth_store64: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth_store64, data)
    out = _ok(["represent", "--data", str(data), "--run", "dr-t5"], capsys, monkeypatch)
    assert "T=5, S=2" in out and (data / "representations").is_dir()
    _ok(["train", "dr", "--data", str(data), "--out", str(tmp_path / "r"), "--config", "dr-t5", "--epochs", "1",
         "--steps-per-epoch", "1", "--batch-size", "2", "--max-val-batches", "1",
         "--precision", "fp32", "--channels-last", "off"], capsys, monkeypatch)  # config says auto: not measured here
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert (cfg["T"], cfg["S"], cfg["epochs"]) == (5, 2, 1)


def test_export_and_report_take_a_shipped_name(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    _ok(["export", "onnx", "dr-t5", "--out", str(tmp_path / "m.onnx")], capsys, monkeypatch)
    from facedyn.export import OnnxModel

    ort = OnnxModel(tmp_path / "m.onnx")
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    want = facedyn.load("dr-t5", device="cpu").encode(x).numpy()
    # the trained DR's outputs reach a few hundred: onnxruntime's float32 sums in another order differ by a few
    # ulps of the largest values (measured over 40 inputs: <= 1.1e-6 of max |output|, i.e. up to 3e-4 absolute
    # on elements near 0, which a per-element 1e-4 tolerance failed for some random inputs); with torch on another
    # thread count than onnxruntime the sums split differently again (2.4e-4 absolute seen in a random-order run),
    # so the bound is 1e-4 of max |output|: still far below what a wrong export gives (differences of order 1)
    np.testing.assert_allclose(ort.encode(x).numpy(), want, rtol=0, atol=1e-4 * float(np.abs(want).max()))
    _ok(["report", "dr-t5", "--out", str(tmp_path / "r.html")], capsys, monkeypatch)
    page = (tmp_path / "r.html").read_text()
    assert "dr-t5" in page and "theta" in page


def test_unknown_names_say_what_ships(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run(["export", "onnx", "dr-t7", "--out", str(tmp_path / "m.onnx")], capsys, monkeypatch)
    assert code == 2 and "shipped: dr-t3, dr-t5, dr-t9, fabnet" in err and "Traceback" not in err


def test_init_weights_are_rebuilt_from_the_seed_where_not_shipped(synth_store: Path, tmp_path: Path) -> None:
    from facedyn.train import train

    run = train("dr", synth_store, tmp_path / "dr", {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4, "T": 2,
                                                     "S": 1, "width": 4, "depth": 2, "seed": 3}).run
    x = torch.rand(2, 3, 32, 32)
    saved = facedyn.load(run, weights="init", device="cpu").encode(x)
    (run / "checkpoints" / "init.safetensors").unlink()  # as the shipped models, which keep only best
    assert torch.equal(facedyn.load(run, weights="init", device="cpu").encode(x), saved)
    assert facedyn.load("dr-t5", weights="init", device="cpu").encode(torch.rand(1, 3, 64, 64)).shape == (1, 12288)


def test_init_of_a_fine_tuned_run_is_the_model_it_started_from() -> None:
    """dr-t9 was fine-tuned from dr-t5 (``init_from``) and ships without init.safetensors: its "init" is dr-t5."""
    assert facedyn.load("dr-t9").cfg.init_from == "dr-t5"
    x = torch.rand(2, 3, 64, 64)
    init = facedyn.load("dr-t9", weights="init", device="cpu").dr(x)
    assert torch.equal(init, facedyn.load("dr-t5", device="cpu").dr(x))
    assert not torch.equal(init, facedyn.load("dr-t9", device="cpu").dr(x))
    # and the dr-t5 it started from is still the one shipped (its record pins the weights it named)
    from facedyn import runs

    rec = runs.read_record(runs.resolve_run("dr-t9"))
    assert rec.init_sha256 == runs.file_sha256(runs.checkpoint_path(runs.resolve_run("dr-t5")))


def test_init_of_a_fine_tuned_run_whose_start_was_retrained_is_refused(synth_store: Path, tmp_path: Path) -> None:
    """A run records the SHA-256 of the weights ``init_from`` named; retrained since, they are not its init."""
    from facedyn import runs
    from facedyn.errors import CheckpointError
    from facedyn.train import train
    from facedyn.train.loop import Runtime

    cfg = {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4, "T": 2, "S": 1, "width": 4, "depth": 2,
           "precision": "fp32"}
    src = train("dr", synth_store, tmp_path / "src", cfg).run
    tuned = train("dr", synth_store, tmp_path / "tuned", {**cfg, "init_from": str(src)}).run
    sha = runs.read_record(tuned).init_sha256
    assert sha == runs.file_sha256(runs.checkpoint_path(src))
    (tuned / "checkpoints" / "init.safetensors").unlink()  # shipped without it, as dr-t9
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(facedyn.load(tuned, weights="init", device="cpu").encode(x),
                       facedyn.load(src, device="cpu").encode(x))
    train("dr", synth_store, src, {**cfg, "seed": 5})  # the start retrained: other weights under the same name
    with pytest.raises(CheckpointError, match="changed since"):
        facedyn.load(tuned, weights="init", device="cpu")
    # resuming the fine-tuned run keeps the hash of the weights it really started from
    train("dr", synth_store, tuned, {**cfg, "init_from": str(src), "epochs": 2}, Runtime(resume=True))
    assert runs.read_record(tuned).init_sha256 == sha
