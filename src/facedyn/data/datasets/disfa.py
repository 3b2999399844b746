"""DISFA (Denver Intensity of Spontaneous Facial Action).

Layout::

    root/
      Videos_LeftCamera/LeftVideoSN001_comp.avi      one video per subject and camera
      Videos_RightCamera/RightVideoSN001_comp.avi
      ActionUnit_Labels/SN001/SN001_au1.txt          one file per subject and AU
      ActionUnit_Labels/SN001/SN001_au2.txt ...

Videos are found anywhere under ``root`` by name (``LeftVideoSN001*.avi`` / ``RightVideo...``),
label files anywhere under ``labels_dir`` (default ``root/ActionUnit_Labels``, else ``root``)
by name (``SN001_au12.txt``, case-insensitive).

Label files hold lines ``frame,intensity`` (intensity 0-5, no header) or, in other copies, the
intensity alone on each line (line ``k`` = frame ``k``); either form is read, told apart by the first
line (:func:`facedyn.data.datasets.labels.read_value_file`), with CRLF line ends, a UTF-8 BOM and
trailing spaces; a line in neither form fails with one line naming the file and the line number.
Frame numbers are **1-based** in the original files: decoded frame ``i`` (0-based) takes the row of
frame ``i + 1`` (``one_based=False`` overrides). Each labelled clip's ``meta.json`` says which line
form was read (``label_format``) and the rule (``label_alignment``). Columns ``AU01, AU02, AU04,
AU05, AU06, AU09, AU12, AU15, AU17, AU20, AU25, AU26``; an AU without a file is all NaN. DISFA
defines no official split (``split`` is None unless ``splits`` gives one); its videos are 20 fps.

Clip ids are ``SN001_left`` / ``SN001_right``; the subject is ``SN001`` for both cameras.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facedyn.data.datasets.base import ClipSource, LabelLoader
from facedyn.data.datasets.folder import normalize_splits, require_root
from facedyn.data.datasets.labels import peek_value_format, value_files_labels
from facedyn.data.video import VIDEO_EXTS
from facedyn.errors import ConfigError

LAYOUT = ("DISFA: Videos_LeftCamera/LeftVideoSN001_comp.avi (or Videos_RightCamera/RightVideo...) and "
          "ActionUnit_Labels/SN001/SN001_au1.txt files with lines frame,intensity (1-based) or one intensity per "
          "line")

AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
#: How label frames meet decoded frames, by ``one_based``.
ALIGNMENT = {True: "label frame f (or line f) = video frame f counted from 1 (decoded frame f-1)",
             False: "label frame f = decoded video frame f (one_based=False)"}
CAMERAS = ("left", "right")

_VIDEO = re.compile(r"^(left|right)video(SN\d+)", re.IGNORECASE)
_LABEL = re.compile(r"^(SN\d+)_au(\d+)\.txt$", re.IGNORECASE)


def _labels(files: dict[int, Path], aus: Sequence[int], one_based: bool) -> LabelLoader:
    def load(timestamps: np.ndarray) -> pd.DataFrame:
        cols = {f"AU{a:02d}": files.get(a) for a in aus}
        return value_files_labels(cols, len(timestamps), one_based=one_based)

    return load


def discover(
    root: Path,
    camera: str = "left",
    labels_dir: Path | None = None,
    aus: Sequence[int] = AUS,
    one_based: bool = True,
    splits: dict[str, str] | str | Path | None = None,
) -> list[ClipSource]:
    """DISFA videos of one camera (``"left"``, ``"right"`` or ``"both"``) with AU intensities.

    Returns:
        ClipSources (clip id ``SN001_left``, subject ``SN001``) sorted by clip id.

    Raises:
        ConfigError: unknown ``camera``.
    """
    root = require_root(root)
    cam = str(camera).lower()
    if cam not in (*CAMERAS, "both"):
        raise ConfigError(f"DISFA camera must be left, right or both, got {camera!r}")
    cams = CAMERAS if cam == "both" else (cam,)
    override = normalize_splits(splits)
    aus = tuple(int(a) for a in aus)
    lab_root = require_root(labels_dir) if labels_dir is not None else (
        root / "ActionUnit_Labels" if (root / "ActionUnit_Labels").is_dir() else root)

    label_files: dict[str, dict[int, Path]] = {}
    if lab_root.is_dir():
        for p in sorted(lab_root.rglob("*")):
            m = _LABEL.match(p.name)
            if m and p.is_file():
                label_files.setdefault(m.group(1).upper(), {}).setdefault(int(m.group(2)), p)

    videos: dict[tuple[str, str], Path] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in VIDEO_EXTS or p.name.startswith(".") or not p.is_file():
            continue
        m = _VIDEO.match(p.stem)
        if m and m.group(1).lower() in cams:
            videos.setdefault((m.group(2).upper(), m.group(1).lower()), p)

    out = []
    for (subject, c), path in sorted(videos.items()):
        files = {a: f for a, f in label_files.get(subject, {}).items() if a in aus}
        forms = sorted({f for p in files.values() if (f := peek_value_format(p)) is not None})
        notes = {"label_format": " and ".join(forms) or "unknown (see the error when it is read)",
                 "label_alignment": ALIGNMENT[bool(one_based)]} if files else {}
        out.append(ClipSource(
            clip_id=f"{subject}_{c}",
            video=path,
            subject=subject,
            labels=_labels(files, aus, one_based) if files else None,
            split=override.get(subject),
            extra=notes,
        ))
    return sorted(out, key=lambda s: s.clip_id)
