"""SEMAINE (AVEC 2012 style): one video per session plus continuous affect traces.

SEMAINE distributions differ, so this adapter maps one documented layout::

    root/
      splits.csv                      optional: columns session,split (train / devel|dev|valid / test)
      train/ devel/ test/             optional AVEC partition folders (any depth), used when a
                                      session is not in splits.csv
        <session>.avi|.mp4|...        the session's video (any VIDEO_EXTS; or an image folder)
        <session>.csv                 combined traces: a time column (``time`` seconds, or
                                      frameTime / timestamp) + valence, arousal, ... columns
        <session>_valence.arff|.csv|.txt   per-dimension traces (time + value; several value
        <session>_arousal.arff|...         columns, e.g. raters, are averaged), or
        valence/<session>.arff ...         the same in per-dimension folders, or
        <session>_valence_R1.txt ...       one file per annotator (any suffix after the dimension):
                                           their traces are averaged frame by frame

A session may instead have one ``TU_VA.csv`` (the target user's valence and arousal, as public loaders of
the SEMAINE "TrainingInput" folders read it): a header with a time column and ``Arousal``, ``Valence``
(any case, any order; comma-separated), one row per trace sample::

    root/
      sessions/<id>/<video>.avi       the session's user video(s), in a folder named by the session id
      TrainingInput/<id>/TU_VA.csv    time,Arousal,Valence (or the file beside the video)

It is used for the videos of a folder named like the folder holding it (the closest such file wins), except
videos whose name says ``Operator`` (TU = target user), and only where the video has none of the files
named by the session above. There the session (for ``subjects``, ``splits`` and the default subject) is
the folder's name. A ``TU_VA.csv`` without a time, arousal or valence column fails with one line naming it.

Trace files are searched anywhere under ``root`` by name; where several match, the one closest
to the video wins. Per-dimension files (dimensions ``valence``, ``arousal``, ``power``,
``expectancy`` by default) override the combined file's column of the same name; combined
columns are lower-cased. Headerless text traces are read as ``time, value``; ARFF files as in
:func:`facedyn.data.datasets.labels.read_arff_trace`. Time is in seconds unless ``time_scale``
says otherwise (0.001 for ms).

Labels are resampled to each decoded frame's timestamp by linear interpolation, NaN outside a
trace's time range. SEMAINE video is ~50 fps: the frame timestamps carry that.

Subject: ``subjects[session]`` if given, else the first group (or whole match) of
``subject_regex`` searched in the session name, else the session name itself. Split priority:
``splits`` (subject -> split), then ``splits.csv`` (session -> split), then partition folders.
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
    closest,
    find_trace,
    index_files,
    iter_clips,
    normalize_splits,
    read_split_csv,
    require_root,
    split_from_parts,
    subject_from,
)
from facedyn.data.datasets.labels import trace_files_labels

LAYOUT = ("SEMAINE: <session>.avi/.mp4 videos with traces <session>.csv (time,valence,arousal) or "
          "<session>_valence.arff/.csv and <session>_arousal.arff/.csv, or session folders <id>/ with a "
          "TU_VA.csv (time,Arousal,Valence) in a folder of the same name; optional train/devel/test folders "
          "or splits.csv")

#: The per-session file of the target user's valence and arousal, and the columns it must have.
TU_VA = "tu_va.csv"
TU_VA_COLUMNS = ("arousal", "valence")

DIMENSIONS: tuple[str, ...] = ("valence", "arousal", "power", "expectancy")


def annotator_traces(index: dict[str, list[Path]], session: str, label: str, near: Path) -> list[Path]:
    """Separate annotator files ``<session>_<label>_<rater>.<ext>`` (e.g. ``s01_valence_R1.txt``), the
    ones in the folder closest to ``near``, sorted."""
    pat = re.compile(rf"^{re.escape(session.lower())}_{re.escape(label.lower())}_[a-z0-9]+\.(arff|csv|txt)$")
    hits = [p for name, paths in index.items() if pat.match(name) for p in paths]
    if not hits:
        return []
    best = closest(hits, near).parent
    return sorted(p for p in hits if p.parent == best)


def session_file(index: dict[str, list[Path]], clip: Path) -> Path | None:
    """The ``TU_VA.csv`` of the session folder holding ``clip``: in a folder named like the clip's folder (the
    closest one), None for an operator's video or when there is none."""
    if "operator" in clip.name.lower():
        return None
    hits = [p for p in index.get(TU_VA, []) if p.parent.name.lower() == clip.parent.name.lower()]
    return closest(hits, clip.parent) if hits else None


