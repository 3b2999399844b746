"""Tests of facedyn.data.faces: geometry in closed form, dlib on a real photo, the real clips."""

from __future__ import annotations

import importlib.util
import pickle
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from facedyn.data import faces as F
from facedyn.errors import ConfigError, FacedynError, VideoDecodeError


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    A = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.hstack([A, [[tx], [ty]]])


def _apply(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ M[:, :2].T + M[:, 2]


def _eye_error(aligned_landmarks: np.ndarray, size: int) -> np.ndarray:
    """Distance (px) of each aligned eye centre from the template's: (2,)."""
    return np.linalg.norm(F.eye_centres(aligned_landmarks) - F.eye_centres(F.template(size)), axis=1)


# ------------------------------------------------------------------ geometry, closed form


def test_similarity_transform_recovers_known_transform_and_matches_opencv() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (30, 2))
    M = _similarity(23.0, 1.7, -12.5, 40.25)
    dst = _apply(M, src)
    est = F.similarity_transform(src, dst)
    np.testing.assert_allclose(est, M, atol=1e-9)
    cv_est, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    np.testing.assert_allclose(est, cv_est, atol=1e-3)


def test_similarity_transform_least_squares_and_weights() -> None:
    rng = np.random.default_rng(1)
    src = rng.uniform(-1, 1, (40, 2))
    M = _similarity(-70.0, 0.3, 5.0, -2.0)
    dst = _apply(M, src) + rng.normal(0, 0.01, src.shape)
    est = F.similarity_transform(src, dst)
    # least squares: no small perturbation of the parameters lowers the squared error
    base = ((_apply(est, src) - dst) ** 2).sum()
    for d in np.eye(4) * 1e-4:
        a, b = est[0, 0] + d[0], est[1, 0] + d[1]
        P = np.array([[a, -b, est[0, 2] + d[2]], [b, a, est[1, 2] + d[3]]])
        assert ((_apply(P, src) - dst) ** 2).sum() >= base
    # a zero weight removes a gross outlier completely
    dst_out = _apply(M, src)
    dst_out[0] += 50.0
    w = np.ones(len(src))
    w[0] = 0.0
    np.testing.assert_allclose(F.similarity_transform(src, dst_out, w), M, atol=1e-9)
    # never a reflection
    est_flip = F.similarity_transform(src, src * [-1.0, 1.0])
    assert np.linalg.det(est_flip[:, :2]) > 0


def test_similarity_transform_is_umeyamas_svd_solution() -> None:
    rng = np.random.default_rng(2)
    for k in range(50):
        src, dst, w = rng.normal(size=(68, 2)), rng.normal(size=(68, 2)), rng.uniform(0, 1, 68)
        if k % 2:
            dst = dst * [1.0, -1.0]  # a reflection is the best fit: excluded
        mu_s, mu_d = (w / w.sum()) @ src, (w / w.sum()) @ dst
        U, S, Vt = np.linalg.svd(((dst - mu_d) * w[:, None]).T @ (src - mu_s))
        E = np.diag([1.0, np.sign(np.linalg.det(U) * np.linalg.det(Vt))])
        A = (S * np.diag(E)).sum() / (w @ ((src - mu_s) ** 2).sum(1)) * (U @ E @ Vt)
        np.testing.assert_allclose(F.similarity_transform(src, dst, w), np.c_[A, mu_d - A @ mu_s], atol=1e-12)


def test_similarity_transform_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        F.similarity_transform(np.zeros((5, 2)), np.ones((5, 2)))
    with pytest.raises(ValueError):
        F.similarity_transform(np.zeros((5, 2)), np.ones((4, 2)))


def test_template_is_symmetric_level_and_fills_the_crop() -> None:
    T = F.TEMPLATE_68
    assert T.shape == (68, 2)
    assert (T > 0.02).all() and (T < 0.98).all()
    mirrored = np.c_[1.0 - T[:, 0], T[:, 1]][F.MIRROR_68]
    np.testing.assert_allclose(mirrored, T, atol=1e-9)
    eyes = F.eye_centres(T)
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-9 and eyes[0, 0] < eyes[1, 0]
    # anatomy, y down: brows above eyes above nose tip above mouth above chin
    assert T[17:27, 1].max() < eyes[:, 1].min() < T[33, 1] < T[51, 1] < T[8, 1]
    hull_area = cv2.contourArea(cv2.convexHull(T.astype(np.float32)))
    assert 0.5 < hull_area < 0.8
    np.testing.assert_allclose(F.template(64), T * 64 - 0.5)
    assert F.MIRROR_68[F.MIRROR_68].tolist() == list(range(68))


