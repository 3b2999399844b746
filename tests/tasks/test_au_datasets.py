"""A BP4D-layout dataset (FERA 2015 partitions, AU_INT files) through represent → train au → eval au."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedyn.data.prepare import PrepareOptions, prepare
from facedyn.data.store import ClipDataset
from facedyn.dr.representations import represent
from facedyn.tasks.evaluation import evaluate_task
from facedyn.train import train
from facedyn.train.loop import Runtime
from support.task_fixtures import synthetic_video, train_tiny_dr

BP4D_AUS = ("AU06", "AU10", "AU12", "AU14", "AU17")


@pytest.mark.slow
def test_bp4d_layout_through_represent_train_eval(tmp_path: Path) -> None:
    root = tmp_path / "BP4D"
    for seed, clip in enumerate(("F001_T1", "F003_T1", "F002_T1")):  # FERA 2015: F001, F003 train; F002 devel
        labels = synthetic_video(root / "videos" / f"{clip}.mp4", seed=seed)
        for au in BP4D_AUS:
            rows = "\n".join(f"{i + 1},{round(v)}" for i, v in enumerate(labels[au]))  # 1-based frames
            (root / "AUCoding" / "AU_INT" / au).mkdir(parents=True, exist_ok=True)
            (root / "AUCoding" / "AU_INT" / au / f"{clip}_{au}.csv").write_text(rows + "\n")
    data = tmp_path / "data"
    res = prepare([root], data, PrepareOptions(size=32), kind="bp4d")
    assert not any(r.error for r in res)
    store = ClipDataset(data)
    assert store.splits["train"] == ["F001", "F003"] and store.splits["val"] == ["F002"]

    dr = train_tiny_dr(data, tmp_path / "dr5", T=5)
    represent(data, [dr], device="cpu")
    small = {"epochs": 1, "steps_per_epoch": 3, "batch_size": 8, "width": 8, "depth": 2, "input_norm_samples": 16}
    for inp in ("si", "mdr"):
        r = train("au", data, tmp_path / f"au_{inp}", {**small, "input": inp}, Runtime(device="cpu", threads=1))
        assert r.config.label_columns == ",".join(BP4D_AUS)
    out = evaluate_task("au", data, [tmp_path / "au_si", tmp_path / "au_mdr"], tmp_path / "eval", split="val",
                        n_boot=10, device="cpu")
    tab = out["table"]
    assert list(tab["input"]) == ["si", "mdr"] and (tab["subjects"] == 1).all()
    assert np.isfinite(tab["mse_avg"]).all()
    assert (tmp_path / "eval" / "au.csv").is_file()
