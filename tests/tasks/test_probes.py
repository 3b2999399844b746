"""Linear probes: frozen features vs the network at init and raw pixels, on people the run never saw."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facedyn.cli import main
from facedyn.data.store import ClipDataset
from facedyn.errors import ConfigError, DatasetError
from facedyn.tasks.probes import (
    fit_ridge,
    landmark_nme,
    person_folds,
    probe_targets,
    run_probes,
    select_frames,
)
from facedyn.train import train

TINY = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "width": 4, "emb_dim": 8}


@pytest.fixture(scope="module")
def tcae_run(synth_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("probe") / "tcae"
    train("tcae", synth_store, run, TINY)
    return run


def test_person_folds() -> None:
    people = ["a", "b", "c", "d", "e", "f"]
    folds, how = person_folds(people, None, 3, seen=set())
    assert sorted(p for f in folds for p in f) == people and len(folds) == 3 and "GroupKFold(3)" in how
    folds, _ = person_folds(people, [["a", "b"], ["c", "d"], ["e", "f"]], None, seen={"a", "c", "d"})
    assert folds == [["e", "f"]]  # only folds without people the run saw
    folds, how = person_folds(people, [["a", "b"], ["c", "d"], ["e", "f"]], None, seen={"a", "c", "e"})
    assert folds == [["b", "d", "f"]] and "unseen" in how  # no clean fold: the unseen people form one
    with pytest.raises(DatasetError, match="never saw"):
        person_folds(people, None, 3, seen=set(people))
    with pytest.raises(ConfigError, match="--folds 4"):
        person_folds(people, [["a", "b"], ["c", "d"], ["e", "f"]], 4, seen=set())


def test_ridge_recovers_a_linear_map_and_nme_by_hand() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    Y = X @ rng.normal(size=(5, 2)) + 0.01 * rng.normal(size=(300, 2))
    m = fit_ridge(X[:200], Y[:200], np.repeat(np.arange(4), 50))
    assert np.abs(m.predict(X[200:]) - Y[200:]).mean() < 0.1
    t = np.zeros((1, 68, 2))
    t[0, 36], t[0, 45] = (0, 0), (10, 0)  # inter-ocular distance 10
    p = t.copy()
    p[0, :, 1] += 1.0  # every point 1 px off
    np.testing.assert_allclose(landmark_nme(t, p), [10.0])


def test_targets_synthetic_labels_and_proxy_fallback(synth_store: Path, tmp_path: Path) -> None:
    store = ClipDataset(synth_store)
    frames = select_frames(store, 20)
    assert len(frames) == 60 and frames.groupby("subject").size().tolist() == [20, 20, 20]
    au = probe_targets(store, frames, "au")
    assert au.binary_columns[0] == "AU01" and "generator" in au.source and au.binary is not None
    assert set(np.unique(au.binary)) <= {0.0, 1.0}
    pose = probe_targets(store, frames, "pose")
    assert pose.continuous.shape == (60, 3) and np.isfinite(pose.continuous).all()
    lms = probe_targets(store, frames, "landmarks")
    assert lms.continuous.shape == (60, 136)
    # without labels: landmark AU proxies, head pose from the source video's landmarks
    copy = tmp_path / "nolabels"
    shutil.copytree(synth_store, copy)
    for p in copy.glob("*/labels.csv"):
        p.unlink()
    bare = ClipDataset(copy)
    au2 = probe_targets(bare, frames, "au")
    assert "proxies" in au2.source and "AU25_p" in au2.binary_columns
    pose2 = probe_targets(bare, frames, "pose")
    assert "landmarks" in pose2.source and np.isfinite(pose2.continuous).all()
    err = np.abs(pose2.continuous - pose.continuous).mean(0)  # estimated vs the generator's truth
    assert err[0] < 3 and err[2] < 1, err


@pytest.mark.parametrize("task", ["au", "pose", "landmarks"])
def test_run_probes_tables(tcae_run: Path, synth_store: Path, task: str) -> None:
    df = run_probes(tcae_run, synth_store, task, features=["au", "pose"], max_frames_per_subject=30, device="cpu")
    assert list(df["representation"]) == ["trained", "trained", "init", "init", "pixels"]
    assert list(df["features"])[:2] == ["au", "pose"] and df["dim"].tolist() == [8, 8, 8, 8, 8]
    test_people = ClipDataset(synth_store).splits["test"]
    assert df.attrs["folds"] == [test_people]  # the one person the run neither trained nor validated on
    if task == "au":
        assert {"AU12 F1", "AU12 AUC", "AU12 PCC", "mean F1", "mean AUC", "mean PCC"} <= set(df.columns)
    elif task == "pose":
        assert {"yaw MAE", "pitch MAE", "roll MAE", "mean PCC"} <= set(df.columns)
        assert np.isfinite(df["yaw MAE"]).all()
    else:
        assert np.isfinite(df["NME %"]).all() and (df["NME %"] > 0).all()


def test_cli_eval_probe_writes_report(tcae_run: Path, synth_store: Path, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "rep"
    monkeypatch.setattr(sys, "argv", ["facedyn", "eval", "probe", "--run", str(tcae_run), "--data", str(synth_store),
                                      "--task", "pose", "--max-frames", "20", "--separation-people", "1",
                                      "--device", "cpu", "--out", str(out)])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code in (0, None)
    md = (out / "probes_pose.md").read_text()
    assert "| representation | features | dim |" in md and "Separation check" in md
    assert "figures/tcae_pairs.png" in md and (out / "figures" / "tcae_pairs.png").is_file()
    table = pd.read_csv(out / "probes_pose.csv")
    assert list(table["representation"]) == ["trained", "init", "pixels"]
    sep = pd.read_csv(out / "separation.csv")
    assert list(sep["weights"]) == ["best", "init"] and {"pose_ratio", "au_ratio"} <= set(sep.columns)


def test_bad_inputs_are_one_line_errors(tcae_run: Path, synth_store: Path) -> None:
    with pytest.raises(ConfigError, match="--task"):
        run_probes(tcae_run, synth_store, "emotion")
    with pytest.raises(ConfigError, match="--features 'nope'"):
        run_probes(tcae_run, synth_store, "pose", features=["nope"], max_frames_per_subject=5, device="cpu")
