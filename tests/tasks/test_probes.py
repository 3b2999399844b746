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
    default_person_norm,
    fit_ridge,
    landmark_nme,
    person_centred,
    person_folds,
    probe_markdown,
    probe_targets,
    run_probes,
    select_frames,
)
from facedyn.train import train

TINY = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "width": 4, "emb_dim": 8, "keep_steps": "1"}


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


def test_person_centred_removes_each_persons_median_and_any_offset() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(["p", "q", "r"], [5, 8, 6])
    X = rng.normal(size=(19, 4)).astype(np.float32)
    Z = person_centred(X, groups)
    assert Z.shape == X.shape and Z.dtype == X.dtype
    for g in "pqr":  # by hand: each person's own median, column by column
        np.testing.assert_allclose(Z[groups == g], X[groups == g] - np.median(X[groups == g], axis=0), atol=1e-6)
        np.testing.assert_allclose(np.median(Z[groups == g], axis=0), 0, atol=1e-6)
    offset = {"p": 3.0, "q": -7.0, "r": 0.5}  # who the person is (a constant per person) is taken out
    shifted = X + np.array([offset[g] for g in groups], np.float32)[:, None] * rng.normal(size=4).astype(np.float32)
    np.testing.assert_allclose(person_centred(shifted, groups), Z, atol=1e-5)
    assert default_person_norm("au") and not default_person_norm("pose") and not default_person_norm("landmarks")


def test_au_probes_are_person_normalised_by_default_and_cached_apart(tcae_run: Path, synth_store: Path,
                                                                      tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(synth_store, store, ignore=shutil.ignore_patterns(".cache"))
    auto = run_probes(tcae_run, store, "au", max_frames_per_subject=10, device="cpu")
    assert auto.attrs["person_norm"] is True
    assert "features relative to each person (minus the person's median feature, every representation): yes" \
        in probe_markdown(auto)
    off = run_probes(tcae_run, store, "au", max_frames_per_subject=10, device="cpu", person_norm=False)
    assert off.attrs["person_norm"] is False
    assert "result" not in off.attrs["cache"] and "init-features" in off.attrs["cache"]  # features shared, fits not
    assert not np.allclose(auto["mean PCC"].to_numpy(float), off["mean PCC"].to_numpy(float))
    assert run_probes(tcae_run, store, "pose", max_frames_per_subject=10, device="cpu").attrs["person_norm"] is False


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


def test_targets_of_given_au_columns_and_their_labelled_frames(synth_store: Path, tmp_path: Path) -> None:
    """A paper's protocol names its label columns (BP4D occurrence ``AU01_occ``, ...): exactly those are the
    targets, NaN where a clip lacks one, and only frames with one of them known are probed (a coded segment)."""
    copy = tmp_path / "occ"
    shutil.copytree(synth_store, copy, ignore=shutil.ignore_patterns(".cache"))
    store = ClipDataset(copy)
    first = store.clips()[0]
    df = pd.read_csv(first.path / "labels.csv")
    occ = np.full(len(df), np.nan)
    occ[5:15] = (np.arange(10) % 2).astype(float)  # a coded segment of 10 frames: 0, 1, 0, 1, ...
    df["AU01_occ"] = occ
    df.to_csv(first.path / "labels.csv", index=False)
    store = ClipDataset(copy)
    cols = ["AU01_occ", "AU99_occ"]  # AU99_occ: in no clip -> all NaN
    frames = select_frames(store, None, labelled=cols)
    assert set(frames["clip"]) == {first.clip_id} and set(frames["frame"]) <= set(range(5, 15))
    t = probe_targets(store, frames, "au", au_columns=cols)
    assert t.binary_columns == cols and t.binary is not None and np.isnan(t.binary[:, 1]).all()
    np.testing.assert_array_equal(t.binary[:, 0], (frames["frame"].to_numpy() - 5) % 2)
    assert "AU01_occ..AU99_occ" in t.source
    with pytest.raises(DatasetError, match="AU98_occ"):
        select_frames(store, None, labelled=["AU98_occ"])
    with pytest.raises(DatasetError, match="no clip has any of the AU labels AU98_occ"):
        probe_targets(store, frames, "au", au_columns=["AU98_occ"])


@pytest.mark.parametrize("task", ["au", "pose", "landmarks"])
def test_run_probes_tables(tcae_run: Path, synth_store: Path, task: str) -> None:
    df = run_probes(tcae_run, synth_store, task, features=["au", "pose"], max_frames_per_subject=30, device="cpu",
                    cache=False)
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
                                      "--no-cache", "--device", "cpu", "--out", str(out)])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code in (0, None)
    md = (out / "probes_pose.md").read_text()
    assert "| representation | weights | step | features | dim |" in md and "Separation check" in md
    assert "figures/tcae_pairs.png" in md and (out / "figures" / "tcae_pairs.png").is_file()
    table = pd.read_csv(out / "probes_pose.csv")
    assert list(table["representation"]) == ["trained", "init", "pixels"]
    assert list(table["weights"].fillna("")) == ["best", "init", ""] and table["step"].tolist()[:2] == [2, 0]
    sep = pd.read_csv(out / "separation.csv")
    assert list(sep["weights"]) == ["best", "init"] and {"pose_ratio", "au_ratio"} <= set(sep.columns)


