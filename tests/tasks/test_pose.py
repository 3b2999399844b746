"""Head pose from 68 landmarks (solvePnP on MEAN_FACE_3D) against the synthetic generator's ground truth."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from facedyn.data.faces.landmarks68 import MEAN_FACE_3D
from facedyn.data.synthetic import synthesize_clip
from facedyn.data.synthetic.face3d import _rotation
from facedyn.tasks.pose import estimate_pose, pose_table, rotation_to_pose


@pytest.fixture(scope="module")
def clips() -> list:  # type: ignore[type-arg]
    return [synthesize_clip(seed=s, seconds=6, fps=5, size=160) for s in range(4)]


def test_matches_synthetic_ground_truth(clips: list) -> None:  # type: ignore[type-arg]
    est = np.concatenate([estimate_pose(c.landmarks) for c in clips])
    gt = np.concatenate([c.labels[["pose_yaw", "pose_pitch", "pose_roll"]].to_numpy() for c in clips])
    mae = np.abs(est - gt).mean(0)
    # measured: 0.7, 1.9, 0.05 degrees (pitch absorbs each person's face shape, which differs from the template)
    assert mae[0] < 1.5 and mae[1] < 3.5 and mae[2] < 0.3, mae
    r = [np.corrcoef(est[:, k], gt[:, k])[0, 1] for k in range(3)]
    assert r[0] > 0.99 and r[1] > 0.8 and r[2] > 0.99, r


def test_signs_and_decomposition_round_trip() -> None:
    F = np.diag([1.0, 1.0, -1.0])
    for pose in ([10.0, 0, 0], [0, -7.0, 0], [0, 0, 12.0], [5.0, -3.0, 4.0]):
        R = _rotation(np.array([pose]))[0]  # the generator's R = Rz Rx Ry in template axes
        np.testing.assert_allclose(rotation_to_pose(F @ R @ F), pose, atol=1e-9)


def test_exact_template_projection_and_invariance() -> None:
    # orthographic projection of the template itself at a known pose: recovered within 1.5 degrees (measured
    # 1.2, 1.3, 0.1: the solver assumes a pinhole four face-widths away, not an orthographic camera)
    pose = np.array([8.0, -5.0, 6.0])
    R = _rotation(pose[None])[0]
    lm = (MEAN_FACE_3D @ R.T)[:, :2] * 0.4 + 80
    np.testing.assert_allclose(estimate_pose(lm), pose, atol=1.5)
    # where the face is and how big it is do not matter
    np.testing.assert_allclose(estimate_pose(lm * 2.5 - 30), estimate_pose(lm), atol=1e-6)


def test_invalid_frames_are_nan_and_table_columns(clips: list) -> None:  # type: ignore[type-arg]
    lm = clips[0].landmarks[:4].copy()
    lm[1] = np.nan
    valid = np.array([True, True, True, False])
    p = estimate_pose(lm, valid)
    assert np.isnan(p[1]).all() and np.isnan(p[3]).all() and np.isfinite(p[[0, 2]]).all()
    t = pose_table(lm, valid)
    assert list(t.columns) == ["frame", "pose_yaw", "pose_pitch", "pose_roll"] and len(t) == 4
    with pytest.raises(ValueError):
        estimate_pose(np.zeros((5, 2)))


def test_mean_face_moved_out_of_the_generator_unchanged() -> None:
    """The generator's only use of the mean face is ``S = _MEAN_FACE.copy()``: the same float64 bytes as the
    array it held before (SHA-1 of git HEAD's ``face3d._MEAN_FACE``) keep its output bit-identical."""
    from facedyn.data.synthetic import face3d

    assert face3d._MEAN_FACE is MEAN_FACE_3D and MEAN_FACE_3D.shape == (68, 3) and not MEAN_FACE_3D.flags.writeable
    assert MEAN_FACE_3D.dtype == np.float64
    assert hashlib.sha1(np.ascontiguousarray(MEAN_FACE_3D).tobytes()).hexdigest() == \
        "b37d14a465bdc1dadbd45968e4d7b0bc1012dee2"


def test_frontal_residual_takes_the_actions_out_by_weighted_least_squares() -> None:
    """The fixed projector of :func:`frontal_residual` is numpy's weighted least squares on the action modes, and a
    frame's frontalised landmarks are computed once for all its users (the same array back)."""
    from facedyn.tasks import pose as P

    rng = np.random.default_rng(0)
    w = np.ones(68)
    w[:17] = P.JAW_WEIGHT
    sw = np.repeat(np.sqrt(w), 2)
    B = P._action_modes()
    for _ in range(5):
        r = rng.normal(size=136)
        want = B @ np.linalg.lstsq(B * sw[:, None], r * sw, rcond=None)[0]
        np.testing.assert_allclose(P._action_projector() @ r, want, atol=1e-10)
    lm = P.MEAN_FACE_3D[:, :2] * 40 + 200 + rng.normal(0, 1, (68, 2))
    fit = P.fit_pose(lm)
    assert fit is not None
    first = fit.frontalise(lm)
    assert fit.frontalise(lm.copy()) is first and not first.flags.writeable
    assert fit.frontalise(lm + 1) is not first and np.isfinite(P.frontal_residual(lm, fit))
