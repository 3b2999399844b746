"""The DR models that ship inside the package (``make models``): load by name, small, and the default of infer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
