"""Generic adapter: a folder of videos and image sequences, with optional sidecar labels.

Layout (``root`` may also be a single video file, or a single image-sequence folder)::

    root/
      S001/S001.mp4                 a video (any extension in facedyn.data.video.VIDEO_EXTS)
      S001/S001.csv                 optional labels: ``frame`` (0-based) + one column per label
      S001/S001.landmarks.npy       optional (N, 68, 2) float32 landmarks in video pixels
      clip.avi                      a video directly in root: subject = its stem
      S002/take1/0001.png ...       an image-sequence folder (images and no videos inside)
      S002/take1.csv                ... its labels, or S002/take1/labels.csv inside it
      S002/take1.landmarks.npy      ... its landmarks, or S002/take1/landmarks.npy inside it

This is exactly what ``facedyn synth`` writes (``out/S001/S001.mp4``, ``S001.csv`` with columns
``frame, timestamp, AU01, ..., valence, arousal``, ``S001.landmarks.npy``).

* Every video file and every image-sequence folder under ``root`` (recursively; names starting
  with ``.`` are skipped) is one clip. A folder holding images *and* videos is not an image
  sequence: its videos are the clips.
* Subject: the first folder under ``root`` on the clip's path (``root/S001/a/b.mp4`` -> ``S001``),
  or the clip's own name when it sits directly in ``root``; ``subject_regex`` overrides it.
* Clip id: the file stem (image folder name), made safe as a directory name; where two clips
  share it, their path relative to ``root`` joined with ``_``.
* Labels: the sidecar CSV's ``frame`` column is 0-based (the n-th decoded frame) unless
  ``one_based=True``; its ``timestamp`` column is dropped (it is not a label); other columns
  must be numeric; frames without a row are NaN.

This module also holds the layout helpers the dataset adapters share (walking a tree for
clips, safe unique clip ids, split names).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from facedyn.data.datasets.base import ClipSource, LabelLoader
from facedyn.data.datasets.labels import frame_labels, read_frame_csv
from facedyn.data.video import IMAGE_EXTS, VIDEO_EXTS
from facedyn.errors import ConfigError, DatasetError, InputNotFoundError

LAYOUT = ("video files and/or image-sequence folders under the root (e.g. root/S001/S001.mp4 with optional "
          "sidecars S001.csv and S001.landmarks.npy), or a single video file")

#: Columns of a sidecar CSV that are bookkeeping, not labels.
NON_LABEL_COLUMNS = ("timestamp",)

_SPLIT_NAMES = {
    "train": "train", "training": "train", "trn": "train",
    "val": "val", "valid": "val", "validation": "val", "dev": "val", "devel": "val", "development": "val",
    "test": "test", "testing": "test", "tst": "test",
}

# --------------------------------------------------------------------------------------------
# Shared layout helpers


def require_root(root: str | Path) -> Path:
    """``root`` as a Path; InputNotFoundError when it does not exist."""
    root = Path(root)
    if not root.exists():
        raise InputNotFoundError(f"{root}: no such file or folder; check the dataset path")
    return root


def normalize_split(name: str, source: object = "split") -> str:
    """Map a split name (``train``/``training``, ``val``/``dev``/``devel``/``valid``, ``test``) to
    ``"train"``, ``"val"`` or ``"test"``; ConfigError otherwise."""
    key = str(name).strip().lower()
    if key not in _SPLIT_NAMES:
        raise ConfigError(f"{source}: unknown split '{name}'; use train, val (dev/devel/valid) or test")
    return _SPLIT_NAMES[key]


def split_from_parts(parts: Iterable[str]) -> str | None:
    """The split named by a folder on a path (``train/``, ``devel/``, ``test/``...), if any."""
    for p in parts:
        key = p.lower()
        if key in _SPLIT_NAMES:
            return _SPLIT_NAMES[key]
    return None


def read_split_csv(path: Path, key: str = "subject") -> dict[str, str]:
    """``{key value: split}`` from a CSV with columns ``<key>,split`` (e.g. ``subject,split``)."""
    if not path.is_file():
        raise InputNotFoundError(f"{path}: splits file not found; give a CSV with columns {key},split")
    df = read_frame_csv(path, required=(key, "split"))
    return {str(k).strip(): normalize_split(v, path) for k, v in zip(df[key], df["split"], strict=True)}


def normalize_splits(splits: dict[str, str] | str | Path | None, source: str = "splits") -> dict[str, str]:
    """Validate a ``{subject: split}`` mapping, or read one from a CSV with columns
    ``subject,split``; values are normalised by :func:`normalize_split`."""
    if splits is None:
        return {}
    if isinstance(splits, str | Path):
        return read_split_csv(Path(splits), key="subject")
    if not isinstance(splits, dict):
        raise ConfigError(f"{source} must map subject to split name, got {type(splits).__name__}")
    return {str(k): normalize_split(v, f"{source}[{k}]") for k, v in splits.items()}


def safe_id(name: str) -> str:
    """``name`` reduced to ``[A-Za-z0-9._-]`` (other runs become ``_``), safe as a directory name."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")
    return s or "clip"


