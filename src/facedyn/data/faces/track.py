"""Following faces through a video: one face bridged over detection drop-outs, or every face with an id.

:class:`LandmarkTracker` follows the one (largest) face of a clip, for ``prepare``;
:class:`MultiFaceTracker` finds every face of each frame and keeps a ``face_id`` per person across
frames by box overlap, for ``analyze``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from facedyn.data.faces.align import normalised_shape, shape_residual
from facedyn.data.faces.detect import FaceLandmarker, hog_detector
from facedyn.data.faces.image import as_rgb
from facedyn.data.faces.landmarks68 import TEMPLATE_68

__all__ = ["FittingTracker", "LandmarkTracker", "MultiFaceTracker", "TrackedFace"]


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes ``(left, top, right, bottom, ...)``, in [0, 1]."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


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
        max_residual: float = 0.06,
        max_shape_change: float = 0.04,
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
        l, t, r, b = self._box
        side = r - l
        h, w = img.shape[:2]
        x0, y0 = max(0, int(l - side)), max(0, int(t - side))
        x1, y1 = min(w, int(r + side) + 1), min(h, int(b + side) + 1)
        if x1 - x0 < 16 or y1 - y0 < 16:
            return None
        # Scale the window so the face is ~100 px (HOG's window is 80 px).
        f = 100.0 / max(side, 1.0)
        win = cv2.resize(img[y0:y1, x0:x1], (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f))),
                         interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        rects, scores, _ = hog_detector().run(win, 0, self.hint_threshold)
        best = None
        for rc, sc in zip(rects, scores, strict=True):
            box = (rc.left() / f + x0, rc.top() / f + y0, rc.right() / f + x0, rc.bottom() / f + y0)
            if _iou(box, self._box) >= self.min_iou and (best is None or sc > best[4]):
                best = (*box, float(sc))
        if best is None:
            return None
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


@dataclass(frozen=True, eq=False)
class TrackedFace:
    """One face in one frame, as :class:`MultiFaceTracker` found it.

    Attributes:
        face_id: the person's id in this video: 0, 1, 2, ... in order of first appearance.
        landmarks: ``(68, 2)`` float32 in image pixels, iBUG-68 order.
        box: detector box ``(left, top, right, bottom)`` in image pixels.
    """

    face_id: int
    landmarks: np.ndarray
    box: tuple[float, float, float, float]


class MultiFaceTracker:
    """Every face of each frame, with a ``face_id`` kept per person across the frames of a video.

    Each frame: the :class:`FaceLandmarker`'s detector finds all face boxes
    (:meth:`FaceLandmarker.boxes`), the 68-point predictor runs in each, and :meth:`assign_ids`
    gives each box an id by overlap with the tracks, i.e. the last box of each face seen in the
    previous ``max_gap`` frames: greedily, highest IoU first, one detection per track and one
    track per detection, pairs with IoU < ``min_iou`` never matched. A detection left unmatched
    starts a new id; ids count up from 0 in order of first appearance, and new faces of one frame
    are numbered left to right (by box left edge, then top). A face missing for ``max_gap``
    consecutive frames or more is forgotten: when it comes back it gets a new id.

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
    """

    def __init__(
        self,
        landmarker: FaceLandmarker | None = None,
        min_iou: float = 0.3,
        max_gap: int = 5,
        quick: bool = True,
    ) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
        if max_gap < 1:
            raise ValueError(f"max_gap must be >= 1, got {max_gap}")
        self.landmarker = landmarker or FaceLandmarker()
        self.min_iou = float(min_iou)
        self.max_gap = int(max_gap)
        self.quick = bool(quick)
        self.reset()

    def __repr__(self) -> str:
        return (f"MultiFaceTracker({self.landmarker!r}, min_iou={self.min_iou}, max_gap={self.max_gap}, "
                f"quick={self.quick})")

    def reset(self) -> None:
        """Forget every face and restart the ids at 0 (start of a new video)."""
        self._tracks: dict[int, tuple[_Box, int]] = {}  # face_id -> (last box, frame it was seen)
        self._frame = 0  # index of the next frame
        self._next_id = 0

    def assign_ids(self, boxes: Sequence[Sequence[float]]) -> list[int]:
        """Ids of this frame's face boxes (the matching step alone, no image); advances one frame.

        Args:
            boxes: ``(left, top, right, bottom, ...)`` in image pixels, one per detected face, in
                any order (items after the fourth, e.g. a score, are ignored).

        Returns:
            One ``face_id`` per box, in the order of ``boxes``; all different.
        """
        frame = self._frame
        self._frame += 1
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
        for j, fid in ids.items():
            self._tracks[fid] = (dets[j], frame)
        # forget faces that can no longer be matched (keeps the table small over long videos)
        self._tracks = {fid: t for fid, t in self._tracks.items() if frame + 1 - t[1] <= self.max_gap}
        return [ids[j] for j in range(len(dets))]

    def __call__(self, image: np.ndarray) -> list[TrackedFace]:
        """Every face in this frame, sorted by ``face_id``.

        Args:
            image: RGB ``uint8 (H, W, 3)`` (or gray ``(H, W)``), the next frame of the video.

        Returns:
            One :class:`TrackedFace` per detected face (landmarks ``(68, 2)`` float32 in
            ``image`` pixels); empty where no face was found (the frame still counts for
            ``max_gap``).
        """
        img = as_rgb(image)
        boxes = [b[:4] for b in self.landmarker.boxes(img, quick=self.quick)]
        ids = self.assign_ids(boxes)
        faces = [TrackedFace(fid, self.landmarker.landmarks_in_box(img, b), (b[0], b[1], b[2], b[3]))
                 for fid, b in zip(ids, boxes, strict=True)]
        return sorted(faces, key=lambda f: f.face_id)


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance between two ``(68, 2)`` point sets."""
    return float(np.sqrt(((a - b) ** 2).sum(1).mean()))


