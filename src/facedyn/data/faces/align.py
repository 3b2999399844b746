"""Face crops: similarity alignment to the canonical template, or loose ``box`` crops; hull mask, shape checks.

Two alignments (``prepare --align``):

* ``similarity`` (:func:`align_face`): rotation, scale and shift fitted per frame onto the template;
  the crops show every face upright at one size, so head roll, scale and position are removed;
* ``box`` (:func:`box_track`, :func:`crop_face`): per clip, a square around the landmarks' bounding
  box, smoothed over time (Gaussian, :data:`BOX_SIGMA_S`) and enlarged by :data:`BOX_SCALE`, never
  rotated: the crops keep the head's roll, and the head's moves in scale and position faster than the
  smoothing follows (what TCAE and FAb-Net learn from, as their papers' loosely cropped VoxCeleb
  tracks do), while the face stays centred over the clip.

Conventions:

* A crop is ``size x size``; landmarks in it are in crop pixels (for ``similarity``, fitted onto
  :func:`~facedyn.data.faces.landmarks68.template` ``(size)``).
* A crop matrix is a ``(2, 3)`` float64 affine ``M`` (a similarity; for ``box`` without rotation):
  ``crop_xy = M[:, :2] @ xy + M[:, 2]``.

Measured on the real clips of ``shared/data/real`` (HOG landmarks, see
:mod:`facedyn.data.faces.detect`): alignment to 64 px costs ~0.8 ms and put the eye centres within
1.27 px of the template's on every frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facedyn.data.faces.image import as_rgb
from facedyn.data.faces.landmarks68 import ALIGN_INDICES, ALIGN_WEIGHTS, TEMPLATE_68, template

__all__ = [
    "BOX_SCALE",
    "BOX_SIGMA_S",
    "AlignedFace",
    "align_face",
    "alignment_matrix",
    "box_matrix",
    "box_track",
    "crop_face",
    "hull_mask",
    "landmark_boxes",
    "normalised_shape",
    "shape_residual",
    "similarity_transform",
    "smooth_landmarks",
    "smooth_track",
    "warp_crop",
]


def similarity_transform(src: np.ndarray, dst: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``src`` onto ``dst``.

    Closed form of Umeyama (1991), with optional non-negative per-point weights; reflections are
    excluded. In two dimensions a rotation times a scale is one complex number, so the SVD of Umeyama's
    covariance reduces to ``a + ib = sum_k w_k conj(s_k) d_k / sum_k w_k |s_k|^2`` on centred points (the same
    solution; checked against the SVD form in the tests).

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
    var_s = float(w @ (sc * sc).sum(1))
    if not np.isfinite(var_s) or var_s <= 1e-12:
        raise ValueError("src points are all (nearly) identical or not finite: no similarity is defined")
    (sxx, sxy), (syx, syy) = sc.T @ (dc * w[:, None])  # s_i d_j summed with weights
    a, b = (sxx + syy) / var_s, (sxy - syx) / var_s
    M = np.empty((2, 3))
    M[0, 0], M[0, 1], M[1, 0], M[1, 1] = a, -b, b, a
    M[:, 2] = mu_d - M[:, :2] @ mu_s
    return M


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


def normalised_shape(landmarks: np.ndarray) -> np.ndarray:
    """``landmarks`` similarity-aligned (all 68 points) onto :data:`TEMPLATE_68`: ``(68, 2)``."""
    lm = _check_landmarks(landmarks)
    return _apply(similarity_transform(lm, TEMPLATE_68), lm)


def shape_residual(landmarks: np.ndarray) -> float:
    """How un-face-like a 68-point shape is: RMS distance, in crop fractions, to the template.

    The shape is similarity-aligned (all 68 points) to :data:`TEMPLATE_68`. On the real talking
    clips the value was 0.012–0.051 (median 0.026) over ~2000 frames; badly fitted shapes score higher.
    """
    return float(np.sqrt(((normalised_shape(landmarks) - TEMPLATE_68) ** 2).sum(1).mean()))


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
    img = as_rgb(image)
    lm = _check_landmarks(landmarks)
    return crop_face(img, lm, alignment_matrix(lm, size), size, mask)


def warp_crop(image: np.ndarray, M: np.ndarray, size: int) -> np.ndarray:
    """``image`` warped by the ``(2, 3)`` affine ``M`` (source pixels → crop pixels) into ``size x size``.

    Bilinear (``INTER_LINEAR``); when ``M`` shrinks by more than 2x, the source region is first
    halved with ``cv2.pyrDown`` (Gaussian prefilter) as often as needed, so small crops of large
    faces do not alias. Pixels the source does not cover are 0. Returns RGB ``uint8 (size, size, 3)``.
    """
    img = as_rgb(image)
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
        Mw = np.array(M, dtype=np.float64, copy=True)
        Mw[:, 2] += M[:, :2] @ np.array([x0, y0], np.float64)
        s = scale
        # pyrDown: output pixel i sits on input pixel 2i, so source coords double.
        while s < 0.5 and min(src.shape[:2]) >= 8:
            src = cv2.pyrDown(src)
            Mw[:, :2] *= 2.0
            s *= 2.0
        out = cv2.warpAffine(np.ascontiguousarray(src), Mw, (size, size), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return out


def crop_face(image: np.ndarray, landmarks: np.ndarray, M: np.ndarray, size: int, mask: bool) -> AlignedFace:
    """The face crop made by the ``(2, 3)`` affine ``M`` (any alignment), its landmarks, optional hull mask.

    Args:
        image: RGB ``uint8 (H, W, 3)`` (or ``(H, W)``).
        landmarks: ``(68, 2)`` in ``image`` pixels.
        M: ``(2, 3)`` float64, image pixels → crop pixels.
        size: crop side in pixels.
        mask: zero every pixel outside the convex hull of the cropped landmarks.
    """
    lm = _check_landmarks(landmarks)
    crop_lm = _apply(M, lm)
    out = warp_crop(image, M, size)
    if mask:
        out[~hull_mask(crop_lm, size)] = 0
    return AlignedFace(out, crop_lm.astype(np.float32), np.asarray(M, np.float64))


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
    lm = np.array(landmarks, dtype=np.float32, copy=True)
    v = np.asarray(valid, dtype=bool)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2) or v.shape != (len(lm),):
        raise ValueError(f"landmarks must be (N, 68, 2) and valid (N,), got {lm.shape} and {v.shape}")
    if sigma <= 0:
        return lm
    return smooth_track(lm.reshape(len(lm), -1), v, sigma).reshape(lm.shape).astype(np.float32)



# -- box alignment: loose square crops that keep roll, scale and shift ---------------------------------

#: Side of a ``box`` crop as a multiple of the larger side of the landmarks' bounding box. The 68 points
#: span brows to chin and jaw to jaw, so 1.5x adds about a quarter of the face on every side (forehead,
#: ears, some hair and background), as in the loosely cropped VoxCeleb tracks TCAE and FAb-Net train on;
#: a head rolled by 20 degrees or shifted by a tenth of a face still fits.
BOX_SCALE = 1.5
#: Standard deviation, in seconds, of the Gaussian that smooths the box centre and side over time
#: (within runs of frames with a face): detector jitter is removed, head motion of a second or less kept.
BOX_SIGMA_S = 0.5


def landmark_boxes(landmarks: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Square boxes around landmark sets: ``(N, 3)`` float64 ``(cx, cy, side)`` in image pixels.

    ``(cx, cy)`` is the centre of the axis-aligned bounding box of the 68 points, ``side`` its larger
    side. Rows of invalid frames are NaN.

    Args:
        landmarks: ``(N, 68, 2)`` float in image pixels.
        valid: ``(N,)`` bool, True where ``landmarks`` hold a face.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    v = np.asarray(valid, dtype=bool)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2) or v.shape != (len(lm),):
        raise ValueError(f"landmarks must be (N, 68, 2) and valid (N,), got {lm.shape} and {v.shape}")
    out = np.full((len(lm), 3), np.nan)
    if v.any():
        lo, hi = lm[v].min(axis=1), lm[v].max(axis=1)
        out[v, :2] = 0.5 * (lo + hi)
        out[v, 2] = (hi - lo).max(axis=1)
    return out


def smooth_track(values: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing over time of per-frame values ``(N, K)``, within each run of valid frames.

    ``sigma`` in frames (0 returns a copy); invalid rows are left as they are and never mixed in; the ends
    of a run repeat their edge value (``mode="nearest"``). Returns ``(N, K)`` float64.
    """
    from scipy.ndimage import gaussian_filter1d

    x = np.array(values, dtype=np.float64, copy=True)
    v = np.asarray(valid, dtype=bool)
    if x.ndim != 2 or v.shape != (len(x),):
        raise ValueError(f"values must be (N, K) and valid (N,), got {x.shape} and {v.shape}")
    if sigma <= 0:
        return x
    edges = np.flatnonzero(np.diff(np.r_[0, v.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a > 1:
            x[a:b] = gaussian_filter1d(x[a:b], sigma, axis=0, mode="nearest")
    return x


def box_matrix(box: np.ndarray, size: int, scale: float = BOX_SCALE) -> np.ndarray:
    """``(2, 3)`` float64 crop matrix of a box ``(cx, cy, side)``: no rotation, the square of side
    ``scale * side`` centred on ``(cx, cy)`` mapped onto the ``size x size`` crop (its edges on the crop's
    edges, pixel centres at integers)."""
    cx, cy, side = (float(b) for b in box)
    if not (np.isfinite([cx, cy, side]).all() and side > 0):
        raise ValueError(f"box must be finite with side > 0, got {tuple(box)}")
    k = size / (scale * side)
    # image point (cx, cy) -> crop centre (size - 1) / 2
    return np.array([[k, 0.0, (size - 1) / 2 - k * cx], [0.0, k, (size - 1) / 2 - k * cy]])


def box_track(landmarks: np.ndarray, valid: np.ndarray, fps: float, size: int,
              sigma_s: float = BOX_SIGMA_S, scale: float = BOX_SCALE) -> np.ndarray:
    """Per-frame ``box`` crop matrices of a clip: ``(N, 2, 3)`` float64 (NaN on invalid frames).

    The landmarks' boxes (:func:`landmark_boxes`) are smoothed over time with a Gaussian of ``sigma_s``
    seconds (``sigma_s * fps`` frames) within runs of valid frames (:func:`smooth_track`), then enlarged
    by ``scale`` (:func:`box_matrix`). No rotation: the crops keep the head's roll, and its scale and
    position as far as they change faster than the smoothing.

    Args:
        landmarks: ``(N, 68, 2)`` float in image pixels.
        valid: ``(N,)`` bool.
        fps: the clip's frame rate.
        size: crop side in pixels.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    v = np.asarray(valid, dtype=bool)
    boxes = smooth_track(landmark_boxes(landmarks, v), v, sigma_s * fps)
    out = np.full((len(v), 2, 3), np.nan)
    for i in np.flatnonzero(v):
        out[i] = box_matrix(boxes[i], size, scale)
    return out
