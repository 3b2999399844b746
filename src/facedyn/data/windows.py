"""Frame sets sampled from the clip store, as torch Datasets.

* :class:`WindowDataset`: a *window* for half-length ``T`` and stride ``S`` is the centre frame ``t``
  and the frames ``t - T*s, ..., t, ..., t + T*s`` (``2T + 1`` frames in temporal order, the centre
  at index ``T``), where ``s`` is ``S`` frames at 25 fps scaled to the clip's frame rate, so a 50 fps
  SEMAINE clip uses ``2S`` (the Rank Loss of the DR paper).
* :class:`PairDataset`: a source and a target frame of one clip whose time gap lies in a range given
  in seconds (TCAE).
* :class:`SourcesDataset`: one target frame and ``K`` distinct source frames of the same clip, each
  within the gap range of the target (FAb-Net).
* :class:`FrameDataset`: every valid frame (inference, downstream tasks).

Every Dataset takes a :class:`~facedyn.data.store.ClipDataset` (or its path) and a ``split``
(``train``/``val``/``test``, resolved through each clip's subject; None for all clips). Only frames
with a face found (``valid``) are used, and only within one clip. Times are converted to frames
with each clip's own fps by one helper, :func:`frames_for`. Random choices are deterministic: the
draw of item ``i`` depends only on ``(seed, epoch, i)`` (see ``set_epoch``), whichever worker
loads it. A selection with nothing in it raises a one-line :class:`~facedyn.errors.DatasetError`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from facedyn.data.store import Clip, ClipDataset
from facedyn.errors import ConfigError, DatasetError

REFERENCE_FPS = 25.0

#: tolerance (in frames) for floating-point error when seconds become frames
_EPS = 1e-6

Item = dict[str, torch.Tensor | int]


def frames_for(seconds: float, fps: float, rounding: Literal["nearest", "up", "down"] = "nearest") -> int:
    """Number of frames spanning ``seconds`` at ``fps``: the one place times become frame counts.

    ``rounding``: ``"nearest"`` (Python's ``round``), ``"up"`` (the fewest frames covering at
    least ``seconds``) or ``"down"`` (the most frames within ``seconds``); float error below 1e-6
    frames is ignored, so 0.2 s at 25 fps is 5 frames every way.
    """
    if fps <= 0:
        raise ConfigError(f"fps must be > 0, got {fps}")
    x = float(seconds) * float(fps)
    if rounding == "nearest":
        return round(x)
    if rounding == "up":
        return math.ceil(x - _EPS)
    if rounding == "down":
        return math.floor(x + _EPS)
    raise ValueError(f"rounding must be nearest, up or down, got {rounding!r}")


def scaled_stride(S: int, fps: float, reference_fps: float = REFERENCE_FPS) -> int:
    """Stride in frames of a clip at ``fps`` equivalent to ``S`` at ``reference_fps`` (at least 1)."""
    if S < 1:
        raise ConfigError(f"stride S must be >= 1, got {S}")
    return max(1, frames_for(S / reference_fps, fps))


def gap_frames(min_gap_s: float, max_gap_s: float, fps: float) -> tuple[int, int]:
    """Frame gaps ``(lo, hi)`` of a clip at ``fps`` whose durations lie in ``[min_gap_s, max_gap_s]``.

    ``lo`` is at least 1 (a frame is never paired with itself); ``lo > hi`` when no whole-frame gap
    fits the range at this fps.
    """
    lo = max(1, frames_for(min_gap_s, fps, "up"))
    hi = frames_for(max_gap_s, fps, "down")
    return lo, hi


def _check_gaps(min_gap_s: float, max_gap_s: float) -> None:
    if not (math.isfinite(min_gap_s) and math.isfinite(max_gap_s)) or not 0 <= min_gap_s <= max_gap_s \
            or max_gap_s <= 0:
        raise ConfigError(f"need 0 <= min_gap_s <= max_gap_s and max_gap_s > 0 (seconds), got {min_gap_s}, "
                          f"{max_gap_s}")


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
    """uint8 ``(..., H, W, 3)`` → float32 ``(..., 3, H, W)`` in [0, 1], contiguous.

    Contiguous, not a channels-last view of the frames: a DataLoader collates views like that into a channels-last
    batch without workers and a contiguous one with them, and the networks' float results differ between the two.
    """
    t = torch.from_numpy(np.array(frames, copy=True))
    return t.movedim(-1, -3).to(torch.float32, memory_format=torch.contiguous_format).div_(255.0)


def _dataset(data: ClipDataset | str | os.PathLike[str]) -> ClipDataset:
    return data if isinstance(data, ClipDataset) else ClipDataset(data)


def _where(ds: ClipDataset, split: str | None) -> str:
    return f"split {split!r} of {ds.path}" if split else str(ds.path)


def _select_clips(ds: ClipDataset, split: str | None, subjects: Sequence[str] | None) -> list[Clip]:
    clips = ds.clips(split=split, subjects=list(subjects) if subjects is not None else None)
    if not clips:
        what = f"split {split!r}" if split else "the dataset"
        raise DatasetError(f"{ds.path}: no clips in {what}; check `facedyn info {ds.path}`")
    return clips


class _ClipLabels:
    """Per-clip label arrays ``(N, L)`` float32 of ``label_columns``, loaded once per clip."""

    def __init__(self, clips: list[Clip], label_columns: Sequence[str] | None) -> None:
        self.clips = clips
        self.columns = list(label_columns) if label_columns else None
        self._cache: dict[int, np.ndarray] = {}

    def __call__(self, ci: int, t: int) -> torch.Tensor:
        if ci not in self._cache:
            clip = self.clips[ci]
            df = clip.labels
            if df is None:
                raise DatasetError(f"{clip.path}: has no labels.csv; prepare it with labels or drop label_columns")
            missing = [c for c in self.columns or [] if c not in df.columns]
            if missing:
                raise DatasetError(f"{clip.path}: lacks label columns {', '.join(missing)}")
            self._cache[ci] = df[self.columns].to_numpy(np.float32)
        return torch.from_numpy(self._cache[ci][t].copy())


class _GapSampler(Dataset):
    """Shared parts of the samplers that pair frames of one clip within a time gap (pairs, K sources).

    Sets :attr:`clips`, per clip the sorted valid frame indices (:attr:`valid_frames`) and the gap range
    in frames (:attr:`gaps`, from :func:`gap_frames`), and gives each item deterministic randomness:
    item ``i`` draws from ``default_rng((seed, epoch, i))``.
    """

    def __init__(self, data: ClipDataset | str | os.PathLike[str], min_gap_s: float, max_gap_s: float,
                 split: str | None, seed: int, subjects: Sequence[str] | None) -> None:
        _check_gaps(min_gap_s, max_gap_s)
        self.store = _dataset(data)
        self.split = split
        self.seed, self.epoch = int(seed), 0
        self.min_gap_s, self.max_gap_s = float(min_gap_s), float(max_gap_s)
        self.clips = _select_clips(self.store, split, subjects)
        #: per clip: sorted valid frame indices, and the gap range ``(lo, hi)`` in frames
        self.valid_frames = [np.flatnonzero(c.valid).astype(np.int64) for c in self.clips]
        self.gaps = [gap_frames(min_gap_s, max_gap_s, c.fps) for c in self.clips]

    def _anchors(self, keep: Callable[[np.ndarray, np.ndarray], np.ndarray], what: str) -> np.ndarray:
        """int64 ``(M, 2)`` (clip, frame) of every valid frame for which ``keep(n_before, n_after)`` holds,
        ``n_*`` the numbers of valid frames in the gap range on each side; DatasetError if none."""
        rows = []
        for ci, (v, (lo, hi)) in enumerate(zip(self.valid_frames, self.gaps, strict=True)):
            if lo > hi or not len(v):
                continue
            a0, b0, a1, b1 = _ranges(v, v, lo, hi)
            anchors = v[keep(b0 - a0, b1 - a1)]
            rows.append(np.stack([np.full(len(anchors), ci), anchors], 1))
        index = (np.concatenate(rows) if rows else np.zeros((0, 2), np.int64)).astype(np.int64)
        if not len(index):
            raise DatasetError(_no_gap_message(self.store, self.split, what, self.min_gap_s, self.max_gap_s,
                                               self.clips))
        return index

    def _neighbours(self, ci: int, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Valid frames of clip ``ci`` in the gap range before and after ``frame``."""
        v = self.valid_frames[ci]
        lo, hi = self.gaps[ci]
        a0, b0, a1, b1 = (int(x) for x in _ranges(v, frame, lo, hi))
        return v[a0:b0], v[a1:b1]

    def set_epoch(self, epoch: int) -> None:
        """Draw other pairs/sources from now on (call once per epoch, like DistributedSampler's)."""
        self.epoch = int(epoch)

    def _rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, int(i)))

    def __len__(self) -> int:
        return len(self.index)


