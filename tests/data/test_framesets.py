"""Frame-set samplers: pair and multi-source gaps in seconds scale with each clip's fps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from facedyn.data.store import ClipDataset, ClipWriter, write_index
from facedyn.data.windows import PairDataset, SourcesDataset, gap_frames
from facedyn.errors import ConfigError, DatasetError


def make_store(root: Path, clips: dict[str, tuple[float, int]], invalid: tuple[int, ...] = ()) -> Path:
    """One clip (and subject) per entry ``name -> (fps, n_frames)``; pixel (0, 0, 0) encodes the frame index."""
    info = {}
    for cid, (fps, n) in clips.items():
        w = ClipWriter(root, cid, 16)
        for i in range(n):
            img = np.full((16, 16, 3), 1, np.uint8)
            img[0, 0, 0] = i
            w.add(img, np.zeros((68, 2)), i not in invalid, i / fps)
        w.commit(None, {"fps": fps, "subject": cid, "source": "test"})
        info[cid] = {"subject": cid, "n_frames": n, "n_valid": n - len(invalid), "fps": fps}
    write_index(root, info, "test")
    return root


def frame_no(img: torch.Tensor) -> torch.Tensor:
    """Frame index encoded in pixel (0, 0) of ``(..., 3, H, W)`` images."""
    return (img[..., 0, 0, 0] * 255).round().long()


@pytest.fixture
def two_rates(tmp_path: Path) -> ClipDataset:
    return ClipDataset(make_store(tmp_path, {"a25": (25.0, 60), "b50": (50.0, 120)}, invalid=(7, 8, 30)))


def test_pair_gaps_in_seconds(two_rates: ClipDataset) -> None:
    pairs = PairDataset(two_rates, min_gap_s=0.08, max_gap_s=0.2, seed=3)
    assert gap_frames(0.08, 0.2, 25) == (2, 5) and gap_frames(0.08, 0.2, 50) == (4, 10)  # twice the frames
    seen: dict[str, set[int]] = {"a25": set(), "b50": set()}
    for i in range(len(pairs)):
        it = pairs[i]
        clip = pairs.clips[it["clip"]]
        s, t = int(frame_no(it["source"])), int(frame_no(it["target"]))
        assert s == it["t"] and t - s == it["gap"]
        assert 0.08 - 1e-9 <= abs(it["gap"]) / clip.fps <= 0.2 + 1e-9
        assert clip.valid[s] and clip.valid[t]
        assert it["source"].shape == (3, 16, 16) and it["source"].dtype == torch.float32
        seen[clip.clip_id].add(it["gap"])
    assert seen["a25"] <= {g * sgn for g in range(2, 6) for sgn in (1, -1)}
    assert seen["b50"] <= {g * sgn for g in range(4, 11) for sgn in (1, -1)}
    assert max(seen["b50"]) > 5 and min(seen["b50"]) < 0  # the 50 fps clip uses its longer frame gaps, both ways


def test_pairs_deterministic_and_options(two_rates: ClipDataset) -> None:
    a = PairDataset(two_rates, 0.04, 0.4, seed=1, pairs_per_frame=2)
    b = PairDataset(two_rates.path, 0.04, 0.4, seed=1, pairs_per_frame=2)
    assert len(a) == 2 * len(PairDataset(two_rates, 0.04, 0.4, seed=1))
    pa = [a.pair(i) for i in range(len(a))]
    assert pa == [b.pair(i) for i in range(len(b))]
    assert pa != [PairDataset(two_rates, 0.04, 0.4, seed=2, pairs_per_frame=2).pair(i) for i in range(len(a))]
    a.set_epoch(1)
    assert [a.pair(i) for i in range(len(a))] != pa
    fwd = PairDataset(two_rates, 0.04, 0.4, both_directions=False)
    assert all(fwd[i]["gap"] > 0 for i in range(0, len(fwd), 7))


def test_pair_errors(two_rates: ClipDataset) -> None:
    with pytest.raises(ConfigError):
        PairDataset(two_rates, 0.5, 0.1)
    with pytest.raises(DatasetError, match="no whole-frame gap"):
        PairDataset(two_rates, 0.011, 0.015)  # shorter than a frame at 25 and at 50 fps
    with pytest.raises(DatasetError, match="no pair of valid frames"):
        PairDataset(two_rates, 10.0, 20.0)  # longer than the clips
    with pytest.raises(DatasetError, match="no clips in split 'test'"):
        PairDataset(two_rates, 0.04, 0.4, split="test")  # everyone is in train


def test_sources_dataset_shapes_and_gaps(two_rates: ClipDataset) -> None:
    K = 3
    ds = SourcesDataset(two_rates, n_sources=K, min_gap_s=0.04, max_gap_s=0.12, seed=0)
    for i in range(0, len(ds), 5):
        it = ds[i]
        clip = ds.clips[it["clip"]]
        assert it["target"].shape == (3, 16, 16) and it["sources"].shape == (K, 3, 16, 16)
        src = frame_no(it["sources"])
        assert int(frame_no(it["target"])) == it["t"] and torch.equal(src - it["t"], it["gaps"])
        assert len(set(src.tolist())) == K and it["t"] not in src.tolist()  # distinct, never the target
        assert clip.valid[src.numpy()].all() and clip.valid[it["t"]]
        secs = it["gaps"].abs().double() / clip.fps
        assert (secs >= 0.04 - 1e-9).all() and (secs <= 0.12 + 1e-9).all()
    assert [ds.frames(i)[2].tolist() for i in range(9)] == \
        [SourcesDataset(two_rates, K, 0.04, 0.12, seed=0).frames(i)[2].tolist() for i in range(9)]
    # a target needs K valid sources in range: at 25 fps frames 1..3 apart give at most 6
    assert len(SourcesDataset(two_rates, 6, 0.04, 0.12)) > 0
    with pytest.raises(DatasetError, match="no target with 7 sources"):
        SourcesDataset(ClipDataset(two_rates.path), 7, 0.04, 0.12, subjects=["a25"])
    with pytest.raises(ConfigError):
        SourcesDataset(two_rates, 0, 0.04, 0.12)


def test_window_cap_per_person_keeps_an_even_subset(tmp_path: Path) -> None:
    from facedyn.data.windows import WindowDataset

    ds = ClipDataset(make_store(tmp_path / "d", {"a": (25.0, 60), "b": (25.0, 20)}))
    full = WindowDataset(ds, 2, 1)
    capped = WindowDataset(ds, 2, 1, per_subject=10)
    per = {s: sum(full.clips[int(c)].subject == s for c in full.index[:, 0]) for s in ("a", "b")}
    got = {s: sum(capped.clips[int(c)].subject == s for c in capped.index[:, 0]) for s in ("a", "b")}
    assert per == {"a": 56, "b": 16} and got == {"a": 10, "b": 10}
    centres = capped.index[[capped.clips[int(c)].subject == "a" for c in capped.index[:, 0]], 1]
    assert centres.min() == 2 and centres.max() == 57  # spread over the whole clip
    with pytest.raises(ConfigError):
        WindowDataset(ds, 2, 1, per_subject=0)
