"""Procedural face videos with ground-truth AUs, head pose, valence/arousal and 68 landmarks.

The embedded default data for the demo and the tests. Each synthetic person is an
:class:`Identity`: a 3-D neutral face of the 68 dlib/iBUG landmarks with its own proportions,
colours, hair, background, lighting and sensor noise. A clip animates that face with FACS-style
Action Unit intensity curves (onset–apex–offset episodes, co-occurring in expressions), blinks and
slow head motion; each person also has a resting morphology (AU-like shapes of the neutral face,
:mod:`~facedyn.data.synthetic.resting`) and the AU labels are the *activity* relative to it, as a
still image cannot tell; AU deformations move the 3-D landmarks linearly in intensity, the head pose
rotates them and a weak-perspective camera projects them; the renderer draws the face with AU
appearance cues, lighting, skin texture and sensor noise. Everything flows from one integer seed.

One module per idea (none imports this package, so there are no cycles):

* :mod:`~facedyn.data.synthetic.labels`: AU names, label columns, pose bounds;
* :mod:`~facedyn.data.synthetic.face3d`: the 3-D mean face, AU deformations, identities, pose, projection;
* :mod:`~facedyn.data.synthetic.render`: drawing a frame;
* :mod:`~facedyn.data.synthetic.resting`: resting AU-like shapes per identity;
* :mod:`~facedyn.data.synthetic.timeline`: AU episodes, head motion, gaze, valence/arousal over time;
* :mod:`~facedyn.data.synthetic.clip`: one clip (:func:`synthesize_clip`);
* :mod:`~facedyn.data.synthetic.files`: datasets on disk (:func:`synth`).

Conventions:
    * frames: RGB ``uint8 (size, size, 3)``; landmarks: float32 ``(68, 2)`` image pixels (x, y);
    * AU intensities: float in [0, 5] for :data:`AU_NAMES` (``AU45`` = blink / eyelid closure), the
      activity relative to the person's rest;
    * pose (degrees): ``yaw > 0`` turns the face towards image right (the subject's left),
      ``pitch > 0`` raises the chin (looks up), ``roll > 0`` tilts the head clockwise in the image;
    * valence, arousal: float in [-1, 1], derived from the AUs and smoothed.

On disk (:func:`synth`), the generic-folder layout: ``OUT/S001/S001.mp4`` with sidecars
``S001.csv`` (``frame`` column plus the labels) and ``S001.landmarks.npy`` (float32 ``(N, 68, 2)``
in video pixels, usable as ``prepare --landmarks``), and ``OUT/synth.json`` with the settings.
"""

from __future__ import annotations

from facedyn.data.synthetic.clip import SyntheticClip, subject_seed, synthesize_clip
from facedyn.data.synthetic.face3d import Identity, sample_identity
from facedyn.data.synthetic.files import GENERATOR_VERSION, synth
from facedyn.data.synthetic.labels import AU_NAMES, LABEL_COLUMNS, POSE_LIMITS
from facedyn.data.synthetic.render import render_frame
from facedyn.data.synthetic.timeline import affect_from_aus

__all__ = [
    "AU_NAMES",
    "GENERATOR_VERSION",
    "LABEL_COLUMNS",
    "POSE_LIMITS",
    "Identity",
    "SyntheticClip",
    "affect_from_aus",
    "render_frame",
    "sample_identity",
    "subject_seed",
    "synth",
    "synthesize_clip",
]