class WindowDataset(Dataset):
    """Windows of ``2T + 1`` frames at stride ``S`` around every valid centre frame.

    Args:
        data: the clip store (or its directory).
        T: half-length (``T = 0``: the centre frame alone).
        S: stride in frames at ``reference_fps``; a clip at ``fps`` uses :func:`scaled_stride`.
        split: ``train``/``val``/``test`` or None for every clip.
        subjects: only these subjects' clips.
        every: keep every ``every``-th centre of each clip.
        label_columns: also return these labels of the centre frame.
        per_subject: keep at most this many windows per person (an evenly spaced subset of each person's
            windows), so that people with long clips do not dominate training; None keeps all.

    Each item is a dict:
        ``centre``: float32 ``(3, H, W)`` in [0, 1], the frame ``I_t``;
        ``window``: float32 ``(2T+1, 3, H, W)`` in [0, 1], temporal order, centre at index ``T``;
        ``clip``: int clip number (into :attr:`clips`); ``t``: int centre frame index;
        ``labels``: float32 ``(L,)`` labels of the centre frame (only with ``label_columns``).

    Raises:
        DatasetError: no clip in the selection, or no window of valid frames in it.
    """

    def __init__(
        self,
        data: ClipDataset | str | os.PathLike[str],
        T: int,
        S: int,
        split: str | None = None,
        subjects: Sequence[str] | None = None,
        reference_fps: float = REFERENCE_FPS,
        every: int = 1,
        label_columns: Sequence[str] | None = None,
        per_subject: int | None = None,
    ) -> None:
        if T < 0:
            raise ConfigError(f"window half-length T must be >= 0, got {T}")
        if per_subject is not None and per_subject < 1:
            raise ConfigError(f"per_subject must be >= 1, got {per_subject}")
        if every < 1:
            raise ConfigError(f"every must be >= 1, got {every}")
        ds = _dataset(data)
        self.T, self.S = T, S
        self.clips = _select_clips(ds, split, subjects)
        self.label_columns = list(label_columns) if label_columns else None
        self._labels = _ClipLabels(self.clips, self.label_columns)
        index: list[tuple[int, int, int]] = []
        for ci, clip in enumerate(self.clips):
            stride = scaled_stride(S, clip.fps, reference_fps)
            for t in window_centres(clip.valid, T, stride)[::every]:
                index.append((ci, int(t), stride))
        #: int64 ``(M, 3)``: clip number, centre frame, stride in frames
        self.index = np.asarray(index, dtype=np.int64).reshape(-1, 3)
        if per_subject is not None:
            subj = np.array([self.clips[int(ci)].subject for ci in self.index[:, 0]])
            keep = []
            for sname in sorted(set(subj)):
                rows = np.flatnonzero(subj == sname)
                keep.append(rows[np.linspace(0, len(rows) - 1, min(per_subject, len(rows))).round().astype(int)])
            self.index = self.index[np.sort(np.concatenate(keep))] if keep else self.index
        if not len(self.index):
            raise DatasetError(f"{_where(ds, split)}: no window of {2 * T + 1} valid frames at T={T}, S={S}; "
                               "use longer clips or smaller T/S")

    def __len__(self) -> int:
        return len(self.index)

    def offsets(self, stride: int) -> np.ndarray:
        """Frame offsets ``(2T+1,)`` of a window at ``stride``: ``-T*stride .. T*stride``."""
        return np.arange(-self.T, self.T + 1) * stride

    def __getitem__(self, i: int) -> Item:
        ci, t, stride = (int(v) for v in self.index[i])
        clip = self.clips[ci]
        window = to_float(clip.frames[t + self.offsets(stride)])
        item: Item = {"centre": window[self.T].clone(), "window": window, "clip": ci, "t": t}
        if self.label_columns:
            item["labels"] = self._labels(ci, t)
        return item