def test_bad_inputs_are_one_line_errors(tcae_run: Path, synth_store: Path) -> None:
    with pytest.raises(ConfigError, match="--task"):
        run_probes(tcae_run, synth_store, "emotion")
    with pytest.raises(ConfigError, match="--features 'nope'"):
        run_probes(tcae_run, synth_store, "pose", features=["nope"], max_frames_per_subject=5, device="cpu")


def test_several_checkpoints_one_row_each_and_the_baselines_cache(tcae_run: Path, synth_store: Path,
                                                                   tmp_path: Path) -> None:
    store = tmp_path / "store"
    shutil.copytree(synth_store, store, ignore=shutil.ignore_patterns(".cache"))  # no other test's cache
    df = run_probes(tcae_run, store, "pose", weights="all", max_frames_per_subject=10, device="cpu")
    assert list(df["representation"]) == ["trained", "trained", "init", "pixels"]
    assert list(df["weights"]) == ["step1", "last", "init", ""] and df["step"].tolist()[:3] == [1, 2, 0]
    assert "reused nothing" in df.attrs["cache"] and df.attrs["weights"] == "step1,last"
    assert sorted(p.name.split("-")[0] for p in (store / ".cache" / "probes").iterdir()) == \
        ["init", "init", "pixels", "pixels"]  # features and result of each baseline
    # a second checkpoint of the same run: both baselines come from the cache, with the same numbers
    again = run_probes(tcae_run, store, "pose", weights="best", max_frames_per_subject=10, device="cpu")
    assert "init result" in again.attrs["cache"] and "pixels result" in again.attrs["cache"]
    cols = ["yaw MAE", "mean PCC"]
    pd.testing.assert_frame_equal(again[cols].iloc[1:].reset_index(drop=True), df[cols].iloc[2:].reset_index(drop=True))
    # another task reuses the features, not the results
    lm = run_probes(tcae_run, store, "landmarks", max_frames_per_subject=10, device="cpu")
    assert "init-features" in lm.attrs["cache"] and "pixels-pca" in lm.attrs["cache"]
    assert "result" not in lm.attrs["cache"]
    # other frames of the same store, or the same frames of a changed store: nothing reused
    other = run_probes(tcae_run, store, "pose", max_frames_per_subject=8, device="cpu")
    assert "reused nothing" in other.attrs["cache"]
    changed = tmp_path / "changed"
    shutil.copytree(store, changed)  # with its cache
    clip = sorted(p for p in changed.iterdir() if (p / "frames.npy").is_file())[0]
    frames = np.load(clip / "frames.npy")
    np.save(clip / "frames.npy", 255 - frames)
    moved = run_probes(tcae_run, changed, "pose", max_frames_per_subject=10, device="cpu")
    assert "reused nothing" in moved.attrs["cache"]
    with pytest.raises(ConfigError, match="--weights"):
        run_probes(tcae_run, store, "pose", weights="best,init")


def test_cli_learning_curve_table(tcae_run: Path, synth_store: Path, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "curve"
    monkeypatch.setattr(sys, "argv", ["facedyn", "eval", "probe", "--run", str(tcae_run), "--data", str(synth_store),
                                      "--task", "pose", "--max-frames", "8", "--separation-people", "0",
                                      "--weights", "step1,last", "--no-cache", "--device", "cpu", "--out", str(out)])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code in (0, None)
    table = pd.read_csv(out / "probes_pose.csv")
    assert list(zip(table["representation"], table["weights"].fillna(""), strict=True)) == [
        ("trained", "step1"), ("trained", "last"), ("init", "init"), ("pixels", "")]
    md = (out / "probes_pose.md").read_text()
    assert "| trained | step1 | 1 | encode |" in md and "trained last encode" in md


def test_a_run_without_init_weights_probes_its_rebuilt_init(tcae_run: Path, synth_store: Path,
                                                            tmp_path: Path) -> None:
    """Shipped models carry no init.safetensors: the init baseline is rebuilt from the seed, cached all the same."""
    run = tmp_path / "run"
    shutil.copytree(tcae_run, run)
    (run / "checkpoints" / "init.safetensors").unlink()
    store = tmp_path / "store"
    shutil.copytree(synth_store, store)
    ref = run_probes(tcae_run, synth_store, "pose", max_frames_per_subject=10, device="cpu", cache=False)
    first = run_probes(run, store, "pose", max_frames_per_subject=10, device="cpu")
    again = run_probes(run, store, "pose", max_frames_per_subject=10, device="cpu")
    assert "init result" in again.attrs["cache"]
    cols = ["yaw MAE", "mean PCC"]
    for df in (first, again):
        row = df[df["representation"] == "init"][cols].reset_index(drop=True)
        pd.testing.assert_frame_equal(row, ref[ref["representation"] == "init"][cols].reset_index(drop=True))
