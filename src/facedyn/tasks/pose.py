"""Head pose (yaw, pitch, roll in degrees) from 68 landmarks: a 3-D mean face fitted by weighted least squares.

The 3-D template is :data:`~facedyn.data.faces.landmarks68.MEAN_FACE_3D` (the OpenFace 68-point mean
face, mirror-symmetrised; x right, y down, z towards the camera), the face the synthetic generator
builds its people from. Only the points that stay rigid under facial actions are fitted
(:data:`POSE_INDICES`: the upper jaw line 0–3 and 13–16, the nose 27–35 and the eyes 36–47; brows,
mouth and chin move with AUs). The camera is a pinhole whose principal point is the centre of the
landmarks' bounding box and whose focal length is :data:`FOCAL_FACES` times that box's larger side
(a camera roughly four face-widths away), so the pose does not depend on where the face sits in the
image or crop, nor on its size; ``focal=inf`` is a weak-perspective camera.

:func:`fit_pose` starts from ``cv2.solvePnP`` and refits with weights: the jaw line of the side turned away fades
out between 10° and 30° of yaw (:func:`contour_weights`), since on a turned face a detector puts it on the cheek's
silhouette, not on the hidden jaw. :class:`PoseTracker` fits a face frame by frame on a template adapted to its
own proportions; :meth:`PoseFit.frontalise` gives the landmarks seen from the front (the AU proxies' frame) and
:func:`frontal_residual` how far they are from a face in any pose (``confidence``).

Signs follow :mod:`facedyn.data.synthetic` (its ``pose_yaw``, ``pose_pitch``, ``pose_roll`` labels):
``yaw > 0`` turns the face towards image right (the subject's left), ``pitch > 0`` raises the chin,
``roll > 0`` tilts the head clockwise in the image; the rotation is ``R = Rz(roll) Rx(pitch) Ry(yaw)``
acting on the template's coordinates. The generator's landmarks are exactly that rotation of its 3-D faces
seen by a weak-perspective camera (:data:`SYNTHETIC_FOCAL`; tested), not by facedyn's pinhole: fitted with the
default camera their yaw reads 2–4° short at 30–45°, so synthetic tests pass ``focal=SYNTHETIC_FOCAL``.

Measured on the generator's landmarks of 6 synthetic people x 8 s (per-person proportions differing from the
template): mean absolute error yaw 0.09, pitch 1.3, roll 0.07 degrees with its camera (0.7, 2.1, 0.04 with the
default one; pitch absorbs each person's face shape, relative pitch is accurate); at |yaw| 30–45° and pitch
±20°: 2.1, 2.1, 0.8, and 2.7, 2.4, 1.1 with the turned-away jaw line moved onto a silhouette as dlib puts it
(6.6, 7.2, 1.8 without its fading out; ``tests/tasks/test_turned_heads.py``).
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np
import pandas as pd

from facedyn.data.faces.landmarks68 import MEAN_FACE_3D

__all__ = ["ADAPT_AFTER", "ADAPT_MEMORY", "CONTOUR_FADE_DEG", "FOCAL_FACES", "JAW_WEIGHT", "POSE_COLUMNS",
           "POSE_INDICES", "RESIDUAL_KEEP", "SYNTHETIC_FOCAL", "PoseFit", "PoseTracker", "contour_weights",
           "estimate_pose", "fit_pose", "frontal_residual", "pose_table", "precompute", "rotation_to_pose"]

#: Landmarks fitted: upper jaw (0–3, 13–16), nose (27–35), eyes (36–47).
POSE_INDICES: np.ndarray = np.array([0, 1, 2, 3, 13, 14, 15, 16, *range(27, 48)], dtype=np.intp)
#: Focal length of the assumed camera, in multiples of the landmarks' bounding-box side.
FOCAL_FACES = 4.0
#: Column names of :func:`pose_table` (those of the synthetic labels).
POSE_COLUMNS = ("pose_yaw", "pose_pitch", "pose_roll")
#: The synthetic generator's camera (:func:`facedyn.data.synthetic.face3d.project`): weak perspective, an
#: infinite focal length. Pass it as ``focal`` for the generator's landmarks and frames.
SYNTHETIC_FOCAL = math.inf
#: Yaws (degrees) between which the jaw line of the side turned away fades out of the fit (:func:`contour_weights`).
CONTOUR_FADE_DEG = (10.0, 30.0)
# positions in POSE_INDICES of the jaw line's image-left (0-3) and image-right (13-16) points; yaw > 0 turns the
# image-right side away
_FAR_LEFT = np.arange(0, 4)
_FAR_RIGHT = np.arange(4, 8)
#: :class:`PoseTracker`: frames' worth of weight before the face's own shape replaces the mean face's, and the
#: most frames' worth its running mean keeps.
ADAPT_AFTER = 5.0
ADAPT_MEMORY = 200.0
# focal length (box sides) of the pinhole that starts the fit of a weak-perspective camera
_WEAK_START = 1e4

# template coordinates (z towards the camera) -> OpenCV camera coordinates (z away from the camera)
_FLIP_Z = np.diag([1.0, 1.0, -1.0])


def rotation_to_pose(R_cv: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) in degrees, ``(3,)`` float64, of a rotation ``(3, 3)`` in OpenCV camera axes.

    ``R_cv`` maps template points (z flipped to OpenCV's z-forward) into the camera frame, as
    ``cv2.solvePnP`` returns it. In template axes the rotation is ``R = F R_cv F`` (``F`` flips z), and
    ``R = Rz(roll) Rx(pitch) Ry(yaw)`` gives ``R[2, 1] = sin(pitch)``, ``R[2, 0] = -cos(pitch) sin(yaw)``,
    ``R[2, 2] = cos(pitch) cos(yaw)``, ``R[0, 1] = -sin(roll) cos(pitch)``, ``R[1, 1] = cos(roll) cos(pitch)``.
    """
    R = _FLIP_Z @ np.asarray(R_cv, dtype=np.float64) @ _FLIP_Z
    pitch = np.arcsin(np.clip(R[2, 1], -1.0, 1.0))
    yaw = np.arctan2(-R[2, 0], R[2, 2])
    roll = np.arctan2(-R[0, 1], R[1, 1])
    return np.degrees(np.array([yaw, pitch, roll]))


