"""What a dataset adapter produces: clip sources that ``facedyn prepare`` turns into the clip store.

An adapter only translates a dataset's own layout and label files; nothing downstream knows which
dataset a clip came from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

#: labels(timestamps) -> DataFrame with a ``frame`` column (0-based video frame index, one row per
#: decoded frame, in order) plus one float column per label, NaN where unlabelled. ``timestamps``
#: are the decoded frames' presentation times in seconds, shape ``(N,)``.
LabelLoader = Callable[[np.ndarray], pd.DataFrame]


@dataclass
class ClipSource:
    """One clip to prepare.

    Attributes:
        clip_id: unique name of the clip inside the dataset (used as its directory name).
        video: a video file or a folder of numbered images.
        subject: the person in the clip (splits are by subject).
        labels: optional loader of per-frame labels, aligned to the decoded frames.
        landmarks: optional ``(N, 68, 2)`` landmarks in source-video pixels, used instead of the
            detector: a ``.npy`` file (e.g. the synthetic generator's ground truth) or an array (an
            image dataset's own annotation, see :mod:`facedyn.data.datasets.stills`).
        split: ``"train"``, ``"val"`` or ``"test"`` if the dataset defines it, else None.
        fps: frame rate to assume for image folders (videos carry their own).
    """

    clip_id: str
    video: Path
    subject: str
    labels: LabelLoader | None = None
    landmarks: Path | np.ndarray | None = None
    split: str | None = None
    fps: float | None = None
    extra: dict[str, str] = field(default_factory=dict)