# ------------------------------------------------------------------ alignment and mask


def test_align_face_identity_on_template() -> None:
    size = 64
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    face = F.align_face(img, F.template(size), size=size, mask=False)
    np.testing.assert_allclose(face.matrix, np.hstack([np.eye(2), np.zeros((2, 1))]), atol=1e-9)
    np.testing.assert_allclose(face.landmarks, F.template(size), atol=1e-4)
    assert face.image.shape == (size, size, 3) and face.image.dtype == np.uint8
    np.testing.assert_array_equal(face.image, img)
    assert face.landmarks.dtype == np.float32


@pytest.mark.parametrize(("angle", "scale", "shift"), [(30.0, 3.0, (40.0, 25.0)), (-12.0, 0.8, (5.0, 70.0)),
                                                       (170.0, 5.5, (300.0, 200.0))])
def test_align_face_undoes_a_similarity(angle: float, scale: float, shift: tuple[float, float]) -> None:
    """A crop pattern warped into a big image (rotated, scaled, shifted) comes back."""
    size = 64
    rng = np.random.default_rng(3)
    pattern = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 2.0)
    # crop -> image
    A = _similarity(angle, scale, 0.0, 0.0)
    corners = _apply(A, np.array([[0, 0], [size, 0], [0, size], [size, size]], float))
    A[:, 2] = -corners.min(0) + np.array(shift)
    W, H = (corners.max(0) - corners.min(0) + 2 * np.array(shift)).astype(int)
    img = cv2.warpAffine(pattern, A, (int(W), int(H)), flags=cv2.INTER_CUBIC)
    lm = _apply(A, F.template(size))
    face = F.align_face(img, lm, size=size, mask=False)
    assert np.abs(face.landmarks - F.template(size)).max() < 0.5
    np.testing.assert_allclose(face.matrix, cv2.invertAffineTransform(A), atol=1e-6)
    inner = slice(8, -8)
    a = face.image[inner, inner].astype(float).ravel()
    b = pattern[inner, inner].astype(float).ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.9


def test_eyes_land_on_template_for_synthetic_faces() -> None:
    """Template faces under pose + expression + landmark noise: eyes within 2 px at size 64."""
    rng = np.random.default_rng(4)
    base = F.template(256)
    worst = 0.0
    for _ in range(50):
        shape = base.copy()
        shape[48:68, 1] += rng.uniform(-10, 25) * (shape[48:68, 1] - shape[48:68, 1].min()) / 40  # mouth open
        shape[0:17, 1] += rng.uniform(0, 15) * np.linspace(0, 1, 17) * np.linspace(1, 0, 17) * 4  # jaw drop
        shape[17:27, 1] -= rng.uniform(0, 8)  # brows raised
        shape[:, 0] = 128 + (shape[:, 0] - 128) * rng.uniform(0.9, 1.1)  # slight yaw-like squash
        shape += rng.normal(0, 1.0, shape.shape)  # detector noise
        M = _similarity(rng.uniform(-40, 40), rng.uniform(0.5, 3.0), *rng.uniform(0, 500, 2))
        lm = _apply(M, shape)
        img = np.zeros((64, 64, 3), np.uint8)
        face = F.align_face(img, lm, size=64)
        worst = max(worst, float(_eye_error(face.landmarks, 64).max()))
    assert worst < 2.0


def test_hull_mask_zeroes_outside_keeps_inside() -> None:
    size = 64
    img = np.full((300, 300, 3), 255, np.uint8)
    lm = _apply(_similarity(10.0, 2.5, 60.0, 40.0), F.template(size))
    face = F.align_face(img, lm, size=size, mask=True)
    m = F.hull_mask(face.landmarks, size)
    assert m.dtype == bool and m.shape == (size, size)
    assert (face.image[~m] == 0).all()
    # inside, away from the hull's edge, the (white) face is kept
    inner = cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (face.image[inner] == 255).all()
    area = cv2.contourArea(cv2.convexHull(face.landmarks))
    assert abs(m.sum() - area) < 0.05 * area
    unmasked = F.align_face(img, lm, size=size, mask=False)
    assert (unmasked.image == 255).all()


