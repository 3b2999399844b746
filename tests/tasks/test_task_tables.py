"""Paired comparison of two inputs' frame tables (the Δ-to-SI column of `facedyn eval au/affect`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from facedyn.eval.metrics import column_metrics
from facedyn.tasks.evaluation import paired_difference

COLS = ["AU06", "AU12"]


def _frames(pred_noise: float, seed: int, n_subj: int = 8, n: int = 30) -> pd.DataFrame:
    """A frame table of ``n_subj`` subjects whose truth is shared (seed 0) and predictions are truth + noise."""
    rng_t, rng_p = np.random.default_rng(0), np.random.default_rng(seed)
    rows = []
    for s in range(n_subj):
        for f in range(n):
            t = rng_t.uniform(0, 5, len(COLS))
            p = t + pred_noise * rng_p.standard_normal(len(COLS))
            rows.append({"clip": f"C{s}", "subject": f"S{s}", "frame": f, **{f"true_{c}": t[j] for j, c in
                         enumerate(COLS)}, **{f"pred_{c}": p[j] for j, c in enumerate(COLS)}})
    return pd.DataFrame(rows)


def _avg(df: pd.DataFrame, m: str) -> float:
    return column_metrics(df[[f"true_{c}" for c in COLS]].to_numpy(), df[[f"pred_{c}" for c in COLS]].to_numpy(),
                          COLS, (m,))[m]["avg"]


def test_identical_inputs_differ_by_exactly_zero() -> None:
    df = _frames(1.0, seed=1)
    d, lo, hi = paired_difference(df, df.copy(), COLS, "icc", n_boot=200)
    assert (d, lo, hi) == (0.0, 0.0, 0.0)  # paired replicates: each one scores the same rows twice


def test_difference_matches_the_two_averages_and_excludes_zero_when_clearly_better() -> None:
    good, bad = _frames(0.3, seed=1), _frames(1.5, seed=2)
    for m in ("icc", "mse"):
        d, lo, hi = paired_difference(good, bad, COLS, m, n_boot=300)
        assert d == pytest.approx(_avg(good, m) - _avg(bad, m), abs=1e-12)
        assert lo <= d <= hi
    assert paired_difference(good, bad, COLS, "icc", n_boot=300)[1] > 0  # better ICC, whole interval above 0
    assert paired_difference(good, bad, COLS, "mse", n_boot=300)[2] < 0  # lower MSE, whole interval below 0


def test_rows_are_joined_by_clip_and_frame_not_by_order() -> None:
    good, bad = _frames(0.3, seed=1), _frames(1.5, seed=2)
    shuffled = good.sample(frac=1.0, random_state=0).reset_index(drop=True)
    assert paired_difference(shuffled, bad, COLS, "icc", n_boot=100)[0] == pytest.approx(
        paired_difference(good, bad, COLS, "icc", n_boot=100)[0], abs=1e-12)
    # only the shared frames count
    half = bad[bad["frame"] < 15]
    d = paired_difference(good, half, COLS, "mse", n_boot=50)[0]
    assert d == pytest.approx(_avg(good[good["frame"] < 15], "mse") - _avg(half, "mse"), abs=1e-12)
    assert np.isnan(paired_difference(good, bad.assign(clip="other"), COLS, "icc", n_boot=10)[0])
