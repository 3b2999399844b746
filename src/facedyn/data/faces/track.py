"""Following faces through a video: one face bridged over detection drop-outs, or every face with an id.

:class:`FittingTracker` follows the one (largest) face of a clip for ``prepare``, detecting only every
few frames and fitting the 68 points in between (:class:`LandmarkTracker` detects on every frame and
bridges drop-outs);
:class:`MultiFaceTracker` follows every face of each frame with a ``face_id`` per person across
frames, for ``analyze``, detecting on every frame or fitting between detections as ``FittingTracker``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from facedyn.data.faces.align import normalised_shape, shape_residual
from facedyn.data.faces.detect import FaceLandmarker, _iou
from facedyn.data.faces.image import as_rgb
from facedyn.data.faces.landmarks68 import TEMPLATE_68

if TYPE_CHECKING:
    from facedyn.tasks.pose import PoseFit, PoseTracker

__all__ = ["CONFIDENCE_MID", "CONFIDENCE_SCALE", "FULL_SCAN_EVERY", "MAX_FRONTAL_RESIDUAL", "MAX_POSE_STEP",
           "MAX_SCALE_CHANGE", "REDETECT_EVERY", "FittingTracker", "LandmarkTracker", "MultiFaceTracker", "TrackedFace",
           "fit_confidence"]

#: Fit-tracking detects on every this many frames at least (and wherever a fit degrades).
REDETECT_EVERY = 10
#: :class:`MultiFaceTracker` as ``analyze`` runs it (``track="fit"``): the whole frame is scanned for faces at least
#: every this many frames; the detections between scan windows around the faces being followed only
#: (:meth:`~facedyn.data.faces.detect.FaceLandmarker.boxes_near`, ~0.2 of the cost), so a face that enters is
#: found up to this many frames late (1.2 s at 25 frames/s).
FULL_SCAN_EVERY = 30
#: Largest :func:`shape_residual` of a fitted shape (face-like); the real clips' faces reach 0.051.
MAX_RESIDUAL = 0.06
#: Largest RMS change of the normalised shape between consecutive frames; the real clips reach 0.037.
MAX_SHAPE_CHANGE = 0.04
#: :class:`MultiFaceTracker`: largest change of a fitted face's width since its last detection (fraction).
#: Fits can drift outwards a frame at a time (jaw points first) on fast-moving heads: measured on talking_d12,
#: the width grew 14 % and 28 % in the 8th and 9th frames after a detection, 0.17–0.19 of the eye distance
#: away from detecting on those frames.
MAX_SCALE_CHANGE = 0.1
#: :class:`MultiFaceTracker`: largest :func:`~facedyn.tasks.pose.frontal_residual` of a fitted face (a face-like
#: shape in any pose: on 508 frames of 45 real clips the median is 0.021, the largest 0.068, on a face turned
#: beyond 30°; a confidence of 0.02).
MAX_FRONTAL_RESIDUAL = 0.07
#: :class:`MultiFaceTracker`: largest change of a fitted face's yaw, pitch or roll since the previous frame
#: (degrees). A fit that lands on the wrong shape often reads as a sudden turn (the pitch of two real clips
#: jumped 10-45° on fitted frames); a head turning fast enough to exceed it is simply detected on that frame.
MAX_POSE_STEP = 12.0
#: :func:`fit_confidence`: the frontal residual where the confidence is 0.5, and the logistic's scale (see there).
CONFIDENCE_MID = 0.041
CONFIDENCE_SCALE = 0.0075


class LandmarkTracker:
    """Frame-by-frame landmarks for one video, bridging short detection drop-outs honestly.

    Each frame goes to the :class:`FaceLandmarker`'s detector first; while a face was seen at most
    ``max_gap`` frames ago, the detection overlapping its last box is preferred over larger ones
    elsewhere. When no detection overlaps it, the HOG detector re-scans a window around that
    face's last box at a lowered threshold (``hint_threshold``, a HOG score; its default decision
    is at 0). The frame is accepted only if a box there overlaps the last one (IoU >= ``min_iou``)
    and the 68-point shape predicted in it is face-like (:func:`shape_residual` <=
    ``max_residual``) and close to the last accepted shape (RMS difference after similarity
    normalisation <= ``max_shape_change``, crop fractions); otherwise the largest detection
    elsewhere is taken, or, with none, the frame stays invalid. Cuts to footage without a face
    therefore stay invalid, and no frame is guessed unless a face was seen just before it.

    Thresholds from the real clips (1841 frames with a face): ``shape_residual`` is at most 0.051; the
    normalised shape changes between consecutive frames by at most 0.037 (99.9th pct 0.033). With
    a black bar over nose and mouth, the shapes predicted in hinted boxes were misplaced and changed
    by 0.043–0.059, so they are rejected.

    Call :meth:`reset` between videos. ``last_source`` says how the last frame was resolved:
    ``"detect"``, ``"track"`` or ``None`` (no face).
    """

    def __init__(
        self,
        landmarker: FaceLandmarker | None = None,
        max_gap: int = 5,
        hint_threshold: float = -0.6,
        min_iou: float = 0.3,
        max_residual: float = MAX_RESIDUAL,
        max_shape_change: float = MAX_SHAPE_CHANGE,
    ) -> None:
        self.landmarker = landmarker or FaceLandmarker()
        self.max_gap = max_gap
        self.hint_threshold = hint_threshold
        self.min_iou = min_iou
        self.max_residual = max_residual
        self.max_shape_change = max_shape_change
        self.reset()

    def reset(self) -> None:
        """Forget the previous face (start of a new video)."""
        self._box: tuple[float, float, float, float] | None = None
        self._shape: np.ndarray | None = None
        self._since = 0
        self.last_source: str | None = None

    def _track(self, img: np.ndarray) -> tuple[tuple[float, ...], np.ndarray] | None:
        assert self._box is not None and self._shape is not None
        near = [b for b in self.landmarker.boxes_near(img, [self._box], self.hint_threshold, margin=1.0)
                if _iou(b, self._box) >= self.min_iou]
        if not near:
            return None
        best = max(near, key=lambda b: b[4])
        lm = self.landmarker.landmarks_in_box(img, best)
        if shape_residual(lm) > self.max_residual:
            return None
        change = np.sqrt(((normalised_shape(lm) - self._shape) ** 2).sum(1).mean())
        if change > self.max_shape_change:
            return None
        return best, lm

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks ``(68, 2)`` float32 (image px) of the tracked face in this frame, or None.

        Args:
            image: RGB ``uint8 (H, W, 3)``, the next frame of the video.
        """
        img = as_rgb(image)
        found = self.landmarker.boxes(img, quick=True)
        lm: np.ndarray | None = None
        source: str | None = None
        box: tuple[float, ...] = ()
        recent = self._box is not None and self._since < self.max_gap
        if recent:
            # Keep following the same face: a detection overlapping the last box wins; failing
            # that, the hinted re-scan; only then a detection elsewhere (a new face or a cut).
            assert self._box is not None
            near = [b for b in found if _iou(b, self._box) >= self.min_iou]
            if near:
                box = near[0]
            else:
                hit = self._track(img)
                if hit is not None:
                    box, lm = hit
                    source = "track"
                elif found:
                    box = found[0]
        elif found:
            box = found[0]
        if box and lm is None:
            lm, source = self.landmarker.landmarks_in_box(img, box), "detect"
        if lm is None:
            self._since += 1
        else:
            self._box = (box[0], box[1], box[2], box[3])
            self._shape = normalised_shape(lm)
            self._since = 0
        self.last_source = source
        return lm


