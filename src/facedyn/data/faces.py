"""Face detection, 68 landmarks, similarity alignment to a canonical template, convex-hull mask.

Models come from pip packages and are read from disk, never downloaded: dlib's HOG frontal face
detector (built into ``dlib``), and its CNN "mmod" detector plus the iBUG 68-point shape predictor
that ship as ``.dat`` files in ``face_recognition_models``. That package is located by path and not
imported (its ``__init__`` imports ``pkg_resources``, which current setuptools no longer has).

Conventions:

* Images are RGB ``uint8 (H, W, 3)`` (grayscale ``(H, W)`` is accepted by the detector).
* Landmarks are ``(68, 2)`` float ``(x, y)`` in pixels, iBUG-68 order (jaw 0–16, brows 17–26, nose
  27–35, eyes 36–47, mouth 48–67), pixel centres at integer coordinates (OpenCV's convention).
* A crop is ``size x size``; :data:`TEMPLATE_68` lives in ``[0, 1]^2`` over the whole crop and
  :func:`template` maps it to crop pixels, so crops of any size show the same region of the face.
* An alignment matrix is a ``(2, 3)`` float64 similarity ``M``: ``crop_xy = M[:, :2] @ xy + M[:, 2]``.

Measured on the real clips of ``shared/data/real`` (process CPU time, one thread, on a shared
2-core machine; defaults ``upsample=1, max_side=480``): HOG found the face on every frame of the
five talking clips and single_face.mp4 (1841 frames) at 14–25 ms/frame including the predictor
(~2.3 ms); 0 of 95 frames of no_face.mp4 (41–59 ms/frame: a frame without a face is scanned twice,
see :class:`FaceLandmarker`); the enter/leave clips switch exactly at their cuts. Alignment to 64 px
costs ~0.8 ms and put the eye centres within 1.27 px of the template's on every frame. The CNN
detector costs ~1.2 s per 480 px frame on this CPU: the robust option for hard footage (it also
found the face with sunglasses in multi_face.jpg that HOG missed), not the default.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from facedyn.errors import ConfigError, FacedynError

__all__ = [
    "ALIGN_INDICES",
    "ALIGN_WEIGHTS",
    "MIRROR_68",
    "TEMPLATE_68",
    "AlignedFace",
    "FaceLandmarker",
    "LandmarkTracker",
    "align_face",
    "alignment_matrix",
    "cnn_detector_path",
    "eye_centres",
    "hull_mask",
    "predictor_path",
    "shape_residual",
    "similarity_transform",
    "smooth_landmarks",
    "template",
]

# --------------------------------------------------------------------------------------------
# Template and landmark index tables
# --------------------------------------------------------------------------------------------

#: Canonical 68-point face in normalised crop coordinates ``[0, 1]^2`` (x right, y down), float64.
#:
#: Derived once, offline, from the real development footage (``shared/data/real``, which users
#: do not have, hence this literal): dlib HOG + 68-point predictor on all 1769 frames of the five
#: talking clips (five people); generalised Procrustes analysis (8 iterations of weighted
#: similarity alignment on :data:`ALIGN_INDICES` to the running mean, each clip weighted equally);
#: the mean shape made left/right symmetric (averaged with its mirror image) and rotated so the
#: eye centres are level. Scale and vertical position were chosen so that the 2nd–98th percentile
#: box of all aligned frames' landmarks (raised brows, open jaws, head turns included) spans
#: [0.02, 0.98] vertically, horizontally centred; values rounded to 4 decimals. The mean face's
#: convex hull (jaw + brows) spans x 0.09–0.91, y 0.06–0.89 of the crop.
TEMPLATE_68: np.ndarray = np.array([
    [0.0909, 0.2180], [0.0986, 0.3293], [0.1154, 0.4384], [0.1380, 0.5447],
    [0.1750, 0.6449], [0.2332, 0.7351], [0.3089, 0.8107], [0.3973, 0.8699],
    [0.5000, 0.8883], [0.6027, 0.8699], [0.6911, 0.8107], [0.7668, 0.7351],
    [0.8250, 0.6449], [0.8620, 0.5447], [0.8846, 0.4384], [0.9014, 0.3293],
    [0.9091, 0.2180], [0.1525, 0.1342], [0.2018, 0.0802], [0.2772, 0.0596],
    [0.3564, 0.0653], [0.4286, 0.0960], [0.5714, 0.0960], [0.6436, 0.0653],
    [0.7228, 0.0596], [0.7982, 0.0802], [0.8475, 0.1342], [0.5000, 0.1953],
    [0.5000, 0.2708], [0.5000, 0.3445], [0.5000, 0.4202], [0.4166, 0.4750],
    [0.4574, 0.4890], [0.5000, 0.5012], [0.5426, 0.4890], [0.5834, 0.4750],
    [0.2377, 0.2132], [0.2849, 0.1875], [0.3402, 0.1879], [0.3902, 0.2232],
    [0.3379, 0.2321], [0.2821, 0.2322], [0.6098, 0.2232], [0.6598, 0.1879],
    [0.7151, 0.1875], [0.7623, 0.2132], [0.7179, 0.2322], [0.6621, 0.2321],
    [0.3448, 0.6112], [0.4000, 0.5812], [0.4571, 0.5664], [0.5000, 0.5774],
    [0.5429, 0.5664], [0.6000, 0.5812], [0.6552, 0.6112], [0.6031, 0.6752],
    [0.5468, 0.7038], [0.5000, 0.7091], [0.4532, 0.7038], [0.3969, 0.6752],
    [0.3696, 0.6138], [0.4566, 0.6051], [0.5000, 0.6094], [0.5434, 0.6051],
    [0.6304, 0.6138], [0.5445, 0.6438], [0.5000, 0.6499], [0.4555, 0.6438],
], dtype=np.float64)
TEMPLATE_68.setflags(write=False)

#: Landmarks the alignment is fitted on: inner brow ends (21, 22), nose bridge and base (27–35)
#: and the twelve eye points (36–47). Mouth and jaw move with expressions and are left out.
ALIGN_INDICES: np.ndarray = np.array([21, 22, *range(27, 36), *range(36, 48)], dtype=np.intp)
#: Weights of :data:`ALIGN_INDICES` in the least-squares fit (eyes count double). On the real
#: clips this put the aligned eye centres at 0.50 px mean / 1.27 px max from the template's at
#: size 64 (unweighted: 0.71 / 1.71; all 68 points: 1.01 / 3.27).
ALIGN_WEIGHTS: np.ndarray = np.where(ALIGN_INDICES >= 36, 2.0, 1.0)

#: Index permutation of the 68 points under a horizontal flip: ``flipped[i] = mirror(points[MIRROR_68[i]])``.
MIRROR_68: np.ndarray = np.array(
    [*range(16, -1, -1), *range(26, 16, -1), 27, 28, 29, 30, 35, 34, 33, 32, 31,
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65],
    dtype=np.intp,
)

_EYE_A = slice(36, 42)  # image-left eye (the subject's right)
_EYE_B = slice(42, 48)


def template(size: int) -> np.ndarray:
    """:data:`TEMPLATE_68` in pixels of a ``size x size`` crop: ``(68, 2)`` float64.

    Normalised ``u`` in ``[0, 1]`` maps to ``u * size - 0.5`` (0 is the crop's left/top edge, 1 its
    right/bottom edge; pixel centres are integers).
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    return TEMPLATE_68 * float(size) - 0.5


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """Centres of the two eyes, ``(2, 2)``: row 0 the image-left eye (points 36–41), row 1 the other."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return np.stack([lm[_EYE_A].mean(0), lm[_EYE_B].mean(0)])


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

def similarity_transform(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``src`` onto ``dst``.

    Closed form of Umeyama (1991), with optional non-negative per-point weights; reflections are
    excluded.

    Args:
        src, dst: ``(K, 2)`` corresponding points, K >= 2.
        weights: optional ``(K,)`` weights (default all 1).

    Returns:
        ``(2, 3)`` float64 ``M`` minimising ``sum_k w_k |M[:, :2] @ src_k + M[:, 2] - dst_k|^2``.
    """
    s = np.asarray(src, dtype=np.float64)
    d = np.asarray(dst, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != 2 or s.shape != d.shape or len(s) < 2:
        raise ValueError(f"src and dst must both be (K>=2, 2), got {s.shape} and {d.shape}")
    w = np.ones(len(s)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(s),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be (K,), non-negative, not all zero")
    w = w / w.sum()
    mu_s = w @ s
    mu_d = w @ d
    sc = s - mu_s
    dc = d - mu_d
    var_s = float(w @ (sc**2).sum(1))
    if not np.isfinite(var_s) or var_s <= 1e-12:
        raise ValueError("src points are all (nearly) identical or not finite: no similarity is defined")
    cov = (dc * w[:, None]).T @ sc  # (2, 2) = sum w d s^T
    U, S, Vt = np.linalg.svd(cov)
    E = np.diag([1.0, np.sign(np.linalg.det(U) * np.linalg.det(Vt)) or 1.0])
    R = U @ E @ Vt
    scale = float((S * np.diag(E)).sum() / var_s)
    A = scale * R
    return np.hstack([A, (mu_d - A @ mu_s)[:, None]])


def _apply(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return np.asarray(pts, dtype=np.float64) @ M[:, :2].T + M[:, 2]


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"landmarks must be (68, 2), got {lm.shape}")
    if not np.isfinite(lm).all():
        raise ValueError("landmarks contain NaN or inf")
    return lm


def alignment_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Similarity ``(2, 3)`` float64 taking image pixels to the ``size x size`` crop.

    Fitted on the stable points :data:`ALIGN_INDICES` (eyes weighted double, see
    :data:`ALIGN_WEIGHTS`) of ``landmarks`` ``(68, 2)`` onto :func:`template` ``(size)``.
    """
    lm = _check_landmarks(landmarks)
    return similarity_transform(lm[ALIGN_INDICES], template(size)[ALIGN_INDICES], ALIGN_WEIGHTS)


def _normalised_shape(landmarks: np.ndarray) -> np.ndarray:
    """``landmarks`` similarity-aligned (all 68 points) onto :data:`TEMPLATE_68`: ``(68, 2)``."""
    lm = _check_landmarks(landmarks)
    return _apply(similarity_transform(lm, TEMPLATE_68), lm)


def shape_residual(landmarks: np.ndarray) -> float:
    """How un-face-like a 68-point shape is: RMS distance, in crop fractions, to the template.

    The shape is similarity-aligned (all 68 points) to :data:`TEMPLATE_68`. On the real talking
    clips the value was 0.012–0.051 (median 0.026) over ~2000 frames; badly fitted shapes score higher.
    """
    return float(np.sqrt(((_normalised_shape(landmarks) - TEMPLATE_68) ** 2).sum(1).mean()))


def hull_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """Inside the convex hull of ``landmarks`` ``(68, 2)`` (crop pixels): bool ``(size, size)``.

    Sub-pixel exact vertices (fixed point, 8 fractional bits); parts of the hull outside the crop
    are clipped.
    """
    lm = _check_landmarks(landmarks)
    shift = 8
    hull = cv2.convexHull(np.round(lm * (1 << shift)).astype(np.int32))
    m = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(m, hull, 1, lineType=cv2.LINE_8, shift=shift)
    return m.astype(bool)


@dataclass
class AlignedFace:
    """One aligned face crop.

    Attributes:
        image: ``uint8 (size, size, 3)`` RGB, zero outside the landmarks' hull when masked.
        landmarks: ``float32 (68, 2)`` in crop pixels.
        matrix: ``(2, 3)`` float64 similarity from source-image pixels to crop pixels.
    """

    image: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int = 64, mask: bool = True) -> AlignedFace:
    """Warp the face to the canonical template and crop it to ``size x size``.

    Bilinear warp (``INTER_LINEAR``); when the face is shrunk by more than 2x, the source region is
    first halved with ``cv2.pyrDown`` (Gaussian prefilter) as often as needed, so small crops of
    large faces do not alias. Pixels the source does not cover are 0. With ``mask=True`` every
    pixel outside the convex hull of the aligned landmarks is set to 0 (the paper's preprocessing).

    Args:
        image: RGB ``uint8 (H, W, 3)`` (or ``(H, W)``, returned as 3 identical channels).
        landmarks: ``(68, 2)`` in ``image`` pixels.
        size: crop side in pixels.
        mask: zero outside the landmarks' convex hull.
    """
    img = _as_rgb(image)
    lm = _check_landmarks(landmarks)
    M = alignment_matrix(lm, size)
    crop_lm = _apply(M, lm)

    # Source region that maps into the crop (plus a margin for the filters), clipped to the image.
    Minv = cv2.invertAffineTransform(M)
    corners = _apply(Minv, np.array([[-1, -1], [size, -1], [-1, size], [size, size]], np.float64))
    scale = math.sqrt(abs(np.linalg.det(M[:, :2])))
    pad = 4.0 / scale + 4
    h, w = img.shape[:2]
    x0 = max(0, math.floor(corners[:, 0].min() - pad))
    y0 = max(0, math.floor(corners[:, 1].min() - pad))
    x1 = min(w, math.ceil(corners[:, 0].max() + pad) + 1)
    y1 = min(h, math.ceil(corners[:, 1].max() + pad) + 1)
    out = np.zeros((size, size, 3), np.uint8)
    if x1 - x0 >= 2 and y1 - y0 >= 2:
        src = img[y0:y1, x0:x1]
        Mw = M.copy()
        Mw[:, 2] += M[:, :2] @ np.array([x0, y0], np.float64)
        s = scale
        # pyrDown: output pixel i sits on input pixel 2i, so source coords double.
        while s < 0.5 and min(src.shape[:2]) >= 8:
            src = cv2.pyrDown(src)
            Mw[:, :2] *= 2.0
            s *= 2.0
        out = cv2.warpAffine(np.ascontiguousarray(src), Mw, (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    if mask:
        out[~hull_mask(crop_lm, size)] = 0
    return AlignedFace(out, crop_lm.astype(np.float32), M)


def smooth_landmarks(landmarks: np.ndarray, valid: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Gaussian temporal smoothing of landmark tracks, within each run of valid frames.

    Removes detector jitter (which otherwise shows up as motion in aligned crops); ``sigma`` in
    frames (0 returns a copy). Invalid frames are left as they are and never mixed in.

    Args:
        landmarks: ``(N, 68, 2)`` float.
        valid: ``(N,)`` bool, True where ``landmarks`` hold a face.

    Returns:
        ``(N, 68, 2)`` float32.
    """
    from scipy.ndimage import gaussian_filter1d

    lm = np.array(landmarks, dtype=np.float32, copy=True)
    v = np.asarray(valid, dtype=bool)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2) or v.shape != (len(lm),):
        raise ValueError(f"landmarks must be (N, 68, 2) and valid (N,), got {lm.shape} and {v.shape}")
    if sigma <= 0:
        return lm
    edges = np.flatnonzero(np.diff(np.r_[0, v.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a > 1:
            lm[a:b] = gaussian_filter1d(lm[a:b].astype(np.float64), sigma, axis=0, mode="nearest")
    return lm


# --------------------------------------------------------------------------------------------
# Detection and landmarks (dlib)
# --------------------------------------------------------------------------------------------

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


def _dlib() -> Any:
    try:
        import dlib
    except ImportError:
        raise FacedynError("dlib is not installed; install it with `pip install dlib-bin==20.0.1.post1`") from None
    return dlib


# Loaded once per process on first use (fork-safe: children share the parent's copy).
@functools.cache
def _hog_detector() -> Any:
    return _dlib().get_frontal_face_detector()


@functools.cache
def _cnn_detector() -> Any:
    return _dlib().cnn_face_detection_model_v1(str(cnn_detector_path()))


@functools.cache
def _shape_predictor() -> Any:
    return _dlib().shape_predictor(str(predictor_path()))


# The 68-point predictor was trained on HOG-detector boxes. The CNN detector's boxes sit higher
# and are a little smaller: measured on 49 real frames (6 clips) where both found the face, the
# HOG box centre is +0.056 w right and +0.13 w lower, and 1.07x as wide. CNN boxes are mapped to
# that convention before the predictor runs, which cut the landmarks' distance from the HOG-box
# landmarks from 0.039 to 0.016 of the inter-ocular distance.
_CNN_TO_HOG = (0.056, 0.13, 1.07)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB or (H, W) gray, got {img.shape}")
    return np.ascontiguousarray(img)


def _downscale(img: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Copy with longest side <= ``max_side``, and its factor (small px = full px * factor).

    Bilinear resize, after ``cv2.pyrDown`` halvings while the copy is under half the size (cheap
    anti-aliasing; ``INTER_AREA`` costs ~10x more).
    """
    h, w = img.shape[:2]
    f = max_side / max(h, w)
    if f >= 1.0:
        return img, 1.0
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    src = img
    while src.shape[1] >= 2 * nw + 2 and src.shape[0] >= 2 * nh + 2:
        src = cv2.pyrDown(src)
    return cv2.resize(src, (nw, nh), interpolation=cv2.INTER_LINEAR), nw / w


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
        _hog_detector() if self.detector == "hog" else _cnn_detector()
        return self

    # -- detection -----------------------------------------------------------------------------
    def _scan(self, small: np.ndarray, upsample: int) -> list[tuple[float, float, float, float, float]]:
        """Boxes ``(left, top, right, bottom, score)`` in ``small``'s pixels."""
        if self.detector == "hog":
            rects, scores, _ = _hog_detector().run(small, upsample, 0.0)
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
        img = _as_rgb(image)
        small, f = _downscale(img, self.max_side)
        found: list[tuple[float, float, float, float, float]] = []
        levels = range(self.upsample + 1) if quick else [self.upsample]
        for ups in levels:
            found = self._scan(small, ups)
            if found:
                break
        out = [(l / f, t / f, r / f, b / f, s) for l, t, r, b, s in found]
        return sorted(out, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))

    def landmarks_in_box(self, image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
        """68 landmarks ``(68, 2)`` float32 (image px) predicted inside ``box`` ``(l, t, r, b, ...)``."""
        img = _as_rgb(image)
        dlib = _dlib()
        rect = dlib.rectangle(*(round(v) for v in box[:4]))
        shape = _shape_predictor()(img, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks ``(68, 2)`` float32 in ``image`` pixels of the largest face, or None.

        Args:
            image: RGB ``uint8 (H, W, 3)`` (or gray ``(H, W)``).
        """
        img = _as_rgb(image)
        found = self.boxes(img, quick=True)
        if not found:
            return None
        return self.landmarks_in_box(img, found[0])

    def detect_all(self, image: np.ndarray) -> list[np.ndarray]:
        """Landmarks ``(68, 2)`` float32 of every face (scanned with full upsampling), largest first."""
        img = _as_rgb(image)
        return [self.landmarks_in_box(img, b) for b in self.boxes(img)]


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
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
        rects, scores, _ = _hog_detector().run(win, 0, self.hint_threshold)
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
        change = np.sqrt(((_normalised_shape(lm) - self._shape) ** 2).sum(1).mean())
        if change > self.max_shape_change:
            return None
        return best, lm

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks ``(68, 2)`` float32 (image px) of the tracked face in this frame, or None.

        Args:
            image: RGB ``uint8 (H, W, 3)``, the next frame of the video.
        """
        img = _as_rgb(image)
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
            self._shape = _normalised_shape(lm)
            self._since = 0
        self.last_source = source
        return lm
