"""RECOLA: continuous arousal and valence, 25 fps video, as AVEC 2016 distributed it or as the original release.

Layouts (told apart by the files present; no option needed)::

    root/                                 AVEC 2016
      recordings_video/P16.mp4            one video per participant (any VIDEO_EXTS; the AVEC
      recordings_video/train_1.mp4        2016 release names them train_1..9, dev_1..9, test_1..9)
      ratings_gold_standard/arousal/P16.arff
      ratings_gold_standard/valence/P16.arff

    root/                                 the original RECOLA release
      RECOLA-Video-recordings/P16.mp4
      RECOLA-Annotation/emotional_behaviour/arousal/P16.csv
      RECOLA-Annotation/emotional_behaviour/valence/P16.csv

Gold-standard ARFFs hold ``@attribute Instance_name string``, ``@attribute frameTime numeric``
(seconds, 0.04 s steps over the first 300 s) and ``@attribute GoldStandard numeric``. The original
release's annotation files are ``;``-separated text with a header ``time;FM1 ;FM2 ;FM3 ;FF1 ;FF2 ;FF3``
(time in seconds, then one column per rater, names padded with spaces): the gold standard is the
mean of the raters at each time (NaN cells left out), and the clip's ``meta.json`` records how many
raters each dimension had (``label_raters``) and which form was read (``label_format``). CSV / text
traces with a time column work too, as do ``<name>_arousal.arff`` files next to the video.
Videos are searched under ``video_dir`` (default ``root/recordings_video``, else
``root/RECOLA-Video-recordings``, else ``root``), traces under ``ratings_dir`` (default
``root/ratings_gold_standard``, else ``root/RECOLA-Annotation``, else ``root``; an ARFF gold standard
wins over a CSV of the same recording). Labels ``arousal`` and ``valence`` are resampled to each
decoded frame's timestamp by linear interpolation, NaN outside the rated time range (e.g. after
300 s, or a test file without ratings). A file in none of these forms fails with one line naming
the file, the line and what was expected.

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
from facedyn.data.datasets.labels import TIME_COLUMNS, peek_header, trace_files_labels

LAYOUT = ("RECOLA: recordings_video/P16.mp4 (or train_1.mp4) and ratings_gold_standard/arousal/P16.arff, "
          "ratings_gold_standard/valence/P16.arff (AVEC 2016: Instance_name, frameTime, GoldStandard), or "
          "RECOLA-Video-recordings/P16.mp4 and RECOLA-Annotation/emotional_behaviour/arousal/P16.csv (original "
          "release: time;FM1;FM2;FM3;FF1;FF2;FF3, one column per rater)")

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


#: ``label_format`` of each form of trace file (recorded in the clip's meta.json).
FORMATS = {"arff": "AVEC 2016 gold standard (ARFF: frameTime, GoldStandard)",
           "raters": "original release: per-rater annotations (time;FM1;...;FF3), gold standard = mean of the raters",
           "trace": "trace file (time, value)"}


def label_notes(per_label: dict[str, Path]) -> dict[str, str]:
    """``label_format`` (the forms of the files found) and, for per-rater files, ``label_raters``
    (``arousal: 6 raters (FM1, ...)``), read from the files' header lines only."""
    forms: list[str] = []
    raters = []
    for dim, path in per_label.items():
        values = [c for c in peek_header(path) if c.lower() not in {t.lower() for t in TIME_COLUMNS}]
        form = "arff" if path.suffix.lower() == ".arff" else "raters" if len(values) > 1 else "trace"
        if FORMATS[form] not in forms:
            forms.append(FORMATS[form])
        if form == "raters":
            raters.append(f"{dim}: {len(values)} raters ({', '.join(values)})")
    return {"label_format": "; ".join(forms), **({"label_raters": "; ".join(raters)} if raters else {})}


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
        video_dir: folder of the videos (default ``root/recordings_video``, ``root/RECOLA-Video-recordings``
            or ``root``).
        ratings_dir: folder of the traces (default ``root/ratings_gold_standard``, ``root/RECOLA-Annotation``
            or ``root``).
        dimensions: label names to look for.
        splits: ``{subject: split}`` replacing the built-in partition for those subjects.

    Returns:
        ClipSources (clip id = subject = recording name) sorted by clip id; a labelled one says in ``extra``
        which form its traces have (``label_format``) and, for per-rater files, how many raters
        (``label_raters``).
    """
    root = require_root(root)
    vid_root = require_root(video_dir) if video_dir is not None else next(
        (root / d for d in ("recordings_video", "RECOLA-Video-recordings") if (root / d).is_dir()), root)
    rat_root = require_root(ratings_dir) if ratings_dir is not None else next(
        (root / d for d in ("ratings_gold_standard", "RECOLA-Annotation") if (root / d).is_dir()), root)
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
            extra=label_notes(per_label) if per_label else {},
        ))
    return sorted(out, key=lambda s: s.clip_id)