_Box = tuple[float, float, float, float]


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance between two ``(68, 2)`` point sets."""
    return float(np.sqrt(((a - b) ** 2).sum(1).mean()))


def _lm_box(lm: np.ndarray) -> tuple[float, float, float]:
    """Centre ``(cx, cy)`` and width of the landmarks' bounding box."""
    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    return float(x0 + x1) / 2, float(y0 + y1) / 2, float(max(x1 - x0, 1.0))


def fit_confidence(residual: float) -> float:
    """How likely the landmarks are right, in [0, 1], from their :func:`~facedyn.tasks.pose.frontal_residual`
    (a measure of how face-like they are once the head pose and the facial actions are taken out, so a turned
    head or an open mouth does not lower it): ``1 / (1 + exp((residual - CONFIDENCE_MID) / CONFIDENCE_SCALE))``.

    Calibrated on 1 382 dlib fits of synthetic faces whose landmarks are known (26 people, yaw -45..45°, pitch
    -25..25°, two random AUs up to intensity 3; fitted in the detector's box, in boxes shifted by up to 15 % and
    scaled by 0.85-1.15, and by :class:`MultiFaceTracker` on the next frame after a small move): a logistic
    regression of whether the fit's mean error over the 68 points is below 0.2 inter-ocular distances on the
    residual, so the value reads as that probability. On other synthetic people the Spearman correlation of
    confidence and minus the error is 0.69 and well-fitted faces turned >= 30° keep 0.98 of the frontal faces'
    mean confidence (``tests/tasks/test_turned_heads.py``); on 508 frames of 45 real clips the mean is 0.92 at
    |yaw| < 10°, 0.77 at 20-30°, 0.26 beyond 30°. NaN residual → 0.
    """
    if not np.isfinite(residual):
        return 0.0
    return float(1.0 / (1.0 + np.exp(min(50.0, (residual - CONFIDENCE_MID) / CONFIDENCE_SCALE))))


