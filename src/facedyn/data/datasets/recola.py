"""RECOLA as distributed for AVEC 2016 (continuous arousal and valence, 25 fps video).

Layout::

    root/
      recordings_video/P16.mp4            one video per participant (any VIDEO_EXTS; the AVEC
      recordings_video/train_1.mp4        2016 release names them train_1..9, dev_1..9, test_1..9)
      ratings_gold_standard/arousal/P16.arff
      ratings_gold_standard/valence/P16.arff

Gold-standard ARFFs hold ``@attribute Instance_name string``, ``@attribute frameTime numeric``
(seconds, 0.04 s steps over the first 300 s) and ``@attribute GoldStandard numeric``; CSV / text
traces with a time column work too, as do ``<name>_arousal.arff`` files next to the video.
Videos are searched under ``video_dir`` (default ``root/recordings_video``, else ``root``),
traces under ``ratings_dir`` (default ``root/ratings_gold_standard``, else ``root``). Labels
``arousal`` and ``valence`` are resampled to each decoded frame's timestamp by linear
interpolation, NaN outside the rated time range (e.g. after 300 s, or a test file without
ratings).

Subject: the recording name (``P16``, or ``train_1``). Split:

* names ``train_N`` / ``dev_N`` / ``test_N`` (AVEC 2016 release): the partition in the name.
  The AVEC 2016 naming and ARFF columns were checked against public code reading that release
  (paths ``ratings_gold_standard/arousal/train_1.arff``, value in the third column).
* names ``P<k>`` (original RECOLA release): train = P16 P17 P19 P21 P23 P25 P26 P28 P30,
  val (AVEC development) = P34 P37 P39 P41 P42 P43 P45 P46 P64, test = any other. These lists
  come from the project brief and could **not** be verified against a public source here
  (the AVEC papers publish partitions, not participant ids); pass ``splits`` to replace them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facedyn.data.datasets.base import ClipSource, LabelLoader
from facedyn.data.datasets.folder import (
    TRACE_EXTS,
    clip_ids,
    clip_name,
    find_trace,
    index_files,
    iter_clips,
    normalize_splits,
    require_root,
    split_from_parts,
)
from facedyn.data.datasets.labels import trace_files_labels

LAYOUT = ("RECOLA (AVEC 2016): recordings_video/P16.mp4 (or train_1.mp4) and "
          "ratings_gold_standard/arousal/P16.arff, ratings_gold_standard/valence/P16.arff "
          "(Instance_name, frameTime, GoldStandard)")

DIMENSIONS: tuple[str, ...] = ("arousal", "valence")
FPS = 25.0

#: AVEC 2016 partition by RECOLA participant id (from the project brief; unverified, see above).
AVEC2016_TRAIN: tuple[str, ...] = ("P16", "P17", "P19", "P21", "P23", "P25", "P26", "P28", "P30")
AVEC2016_DEV: tuple[str, ...] = ("P34", "P37", "P39", "P41", "P42", "P43", "P45", "P46", "P64")

_AVEC_NAME = re.compile(r"^(train|dev|devel|test)_\d+$", re.IGNORECASE)
_P_NAME = re.compile(r"^P\d+$", re.IGNORECASE)


def avec2016_split(name: str) -> str | None:
    """Split of a RECOLA recording name (``train_3`` -> train, ``P34`` -> val, ``P99`` -> test)."""
    m = _AVEC_NAME.match(name)
    if m:
        return split_from_parts([m.group(1)])
    if _P_NAME.match(name):
        n = name.upper()
        return "train" if n in AVEC2016_TRAIN else "val" if n in AVEC2016_DEV else "test"
    return None


def _labels(per_label: dict[str, Path]) -> LabelLoader:
    def load(timestamps: np.ndarray) -> pd.DataFrame:
        return trace_files_labels(timestamps, per_label)

    return load


def discover(
    root: Path,
    video_dir: Path | None = None,
    ratings_dir: Path | None = None,
    dimensions: Sequence[str] = DIMENSIONS,
    splits: dict[str, str] | str | Path | None = None,
) -> list[ClipSource]:
    """RECOLA recordings with arousal/valence gold standards (layout in the module docstring).

    Args:
        root: dataset root.
        video_dir: folder of the videos (default ``root/recordings_video`` or ``root``).
        ratings_dir: folder of the traces (default ``root/ratings_gold_standard`` or ``root``).
        dimensions: label names to look for.
        splits: ``{subject: split}`` replacing the built-in partition for those subjects.

    Returns:
        ClipSources (clip id = subject = recording name) sorted by clip id.
    """
    root = require_root(root)
    vid_root = require_root(video_dir) if video_dir is not None else (
        root / "recordings_video" if (root / "recordings_video").is_dir() else root)
    rat_root = require_root(ratings_dir) if ratings_dir is not None else (
        root / "ratings_gold_standard" if (root / "ratings_gold_standard").is_dir() else root)
    override = normalize_splits(splits)
    index = index_files(rat_root, TRACE_EXTS) if rat_root.is_dir() else {}
    dims = [str(d).lower() for d in dimensions]

    found = list(iter_clips(vid_root))
    ids = clip_ids(found, vid_root)
    out = []
    for (path, is_folder), cid in zip(found, ids, strict=True):
        name = clip_name(path, is_folder)
        per_label = {d: t for d in dims if (t := find_trace(index, name, d, path.parent)) is not None}
        out.append(ClipSource(
            clip_id=cid,
            video=path,
            subject=name,
            labels=_labels(per_label) if per_label else None,
            split=override.get(name, avec2016_split(name)),
            fps=FPS if is_folder else None,
        ))
    return sorted(out, key=lambda s: s.clip_id)
