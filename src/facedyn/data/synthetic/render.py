"""Drawing a synthetic face: canvas helpers, per-identity assets and the frame renderer.

The renderer (OpenCV, 2x supersampled) draws skin, hair, brows, eyes with lids that really close,
nose, lips, mouth interior and teeth, plus AU appearance cues (forehead lines, brow furrows,
nasolabial folds, cheek bulges, chin wrinkles) whose strength follows the intensity, then lighting,
skin texture and a per-frame sensor model (Gaussian noise and a small exposure flicker).

Frames are RGB ``uint8 (size, size, 3)``; landmarks float32 ``(68, 2)`` image pixels ``(x, y)``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import cv2
import numpy as np

from facedyn.data.synthetic.face3d import (
    H_EAR_L,
    H_EAR_R,
    H_FORE,
    H_NECK,
    H_NOSE,
    H_SKULL,
    JAW_WIDTH,
    Identity,
    deform,
    mix,
    project,
)
from facedyn.data.synthetic.labels import AU_NAMES
from facedyn.errors import ConfigError

__all__ = ["draw_frame", "render_frame"]


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


def draw_frame(identity: Identity, L: np.ndarray, H: np.ndarray, au: np.ndarray, gaze: np.ndarray, size: int,
            rng: np.random.Generator | None) -> np.ndarray:
    """Draw one frame from projected landmarks ``L (68, 2)`` and head/body points ``H``; RGB uint8."""
    A = _assets(identity, size)
    img = A["bg"].copy()
    cv = _Canvas(img, _SS)
    a = {name: float(au[i]) / 5.0 for i, name in enumerate(AU_NAMES)}  # intensities in [0, 1]
    skin, hair = identity.skin, identity.hair
    fore, skull = H[H_FORE], H[H_SKULL]
    ear_l, ear_r, nose, neck = H[H_EAR_L], H[H_EAR_R], H[H_NOSE], H[H_NECK]
    body = H[-6:]
    fu = np.linalg.norm(L[16] - L[0]) / JAW_WIDTH  # pixels per model unit (roughly)

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
        hair_c = hair if identity.hair_style != 2 else mix(skin, hair, 0.45)
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
        cv.poly(poly, mix(skin, identity.brow, 0.8))
        cv.line(b[: len(b) * 2 // 3], mix(skin, identity.brow, 0.95), bt * 0.45)

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
    P = deform(identity, v[None])
    drift = np.array([[offset[0], offset[1], math.log(scale)]])
    L, H = project(identity, P, np.asarray([pose], np.float64), drift, size)
    frame = draw_frame(identity, L[0], H[0], v, np.asarray(gaze, np.float64), size, rng)
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


