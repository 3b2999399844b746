"""Summary of a prepared dataset (what ``facedyn info`` prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facedyn.data.store import ClipDataset


def summarize(dataset: str | Path) -> dict[str, Any]:
    """Clips, frames, valid fraction, fps, label columns, subjects and splits of a dataset.

    Returns a dict with ``clips`` (one dict per clip: clip, subject, split, frames, valid (fraction),
    fps, labels), totals ``n_clips``, ``n_frames``, ``valid``, ``size``, the union of ``labels``,
    ``subjects`` and ``splits``.
    """
    ds = ClipDataset(dataset)
    rows = []
    labels: list[str] = []
    size = None
    for clip in ds.clips():
        df = clip.labels
        cols = [c for c in df.columns if c != "frame"] if df is not None else []
        for c in cols:
            if c not in labels:
                labels.append(c)
        n = len(clip)
        split = ds.index["clips"][clip.clip_id].get("split") or ""
        rows.append({"clip": clip.clip_id, "subject": clip.subject, "split": split, "frames": n,
                     "valid": float(np.mean(clip.valid)) if n else 0.0, "fps": clip.fps,
                     "labels": cols})
        size = clip.meta.get("size", size)
    n_frames = sum(r["frames"] for r in rows)
    n_valid = sum(r["valid"] * r["frames"] for r in rows)
    return {"clips": rows, "n_clips": len(rows), "n_frames": n_frames,
            "valid": n_valid / n_frames if n_frames else 0.0, "size": size, "labels": labels,
            "subjects": ds.subjects, "splits": {k: v for k, v in ds.splits.items() if v}}
