"""Clip store round trip, atomic writes, splits by subject, old indexes; window sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from facedyn.data.store import ClipDataset, ClipWriter, assign_splits, clean_partial, write_index
from facedyn.data.windows import FrameDataset, WindowDataset, frames_for, scaled_stride, window_centres
from facedyn.errors import ConfigError, DatasetError


def make_store(root: Path, n_subjects: int = 3, n: int = 40, size: int = 16, fps: float = 25.0,
               invalid: tuple[int, ...] = ()) -> Path:
    """A tiny clip store whose pixel (0, 0, 0) encodes the frame index."""
    info = {}
    names = ["train", "val", "test"]
    splits: dict[str, list[str]] = {k: [] for k in names}
    for s in range(n_subjects):
        cid = f"S{s}"
        w = ClipWriter(root, cid, size)
        for i in range(n):
            img = np.full((size, size, 3), 1, np.uint8)
            img[0, 0, 0] = i
            w.add(img, np.zeros((68, 2)), i not in invalid, i / fps)
        labels = pd.DataFrame({"frame": np.arange(n), "AU12": np.linspace(0, 5, n)})
        w.commit(labels, {"fps": fps, "subject": f"P{s}", "source": "test", "mask": True})
        info[cid] = {"subject": f"P{s}", "n_frames": n, "n_valid": n - len(invalid), "fps": fps}
        splits[names[s % 3]].append(f"P{s}")
    write_index(root, info, "test", splits=splits)
    return root


def test_store_round_trip(tmp_path: Path) -> None:
    make_store(tmp_path, invalid=(3,))
    ds = ClipDataset(tmp_path)
    assert ds.subjects == ["P0", "P1", "P2"]
    assert ds.splits["val"] == ["P1"]
    clip = ds.clip("S0")
    assert clip.frames.shape == (40, 16, 16, 3) and isinstance(clip.frames, np.memmap)
    assert clip.frames[7, 0, 0, 0] == 7
    assert not clip.valid[3] and clip.valid.sum() == 39
    assert np.isnan(clip.landmarks[3]).all()
    assert clip.frames[3].max() == 0  # invalid frames are blank
    assert list(clip.labels.columns) == ["frame", "AU12"]
    assert clip.meta["n_valid"] == 39 and clip.fps == 25.0
    assert [c.clip_id for c in ds.clips(split="test")] == ["S2"]
    assert ds.split_of("P2") == "test" and ds.folds == []
    raw = json.loads((tmp_path / "index.json").read_text())
    assert raw["format"] == 2 and raw["splits"]["test"] == ["P2"]
    assert all("split" not in c for c in raw["clips"].values())  # one source of truth: index["splits"]
    assert ds.spec() == {"size": 16, "mask": True, "align": "similarity", "template": None, "detector": None}
    with pytest.raises(ConfigError, match="unknown split"):
        ds.clips(split="training")
    with pytest.raises(DatasetError, match="known: P0, P1, P2"):
        ds.split_of("P9")


def test_old_index_still_reads(tmp_path: Path) -> None:
    """An index written before format 2 (a split per clip, no contract) reads; the contract comes from meta.json."""
    make_store(tmp_path)
    legacy = {"facedyn_version": "0.1.0", "subjects": ["P0", "P1", "P2"],
              "clips": {f"S{i}": {"subject": f"P{i}", "split": sp, "n_frames": 40, "n_valid": 40, "fps": 25.0}
                        for i, sp in enumerate(("train", "val", "test"))}}
    for i in range(3):  # old meta.json files also carried the split
        m = tmp_path / f"S{i}" / "meta.json"
        m.write_text(json.dumps({**json.loads(m.read_text()), "split": "train", "detector": "dlib-hog+x"}))
    (tmp_path / "index.json").write_text(json.dumps(legacy))
    ds = ClipDataset(tmp_path)
    assert ds.splits == {"train": ["P0"], "val": ["P1"], "test": ["P2"]}
    assert [c.clip_id for c in ds.clips(split="val")] == ["S1"]
    assert (ds.size, ds.mask, ds.align, ds.detector) == (16, True, "similarity", "dlib-hog+x")
    assert len(WindowDataset(ds, T=1, S=1, split="test")) == 38


def test_old_layout_in_write_index(tmp_path: Path) -> None:
    """write_index still takes a per-clip ``split`` (older callers) and stores it once, in ``splits``."""
    w = ClipWriter(tmp_path, "c", 16)
    w.add(np.zeros((16, 16, 3), np.uint8), np.zeros((68, 2)), True, 0.0)
    w.commit(None, {"fps": 25.0, "subject": "a"})
    idx = write_index(tmp_path, {"c": {"subject": "a", "split": "val", "n_frames": 1, "n_valid": 1}}, "t")
    assert idx["splits"] == {"train": [], "val": ["a"], "test": []} and "split" not in idx["clips"]["c"]
    assert idx["size"] == 16


def test_subject_in_two_splits_is_refused(tmp_path: Path) -> None:
    make_store(tmp_path)
    raw = json.loads((tmp_path / "index.json").read_text())
    raw["splits"]["test"].append("P0")
    (tmp_path / "index.json").write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="both the train and test"):
        ClipDataset(tmp_path)


def test_writer_abort_leaves_nothing(tmp_path: Path) -> None:
    w = ClipWriter(tmp_path, "X", 8)
    w.add(np.zeros((8, 8, 3), np.uint8), np.zeros((68, 2)), True, 0.0)
    w.abort()
    assert list(tmp_path.iterdir()) == []
    w2 = ClipWriter(tmp_path, "Y", 8)  # simulated crash: never committed nor aborted
    assert (tmp_path / "Y").exists() is False
    assert clean_partial(tmp_path) == 1 and not w2.tmp.exists()


def test_missing_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="facedyn prepare"):
        ClipDataset(tmp_path / "nope")
    with pytest.raises(DatasetError, match=r"index\.json"):
        ClipDataset(tmp_path)


def test_assign_splits_by_subject() -> None:
    subs = [f"s{i}" for i in range(10)]
    sp = assign_splits(subs, {"s0": "test"}, seed=1)
    assert sp["s0"] == "test" and set(sp) == set(subs)
    assert {v for v in sp.values()} == {"train", "val", "test"}
    assert sp == assign_splits(subs, {"s0": "test"}, seed=1)
    assert set(assign_splits(["a", "b"], {}).values()) == {"train"}


def test_scaled_stride() -> None:
    assert scaled_stride(2, 25) == 2
    assert scaled_stride(2, 50) == 4  # SEMAINE at ~50 fps gets 2S
    assert scaled_stride(1, 10) == 1
    with pytest.raises(ConfigError):
        scaled_stride(0, 25)


def test_frames_for() -> None:
    assert frames_for(0.2, 25) == frames_for(0.2, 25, "up") == frames_for(0.2, 25, "down") == 5
    assert frames_for(0.2, 50) == 10
    assert (frames_for(0.05, 25, "up"), frames_for(0.05, 25, "down")) == (2, 1)


def test_window_centres_respect_validity() -> None:
    valid = np.ones(30, bool)
    valid[12] = False
    c = window_centres(valid, T=2, stride=2)
    for t in c:
        assert valid[t + np.arange(-2, 3) * 2].all()
    assert {8, 10, 12, 14, 16}.isdisjoint(c) and {4, 13, 21, 25}.issubset(c)
    brute = [t for t in range(30) if all(0 <= t + k * 2 < 30 and valid[t + k * 2] for k in range(-2, 3))]
    assert list(c) == brute


def test_window_dataset_items(tmp_path: Path) -> None:
    make_store(tmp_path)
    wd = WindowDataset(tmp_path, T=3, S=2, split="train", label_columns=["AU12"])
    assert len(wd) == 40 - 2 * 3 * 2
    item = wd[0]
    assert item["window"].shape == (7, 3, 16, 16) and item["window"].dtype == torch.float32
    idx = (item["window"][:, 0, 0, 0] * 255).round().long().tolist()
    t = item["t"]
    assert idx == [t - 6, t - 4, t - 2, t, t + 2, t + 4, t + 6]
    assert torch.equal(item["centre"], item["window"][3])
    assert float(item["labels"][0]) == pytest.approx(5 * t / 39, abs=1e-5)


def test_window_stride_scales_with_fps(tmp_path: Path) -> None:
    make_store(tmp_path, n_subjects=1, n=60, fps=50.0)
    wd = WindowDataset(tmp_path, T=2, S=2, split="train")
    item = wd[0]
    idx = (item["window"][:, 0, 0, 0] * 255).round().long()
    assert torch.all(idx.diff() == 4)


def test_frame_dataset_valid_frames_only(tmp_path: Path) -> None:
    make_store(tmp_path, n_subjects=1, invalid=(3, 4))
    fd = FrameDataset(tmp_path, split="train", label_columns=["AU12"])
    assert len(fd) == 38 and 3 not in fd.index[:, 1]
    it = fd[5]
    assert it["image"].shape == (3, 16, 16) and round(float(it["image"][0, 0, 0]) * 255) == it["t"]
    assert float(it["labels"][0]) == pytest.approx(5 * it["t"] / 39, abs=1e-5)


def test_empty_split_is_a_clear_error(tmp_path: Path) -> None:
    make_store(tmp_path, n_subjects=1)
    with pytest.raises(DatasetError, match="no clips"):
        WindowDataset(tmp_path, T=1, S=1, split="test")
    with pytest.raises(DatasetError, match="no window of 21 valid frames"):
        WindowDataset(tmp_path, T=10, S=2, split="train")
    make_store(tmp_path / "blank", n_subjects=1, n=5, invalid=tuple(range(5)))
    with pytest.raises(DatasetError, match="no frame with a face"):
        FrameDataset(tmp_path / "blank")
