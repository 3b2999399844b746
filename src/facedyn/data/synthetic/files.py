"""Writing synthetic datasets to disk (:func:`synth`), in the generic-folder layout.

``OUT/S001/S001.mp4`` with sidecars ``S001.csv`` (``frame`` column plus the labels) and
``S001.landmarks.npy`` (float32 ``(N, 68, 2)`` in video pixels, usable as ``prepare --landmarks``),
and ``OUT/synth.json`` with the settings.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facedyn.atomic import atomic_path
from facedyn.data.synthetic.clip import SyntheticClip, subject_seed, synthesize_clip
from facedyn.data.synthetic.labels import AU_NAMES, LABEL_COLUMNS
from facedyn.errors import ConfigError, OutputError

__all__ = ["GENERATOR_VERSION", "synth"]

#: Version of the generator's output, recorded in ``synth.json``: a folder written by another
#: version is not resumed into.
GENERATOR_VERSION = "1.1"  # 1.1: resting morphology (labels = activity relative to rest)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(tmp)`` on a temporary file in the same folder, then rename it."""
    with atomic_path(path) as tmp:
        write(tmp)


def synth(
    out: Path,
    subjects: int,
    seconds: float,
    fps: float = 25.0,
    seed: int = 0,
    size: int = 160,
    progress: Callable[[int], None] | None = None,
    resting: bool = True,
) -> list[Path]:
    """Write ``subjects`` synthetic face videos with ground truth into ``out`` (resumable).

    Layout, per subject ``S001``, ``S002``, ...: ``out/S001/S001.mp4`` (H.264, ``size`` x ``size``),
    ``out/S001/S001.csv`` (the :class:`SyntheticClip` labels), ``out/S001/S001.landmarks.npy``
    (float32 ``(N, 68, 2)`` in video pixels), plus ``out/synth.json`` (generator version and
    settings). Subjects whose three files exist are skipped, so an interrupted run can be resumed. The same
    arguments write the same files, the videos included (encoded with ``write_video(deterministic=True)``).

    Args:
        progress: called with ``1`` after each subject (written or skipped).
        resting: give each person a resting morphology (:mod:`~facedyn.data.synthetic.resting`); False
            draws the faces of generator 1.0 (expressions fully visible in a still frame).

    Returns:
        The mp4 paths, in subject order.

    Raises:
        OutputError: ``out`` cannot be created or written, or holds data made with other settings.
        ConfigError: non-positive ``subjects``, ``seconds`` or ``fps``.
    """
    from facedyn import __version__
    from facedyn.data.video import write_video

    if subjects < 1 or seconds <= 0 or fps <= 0:
        raise ConfigError(f"subjects, seconds and fps must be positive (got {subjects}, {seconds}, {fps})")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise OutputError(f"{out}: cannot create or write this folder ({e.strerror or e}); "
                          "choose a writable --out") from None
    settings = {"seed": int(seed), "seconds": float(seconds), "fps": float(fps), "size": int(size),
                "resting": bool(resting)}
    meta_path = out / "synth.json"
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            old = {}
        same = all(old.get("args", {}).get(k) == v for k, v in settings.items())
        if old and (not same or old.get("version") != GENERATOR_VERSION):
            raise OutputError(f"{out}: holds synthetic data made with other settings ({old.get('args')}); "
                              "choose another --out or delete it")
    meta = {"generator": "facedyn.data.synthetic", "version": GENERATOR_VERSION, "facedyn_version": __version__,
            "args": {**settings, "subjects": int(subjects)}, "au_names": AU_NAMES, "label_columns": LABEL_COLUMNS,
            "subject_seeds": [subject_seed(seed, i) for i in range(subjects)]}
    try:
        _atomic_write(meta_path, lambda p: p.write_text(json.dumps(meta, indent=2)))
    except OSError as e:
        raise OutputError(f"{meta_path}: cannot write ({e.strerror}); choose a writable --out") from None
    paths = []
    for i in range(subjects):
        name = f"S{i + 1:03d}"
        d = out / name
        mp4, csv, lm = d / f"{name}.mp4", d / f"{name}.csv", d / f"{name}.landmarks.npy"
        paths.append(mp4)
        if not (mp4.exists() and csv.exists() and lm.exists()):
            clip = synthesize_clip(subject_seed(seed, i), seconds, fps, size, resting=resting)
            try:
                d.mkdir(parents=True, exist_ok=True)
                write_video(mp4, clip.frames(), clip.fps, deterministic=True)
                _atomic_write(csv, lambda p, c=clip: c.labels.to_csv(p, index=False, float_format="%.6f"))

                def _save(p: Path, c: SyntheticClip = clip) -> None:
                    with open(p, "wb") as f:
                        np.save(f, c.landmarks.astype(np.float32))

                _atomic_write(lm, _save)
            except OSError as e:
                raise OutputError(f"{d}: cannot write ({e.strerror}); choose a writable --out") from None
        if progress is not None:
            progress(1)
    return paths
