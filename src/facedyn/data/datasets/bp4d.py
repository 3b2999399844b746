"""BP4D-Spontaneous as distributed for FERA 2015 (AU intensity sub-challenge).

Layout::

    root/
      F001_T1.mp4 | F001_T1.avi | ...      one video per sequence (subject F001..F023 / M001..M018,
                                           task T1..T8), anywhere under root (or video_dir), or
      F001/T1/0001.jpg ...                 image-sequence folders, named F001/T1 or F001_T1
      AUCoding/AU_INT/AU06/F001_T1_AU06.csv   AU intensity, one file per sequence and AU
      ...                                  (any sub-folders; the AU folder is au_dir)

``au_dir`` defaults to the first of ``root/AUCoding/AU_INT``, ``root/AU_INT``,
``root/AU Intensity Codes3.0``, ``root/AU-Intensity-Codes3.0``, ``root/AUCoding`` that exists,
else ``root``; it is searched recursively for ``<subject>_<task>_AU<k>.csv``.

AU files hold rows ``frame,intensity`` (a header row is optional): intensity 0-5, **9 =
unlabelled** (-> NaN). Frame numbers are **1-based** in the FERA 2015 files: decoded video
frame ``i`` (0-based) takes the row of frame ``i + 1`` (``one_based=False`` overrides). For
image-sequence folders whose file names are numbers (BP4D's ``2440.jpg``), the number in each
image's name is its frame number instead. Columns: ``AU06, AU10, AU12, AU14, AU17`` (the five
FERA 2015 intensity AUs; ``aus`` overrides); an AU without a file is all NaN; a sequence with no
AU file at all has no labels.

Splits (FERA 2015 BP4D partition: 21 training, 20 development subjects): training = the
odd-numbered subjects F001, F003, ..., F023, M001, M003, ..., M017; development (``"val"``) =
the even-numbered F002, ..., F022, M002, ..., M018. Source: the lists ``train_recs`` /
``devel_recs`` in T. Baltrušaitis's FERA 2015 code (github.com/TadasBaltrusaitis/FERA-2015,
``data extraction/find_BP4D.m``), whose sizes match the paper's 21/20. BP4D is 25 fps.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facedyn.data.datasets.base import ClipSource, LabelLoader
from facedyn.data.datasets.folder import iter_clips, normalize_splits, require_root
from facedyn.data.datasets.labels import image_numbers, value_files_labels

LAYOUT = ("BP4D/FERA 2015: sequence videos or image folders named like F001_T1 (or F001/T1) and AU intensity "
          "files <subject>_<task>_AU06.csv (frame,intensity; 1-based; 9 = unlabelled) under AUCoding/AU_INT")

#: FERA 2015 intensity AUs.
AUS: tuple[int, ...] = (6, 10, 12, 14, 17)
#: Code for "not coded" in the FERA 2015 intensity files.
UNLABELLED = 9
FPS = 25.0

FERA2015_TRAIN: tuple[str, ...] = (
    *(f"F{i:03d}" for i in range(1, 24, 2)),
    *(f"M{i:03d}" for i in range(1, 18, 2)),
)
FERA2015_DEVEL: tuple[str, ...] = (
    *(f"F{i:03d}" for i in range(2, 23, 2)),
    *(f"M{i:03d}" for i in range(2, 19, 2)),
)

_AU_DIRS = ("AUCoding/AU_INT", "AU_INT", "AU Intensity Codes3.0", "AU-Intensity-Codes3.0", "AUCoding")
_SEQ = re.compile(r"(?:^|/)([FM]\d{3})[_/-]?(T\d+)(?=$|[_/.-])", re.IGNORECASE)
_AU_FILE = re.compile(r"^([FM]\d{3})_(T\d+)_AU(\d+)\.csv$", re.IGNORECASE)


def fera2015_split(subject: str) -> str | None:
    """``"train"`` / ``"val"`` (FERA 2015 development) for a BP4D subject id, else None."""
    s = subject.upper()
    return "train" if s in FERA2015_TRAIN else "val" if s in FERA2015_DEVEL else None


def default_au_dir(root: Path) -> Path:
    """The AU intensity folder used when ``au_dir`` is not given (see the module docstring)."""
    return next((root / d for d in _AU_DIRS if (root / d).is_dir()), root)


def _labels(
    files: dict[int, Path], aus: Sequence[int], one_based: bool, image_folder: Path | None
) -> LabelLoader:
    def load(timestamps: np.ndarray) -> pd.DataFrame:
        numbers = image_numbers(image_folder) if image_folder is not None else None
        return value_files_labels({f"AU{a:02d}": files.get(a) for a in aus}, len(timestamps),
                                  one_based=one_based, unlabelled=UNLABELLED, numbers=numbers)

    return load


def discover(
    root: Path,
    au_dir: Path | None = None,
    video_dir: Path | None = None,
    aus: Sequence[int] = AUS,
    one_based: bool = True,
    splits: dict[str, str] | str | Path | None = None,
    fps: float = FPS,
) -> list[ClipSource]:
    """BP4D (FERA 2015) sequences with their AU intensity labels.

    Args:
        root: dataset root.
        au_dir: folder searched (recursively) for ``F001_T1_AU06.csv`` files; default
            :func:`default_au_dir`.
        video_dir: folder searched for sequence videos / image folders (default ``root``).
        aus: AU numbers to label (columns ``AU%02d``).
        one_based: the AU files' frame numbers start at 1 (FERA 2015); for videos only.
        splits: ``{subject: split}`` replacing the FERA 2015 partition for those subjects.
        fps: frame rate assumed for image-sequence folders.

    Returns:
        ClipSources (clip id ``F001_T1``, subject ``F001``) sorted by clip id.
    """
    root = require_root(root)
    au_root = require_root(au_dir) if au_dir is not None else default_au_dir(root)
    vid_root = require_root(video_dir) if video_dir is not None else root
    override = normalize_splits(splits)
    aus = tuple(int(a) for a in aus)

    au_files: dict[str, dict[int, Path]] = {}
    if au_root.is_dir():
        for p in sorted(au_root.rglob("*")):
            m = _AU_FILE.match(p.name)
            if m and p.is_file():
                seq = f"{m.group(1).upper()}_{m.group(2).upper()}"
                au_files.setdefault(seq, {}).setdefault(int(m.group(3)), p)

    seqs: dict[str, tuple[Path, bool]] = {}
    for path, is_folder in iter_clips(vid_root, skip=[au_root] if au_root != vid_root else []):
        rel = path.relative_to(vid_root)
        m = _SEQ.search((rel if is_folder else rel.with_suffix("")).as_posix())
        if not m:
            continue
        seq = f"{m.group(1).upper()}_{m.group(2).upper()}"
        if seq not in seqs or (seqs[seq][1] and not is_folder):  # prefer a video over images
            seqs[seq] = (path, is_folder)

    out = []
    for seq, (path, is_folder) in sorted(seqs.items()):
        subject = seq.split("_")[0]
        files = {a: f for a, f in au_files.get(seq, {}).items() if a in aus}
        out.append(ClipSource(
            clip_id=seq,
            video=path,
            subject=subject,
            labels=_labels(files, aus, one_based, path if is_folder else None) if files else None,
            split=override.get(subject, fera2015_split(subject)),
            fps=float(fps) if is_folder else None,
        ))
    return out
