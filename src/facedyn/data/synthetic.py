"""Procedural face videos with ground-truth AUs, head pose, valence/arousal and 68 landmarks.

The embedded default data for the demo and the tests. Each synthetic person is an
:class:`Identity`: a 3-D neutral face of the 68 dlib/iBUG landmarks (jaw 0–16, brows 17–26,
nose 27–35, eyes 36–47, mouth 48–67) with its own proportions, colours, hair, background,
lighting and sensor noise. A clip animates that face with FACS-style Action Unit intensity curves
(onset–apex–offset episodes, co-occurring in expressions: smiles, surprise, sadness, anger,
disgust, talking), blinks and slow head motion; AU deformations move the 3-D landmarks linearly in
intensity, the head pose rotates them and a weak-perspective camera projects them. The renderer
(OpenCV, 2x supersampled) draws skin, hair, brows, eyes with lids that really close, nose, lips,
mouth interior and teeth, plus AU appearance cues (forehead lines, brow furrows, nasolabial folds,
cheek bulges, chin wrinkles) whose strength follows the intensity, then lighting, skin texture and
a per-frame sensor model (Gaussian noise and a small exposure flicker). Everything flows from one
integer seed.

Temporal statistics were tuned so that the "still image floor" (``d = I_t`` minus its per-channel
mean, scored by ``<d, I_a>``) ranks the Eq. 2 pairs of (T=5, S=2) windows about as well as on real
talking-face clips (~0.8 here and there), i.e. well above chance yet far from perfect.

Conventions:
    * frames: RGB ``uint8 (size, size, 3)``; landmarks: float32 ``(68, 2)`` image pixels (x, y);
    * AU intensities: float in [0, 5] for :data:`AU_NAMES` (``AU45`` = blink / eyelid closure);
    * pose (degrees): ``yaw > 0`` turns the face towards image right (the subject's left),
      ``pitch > 0`` raises the chin (looks up), ``roll > 0`` tilts the head clockwise in the image;
    * valence, arousal: float in [-1, 1], derived from the AUs and smoothed.

On disk (:func:`synth`), the generic-folder layout: ``OUT/S001/S001.mp4`` with sidecars
``S001.csv`` (``frame`` column plus the labels) and ``S001.landmarks.npy`` (float32 ``(N, 68, 2)``
in video pixels, usable as ``prepare --landmarks``), and ``OUT/synth.json`` with the settings.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d

from facedyn.atomic import atomic_path
from facedyn.errors import ConfigError, OutputError

GENERATOR_VERSION = "1.0"

#: Action Units animated and labelled, in column order. ``AU45`` is the blink.
AU_NAMES: list[str] = ["AU01", "AU02", "AU04", "AU06", "AU10", "AU12", "AU14", "AU15", "AU17", "AU25",
                       "AU26", "AU45"]
_AU = {name: i for i, name in enumerate(AU_NAMES)}
LABEL_COLUMNS: list[str] = ["frame", "timestamp", *AU_NAMES, "pose_yaw", "pose_pitch", "pose_roll",
                            "valence", "arousal"]
POSE_LIMITS = (15.0, 10.0, 8.0)  # |yaw|, |pitch|, |roll| bounds in degrees

# --------------------------------------------------------------------------------------------------
# Neutral 3-D mean face: the 68 iBUG points in "model units" (face ~145 wide, x right, y down,
# z towards the camera), after the OpenFace 68-point 3-D mean face, mirror-symmetrised and with
# the lips closed.
_MEAN_FACE = np.array([
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
])
# Landmark index of each point's mirror image.
_MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)
_CENTRE_Y = -14.0  # model y drawn at the image centre
_JAW_WIDTH = 144.8  # |x0 - x16| of the mean face

# AU displacements at intensity 5 for the image-left half of the face (x < 0, plus the midline);
# the other half is mirrored (dx negated). Units: model units; dy > 0 is down, dz > 0 forward.
_AU_DISP: dict[str, dict[int, tuple[float, float, float]]] = {
    # inner brow raiser
    "AU01": {21: (0.5, -10, 0), 20: (0, -7.5, 0), 19: (0, -4, 0), 18: (0, -1.5, 0), 37: (0, -1.2, 0),
             38: (0, -1.6, 0), 39: (0, -0.4, 0)},
    # outer brow raiser
    "AU02": {17: (-0.5, -7, 0), 18: (0, -9.5, 0), 19: (0, -8, 0), 20: (0, -3.5, 0), 21: (0, -1, 0),
             36: (0, -0.6, 0), 37: (0, -1.6, 0), 38: (0, -1.0, 0)},
    # brow lowerer: brows down and together, upper lids lowered
    "AU04": {21: (5, 6.5, 1), 20: (3.5, 6, 0.5), 19: (2, 5, 0), 18: (1, 3.5, 0), 17: (0.5, 2, 0),
             37: (0, 1.6, 0), 38: (0.3, 2.0, 0), 39: (0.4, 0.3, 0)},
    # cheek raiser: lower lids up, cheeks up and forward, eyes narrowed
    "AU06": {40: (0, -3.2, 0.5), 41: (0, -3.0, 0.5), 36: (0.5, -1.2, 0), 39: (0, -0.5, 0),
             37: (0, 0.8, 0), 38: (0, 0.6, 0), 1: (0.5, -2, 1), 2: (0.5, -3.5, 1.5),
             3: (0.5, -3, 1.5), 4: (0, -1.5, 1), 17: (0, 1.5, 0), 18: (0, 1.0, 0)},
    # upper lip raiser
    "AU10": {50: (0, -6, 1), 51: (0, -6.5, 1), 49: (0, -4, 0.5), 48: (0, -1.5, 0), 60: (0, -2, 0),
             61: (0, -4.5, 0.5), 62: (0, -5, 0.5), 31: (-0.5, -2, 0), 32: (0, -1.5, 0), 33: (0, -1, 0)},
    # lip corner puller: corners out and up, cheeks lifted
    "AU12": {48: (-9, -7.5, -2), 60: (-8, -7, -2), 49: (-4, -4, 0), 59: (-4, -4, 0), 61: (-2.5, -2.5, 0),
             67: (-2.5, -2.5, 0), 50: (-1, -1.5, 0), 58: (-1, -1.5, 0), 51: (0, -0.8, 0), 57: (0, -0.5, 0),
             62: (0, -0.8, 0), 66: (0, -0.5, 0), 2: (-0.5, -1.5, 1), 3: (-0.5, -2.5, 1),
             4: (-0.5, -1.5, 0.5), 40: (0, -0.8, 0), 41: (0, -1.0, 0)},
    # dimpler: corners tightened inwards and back
    "AU14": {48: (4.5, -1, -3), 60: (4, -1, -3), 49: (1.5, 0, -1), 59: (1.5, 0, -1), 61: (0.8, 0, 0),
             67: (0.8, 0, 0)},
    # lip corner depressor
    "AU15": {48: (1, 7.5, 0), 60: (0.8, 6.5, 0), 49: (0.5, 2.5, 0), 59: (0.5, 3.5, 0), 61: (0, 1.5, 0),
             67: (0, 1.5, 0), 58: (0, 1, 0), 50: (0, 0.8, 0)},
    # chin raiser: chin and lower lip pushed up, lips pressed into a frown
    "AU17": {8: (0, -4.5, 1.5), 7: (0, -4, 1), 6: (0, -2, 0.5), 57: (0, -4.5, 3), 58: (0, -4, 2.5),
             59: (0, -2.5, 1), 66: (0, -3, 2), 67: (0, -2.5, 1.5), 51: (0, -1.5, 1), 50: (0, -1.2, 0.5),
             62: (0, -2, 0.5), 61: (0, -1.5, 0.5), 48: (0, 1.2, 0), 60: (0, 1.0, 0)},
    # lips part
    "AU25": {66: (0, 7, 0), 67: (0, 6, 0), 57: (0, 5.5, 0), 58: (0, 5, 0), 59: (0, 3, 0),
             62: (0, -1.5, 0), 61: (0, -1.2, 0), 60: (0.5, 0.5, 0), 48: (0.3, 0.5, 0)},
    # jaw drop
    "AU26": {8: (0, 21, -2), 7: (0, 19, -2), 6: (0, 15, -2), 5: (0, 9.5, -1), 4: (0, 5, 0), 3: (0, 2, 0),
             57: (0, 17, -1), 58: (0, 16, -1), 59: (0, 11, -1), 66: (0, 15, -1), 67: (0, 13.5, -1),
             48: (1.5, 5, 0), 60: (1.5, 5.5, 0), 49: (0.5, 1.0, 0), 61: (0, 0.3, 0)},
}


def _au_basis(shape: np.ndarray, gain: float) -> np.ndarray:
    """Per-unit-intensity displacement fields ``(12, 68, 3)`` for a neutral ``shape (68, 3)``."""
    B = np.zeros((len(AU_NAMES), 68, 3))
    for name, disp in _AU_DISP.items():
        k = _AU[name]
        for i, d in disp.items():
            B[k, i] = d
            j = _MIRROR[i]
            if j != i:
                B[k, j] = (-d[0], d[1], d[2])
    # blink: upper lids meet the lower lids (identity-specific gap)
    k = _AU["AU45"]
    for up, lo in ((37, 41), (38, 40), (43, 47), (44, 46)):
        gap = shape[lo, 1] - shape[up, 1]
        B[k, up, 1] = gap + 0.3
        B[k, lo, 1] = -0.3
    B *= gain
    B[k] /= gain  # lids close fully for everyone
    return B / 5.0


# --------------------------------------------------------------------------------------------------
# Identities


_SKIN_TONES = np.array([  # light to deep, RGB
    [250, 222, 200], [240, 200, 172], [226, 178, 145], [205, 150, 112], [176, 120, 86],
    [140, 92, 64], [104, 66, 46], [78, 50, 36],
], dtype=np.float64)
_HAIR_COLOURS = np.array([
    [26, 22, 22], [48, 34, 28], [78, 54, 38], [112, 78, 50], [170, 135, 90], [200, 170, 120],
    [128, 58, 32], [150, 148, 145], [215, 212, 205],
], dtype=np.float64)
_IRIS_COLOURS = np.array([
    [70, 42, 25], [98, 62, 34], [40, 26, 18], [120, 100, 52], [72, 104, 70], [78, 114, 160],
    [104, 118, 130],
], dtype=np.float64)


@dataclass(eq=False)
class Identity:
    """One synthetic person: 3-D face shape, AU deformation basis, colours, scene and camera.

    Attributes:
        seed: the seed the identity was drawn from (names its cached textures).
        shape: neutral 3-D landmarks ``(68, 3)`` in model units (x right, y down, z to camera).
        au_basis: ``(12, 68, 3)`` landmark displacement per unit AU intensity, order of
            :data:`AU_NAMES`.
        head: rigid 3-D outline points ``(K, 3)`` (forehead arc, skull, ears, nose wings, neck).
        skin, lip, brow, hair, iris, shirt, bg0, bg1: RGB colours in [0, 255].
        hair_style: 0 short, 1 long, 2 shaved/bald, 3 bob with fringe.
        brow_thickness: brow height in model units.
        face_frac: jaw width (landmarks 0–16) as a fraction of the frame width.
        centre: mean face position as fractions of the frame (x, y).
        light: unit 2-vector pointing where the light comes from (image coordinates).
        light_strength: depth of the lighting fall-off in [0, 1].
        noise_sigma: std of the per-frame Gaussian sensor noise in uint8 levels.
        pose_offset: habitual head pose (yaw, pitch, roll) in degrees.
        motion: head-motion amplitude multiplier.
        expressiveness: expression-rate multiplier.
        blink_interval: (min, max) seconds between blinks.
        stubble: beard-shadow strength in [0, 1].
        rest_gap: lips' gap at rest in model units (0: closed).
    """

    seed: int
    shape: np.ndarray
    au_basis: np.ndarray
    head: np.ndarray
    skin: np.ndarray
    lip: np.ndarray
    brow: np.ndarray
    hair: np.ndarray
    iris: np.ndarray
    shirt: np.ndarray
    bg0: np.ndarray
    bg1: np.ndarray
    hair_style: int
    brow_thickness: float
    face_frac: float
    centre: tuple[float, float]
    light: tuple[float, float]
    light_strength: float
    noise_sigma: float
    pose_offset: tuple[float, float, float]
    motion: float
    expressiveness: float
    blink_interval: tuple[float, float]
    stubble: float
    rest_gap: float
    _cache: dict = field(default_factory=dict, repr=False, compare=False)


# index ranges inside Identity.head
_H_FORE = slice(0, 13)  # forehead arc / hairline, image right temple -> left temple
_H_SKULL = slice(13, 32)  # skull outline for hair, right -> left over the top
_H_EAR_L = slice(32, 42)
_H_EAR_R = slice(42, 52)
_H_NOSE = slice(52, 60)  # per side (left, right): ala top, ala out, ala bottom, nostril centre
_H_NECK = slice(60, 62)  # neck top left/right (under the jaw)


def _head_points(shape: np.ndarray, forehead: float, hair_volume: float) -> np.ndarray:
    x0 = 0.5 * (shape[16, 0] - shape[0, 0]) * 0.985
    y0 = 0.5 * (shape[16, 1] + shape[0, 1])
    brow_top = shape[17:27, 1].min()
    top = brow_top - forehead
    th = np.deg2rad(np.linspace(0, 180, 15)[1:-1])
    s = np.sin(th)
    c = np.cos(th)
    fore = np.stack([x0 * np.sign(c) * np.abs(c) ** 0.75 * (1 + 0.04 * s), y0 - (y0 - top) * s ** 0.9,
                     -47 + 45 * s ** 0.6], 1)
    th2 = np.deg2rad(np.linspace(-22, 202, 19))
    s2 = np.sin(th2)
    sk_top = top - hair_volume
    sk = np.stack([(x0 + 0.35 * hair_volume + 4) * np.cos(th2),
                   y0 + 8 - (y0 + 8 - sk_top) * np.clip(s2, -1, 1) * np.where(s2 > 0, 1.0, 0.6),
                   -45 + 20 * np.clip(s2, 0, 1)], 1)
    ears = []
    for sgn in (-1, 1):
        a = np.linspace(0, 2 * np.pi, 10, endpoint=False)
        ears.append(np.stack([sgn * (x0 + 3 + 7 * (1 + np.cos(a)) * 0.8), -14 + 17 * np.sin(a),
                              np.full_like(a, -62.0)], 1))
    nose = []
    for sgn in (-1, 1):
        nw = abs(shape[31, 0])
        nose += [[sgn * nw * 0.82, shape[31, 1] - 7.5, 19.0], [sgn * nw * 1.12, shape[31, 1] - 1.5, 15.5],
                 [sgn * nw * 0.95, shape[31, 1] + 2.2, 18.5],
                 [sgn * nw * 0.55, 0.5 * (shape[31, 1] + shape[33, 1]) + 0.8, 22.0]]
    neck = [[-0.62 * x0, shape[5, 1] - 4, -45.0], [0.62 * x0, shape[5, 1] - 4, -45.0]]
    return np.concatenate([fore, sk, *ears, np.array(nose), np.array(neck)]).astype(np.float64)


def _mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return (1 - t) * np.asarray(a, np.float64) + t * np.asarray(b, np.float64)


def sample_identity(rng: np.random.Generator) -> Identity:
    """Draw one synthetic person: proportions, colours, hair, background, lighting, noise, habits."""
    seed = int(rng.integers(0, 2**31 - 1))
    S = _MEAN_FACE.copy()
    u = rng.uniform
    # --- eyes: size, openness, spacing, canthal tilt
    eye_size, eye_open, eye_gap, eye_tilt = u(0.92, 1.15), u(1.05, 1.4), u(-2.5, 3.0), u(-1.5, 2.5)
    for idx, sgn in ((np.arange(36, 42), -1), (np.arange(42, 48), 1)):
        c = S[idx].mean(0)
        S[idx, 0] = c[0] + (S[idx, 0] - c[0]) * eye_size + sgn * eye_gap
        S[idx, 1] = c[1] + (S[idx, 1] - c[1]) * eye_size * eye_open
        S[idx[0] if sgn < 0 else idx[3], 1] -= eye_tilt
    # --- brows: height, arch, spacing
    brow_h, arch = u(-3, 4), u(-1.0, 3.5)
    S[17:27, 1] -= brow_h
    S[[19, 24], 1] -= arch
    S[[18, 20, 23, 25], 1] -= 0.6 * arch
    S[17:22, 0] -= 0.6 * eye_gap
    S[22:27, 0] += 0.6 * eye_gap
    # --- nose length and width
    nose_len, nose_w = u(0.9, 1.1), u(0.85, 1.25)
    y27 = S[27, 1]
    shift = (nose_len - 1) * (S[33, 1] - y27)
    S[28:36, 1] = y27 + (S[28:36, 1] - y27) * nose_len
    S[31:36, 0] *= nose_w
    S[[30, 33], 2] += u(-3, 3)
    # --- mouth: width, lip thickness, position
    mouth_w, lip_up, lip_lo, mouth_y = u(0.88, 1.15), u(0.7, 1.3), u(0.75, 1.3), u(-2, 2)
    S[48:68, 0] *= mouth_w
    S[48:68, 1] += 0.6 * shift + mouth_y
    line = S[62, 1]
    S[49:54, 1] = line + (S[49:54, 1] - line) * lip_up
    S[55:60, 1] = line + (S[55:60, 1] - line) * lip_lo
    rest_gap = u(0.3, 2.0) if u() < 0.25 else 0.0
    S[65:68, 1] += rest_gap
    # --- jaw and chin
    jaw, chin = u(0.86, 1.06), u(-4, 6)
    w = np.array([0, 0, 0, 0.3, 0.6, 1, 1, 1, 1, 1, 1, 1, 0.6, 0.3, 0, 0, 0])
    S[:17, 0] *= 1 + (jaw - 1) * w
    S[:17, 1] += chin * np.array([0, 0, 0, 0, 0, 0.3, 0.6, 0.9, 1, 0.9, 0.6, 0.3, 0, 0, 0, 0, 0])
    # --- global proportions
    fw, fh = u(0.93, 1.07), u(0.95, 1.06)
    S[:, 0] *= fw
    S[:, 1] = _CENTRE_Y + (S[:, 1] - _CENTRE_Y) * fh
    gain = u(0.85, 1.15)

    # --- colours
    t = u(0, len(_SKIN_TONES) - 1)
    i = min(int(t), len(_SKIN_TONES) - 2)
    skin = _mix(_SKIN_TONES[i], _SKIN_TONES[i + 1], t - i) * u(0.95, 1.04, 3)
    dark = t / (len(_SKIN_TONES) - 1)
    lip = _mix(skin, np.array([196, 92, 98]) * (1 - 0.55 * dark) + 20, u(0.35, 0.6))
    if dark > 0.45 or u() < 0.45:
        hair = _HAIR_COLOURS[rng.choice([0, 1, 2])]
    else:
        hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))]
    hair = np.clip(hair * u(0.9, 1.1, 3), 0, 255)
    brow = _mix(hair, np.array([30, 24, 22]), 0.35 if hair.mean() > 120 else 0.1)
    iris = _IRIS_COLOURS[rng.choice([0, 1, 2, 3])] if dark > 0.4 else _IRIS_COLOURS[rng.integers(7)]
    hue = u(0, 1, 3)
    shirt = 40 + 180 * hue * u(0.3, 1.0)
    base = u(60, 220)
    bg0 = np.clip(base + u(-50, 50, 3), 10, 245)
    bg1 = np.clip(_mix(bg0, u(20, 235, 3), u(0.2, 0.6)), 5, 250)
    hair_style = int(rng.choice([0, 1, 2, 3], p=[0.4, 0.3, 0.12, 0.18]))
    forehead = u(50, 62) if hair_style != 3 else u(36, 46)
    hair_volume = {0: u(12, 24), 1: u(16, 30), 2: u(4, 7), 3: u(16, 28)}[hair_style]
    head = _head_points(S, forehead, hair_volume)
    ang = u(-np.pi, np.pi) if u() < 0.2 else u(-2.4, -0.7)  # mostly from above
    return Identity(
        seed=seed, shape=S, au_basis=_au_basis(S, gain), head=head,
        skin=np.clip(skin, 0, 255), lip=np.clip(lip, 0, 255), brow=np.clip(brow, 0, 255),
        hair=hair, iris=iris, shirt=np.clip(shirt, 0, 255), bg0=bg0, bg1=bg1,
        hair_style=hair_style, brow_thickness=u(3.5, 6.5), face_frac=u(0.54, 0.62),
        centre=(0.5 + u(-0.03, 0.03), 0.5 + u(-0.02, 0.03)),
        light=(math.cos(ang), math.sin(ang)), light_strength=u(0.25, 0.5),
        noise_sigma=u(3.0, 7.0), pose_offset=(u(-5, 5), u(-4, 3), u(-3, 3)),
        motion=u(0.6, 1.2), expressiveness=u(0.7, 1.3), blink_interval=(u(2.0, 2.8), u(4.0, 6.0)),
        stubble=u(0.2, 0.6) if (u() < 0.25) else 0.0, rest_gap=rest_gap,
    )


# --------------------------------------------------------------------------------------------------
# Geometry


def _rotation(pose: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(n, 3, 3)`` from ``pose (n, 3)`` = (yaw, pitch, roll) in degrees."""
    yaw, pitch, roll = np.deg2rad(pose).T
    n = len(pose)
    cy, sy, cp, sp, cr, sr = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    Ry = np.zeros((n, 3, 3))
    Ry[:, 0, 0], Ry[:, 0, 2], Ry[:, 1, 1], Ry[:, 2, 0], Ry[:, 2, 2] = cy, sy, 1, -sy, cy
    Rx = np.zeros((n, 3, 3))
    Rx[:, 0, 0], Rx[:, 1, 1], Rx[:, 1, 2], Rx[:, 2, 1], Rx[:, 2, 2] = 1, cp, -sp, sp, cp
    Rz = np.zeros((n, 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = cr, -sr, sr, cr, 1
    return Rz @ Rx @ Ry


def _deform(identity: Identity, au: np.ndarray) -> np.ndarray:
    """3-D landmarks ``(n, 68, 3)`` for AU intensities ``au (n, 12)`` in [0, 5]."""
    P = identity.shape[None] + np.einsum("na,akc->nkc", au, identity.au_basis)
    # lids and lips cannot pass through each other
    for up, lo in ((37, 41), (38, 40), (43, 47), (44, 46), (61, 67), (62, 66), (63, 65)):
        over = P[:, up, 1] > P[:, lo, 1]
        if over.any():
            m = 0.5 * (P[over, up, 1] + P[over, lo, 1])
            P[over, up, 1] = m
            P[over, lo, 1] = m
    return P


def _project(identity: Identity, P: np.ndarray, pose: np.ndarray, drift: np.ndarray, size: int,
             ) -> tuple[np.ndarray, np.ndarray]:
    """Weak-perspective projection of 3-D landmarks ``P (n, 68, 3)`` and the rigid head points.

    ``drift (n, 3)`` = (dx, dy as fractions of the frame, log-scale). Returns ``(n, 68, 2)`` and
    ``(n, K + 6, 2)`` (head points, then body points: neck base, shoulder tops, shoulders; left/right)
    in image pixels.
    """
    n = len(P)
    R = _rotation(pose)
    scale = identity.face_frac * size / _JAW_WIDTH * np.exp(drift[:, 2])
    cx = (identity.centre[0] + drift[:, 0]) * size
    cy = (identity.centre[1] + drift[:, 1]) * size
    off = np.array([0.0, _CENTRE_Y, 0.0])
    X = np.concatenate([P, np.broadcast_to(identity.head, (n, *identity.head.shape))], 1) - off
    Y = np.einsum("nij,nkj->nki", R[:, :2], X)
    pts = Y * scale[:, None, None]
    pts[..., 0] += cx[:, None]
    pts[..., 1] += cy[:, None]
    # body: follows the head only partly
    bp = np.zeros((n, 3))
    bp[:, 0] = pose[:, 0] * 0.25
    bp[:, 2] = pose[:, 2] * 0.3
    Rb = _rotation(bp)
    x0 = _JAW_WIDTH / 2
    body = np.array([[-0.6 * x0, 100, -45], [0.6 * x0, 100, -45], [-1.3 * x0, 106, -50], [1.3 * x0, 106, -50],
                     [-2.4 * x0, 124, -60], [2.4 * x0, 124, -60]])
    B = np.einsum("nij,kj->nki", Rb[:, :2], body - off) * scale[:, None, None]
    B[..., 0] += cx[:, None]
    B[..., 1] += cy[:, None]
    return pts[:, :68].astype(np.float32), np.concatenate([pts[:, 68:], B], 1)


# --------------------------------------------------------------------------------------------------
# Drawing helpers


_SS = 2  # supersampling factor
_SHIFT = 4  # fractional bits of OpenCV drawing coordinates
_AA = cv2.LINE_AA
_GAIN_JITTER = 0.0045  # std of the per-frame exposure gain (flicker, auto-exposure)


@functools.lru_cache(maxsize=64)
def _cr_matrix(k: int, m: int, closed: bool) -> np.ndarray:
    """Catmull-Rom interpolation matrix: ``M @ pts (k, 2)`` → a smooth curve through the points."""
    t = np.arange(m) / m
    basis = 0.5 * np.stack([-t**3 + 2 * t**2 - t, 3 * t**3 - 5 * t**2 + 2, -3 * t**3 + 4 * t**2 + t,
                            t**3 - t**2], 1)
    segs = k if closed else k - 1
    M = np.zeros((segs * m + (0 if closed else 1), k))
    for s in range(segs):
        idx = [s - 1, s, s + 1, s + 2]
        idx = [i % k for i in idx] if closed else [min(max(i, 0), k - 1) for i in idx]
        for c, i in enumerate(idx):
            M[s * m:(s + 1) * m, i] += basis[:, c]
    if not closed:
        M[-1, k - 1] = 1.0
    return M


def _smooth(pts: np.ndarray, m: int = 4, closed: bool = False) -> np.ndarray:
    return _cr_matrix(len(pts), m, closed) @ pts


def _ip(pts: np.ndarray, scale: float) -> np.ndarray:
    return np.round(np.asarray(pts) * (scale * (1 << _SHIFT))).astype(np.int32)


class _Canvas:
    """Draws float-pixel geometry (1x frame pixels) onto an image at ``scale`` x resolution."""

    def __init__(self, img: np.ndarray, scale: float) -> None:
        self.img, self.scale = img, scale

    def poly(self, pts: np.ndarray | list[np.ndarray], color: object) -> None:
        polys = pts if isinstance(pts, list) else [pts]
        cv2.fillPoly(self.img, [_ip(p, self.scale) for p in polys], _col(color), _AA, _SHIFT)

    def line(self, pts: np.ndarray | list[np.ndarray], color: object, thick: float, closed: bool = False) -> None:
        polys = pts if isinstance(pts, list) else [pts]
        t = max(1, round(thick * self.scale))
        cv2.polylines(self.img, [_ip(p, self.scale) for p in polys], closed, _col(color), t, _AA, _SHIFT)

    def circle(self, c: np.ndarray, r: float, color: object) -> None:
        cv2.circle(self.img, tuple(int(v) for v in _ip(c, self.scale)), max(1, round(r * self.scale * 16)),
                   _col(color), -1, _AA, _SHIFT)

    def ellipse(self, c: np.ndarray, axes: tuple[float, float], angle: float, color: object) -> None:
        s = self.scale * 16
        cv2.ellipse(self.img, tuple(int(v) for v in _ip(c, self.scale)),
                    (max(1, round(axes[0] * s)), max(1, round(axes[1] * s))), angle, 0, 360, _col(color), -1,
                    _AA, _SHIFT)


def _col(c: object) -> tuple[float, ...] | float:
    if np.isscalar(c):
        return float(c)  # type: ignore[arg-type]
    return tuple(float(v) for v in np.asarray(c).ravel())


def _offset_curve(curve: np.ndarray, dist: np.ndarray | float) -> np.ndarray:
    """Shift an open curve ``(k, 2)`` along its normals (left-hand side for positive ``dist``)."""
    t = np.gradient(curve, axis=0)
    t /= np.linalg.norm(t, axis=1, keepdims=True) + 1e-9
    nrm = np.stack([t[:, 1], -t[:, 0]], 1)
    return curve + nrm * np.asarray(dist, dtype=np.float64).reshape(-1, 1)


def _ribbon(curve: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """Closed polygon of a stroke along ``curve`` whose width goes from ``w0`` to ``w1``."""
    w = np.linspace(w0, w1, len(curve)) / 2
    return np.concatenate([_offset_curve(curve, w), _offset_curve(curve, -w)[::-1]])


def _composite(img: np.ndarray, layer_fn: Callable[[_Canvas], None], outline: np.ndarray, scale: float,
               margin: float) -> None:
    """Draw ``layer_fn`` into a copy of the region around ``outline`` and blend it in inside the outline."""
    h, w = img.shape[:2]
    lo = np.floor((outline.min(0) - margin) * scale).astype(int)
    hi = np.ceil((outline.max(0) + margin) * scale).astype(int) + 1
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w), min(hi[1], h)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    roi = img[y0:y1, x0:x1]
    layer = roi.copy()
    o = np.array([x0, y0]) / scale
    layer_fn(_ShiftCanvas(layer, scale, o))
    mask = np.zeros(roi.shape[:2], np.uint8)
    cv2.fillPoly(mask, [_ip(outline - o, scale)], 255, _AA, _SHIFT)
    a = mask.astype(np.float32)[..., None] * (1 / 255)
    roi[:] = (layer * a + roi * (1 - a) + 0.5).astype(np.uint8)


class _ShiftCanvas(_Canvas):
    def __init__(self, img: np.ndarray, scale: float, origin: np.ndarray) -> None:
        super().__init__(img, scale)
        self.o = origin

    def poly(self, pts, color) -> None:  # type: ignore[no-untyped-def]
        super().poly([p - self.o for p in pts] if isinstance(pts, list) else pts - self.o, color)

    def line(self, pts, color, thick, closed=False) -> None:  # type: ignore[no-untyped-def]
        super().line([p - self.o for p in pts] if isinstance(pts, list) else pts - self.o, color, thick, closed)

    def circle(self, c, r, color) -> None:  # type: ignore[no-untyped-def]
        super().circle(np.asarray(c) - self.o, r, color)

    def ellipse(self, c, axes, angle, color) -> None:  # type: ignore[no-untyped-def]
        super().ellipse(np.asarray(c) - self.o, axes, angle, color)


# --------------------------------------------------------------------------------------------------
# Per-identity assets (background, textures), cached on the identity


def _assets(identity: Identity, size: int) -> dict[str, np.ndarray]:
    key = ("assets", size)
    if key in identity._cache:
        return identity._cache[key]
    rng = np.random.default_rng([identity.seed, size])
    S = size * _SS
    yy, xx = np.mgrid[0:S, 0:S].astype(np.float32) / S
    ang = rng.uniform(0, 2 * np.pi)
    g = np.clip(0.5 + (np.cos(ang) * (xx - 0.5) + np.sin(ang) * (yy - 0.5)) * 1.2, 0, 1)[..., None]
    bg = identity.bg0[None, None] * (1 - g) + identity.bg1[None, None] * g
    blot = cv2.GaussianBlur(rng.standard_normal((S, S)).astype(np.float32), (0, 0), S / 14)
    blot /= blot.std() + 1e-6
    bg = bg * (1 + 0.06 * blot[..., None])
    for _ in range(rng.integers(0, 4)):  # soft furniture/wall shapes
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * S
        w, h = rng.uniform(0.1, 0.6, 2) * S
        c = rng.uniform(0.75, 1.25)
        m = np.zeros((S, S), np.float32)
        cv2.rectangle(m, (int(x0), int(y0)), (int(x0 + w), int(y0 + h)), 1.0, -1)
        m = cv2.GaussianBlur(m, (0, 0), S / 80)
        bg = bg * (1 + (c - 1) * m[..., None])
    bg = np.clip(bg, 0, 255).astype(np.uint8)
    # skin texture at 1x, twice the frame so it can follow the face
    T = 2 * size
    tex = cv2.GaussianBlur(rng.standard_normal((T, T)).astype(np.float32), (0, 0), size / 30)
    tex = tex / (tex.std() + 1e-6) * 0.025
    fine = cv2.GaussianBlur(rng.standard_normal((T, T)).astype(np.float32), (0, 0), 0.8)
    tex += fine / (fine.std() + 1e-6) * 0.012
    # hair strands: fixed per identity (fractions along the hairline and skull outline)
    strands = rng.uniform(0, 1, (26, 3))
    noise = rng.standard_normal((T, T, 3), dtype=np.float32)
    out = {"bg": bg, "tex": tex.astype(np.float32), "strands": strands, "noise": noise}
    identity._cache[key] = out
    return out


# --------------------------------------------------------------------------------------------------
# Renderer


def _lerp_curve(curve: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points at fractions ``t`` along a polyline ``curve (k, 2)`` (by index)."""
    x = t * (len(curve) - 1)
    i = np.clip(np.floor(x).astype(int), 0, len(curve) - 2)
    f = (x - i)[:, None]
    return curve[i] * (1 - f) + curve[i + 1] * f


def _render(identity: Identity, L: np.ndarray, H: np.ndarray, au: np.ndarray, gaze: np.ndarray, size: int,
            rng: np.random.Generator | None) -> np.ndarray:
    """Draw one frame from projected landmarks ``L (68, 2)`` and head/body points ``H``; RGB uint8."""
    A = _assets(identity, size)
    img = A["bg"].copy()
    cv = _Canvas(img, _SS)
    a = {name: float(au[i]) / 5.0 for i, name in enumerate(AU_NAMES)}  # intensities in [0, 1]
    skin, hair = identity.skin, identity.hair
    fore, skull = H[_H_FORE], H[_H_SKULL]
    ear_l, ear_r, nose, neck = H[_H_EAR_L], H[_H_EAR_R], H[_H_NOSE], H[_H_NECK]
    body = H[-6:]
    fu = np.linalg.norm(L[16] - L[0]) / _JAW_WIDTH  # pixels per model unit (roughly)

    jaw = _smooth(L[:17], 3)
    face = np.concatenate([jaw, _smooth(np.concatenate([L[16:17], fore, L[0:1]]), 3)[1:-1]])
    skull_c = _smooth(skull, 3)

    # --- long hair behind the head
    if identity.hair_style in (1, 3):
        y_end = L[8, 1] + (18 if identity.hair_style == 1 else -30) * fu
        xl, xr = skull_c[-1, 0] - 3 * fu, skull_c[0, 0] + 3 * fu
        back = np.array([[xl, y_end - 12 * fu], [xl + 8 * fu, y_end], [L[5, 0], y_end - 6 * fu],
                         [L[11, 0], y_end - 6 * fu], [xr - 8 * fu, y_end], [xr, y_end - 12 * fu]])
        cv.poly(np.concatenate([skull_c, back]), hair * 0.8)
    # --- shirt, neck, ears
    nb_l, nb_r, sm_l, sm_r, sh_l, sh_r = body
    neck_poly = np.array([neck[0], nb_l + [0, 30 * fu], nb_r + [0, 30 * fu], neck[1]])
    cv.poly(neck_poly, skin * 0.68)
    dip = 0.5 * (nb_l + nb_r) + [0, 20 * fu]
    collar = np.array([nb_l + [-4 * fu, 4 * fu], dip, nb_r + [4 * fu, 4 * fu]])
    top = _smooth(np.array([sh_l, sm_l, collar[0], dip, collar[2], sm_r, sh_r]), 3)
    cv.poly(np.concatenate([top, [sh_r + [0, size], sh_l + [0, size]]]), identity.shirt)
    cv.line(_smooth(collar, 3), identity.shirt * 0.7, 1.2 * fu * 2)
    for ear in (ear_l, ear_r):
        e = _smooth(ear, 2, closed=True)
        cv.poly(e, skin * 0.92)
        cv.line(_smooth(ear[2:7], 2), skin * 0.72, 1.3 * fu * 2)
    # --- face
    cv.poly(face, skin)
    # --- hair cap (skull outline above the hairline)
    if identity.hair_style != 2 or identity.hair.mean() < 200:
        cap = np.concatenate([skull_c, face[len(jaw):][::-1]])
        hair_c = hair if identity.hair_style != 2 else _mix(skin, hair, 0.45)
        cv.poly(cap, hair_c)
        if identity.hair_style != 2:
            st = A["strands"]
            hl = face[len(jaw):]
            p0 = _lerp_curve(hl, st[:, 0] * 0.9 + 0.05)
            p1 = _lerp_curve(skull_c, 0.5 + (st[:, 0] * 0.9 + 0.05 - 0.5) * (0.75 + 0.2 * st[:, 1]))
            mid = 0.5 * (p0 + p1) + (st[:, 2:3] - 0.5) * 10 * fu
            strands = [np.stack([p0[k], mid[k], p1[k]]) for k in range(len(st))]
            strands = [_smooth(s, 3) for s in strands]
            cv.line(strands[::2], hair * 0.7, 0.5)
            cv.line(strands[1::2], np.clip(hair * 1.25 + 12, 0, 255), 0.4)

    # --- brows
    bt = identity.brow_thickness * fu
    for idx in (slice(17, 22), slice(22, 27)):
        b = _smooth(L[idx], 3)
        if idx.start == 22:
            b = b[::-1]
        poly = _ribbon(b, bt * 1.25, bt * 0.55)  # inner head thick, tail thin
        cv.poly(poly, _mix(skin, identity.brow, 0.8))
        cv.line(b[: len(b) * 2 // 3], _mix(skin, identity.brow, 0.95), bt * 0.45)

    # --- eyes
    ey_shadow = skin * 0.8
    for idx, sgn in ((list(range(36, 42)), -1), (list(range(42, 48)), 1)):
        E = L[idx]
        outline = _smooth(E, 4, closed=True)
        width = np.linalg.norm(E[3] - E[0])
        c = 0.5 * (E[0] + E[3])
        ctr = c + np.array([gaze[0] * 0.22 * width, gaze[1] * 0.1 * width + 0.02 * width])
        r_iris = 0.22 * width

        def eye_layer(ec: _Canvas, ctr: np.ndarray = ctr, r: float = r_iris, E: np.ndarray = E,
                      w: float = width) -> None:
            ec.poly(np.concatenate([E[0:1] - [w, w], E[3:4] + [w, -w], E[3:4] + [w, w], E[0:1] + [-w, w]]),
                    (236, 232, 226))
            ec.circle(ctr, r * 1.04, identity.iris * 0.55)
            ec.circle(ctr, r * 0.9, identity.iris)
            ec.circle(ctr, r * 0.42, (14, 10, 10))
            ec.circle(ctr + np.array([0.3, -0.35]) * r, r * 0.2, (250, 250, 250))
            upper = _smooth(E[[0, 1, 2, 3]], 4)
            ec.line(upper + [0, 0.08 * w], (150, 140, 138), 0.12 * w)

        _composite(img, eye_layer, outline, _SS, r_iris + 1)
        upper = _smooth(E[[0, 1, 2, 3]], 4)
        lower = _smooth(E[[3, 4, 5, 0]], 4)
        # lashes: a thick dark line along the upper lid, with a little flick at the outer corner
        outer = E[0] if sgn < 0 else E[3]
        flick = outer + np.array([sgn * 0.12 * width, -0.06 * width])
        lash = np.concatenate([flick[None], upper] if sgn < 0 else [upper, flick[None]])
        cv.line(lash, (28, 20, 20), max(0.9, 0.07 * width))
        cv.line(lower, ey_shadow * 0.8, max(0.5, 0.03 * width))

    # --- nose: nostrils and wings
    for s in (0, 4):
        top, out, bot, nc = nose[s:s + 4]
        cv.ellipse(nc, (2.7 * fu, 1.4 * fu), 15 if s == 0 else -15, skin * 0.35)
        cv.line(_smooth(np.array([top, out, bot, 0.5 * (bot + nc)]), 3), skin * 0.7, 0.9 * fu)

    # --- mouth
    opening = 0.5 * (L[66, 1] - L[62, 1] + np.linalg.norm(L[67] - L[61]))
    up_outer = _smooth(L[48:55], 3)
    lo_outer = _smooth(L[[54, 55, 56, 57, 58, 59, 48]], 3)
    up_inner = _smooth(L[[60, 61, 62, 63, 64]], 3)
    lo_inner = _smooth(L[[64, 65, 66, 67, 60]], 3)
    lip_up_poly = np.concatenate([L[48:49], up_outer, L[54:55], up_inner[::-1]])
    lip_lo_poly = np.concatenate([lo_outer, lo_inner[::-1]])
    inner = np.concatenate([up_inner, lo_inner[1:-1]])
    if opening > 0.25:
        mw = np.linalg.norm(L[64] - L[60])
        tooth_h = 5.5 * fu

        def mouth_layer(mc: _Canvas) -> None:
            mc.poly(np.concatenate([up_inner - [0, 20], lo_inner + [0, 20]]), (70, 22, 28))
            # upper teeth follow the upper lip; lower teeth the lower lip
            k = len(up_inner)
            mid = up_inner[k // 6: k - k // 6]
            teeth_u = np.concatenate([mid + [0, -3], (mid + [0, tooth_h])[::-1]])
            mc.poly(teeth_u, (238, 234, 220))
            mc.line(up_inner[2:-2] + [0, tooth_h], (200, 195, 185), 0.5)
            lo = lo_inner[len(lo_inner) // 5: len(lo_inner) - len(lo_inner) // 5]
            teeth_l = np.concatenate([lo + [0, 3], (lo + [0, -tooth_h * 0.6])[::-1]])
            mc.poly(teeth_l, (215, 210, 198))
            tongue = 0.5 * (L[66] + L[57]) + [0, -0.25 * mw * 0.2]
            mc.ellipse(tongue, (0.28 * mw, 0.12 * mw + 0.2 * opening), 0, (170, 70, 78))

        _composite(img, mouth_layer, inner, _SS, 2)
    cv.poly(lip_up_poly, identity.lip * 0.88)
    cv.poly(lip_lo_poly, identity.lip)
    cv.line(up_inner, identity.lip * 0.42, 0.45 * fu * 2)
    if opening > 0.25:
        cv.line(lo_inner, identity.lip * 0.6, 0.3 * fu * 2)

    # ---------------------------------------------------------------- 1x: shading and cues
    out = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    fine = np.zeros((size, size), np.uint8)  # wrinkles, folds: fine dark lines
    h2 = size // 2  # soft layers are drawn at half resolution
    coarse = np.zeros((h2, h2), np.uint8)  # soft shadows
    hi = np.zeros((h2, h2), np.uint8)  # soft highlights
    mask = np.zeros((size, size), np.uint8)  # skin (face without hair)
    F, C, Hc, M = _Canvas(fine, 1), _Canvas(coarse, 0.5), _Canvas(hi, 0.5), _Canvas(mask, 1)
    M.poly(face, 255)
    if identity.hair_style != 2:
        M.poly(np.concatenate([skull_c, face[len(jaw):][::-1]]), 0)
    u = fu  # model unit in pixels

    # structure: eye sockets, nose sides, under-nose, lips, chin, cheek hollows
    for sgn, (ic, oc, bi, bo), lid_lo, lid_up in ((-1, (39, 36, 21, 17), [36, 41, 40, 39], [39, 38, 37, 36]),
                                                   (1, (42, 45, 22, 26), [42, 47, 46, 45], [42, 43, 44, 45])):
        socket = 0.5 * (L[ic] + L[bi]) + np.array([-sgn * 1.5 * u, 0])
        C.ellipse(socket, (4.5 * u, 3.5 * u), 0, 110)
        C.line(np.array([0.55 * L[oc] + 0.45 * L[bo], 0.5 * (L[oc] + L[ic]) + [0, -3 * u * (1 - a["AU45"])]]),
               60, 2.5 * u)
        # fold under the lower lid (deepened by AU6) and lid crease above the upper lid
        F.line(_smooth(L[lid_lo], 3) + [0, 2.6 * u + 2.5 * u * a["AU06"]], int(25 + 70 * a["AU06"]), 1)
        rise = (3.2 - 1.2 * a["AU04"] + 1.5 * a["AU45"]) * u
        F.line(_smooth(L[lid_up], 3) + [0, -rise], int(70 - 30 * a["AU45"]), 1)
    # nose: shadow on the side away from the light, highlight on the bridge and tip
    lx = identity.light[0]
    side = np.array([-np.sign(lx) if abs(lx) > 0.2 else 1.0, 0]) * 7 * u
    C.line(np.array([L[27] + side * 0.6, L[29] + side, L[31 if side[0] < 0 else 35] + side * 0.3]), 90, 4 * u)
    C.line(_smooth(L[[31, 32, 33, 34, 35]], 3) + [0, 3.5 * u], 110, 3.5 * u)  # under the nose
    Hc.line(np.array([L[28], L[29], L[30]]), 140, 3 * u)
    Hc.circle(L[30] + [0, 1.5 * u], 3 * u, 170)
    # philtrum, under the lower lip, chin
    F.line(np.array([L[33] + [-2 * u, 3 * u], L[50] + [0.5 * u, -1.5 * u]]), 35, 1)
    F.line(np.array([L[33] + [2 * u, 3 * u], L[52] + [-0.5 * u, -1.5 * u]]), 35, 1)
    C.line(_smooth(L[[58, 57, 56]], 3) + [0, 4 * u], int(90 + 60 * a["AU17"]), 3.5 * u)
    Hc.line(_smooth(L[[58, 57, 56]], 3) + [0, -3 * u], 90, 2.5 * u)
    Hc.circle(0.5 * (L[8] + L[57]) + [0, 2 * u], 5 * u, 70)
    # cheeks: cheekbone highlight, lifted by AU6/AU12; hollow below
    for sgn, (j, e) in ((-1, (2, 41)), (1, (14, 46))):
        cheek = 0.45 * L[j] + 0.55 * L[e] + np.array([0, 12 * u])
        lift = (a["AU06"] * 0.6 + a["AU12"] * 0.6) * 5 * u
        Hc.ellipse(cheek + [0, -lift], (11 * u, 6 * u + 2 * u * a["AU12"]), 0,
                   int(70 + 100 * max(a["AU06"], a["AU12"])))
        C.ellipse(cheek + [0, 13 * u - lift * 0.5], (9 * u, 5 * u), 0, int(25 + 25 * a["AU12"]))
        # nasolabial fold: from the nose wing down past the mouth corner
        corner = L[48] if sgn < 0 else L[54]
        wing = nose[1] if sgn < 0 else nose[5]
        fold_s = 0.08 + 0.92 * max(a["AU12"], 0.7 * a["AU06"], 0.9 * a["AU10"], 0.5 * a["AU14"])
        fold = _smooth(np.array([wing + [0, -1 * u], wing + [sgn * 5 * u, 10 * u],
                                 corner + [sgn * 6 * u, 0], corner + [sgn * 6 * u, 10 * u]]), 3)
        F.line(fold, int(50 + 150 * fold_s), 1)
        C.line(fold + [-sgn * 2 * u, 0], int(120 * fold_s), 3 * u)
        Hc.line(fold + [sgn * 4.5 * u, -2 * u], int(120 * fold_s * a["AU12"] + 30), 3.5 * u)
        # crow's feet (AU6)
        if a["AU06"] > 0.05:
            oc = L[36] if sgn < 0 else L[45]
            ang = np.deg2rad(np.array([-25, 0, 25]))
            lines = [np.array([oc + [sgn * 3 * u, 0], oc + [sgn * (3 + 8 * math.cos(t)) * u, 8 * math.sin(t) * u]])
                     for t in ang]
            F.line(lines, int(170 * a["AU06"]), 1)
        # dimple (AU14) and marionette line (AU15)
        if a["AU14"] > 0.05:
            F.ellipse(corner + [sgn * 5 * u, 0], (1.2 * u, 2.5 * u), 0, int(200 * a["AU14"]))
        if a["AU15"] > 0.05:
            F.line(np.array([corner + [sgn * 2 * u, 2 * u], corner + [sgn * 4 * u, 14 * u]]), int(170 * a["AU15"]), 1)
    # forehead lines (AU1 centre, AU2 sides) and brow furrows (AU4)
    bmid = 0.5 * (L[21] + L[22])
    bw = np.linalg.norm(L[26] - L[17])
    ux = (L[26] - L[17]) / (bw + 1e-9)
    uy = np.array([-ux[1], ux[0]])  # image "down" of the face
    browline = L[17:27].mean(0)
    for r in range(3):
        base = browline - uy * (14 + 8.5 * r) * u
        xs = np.linspace(-0.42, 0.42, 9) * bw
        ys = (np.abs(xs) / bw) ** 2 * 12 * u
        row = base + xs[:, None] * ux + ys[:, None] * uy
        s_c, s_s = a["AU01"] + 0.35 * a["AU02"], a["AU02"] + 0.25 * a["AU01"]
        if s_c > 0.03:
            F.line(row[2:7], int(min(1.0, s_c) * 190), 1)
        if s_s > 0.03:
            F.line([row[0:3], row[6:9]], int(min(1.0, s_s) * 170), 1)
    if a["AU04"] > 0.03:
        gap = np.linalg.norm(L[22] - L[21])
        for s in (-1, 1):
            p = bmid + ux * s * 0.22 * gap
            F.line(np.array([p + uy * 2 * u, p - uy * 14 * u - ux * s * 1.5 * u]), int(210 * a["AU04"]), 1)
        F.line(np.array([L[27] - ux * 4 * u, L[27] + ux * 4 * u]), int(150 * a["AU04"]), 1)
        C.ellipse(bmid - uy * 4 * u, (7 * u, 6 * u), 0, int(90 * a["AU04"]))
    if a["AU10"] > 0.05:  # nose wrinkles
        for r in (0, 1):
            q = L[28] + (L[29] - L[28]) * (0.2 + 0.5 * r)
            F.line(np.array([q - ux * 5 * u, q + uy * 1.2 * u, q + ux * 5 * u]), int(150 * a["AU10"]), 1)
    if a["AU17"] > 0.05:  # chin boss wrinkling
        chin = 0.5 * (L[57] + L[8])
        for dx, dy in ((-5, -2), (3, -4), (-1, 2), (5, 1), (-6, 4), (1, 6)):
            C.circle(chin + np.array([dx, dy]) * u, 2.0 * u, int(230 * a["AU17"]))
        C.ellipse(chin + [0, -3 * u], (9 * u, 5 * u), 0, int(80 * a["AU17"]))
    if a["AU26"] > 0.05 or a["AU25"] > 0.05:  # shadow of the dropped jaw on the neck
        C.line(jaw[8:-8] + [0, 5 * u], int(100 * a["AU26"]), 4 * u)
    C.line(jaw[3:-3] + [0, 3 * u], 120, 5 * u)  # shadow under the jaw
    if identity.stubble > 0:
        st = np.concatenate([jaw[6:-6], L[[54]] + [5 * u, -6 * u], L[[33]] + [0, 3 * u], L[[48]] + [-5 * u, -6 * u]])
        C.poly(st, int(150 * identity.stubble))

    fine = cv2.GaussianBlur(fine, (0, 0), 0.6)
    soft = (cv2.GaussianBlur(hi, (0, 0), 1.65 * u).astype(np.float32) * (0.12 / 255)
            - cv2.GaussianBlur(coarse, (0, 0), 1.65 * u).astype(np.float32) * (0.28 / 255))
    soft = cv2.resize(soft, (size, size), interpolation=cv2.INTER_LINEAR)
    # lighting: a face mask blurred and shifted towards the light gives rounded, directional shading
    q = 4
    small = np.zeros((size // q, size // q), np.uint8)
    shift = np.array(identity.light) * 18 * u
    _Canvas(small, 1 / q).poly(face + shift, 255)
    small = cv2.GaussianBlur(small, (0, 0), 20 * u / q)
    shade = cv2.resize(small, (size, size), interpolation=cv2.INTER_LINEAR).astype(np.float32) * (1 / 255)
    m = mask.astype(np.float32) * (1 / 255)
    cx, cy = (int(np.clip(round(v), 0, size)) for v in L[30])  # the texture moves with the face
    tex = A["tex"][cy:cy + size, cx:cx + size]
    factor = (1.0 - identity.light_strength * (1 - shade) * m + tex * m - fine * (0.45 / 255) + soft)
    if rng is not None:  # sensor: exposure flicker and Gaussian noise (a random window of a noise bank)
        factor *= np.float32(1.0 + _GAIN_JITTER * rng.standard_normal())
        ox, oy = rng.integers(0, size, 2)
        out *= factor[..., None]
        out += A["noise"][oy:oy + size, ox:ox + size] * np.float32(identity.noise_sigma)
    else:
        out *= factor[..., None]
    out += 0.5
    np.clip(out, 0, 255, out=out)
    return out.astype(np.uint8)


def render_frame(
    identity: Identity,
    au: dict[str, float] | np.ndarray,
    pose: tuple[float, float, float] = (0.0, 0.0, 0.0),
    size: int = 160,
    rng: np.random.Generator | None = None,
    *,
    offset: tuple[float, float] = (0.0, 0.0),
    scale: float = 1.0,
    gaze: tuple[float, float] = (0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Render one face: the pure building block of the generator.

    Args:
        identity: the person (:func:`sample_identity`).
        au: AU intensities in [0, 5], either ``{name: value}`` (missing AUs are 0) or an array
            ``(12,)`` in the order of :data:`AU_NAMES`.
        pose: head (yaw, pitch, roll) in degrees.
        size: frame width and height in pixels.
        rng: source of the sensor noise; None renders without noise.
        offset: face translation as fractions of the frame (x, y).
        scale: face size multiplier.
        gaze: eye direction in [-1, 1] (x right, y down).

    Returns:
        ``frame`` RGB ``uint8 (size, size, 3)`` and ``landmarks`` float32 ``(68, 2)`` in pixels.
    """
    v = _au_vector(au)
    P = _deform(identity, v[None])
    drift = np.array([[offset[0], offset[1], math.log(scale)]])
    L, H = _project(identity, P, np.asarray([pose], np.float64), drift, size)
    frame = _render(identity, L[0], H[0], v, np.asarray(gaze, np.float64), size, rng)
    return frame, L[0]


def _au_vector(au: dict[str, float] | np.ndarray) -> np.ndarray:
    if isinstance(au, dict):
        unknown = set(au) - set(AU_NAMES)
        if unknown:
            raise ConfigError(f"unknown AU names {sorted(unknown)}; use {', '.join(AU_NAMES)}")
        v = np.array([float(au.get(n, 0.0)) for n in AU_NAMES])
    else:
        v = np.asarray(au, np.float64).reshape(-1)
        if v.shape != (len(AU_NAMES),):
            raise ConfigError(f"AU vector must have {len(AU_NAMES)} values ({', '.join(AU_NAMES)}), got {v.size}")
    return np.clip(v, 0.0, 5.0)


# --------------------------------------------------------------------------------------------------
# Temporal structure


# expressions: (rate per minute, {AU: (probability, relative peak)})
_EXPRESSIONS: dict[str, tuple[float, dict[str, tuple[float, float]]]] = {
    "smile": (4.0, {"AU12": (1.0, 1.0), "AU06": (0.75, 0.75), "AU25": (0.4, 0.6), "AU26": (0.15, 0.4)}),
    "laugh": (1.0, {"AU12": (1.0, 1.0), "AU06": (1.0, 0.95), "AU25": (1.0, 0.9), "AU26": (0.8, 0.8),
                    "AU45": (0.3, 0.6)}),
    "surprise": (1.5, {"AU01": (1.0, 1.0), "AU02": (0.9, 0.9), "AU25": (0.7, 0.7), "AU26": (0.55, 0.8)}),
    "sad": (1.5, {"AU01": (0.8, 0.7), "AU04": (0.7, 0.7), "AU15": (1.0, 1.0), "AU17": (0.6, 0.7)}),
    "anger": (1.3, {"AU04": (1.0, 1.0), "AU17": (0.6, 0.7), "AU14": (0.35, 0.6), "AU10": (0.3, 0.6),
                    "AU06": (0.2, 0.4)}),
    "disgust": (1.0, {"AU10": (1.0, 1.0), "AU04": (0.6, 0.6), "AU17": (0.4, 0.6), "AU15": (0.3, 0.5),
                      "AU06": (0.3, 0.4)}),
    "doubt": (0.8, {"AU14": (1.0, 1.0), "AU17": (0.5, 0.6), "AU02": (0.3, 0.6)}),
}


_EXPRESSION_RATE = 1.5  # multiplier of the expression rates above
_SINGLE_RATE = 1.5  # episodes per minute of each AU on its own
_TALK_RATE = 6.0  # talking bursts (1-4 s of syllables) per minute
_HEAD_SLOW = (6.0, 4.0, 3.0)  # std (degrees) of the slow yaw/pitch/roll drift
_HEAD_FAST = (1.0, 1.2, 0.6)  # std of the faster nods and turns
_FAST_SIGMA = (0.12, 0.25)  # their time scale (s)
_SLOW_SIGMA = (2.0, 4.0)  # time scale of the slow drift (s)
_TRANS_SLOW = (0.008, 0.006, 0.015, 4.0)  # std of x, y drift, log-scale drift; time scale (s)
_TRANS_FAST = 0.004  # std of the fast translation jitter (fraction of the frame)


def _episode(t: np.ndarray, start: float, onset: float, apex: float, offset: float, peak: float) -> np.ndarray:
    """Onset (smoothstep up) - apex (hold) - offset (smoothstep down) curve sampled at times ``t``."""
    up = np.clip((t - start) / onset, 0, 1)
    down = np.clip((t - (start + onset + apex)) / offset, 0, 1)
    ss = lambda x: x * x * (3 - 2 * x)  # noqa: E731
    return peak * ss(up) * (1 - ss(down))


def _smooth_noise(rng: np.random.Generator, n: int, sigma: float) -> np.ndarray:
    """Band-limited noise ``(n,)`` with unit standard deviation (Gaussian-filtered white noise)."""
    pad = int(4 * sigma) + 1
    x = gaussian_filter1d(rng.standard_normal(n + 2 * pad), sigma, mode="wrap")[pad:pad + n]
    return x * math.sqrt(2 * math.sqrt(math.pi) * max(sigma, 1e-3))


def _timeline(identity: Identity, rng: np.random.Generator, n: int, fps: float,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AU curves ``(n, 12)``, pose ``(n, 3)`` deg, drift ``(n, 3)`` and gaze ``(n, 2)`` for ``n`` frames."""
    t = np.arange(n) / fps
    dur = n / fps
    au = np.zeros((n, len(AU_NAMES)))
    u = rng.uniform

    def add(name: str, start: float, onset: float, apex: float, offset: float, peak: float) -> None:
        k = _AU[name]
        lo = max(0, int((start - 0.1) * fps))
        hi = min(n, int((start + onset + apex + offset + 0.1) * fps) + 1)
        if hi > lo:
            au[lo:hi, k] = np.maximum(au[lo:hi, k], _episode(t[lo:hi], start, onset, apex, offset, peak))

    # expressions (co-occurring AUs with jittered timing)
    for rate, aus in _EXPRESSIONS.values():
        lam = _EXPRESSION_RATE * rate * identity.expressiveness / 60.0
        s = u(-2.0, 0.0)
        while True:
            s += rng.exponential(1 / lam)
            if s > dur:
                break
            onset, apex, offset = u(0.2, 1.5), u(0.0, 2.0), u(0.2, 1.5)
            peak = u(1.0, 5.0)
            for name, (p, rel) in aus.items():
                if u() < p:
                    add(name, s + u(-0.2, 0.25), max(0.2, onset * u(0.7, 1.3)), apex * u(0.7, 1.2),
                        max(0.2, offset * u(0.7, 1.3)), float(np.clip(peak * rel * u(0.8, 1.2), 0.5, 5.0)))
    # single AUs on their own
    for name in AU_NAMES[:-1]:
        lam = _SINGLE_RATE * identity.expressiveness / 60.0
        s = u(-2.0, 0.0)
        while True:
            s += rng.exponential(1 / lam)
            if s > dur:
                break
            add(name, s, u(0.2, 1.5), u(0.0, 2.0), u(0.2, 1.5), u(1.0, 5.0))
    # talking: bursts of syllable-like lip parting and small jaw drops
    s = u(-3.0, 0.0)
    while True:
        s += rng.exponential(60.0 / (_TALK_RATE * identity.expressiveness))
        if s > dur:
            break
        burst_end = s + u(1.0, 4.0)
        ts = s
        while ts < burst_end:
            d = u(0.2, 0.45)
            add("AU25", ts, d * 0.45, u(0.0, 0.1), d * 0.55, u(1.0, 3.5))
            if u() < 0.6:
                add("AU26", ts, d * 0.5, 0.0, d * 0.5, u(0.8, 2.5))
            ts += d + u(0.05, 0.3)
        s = burst_end
    # blinks: every blink_interval seconds, 0.1-0.4 s long, mostly complete
    k = _AU["AU45"]
    s = u(0.0, identity.blink_interval[1])
    while s < dur:
        d = u(0.1, 0.4)
        peak = 5.0 if u() < 0.85 else u(3.0, 5.0)
        close, reopen = 0.4 * d, 0.6 * d
        lo, hi = max(0, int((s - 0.1) * fps)), min(n, int((s + d + 0.1) * fps) + 1)
        au[lo:hi, k] = np.maximum(au[lo:hi, k], _episode(t[lo:hi], s, close, 0.0, reopen, peak))
        s += d + u(*identity.blink_interval)
    au = np.clip(au, 0.0, 5.0)

    # head motion: slow band-limited drift plus faster nods and jitter (talking heads reverse often),
    # each with a slowly varying amplitude, so some stretches are nearly still
    env = 0.3 + 0.7 / (1 + np.exp(-2.0 * _smooth_noise(rng, n, 2.0 * fps)))
    env_fast = 1.0 / (1 + np.exp(-2.0 * (_smooth_noise(rng, n, 1.5 * fps) - 0.3)))
    pose = np.zeros((n, 3))
    for j, (amp, amp_fast, lim) in enumerate(zip(_HEAD_SLOW, _HEAD_FAST, POSE_LIMITS, strict=True)):
        x = (identity.pose_offset[j]
             + identity.motion * amp * env * _smooth_noise(rng, n, u(*_SLOW_SIGMA) * fps)
             + identity.motion * amp_fast * env_fast * _smooth_noise(rng, n, u(*_FAST_SIGMA) * fps))
        pose[:, j] = lim * np.tanh(x / lim)
    # expressions move the head a little too (surprise/laugh: chin up)
    pose[:, 1] = np.clip(pose[:, 1] + 0.5 * (au[:, _AU["AU02"]] + au[:, _AU["AU26"]]) * 0.4, -10, 10)
    tx, ty, ts, tsig = _TRANS_SLOW
    jitter = _TRANS_FAST * env_fast
    drift = np.stack([tx * _smooth_noise(rng, n, tsig * fps) + jitter * _smooth_noise(rng, n, 0.2 * fps),
                      ty * _smooth_noise(rng, n, tsig * fps) + jitter * _smooth_noise(rng, n, 0.2 * fps),
                      ts * _smooth_noise(rng, n, 1.5 * tsig * fps)], 1)
    gaze = np.stack([np.clip(-0.5 * pose[:, 0] / 15 + 0.25 * _smooth_noise(rng, n, 0.3 * fps), -1, 1),
                     np.clip(-0.3 * pose[:, 1] / 10 + 0.15 * _smooth_noise(rng, n, 0.4 * fps), -1, 1)], 1)
    return au, pose, drift, gaze


def affect_from_aus(au: np.ndarray, fps: float, bias: tuple[float, float] = (0.0, 0.0),
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Valence and arousal ``(n,)`` in [-1, 1] from AU curves ``(n, 12)`` (smoothed over ~0.4 s).

    Valence rises with AU6/AU12 and falls with AU4/AU10/AU15/AU17; arousal rises with
    AU1/AU2/AU4/AU25/AU26 and the overall expression intensity.
    """
    g = {n: au[:, i] for i, n in enumerate(AU_NAMES)}
    v = (0.18 * g["AU12"] + 0.08 * g["AU06"] - 0.15 * g["AU04"] - 0.16 * g["AU15"] - 0.09 * g["AU17"]
         - 0.12 * g["AU10"] - 0.05 * g["AU14"] - 0.03 * g["AU01"] + bias[0])
    total = au[:, :-1].sum(1)
    ar = (0.10 * g["AU01"] + 0.12 * g["AU02"] + 0.08 * g["AU04"] + 0.06 * g["AU25"] + 0.12 * g["AU26"]
          + 0.04 * g["AU06"] + 0.02 * total - 0.3 + bias[1])
    sig = 0.4 * fps
    v = gaussian_filter1d(np.tanh(v), sig, mode="nearest")
    ar = gaussian_filter1d(np.tanh(ar), sig, mode="nearest")
    return np.clip(v, -1, 1), np.clip(ar, -1, 1)


# --------------------------------------------------------------------------------------------------
# Clips


@dataclass(eq=False)
class SyntheticClip:
    """A synthetic face video with per-frame ground truth; frames are rendered on demand.

    Attributes:
        labels: one row per frame: ``frame`` (0-based int), ``timestamp`` (s), each AU of
            :data:`AU_NAMES` (float in [0, 5]), ``pose_yaw``, ``pose_pitch``, ``pose_roll``
            (degrees), ``valence``, ``arousal`` (float in [-1, 1]).
        landmarks: float32 ``(N, 68, 2)`` landmark positions in image pixels.
        fps: frame rate.
        size: frame width and height in pixels.
        identity: the person.
        seed: the clip's seed.
    """

    labels: pd.DataFrame
    landmarks: np.ndarray
    fps: float
    size: int
    identity: Identity
    seed: int
    _head: np.ndarray = field(repr=False)
    _gaze: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def au(self) -> np.ndarray:
        """AU intensities ``(N, 12)`` in [0, 5], columns in the order of :data:`AU_NAMES`."""
        return self.labels[AU_NAMES].to_numpy(np.float64)

    def frame(self, i: int) -> np.ndarray:
        """Render frame ``i`` alone (RGB ``uint8 (size, size, 3)``), identical to ``frames()``'s."""
        rng = np.random.default_rng([self.seed, 7, i])
        return _render(self.identity, self.landmarks[i], self._head[i], self.au[i], self._gaze[i], self.size, rng)

    def frames(self) -> Iterator[np.ndarray]:
        """Yield the frames in order, RGB ``uint8 (size, size, 3)``, rendered lazily."""
        au = self.au
        for i in range(len(self)):
            rng = np.random.default_rng([self.seed, 7, i])
            yield _render(self.identity, self.landmarks[i], self._head[i], au[i], self._gaze[i], self.size, rng)


def synthesize_clip(seed: int, seconds: float, fps: float = 25.0, size: int = 160) -> SyntheticClip:
    """Draw one person and one clip of ``seconds`` at ``fps``: labels and landmarks now, frames lazily.

    Everything follows from ``seed``: the identity, the AU/pose/gaze timeline and the sensor noise
    (the identity does not depend on ``seconds``, ``fps`` or ``size``).
    """
    if seconds <= 0 or fps <= 0:
        raise ConfigError(f"seconds and fps must be positive (got {seconds}, {fps})")
    if size < 48:
        raise ConfigError(f"frame size {size} is too small to draw a face; use --size 48 or more")
    ss_id, ss_time, ss_aff = np.random.SeedSequence(seed).spawn(3)
    identity = sample_identity(np.random.default_rng(ss_id))
    n = max(1, round(seconds * fps))
    au, pose, drift, gaze = _timeline(identity, np.random.default_rng(ss_time), n, fps)
    P = _deform(identity, au)
    L, H = _project(identity, P, pose, drift, size)
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
        L, H = _project(identity, P, pose, drift, size)
    r = np.random.default_rng(ss_aff)
    valence, arousal = affect_from_aus(au, fps, (r.uniform(-0.15, 0.15), r.uniform(-0.1, 0.1)))
    labels = pd.DataFrame({"frame": np.arange(n, dtype=np.int64), "timestamp": np.arange(n) / fps})
    for i, name in enumerate(AU_NAMES):
        labels[name] = au[:, i]
    labels["pose_yaw"], labels["pose_pitch"], labels["pose_roll"] = pose[:, 0], pose[:, 1], pose[:, 2]
    labels["valence"], labels["arousal"] = valence, arousal
    return SyntheticClip(labels=labels, landmarks=L, fps=float(fps), size=int(size), identity=identity,
                         seed=int(seed), _head=H, _gaze=gaze)


def subject_seed(seed: int, index: int) -> int:
    """The clip seed of subject ``index`` (0-based) in a dataset drawn with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


# --------------------------------------------------------------------------------------------------
# Writing datasets


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` through ``write(tmp)`` on a temporary file in the same folder, then rename it."""
    with atomic_path(path) as tmp:
        write(tmp)


def synth(
    out: Path,
    subjects: int,
    seconds: float,
    fps: float = 25.0,
    seed: int = 0,
    size: int = 160,
    progress: Callable[[int], None] | None = None,
) -> list[Path]:
    """Write ``subjects`` synthetic face videos with ground truth into ``out`` (resumable).

    Layout, per subject ``S001``, ``S002``, ...: ``out/S001/S001.mp4`` (H.264, ``size`` x ``size``),
    ``out/S001/S001.csv`` (the :class:`SyntheticClip` labels), ``out/S001/S001.landmarks.npy``
    (float32 ``(N, 68, 2)`` in video pixels), plus ``out/synth.json`` (generator version and
    settings). Subjects whose three files exist are skipped, so an interrupted run can be resumed.

    Args:
        progress: called with ``1`` after each subject (written or skipped).

    Returns:
        The mp4 paths, in subject order.

    Raises:
        OutputError: ``out`` cannot be created or written, or holds data made with other settings.
        ConfigError: non-positive ``subjects``, ``seconds`` or ``fps``.
    """
    from facedyn import __version__
    from facedyn.data.video import write_video

    if subjects < 1 or seconds <= 0 or fps <= 0:
        raise ConfigError(f"subjects, seconds and fps must be positive (got {subjects}, {seconds}, {fps})")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if not os.access(out, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as e:
        raise OutputError(f"{out}: cannot create or write this folder ({e.strerror or e}); "
                          "choose a writable --out") from None
    settings = {"seed": int(seed), "seconds": float(seconds), "fps": float(fps), "size": int(size)}
    meta_path = out / "synth.json"
    if meta_path.exists():
        try:
            old = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            old = {}
        same = all(old.get("args", {}).get(k) == v for k, v in settings.items())
        if old and (not same or old.get("version") != GENERATOR_VERSION):
            raise OutputError(f"{out}: holds synthetic data made with other settings ({old.get('args')}); "
                              "choose another --out or delete it")
    meta = {"generator": "facedyn.data.synthetic", "version": GENERATOR_VERSION, "facedyn_version": __version__,
            "args": {**settings, "subjects": int(subjects)}, "au_names": AU_NAMES, "label_columns": LABEL_COLUMNS,
            "subject_seeds": [subject_seed(seed, i) for i in range(subjects)]}
    try:
        _atomic_write(meta_path, lambda p: p.write_text(json.dumps(meta, indent=2)))
    except OSError as e:
        raise OutputError(f"{meta_path}: cannot write ({e.strerror}); choose a writable --out") from None
    paths = []
    for i in range(subjects):
        name = f"S{i + 1:03d}"
        d = out / name
        mp4, csv, lm = d / f"{name}.mp4", d / f"{name}.csv", d / f"{name}.landmarks.npy"
        paths.append(mp4)
        if not (mp4.exists() and csv.exists() and lm.exists()):
            clip = synthesize_clip(subject_seed(seed, i), seconds, fps, size)
            try:
                d.mkdir(parents=True, exist_ok=True)
                write_video(mp4, clip.frames(), clip.fps)
                _atomic_write(csv, lambda p, c=clip: c.labels.to_csv(p, index=False, float_format="%.6f"))

                def _save(p: Path, c: SyntheticClip = clip) -> None:
                    with open(p, "wb") as f:
                        np.save(f, c.landmarks.astype(np.float32))

                _atomic_write(lm, _save)
            except OSError as e:
                raise OutputError(f"{d}: cannot write ({e.strerror}); choose a writable --out") from None
        if progress is not None:
            progress(1)
    return paths
