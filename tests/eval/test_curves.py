"""Learning curves of a DR run over its kept checkpoints, on held-out people, beside the baselines."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from facedyn.cli import main
from facedyn.errors import CheckpointError
from facedyn.eval.curves import ranking_curve
from facedyn.eval.ranking import evaluate_ranking
from facedyn.train import train
from facedyn.train.loop import Runtime


def _curve_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    """``facedyn eval curve ARGS`` exits with status 0."""
    monkeypatch.setattr(sys, "argv", ["facedyn", "eval", "curve", *args])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code in (0, None)


def test_ranking_curve_over_kept_steps(synth_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "dr"
    cfg = {"T": 2, "S": 1, "epochs": 2, "steps_per_epoch": 3, "batch_size": 4, "keep_steps": "2,4",
           "precision": "fp32", "lr": 5e-3}
    train("dr", synth_store, run, cfg, Runtime(device="cpu", channels_last="off"))
    curve = ranking_curve(run, synth_store, split="test", max_windows=30, device="cpu",
                          groups={"only": ["S001"], "nobody": ["X"]})
    # the last weights (step 6, not a kept step) are a point of the curve too
    assert list(curve["weights"]) == ["init", "step2", "step4", "last", "best"]
    assert list(curve["step"][:4]) == [0, 2, 4, 6]
    # the init row is the same number eval rank gives for the untrained network on the same windows
    ref = evaluate_ranking(synth_store, 2, 1, methods=("centred",), runs=[run], split="test", max_windows=30)
    assert curve["centred"].iloc[0] == pytest.approx(float(ref.loc[ref["method"] == "centred", "acc"].iloc[0]))
    assert curve["centred"].nunique() == 1 and curve["seq-di"].between(0, 100).all()
    assert curve["acc_only"].notna().all() and curve["acc_nobody"].isna().all()
    # the CLI writes the table and the figure
    _curve_cli(monkeypatch, "--run", str(run), "--data", str(synth_store), "--out", str(tmp_path / "c"),
               "--max-windows", "30", "--device", "cpu", "--group", "only=S001")
    assert (tmp_path / "c" / "curve.png").is_file()
    assert list(pd.read_csv(tmp_path / "c" / "curve.csv")["weights"]) == ["init", "step2", "step4", "last", "best"]
    capsys.readouterr()


def test_ranking_curve_needs_kept_steps(synth_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "dr"
    train("dr", synth_store, run, {"T": 2, "S": 1, "epochs": 1, "steps_per_epoch": 2, "precision": "fp32"},
          Runtime(device="cpu", channels_last="off"))
    with pytest.raises(CheckpointError, match="keep-steps"):
        ranking_curve(run, synth_store)


def test_probe_curve_of_a_fabnet_run(synth_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """TCAE / FAb-Net curves: the probes at init, every kept step and last, beside the init network and pixels."""
    import shutil

    from facedyn.eval.curves import probe_curve
    from facedyn.tasks.probes import run_probes

    store = tmp_path / "store"  # the probes cache their baselines in the store: not in the shared fixture
    shutil.copytree(synth_store, store)
    synth_store = store
    run = tmp_path / "fab"
    train("fabnet", synth_store, run, {"epochs": 2, "steps_per_epoch": 2, "batch_size": 4, "keep_steps": "2",
                                       "precision": "fp32", "n_sources": 1, "curriculum": False,
                                       "embedding_dim": 16, "width": 4}, Runtime(device="cpu", channels_last="off"))
    curve = probe_curve(run, synth_store, tasks=("pose",), max_frames_per_subject=6, device="cpu")
    trained = curve[(curve["representation"] == "trained") & (curve["metric"] == "mean MAE")]
    assert list(trained["weights"]) == ["step2", "last"] and list(trained["step"]) == [2, 4]
    assert set(curve["representation"]) == {"trained", "init", "pixels"}
    assert set(curve["metric"]) == {"mean MAE", "mean PCC"} and curve["value"].notna().all()
    # the last checkpoint's number is what eval probe gives for it on the same frames
    ref = run_probes(run, synth_store, "pose", weights="last", max_frames_per_subject=6, device="cpu")
    assert trained["value"].iloc[-1] == pytest.approx(float(ref["mean MAE"].iloc[0]))
    _curve_cli(monkeypatch, "--run", str(run), "--data", str(synth_store), "--out", str(tmp_path / "c"),
               "--task", "landmarks", "--max-frames", "6", "--device", "cpu")
    assert (tmp_path / "c" / "curve.png").is_file()
    assert set(pd.read_csv(tmp_path / "c" / "curve.csv")["metric"]) == {"NME %"}
    capsys.readouterr()


def test_ranking_curve_of_a_fold_run_scores_its_fold(synth_store: Path, tmp_path: Path) -> None:
    """A cv fold's run is scored on its fold's test people, not on the store's own test split."""
    import shutil

    from facedyn.data.splits import make_folds
    from facedyn.data.store import ClipDataset, read_index

    store = tmp_path / "store"
    shutil.copytree(synth_store, store)
    folds = make_folds(store, 3, seed=0)
    k = next(i for i, f in enumerate(folds) if f != sorted(ClipDataset(store).splits["test"]))
    run = tmp_path / "fold"
    train("dr", store, run, {"T": 2, "S": 1, "epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "keep_steps": "1",
                             "precision": "fp32", "fold": k}, Runtime(device="cpu", channels_last="off"))
    others = sorted(set(read_index(store)["subjects"]) - set(folds[k]))
    curve = ranking_curve(run, store, split="test", max_windows=30, device="cpu",
                          groups={"fold": folds[k], "others": others})
    # every window scored is a fold-k test person's: no other person's accuracy exists in the curve
    assert curve["acc_fold"].tolist() == curve["acc"].tolist() and curve["acc_others"].isna().all()
    assert curve["centred_fold"].tolist() == curve["centred"].tolist() and curve["centred_others"].isna().all()
    ref = evaluate_ranking(store, 2, 1, methods=("centred",), split="test", max_windows=30, fold=k)
    assert float(curve["centred"].iloc[0]) == pytest.approx(float(ref.loc[ref["method"] == "centred", "acc"].iloc[0]))