class PoseFit:
    """The rigid fit of a 3-D face (``template``: :data:`MEAN_FACE_3D`, or a face's own shape) to one face's
    landmarks: head rotation, position and camera.

    A template point ``X`` (model units, template axes) lies at ``P = R X + (t, 0)`` and is seen at pixel
    ``centre + scale * P_xy / (1 - scale * P_z / focal)``: ``scale`` is pixels per model unit at the template's
    origin, ``focal`` the camera's focal length in pixels (``inf``: a weak-perspective camera, as the synthetic
    generator's). :attr:`pose` gives (yaw, pitch, roll); :meth:`frontalise` undoes the pose.
    """

    __slots__ = ("R", "_front", "centre", "focal", "scale", "t", "template")

    def __init__(self, R: np.ndarray, t: np.ndarray, scale: float, focal: float, centre: np.ndarray,
                 template: np.ndarray = MEAN_FACE_3D) -> None:
        self.R, self.t, self.scale, self.focal, self.centre = R, t, float(scale), float(focal), centre
        self.template = template
        self._front: tuple[np.ndarray, np.ndarray] | None = None  # the last frontalise: (landmarks, result)

    @property
    def pose(self) -> np.ndarray:
        """(yaw, pitch, roll) in degrees, ``(3,)`` float64 (signs in the module docstring)."""
        R = self.R
        return np.degrees(np.array([np.arctan2(-R[2, 0], R[2, 2]), np.arcsin(np.clip(R[2, 1], -1.0, 1.0)),
                                    np.arctan2(-R[0, 1], R[1, 1])]))

    def project(self, X: np.ndarray) -> np.ndarray:
        """Pixels ``(K, 2)`` of template points ``X (K, 3)`` (model units, template axes)."""
        P = np.asarray(X, np.float64) @ self.R.T
        P[:, :2] += self.t
        return self.centre + self.scale * P[:, :2] / (1.0 - (self.scale / self.focal) * P[:, 2:3])

    def frontalise(self, landmarks: np.ndarray) -> np.ndarray:
        """The 68 landmarks seen from the front: ``(68, 2)`` float64 in model units, template axes (x right, y down).

        Each landmark ``i`` is taken back along its camera ray to the plane of the turned face at the template's
        depth of that point, ``z = template[i, 2]`` in face axes (the mean face's), and the in-plane coordinates
        there are
        returned: a point moved within the face's plane (a brow raised, a jaw dropped) is recovered exactly
        whatever the head pose, and a face at rest gives its own frontal shape (the template where the person's
        face is the template's). The last result is kept (the tracker's checks, the face's shape and the proxies
        all frontalise the same frame's landmarks with the same fit); treat it as read-only."""
        lm = np.asarray(landmarks, np.float64)
        if self._front is not None and np.array_equal(self._front[0], lm):
            return self._front[1]
        R, q = self.R, self.scale / self.focal
        m = (lm - self.centre) / self.scale  # (68, 2): where the ray meets the origin's depth, model units
        z = self.template[:, 2]
        A = R[None, :2, :2] + q * m[:, :, None] * R[None, 2:3, :2]  # (68, 2, 2): rows x, y; columns a, b
        rhs = m - self.t - z[:, None] * (R[None, :2, 2] + q * m * R[2, 2])
        out = np.linalg.solve(A, rhs[..., None])[..., 0]
        out.flags.writeable = False
        self._front = (lm.copy(), out)
        return out


