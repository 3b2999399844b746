"""One synthetic clip: a person, a timeline, landmarks and labels now, frames rendered on demand."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from facedyn.data.synthetic.face3d import Identity, deform, project, sample_identity
from facedyn.data.synthetic.labels import AU_NAMES
from facedyn.data.synthetic.render import draw_frame
from facedyn.data.synthetic.resting import sample_resting
from facedyn.data.synthetic.timeline import affect_from_aus, sample_timeline
from facedyn.errors import ConfigError

__all__ = ["SyntheticClip", "subject_seed", "synthesize_clip"]


@dataclass(eq=False)
class SyntheticClip:
    """A synthetic face video with per-frame ground truth; frames are rendered on demand.

    Attributes:
        labels: one row per frame: ``frame`` (0-based int), ``timestamp`` (s), each AU of
            :data:`AU_NAMES` (float in [0, 5]: the *activity*, relative to the person's resting face),
            ``pose_yaw``, ``pose_pitch``, ``pose_roll`` (degrees), ``valence``, ``arousal`` (float in
            [-1, 1], from the activity).
        landmarks: float32 ``(N, 68, 2)`` landmark positions in image pixels.
        fps: frame rate.
        size: frame width and height in pixels.
        identity: the person.
        seed: the clip's seed.
        rest: the person's resting AU-like shape ``(12,)`` (:mod:`~facedyn.data.synthetic.resting`; zeros
            without resting morphology). Frames show ``rest + activity``.
    """

    labels: pd.DataFrame
    landmarks: np.ndarray
    fps: float
    size: int
    identity: Identity
    seed: int
    _head: np.ndarray = field(repr=False)
    _gaze: np.ndarray = field(repr=False)
    rest: np.ndarray = field(default_factory=lambda: np.zeros(len(AU_NAMES)))

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def au(self) -> np.ndarray:
        """AU activity ``(N, 12)`` in [0, 5] (the labels), columns in the order of :data:`AU_NAMES`."""
        return self.labels[AU_NAMES].to_numpy(np.float64)

    @property
    def shown(self) -> np.ndarray:
        """AU intensities the frames' appearance shows, ``(N, 12)``: ``min(5, rest + activity)``."""
        return np.minimum(self.au + self.rest[None], 5.0)

    def frame(self, i: int) -> np.ndarray:
        """Render frame ``i`` alone (RGB ``uint8 (size, size, 3)``), identical to ``frames()``'s."""
        rng = np.random.default_rng([self.seed, 7, i])
        return draw_frame(self.identity, self.landmarks[i], self._head[i], self.shown[i], self._gaze[i], self.size,
                          rng)

    def frames(self) -> Iterator[np.ndarray]:
        """Yield the frames in order, RGB ``uint8 (size, size, 3)``, rendered lazily."""
        au = self.shown
        for i in range(len(self)):
            rng = np.random.default_rng([self.seed, 7, i])
            yield draw_frame(self.identity, self.landmarks[i], self._head[i], au[i], self._gaze[i], self.size, rng)


def synthesize_clip(seed: int, seconds: float, fps: float = 25.0, size: int = 160,
                    resting: bool = True) -> SyntheticClip:
    """Draw one person and one clip of ``seconds`` at ``fps``: labels and landmarks now, frames lazily.

    Everything follows from ``seed``: the identity, the AU/pose/gaze timeline and the sensor noise
    (the identity does not depend on ``seconds``, ``fps`` or ``size``). With ``resting`` the person has
    a resting morphology (:mod:`~facedyn.data.synthetic.resting`): the face shows ``rest + activity``,
    the labels are the activity; without it (``resting=False``) the clip is exactly the one the
    generator drew before resting morphology existed.
    """
    if seconds <= 0 or fps <= 0:
        raise ConfigError(f"seconds and fps must be positive (got {seconds}, {fps})")
    if size < 48:
        raise ConfigError(f"frame size {size} is too small to draw a face; use --size 48 or more")
    ss_id, ss_time, ss_aff = np.random.SeedSequence(seed).spawn(3)
    identity = sample_identity(np.random.default_rng(ss_id))
    n = max(1, round(seconds * fps))
    au, pose, drift, gaze = sample_timeline(identity, np.random.default_rng(ss_time), n, fps)
    rest = sample_resting(identity.seed) if resting else np.zeros(len(AU_NAMES))
    P = deform(identity, au + rest[None])  # geometry is linear in intensity: rest + activity
    L, H = project(identity, P, pose, drift, size)
    # keep every landmark inside the frame: one constant zoom/shift per clip (motion stays smooth)
    margin = 0.03 * size
    for _ in range(3):
        lo, hi = L.reshape(-1, 2).min(0), L.reshape(-1, 2).max(0)
        if (lo >= margin).all() and (hi <= size - margin).all():
            break
        span = (hi - lo).max()
        if span > size - 2 * margin:
            drift[:, 2] += math.log((size - 2 * margin) / span * 0.98)
        else:
            drift[:, 0] += (np.clip(lo, margin, None) - lo + np.clip(hi, None, size - margin) - hi)[0] / size
            drift[:, 1] += (np.clip(lo, margin, None) - lo + np.clip(hi, None, size - margin) - hi)[1] / size
        L, H = project(identity, P, pose, drift, size)
    r = np.random.default_rng(ss_aff)
    valence, arousal = affect_from_aus(au, fps, (r.uniform(-0.15, 0.15), r.uniform(-0.1, 0.1)))
    labels = pd.DataFrame({"frame": np.arange(n, dtype=np.int64), "timestamp": np.arange(n) / fps})
    for i, name in enumerate(AU_NAMES):
        labels[name] = au[:, i]
    labels["pose_yaw"], labels["pose_pitch"], labels["pose_roll"] = pose[:, 0], pose[:, 1], pose[:, 2]
    labels["valence"], labels["arousal"] = valence, arousal
    return SyntheticClip(labels=labels, landmarks=L, fps=float(fps), size=int(size), identity=identity,
                         seed=int(seed), _head=H, _gaze=gaze, rest=rest)


def subject_seed(seed: int, index: int) -> int:
    """The clip seed of subject ``index`` (0-based) in a dataset drawn with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