def unique_ids(candidates: list[tuple[str, str]]) -> list[str]:
    """Safe, unique ids for ``(preferred, fallback)`` name pairs, in order.

    Each gets :func:`safe_id` of its preferred name unless that is shared with another
    candidate; then the fallback (e.g. the relative path); remaining clashes get ``_2``, ``_3``...
    """
    pref = [safe_id(p) for p, _ in candidates]
    counts: dict[str, int] = {}
    for p in pref:
        counts[p] = counts.get(p, 0) + 1
    ids = [p if counts[p] == 1 else safe_id(f) for p, (_, f) in zip(pref, candidates, strict=True)]
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        if i in seen:
            seen[i] += 1
            j = f"{i}_{seen[i]}"
            while j in seen:
                seen[i] += 1
                j = f"{i}_{seen[i]}"
            seen[j] = 1
            out.append(j)
        else:
            seen[i] = 1
            out.append(i)
    return out


def clip_name(path: Path, is_folder: bool) -> str:
    """A clip's own name: the image folder's name or the video's stem."""
    return path.name if is_folder else path.stem


def clip_ids(found: list[tuple[Path, bool]], base: Path) -> list[str]:
    """Unique safe ids for :func:`iter_clips` results: the clip's name, or where that is shared,
    its path relative to ``base`` (without the video extension) joined with ``_``."""
    cands = []
    for path, is_folder in found:
        rel = path.relative_to(base)
        cands.append((clip_name(path, is_folder), (rel if is_folder else rel.with_suffix("")).as_posix()))
    return unique_ids(cands)


def _has_video(names: Iterable[str]) -> bool:
    return any(os.path.splitext(n)[1].lower() in VIDEO_EXTS for n in names)


def _has_image(names: Iterable[str]) -> bool:
    return any(os.path.splitext(n)[1].lower() in IMAGE_EXTS for n in names)


def iter_clips(root: Path, skip: Iterable[Path] = ()) -> Iterator[tuple[Path, bool]]:
    """Yield ``(path, is_image_folder)`` for every video file and image-sequence folder under
    ``root`` (recursively, sorted, hidden names skipped, folders in ``skip`` not entered).

    An image-sequence folder holds image files and no video files; it is not descended into.
    """
    skip_set = {Path(s).resolve() for s in skip}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and (here / d).resolve() not in skip_set
        )
        files = sorted(f for f in filenames if not f.startswith("."))
        if here != root and _has_image(files) and not _has_video(files):
            dirnames[:] = []
            yield here, True
            continue
        for f in files:
            if os.path.splitext(f)[1].lower() in VIDEO_EXTS:
                yield here / f, False


def index_files(root: Path, exts: Iterable[str]) -> dict[str, list[Path]]:
    """Files under ``root`` with one of ``exts`` (lower-case, with dot), keyed by lower-case name."""
    exts = {e.lower() for e in exts}
    out: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in exts:
                out.setdefault(f.lower(), []).append(Path(dirpath) / f)
    return out


TRACE_EXTS = (".arff", ".csv", ".txt")


def find_trace(index: dict[str, list[Path]], session: str, label: str, near: Path,
               exts: Iterable[str] = TRACE_EXTS) -> Path | None:
    """A per-label trace file for ``session`` in a :func:`index_files` index.

    Looks for ``<session>_<label>.<ext>`` and ``<label>/<session>.<ext>`` (names compared
    case-insensitively, extensions in ``exts`` order); among several, the one closest to
    ``near`` (most leading path parts in common) wins, then the first in sorted order.
    """
    for ext in exts:
        hits = list(index.get(f"{session}_{label}{ext}".lower(), []))
        hits += [p for p in index.get(f"{session}{ext}".lower(), [])
                 if p.parent.name.lower() == label.lower()]
        if hits:
            return closest(hits, near)
    return None


