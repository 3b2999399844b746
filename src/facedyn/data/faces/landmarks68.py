"""The iBUG-68 landmark tables: canonical template, 3-D mean face, alignment points, mirror permutation, eye
centres.

Landmarks are ``(68, 2)`` float ``(x, y)`` in pixels, iBUG-68 order (jaw 0–16, brows 17–26, nose
27–35, eyes 36–47, mouth 48–67), pixel centres at integer coordinates (OpenCV's convention).
:data:`TEMPLATE_68` lives in ``[0, 1]^2`` over the whole crop and :func:`template` maps it to the
pixels of a ``size x size`` crop, so crops of any size show the same region of the face.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ALIGN_INDICES", "ALIGN_WEIGHTS", "MEAN_FACE_3D", "MIRROR_68", "TEMPLATE_68", "eye_centres", "template"]

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

#: Neutral 3-D mean face: the 68 iBUG points in "model units" (face ~145 wide: ``|x_0 - x_16|`` = 144.8),
#: float64 ``(68, 3)``, x right, y down, z towards the camera; the origin lies on the midline at the
#: height of the nose base (between tip and nostrils), z = 0 about the depth of the eye corners. After
#: the OpenFace 68-point 3-D mean face, mirror-symmetrised and with the lips closed. The synthetic
#: generator builds its people from it (:mod:`facedyn.data.synthetic.face3d`) and head-pose estimation
#: fits it to 2-D landmarks (:mod:`facedyn.tasks.pose`).
MEAN_FACE_3D: np.ndarray = np.array([
    [-72.4, -30.1, -47.4], [-71.6, -11.3, -45.0], [-69.4, 7.5, -43.6], [-65.6, 25.8, -42.0],
    [-58.6, 42.5, -38.1], [-47.4, 56.4, -30.8], [-33.4, 67.1, -18.8], [-17.7, 74.9, -4.4],
    [0.0, 77.1, 0.9], [17.7, 74.9, -4.4], [33.4, 67.1, -18.8], [47.4, 56.4, -30.8],
    [58.6, 42.5, -38.1], [65.6, 25.8, -42.0], [69.4, 7.5, -43.6], [71.6, -11.3, -45.0],
    [72.4, -30.1, -47.4],
    [-60.6, -49.8, -12.9], [-51.2, -59.0, -6.3], [-38.1, -62.4, 0.3], [-24.6, -61.5, 7.0],
    [-11.8, -57.0, 12.0], [11.8, -57.0, 12.0], [24.6, -61.5, 7.0], [38.1, -62.4, 0.3],
    [51.2, -59.0, -6.3], [60.6, -49.8, -12.9],
    [0.0, -42.2, 13.4], [0.0, -31.0, 21.2], [0.0, -19.9, 29.3], [0.0, -8.4, 36.9],
    [-15.0, 2.6, 20.5], [-7.7, 4.7, 23.6], [0.0, 6.6, 25.9], [7.7, 4.7, 23.6], [15.0, 2.6, 20.5],
    [-45.6, -37.8, -6.0], [-37.6, -42.9, -2.4], [-27.9, -43.0, -0.8], [-19.5, -36.9, 0.4],
    [-28.5, -35.3, 0.7], [-38.1, -35.2, -0.9], [19.5, -36.9, 0.4], [27.9, -43.0, -0.8],
    [37.6, -42.9, -2.4], [45.6, -37.8, -6.0], [38.1, -35.2, -0.9], [28.5, -35.3, 0.7],
    [-28.9, 28.3, 2.7], [-18.2, 22.3, 15.8], [-7.5, 19.0, 22.7], [0.0, 20.7, 23.7],
    [7.5, 19.0, 22.7], [18.2, 22.3, 15.8], [28.9, 28.3, 2.7], [18.6, 36.5, 15.1],
    [8.2, 39.7, 22.5], [0.0, 40.4, 23.6], [-8.2, 39.7, 22.5], [-18.6, 36.5, 15.1],
    [-24.4, 28.3, 5.2], [-7.7, 27.9, 21.0], [0.0, 28.3, 22.2], [7.7, 27.9, 21.0],
    [24.4, 28.3, 5.2], [7.7, 27.9, 20.5], [0.0, 28.3, 21.9], [-7.7, 27.9, 20.5],
], dtype=np.float64)
MEAN_FACE_3D.setflags(write=False)

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

