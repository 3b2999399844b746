"""Summary of a prepared dataset (what ``facedyn info`` prints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facedyn.data.store import ClipDataset


def summarize(dataset: str | Path) -> dict[str, Any]:
    """Clips, frames, valid fraction, fps, label columns, data contract, subjects, splits and folds.

    Returns a dict with ``clips`` (one dict per clip: clip, subject, split (of its subject; ``""``
    when in none), frames, valid (fraction), fps, labels), totals ``n_clips``, ``n_frames``,
    ``valid``, the store contract ``size``, ``mask``, ``align``, ``template``, ``detector`` (also
    together as ``spec``), the union of ``labels``, ``subjects``, the non-empty ``splits`` and
    ``folds`` (lists of subjects; empty when none were made).
    """
    ds = ClipDataset(dataset)
    split_of = {s: k for k, subs in ds.splits.items() for s in subs}
    rows = []
    labels: list[str] = []
    for clip in ds.clips():
        df = clip.labels
        cols = [c for c in df.columns if c != "frame"] if df is not None else []
        for c in cols:
            if c not in labels:
                labels.append(c)
        n = len(clip)
        rows.append({"clip": clip.clip_id, "subject": clip.subject, "split": split_of.get(clip.subject, ""),
                     "frames": n, "valid": float(np.mean(clip.valid)) if n else 0.0, "fps": clip.fps,
                     "labels": cols})
    n_frames = sum(r["frames"] for r in rows)
    n_valid = sum(r["valid"] * r["frames"] for r in rows)
    spec = ds.spec()
    return {"clips": rows, "n_clips": len(rows), "n_frames": n_frames,
            "valid": n_valid / n_frames if n_frames else 0.0, **spec, "spec": spec, "labels": labels,
            "subjects": ds.subjects, "splits": {k: v for k, v in ds.splits.items() if v}, "folds": ds.folds}
