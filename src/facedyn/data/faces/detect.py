"""Face detection and 68 landmarks with dlib.

Models come from pip packages and are read from disk, never downloaded: dlib's HOG frontal face
detector (built into ``dlib``), and its CNN "mmod" detector plus the iBUG 68-point shape predictor
that ship as ``.dat`` files in ``face_recognition_models``. That package is located by path and not
imported (its ``__init__`` imports ``pkg_resources``, which current setuptools no longer has).

Images are RGB ``uint8 (H, W, 3)`` (grayscale ``(H, W)`` is accepted); landmarks ``(68, 2)``
float32 ``(x, y)`` in image pixels, iBUG-68 order.

Measured on the real clips of ``shared/data/real`` (process CPU time, one thread, on a shared
2-core machine; defaults ``upsample=1, max_side=480``): HOG found the face on every frame of the
five talking clips and single_face.mp4 (1841 frames) at 14–25 ms/frame including the predictor
(~2.3 ms); 0 of 95 frames of no_face.mp4 (41–59 ms/frame: a frame without a face is scanned twice,
see :class:`FaceLandmarker`); the enter/leave clips switch exactly at their cuts. The CNN
detector costs ~1.2 s per 480 px frame on this CPU: the robust option for hard footage (it also
found the face with sunglasses in multi_face.jpg that HOG missed), not the default.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from facedyn.data.faces.image import as_rgb
from facedyn.errors import ConfigError, FacedynError

__all__ = ["FaceLandmarker", "cnn_detector_path", "hog_detector", "predictor_path", "recognition_model_path"]


def _models_dir() -> Path:
    # Do not import face_recognition_models: its __init__ needs pkg_resources.
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        spec = None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        d = Path(loc) / "models"
        if d.is_dir():
            return d
    raise FacedynError(
        "face_recognition_models is not installed; install it with `pip install face-recognition-models==0.3.0`"
    )


def _model_file(name: str) -> Path:
    p = _models_dir() / name
    if not p.is_file():
        raise FacedynError(f"{p}: model file missing; reinstall with `pip install --force-reinstall "
                           "face-recognition-models==0.3.0`")
    return p


def predictor_path() -> Path:
    """Path of dlib's iBUG 68-point shape predictor (``shape_predictor_68_face_landmarks.dat``)."""
    return _model_file("shape_predictor_68_face_landmarks.dat")


def cnn_detector_path() -> Path:
    """Path of dlib's CNN face detector (``mmod_human_face_detector.dat``)."""
    return _model_file("mmod_human_face_detector.dat")


def recognition_model_path() -> Path:
    """Path of dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``, 128-D descriptors)."""
    return _model_file("dlib_face_recognition_resnet_model_v1.dat")


def _dlib() -> Any:
    try:
        import dlib
    except ImportError:
        raise FacedynError("dlib is not installed; install it with `pip install dlib-bin==20.0.1.post1`") from None
    return dlib


# Loaded once per process on first use (fork-safe: children share the parent's copy).
@functools.cache
def hog_detector() -> Any:
    """dlib's HOG frontal face detector (``dlib.fhog_object_detector``), shared by every user in the process."""
    return _dlib().get_frontal_face_detector()


@functools.cache
def _cnn_detector() -> Any:
    return _dlib().cnn_face_detection_model_v1(str(cnn_detector_path()))


@functools.cache
def _shape_predictor() -> Any:
    """The 68-point predictor, its 95 MB model on huge pages where the OS gives them (:mod:`facedyn.hugepages`:
    1.41 -> 0.99 ms a face on this project's machine, the same landmarks)."""
    from facedyn.hugepages import loaded_on

    with loaded_on():
        return _dlib().shape_predictor(str(predictor_path()))


# The 68-point predictor was trained on HOG-detector boxes. The CNN detector's boxes sit higher
# and are a little smaller: measured on 49 real frames (6 clips) where both found the face, the
# HOG box centre is +0.056 w right and +0.13 w lower, and 1.07x as wide. CNN boxes are mapped to
# that convention before the predictor runs, which cut the landmarks' distance from the HOG-box
# landmarks from 0.039 to 0.016 of the inter-ocular distance.
_CNN_TO_HOG = (0.056, 0.13, 1.07)


