"""Dataset adapters: translate a dataset's own layout and label files into :class:`ClipSource` s.

``discover(kind, root, **options)`` picks the adapter by name:

=========  ====================================================================================
folder     videos / image folders with optional ``<stem>.csv`` labels (``frame`` 0-based) and
           ``<stem>.landmarks.npy`` (what ``facedyn synth`` writes)
bp4d       BP4D: the release's AU occurrence codes (AU_OCC), FERA 2015 AU06/10/12/14/17
           intensities, FERA 2015 train/development split
disfa      DISFA: 12 AU intensities, left/right camera
semaine    SEMAINE (AVEC 2012 style): continuous valence/arousal traces, ~50 fps video
recola     RECOLA (AVEC 2016): arousal/valence gold-standard ARFFs, 25 fps video
voxceleb   VoxCeleb1/2 face tracks (identity/video/track.mp4 or frame folders), for TCAE / FAb-Net
300w       300-W: images with 68-point .pts files (1-based), the common train/test protocol
mafl       MAFL: CelebA images, five landmarks, the MAFL training/testing lists
aflw       AFLW: images, face boxes and head pose from aflw.sqlite
emotionet  EmotioNet: image list with AU presence columns (999 = not coded)
=========  ====================================================================================

The image datasets (300-W, MAFL, AFLW, EmotioNet) give one-frame clips with their labels; see
:mod:`facedyn.data.datasets.stills`.

Each adapter's module docstring documents its layout, frame numbering and splits. Nothing
downstream knows which adapter produced a clip.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from facedyn.data.datasets import aflw, bp4d, disfa, emotionet, folder, mafl, recola, semaine, voxceleb, w300
from facedyn.data.datasets.base import ClipSource, LabelLoader
from facedyn.data.datasets.folder import require_root
from facedyn.errors import ConfigError, DatasetError

__all__ = ["ADAPTERS", "LAYOUTS", "ClipSource", "LabelLoader", "discover"]

ADAPTERS: dict[str, Callable[..., list[ClipSource]]] = {
    "folder": folder.discover,
    "bp4d": bp4d.discover,
    "disfa": disfa.discover,
    "semaine": semaine.discover,
    "recola": recola.discover,
    "voxceleb": voxceleb.discover,
    "300w": w300.discover,
    "mafl": mafl.discover,
    "aflw": aflw.discover,
    "emotionet": emotionet.discover,
}

#: One-line description of the layout each adapter expects (used in error messages).
LAYOUTS: dict[str, str] = {
    "folder": folder.LAYOUT,
    "bp4d": bp4d.LAYOUT,
    "disfa": disfa.LAYOUT,
    "semaine": semaine.LAYOUT,
    "recola": recola.LAYOUT,
    "voxceleb": voxceleb.LAYOUT,
    "300w": w300.LAYOUT,
    "mafl": mafl.LAYOUT,
    "aflw": aflw.LAYOUT,
    "emotionet": emotionet.LAYOUT,
}


def discover(kind: str, root: str | Path, **options: Any) -> list[ClipSource]:
    """Clips of the dataset at ``root`` read by the adapter ``kind``.

    Args:
        kind: one of :data:`ADAPTERS` (case-insensitive).
        root: the dataset's root folder (``folder`` also takes a single video file).
        **options: the adapter's keyword options (see its ``discover``).

    Returns:
        ClipSources sorted by clip id; ids are unique and safe as directory names.

    Raises:
        ConfigError: unknown ``kind`` or an option the adapter does not take.
        InputNotFoundError: ``root`` does not exist.
        DatasetError: no clips found (the message says what layout was expected), or a subject
            placed in two splits (splits are by subject).
    """
    key = str(kind).strip().lower()
    if key not in ADAPTERS:
        raise ConfigError(f"unknown dataset kind {kind!r}; choose one of {', '.join(ADAPTERS)}")
    adapter = ADAPTERS[key]
    params = inspect.signature(adapter).parameters
    unknown = sorted(set(options) - set(params) - {"root"})
    if unknown:
        known = ", ".join(p for p in params if p != "root")
        raise ConfigError(f"option(s) {', '.join(unknown)} not known to the {key} adapter; it takes: {known}")
    root = require_root(root)
    sources = adapter(root, **options)
    if not sources:
        raise DatasetError(f"{root}: no clips found for dataset kind '{key}'; expected {LAYOUTS[key]}")
    ids = [s.clip_id for s in sources]
    if len(set(ids)) != len(ids):  # adapters guarantee this; keep the contract explicit
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DatasetError(f"{root}: clip id {dup!r} found twice; rename one of the clips")
    split_of: dict[str, str] = {}
    for s in sources:
        if s.split is None:
            continue
        prev = split_of.setdefault(s.subject, s.split)
        if prev != s.split:
            raise DatasetError(
                f"{root}: subject {s.subject!r} is in both the {prev} and {s.split} splits; splits are by "
                "subject: fix the split assignment"
            )
    return sorted(sources, key=lambda s: s.clip_id)