def contour_weights(yaw: float) -> np.ndarray:
    """Weights ``(len(POSE_INDICES),)`` of the fitted points at head yaw ``yaw`` (degrees): 1, except the jaw
    line on the side turned away, which falls linearly from 1 to 0 between the two yaws of
    :data:`CONTOUR_FADE_DEG` (10° and 30°: on a turned face a detector puts that side's contour on the cheek's
    silhouette, not on the occluded jaw). On the generator's faces rendered at |yaw| 30-45°, dlib's landmarks gave
    a mean yaw error of 4.6° with it and 6.6° without (their pitch is ~10° off either way: dlib places the rendered
    faces' jaw line 0.15 eye distances higher than the generator does, at every pose)."""
    w = np.ones(len(POSE_INDICES))
    lo, hi = CONTOUR_FADE_DEG
    fade = float(np.clip((hi - abs(yaw)) / (hi - lo), 0.0, 1.0)) if np.isfinite(yaw) else 1.0
    w[_FAR_RIGHT if yaw > 0 else _FAR_LEFT] = fade
    return w


def _cv_start(lm: np.ndarray, focal: float, template: np.ndarray) -> PoseFit | None:
    """``cv2.solvePnP`` of the unweighted :data:`POSE_INDICES` (a pinhole ``focal`` box sides away, or 1e4 for a
    weak-perspective camera), as the starting point of :func:`fit_pose`."""
    lo, hi = lm.min(0), lm.max(0)
    side = float((hi - lo).max())
    if not side > 0:
        return None
    c = 0.5 * (lo + hi)
    f = (focal if np.isfinite(focal) else _WEAK_START) * side
    K = np.array([[f, 0.0, c[0]], [0.0, f, c[1]], [0.0, 0.0, 1.0]])
    obj = template[POSE_INDICES] @ _FLIP_Z
    # start frontal, at the distance where the template's size matches the landmarks' (without a start,
    # the solver sometimes lands on a mirror solution behind the camera)
    mlo, mhi = template[:, :2].min(0), template[:, :2].max(0)
    mc = 0.5 * (mlo + mhi)
    rvec = np.zeros((3, 1))
    tvec = np.array([[-mc[0]], [-mc[1]], [f * float((mhi - mlo).max()) / side]])
    ok, rvec, tvec = cv2.solvePnP(obj, lm[POSE_INDICES], K, None, rvec, tvec, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok or not tvec[2, 0] > 0:
        return None
    R_cv, _ = cv2.Rodrigues(rvec)
    return PoseFit(_FLIP_Z @ R_cv @ _FLIP_Z, tvec[:2, 0].copy(), f / float(tvec[2, 0]), focal * side, c, template)


def _refine(fit: PoseFit, x: np.ndarray, X: np.ndarray, w: np.ndarray, iters: int) -> PoseFit:
    """Weighted Levenberg-Marquardt steps of ``fit`` (rotation, in-plane shift, log scale) on template points
    ``X (K, 3)`` seen at ``x (K, 2)`` with weights ``w (K,)``."""
    R, t, s, q, c = fit.R, fit.t, fit.scale, 1.0 / fit.focal, fit.centre
    lam = 1e-3

    def residuals(R: np.ndarray, t: np.ndarray, s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        Y = X @ R.T
        P = Y.copy()
        P[:, :2] += t
        g = 1.0 - s * q * P[:, 2]
        r = c + s * P[:, :2] / g[:, None] - x
        return Y, P, g, float(w @ (r * r).sum(1)) if np.isfinite(r).all() else np.inf

    Y, P, g, cost = residuals(R, t, s)
    for _ in range(iters):
        r = c + s * P[:, :2] / g[:, None] - x
        J = np.zeros((len(X), 2, 6))
        dPz = (s * s * q) * P[:, :2] / (g * g)[:, None]  # du/dP_z, (K, 2)
        sg = s / g
        # dP/domega = -[Y]x: rows (x, y, z) = (0, Yz, -Yy), (-Yz, 0, Yx), (Yy, -Yx, 0)
        J[:, 0, 0], J[:, 0, 1], J[:, 0, 2] = dPz[:, 0] * Y[:, 1], sg * Y[:, 2] - dPz[:, 0] * Y[:, 0], -sg * Y[:, 1]
        J[:, 1, 0], J[:, 1, 1], J[:, 1, 2] = -sg * Y[:, 2] + dPz[:, 1] * Y[:, 1], -dPz[:, 1] * Y[:, 0], sg * Y[:, 0]
        J[:, 0, 3] = J[:, 1, 4] = sg
        J[:, :, 5] = s * P[:, :2] / (g * g)[:, None]
        Jw = J * w[:, None, None]
        A = np.einsum("kai,kaj->ij", Jw, J)
        b = np.einsum("kai,ka->i", Jw, r)
        for _ in range(6):
            d = np.linalg.solve(A + lam * np.diag(np.diag(A) + 1e-12), -b)
            R2 = cv2.Rodrigues(d[:3])[0] @ R
            t2, s2 = t + d[3:5], s * float(np.exp(d[5]))
            Y2, P2, g2, cost2 = residuals(R2, t2, s2)
            if cost2 <= cost:
                R, t, s, Y, P, g = R2, t2, s2, Y2, P2, g2
                done = cost - cost2 <= 1e-10 * max(cost, 1e-12)
                cost, lam = cost2, max(lam / 10, 1e-7)
                break
            lam *= 10
        else:
            break
        if done:
            break
    return PoseFit(R, t, s, fit.focal, c, fit.template)


def fit_pose(landmarks: np.ndarray, focal: float = FOCAL_FACES, template: np.ndarray = MEAN_FACE_3D) -> PoseFit | None:
    """The rigid fit of :data:`MEAN_FACE_3D` to one face's ``(68, 2)`` landmarks (any pixel frame), or None.

    ``focal``: the camera's focal length in multiples of the landmarks' bounding-box side (default
    :data:`FOCAL_FACES`; ``inf`` for a weak-perspective camera such as the synthetic generator's,
    :data:`SYNTHETIC_FOCAL`). ``cv2.solvePnP`` of :data:`POSE_INDICES` starts it; weighted least squares then
    refit it with the turned-away side's jaw line faded out (:func:`contour_weights`, twice: the weights follow
    the yaw found).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        return None
    fit = _cv_start(lm, float(focal), template)
    if fit is None:
        return None
    X, x = template[POSE_INDICES], lm[POSE_INDICES]
    w = None
    for _ in range(4):  # the weights follow the yaw found, until they stop changing
        w_next = contour_weights(float(fit.pose[0]))
        if w is not None and np.abs(w_next - w).max() < 0.02:
            break
        w = w_next
        fit = _refine(fit, x, X, w, 8)
    return fit


class PoseTracker:
    """Head pose of one face frame by frame, fitted on a template adapted to that face's own shape.

    The mean face's proportions are not the person's: fitted to a face whose eyes sit lower or whose jaw is
    narrower, :func:`fit_pose`'s pitch and yaw err by a degree or two by amounts that change with the pose (on
    synthetic people, up to 4° of yaw at 30°). So each call also takes the frame's frontalised fitted points
    (:meth:`PoseFit.frontalise` of :data:`POSE_INDICES`, similarity-aligned) into a running mean of the face's
    own shape, weighted towards near-frontal frames (weight ``(1 - (yaw / 30)^2) (1 - (pitch / 25)^2)``, 0
    beyond); once :data:`ADAPT_AFTER` frames' worth of weight is in, its ``x, y`` replace the template's on those
    points (depths stay the mean face's), and the mean keeps the last :data:`ADAPT_MEMORY` frames' worth.
    A shape difference that a single view cannot tell from a pitch or yaw (points moved in proportion to their
    depth) reads as a constant pose offset, as with the mean face.
    """

    def __init__(self, focal: float = FOCAL_FACES, adapt: bool = True) -> None:
        self.focal = float(focal)
        self.adapt = bool(adapt)
        self.template = MEAN_FACE_3D
        self._xy = MEAN_FACE_3D[POSE_INDICES, :2].copy()  # running mean of the frontalised fitted points
        self._weight = 0.0

    def __call__(self, landmarks: np.ndarray) -> PoseFit | None:
        """The pose fit of one frame's ``(68, 2)`` landmarks (None where they are not finite or it fails), taken
        into the face's shape (:meth:`update`)."""
        fit = self.fit(landmarks)
        if fit is not None:
            self.update(fit, landmarks)
        return fit

    def fit(self, landmarks: np.ndarray) -> PoseFit | None:
        """:func:`fit_pose` of one frame on the face's template, without taking it into the face's shape."""
        return fit_pose(landmarks, self.focal, self.template)

    def update(self, fit: PoseFit, landmarks: np.ndarray) -> None:
        """Take an accepted frame's fit into the face's shape (nothing when :attr:`adapt` is False)."""
        if not self.adapt:
            return
        from facedyn.data.faces.align import similarity_transform

        yaw, pitch, _ = fit.pose
        w = max(0.0, 1.0 - (yaw / 30.0) ** 2) * max(0.0, 1.0 - (pitch / 25.0) ** 2)
        if w <= 0.0:
            return
        front = fit.frontalise(landmarks)[POSE_INDICES]
        try:
            M = similarity_transform(front, self._xy)
        except ValueError:
            return
        self._weight = min(self._weight + w, ADAPT_MEMORY)
        self._xy += (w / self._weight) * (front @ M[:, :2].T + M[:, 2] - self._xy)
        if self._weight >= ADAPT_AFTER:
            template = MEAN_FACE_3D.copy()
            template[POSE_INDICES, :2] = self._xy
            self.template = template


#: Weight of the jaw line's points (0-16) in :func:`frontal_residual` (the others weigh 1). On a turned face the
#: detector follows the cheek's silhouette there, as it was trained to: on 28 real faces turned 20-45° the jaw
#: points lay 0.1-0.47 IOD (median over frames) from where the mean face's jaw line lies once frontalised, the
#: others <= 0.12. Left out (weight 0), the residual misses most of the synthetic fits' errors, which are on the
#: jaw line; at full weight it reads real faces turned beyond 30° as 3.6x worse than frontal ones (0.2: 2.4x).
JAW_WEIGHT = 0.2
#: Fraction of the points' weight (the best-fitting points) whose mean :func:`frontal_residual` is.
RESIDUAL_KEEP = 0.75


@functools.cache
def _action_modes() -> np.ndarray:
    """``(136, 12)``: the facial actions' in-plane displacements of the 68 points per unit intensity on the mean
    face (the synthetic generator's AU model), flattened as ``x0, y0, x1, ...``."""
    from facedyn.data.synthetic.face3d import au_basis

    B = au_basis(MEAN_FACE_3D, 1.0)[:, :, :2]
    return B.reshape(len(B), -1).T.copy()


@functools.cache
def _residual_weights() -> np.ndarray:
    """``(68,)``: the points' weights in :func:`frontal_residual` (the jaw line's :data:`JAW_WEIGHT`, others 1)."""
    w = np.ones(68)
    w[:17] = JAW_WEIGHT
    return w


@functools.cache
def _action_projector() -> np.ndarray:
    """``(136, 136)``: what the facial actions explain of a flattened residual ``r``, ``P @ r``: the weighted least
    squares fit on :func:`_action_modes` (weights :func:`_residual_weights`, fixed: the fit is one linear map)."""
    B = _action_modes()
    sw = np.repeat(np.sqrt(_residual_weights()), 2)
    return B @ np.linalg.pinv(B * sw[:, None]) * sw[None, :]


def precompute() -> None:
    """Compute the constants :func:`frontal_residual` caches (the facial actions' projector: ~0.1 s, most of it
    importing the synthetic face model) now rather than on its first call."""
    _action_projector()


def frontal_residual(landmarks: np.ndarray, fit: PoseFit) -> float:
    """How far one face's landmarks are from a face, whatever its pose: the residual behind ``confidence``.

    The ``(68, 2)`` landmarks are frontalised with their pose fit (:meth:`PoseFit.frontalise`), similarity-aligned
    to the mean face, and what the facial actions explain is taken out (least squares on the AUs' displacement
    fields: an open jaw or a smile is a face, not a misfit); the result is the mean distance from the mean face of
    the best-fitting points holding :data:`RESIDUAL_KEEP` of the weight, in units of its inter-ocular distance.
    Every point weighs 1 but the jaw line's (:data:`JAW_WEIGHT`). About 0.02 on
    well-fitted real and synthetic faces, > 0.05 where most synthetic fits are more than 0.2 IOD off
    (:func:`facedyn.data.faces.track.fit_confidence` maps it to [0, 1]); NaN where the landmarks are not finite.
    """
    from facedyn.data.faces.align import similarity_transform

    lm = np.asarray(landmarks, np.float64)
    if not np.isfinite(lm).all():
        return float("nan")
    w = _residual_weights()
    F = fit.frontalise(lm)
    X = MEAN_FACE_3D[:, :2]
    try:
        M = similarity_transform(F, X, w)
    except ValueError:
        return float("nan")
    r = (F @ M[:, :2].T + M[:, 2] - X).ravel()
    r = r - _action_projector() @ r
    e = np.hypot(r[0::2], r[1::2])
    order = np.argsort(e)
    cw = np.cumsum(w[order])
    keep = order[: int(np.searchsorted(cw, RESIDUAL_KEEP * cw[-1])) + 1]
    return float((w[keep] @ e[keep]) / w[keep].sum() / _MEAN_IOD)


_MEAN_IOD = float(np.linalg.norm(MEAN_FACE_3D[36:42, :2].mean(0) - MEAN_FACE_3D[42:48, :2].mean(0)))


def estimate_pose(landmarks: np.ndarray, valid: np.ndarray | None = None, focal: float = FOCAL_FACES) -> np.ndarray:
    """Head pose of one face ``(68, 2)`` → ``(3,)``, or of frames ``(N, 68, 2)`` → ``(N, 3)``.

    Columns (yaw, pitch, roll) in degrees (signs in the module docstring); NaN where ``valid`` is False,
    the landmarks are not finite or the solver fails. Landmarks in any pixel frame (source image or crop);
    ``focal`` as in :func:`fit_pose`.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    single = lm.ndim == 2
    if single:
        lm = lm[None]
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must be (68, 2) or (N, 68, 2), got {lm.shape}")
    ok = np.isfinite(lm).all(axis=(1, 2))
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    out = np.full((len(lm), 3), np.nan)
    for i in np.flatnonzero(ok):
        fit = fit_pose(lm[i], focal)
        if fit is not None:
            out[i] = fit.pose
    return out[0] if single else out


def pose_table(landmarks: np.ndarray, valid: np.ndarray | None = None) -> pd.DataFrame:
    """:func:`estimate_pose` of ``(N, 68, 2)`` landmarks as a table: ``frame`` plus :data:`POSE_COLUMNS`."""
    p = estimate_pose(np.asarray(landmarks).reshape(-1, 68, 2), valid)
    return pd.DataFrame({"frame": np.arange(len(p)), **{c: p[:, k] for k, c in enumerate(POSE_COLUMNS)}})