class FrameDataset(Dataset):
    """Every valid frame of the selection.

    Items: ``image`` float32 ``(3, H, W)`` in [0, 1], ``clip`` (into :attr:`clips`), ``t`` (frame
    index), ``labels`` float32 ``(L,)`` (only with ``label_columns``).

    Raises:
        DatasetError: no clip in the selection, or no valid frame in it.
    """

    def __init__(self, data: ClipDataset | str | os.PathLike[str], split: str | None = None,
                 subjects: Sequence[str] | None = None, label_columns: Sequence[str] | None = None) -> None:
        ds = _dataset(data)
        self.clips = _select_clips(ds, split, subjects)
        self.label_columns = list(label_columns) if label_columns else None
        self._labels = _ClipLabels(self.clips, self.label_columns)
        rows = [(ci, int(t)) for ci, c in enumerate(self.clips) for t in np.flatnonzero(c.valid)]
        #: int64 ``(M, 2)``: clip number, frame
        self.index = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        if not len(self.index):
            raise DatasetError(f"{_where(ds, split)}: no frame with a face found; check `facedyn info {ds.path}`")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Item:
        ci, t = (int(v) for v in self.index[i])
        item: Item = {"image": to_float(self.clips[ci].frames[t]), "clip": ci, "t": t}
        if self.label_columns:
            item["labels"] = self._labels(ci, t)
        return item