def test_hull_mask_of_square() -> None:
    sq = np.array([[10.0, 10.0], [20.0, 10.0], [20.0, 20.0], [10.0, 20.0]])
    lm = np.concatenate([sq, np.repeat(sq[:1], 64, axis=0)])
    m = F.hull_mask(lm, 32)
    assert m[10:21, 10:21].all() and m.sum() == 121


def test_align_face_input_errors() -> None:
    img = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError):
        F.align_face(img, np.zeros((5, 2)))
    bad = F.template(50).copy()
    bad[3] = np.nan
    with pytest.raises(ValueError):
        F.align_face(img, bad)
    with pytest.raises(ValueError):
        F.align_face(img.astype(np.float32), F.template(50))


def test_smooth_landmarks_within_valid_runs() -> None:
    rng = np.random.default_rng(5)
    n = 40
    truth = np.broadcast_to(F.template(64), (n, 68, 2)).copy()
    noisy = (truth + rng.normal(0, 1.0, truth.shape)).astype(np.float32)
    valid = np.ones(n, bool)
    valid[20] = False
    noisy[20] = 1e6  # an invalid frame must not leak into its neighbours
    out = F.smooth_landmarks(noisy, valid, sigma=2.0)
    assert out.shape == (n, 68, 2) and out.dtype == np.float32
    assert out[20, 0, 0] == np.float32(1e6)
    ok = valid
    assert np.abs(out[ok] - truth[ok]).mean() < 0.6 * np.abs(noisy[ok] - truth[ok]).mean()
    np.testing.assert_array_equal(F.smooth_landmarks(noisy, valid, sigma=0), noisy)
    const = F.smooth_landmarks(truth, np.ones(n, bool), sigma=3.0)
    np.testing.assert_allclose(const, truth, atol=1e-4)


# ------------------------------------------------------------------ dlib models


def test_model_paths_exist_without_importing_the_package() -> None:
    import sys

    imported_before = "face_recognition_models" in sys.modules
    assert F.predictor_path().name == "shape_predictor_68_face_landmarks.dat"
    assert F.predictor_path().stat().st_size > 1_000_000
    assert F.cnn_detector_path().is_file()
    assert imported_before or "face_recognition_models" not in sys.modules  # it needs pkg_resources


def test_missing_model_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(FacedynError, match="face-recognition-models"):
        F.predictor_path()


def test_landmarker_options_are_validated() -> None:
    with pytest.raises(ConfigError):
        F.FaceLandmarker(detector="haar")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        F.FaceLandmarker(upsample=-1)
    with pytest.raises(ConfigError):
        F.FaceLandmarker(max_side=10)


def test_landmarker_is_picklable_before_and_after_use() -> None:
    lmk = F.FaceLandmarker(detector="hog", upsample=0, max_side=320)
    lmk(np.zeros((64, 64, 3), np.uint8))
    back = pickle.loads(pickle.dumps(lmk))
    assert (back.detector, back.upsample, back.max_side) == ("hog", 0, 320)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    skdata = pytest.importorskip("skimage.data")
    return np.asarray(skdata.astronaut())


@pytest.fixture(scope="module")
def landmarker() -> F.FaceLandmarker:
    return F.FaceLandmarker().load()


def test_face_found_and_aligned_on_a_real_photo(astronaut: np.ndarray, landmarker: F.FaceLandmarker) -> None:
    lm = landmarker(astronaut)
    assert lm is not None and lm.shape == (68, 2) and lm.dtype == np.float32
    # her face is in the upper middle of the 512 x 512 photo
    cx, cy = lm.mean(0)
    assert 170 < cx < 290 and 70 < cy < 200
    assert F.shape_residual(lm) < 0.06
    face = F.align_face(astronaut, lm, size=64)
    assert _eye_error(face.landmarks, 64).max() < 2.0
    assert face.image[F.hull_mask(face.landmarks, 64)].mean() > 40  # a real, lit face inside the hull
    big = F.align_face(astronaut, lm, size=224)
    assert _eye_error(big.landmarks, 224).max() < 2.0 * 224 / 64
    all_faces = landmarker.detect_all(astronaut)
    assert len(all_faces) >= 1
    assert min(np.abs(a - lm).mean() for a in all_faces) < 1.0  # the largest face is among them


def test_gray_input_is_accepted(astronaut: np.ndarray, landmarker: F.FaceLandmarker) -> None:
    gray = cv2.cvtColor(astronaut, cv2.COLOR_RGB2GRAY)
    lm = landmarker(gray)
    assert lm is not None
    assert np.abs(lm - landmarker(astronaut)).mean() < 3.0


