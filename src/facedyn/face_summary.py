"""``facedyn.summarize``: one row per face of an :func:`facedyn.analyze` table (``summary.csv`` of ``facedyn infer``).

    import facedyn
    df = facedyn.analyze("interview.mp4")
    facedyn.summarize(df)          # face_id, frames, visible_s, confidence_mean, pose ranges, AU shares, blinks...

The table is taken as :func:`~facedyn.analysis.analyze` gives it (or ``faces.csv`` read back): every analysed
frame has at least one row, so the frames' timestamps give each frame its duration. Columns
(:data:`SUMMARY_COLUMNS`, then one ``<output>_motion`` per image-valued output):

* ``face_id``; ``frames``: rows of the face; ``start_s``, ``end_s``: its first and last timestamp;
* ``visible_s``: the face's time on screen, the sum of its frames' durations, a frame's duration being the
  time to the next analysed frame (the last frame: the median duration; one frame alone: 0 s). With
  ``every=k`` each analysed frame stands for the ``k`` frames up to the next one;
* ``confidence_mean``: the mean ``confidence`` of the face's rows;
* ``pose_yaw_deg_p5``, ``pose_yaw_deg_p95`` (and pitch, roll): the 5th and 95th percentiles of the face's
  head pose in degrees (:data:`POSE_PERCENTILES`): its range without the few frames of a bad fit;
* per AU proxy ``AUxx_p``: ``AUxx_p_active``, the share of the face's visible time in which the proxy is
  *active*, above its presence threshold (:func:`~facedyn.tasks.proxies.presence_threshold`: 0.3 for the
  brows, 0.4 AU12, 0.8 AU25 and AU26, 0.6 AU45, in tenths of the eye distance), time-weighted like
  ``visible_s``; ``AUxx_p_peak``, its largest value. Every row of the face counts, also those before
  ``proxy_ready`` (there the rest comes from the frames so far);
* ``blinks``: onsets of AU45 activity (:func:`blink_onsets`): runs of rows with ``AU45_p`` above its
  threshold (0.6: lids closed by 6 % of the eye distance, about half an open eye's gap), two runs whose active
  rows are at most :data:`BLINK_MERGE_S` apart counting as one (a dip of one frame at 25 fps);
  ``blink_rate_per_min``: ``blinks / visible_s * 60``;
* ``<output>_motion`` for each image-valued output (``dr_motion``; ``dr-t5.dr_motion`` with several runs): the
  DR's motion energy, ``sum_k mean((D_{k+1} - D_k)^2) / sum_k (t_{k+1} - t_k)`` over the face's consecutive
  rows: the mean squared change of a DR value from frame to frame, per second of the face's time (squared DR
  units per second; 0 for a still face).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facedyn.analysis import POSE_DEG_COLUMNS
from facedyn.tasks.proxies import PROXY_COLUMNS, presence_threshold

__all__ = ["BLINK_MERGE_S", "POSE_PERCENTILES", "SUMMARY_COLUMNS", "blink_onsets", "frame_durations",
           "image_columns", "summarize", "write_summary"]

#: Percentiles of each head-pose angle reported as the face's pose range.
POSE_PERCENTILES = (5.0, 95.0)
#: Runs of AU45 activity whose active rows are at most this many seconds apart are one blink.
BLINK_MERGE_S = 0.1
#: Rows of AU motion are read in chunks of this many (memory-mapped ``dr.npy`` of a long video).
_CHUNK = 256

SUMMARY_COLUMNS = ["face_id", "frames", "start_s", "end_s", "visible_s", "confidence_mean",
                   *[f"{c}_p{int(q)}" for c in POSE_DEG_COLUMNS for q in POSE_PERCENTILES],
                   *[f"{c}_{k}" for c in PROXY_COLUMNS for k in ("active", "peak")],
                   "blinks", "blink_rate_per_min"]


def image_columns(table: pd.DataFrame) -> list[str]:
    """Columns of image-valued outputs (one array ``(C, H, W)`` per row, e.g. ``dr``)."""
    out = []
    for c in table.columns:
        if table[c].dtype == object:
            v = next((x for x in table[c] if isinstance(x, np.ndarray)), None)
            if v is not None and v.ndim >= 2:
                out.append(str(c))
    return out


def frame_durations(table: pd.DataFrame) -> pd.Series:
    """Seconds each analysed frame of ``table`` stands for, indexed by ``frame``: the time to the next analysed
    frame; the last one the median of the others (0 when there is one frame only)."""
    times = table.groupby("frame")["timestamp"].first().sort_index().astype(np.float64)
    t = times.to_numpy()
    if len(t) < 2:
        return pd.Series(np.zeros(len(t)), index=times.index)
    d = np.clip(np.diff(t), 0.0, None)
    return pd.Series(np.append(d, np.median(d)), index=times.index)


def blink_onsets(timestamps: Sequence[float] | np.ndarray, au45: Sequence[float] | np.ndarray,
                 threshold: float | None = None, merge_s: float = BLINK_MERGE_S) -> list[float]:
    """Timestamps of the onsets of AU45 activity of one face (its rows in time order): the first row of each
    run of rows with ``au45`` above ``threshold`` (default: AU45_p's presence threshold, 0.6), runs whose active
    rows are at most ``merge_s`` seconds apart joined (NaN counts as inactive)."""
    t = np.asarray(timestamps, np.float64)
    a = np.asarray(au45, np.float64)
    thr = presence_threshold("AU45_p") if threshold is None else float(threshold)
    with np.errstate(invalid="ignore"):
        active = np.flatnonzero(a > thr)
    onsets: list[float] = []
    last = -np.inf
    for k in active:
        if t[k] - last > merge_s:
            onsets.append(float(t[k]))
        last = t[k]
    return onsets


def _motion(rows: pd.Index, times: np.ndarray, values: Any) -> float:
    """Motion energy of one face's output ``values[i]`` over its rows ``rows`` (in time order)."""
    idx = np.asarray(rows)
    if len(idx) < 2:
        return float("nan")
    span = float(np.sum(np.clip(np.diff(times), 0.0, None)))
    total, prev = 0.0, None
    for a in range(0, len(idx), _CHUNK):
        block = np.stack([np.asarray(values[i], np.float64) for i in idx[a:a + _CHUNK]])
        if prev is not None:
            block = np.concatenate([prev[None], block])
        total += float(np.mean(np.diff(block, axis=0) ** 2, axis=tuple(range(1, block.ndim))).sum())
        prev = block[-1]
    return total / span if span > 0 else float("nan")


def summarize(table: pd.DataFrame, maps: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """One row per face (``face_id`` >= 0) of an :func:`~facedyn.analysis.analyze` table; columns in the module
    docstring.

    ``maps``: image-valued outputs by name, one array per row of ``table`` (e.g. ``np.load("dr.npy",
    mmap_mode="r")`` beside ``faces.csv``); default: the table's array columns (``dr``). Columns the table lacks
    (a proxy, the pose) give NaN.
    """
    table = table.reset_index(drop=True)
    maps = dict(maps) if maps is not None else {c: table[c].to_numpy() for c in image_columns(table)}
    durations = frame_durations(table) if len(table) else pd.Series(dtype=np.float64)
    faces = table[table["face_id"] >= 0] if "face_id" in table else table.iloc[:0]
    out = []
    for fid, rows in faces.groupby("face_id", sort=True):
        rows = rows.sort_values("frame", kind="stable")
        t = rows["timestamp"].to_numpy(np.float64)
        w = durations.reindex(rows["frame"]).to_numpy(np.float64)
        visible = float(w.sum())
        weights = w if visible > 0 else np.ones(len(w))
        r: dict[str, Any] = {"face_id": int(fid), "frames": len(rows), "start_s": float(t.min()),
                             "end_s": float(t.max()), "visible_s": visible,
                             "confidence_mean": float(rows["confidence"].mean()) if "confidence" in rows
                             else float("nan")}
        for c in POSE_DEG_COLUMNS:
            v = rows[c].to_numpy(np.float64) if c in rows else np.full(len(rows), np.nan)
            for q in POSE_PERCENTILES:
                r[f"{c}_p{int(q)}"] = float(np.percentile(v[np.isfinite(v)], q)) if np.isfinite(v).any() \
                    else float("nan")
        for c in PROXY_COLUMNS:
            v = rows[c].to_numpy(np.float64) if c in rows else np.full(len(rows), np.nan)
            with np.errstate(invalid="ignore"):
                active = v > presence_threshold(c)
            r[f"{c}_active"] = float(np.sum(weights * active) / np.sum(weights)) if np.isfinite(v).any() \
                else float("nan")
            r[f"{c}_peak"] = float(np.nanmax(v)) if np.isfinite(v).any() else float("nan")
        if "AU45_p" in rows:
            r["blinks"] = len(blink_onsets(t, rows["AU45_p"].to_numpy(np.float64)))
            r["blink_rate_per_min"] = r["blinks"] / visible * 60.0 if visible > 0 else float("nan")
        else:
            r["blinks"], r["blink_rate_per_min"] = 0, float("nan")
        for name, values in maps.items():
            r[f"{name}_motion"] = _motion(rows.index, t, values)
        out.append(r)
    cols = [*SUMMARY_COLUMNS, *[f"{name}_motion" for name in maps]]
    return pd.DataFrame(out, columns=cols).astype({"face_id": int, "frames": int, "blinks": int})


def write_summary(summary: pd.DataFrame, path: str | Path) -> Path:
    """Write :func:`summarize`'s table as CSV (atomically; floats with 6 significant digits)."""
    from facedyn.atomic import write_text

    path = Path(path)
    write_text(path, summary.to_csv(index=False, float_format="%.6g"))
    return path
