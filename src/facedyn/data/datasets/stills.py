"""Still-image datasets (300-W, MAFL, AFLW, EmotioNet): one image is one clip of one frame, with its labels.

The probes of FAb-Net's paper run on image datasets. Each face becomes a :class:`ClipSource` whose
"video" is the image file; ``facedyn prepare`` decodes it as a one-frame clip. The face is placed by the
dataset's own annotation where it has one, never by a guess of the detector:

* 68 points (300-W): they are the clip's landmarks (:func:`still_source` ``landmarks68``);
* a few points (MAFL's five): the 68-point template fitted to them by a similarity
  (:func:`template_on_points`);
* a face box (AFLW's ``FaceRect``): the template's landmark box scaled and moved onto it
  (:func:`template_in_box`);
* nothing (EmotioNet): the detector, as for videos.

Template-placed landmarks only place the crop (``--align box`` crops 1.5x their bounding box, as for
the videos FAb-Net trains on); what the probes predict are the dataset's labels, written in the clip's
``labels.csv`` as constants of its one frame:

* ``point{k}_x``, ``point{k}_y``: the dataset's own points in **source-image pixels** (0-based); the
  landmark probe maps them into crop pixels with the similarity between the clip's source and crop
  landmarks (:func:`facedyn.tasks.probes.probe_targets`);
* ``pose_yaw``, ``pose_pitch``, ``pose_roll``: head pose in degrees;
* ``AU01``, ``AU02``, ...: AU presence 1 / 0, NaN where the dataset did not code it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facedyn.data.datasets.base import ClipSource, LabelLoader
from facedyn.data.video import IMAGE_EXTS
from facedyn.errors import DatasetError

#: Label columns of a still's head pose (degrees), the names the pose probe reads.
POSE_COLUMNS: tuple[str, ...] = ("pose_yaw", "pose_pitch", "pose_roll")

#: The five points of MAFL / CelebA in 68-point terms: eye centres (image-left eye first), nose tip,
#: mouth corners (image-left first).
FIVE_POINTS: tuple[tuple[int, ...], ...] = (tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,))


def point_columns(k: int) -> list[str]:
    """``point0_x, point0_y, ..., point{k-1}_y``: label columns of ``k`` source-pixel points."""
    return [f"point{i}_{a}" for i in range(k) for a in ("x", "y")]


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """The five MAFL points ``(5, 2)`` of 68 landmarks (:data:`FIVE_POINTS`)."""
    lm = np.asarray(landmarks68, dtype=np.float64)
    return np.stack([lm[list(ix)].mean(0) for ix in FIVE_POINTS])


def template_on_points(points: np.ndarray, groups: Sequence[Sequence[int]] = FIVE_POINTS) -> np.ndarray:
    """The 68-point template fitted by a similarity to ``points`` ``(K, 2)``: ``(1, 68, 2)`` float32.

    ``groups[k]`` are the template points whose mean corresponds to ``points[k]``.
    """
    from facedyn.data.faces.align import similarity_transform
    from facedyn.data.faces.landmarks68 import TEMPLATE_68

    tmpl = np.stack([TEMPLATE_68[list(g)].mean(0) for g in groups])
    M = similarity_transform(tmpl, np.asarray(points, dtype=np.float64))
    return (TEMPLATE_68 @ M[:, :2].T + M[:, 2])[None].astype(np.float32)


def template_in_box(box: Sequence[float]) -> np.ndarray:
    """The 68-point template whose landmark box is ``box`` = ``(x, y, w, h)`` (source pixels): ``(1, 68, 2)``."""
    from facedyn.data.faces.landmarks68 import TEMPLATE_68

    x, y, w, h = (float(v) for v in box)
    lo, hi = TEMPLATE_68.min(0), TEMPLATE_68.max(0)
    side = max(w, h)
    scale = side / float((hi - lo).max())
    centre = np.array([x + w / 2, y + h / 2])
    return ((TEMPLATE_68 - (lo + hi) / 2) * scale + centre)[None].astype(np.float32)


def constant_labels(values: Mapping[str, float]) -> LabelLoader:
    """A label loader giving every decoded frame (a still has one) the same ``values``."""
    items = {k: float(v) if v is not None else np.nan for k, v in values.items()}

    def load(timestamps: np.ndarray) -> pd.DataFrame:
        n = len(timestamps)
        return pd.DataFrame({"frame": np.arange(n, dtype=np.int64),
                             **{k: np.full(n, v, np.float64) for k, v in items.items()}})

    return load


def still_source(clip_id: str, image: Path, split: str | None, labels: Mapping[str, float] | None = None,
                 landmarks68: np.ndarray | None = None, subject: str | None = None, **extra: str) -> ClipSource:
    """One image as a one-frame clip; its subject is ``subject`` or the clip itself (no identity known)."""
    return ClipSource(clip_id=clip_id, video=Path(image), subject=subject or clip_id,
                      labels=constant_labels(labels) if labels else None, landmarks=landmarks68, split=split,
                      extra=dict(extra))


def require_file(path: Path, what: str, layout: str) -> Path:
    """``path`` if it is a file; otherwise a one-line DatasetError naming it."""
    if not path.is_file():
        raise DatasetError(f"{path}: not found; expected {what} there ({layout})")
    return path


def first_file(root: Path, names: Iterable[str]) -> Path | None:
    """The first of ``root / name`` that is a file."""
    return next((root / n for n in names if (root / n).is_file()), None)


def index_images(root: Path) -> dict[str, Path]:
    """Image files under ``root`` by file name (first in sorted walk order wins)."""
    out: dict[str, Path] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if os.path.splitext(f)[1].lower() in IMAGE_EXTS and not f.startswith("."):
                out.setdefault(f, Path(dirpath) / f)
    return out
