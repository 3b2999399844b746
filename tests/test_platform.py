"""The method platform: a method added in one file trains, evaluates, loads, analyzes and gets a CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import facedyn
import toy_method
from facedyn import runs
from facedyn.cli import main
from facedyn.train import train


def test_toy_method_is_one_small_file() -> None:
    assert len(Path(toy_method.__file__).read_text().splitlines()) < 80


def test_toy_method_end_to_end(synth_store: Path, synth_videos: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "toy"
    res = train("toy", synth_store, run, {"epochs": 2, "steps_per_epoch": 3, "batch_size": 8})
    assert [r["epoch"] for r in res.history] == [0, 1, 2]
    assert np.isfinite(res.history[-1]["val_mse"])
    rec = runs.read_record(run)
    assert rec.method == "toy" and rec.module == "toy_method" and rec.data["size"] == 32
    assert rec.config["dim"] == 8 and rec.config["epochs"] == 2

    # evaluated on the test person with the method's own whole-set metric
    metrics = facedyn.evaluate(run, synth_store, split="test", device="cpu")
    assert set(metrics) == {"mse"} and metrics["mse"] >= 0

    # loaded: encode (N, D), outputs, the network's own forward; init differs from trained
    model = facedyn.load(run, device="cpu")
    faces = torch.rand(5, 3, 32, 32)
    assert model.encode(faces).shape == (5, 8)
    assert model.outputs(faces)["brightness"].shape == (5,)
    init = facedyn.load(run, weights="init", device="cpu")
    assert not torch.allclose(init.encode(faces), model.encode(faces))

    # analyze a video: one row per face and frame, OpenFace-style columns, then the toy's outputs
    video = next(synth_videos.rglob("*.mp4"))
    df = facedyn.analyze(video, runs=[run], device="cpu")
    assert len(df) == 60 and (df["success"] == 1).all() and (df["face_id"] == 0).all()
    assert list(df.columns[:4]) == ["frame", "timestamp", "face_id", "success"]
    assert {"x_0", "y_67", "brightness", "embedding_0", "embedding_7"} <= set(df.columns)
    assert np.isfinite(df["brightness"]).all()

    # the CLI has `facedyn train toy` with options from ToyConfig
    monkeypatch.setattr(sys, "argv", ["facedyn", "train", "toy", "--help"])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0
    assert "--dim" in capsys.readouterr().out


@pytest.mark.parametrize("method", ["dr", "unet_mse", "pix2pix", "vgg_features"])
def test_every_builtin_method_loads_with_encode(method: str, synth_store: Path, tmp_path: Path) -> None:
    settings = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "T": 2, "S": 1}
    if method != "vgg_features":
        settings.update({"width": 4, "depth": 2})
    else:
        settings["width"] = 4
    train(method, synth_store, tmp_path / method, settings)
    model = facedyn.load(tmp_path / method, device="cpu")
    faces = torch.rand(3, 3, 32, 32)
    z = model.encode(faces)
    assert z.ndim == 2 and z.shape[0] == 3 and torch.isfinite(z).all()
    z0 = facedyn.load(tmp_path / method, weights="init", device="cpu").encode(faces)
    z1 = facedyn.load(tmp_path / method, weights="last", device="cpu").encode(faces)
    assert z0.shape == z1.shape == z.shape and not torch.allclose(z0, z1)  # (best may be the untrained DR)


def test_unet_p_uses_a_vgg_features_run_and_stays_self_contained(synth_store: Path, tmp_path: Path) -> None:
    small = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "T": 2, "S": 1, "width": 4}
    train("vgg_features", synth_store, tmp_path / "feats", small)
    with pytest.raises(facedyn.errors.ConfigError, match="needs --features"):
        train("unet_p", synth_store, tmp_path / "p0", {**small, "depth": 2})
    train("unet_p", synth_store, tmp_path / "p", {**small, "depth": 2, "features": str(tmp_path / "feats")})
    rec = runs.read_record(tmp_path / "p")
    assert rec.extra["feature_net"].startswith("vgg_features:")
    best = runs.checkpoint_path(tmp_path / "p", "best")
    from safetensors.torch import load_file

    assert any(k.startswith("features.") for k in load_file(str(best)))
    assert facedyn.load(tmp_path / "p", device="cpu").encode(torch.rand(2, 3, 32, 32)).shape == (2, 3 * 32 * 32)


def test_resume_keeps_recorded_settings_and_extends(synth_store: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt
    import itertools

    from facedyn.train.loop import Runtime

    # the records' clock: one second later at every reading (the wall clock may repeat a second, or step back)
    ticks = itertools.count()
    start = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    monkeypatch.setattr(runs, "now_utc",
                        lambda: (start + dt.timedelta(seconds=next(ticks))).isoformat(timespec="seconds"))
    run = tmp_path / "dr"
    first = train("dr", synth_store, run, {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "T": 2, "S": 1,
                                            "width": 4, "depth": 2}, command="facedyn train dr --first")
    theta = first.config.theta
    created = runs.read_record(run).created
    res = train("dr", synth_store, run, {"epochs": 2}, Runtime(resume=True), command="python make.py --resume")
    assert [r["epoch"] for r in res.history] == [0, 1, 2]
    assert res.config.theta == theta and res.config.width == 4
    # provenance: the record keeps the command that started the run and lists the one that resumed it
    rec = runs.read_record(run)
    assert rec.command == "facedyn train dr --first" and rec.created == created
    assert created.startswith("2030-01-01T00:00:")
    assert [r["command"] for r in rec.resumed] == ["python make.py --resume"] and rec.resumed[0]["at"] > created
    with pytest.raises(facedyn.errors.CheckpointError, match="cannot resume"):
        train("toy", synth_store, run, {"epochs": 3}, Runtime(resume=True))


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(facedyn.errors.CheckpointError, match="no such run"):
        facedyn.load(tmp_path / "nope")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.json").write_text(json.dumps({"method": "nonexistent", "module": "no.such.mod",
                                                            "config": {}, "data": {"size": 32}}))
    with pytest.raises(facedyn.errors.CheckpointError, match="cannot be imported"):
        facedyn.load(tmp_path / "r")


def test_training_on_a_person_level_fold(synth_store: Path, tmp_path: Path) -> None:
    import shutil

    from facedyn.data.splits import make_folds

    data = tmp_path / "data"
    shutil.copytree(synth_store, data)
    folds = make_folds(data, 3, seed=0)
    res = train("toy", data, tmp_path / "f1", {"epochs": 1, "steps_per_epoch": 1, "fold": 1})
    rec = runs.read_record(res.run)
    assert rec.config["fold"] == 1 and rec.data["fold"] == 1
    assert rec.data["splits"]["test"] == folds[1] and rec.data["splits"]["val"] == folds[2]
    assert rec.data["splits"]["train"] == folds[0]
    with pytest.raises(facedyn.errors.FacedynError, match="fold"):
        train("toy", data, tmp_path / "f9", {"epochs": 1, "fold": 9})


def test_shipped_models_load_by_name_and_serve_as_the_default(synth_store: Path, synth_videos: Path,
                                                              tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from facedyn import api

    shipped = tmp_path / "models"
    monkeypatch.setattr(runs, "SHIPPED_DIR", shipped)
    with pytest.raises(facedyn.errors.ConfigError, match="no run given"):
        facedyn.analyze(next(synth_videos.rglob("*.mp4")))
    run = train("dr", synth_store, tmp_path / "dr", {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4, "T": 2,
                                                     "S": 1, "width": 4, "depth": 2}).run
    (shipped / "dr-t5" / "checkpoints").mkdir(parents=True)
    shutil.copy2(run / "config.json", shipped / "dr-t5" / "config.json")
    shutil.copy2(run / "checkpoints" / "best.safetensors", shipped / "dr-t5" / "checkpoints" / "best.safetensors")
    assert api.shipped_models() == ["dr-t5"]
    model = facedyn.load("dr-t5", device="cpu")
    assert model.size == 32
    df = facedyn.analyze(next(synth_videos.rglob("*.mp4")), every=20, device="cpu")  # no run: the shipped dr-t5
    assert len(df) == 3 and df["dr"].iloc[0].shape == (3, 32, 32)


def test_move_to_channels_last_keeps_values() -> None:
    from facedyn.method import move_to

    x = torch.rand(2, 3, 5, 4)
    out = move_to({"a": x, "b": [torch.ones(3)], "c": "s"}, torch.device("cpu"), channels_last=True)
    assert out["a"].is_contiguous(memory_format=torch.channels_last) and torch.equal(out["a"], x)
    assert out["b"][0].shape == (3,) and out["c"] == "s"
    assert move_to(x, torch.device("cpu")).is_contiguous()


@pytest.mark.parametrize(("argv", "expected"), [
    ([".venv/bin/facedyn", "train", "dr", "--out", "a b"], "facedyn train dr --out 'a b'"),
    (["/x/facedyn/__main__.py", "train", "fabnet"], "facedyn train fabnet"),
    (["scripts/make_models.py", "--only", "dr-t3"], "python scripts/make_models.py --only dr-t3"),
])
def test_command_line_names_the_cli_or_the_script(argv: list[str], expected: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", argv)
    assert runs.command_line() == expected