def _labels(per_label: dict[str, Path | list[Path]], combined: list[Path], time_scale: float,
            require: tuple[str, ...] = ()) -> LabelLoader:
    def load(timestamps: np.ndarray) -> pd.DataFrame:
        return trace_files_labels(timestamps, per_label, combined, time_scale=time_scale, require=require)

    return load


def discover(
    root: Path,
    subject_regex: str | None = None,
    subjects: dict[str, str] | None = None,
    splits_csv: Path | None = None,
    splits: dict[str, str] | str | Path | None = None,
    dimensions: Sequence[str] = DIMENSIONS,
    time_scale: float = 1.0,
    fps: float | None = None,
) -> list[ClipSource]:
    """SEMAINE sessions with continuous affect labels (layout in the module docstring).

    Args:
        root: dataset root.
        subject_regex: regular expression giving the subject from the session name.
        subjects: explicit ``{session: subject}`` (wins over ``subject_regex``).
        splits_csv: ``session,split`` CSV (default ``root/splits.csv`` when present).
        splits: ``{subject: split}``, wins over everything else.
        dimensions: per-dimension trace names to look for.
        time_scale: trace time unit in seconds.
        fps: frame rate assumed for image-sequence folders.

    Returns:
        ClipSources sorted by clip id (the safe session name).
    """
    root = require_root(root)
    csv_path = Path(splits_csv) if splits_csv is not None else root / "splits.csv"
    use_csv = splits_csv is not None or csv_path.is_file()
    session_split = read_split_csv(csv_path, key="session") if use_csv else {}
    subject_split = normalize_splits(splits)
    subjects = {str(k): str(v) for k, v in (subjects or {}).items()}
    index = index_files(root, TRACE_EXTS)
    dims = [str(d).lower() for d in dimensions]

    found = list(iter_clips(root))
    ids = clip_ids(found, root)
    out = []
    for (path, is_folder), cid in zip(found, ids, strict=True):
        session = clip_name(path, is_folder)
        cands = [p for p in index.get(f"{session}.csv".lower(), [])
                 if p.parent.name.lower() not in dims and p != csv_path]
        combined = [closest(cands, path.parent)] if cands else []
        per_label: dict[str, Path | list[Path]] = {
            d: t for d in dims if (t := find_trace(index, session, d, path.parent)) is not None}
        for d in dims:
            if d not in per_label and (raters := annotator_traces(index, session, d, path.parent)):
                per_label[d] = raters
        require: tuple[str, ...] = ()
        extra: dict[str, str] = {}
        if not per_label and not combined and (tu_va := session_file(index, path)) is not None:
            combined, require, session = [tu_va], TU_VA_COLUMNS, path.parent.name
            extra = {"label_format": f"session file {tu_va.name} (time, arousal, valence)"}
        elif per_label or combined:
            forms = (["combined trace <session>.csv"] if combined else []) + [
                f"{d}: {len(f)} annotator files, averaged" if isinstance(f, list) else f"{d}: {f.suffix} trace"
                for d, f in per_label.items()]
            extra = {"label_format": "; ".join(forms)}
        subject = subjects.get(session) or subject_from(session, subject_regex, session)
        split = (subject_split.get(subject) or session_split.get(session)
                 or split_from_parts(path.relative_to(root).parts[:-1]))
        out.append(ClipSource(
            clip_id=cid,
            video=path,
            subject=subject,
            labels=_labels(per_label, combined, float(time_scale), require) if (per_label or combined) else None,
            split=split,
            fps=float(fps) if is_folder and fps is not None else None,
            extra=extra,
        ))
    return sorted(out, key=lambda s: s.clip_id)