def _ranges(v: np.ndarray, s: np.ndarray | int, lo: int, hi: int) -> tuple[np.ndarray, ...]:
    """Positions in sorted ``v`` of the frames ``s - hi .. s - lo`` (``v[a0:b0]``) and ``s + lo .. s + hi``
    (``v[a1:b1]``), for one source ``s`` or an array of them."""
    a0 = np.searchsorted(v, np.asarray(s) - hi, "left")
    b0 = np.searchsorted(v, np.asarray(s) - lo, "right")
    a1 = np.searchsorted(v, np.asarray(s) + lo, "left")
    b1 = np.searchsorted(v, np.asarray(s) + hi, "right")
    return a0, b0, a1, b1


def _no_gap_message(ds: ClipDataset, split: str | None, what: str, min_gap_s: float, max_gap_s: float,
                    clips: list[Clip]) -> str:
    fps = sorted({c.fps for c in clips})
    if all(gap_frames(min_gap_s, max_gap_s, f)[0] > gap_frames(min_gap_s, max_gap_s, f)[1] for f in fps):
        return (f"{_where(ds, split)}: no whole-frame gap lies in [{min_gap_s}, {max_gap_s}] s at "
                f"{', '.join(f'{f:g}' for f in fps)} fps; widen the gap range")
    return (f"{_where(ds, split)}: no {what} of valid frames {min_gap_s}-{max_gap_s} s apart; widen the gap "
            "range or use longer clips")