def test_no_face_in_blank_or_noise(landmarker: F.FaceLandmarker) -> None:
    rng = np.random.default_rng(6)
    assert landmarker(np.zeros((240, 320, 3), np.uint8)) is None
    assert landmarker(np.full((240, 320, 3), 200, np.uint8)) is None
    assert landmarker(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) is None
    assert landmarker.detect_all(np.zeros((100, 100, 3), np.uint8)) == []


def test_tracker_bridges_an_occluded_frame_and_stays_honest(astronaut: np.ndarray,
                                                            landmarker: F.FaceLandmarker) -> None:
    ref = landmarker(astronaut)
    assert ref is not None
    occluded = astronaut.copy()
    occluded[140:175, 170:280] = 0  # a bar over the mouth: the HOG score drops below 0
    tr = F.LandmarkTracker(landmarker)
    assert tr(astronaut) is not None and tr.last_source == "detect"
    lm = tr(occluded)
    assert tr.last_source == "track" and lm is not None
    assert np.abs(lm - ref).mean() < 4.0
    # a cut to an empty frame is invalid, even right after a face
    assert tr(np.zeros_like(astronaut)) is None and tr.last_source is None
    # without a face seen before, an occluded frame is never guessed from an old hint
    tr.reset()
    assert tr(np.zeros_like(astronaut)) is None
    for _ in range(3):
        tr(np.zeros_like(astronaut))
    assert tr(occluded) is None or tr.last_source == "detect"


# ------------------------------------------------------------------ real footage


def _frames(path: Path, step: int) -> Iterator[np.ndarray]:
    """Every ``step``-th frame. A truncation error at the end of the file (no_face.mp4 declares a
    few more frames than it holds) is the decoder's business, not the detector's: stop there."""
    from facedyn.data.video import iter_frames

    it = iter_frames(path)
    i = 0
    try:
        for frame, _ in it:
            if i % step == 0:
                yield frame
            i += 1
    except VideoDecodeError:
        if i == 0:
            raise


@pytest.mark.real
def test_real_talking_clip_found_and_aligned(real_data: Path, landmarker: F.FaceLandmarker) -> None:
    found, errs = [], []
    for frame in _frames(real_data / "talking_d19.mp4", 10):
        lm = landmarker(frame)
        found.append(lm is not None)
        if lm is not None:
            errs.append(_eye_error(F.align_face(frame, lm, 64).landmarks, 64).max())
    assert len(found) >= 20
    assert np.mean(found) >= 0.95
    assert max(errs) < 2.0


@pytest.mark.real
def test_real_no_face_clip(real_data: Path, landmarker: F.FaceLandmarker) -> None:
    found = [landmarker(f) is not None for f in _frames(real_data / "no_face.mp4", 10)]
    assert len(found) >= 9 and not any(found)


@pytest.mark.real
def test_real_face_leaves_the_clip(real_data: Path, landmarker: F.FaceLandmarker) -> None:
    found = [landmarker(f) is not None for f in _frames(real_data / "face_noface.mov", 12)]
    assert all(found[:4]) and not any(found[-4:])


@pytest.mark.real
def test_real_cnn_detector_single_face(real_data: Path) -> None:
    from facedyn.data.video import read_image

    img = read_image(real_data / "single_face.jpg")
    cnn = F.FaceLandmarker(detector="cnn", upsample=0, max_side=200)
    lm = cnn(img)
    assert lm is not None
    hog = F.FaceLandmarker()(img)
    assert hog is not None
    iod = np.linalg.norm(np.subtract(*F.eye_centres(hog)))
    assert np.linalg.norm(lm - hog, axis=1).mean() < 0.1 * iod  # same face, same landmarks


@pytest.mark.real
def test_real_multi_face(real_data: Path, landmarker: F.FaceLandmarker) -> None:
    from facedyn.data.video import read_image

    img = read_image(real_data / "multi_face.jpg")
    faces = landmarker.detect_all(img)
    assert len(faces) > 1
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in landmarker.boxes(img)]
    assert len(areas) == len(faces) and areas == sorted(areas, reverse=True)
    centres = np.array([f.mean(0) for f in faces])
    assert np.linalg.norm(centres[0] - centres[1]) > 50  # different people, not one face twice