class _FaceFit:
    """One followed face: its last landmarks and normalised shape, and where a detector box lies relative to
    its landmarks (centre offset and side in units of the landmarks' width, re-measured at each detection: a
    per-face calibration, since the 68-point predictor was trained on HOG boxes)."""

    def __init__(self) -> None:
        self.lm: np.ndarray | None = None
        self.shape: np.ndarray | None = None
        self.calib: tuple[float, float, float] = (0.0, 0.1, 1.1)  # replaced by the first detection
        self.width = 0.0  # the landmarks' width at the last detection
        self.poses: PoseTracker | None = None  # MultiFaceTracker: the face's head pose, on its own shape
        self.last_pose: np.ndarray | None = None  # (yaw, pitch, roll) of the last frame

    def box(self, lm: np.ndarray | None = None) -> _Box:
        """The detector box predicted for landmarks ``lm`` (default: the last ones)."""
        cx, cy, w = _lm_box(self.lm if lm is None else lm)
        dx, dy, s = self.calib
        half = s * w / 2
        return cx + dx * w - half, cy + dy * w - half, cx + dx * w + half, cy + dy * w + half

    def detected(self, box: Sequence[float], lm: np.ndarray) -> float:
        """Take a detection (box and the landmarks fitted in it): recalibrate; returns the shape's residual."""
        cx, cy, w = _lm_box(lm)
        side = ((box[2] - box[0]) + (box[3] - box[1])) / 2
        self.calib = (((box[0] + box[2]) / 2 - cx) / w, ((box[1] + box[3]) / 2 - cy) / w, side / w)
        self.lm, self.width = lm, w
        if not np.isfinite(lm).all():
            self.shape = None
            return float("nan")
        self.shape = normalised_shape(lm)
        return _rms(self.shape, TEMPLATE_68)

    def fit(self, landmarker: FaceLandmarker, img: np.ndarray, max_residual: float | None, max_shape_change: float,
            max_scale_change: float | None = None) -> tuple[np.ndarray, float] | None:
        """Fit the 68 points in the box predicted from the last landmarks; ``(landmarks, residual)`` when the
        shape is face-like (residual <= ``max_residual``; None: not checked here), close to the last one (RMS
        change of the normalised shapes <= ``max_shape_change``) and, with ``max_scale_change``, no wider or
        narrower than at the last detection by more than that fraction (fits can drift outwards a little at
        each frame); else None (nothing changes)."""
        lm = landmarker.landmarks_in_box(img, self.box())
        if not np.isfinite(lm).all():
            return None
        if max_scale_change is not None and abs(_lm_box(lm)[2] / max(self.width, 1.0) - 1.0) > max_scale_change:
            return None
        shape = normalised_shape(lm)
        residual = _rms(shape, TEMPLATE_68)  # shape_residual(lm), without normalising twice
        if ((max_residual is not None and residual > max_residual)
                or (self.shape is not None and _rms(shape, self.shape) > max_shape_change)):
            return None
        self.lm, self.shape = lm, shape
        return lm, residual