def closest(paths: list[Path], near: Path) -> Path:
    """The path sharing the most leading parts with ``near`` (ties: first in sorted order)."""
    ref = Path(near).parts

    def common(p: Path) -> int:
        n = 0
        for a, b in zip(p.parts, ref, strict=False):
            if a != b:
                break
            n += 1
        return n

    return sorted(paths, key=lambda p: (-common(p), str(p)))[0]


def subject_from(name: str, regex: str | None, default: str) -> str:
    """Subject id from ``name`` by ``regex`` (its first group, else the whole match), else ``default``."""
    if not regex:
        return default
    try:
        m = re.search(regex, name)
    except re.error as e:
        raise ConfigError(f"subject_regex {regex!r} is not a valid regular expression ({e})") from None
    if m is None:
        return default
    return m.group(1) if m.groups() and m.group(1) else m.group(0)


# --------------------------------------------------------------------------------------------
# Folder adapter


def _sidecar_labels(csv_path: Path, one_based: bool) -> LabelLoader:
    def load(timestamps: np.ndarray) -> pd.DataFrame:
        df = read_frame_csv(csv_path)
        cols = [c for c in df.columns if c != "frame" and c.lower() not in NON_LABEL_COLUMNS]
        return frame_labels(df, len(timestamps), one_based=one_based, columns=cols, source=csv_path)

    return load


def _first_existing(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_file()), None)


def _sidecars(clip: Path, is_folder: bool) -> tuple[Path | None, Path | None]:
    if is_folder:
        csv = _first_existing(clip.parent / f"{clip.name}.csv", clip / "labels.csv")
        lms = _first_existing(clip.parent / f"{clip.name}.landmarks.npy", clip / "landmarks.npy")
    else:
        csv = _first_existing(clip.with_suffix(".csv"))
        lms = _first_existing(clip.parent / f"{clip.stem}.landmarks.npy")
    return csv, lms


def discover(
    root: Path,
    splits: dict[str, str] | str | Path | None = None,
    fps: float | None = None,
    one_based: bool = False,
    subject_regex: str | None = None,
) -> list[ClipSource]:
    """Clips of a generic folder (see the module docstring for the layout).

    Args:
        root: folder, single video file, or single image-sequence folder.
        splits: optional ``{subject: "train"|"val"|"test"}`` (or a ``subject,split`` CSV);
            other subjects get None (``facedyn prepare`` then assigns them by seed).
        fps: frame rate assumed for image-sequence folders (videos carry their own).
        one_based: the sidecar CSVs number frames from 1.
        subject_regex: regular expression searched in the clip's path relative to ``root``
            (posix, without extension); its first group (or whole match) is the subject.

    Returns:
        ClipSources sorted by clip id (empty when nothing is found).
    """
    root = require_root(root)
    split_of = normalize_splits(splits)
    rate = float(fps) if fps is not None else None
    if root.is_file():
        if root.suffix.lower() not in VIDEO_EXTS:
            raise DatasetError(
                f"{root}: not a video file ({', '.join(sorted(VIDEO_EXTS))}); expected {LAYOUT}"
            )
        found = [(root, False)]
        base = root.parent
    else:
        found = list(iter_clips(root))
        base = root
        files = [f for f in os.listdir(root) if not f.startswith(".") and (root / f).is_file()]
        if not found and _has_image(files):  # root itself is one image sequence
            found, base = [(root, True)], root.parent

    subjects = []
    for path, is_folder in found:
        rel = path.relative_to(base)
        rel_noext = (rel if is_folder else rel.with_suffix("")).as_posix()
        default = rel.parts[0] if len(rel.parts) > 1 else clip_name(path, is_folder)
        subjects.append(subject_from(rel_noext, subject_regex, default))
    ids = clip_ids(found, base)  # a.mp4 + a.avi in one folder clash on both names: numbered in sorted order
    out = []
    for (path, is_folder), cid, subj in zip(found, ids, subjects, strict=True):
        csv, lms = _sidecars(path, is_folder)
        out.append(ClipSource(
            clip_id=cid,
            video=path,
            subject=subj,
            labels=_sidecar_labels(csv, one_based) if csv is not None else None,
            landmarks=lms,
            split=split_of.get(subj),
            fps=rate if is_folder else None,
        ))
    return sorted(out, key=lambda s: s.clip_id)