def _lm_box(lm: np.ndarray) -> tuple[float, float, float]:
    """Centre ``(cx, cy)`` and width of the landmarks' bounding box."""
    x0, y0 = lm.min(0)
    x1, y1 = lm.max(0)
    return float(x0 + x1) / 2, float(y0 + y1) / 2, float(max(x1 - x0, 1.0))


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

    def __init__(self, landmarker: FaceLandmarker | None = None, redetect_every: int = 10,
                 max_residual: float = 0.06, max_shape_change: float = 0.04) -> None:
        if redetect_every < 1:
            raise ValueError(f"redetect_every must be >= 1, got {redetect_every}")
        self.landmarker = landmarker or FaceLandmarker()
        self.redetect_every = int(redetect_every)
        self.max_residual = max_residual
        self.max_shape_change = max_shape_change
        self.reset()

    def reset(self) -> None:
        """Forget the face (start of a new video or segment)."""
        self._lm: np.ndarray | None = None
        self._shape: np.ndarray | None = None  # normalised_shape(self._lm), kept for the next frame
        self._calib: tuple[float, float, float] = (0.0, 0.1, 1.1)  # replaced by the first detection
        self._since = 0
        self.last_source: str | None = None
        self.detections = 0

    def _predicted_box(self, lm: np.ndarray) -> tuple[float, float, float, float]:
        cx, cy, w = _lm_box(lm)
        dx, dy, s = self._calib
        half = s * w / 2
        return cx + dx * w - half, cy + dy * w - half, cx + dx * w + half, cy + dy * w + half

    def _accepted_shape(self, lm: np.ndarray) -> np.ndarray | None:
        """The normalised shape of a fit that is face-like and close to the last one, else None."""
        if not np.isfinite(lm).all():
            return None
        shape = normalised_shape(lm)
        if _rms(shape, TEMPLATE_68) > self.max_residual:  # shape_residual(lm), without normalising twice
            return None
        if self._shape is not None and _rms(shape, self._shape) > self.max_shape_change:
            return None
        return shape

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks ``(68, 2)`` float32 (image px) of the face in this frame, or None.

        Args:
            image: RGB ``uint8 (H, W, 3)``, the next frame of the video.
        """
        img = as_rgb(image)
        if self._lm is not None and self._since < self.redetect_every - 1:
            lm = self.landmarker.landmarks_in_box(img, self._predicted_box(self._lm))
            shape = self._accepted_shape(lm)
            if shape is not None:
                self._lm, self._shape, self._since, self.last_source = lm, shape, self._since + 1, "fit"
                return lm
        found = self.landmarker.boxes(img, quick=True)
        self.detections += 1
        if not found:
            self._lm, self._shape, self.last_source = None, None, None
            return None
        box = found[0]
        if self._lm is not None:  # stay with the face we follow when several are found
            prev = self._predicted_box(self._lm)
            box = max(found, key=lambda b: _iou(b, prev))
            if _iou(box, prev) < 0.3:
                box = found[0]
        lm = self.landmarker.landmarks_in_box(img, box)
        cx, cy, w = _lm_box(lm)
        side = ((box[2] - box[0]) + (box[3] - box[1])) / 2
        self._calib = (((box[0] + box[2]) / 2 - cx) / w, ((box[1] + box[3]) / 2 - cy) / w, side / w)
        self._lm, self._since, self.last_source = lm, 0, "detect"
        self._shape = normalised_shape(lm) if np.isfinite(lm).all() else None
        return lm