@dataclass(frozen=True, eq=False)
class TrackedFace:
    """One face in one frame, as :class:`MultiFaceTracker` found it.

    Attributes:
        face_id: the person's id in this video: 0, 1, 2, ... in order of first appearance.
        landmarks: ``(68, 2)`` float32 in image pixels, iBUG-68 order.
        box: face box ``(left, top, right, bottom)`` in image pixels: the detector's box where the detector
            ran, else the box it would give, placed from the landmarks by the face's calibration.
        confidence: :func:`fit_confidence` of the landmarks, in [0, 1].
        detected: whether the detector found the face in this frame (False: fitted from the last frame).
        pose: the head pose fit of the landmarks (:class:`~facedyn.tasks.pose.PoseFit`, on the face's own
            shape: :class:`~facedyn.tasks.pose.PoseTracker`), None where it failed.
    """

    face_id: int
    landmarks: np.ndarray
    box: tuple[float, float, float, float]
    confidence: float = 1.0
    detected: bool = True
    pose: PoseFit | None = None


class MultiFaceTracker:
    """Every face of each frame, with a ``face_id`` kept per person across the frames of a video.

    Detection frames: the :class:`FaceLandmarker`'s detector finds all face boxes
    (:meth:`FaceLandmarker.boxes`), the 68-point predictor runs in each, and :meth:`assign_ids`
    gives each box an id by overlap with the tracks, i.e. the last box of each face seen in the
    previous ``max_gap`` frames: greedily, highest IoU first, one detection per track and one
    track per detection, pairs with IoU < ``min_iou`` never matched. A detection left unmatched
    starts a new id; ids count up from 0 in order of first appearance, and new faces of one frame
    are numbered left to right (by box left edge, then top). A face missing for ``max_gap``
    consecutive frames or more is forgotten: when it comes back it gets a new id.

    ``redetect_every`` = 1 detects on every frame. With ``redetect_every`` = N > 1 (fit-tracking, as
    :class:`FittingTracker` for one face): between detections, which come at least every N frames,
    each face of the previous frame is fitted in the box predicted from its last landmarks and keeps its
    id; the frame is detected instead when any fit degrades (a shape that is not face-like in its pose,
    :func:`~facedyn.tasks.pose.frontal_residual` > ``max_frontal_residual``, or that changed too much since the
    last frame, see :class:`FittingTracker`; a head pose that moved by more than ``max_pose_step`` degrees since
    the last frame; a face whose width changed by more than ``max_scale_change`` since its last detection),
    when two fits land on one face (box IoU > 0.5), when
    the previous frame had no face, and while a face the detector missed could still keep its id (it was
    seen in the last ``max_gap`` frames): each frame is detected until it is found again or forgotten.
    Faces that enter are found at the next detection, at most N - 1 frames later; with ``full_scan_every`` F > N,
    only every detection at least F frames after the last whole-frame scan scans the whole frame again, the others
    scan windows around the faces being followed (:meth:`FaceLandmarker.boxes_near`), and a frame where that
    misses one of them is scanned whole: faces that enter are then found at most F - 1 frames later.

    Matching is by box overlap only (no motion model): ids follow faces that move less than about
    half a box width per frame, and two faces whose boxes overlap (one passing in front of the
    other) may swap ids.

    ``quick=True`` (video) stops the detector at the first upsampling level that finds any face, so
    small faces beside a large one can be missed; for still images use ``quick=False`` (a full
    scan with ``landmarker.upsample``). Call :meth:`reset` between videos.

    Args:
        landmarker: detector and predictor (default :class:`FaceLandmarker` ``()``).
        min_iou: least box IoU for a detection to continue a track.
        max_gap: a track is matched while it was last seen at most ``max_gap`` frames ago (>= 1).
        quick: passed to :meth:`FaceLandmarker.boxes`.
        redetect_every: detect on every frame (1) or at least every this many frames, fitting in between.
        full_scan_every: scan the whole frame at least every this many frames, the detections between around the
            faces followed (:data:`FULL_SCAN_EVERY`: ``analyze``'s); None: the whole frame at every detection.
        max_residual: not used (the 2-D shape check of :class:`FittingTracker`; a turned face fails it).
        max_shape_change, max_scale_change, max_frontal_residual, max_pose_step: when a fit degrades (see above;
            None: no scale check).
        focal: the camera of the faces' pose fits (:func:`~facedyn.tasks.pose.fit_pose`; default
            :data:`~facedyn.tasks.pose.FOCAL_FACES`).

    Each face's head pose is fitted on every frame, on a template adapted to the face
    (:class:`~facedyn.tasks.pose.PoseTracker`), and given with its :func:`fit_confidence` in each
    :class:`TrackedFace`.
    """

    def __init__(
        self,
        landmarker: FaceLandmarker | None = None,
        min_iou: float = 0.3,
        max_gap: int = 5,
        quick: bool = True,
        redetect_every: int = 1,
        full_scan_every: int | None = None,
        max_residual: float = MAX_RESIDUAL,
        max_shape_change: float = MAX_SHAPE_CHANGE,
        max_scale_change: float | None = MAX_SCALE_CHANGE,
        max_frontal_residual: float = MAX_FRONTAL_RESIDUAL,
        max_pose_step: float = MAX_POSE_STEP,
        focal: float | None = None,
    ) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
        if max_gap < 1:
            raise ValueError(f"max_gap must be >= 1, got {max_gap}")
        if redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1, got {redetect_every}")
        self.landmarker = landmarker or FaceLandmarker()
        self.min_iou = float(min_iou)
        self.max_gap = int(max_gap)
        self.quick = bool(quick)
        self.redetect_every = int(redetect_every)
        if full_scan_every is not None and full_scan_every < 1:
            raise ValueError(f"full_scan_every must be >= 1, got {full_scan_every}")
        self.full_scan_every = None if full_scan_every is None else int(full_scan_every)
        self.max_residual = max_residual
        self.max_shape_change = max_shape_change
        self.max_scale_change = max_scale_change
        self.max_frontal_residual = float(max_frontal_residual)
        self.max_pose_step = float(max_pose_step)
        from facedyn.tasks.pose import FOCAL_FACES

        self.focal = float(FOCAL_FACES if focal is None else focal)
        self.reset()

    def __repr__(self) -> str:
        return (f"MultiFaceTracker({self.landmarker!r}, min_iou={self.min_iou}, max_gap={self.max_gap}, "
                f"quick={self.quick}, redetect_every={self.redetect_every}, full_scan_every={self.full_scan_every})")

    def load(self) -> MultiFaceTracker:
        """Load the detector and predictor and compute the head pose fit's constants now (otherwise done on the
        first frames); returns self. A process forked afterwards shares them: ``analyze``'s child for each video
        would otherwise load them again (the pose constants alone took ~0.12 s a video)."""
        from facedyn.tasks.pose import precompute

        self.landmarker.load()
        precompute()
        return self

    def reset(self) -> None:
        """Forget every face and restart the ids at 0 (start of a new video)."""
        self._tracks: dict[int, tuple[_Box, int]] = {}  # face_id -> (last box, frame it was seen)
        self._fits: dict[int, _FaceFit] = {}  # faces of the previous frame, to fit in this one
        self._frame = 0  # index of the next frame
        self._next_id = 0
        self._since = 0  # frames since the last detection
        self._last_full = -(self.full_scan_every or 1)  # frame of the last whole-frame scan
        self.detections = 0  # frames the detector ran on
        self.full_scans = 0  # ... of them scanned whole

    def _advance(self, seen: dict[int, _Box]) -> None:
        """Close the current frame: the faces ``seen`` in it (id -> box) become their tracks' last boxes."""
        frame = self._frame
        self._frame += 1
        for fid, box in seen.items():
            self._tracks[fid] = (box, frame)
        # forget faces that can no longer be matched (keeps the table small over long videos)
        self._tracks = {fid: t for fid, t in self._tracks.items() if frame + 1 - t[1] <= self.max_gap}

    def assign_ids(self, boxes: Sequence[Sequence[float]]) -> list[int]:
        """Ids of this frame's face boxes (the matching step alone, no image); advances one frame.

        Args:
            boxes: ``(left, top, right, bottom, ...)`` in image pixels, one per detected face, in
                any order (items after the fourth, e.g. a score, are ignored).

        Returns:
            One ``face_id`` per box, in the order of ``boxes``; all different.
        """
        frame = self._frame
        dets: list[_Box] = [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in boxes]
        live = {fid: box for fid, (box, seen) in self._tracks.items() if frame - seen <= self.max_gap}
        pairs = sorted(
            ((iou, fid, j) for fid, box in live.items() for j, det in enumerate(dets)
             if (iou := _iou(box, det)) >= self.min_iou),
            key=lambda p: (-p[0], p[1], p[2]),
        )
        ids: dict[int, int] = {}  # detection index -> face_id
        taken: set[int] = set()
        for _, fid, j in pairs:
            if j not in ids and fid not in taken:
                ids[j] = fid
                taken.add(fid)
        for j in sorted((j for j in range(len(dets)) if j not in ids), key=lambda j: (dets[j][0], dets[j][1], j)):
            ids[j] = self._next_id
            self._next_id += 1
        self._advance({fid: dets[j] for j, fid in ids.items()})
        return [ids[j] for j in range(len(dets))]

    def _pose(self, fit: _FaceFit, lm: np.ndarray) -> tuple[PoseFit | None, float]:
        """The pose fit of landmarks ``lm`` on ``fit``'s face (not yet taken into its shape), and its residual."""
        from facedyn.tasks.pose import PoseTracker, frontal_residual

        if fit.poses is None:
            fit.poses = PoseTracker(self.focal)
        pf = fit.poses.fit(lm) if np.isfinite(lm).all() else None
        return pf, (frontal_residual(lm, pf) if pf is not None else float("nan"))

    @staticmethod
    def _accept(fit: _FaceFit, lm: np.ndarray, pf: PoseFit | None) -> None:
        """Take an accepted frame's pose into its face's shape and remember it for the next frame's check."""
        if pf is not None and fit.poses is not None:
            fit.poses.update(pf, lm)
        fit.last_pose = pf.pose if pf is not None else None

    def _fit_all(self, img: np.ndarray) -> list[TrackedFace] | None:
        """Every face of the previous frame fitted in this one, or None where any fit degrades."""
        out, poses = [], []
        for fid, fit in self._fits.items():
            hit = fit.fit(self.landmarker, img, None, self.max_shape_change, self.max_scale_change)
            if hit is None:
                return None
            lm = hit[0]
            pf, residual = self._pose(fit, lm)
            if pf is None or not residual <= self.max_frontal_residual:
                return None  # not a face in any pose
            if fit.last_pose is not None and np.abs(pf.pose - fit.last_pose).max() > self.max_pose_step:
                return None  # the head jumped: more likely a fit gone wrong
            out.append(TrackedFace(fid, lm, fit.box(), fit_confidence(residual), False, pf))
            poses.append((fit, lm, pf))
        if any(_iou(a.box, b.box) > 0.5 for k, a in enumerate(out) for b in out[k + 1:]):
            return None  # two fits converged onto one face
        for fit, lm, pf in poses:
            self._accept(fit, lm, pf)
        return out

    def _near_boxes(self, img: np.ndarray) -> list[tuple[float, ...]] | None:
        """A detection between whole-frame scans: the boxes found around the faces followed, one per face, or
        None where the whole frame is due to be scanned or a face followed was not found near its box."""
        if (self.full_scan_every is None or self._frame - self._last_full >= self.full_scan_every or not self._fits
                or not set(self._tracks) <= set(self._fits)):
            return None
        predicted = [fit.box() for fit in self._fits.values()]
        found = self.landmarker.boxes_near(img, predicted)
        boxes: list[tuple[float, ...]] = []
        for prev in predicted:
            best = max(found, key=lambda b: _iou(b, prev), default=None)
            if best is None or _iou(best, prev) < self.min_iou or any(best is b for b in boxes):
                return None
            boxes.append(best)
        return boxes

    def _detect(self, img: np.ndarray) -> list[TrackedFace]:
        self.detections += 1
        self._since = 0
        near = self._near_boxes(img)
        if near is None:
            self.full_scans += 1
            self._last_full = self._frame
        found = self.landmarker.boxes(img, quick=self.quick) if near is None else near
        boxes = [b[:4] for b in found]
        ids = self.assign_ids(boxes)
        faces, fits = [], {}
        for fid, b in zip(ids, boxes, strict=True):
            fit = self._fits.get(fid) or _FaceFit()
            lm = self.landmarker.landmarks_in_box(img, b)
            fit.detected(b, lm)
            pf, residual = self._pose(fit, lm)
            self._accept(fit, lm, pf)
            if fit.shape is not None:
                fits[fid] = fit
            faces.append(TrackedFace(fid, lm, (b[0], b[1], b[2], b[3]), fit_confidence(residual), True, pf))
        self._fits = fits
        return faces

    def __call__(self, image: np.ndarray) -> list[TrackedFace]:
        """Every face in this frame, sorted by ``face_id``.

        Args:
            image: RGB ``uint8 (H, W, 3)`` (or gray ``(H, W)``), the next frame of the video.

        Returns:
            One :class:`TrackedFace` per face (landmarks ``(68, 2)`` float32 in ``image`` pixels);
            empty where no face was found (the frame still counts for ``max_gap``).
        """
        img = as_rgb(image)
        faces = None
        # fit only while every face that can still keep its id is being fitted: after a face was lost (the
        # detector missed it), detect on each frame until it is found again or its track expires
        if self._fits and self._since < self.redetect_every - 1 and set(self._tracks) <= set(self._fits):
            faces = self._fit_all(img)
            if faces is not None:
                self._since += 1
                self._advance({f.face_id: f.box for f in faces})
        if faces is None:
            faces = self._detect(img)
        return sorted(faces, key=lambda f: f.face_id)


