"""Geometric AU proxies from the 68 landmarks: weak AU labels for real footage without annotations.

Each proxy is one geometric measure ``g`` of a face's landmarks that grows with an action, expressed
in a face-centred frame and divided by the inter-ocular distance (IOD, the distance between the two
eye centres, the means of points 36–41 and 42–47), then taken relative to that *person's* own resting
level::

    proxy(frame) = max(0, g(frame) - rest(person)) * 10,   rest(person) = 5th percentile of g over
                                                          every valid frame of every clip of the person

so a proxy is in tenths of the IOD (1.0 = a change of 10 % of the eye distance; strong mouth openings
reach ~5, like a FACS intensity) and is >= 0, ~0 on the person's resting face, NaN where no face was
found. Subtracting the person's own rest is the point: people's resting faces differ (low brows, a
slightly open mouth), and a proxy should measure the *action*, not the morphology.

Face-centred frame: ``x`` = the unit vector from the image-left to the image-right eye centre, ``y`` =
``x`` turned 90° clockwise (pointing down the face); "height of p above q" = ``(q - p) · y``. Heights
are measured this way so that roll in a loosely cropped (box-aligned) store does not leak into them.

Pose-free measures (``measures(..., frontalise=True)``, :class:`StreamProxies`, so ``facedyn.analyze``'s
columns): the landmarks are first seen from the front. Each frame's head pose is fitted on the face's own
proportions (:class:`~facedyn.tasks.pose.PoseTracker`), every landmark is taken back along its camera ray to the
plane of the turned face at the 3-D mean face's depth of that point
(:meth:`~facedyn.tasks.pose.PoseFit.frontalise`), and the frontal shape is registered on the face's own nose and
eye corners (:data:`_RIGID`) by an affine map, which takes out the stretch that a pose a degree or two off leaves
(:func:`_frontal`); the measures below are then taken on that shape, with AU12's and AU26's heights from the line
through the eye corners 36, 39, 42, 45 instead of the nose base 33 (the same measure of a rigid face once the rest
is subtracted; the nose base lies ~25 model units in front of the mouth corners and the chin, which made the
heights follow pitch). On the synthetic generator's landmarks of 6 people, pitch ±20° and yaw ±30° at rest move
each proxy by <= 3.5 % (AU26: 7.5 %) of its response to its AU at intensity 3 (image-plane measures: up to 130 %),
and the responses at ±30° of yaw are 1.00-1.02 of the frontal ones (``tests/tasks/test_turned_heads.py``). The
clip stores' weak labels (:func:`store_proxies`) keep the image-plane measures.

===========  ===============================  ====================================================================
column       action                           measure ``g`` (before ``/ IOD``; points in iBUG-68 numbering)
===========  ===============================  ====================================================================
``AU01_p``   inner brow raiser                mean height of the inner brow points 20, 21, 22, 23 above the line
                                              through the eye centres
``AU02_p``   outer brow raiser                mean height of the outer brow points 17, 18, 25, 26 above that line
``AU12_p``   lip corner puller                mouth width ``|p48 - p54|`` plus the mean height of the corners
                                              48, 54 above the nose base 33 (pose-free: above the eye corners'
                                              line; corners go out and up)
``AU25_p``   lips part                        mean inner-lip gap ``|p61 - p67|, |p62 - p66|, |p63 - p65|``
``AU26_p``   jaw drop                         height of the nose base 33 above the chin 8 (pose-free: of the eye
                                              corners' line)
``AU45_p``   eye closure (blink)              minus the mean lid gap ``|p37 - p41|, |p38 - p40|, |p43 - p47|,
                                              |p44 - p46|`` (rest = the person's most open eyes)
===========  ===============================  ====================================================================

In a stream (``facedyn.analyze``/``infer``), where a person's other frames are not known yet,
:class:`StreamProxies` takes each face's rest as the same 5th percentile over that face's frames *so far*
(this frame included), so a value can only shrink towards the whole-video one as the rest settles; rows
from before the face's first :data:`STREAM_WARMUP` frames are marked not ready (``proxy_ready`` 0).

These are weak labels: landmark detectors smooth and bias small motions, AU26 moves with speech, and the
image-plane measures with head pitch (the brows and AU26 most); AU04, AU06 and the other appearance-only AUs
have no reliable landmark proxy and are not offered. :func:`presence_threshold` gives per column the value above which
the action counts as present (for F1/AUC).
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from facedyn.data.faces.landmarks68 import MEAN_FACE_3D
from facedyn.errors import ConfigError, DatasetError
from facedyn.tasks.pose import FOCAL_FACES, PoseFit, PoseTracker

if TYPE_CHECKING:
    from facedyn.data.store import ClipDataset

__all__ = [
    "PROXY_COLUMNS",
    "REST_PERCENTILE",
    "STREAM_WARMUP",
    "UNIT",
    "StreamProxies",
    "measures",
    "presence_threshold",
    "proxies_from_measures",
    "store_proxies",
]

#: Proxy columns, in order.
PROXY_COLUMNS: tuple[str, ...] = ("AU01_p", "AU02_p", "AU12_p", "AU25_p", "AU26_p", "AU45_p")
#: Percentile of a person's measures taken as their resting level.
REST_PERCENTILE = 5.0
#: Frames of a face before its running rest counts as settled in a stream (2 s at 25 fps).
STREAM_WARMUP = 50
#: Proxy units per IOD (10: a proxy of 1.0 is a change of a tenth of the inter-ocular distance).
UNIT = 10.0

#: Value above which each proxy counts as the action being present (proxy units, tenths of the IOD):
#: brows raised by 3 % of the IOD; lip corners out/up by 4 %; lips parted by 8 % (visible teeth gap);
#: jaw dropped by 8 %; lids closed by 6 % of the IOD (about half of an open eye's lid gap).
_PRESENCE: dict[str, float] = {"AU01_p": 0.3, "AU02_p": 0.3, "AU12_p": 0.4, "AU25_p": 0.8, "AU26_p": 0.8,
                               "AU45_p": 0.6}

_INNER_BROW = [20, 21, 22, 23]
_OUTER_BROW = [17, 18, 25, 26]
_LIP_PAIRS = np.array([(61, 67), (62, 66), (63, 65)])
_LID_PAIRS = np.array([(37, 41), (38, 40), (43, 47), (44, 46)])
_EYE_CORNERS = [36, 39, 42, 45]
#: Points the frontalised landmarks are registered on (:func:`_frontal`): the nose and the eye corners, which no
#: action moves (the lids close in blinks, the jaw line moves with AU12 and AU26).
_RIGID = [*range(27, 36), *_EYE_CORNERS]


def presence_threshold(column: str) -> float:
    """Proxy value above which ``column``'s action counts as present, in proxy units (tenths of the IOD).

    AU01_p, AU02_p 0.3 (brows raised by 3 % of the IOD); AU12_p 0.4 (corners out/up by 4 %); AU25_p 0.8
    (lips parted by 8 %); AU26_p 0.8 (jaw dropped by 8 %); AU45_p 0.6 (lids closed by 6 % of the IOD,
    about half an open eye's lid gap). ConfigError for an unknown column.
    """
    try:
        return _PRESENCE[column]
    except KeyError:
        raise ConfigError(f"unknown proxy column {column!r}; choose from {', '.join(PROXY_COLUMNS)}") from None


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1)


def measures(landmarks: np.ndarray, frontalise: bool = False, focal: float = FOCAL_FACES) -> dict[str, np.ndarray]:
    """The raw measures ``g`` of every proxy, already divided by the IOD (not yet relative to rest).

    Args:
        landmarks: ``(N, 68, 2)`` float pixels (any crop or image frame), NaN where no face.
        frontalise: measure on the landmarks seen from the front (module docstring), so that head motion alone
            does not move them (``facedyn.analyze``'s columns): the N frames are taken as one face's, whose
            proportions are estimated from them all first (:class:`~facedyn.tasks.pose.PoseTracker`); False: in
            the image plane, after removing roll only (the store's weak labels, :func:`store_proxies`).
        focal: the camera of the pose fit (:func:`~facedyn.tasks.pose.fit_pose`), with ``frontalise``.
    Returns:
        proxy column → float64 ``(N,)``; NaN where the landmarks are NaN, the eyes coincide or the pose fit fails.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ConfigError(f"landmarks must be (N, 68, 2), got {lm.shape}")
    if frontalise and len(lm):
        ok = np.isfinite(lm).all(axis=(1, 2))
        tracker = PoseTracker(focal)
        for x in lm[ok]:  # the face's own shape, from all of its frames
            tracker(x)
        tracker.adapt = False
        lm = np.stack([_frontal(x, tracker(x) if k else None) for x, k in zip(lm, ok, strict=True)])
    return _planar_measures(lm, frontalise)


def _frontal(lm: np.ndarray, fit: PoseFit | None) -> np.ndarray:
    """``(68, 2)`` landmarks seen from the front, registered on the face's own shape (model units; NaN without a
    pose fit): :meth:`~facedyn.tasks.pose.PoseFit.frontalise`, then the least-squares affine map taking the
    frontalised rigid points :data:`_RIGID` onto the fit's template's (the face's shape once
    :class:`~facedyn.tasks.pose.PoseTracker` has adapted it, so the eye distance and the proportions stay the
    person's). What a pose a degree or two off leaves after frontalising is, to first order, a stretch of the face
    along the axis of the error (heights scaled by ``cos(pitch) / cos(fitted pitch)``) plus constant shifts; the
    map takes the stretch out."""
    if fit is None:
        return np.full((68, 2), np.nan)
    F = fit.frontalise(lm)
    A = np.c_[F[_RIGID], np.ones(len(_RIGID))]
    M = np.linalg.solve(A.T @ A, A.T @ fit.template[_RIGID, :2])  # least squares (normal equations, 3 x 3)
    return F @ M[:2] + M[2]


def _planar_measures(lm: np.ndarray, corners: bool) -> dict[str, np.ndarray]:
    """:func:`measures` of ``(N, 68, 2)`` points as they are (in the eye-line frame, divided by the IOD); with
    ``corners`` AU12's and AU26's heights are taken from the eye corners' line, not the nose base."""
    eye_a = lm[:, 36:42].mean(axis=1)
    eye_b = lm[:, 42:48].mean(axis=1)
    iod = _dist(eye_a, eye_b)
    with np.errstate(invalid="ignore", divide="ignore"):
        iod = np.where(iod > 1e-6, iod, np.nan)
        ex = (eye_b - eye_a) / iod[:, None]
    ey = np.stack([-ex[:, 1], ex[:, 0]], axis=1)  # x turned 90° clockwise in image coordinates (y down)
    mid = 0.5 * (eye_a + eye_b)

    def height(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Height of points ``p (N, [K,] 2)`` above ``q``, along -ey."""
        d = q - p
        return np.einsum("n...c,nc->n...", d, ey)

    ref = lm[:, _EYE_CORNERS].mean(axis=1) if corners else lm[:, 33]
    g = {
        "AU01_p": height(lm[:, _INNER_BROW], mid[:, None]).mean(axis=1),
        "AU02_p": height(lm[:, _OUTER_BROW], mid[:, None]).mean(axis=1),
        "AU12_p": _dist(lm[:, 48], lm[:, 54]) + height(lm[:, [48, 54]], ref[:, None]).mean(axis=1),
        "AU25_p": _dist(lm[:, _LIP_PAIRS[:, 0]], lm[:, _LIP_PAIRS[:, 1]]).mean(axis=1),
        "AU26_p": height(ref, lm[:, 8]),
        "AU45_p": -_dist(lm[:, _LID_PAIRS[:, 0]], lm[:, _LID_PAIRS[:, 1]]).mean(axis=1),
    }
    return {k: v / iod for k, v in g.items()}


def resting_level(values: np.ndarray, percentile: float = REST_PERCENTILE) -> float:
    """``percentile`` of the finite values of ``(M,)`` (NaN when none is finite)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.percentile(v, percentile)) if v.size else float("nan")


def proxies_from_measures(g: np.ndarray, rest: float) -> np.ndarray:
    """``max(0, g - rest) * UNIT`` of ``(N,)`` measures; NaN stays NaN."""
    out = (np.asarray(g, dtype=np.float64) - rest) * UNIT
    return np.where(np.isnan(out), np.nan, np.maximum(out, 0.0))


class StreamProxies:
    """AU proxies of one face frame by frame, relative to the face's rest so far (a running low percentile).

    With ``frontalise`` (default) the measures are pose-free (module docstring), on the face's pose fits (given
    to each call, or fitted here with camera ``focal``); the history restarts once, at the first fit on the
    face's own shape (a few frames in, while ``proxy_ready`` is still 0). Each call adds the frame's measures to
    the face's sorted history (every frame so far is kept: 6 floats per frame, 48 bytes) and returns the proxies
    relative to the ``percentile`` of that history, and whether at least ``warmup`` frames with a face had been
    seen (before that, the rest is an estimate from few frames).
    """

    def __init__(self, warmup: int = STREAM_WARMUP, percentile: float = REST_PERCENTILE, frontalise: bool = True,
                 focal: float = FOCAL_FACES) -> None:
        self.warmup = int(warmup)
        self.percentile = float(percentile)
        self.frontalise = bool(frontalise)
        self.focal = float(focal)
        #: the face's head pose (:meth:`fit`), on a template adapted to the face; made at the first :meth:`fit`
        self.pose: PoseTracker | None = None
        self.frames = 0
        self._adapted = False  # whether the pose fits' template has become the face's own
        # sorted histories as C doubles (8 bytes a value, not a 32-byte Python float and its list slot)
        self._seen: dict[str, array[float]] = {c: array("d") for c in PROXY_COLUMNS}

    def _rest(self, col: str) -> float:
        v = self._seen[col]
        if not v:
            return float("nan")
        k = self.percentile / 100.0 * (len(v) - 1)  # numpy's default ("linear") percentile
        lo = int(np.floor(k))
        hi = min(lo + 1, len(v) - 1)
        return v[lo] + (v[hi] - v[lo]) * (k - lo)

    def fit(self, landmarks: np.ndarray) -> PoseFit | None:
        """The head pose fit of this frame's ``(68, 2)`` landmarks, on the face's adapted template (pass it on to
        :meth:`__call__` for the same frame); None where they are not finite or the fit fails."""
        lm = np.asarray(landmarks, dtype=np.float64)
        if self.pose is None:
            self.pose = PoseTracker(self.focal)
        return self.pose(lm) if np.isfinite(lm).all() else None

    def __call__(self, landmarks: np.ndarray, fit: PoseFit | None = None) -> tuple[dict[str, float], bool]:
        """Proxies of one frame's landmarks ``(68, 2)`` (pixels): (column → value >= 0 or NaN, rest ready).

        ``fit``: this frame's :meth:`fit`, when the caller has it already (else it is fitted here).
        """
        lm = np.asarray(landmarks, dtype=np.float64)
        if self.frontalise:
            if fit is None:
                fit = self.fit(lm)
            if fit is not None and not self._adapted and fit.template is not MEAN_FACE_3D:
                # the first fit on the face's own shape: the measures before it were registered on the mean face's
                # proportions, so they leave the history (the rest is still settling: proxy_ready is 0)
                self._adapted = True
                for v in self._seen.values():
                    del v[:]
            lm = _frontal(lm, fit)
        g = _planar_measures(lm[None], self.frontalise)
        self.frames += 1
        out = {}
        for col in PROXY_COLUMNS:
            v = float(g[col][0])
            if np.isfinite(v):
                bisect.insort(self._seen[col], v)
            out[col] = float(proxies_from_measures(np.array([v]), self._rest(col))[0])
        return out, self.frames >= self.warmup


def store_proxies(store: ClipDataset, clips: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """AU proxies of clips of a store, relative to each person's rest over all of their clips.

    Args:
        store: the clip store (landmarks in crop pixels).
        clips: clip ids to return (default every clip); the resting level still uses every clip of
            each of their subjects.
    Returns:
        clip id → DataFrame with one row per frame (``len == n_frames``) and the columns
        :data:`PROXY_COLUMNS`, float64 >= 0, NaN on frames without a face.

    Raises:
        DatasetError: a clip id not in the store.
    """
    known = store.clip_ids
    wanted = list(known) if clips is None else [str(c) for c in clips]
    missing = [c for c in wanted if c not in known]
    if missing:
        raise DatasetError(f"{store.path}: no clip {missing[0]!r}; see `facedyn info {store.path}`")
    subjects = {store.clip(c).subject for c in wanted}
    per_clip: dict[str, dict[str, np.ndarray]] = {}
    by_subject: dict[str, list[str]] = {}
    for cid in known:
        clip = store.clip(cid)
        if clip.subject not in subjects:
            continue
        lm = np.array(clip.landmarks, dtype=np.float64)
        lm[~np.asarray(clip.valid, dtype=bool)] = np.nan
        per_clip[cid] = measures(lm)
        by_subject.setdefault(clip.subject, []).append(cid)
    out: dict[str, pd.DataFrame] = {}
    rest: dict[tuple[str, str], float] = {}
    for subj, cids in by_subject.items():
        for col in PROXY_COLUMNS:
            rest[subj, col] = resting_level(np.concatenate([per_clip[c][col] for c in cids]))
    for cid in wanted:
        subj = store.clip(cid).subject
        out[cid] = pd.DataFrame({col: proxies_from_measures(per_clip[cid][col], rest[subj, col])
                                 for col in PROXY_COLUMNS})
    return out
