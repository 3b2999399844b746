"""ONNX export of every registered method's network: onnxruntime matches torch within 1e-4."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import facedyn
import toy_method  # noqa: F401  (registers the toy method: plugins export too)
from facedyn import methods, runs
from facedyn.cli import main
from facedyn.config import fields_of, from_dict, to_dict
from facedyn.errors import CheckpointError
from facedyn.export import OnnxModel, export_onnx
from facedyn.method import DataSpec
from facedyn.train import train

SMALL = {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4}
DR_SMALL = {"T": 2, "S": 1, "width": 4, "depth": 2}


def _untrained_run(name: str, out: Path) -> Path:
    """A run directory holding method ``name``'s network at initialisation (no training needed to export)."""
    cls = methods.get(name)
    fields = {f.name for f in fields_of(cls.Config)}
    cfg = from_dict(cls.Config, {k: v for k, v in {"width": 4, "depth": 2}.items() if k in fields})
    torch.manual_seed(0)
    m = cls(cfg, DataSpec(size=32))
    runs.write_record(out, runs.RunRecord(method=name, module=cls.__module__, config=to_dict(cfg),
                                          data=DataSpec(size=32).to_dict()))
    runs.ensure_run_dir(out)
    for w in ("init", "best"):
        runs.save_weights(out / runs.CHECKPOINTS / f"{w}.safetensors", {"net": m.net})
    return out


@pytest.mark.parametrize("method", sorted(methods.available()))
def test_onnxruntime_matches_torch_for_every_registered_method(method: str, tmp_path: Path) -> None:
    run = _untrained_run(method, tmp_path / method)
    path = export_onnx(run, tmp_path / f"{method}.onnx")
    model = facedyn.load(run, device="cpu")
    ort = OnnxModel(path)
    assert ort.size == model.size == 32 and ort.label == model.label
    x = torch.rand(3, model.data.channels, 32, 32)  # a batch size other than the one traced
    np.testing.assert_allclose(ort.encode(x).numpy(), model.encode(x).numpy(), atol=1e-4, rtol=1e-4)
    for k, v in model.outputs(x).items():
        np.testing.assert_allclose(ort.outputs(x)[k].numpy(), v.numpy(), atol=1e-4, rtol=1e-4)


def test_trained_run_exports_its_best_weights(synth_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "dr"
    train("dr", synth_store, run, {**SMALL, **DR_SMALL, "epochs": 2})
    x = torch.rand(2, 3, 32, 32)
    for w in ("best", "last"):
        ort = OnnxModel(export_onnx(run, tmp_path / f"{w}.onnx", weights=w))
        np.testing.assert_allclose(ort.encode(x).numpy(), facedyn.load(run, weights=w, device="cpu").encode(x).numpy(),
                                   atol=1e-4, rtol=1e-4)


def test_analyze_with_the_onnx_engine_matches_torch(synth_store: Path, synth_videos: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "dr"
    train("dr", synth_store, run, {**SMALL, **DR_SMALL})
    video = next(synth_videos.rglob("*.mp4"))
    a = facedyn.analyze(video, runs=[run], device="cpu", every=10)
    b = facedyn.analyze(video, runs=[run], device="cpu", every=10, engine="onnx")
    assert (run / "onnx" / "best.onnx").is_file() and len(a) == len(b) == 6
    assert max(float(np.abs(x - y).max()) for x, y in zip(a["dr"], b["dr"], strict=True)) < 1e-4
    monkeypatch.setattr(sys, "argv", ["facedyn", "export", "onnx", str(run), "--out", str(tmp_path / "m.onnx")])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code in (0, None) and (tmp_path / "m.onnx").is_file()


def test_a_shared_onnx_model_is_made_once_per_file_version_and_thread_count(tmp_path: Path) -> None:
    import os

    from facedyn.export import shared_onnx

    path = export_onnx(_untrained_run("dr", tmp_path / "dr"), tmp_path / "m.onnx")
    a = shared_onnx(path, threads=1)
    assert shared_onnx(path, threads=1) is a and shared_onnx(tmp_path / "." / "m.onnx", threads=1) is a
    assert shared_onnx(path, threads=2) is not a
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the file changed: a new session
    assert shared_onnx(path, threads=1) is not a
    with pytest.raises(CheckpointError, match="no such ONNX"):
        shared_onnx(tmp_path / "nope.onnx")


def test_bad_onnx_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such ONNX"):
        OnnxModel(tmp_path / "nope.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(CheckpointError, match="not a loadable"):
        OnnxModel(tmp_path / "bad.onnx")
