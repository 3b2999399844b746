"""Windows of frames around a centre frame, and frame pairs, as torch Datasets.

A *window* for half-length ``T`` and stride ``S`` is the centre frame ``t`` and the frames
``t - T*s, ..., t, ..., t + T*s`` (``2T + 1`` frames in temporal order, the centre at index ``T``),
where ``s`` is ``S`` scaled by the clip's frame rate against a reference (25 fps by default), so a
50 fps SEMAINE clip uses ``2S``. Only windows whose frames are all valid (face found) and inside one
clip are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from facedyn.data.store import Clip, ClipDataset
from facedyn.errors import ConfigError, DatasetError

REFERENCE_FPS = 25.0


def scaled_stride(S: int, fps: float, reference_fps: float = REFERENCE_FPS) -> int:
    """Stride in frames of a clip at ``fps`` equivalent to ``S`` at ``reference_fps`` (at least 1)."""
    if S < 1:
        raise ConfigError(f"stride S must be >= 1, got {S}")
    return max(1, round(S * fps / reference_fps))


def window_centres(valid: np.ndarray, T: int, stride: int) -> np.ndarray:
    """Centre indices ``t`` whose window ``t + k*stride, k = -T..T`` lies on valid frames of the clip.

    Args:
        valid: bool ``(N,)``, a face on the frame.
    Returns:
        int64 ``(M,)`` sorted centre indices.
    """
    valid = np.asarray(valid, dtype=bool)
    n = len(valid)
    span = T * stride
    if n <= 2 * span:
        return np.zeros(0, dtype=np.int64)
    ok = np.ones(n - 2 * span, dtype=bool)
    for k in range(-T, T + 1):
        ok &= valid[span + k * stride: n - span + k * stride]
    return np.flatnonzero(ok).astype(np.int64) + span


def to_float(frames: np.ndarray) -> torch.Tensor:
    """uint8 ``(..., H, W, 3)`` → float32 ``(..., 3, H, W)`` in [0, 1]."""
    t = torch.from_numpy(np.array(frames, copy=True))
    return t.movedim(-1, -3).float().div_(255.0)


def _select_clips(data: ClipDataset | str, split: str | None, subjects: Sequence[str] | None) -> list[Clip]:
    ds = data if isinstance(data, ClipDataset) else ClipDataset(data)
    clips = ds.clips(split=split, subjects=list(subjects) if subjects is not None else None)
    if not clips:
        what = f"split {split!r}" if split else "the dataset"
        raise DatasetError(f"{ds.path}: no clips in {what}; check `facedyn info {ds.path}`")
    return clips


@dataclass(frozen=True)
class WindowIndex:
    clip: int
    centre: int
    stride: int


class WindowDataset(Dataset):
    """Windows of ``2T + 1`` frames at stride ``S`` around every valid centre frame.

    Each item is a dict:
        ``centre``: float32 ``(3, H, W)`` in [0, 1], the frame ``I_t``;
        ``window``: float32 ``(2T+1, 3, H, W)`` in [0, 1], temporal order, centre at index ``T``;
        ``clip``: int clip number (into :attr:`clips`); ``t``: int centre frame index;
        ``labels``: float32 ``(L,)`` labels of the centre frame (only with ``label_columns``).
    """

    def __init__(
        self,
        data: ClipDataset | str,
        T: int,
        S: int,
        split: str | None = None,
        subjects: Sequence[str] | None = None,
        reference_fps: float = REFERENCE_FPS,
        every: int = 1,
        label_columns: Sequence[str] | None = None,
    ) -> None:
        if T < 0:
            raise ConfigError(f"window half-length T must be >= 0, got {T}")
        self.T, self.S = T, S
        self.clips = _select_clips(data, split, subjects)
        self.label_columns = list(label_columns) if label_columns else None
        index: list[tuple[int, int, int]] = []
        for ci, clip in enumerate(self.clips):
            stride = scaled_stride(S, clip.fps, reference_fps)
            for t in window_centres(clip.valid, T, stride)[::every]:
                index.append((ci, int(t), stride))
        self.index = np.asarray(index, dtype=np.int64).reshape(-1, 3)
        self._labels: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def offsets(self, stride: int) -> np.ndarray:
        return np.arange(-self.T, self.T + 1) * stride

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        ci, t, stride = (int(v) for v in self.index[i])
        clip = self.clips[ci]
        idx = t + self.offsets(stride)
        window = to_float(clip.frames[idx])
        item: dict[str, torch.Tensor | int] = {"centre": window[self.T].clone(), "window": window,
                                                "clip": ci, "t": t}
        if self.label_columns:
            item["labels"] = torch.tensor(self._clip_labels(ci)[t])
        return item

    def _clip_labels(self, ci: int) -> np.ndarray:
        if ci not in self._labels:
            df = self.clips[ci].labels
            if df is None or not set(self.label_columns or []) <= set(df.columns):
                raise DatasetError(f"{self.clips[ci].path}: lacks label columns {self.label_columns}")
            self._labels[ci] = df[self.label_columns].to_numpy(np.float32)
        return self._labels[ci]


class FrameDataset(Dataset):
    """Every valid frame (for inference and downstream tasks): ``image (3, H, W)``, ``clip``, ``t``."""

    def __init__(self, data: ClipDataset | str, split: str | None = None,
                 subjects: Sequence[str] | None = None, label_columns: Sequence[str] | None = None) -> None:
        self.clips = _select_clips(data, split, subjects)
        self.label_columns = list(label_columns) if label_columns else None
        rows = [(ci, int(t)) for ci, c in enumerate(self.clips) for t in np.flatnonzero(c.valid)]
        self.index = np.asarray(rows, dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        ci, t = (int(v) for v in self.index[i])
        clip = self.clips[ci]
        item: dict[str, torch.Tensor | int] = {"image": to_float(clip.frames[t]), "clip": ci, "t": t}
        if self.label_columns:
            df = clip.labels
            if df is None:
                raise DatasetError(f"{clip.path}: has no labels.csv")
            item["labels"] = torch.tensor(df[self.label_columns].to_numpy(np.float32)[t])
        return item


class PairDataset(Dataset):
    """Source/target frame pairs within one clip, ``min_gap <= |target - source| <= max_gap`` frames.

    The gaps are in frames at the reference fps and scale with the clip's fps. Pairs are drawn
    deterministically from ``seed``: ``pairs_per_frame`` targets per valid source frame.
    Items: ``source``, ``target`` float32 ``(3, H, W)`` in [0, 1], ``gap`` (signed frames), ``clip``, ``t``.
    """

    def __init__(self, data: ClipDataset | str, max_gap: int = 10, min_gap: int = 1, split: str | None = None,
                 subjects: Sequence[str] | None = None, pairs_per_frame: int = 1, seed: int = 0,
                 reference_fps: float = REFERENCE_FPS, both_directions: bool = True) -> None:
        if not 0 <= min_gap <= max_gap:
            raise ConfigError(f"need 0 <= min_gap <= max_gap, got {min_gap}, {max_gap}")
        self.clips = _select_clips(data, split, subjects)
        rng = np.random.default_rng(seed)
        rows = []
        for ci, clip in enumerate(self.clips):
            lo = max(0, round(min_gap * clip.fps / reference_fps))
            hi = max(lo, round(max_gap * clip.fps / reference_fps))
            valid = clip.valid
            for s in np.flatnonzero(valid):
                for _ in range(pairs_per_frame):
                    for _try in range(8):
                        g = int(rng.integers(lo, hi + 1))
                        if both_directions and rng.random() < 0.5:
                            g = -g
                        tt = s + g
                        if 0 <= tt < len(valid) and valid[tt]:
                            rows.append((ci, int(s), int(tt)))
                            break
        self.index = np.asarray(rows, dtype=np.int64).reshape(-1, 3)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor | int]:
        ci, s, t = (int(v) for v in self.index[i])
        fr = self.clips[ci].frames
        return {"source": to_float(fr[s]), "target": to_float(fr[t]), "gap": t - s, "clip": ci, "t": s}