#: :meth:`FaceLandmarker.boxes_near`: the side a box is scaled to before its window is scanned (HOG finds faces of
#: ~80 px and up at the first scale), and how many box sides the window reaches beyond the box by default.
NEAR_FACE_PX = 100.0
NEAR_MARGIN = 0.3


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two boxes ``(left, top, right, bottom, ...)``, in [0, 1]."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _scaled(img: np.ndarray, f: float) -> tuple[np.ndarray, float]:
    """``img`` resized by about ``f`` (bilinear; ``cv2.pyrDown`` halvings first while shrinking by more than 2:
    cheap anti-aliasing, ``INTER_AREA`` costs ~10x more), and the exact factor of its width."""
    h, w = img.shape[:2]
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    if (nw, nh) == (w, h):
        return img, 1.0
    src = img
    while src.shape[1] >= 2 * nw + 2 and src.shape[0] >= 2 * nh + 2:
        src = cv2.pyrDown(src)
    return cv2.resize(src, (nw, nh), interpolation=cv2.INTER_LINEAR), nw / w


def _downscale(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Copy with longest side <= ``max_side``, and its factor (small px = full px * factor).

    Bilinear resize, after ``cv2.pyrDown`` halvings while the copy is under half the size (cheap
    anti-aliasing; ``INTER_AREA`` costs ~10x more).
    """
    f = max_side / max(img.shape[:2])
    return (img, 1.0) if f >= 1.0 else _scaled(img, f)


class FaceLandmarker:
    """Largest face's 68 landmarks in an RGB image, with dlib.

    Detection runs on a copy whose longest side is at most ``max_side`` px (speed); its box is
    mapped back and the 68-point shape predictor runs on the full-resolution image. The detector
    first scans at the copy's own scale and, only if nothing is found there, again with the image
    upsampled ``upsample`` times (each doubling finds faces half as small, at ~4x the cost). HOG
    finds faces whose side is >= ~80 px in the scanned copy (40 px with one upsampling).

    Cheap to construct and picklable: the dlib models are loaded on the first call and cached per
    process.

    Args:
        detector: ``"hog"`` (fast, frontal faces) or ``"cnn"`` (dlib's mmod CNN: tolerates more
            pose and blur, but ~1–2 s per 480 px frame on a CPU).
        upsample: most times the copy is upsampled when nothing is found at its own scale.
        max_side: longest side of the copy the detector scans.
    """

    def __init__(self, detector: Literal["hog", "cnn"] = "hog", upsample: int = 1, max_side: int = 480) -> None:
        if detector not in ("hog", "cnn"):
            raise ConfigError(f"--detector must be 'hog' or 'cnn', got {detector!r}")
        if not isinstance(upsample, int) or not 0 <= upsample <= 3:
            raise ConfigError(f"--upsample must be an integer in 0..3, got {upsample!r}")
        if not isinstance(max_side, int) or max_side < 64:
            raise ConfigError(f"--max-side must be an integer >= 64, got {max_side!r}")
        self.detector = detector
        self.upsample = upsample
        self.max_side = max_side

    def __repr__(self) -> str:
        return f"FaceLandmarker(detector={self.detector!r}, upsample={self.upsample}, max_side={self.max_side})"

    def load(self) -> FaceLandmarker:
        """Load the models now (otherwise done on the first call); returns self."""
        _shape_predictor()
        hog_detector() if self.detector == "hog" else _cnn_detector()
        return self

    # -- detection -----------------------------------------------------------------------------
    def _hog(self) -> Any:
        """The HOG detector this landmarker scans with: :func:`hog_detector` (another where scans run beside it,
        :mod:`facedyn.data.faces.ahead`)."""
        return hog_detector()

    def _scan(self, small: np.ndarray, upsample: int) -> list[tuple[float, float, float, float, float]]:
        """Boxes ``(left, top, right, bottom, score)`` in ``small``'s pixels."""
        if self.detector == "hog":
            rects, scores, _ = self._hog().run(small, upsample, 0.0)
            return [(r.left(), r.top(), r.right(), r.bottom(), float(sc)) for r, sc in zip(rects, scores, strict=True)]
        dx, dy, k = _CNN_TO_HOG
        boxes = []
        for d in _cnn_detector()(small, upsample):
            r = d.rect
            w = r.right() - r.left()
            cx = (r.left() + r.right()) / 2 + dx * w
            cy = (r.top() + r.bottom()) / 2 + dy * w
            half = k * w / 2
            boxes.append((cx - half, cy - half, cx + half, cy + half, float(d.confidence)))
        return boxes

    def boxes(self, image: np.ndarray, quick: bool = False) -> list[tuple[float, float, float, float, float]]:
        """Face boxes ``(left, top, right, bottom, score)`` in ``image`` pixels, largest first.

        ``quick=True`` tries upsampling 0, 1, ... ``upsample`` and stops at the first that finds
        anything (what ``__call__`` does); otherwise one scan with full upsampling finds all faces.
        """
        img = as_rgb(image)
        small, f = _downscale(img, self.max_side)
        found: list[tuple[float, float, float, float, float]] = []
        levels = range(self.upsample + 1) if quick else [self.upsample]
        for ups in levels:
            found = self._scan(small, ups)
            if found:
                break
        out = [(l / f, t / f, r / f, b / f, s) for l, t, r, b, s in found]
        return sorted(out, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))

    def boxes_near(self, image: np.ndarray, near: list[tuple[float, ...]], threshold: float = 0.0,
                   margin: float = NEAR_MARGIN) -> list[tuple[float, float, float, float, float]]:
        """Face boxes ``(left, top, right, bottom, score)`` (``image`` pixels, largest first) found by HOG scans of
        windows around the boxes ``near`` ``(l, t, r, b, ...)`` only: each window reaches ``margin`` box sides
        beyond its box and is scaled so that the box is :data:`NEAR_FACE_PX` px (HOG's window is 80), at the HOG
        ``threshold`` (its default decision is 0). A box found in two windows is kept once (IoU > 0.5: the
        higher score). At 512 px with a 230 px face and the default ``margin`` a window costs 0.22 of a
        :meth:`boxes` scan (4.4 against 20.4 ms, ``benchmarks/bench_analyze_parts.py``). HOG detectors only (the
        CNN's boxes: :meth:`boxes`)."""
        img = as_rgb(image)
        h, w = img.shape[:2]
        found: list[tuple[float, float, float, float, float]] = []
        for b in near:
            side = max(b[2] - b[0], b[3] - b[1], 1.0)
            x0, y0 = max(0, int(b[0] - margin * side)), max(0, int(b[1] - margin * side))
            x1, y1 = min(w, int(b[2] + margin * side) + 1), min(h, int(b[3] + margin * side) + 1)
            if x1 - x0 < 16 or y1 - y0 < 16:
                continue
            f = NEAR_FACE_PX / side
            win, f = _scaled(img[y0:y1, x0:x1], f)
            rects, scores, _ = self._hog().run(win, 0, threshold)
            for r, sc in zip(rects, scores, strict=True):
                found.append((r.left() / f + x0, r.top() / f + y0, r.right() / f + x0, r.bottom() / f + y0,
                              float(sc)))
        found.sort(key=lambda b: -b[4])
        kept: list[tuple[float, float, float, float, float]] = []
        for b in found:
            if all(_iou(b, k) <= 0.5 for k in kept):
                kept.append(b)
        return sorted(kept, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))

    def landmarks_in_box(self, image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        """68 landmarks ``(68, 2)`` float32 (image px) predicted inside ``box`` ``(l, t, r, b, ...)``."""
        img = as_rgb(image)
        dlib = _dlib()
        rect = dlib.rectangle(*(round(v) for v in box[:4]))
        shape = _shape_predictor()(img, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks ``(68, 2)`` float32 in ``image`` pixels of the largest face, or None.

        Args:
            image: RGB ``uint8 (H, W, 3)`` (or gray ``(H, W)``).
        """
        img = as_rgb(image)
        found = self.boxes(img, quick=True)
        if not found:
            return None
        return self.landmarks_in_box(img, found[0])

    def detect_all(self, image: np.ndarray) -> list[np.ndarray]:
        """Landmarks ``(68, 2)`` float32 of every face (scanned with full upsampling), largest first."""
        img = as_rgb(image)
        return [self.landmarks_in_box(img, b) for b in self.boxes(img)]