class FittingTracker:
    """The largest face's 68 landmarks in each frame of a video, detecting only when needed.

    dlib's 68-point shape predictor costs ~2–3 ms per face; the HOG detector 10–50 ms per frame. This
    detects on the first frame, every ``redetect_every`` frames, and whenever the fit degrades; on the
    other frames it fits the shape predictor in the box predicted from the previous frame's landmarks.
    The predictor was trained on HOG boxes, so the box is placed relative to the landmarks the way the
    last real detection box lay relative to its landmarks (centre offset and side, in units of the
    landmarks' width, re-measured at every detection: a per-video calibration). A fit is accepted when its
    shape is face-like (:func:`shape_residual` <= ``max_residual``) and close to the previous frame's
    (RMS difference of the similarity-normalised shapes <= ``max_shape_change``); otherwise the frame is
    detected again. The thresholds are those of :class:`LandmarkTracker` (measured on the real clips).

    ``last_source`` says how the last frame was resolved: ``"detect"``, ``"fit"`` or ``None`` (no face).
    Call :meth:`reset` between videos (or at a cut).
    """

    def __init__(self, landmarker: FaceLandmarker | None = None, redetect_every: int = REDETECT_EVERY,
                 max_residual: float = MAX_RESIDUAL, max_shape_change: float = MAX_SHAPE_CHANGE) -> None:
        if redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1, got {redetect_every}")
        self.landmarker = landmarker or FaceLandmarker()
        self.redetect_every = int(redetect_every)
        self.max_residual = max_residual
        self.max_shape_change = max_shape_change
        self.reset()

    def reset(self) -> None:
        """Forget the face (start of a new video or segment)."""
        self._face = _FaceFit()
        self._since = 0
        self.last_source: str | None = None
        self.detections = 0

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks ``(68, 2)`` float32 (image px) of the face in this frame, or None.

        Args:
            image: RGB ``uint8 (H, W, 3)``, the next frame of the video.
        """
        img = as_rgb(image)
        face = self._face
        if face.lm is not None and self._since < self.redetect_every - 1:
            hit = face.fit(self.landmarker, img, self.max_residual, self.max_shape_change)
            if hit is not None:
                self._since, self.last_source = self._since + 1, "fit"
                return hit[0]
        found = self.landmarker.boxes(img, quick=True)
        self.detections += 1
        if not found:
            face.lm, face.shape, self.last_source = None, None, None
            return None
        box = found[0]
        if face.lm is not None:  # stay with the face we follow when several are found
            prev = face.box()
            box = max(found, key=lambda b: _iou(b, prev))
            if _iou(box, prev) < 0.3:
                box = found[0]
        lm = self.landmarker.landmarks_in_box(img, box)
        face.detected(box, lm)
        self._since, self.last_source = 0, "detect"
        return lm
