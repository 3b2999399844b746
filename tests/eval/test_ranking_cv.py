"""Frame ranking per person, under alignment jitter, and person-level cross-validation (`facedyn cv rank`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from facedyn.cli import main
from facedyn.cv import pooled_difference
from facedyn.dr.augment import jitter_windows
from facedyn.eval.ranking import evaluate_ranking

SMALL = ["--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "4", "--width", "4", "--depth", "2"]


def test_per_subject_rows_pool_to_the_overall_row(synth_store: Path) -> None:
    df = evaluate_ranking(synth_store, 2, 1, methods=("centred", "identity"), split=None, per_subject=True)
    for m in ("centred", "identity"):
        rows = df[(df["method"] == m) & (df["subject"] != "all")]
        assert set(rows["subject"]) == {"S001", "S002", "S003"}
        pooled = (rows["acc"] / 100 * rows["pairs"]).sum() / rows["pairs"].sum() * 100
        assert float(df[(df["method"] == m) & (df["subject"] == "all")]["acc"].iloc[0]) == pytest.approx(pooled)


def test_jitter_is_a_similarity_per_window() -> None:
    w = torch.rand(3, 5, 3, 16, 16)
    assert torch.equal(jitter_windows(w, 0.0, 0.0, 0.0), jitter_windows(w, 0.0, 0.0, 0.0))
    torch.testing.assert_close(jitter_windows(w, 0.0, 0.0, 0.0), w, atol=1e-5, rtol=0)
    g = torch.Generator().manual_seed(0)
    out = jitter_windows(torch.ones(2, 3, 1, 16, 16), 0.05, 2.0, 3.0, generator=g)
    assert out.shape == (2, 3, 1, 16, 16) and torch.equal(out[:, 0], out[:, 1])  # same transform for all frames
    assert float(out.min()) < 1.0  # something moved in from outside the crop


def test_bootstrap_difference_over_people() -> None:
    rows = []
    for i in range(8):
        rows.append({"method": "dr", "subject": f"p{i}", "acc": 80.0 + i, "pairs": 100})
        rows.append({"method": "centred", "subject": f"p{i}", "acc": 75.0 + i, "pairs": 100})
    diff, lo, hi = pooled_difference(pd.DataFrame(rows), "dr", "centred", n_boot=500)
    assert diff == pytest.approx(5.0) and lo == pytest.approx(5.0) and hi == pytest.approx(5.0)
    rows[0]["acc"] = 60.0  # one person where DR loses: the interval widens below the estimate
    diff, lo, hi = pooled_difference(pd.DataFrame(rows), "dr", "centred", n_boot=500)
    assert lo < diff < hi


def test_cv_rank_command_trains_each_fold_and_resumes(synth_store: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    shutil.copytree(synth_store, data)
    args = ["facedyn", "cv", "rank", "--data", str(data), "--out", str(tmp_path / "cv"), "--folds", "3", "--T", "2",
            "--S", "1", "--n-boot", "200", *SMALL]
    monkeypatch.setattr(sys, "argv", args)
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code in (0, None), capsys.readouterr().err
    table = pd.read_csv(tmp_path / "cv" / "cv.csv")
    assert set(table["fold"].astype(str)) == {"0", "1", "2", "pooled"}
    assert {"dr", "centred", "identity", "random", "seq-di"} <= set(table["method"])
    per = pd.read_csv(tmp_path / "cv" / "per_subject.csv")
    assert sorted(per["subject"].unique()) == ["S001", "S002", "S003"]  # every person tested exactly once
    md = (tmp_path / "cv" / "cv.md").read_text()
    header = {c.strip() for c in md.splitlines()[0].strip("|").split("|")}
    assert "DR − centred" in md and "DR − true Seq DI" in md and {"fold", "dr", "centred", "seq-di"} <= header
    assert [ln.split("|")[1].strip() for ln in md.splitlines()[2:6]] == ["0", "1", "2", "pooled"]
    first = (tmp_path / "cv" / "fold0" / "ranking.csv").stat().st_mtime
    with pytest.raises(SystemExit):
        main()  # resumed: nothing retrained or re-evaluated
    assert (tmp_path / "cv" / "fold0" / "ranking.csv").stat().st_mtime == first
    assert np.isfinite(pd.read_csv(tmp_path / "cv" / "cv.csv")["acc"]).all()
    # eval rank --fold 0 evaluates the fold's run on the fold's unseen person, as cv rank did
    monkeypatch.setattr(sys, "argv", ["facedyn", "eval", "rank", "--data", str(data), "--run",
                                      str(tmp_path / "cv" / "fold0"), "--fold", "0", "--methods", "centred",
                                      "--out", str(tmp_path / "again"), "--device", "cpu"])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code in (0, None), capsys.readouterr().err
    again = pd.read_csv(tmp_path / "again" / "ranking.csv").set_index("method")["acc"]
    fold0 = pd.read_csv(tmp_path / "cv" / "fold0" / "ranking.csv")
    fold0 = fold0[fold0["subject"] == "all"].set_index("method")["acc"]
    for m in ("dr", "centred"):
        assert again[m] == pytest.approx(fold0[m], abs=1e-3)  # ranking.csv keeps 3 decimals


def test_rank_report_with_jitter_rows(synth_store: Path, tmp_path: Path) -> None:
    from facedyn.eval.ranking import rank_report

    res = rank_report(synth_store, tmp_path / "r", T=2, S=1, methods=("centred",), split="all", device="cpu",
                      jitter=(0.05, 2.0, 3.0))
    assert set(res["table"]["method"]) == {"centred", "centred +jitter"}
    assert "centred +jitter" in (tmp_path / "r" / "ranking.md").read_text()


def test_dr_trains_with_alignment_jitter(synth_store: Path, tmp_path: Path) -> None:
    from facedyn.train import train

    res = train("dr", synth_store, tmp_path / "j", {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "T": 2,
                                                    "S": 1, "width": 4, "depth": 2, "align_jitter": [0.05, 2, 3]})
    assert res.config.align_jitter == (0.05, 2.0, 3.0) and np.isfinite(res.history[-1]["train_loss"])
