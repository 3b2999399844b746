"""TCAE's curriculum ("increasing difficulty", tcae-notes-zh.txt): grow the source–target gap over training.

The further apart two frames of a clip are, the more head motion and the more facial action lies between
them, so the harder the transform the twin decoders must explain. Training starts on pairs at most
``start_s`` seconds apart; the largest gap grows linearly over the first ``ramp`` fraction of the epochs
to ``max_gap_s`` and stays there (:func:`max_gap_at`). The schedule is a pure function of the epoch, so a
resumed run continues it exactly.

:class:`CurriculumPairs` is a :class:`~facedyn.data.windows.PairDataset` whose largest gap can be lowered
while training (:meth:`CurriculumPairs.set_max_gap`). Its epoch and gap live in a tensor in shared memory,
so DataLoader worker processes (persistent ones included) see every change.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np
import torch

from facedyn.data.store import ClipDataset
from facedyn.data.windows import PairDataset, frames_for
from facedyn.errors import ConfigError

__all__ = ["CurriculumPairs", "max_gap_at"]


def max_gap_at(epoch: int, epochs: int, start_s: float, max_gap_s: float, ramp: float) -> float:
    """Largest source–target gap (seconds) of epoch ``epoch`` (1-based) of ``epochs``.

    Linear from ``start_s`` at epoch 1 to ``max_gap_s`` at epoch ``ceil(ramp * epochs)``, then constant;
    ``ramp = 0`` (or ``start_s >= max_gap_s``) trains on the full range from the start.
    """
    if not 0 <= ramp <= 1:
        raise ConfigError(f"curriculum ramp must be in [0, 1], got {ramp}")
    if ramp == 0 or start_s >= max_gap_s:
        return float(max_gap_s)
    last = max(1, math.ceil(ramp * epochs))
    if last <= 1:
        return float(max_gap_s)
    f = min(1.0, max(0.0, (epoch - 1) / (last - 1)))
    return float(start_s + f * (max_gap_s - start_s))


class CurriculumPairs(PairDataset):
    """Pairs of one clip ``min_gap_s <= |gap| <= current max`` seconds apart (see the module docstring).

    The frames drawn as sources are those of the full range ``[min_gap_s, max_gap_s]`` (so the epoch
    length stays the same); each item's target is drawn uniformly among the valid frames within the
    current largest gap (:meth:`set_max_gap`), before or after the source, and at the smallest gap in
    range when none is that close. Items as :class:`~facedyn.data.windows.PairDataset`'s.
    """

    def __init__(self, data: ClipDataset | str | os.PathLike[str], min_gap_s: float, max_gap_s: float,
                 split: str | None = None, seed: int = 0, subjects: Sequence[str] | None = None) -> None:
        # (epoch, current max gap in seconds) in shared memory: seen by DataLoader workers
        self._shared = torch.tensor([0.0, float(max_gap_s)], dtype=torch.float64).share_memory_()
        super().__init__(data, min_gap_s, max_gap_s, split=split, seed=seed, subjects=subjects)

    @property  # type: ignore[override]
    def epoch(self) -> int:
        return int(self._shared[0])

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._shared[0] = float(value)

    @property
    def current_max_gap_s(self) -> float:
        return float(self._shared[1])

    def set_max_gap(self, seconds: float) -> None:
        """Draw targets at most ``seconds`` from their source from now on (clipped to ``[min_gap_s, max_gap_s]``)."""
        self._shared[1] = float(min(max(seconds, self.min_gap_s), self.max_gap_s))

    def pair(self, i: int) -> tuple[int, int, int]:
        ci, s = (int(x) for x in self.index[i])
        v = self.valid_frames[ci]
        lo, hi = self.gaps[ci]
        cap = max(lo, min(hi, frames_for(self.current_max_gap_s, self.clips[ci].fps, "down")))
        d = np.abs(v - s)
        ok = (d >= lo) & (d <= cap)
        if not self.both_directions:
            ok &= v > s
        cand = v[ok]
        if not len(cand):  # nothing that close: the nearest partners in the full range
            full = (d >= lo) & (d <= hi) & ((v > s) | self.both_directions)
            cand = v[full][d[full] == d[full].min()]
        return ci, s, int(cand[self._rng(i).integers(len(cand))])
