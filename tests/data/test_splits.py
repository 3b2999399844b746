"""Splits without hand edits: set_splits, person-level folds, ClipDataset(fold=i)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facedyn.data.splits import make_folds, set_splits
from facedyn.data.store import ClipDataset, ClipWriter, write_index
from facedyn.data.windows import FrameDataset
from facedyn.errors import ConfigError, DatasetError


def make_store(root: Path, n_subjects: int = 7, clips_per_subject: int = 2, n: int = 6) -> Path:
    """``n_subjects`` subjects ``p0..``, each with ``clips_per_subject`` tiny clips; all in train."""
    info = {}
    for s in range(n_subjects):
        for c in range(clips_per_subject):
            cid = f"p{s}_c{c}"
            w = ClipWriter(root, cid, 16)
            for i in range(n):
                w.add(np.full((16, 16, 3), i, np.uint8), np.zeros((68, 2)), True, i / 25)
            w.commit(None, {"fps": 25.0, "subject": f"p{s}", "source": "test"})
            info[cid] = {"subject": f"p{s}", "n_frames": n, "n_valid": n, "fps": 25.0}
    write_index(root, info, "test")
    return root


def test_set_splits_round_trip(tmp_path: Path) -> None:
    make_store(tmp_path)
    got = set_splits(tmp_path, val=["p1", "p2"], test=["p3", " ", "p3"])
    assert got == {"train": ["p0", "p4", "p5", "p6"], "val": ["p1", "p2"], "test": ["p3"]}
    ds = ClipDataset(tmp_path)
    assert ds.splits == got and ds.split_of("p2") == "val"
    assert {c.clip_id for c in ds.clips(split="test")} == {"p3_c0", "p3_c1"}  # through the subject
    assert {int(ci) for ci in FrameDataset(ds, split="val").index[:, 0]} == {0, 1, 2, 3}
    assert not any((tmp_path / n).name.startswith(".index") for n in tmp_path.iterdir())  # no temp left
    assert set_splits(tmp_path)["train"] == ds.subjects  # no names: everyone trains


def test_set_splits_errors_write_nothing(tmp_path: Path) -> None:
    make_store(tmp_path, n_subjects=3)
    set_splits(tmp_path, test=["p0"])
    before = (tmp_path / "index.json").read_bytes()
    with pytest.raises(DatasetError, match=r"no subject 'bob'; known subjects: p0, p1, p2") as e:
        set_splits(tmp_path, val=["bob"])
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="both val and test"):
        set_splits(tmp_path, val=["p1"], test=["p1"])
    assert (tmp_path / "index.json").read_bytes() == before
    with pytest.raises(DatasetError, match="facedyn prepare"):
        set_splits(tmp_path / "nothing", val=["p0"])


def test_folds_partition_subjects(tmp_path: Path) -> None:
    make_store(tmp_path, n_subjects=7)
    folds = make_folds(tmp_path, 3, seed=1)
    flat = [s for f in folds for s in f]
    assert sorted(flat) == ClipDataset(tmp_path).subjects and len(flat) == len(set(flat))  # a partition
    assert max(map(len, folds)) - min(map(len, folds)) <= 1 and len(folds) == 3
    assert make_folds(tmp_path, 3, seed=1) == folds  # deterministic by seed
    assert any(make_folds(tmp_path, 3, seed=s) != folds for s in range(2, 6))
    make_folds(tmp_path, 3, seed=1)
    assert ClipDataset(tmp_path).folds == folds
    assert json.loads((tmp_path / "index.json").read_text())["folds"] == folds
    assert len(make_folds(tmp_path, 7)) == 7  # leave one person out


@pytest.mark.parametrize("k", [0, 1, 8])
def test_folds_k_out_of_range(tmp_path: Path, k: int) -> None:
    make_store(tmp_path, n_subjects=7, clips_per_subject=1)
    with pytest.raises(ConfigError, match=r"between 2 and the number of subjects \(7\)"):
        make_folds(tmp_path, k)


def test_fold_gives_disjoint_splits_covering_subjects(tmp_path: Path) -> None:
    make_store(tmp_path, n_subjects=7)
    set_splits(tmp_path, val=["p0"], test=["p1"])
    folds = make_folds(tmp_path, 4, seed=0)
    seen_test = []
    for i in range(4):
        ds = ClipDataset(tmp_path, fold=i)
        sp = ds.splits
        assert sp["test"] == folds[i] and sp["val"] == folds[(i + 1) % 4]
        parts = [set(sp[k]) for k in ("train", "val", "test")]
        assert sum(map(len, parts)) == 7 and set.union(*parts) == set(ds.subjects)  # disjoint, covering
        assert {c.subject for c in ds.clips(split="train")} == parts[0]
        seen_test += sp["test"]
    assert sorted(seen_test) == ClipDataset(tmp_path).subjects  # every person tested once
    assert ClipDataset(tmp_path).splits["test"] == ["p1"]  # the stored splits are untouched


def test_two_folds_have_no_val(tmp_path: Path) -> None:
    make_store(tmp_path, n_subjects=4, clips_per_subject=1)
    folds = make_folds(tmp_path, 2)
    sp = ClipDataset(tmp_path, fold=1).splits
    assert sp == {"train": folds[0], "val": [], "test": folds[1]}


def test_fold_errors_name_the_command(tmp_path: Path) -> None:
    make_store(tmp_path, n_subjects=4, clips_per_subject=1)
    with pytest.raises(DatasetError, match=r"no cross-validation folds.*facedyn split .* --folds K"):
        ClipDataset(tmp_path, fold=0)
    make_folds(tmp_path, 2)
    with pytest.raises(ConfigError, match=r"fold 2 out of range.*2 folds.*facedyn split"):
        ClipDataset(tmp_path, fold=2)
    with pytest.raises(ConfigError):
        ClipDataset(tmp_path, fold=-1)
    assert ClipDataset(tmp_path, fold=np.int64(1)).fold == 1


def test_folds_must_cover_new_subjects(tmp_path: Path) -> None:
    make_store(tmp_path, n_subjects=4, clips_per_subject=1)
    make_folds(tmp_path, 2)
    raw = json.loads((tmp_path / "index.json").read_text())
    next(f for f in raw["folds"] if "p0" in f).remove("p0")
    (tmp_path / "index.json").write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match=r"no fold holds p0 .*--folds 2"):
        ClipDataset(tmp_path, fold=0)
