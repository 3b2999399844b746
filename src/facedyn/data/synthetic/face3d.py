"""Synthetic people in 3-D: the mean face, AU deformations, identities, head pose and projection.

Each synthetic person is an :class:`Identity`: a 3-D neutral face of the 68 dlib/iBUG landmarks
(jaw 0–16, brows 17–26, nose 27–35, eyes 36–47, mouth 48–67) with its own proportions, colours,
hair, background, lighting and sensor noise. AU deformations move the 3-D landmarks linearly in
intensity (:func:`deform`), the head pose rotates them and a weak-perspective camera projects them
(:func:`project`).

Conventions: AU intensities are floats in [0, 5] in the order of
:data:`~facedyn.data.synthetic.labels.AU_NAMES`; pose (degrees): ``yaw > 0`` turns the face towards
image right (the subject's left), ``pitch > 0`` raises the chin (looks up), ``roll > 0`` tilts the
head clockwise in the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from facedyn.data.faces.landmarks68 import MEAN_FACE_3D
from facedyn.data.synthetic.labels import AU_INDEX, AU_NAMES

__all__ = [
    "H_EAR_L",
    "H_EAR_R",
    "H_FORE",
    "H_NECK",
    "H_NOSE",
    "H_SKULL",
    "JAW_WIDTH",
    "Identity",
    "deform",
    "mix",
    "project",
    "sample_identity",
]


# --------------------------------------------------------------------------------------------------
# Neutral 3-D mean face: :data:`~facedyn.data.faces.landmarks68.MEAN_FACE_3D` (68 iBUG points in
# "model units", x right, y down, z towards the camera), shared with head-pose estimation.
_MEAN_FACE = MEAN_FACE_3D
# Landmark index of each point's mirror image.
_MIRROR = np.array(
    list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55, 64, 63, 62, 61, 60, 67, 66, 65]
)
_CENTRE_Y = -14.0  # model y drawn at the image centre
JAW_WIDTH = 144.8  # |x0 - x16| of the mean face

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


def au_basis(shape: np.ndarray, gain: float) -> np.ndarray:
    """Per-unit-intensity displacement fields ``(12, 68, 3)`` for a neutral ``shape (68, 3)``."""
    B = np.zeros((len(AU_NAMES), 68, 3))
    for name, disp in _AU_DISP.items():
        k = AU_INDEX[name]
        for i, d in disp.items():
            B[k, i] = d
            j = _MIRROR[i]
            if j != i:
                B[k, j] = (-d[0], d[1], d[2])
    # blink: upper lids meet the lower lids (identity-specific gap)
    k = AU_INDEX["AU45"]
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
H_FORE = slice(0, 13)  # forehead arc / hairline, image right temple -> left temple
H_SKULL = slice(13, 32)  # skull outline for hair, right -> left over the top
H_EAR_L = slice(32, 42)
H_EAR_R = slice(42, 52)
H_NOSE = slice(52, 60)  # per side (left, right): ala top, ala out, ala bottom, nostril centre
H_NECK = slice(60, 62)  # neck top left/right (under the jaw)


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


def mix(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
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
    skin = mix(_SKIN_TONES[i], _SKIN_TONES[i + 1], t - i) * u(0.95, 1.04, 3)
    dark = t / (len(_SKIN_TONES) - 1)
    lip = mix(skin, np.array([196, 92, 98]) * (1 - 0.55 * dark) + 20, u(0.35, 0.6))
    if dark > 0.45 or u() < 0.45:
        hair = _HAIR_COLOURS[rng.choice([0, 1, 2])]
    else:
        hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))]
    hair = np.clip(hair * u(0.9, 1.1, 3), 0, 255)
    brow = mix(hair, np.array([30, 24, 22]), 0.35 if hair.mean() > 120 else 0.1)
    iris = _IRIS_COLOURS[rng.choice([0, 1, 2, 3])] if dark > 0.4 else _IRIS_COLOURS[rng.integers(7)]
    hue = u(0, 1, 3)
    shirt = 40 + 180 * hue * u(0.3, 1.0)
    base = u(60, 220)
    bg0 = np.clip(base + u(-50, 50, 3), 10, 245)
    bg1 = np.clip(mix(bg0, u(20, 235, 3), u(0.2, 0.6)), 5, 250)
    hair_style = int(rng.choice([0, 1, 2, 3], p=[0.4, 0.3, 0.12, 0.18]))
    forehead = u(50, 62) if hair_style != 3 else u(36, 46)
    hair_volume = {0: u(12, 24), 1: u(16, 30), 2: u(4, 7), 3: u(16, 28)}[hair_style]
    head = _head_points(S, forehead, hair_volume)
    ang = u(-np.pi, np.pi) if u() < 0.2 else u(-2.4, -0.7)  # mostly from above
    return Identity(
        seed=seed, shape=S, au_basis=au_basis(S, gain), head=head,
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


def deform(identity: Identity, au: np.ndarray) -> np.ndarray:
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


def project(identity: Identity, P: np.ndarray, pose: np.ndarray, drift: np.ndarray, size: int,
             ) -> tuple[np.ndarray, np.ndarray]:
    """Weak-perspective projection of 3-D landmarks ``P (n, 68, 3)`` and the rigid head points.

    ``drift (n, 3)`` = (dx, dy as fractions of the frame, log-scale). Returns ``(n, 68, 2)`` and
    ``(n, K + 6, 2)`` (head points, then body points: neck base, shoulder tops, shoulders; left/right)
    in image pixels.
    """
    n = len(P)
    R = _rotation(pose)
    scale = identity.face_frac * size / JAW_WIDTH * np.exp(drift[:, 2])
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
    x0 = JAW_WIDTH / 2
    body = np.array([[-0.6 * x0, 100, -45], [0.6 * x0, 100, -45], [-1.3 * x0, 106, -50], [1.3 * x0, 106, -50],
                     [-2.4 * x0, 124, -60], [2.4 * x0, 124, -60]])
    B = np.einsum("nij,kj->nki", Rb[:, :2], body - off) * scale[:, None, None]
    B[..., 0] += cx[:, None]
    B[..., 1] += cy[:, None]
    return pts[:, :68].astype(np.float32), np.concatenate([pts[:, 68:], B], 1)