class PairDataset(_GapSampler):
    """Source/target frame pairs within one clip, ``min_gap_s <= |t_target - t_source| <= max_gap_s`` seconds.

    The gap range is converted to frames with each clip's own fps (:func:`gap_frames`: the whole
    frame gaps whose durations lie in the range, at least 1). Every valid source frame with a valid
    partner in range gives ``pairs_per_frame`` items; each item's target is drawn uniformly among
    the valid frames in range (before or after the source with ``both_directions``, else only
    after), from ``default_rng((seed, epoch, i))``: the same seed and epoch give the same pairs.

    Items: ``source``, ``target`` float32 ``(3, H, W)`` in [0, 1]; ``gap`` int, target minus source
    frame (signed frames; ``gap / fps`` seconds); ``clip`` (into :attr:`clips`); ``t`` source frame.

    Raises:
        ConfigError: a bad gap range or ``pairs_per_frame``.
        DatasetError: no clip in the selection, or no pair in range.
    """

    def __init__(
        self,
        data: ClipDataset | str | os.PathLike[str],
        min_gap_s: float,
        max_gap_s: float,
        split: str | None = None,
        seed: int = 0,
        pairs_per_frame: int = 1,
        both_directions: bool = True,
        subjects: Sequence[str] | None = None,
    ) -> None:
        if pairs_per_frame < 1:
            raise ConfigError(f"pairs_per_frame must be >= 1, got {pairs_per_frame}")
        super().__init__(data, min_gap_s, max_gap_s, split, seed, subjects)
        self.both_directions = both_directions
        index = self._anchors(lambda nb, na: (na + (nb if both_directions else 0)) > 0, "pair")
        #: int64 ``(M, 2)``: clip number, source frame (each source ``pairs_per_frame`` times)
        self.index = np.repeat(index, pairs_per_frame, axis=0)

    def pair(self, i: int) -> tuple[int, int, int]:
        """``(clip, source, target)`` frame indices of item ``i`` (no pixels loaded)."""
        ci, s = (int(x) for x in self.index[i])
        before, after = self._neighbours(ci, s)
        cand = np.concatenate([before, after]) if self.both_directions else after
        return ci, s, int(cand[self._rng(i).integers(len(cand))])

    def __getitem__(self, i: int) -> Item:
        ci, s, t = self.pair(i)
        fr = self.clips[ci].frames
        return {"source": to_float(fr[s]), "target": to_float(fr[t]), "gap": t - s, "clip": ci, "t": s}


class SourcesDataset(_GapSampler):
    """One target frame and ``n_sources`` distinct source frames of the same clip (FAb-Net).

    Every source lies within ``[min_gap_s, max_gap_s]`` seconds of the target, before or after it
    (converted with the clip's fps by :func:`gap_frames`); all frames are valid. Every valid frame
    with at least ``n_sources`` valid frames in range is a target; its sources are drawn without
    replacement from ``default_rng((seed, epoch, i))`` and returned in temporal order.

    Items: ``target`` float32 ``(3, H, W)`` in [0, 1]; ``sources`` float32 ``(K, 3, H, W)`` in
    [0, 1]; ``gaps`` int64 ``(K,)``, source minus target frame (signed frames); ``clip`` (into
    :attr:`clips`); ``t`` target frame.

    Raises:
        ConfigError: a bad gap range or ``n_sources``.
        DatasetError: no clip in the selection, or no target with enough sources in range.
    """

    def __init__(
        self,
        data: ClipDataset | str | os.PathLike[str],
        n_sources: int,
        min_gap_s: float,
        max_gap_s: float,
        split: str | None = None,
        seed: int = 0,
        subjects: Sequence[str] | None = None,
    ) -> None:
        if n_sources < 1:
            raise ConfigError(f"n_sources must be >= 1, got {n_sources}")
        super().__init__(data, min_gap_s, max_gap_s, split, seed, subjects)
        self.n_sources = int(n_sources)
        #: int64 ``(M, 2)``: clip number, target frame
        self.index = self._anchors(lambda nb, na: nb + na >= n_sources, f"target with {n_sources} sources")

    def frames(self, i: int) -> tuple[int, int, np.ndarray]:
        """``(clip, target, sources)`` of item ``i``; ``sources`` int64 ``(K,)`` sorted frame indices."""
        ci, t = (int(x) for x in self.index[i])
        cand = np.concatenate(self._neighbours(ci, t))
        pick = self._rng(i).choice(len(cand), size=self.n_sources, replace=False)
        return ci, t, np.sort(cand[pick])

    def __getitem__(self, i: int) -> Item:
        ci, t, src = self.frames(i)
        fr = self.clips[ci].frames
        return {"target": to_float(fr[t]), "sources": to_float(fr[src]), "gaps": torch.from_numpy(src - t),
                "clip": ci, "t": t}
