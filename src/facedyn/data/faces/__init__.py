"""Face detection, 68 landmarks, similarity alignment to a canonical template, convex-hull mask, tracking.

One module per idea (none imports this package, so there are no cycles):

* :mod:`~facedyn.data.faces.landmarks68`: the canonical template and the landmark index tables;
* :mod:`~facedyn.data.faces.align`: similarity alignment or loose ``box`` crops, the crop, its hull mask,
  shape checks;
* :mod:`~facedyn.data.faces.detect`: dlib model files, face boxes and 68 landmarks (:class:`FaceLandmarker`);
* :mod:`~facedyn.data.faces.track`: one face through a video (:class:`LandmarkTracker`), or every face
  with an id per person (:class:`MultiFaceTracker`);
* :mod:`~facedyn.data.faces.image`: the accepted image inputs.

Conventions:

* Images are RGB ``uint8 (H, W, 3)`` (grayscale ``(H, W)`` is accepted by the detector).
* Landmarks are ``(68, 2)`` float ``(x, y)`` in pixels, iBUG-68 order (jaw 0–16, brows 17–26, nose
  27–35, eyes 36–47, mouth 48–67), pixel centres at integer coordinates (OpenCV's convention).
* A crop is ``size x size``; :data:`TEMPLATE_68` lives in ``[0, 1]^2`` over the whole crop and
  :func:`template` maps it to crop pixels, so crops of any size show the same region of the face.
* An alignment matrix is a ``(2, 3)`` float64 similarity ``M``: ``crop_xy = M[:, :2] @ xy + M[:, 2]``.
"""

from __future__ import annotations

from facedyn.data.faces.align import (
    BOX_SCALE,
    BOX_SIGMA_S,
    AlignedFace,
    align_face,
    alignment_matrix,
    box_track,
    crop_face,
    hull_mask,
    shape_residual,
    similarity_transform,
    smooth_landmarks,
)
from facedyn.data.faces.detect import FaceLandmarker, cnn_detector_path, predictor_path
from facedyn.data.faces.landmarks68 import ALIGN_INDICES, ALIGN_WEIGHTS, MIRROR_68, TEMPLATE_68, eye_centres, template
from facedyn.data.faces.track import LandmarkTracker, MultiFaceTracker, TrackedFace

__all__ = [
    "ALIGN_INDICES",
    "ALIGN_WEIGHTS",
    "BOX_SCALE",
    "BOX_SIGMA_S",
    "MIRROR_68",
    "TEMPLATE_68",
    "AlignedFace",
    "FaceLandmarker",
    "LandmarkTracker",
    "MultiFaceTracker",
    "TrackedFace",
    "align_face",
    "alignment_matrix",
    "box_track",
    "cnn_detector_path",
    "crop_face",
    "eye_centres",
    "hull_mask",
    "predictor_path",
    "shape_residual",
    "similarity_transform",
    "smooth_landmarks",
    "template",
]
