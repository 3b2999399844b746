"""Whole-set metrics of continuous and binary predictions, per column and averaged, with bootstrap intervals.

Every metric takes two 1-D arrays of the same length ``(N,)`` (anything ``numpy.asarray`` accepts,
torch tensors included) and returns a Python float; it is computed on the whole set at once (never as
a mean of per-batch values). Where a metric is undefined (a constant series for a correlation, one
class only for AUC, fewer than two samples) it returns NaN rather than raising, so a table can still be
written; :func:`column_metrics` and :func:`average` skip NaN the way the papers' averages do not need to.

==========  =================================================================================  =========
name        definition (``y`` = truth, ``p`` = prediction, ``n`` samples)                        range
==========  =================================================================================  =========
``icc31``   ICC(3,1) of Shrout & Fleiss: two-way mixed, consistency, single rater; the two       [-1, 1]
            "raters" are truth and prediction. ``(MS_R - MS_E) / (MS_R + MS_E)`` with
            ``MS_R`` the between-targets and ``MS_E`` the residual mean square of the (n, 2)
            table (FERA 2015's measure; pingouin's row ``ICC3`` / ``ICC(C,1)``)
``pcc``     Pearson correlation ``cov(y, p) / (sd(y) sd(p))``                                    [-1, 1]
``ccc``     Lin's concordance ``2 cov(y, p) / (var(y) + var(p) + (mean(y) - mean(p))^2)``,       [-1, 1]
            population (1/n) moments (AVEC's definition)
``mse``     ``mean((y - p)^2)``                                                                   [0, inf)
``mae``     ``mean(|y - p|)``                                                                     [0, inf)
``f1``      binary F1 of the positive class, ``2 TP / (2 TP + FP + FN)``; both arrays are         [0, 1]
            binarised as ``> threshold`` (default 0.5, so 0/1 labels and probabilities both
            work); 0 when there is no positive at all (scikit-learn's default)
``auc``     area under the ROC curve of scores ``p`` for binary truth ``y > threshold``: the      [0, 1]
            Mann-Whitney statistic with ties counted one half
==========  =================================================================================  =========

Tables: :func:`column_metrics` gives ``{metric: {column: value, ..., "avg": mean}}`` for ``(N, K)``
arrays (rows whose truth is NaN are dropped per column); :func:`bootstrap_interval` resamples whole
subjects with replacement (splits are by person, so the uncertainty is over people) and returns a
percentile interval of any such statistic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from facedyn.errors import ConfigError

__all__ = [
    "HIGHER_IS_BETTER",
    "METRICS",
    "auc",
    "average",
    "bootstrap_interval",
    "ccc",
    "column_metrics",
    "column_statistic",
    "f1",
    "icc31",
    "mae",
    "metric",
    "mse",
    "pcc",
]

Metric = Callable[[Any, Any], float]


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Two float64 1-D arrays of equal length; ConfigError otherwise."""
    a = np.asarray(_numpy(y_true), dtype=np.float64)
    b = np.asarray(_numpy(y_pred), dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ConfigError(f"metrics need two 1-D arrays of the same length, got shapes {a.shape} and {b.shape}")
    return a, b


def _numpy(x: Any) -> Any:
    """A torch tensor as a numpy array (anything else unchanged), without importing torch here."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().double().numpy()
    return x


def icc31(y_true: Any, y_pred: Any) -> float:
    """ICC(3,1): two-way mixed effects, consistency, single measurement (Shrout & Fleiss 1979).

    Args:
        y_true: ``(N,)`` ground truth; y_pred: ``(N,)`` predictions (the two "raters").
    Returns:
        ``(MS_R - MS_E) / (MS_R + (k - 1) MS_E)`` with ``k = 2``; NaN when ``N < 2`` or both mean
        squares are 0.
    """
    a, b = _pair(y_true, y_pred)
    n = a.size
    if n < 2:
        return float("nan")
    x = np.stack([a, b], axis=1)  # (n, k)
    k = 2
    grand = x.mean()
    row = x.mean(axis=1)
    col = x.mean(axis=0)
    ss_rows = k * np.sum((row - grand) ** 2)
    ss_cols = n * np.sum((col - grand) ** 2)
    ss_total = np.sum((x - grand) ** 2)
    ss_err = ss_total - ss_rows - ss_cols
    ms_r = ss_rows / (n - 1)
    ms_e = ss_err / ((n - 1) * (k - 1))
    den = ms_r + (k - 1) * ms_e
    return float((ms_r - ms_e) / den) if den > 0 else float("nan")


def pcc(y_true: Any, y_pred: Any) -> float:
    """Pearson correlation of ``(N,)`` arrays; NaN when either is constant or ``N < 2``."""
    a, b = _pair(y_true, y_pred)
    if a.size < 2:
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    den = np.sqrt(np.sum(da * da) * np.sum(db * db))
    return float(np.sum(da * db) / den) if den > 0 else float("nan")


def ccc(y_true: Any, y_pred: Any) -> float:
    """Lin's concordance correlation of ``(N,)`` arrays (population moments); NaN when undefined."""
    a, b = _pair(y_true, y_pred)
    if a.size < 1:
        return float("nan")
    ma, mb = a.mean(), b.mean()
    va, vb = np.mean((a - ma) ** 2), np.mean((b - mb) ** 2)
    cov = np.mean((a - ma) * (b - mb))
    den = va + vb + (ma - mb) ** 2
    return float(2 * cov / den) if den > 0 else float("nan")


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error of ``(N,)`` arrays; NaN for empty arrays."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean((a - b) ** 2)) if a.size else float("nan")


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error of ``(N,)`` arrays; NaN for empty arrays."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b))) if a.size else float("nan")


def f1(y_true: Any, y_pred: Any, threshold: float = 0.5) -> float:
    """Binary F1 of the positive class; both ``(N,)`` arrays binarised as ``> threshold``.

    Returns 0.0 when neither array has a positive (scikit-learn's ``zero_division`` default).
    """
    a, b = _pair(y_true, y_pred)
    t, p = a > threshold, b > threshold
    tp = np.sum(t & p)
    den = 2 * tp + np.sum(~t & p) + np.sum(t & ~p)
    return float(2 * tp / den) if den > 0 else 0.0


def auc(y_true: Any, y_pred: Any, threshold: float = 0.5) -> float:
    """ROC AUC of scores ``y_pred`` ``(N,)`` for the binary truth ``y_true > threshold``.

    The Mann-Whitney U statistic over (positive, negative) pairs, ties counting one half (equal to the
    trapezoidal area under the ROC curve); NaN when only one class is present.
    """
    from scipy.stats import rankdata

    a, b = _pair(y_true, y_pred)
    pos = a > threshold
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(b)  # average ranks for ties
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


#: The metrics by name (what tables and ``--metrics`` options accept).
METRICS: dict[str, Metric] = {"icc": icc31, "pcc": pcc, "ccc": ccc, "mse": mse, "mae": mae, "f1": f1, "auc": auc}

#: Whether a larger value is better, per metric name.
HIGHER_IS_BETTER: dict[str, bool] = {"icc": True, "pcc": True, "ccc": True, "mse": False, "mae": False,
                                     "f1": True, "auc": True}


def metric(name: str) -> Metric:
    """The metric called ``name`` (a key of :data:`METRICS`); ConfigError listing them otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise ConfigError(f"unknown metric {name!r}; choose from {', '.join(METRICS)}") from None


def average(values: Mapping[str, float] | Sequence[float]) -> float:
    """Mean of the finite values (NaN when none is finite)."""
    v = np.asarray(list(values.values()) if isinstance(values, Mapping) else list(values), dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _columns(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(_numpy(y), dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ConfigError(f"{name} must be (N,) or (N, K), got shape {arr.shape}")
    return arr


def column_metrics(y_true: Any, y_pred: Any, columns: Sequence[str] | None = None,
                   metrics: Sequence[str] = ("icc", "mse")) -> dict[str, dict[str, float]]:
    """Each metric per column and averaged over columns.

    Args:
        y_true, y_pred: ``(N, K)`` (or ``(N,)``) arrays; rows where ``y_true`` is NaN are left out of
            that column.
        columns: ``K`` names (default ``"0".."K-1"``).
        metrics: names from :data:`METRICS`.
    Returns:
        ``{metric: {column: value, ..., "avg": mean of the finite column values}}``.
    """
    yt, yp = _columns(y_true, "y_true"), _columns(y_pred, "y_pred")
    if yt.shape != yp.shape:
        raise ConfigError(f"y_true {yt.shape} and y_pred {yp.shape} differ in shape")
    names = [str(c) for c in columns] if columns is not None else [str(i) for i in range(yt.shape[1])]
    if len(names) != yt.shape[1]:
        raise ConfigError(f"{len(names)} column names for {yt.shape[1]} columns")
    out: dict[str, dict[str, float]] = {}
    for m in metrics:
        fn = metric(m)
        per: dict[str, float] = {}
        for j, c in enumerate(names):
            keep = np.isfinite(yt[:, j])
            per[c] = fn(yt[keep, j], yp[keep, j])
        per["avg"] = average(per)
        out[m] = per
    return out


def bootstrap_interval(statistic: Callable[[np.ndarray, np.ndarray], float], y_true: Any, y_pred: Any,
                       groups: Any, n_boot: int = 1000, level: float = 0.95,
                       seed: int = 0, min_groups: int = 1) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over groups (subjects) resampled with replacement.

    Each replicate draws as many groups as there are, with replacement, and evaluates ``statistic`` on
    the concatenation of their rows (a group drawn twice contributes its rows twice).

    Args:
        statistic: ``(y_true_rows, y_pred_rows) -> float`` on ``(M, ...)`` row subsets.
        y_true, y_pred: ``(N, ...)`` arrays, rows aligned.
        groups: ``(N,)`` group label of each row (the subject).
        n_boot: replicates; level: coverage (0.95 → the 2.5th and 97.5th percentiles).
        seed: the replicates' random seed.
        min_groups: fewer groups than this give no interval (``(nan, nan)``): with 2 groups there are only
            3 distinct resamples, and their percentiles need not even contain the estimate.
    Returns:
        ``(low, high)``; ``(nan, nan)`` when no replicate gives a finite value or there are fewer than
        ``min_groups`` groups. With a single group the interval collapses to the statistic itself.
    """
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    yt = np.asarray(_numpy(y_true))
    yp = np.asarray(_numpy(y_pred))
    g = np.asarray(groups)
    if len(yt) != len(yp) or len(yt) != len(g):
        raise ConfigError(f"y_true, y_pred and groups differ in length: {len(yt)}, {len(yp)}, {len(g)}")
    labels, inverse = np.unique(g, return_inverse=True)
    if len(labels) < min_groups:
        return float("nan"), float("nan")
    rows = [np.flatnonzero(inverse == i) for i in range(len(labels))]
    rng = np.random.default_rng(seed)
    vals = np.empty(n_boot, dtype=np.float64)
    for b in range(n_boot):
        pick = rng.integers(0, len(rows), size=len(rows))
        idx = np.concatenate([rows[i] for i in pick])
        vals[b] = statistic(yt[idx], yp[idx])
    vals = vals[np.isfinite(vals)]
    if not vals.size:
        return float("nan"), float("nan")
    lo, hi = np.quantile(vals, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def column_statistic(name: str, column: int | None = None) -> Callable[[np.ndarray, np.ndarray], float]:
    """A :func:`bootstrap_interval` statistic: metric ``name`` of one column of ``(M, K)`` rows, or (with
    ``column=None``) its average over the columns, NaN truth rows left out per column."""
    fn = metric(name)

    def stat(yt: np.ndarray, yp: np.ndarray) -> float:
        t, p = _columns(yt, "y_true"), _columns(yp, "y_pred")
        cols = range(t.shape[1]) if column is None else [column]
        vals = []
        for j in cols:
            keep = np.isfinite(t[:, j])
            vals.append(fn(t[keep, j], p[keep, j]))
        return average(vals)

    return stat
