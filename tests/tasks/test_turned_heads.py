"""Issue 30, items 1-3, on synthetic faces whose AUs, pose and landmarks are known: AU proxies that head motion does
not move, a ``confidence`` that follows the landmarks' error rather than the pose, head pose on turned heads, fits
that jump re-detected, and the optional temporal smoothing.

The generator's camera is weak perspective (:data:`~facedyn.tasks.pose.SYNTHETIC_FOCAL`), facedyn's default a pinhole
four face widths away: the geometry tests pass the generator's camera (the first test shows why).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from facedyn.data.faces import FaceLandmarker, MultiFaceTracker
from facedyn.data.faces.track import MAX_POSE_STEP
from facedyn.data.synthetic.face3d import _rotation, deform, project, sample_identity
from facedyn.data.synthetic.labels import AU_INDEX
from facedyn.data.synthetic.render import render_frame
from facedyn.tasks import pose as pose_mod
from facedyn.tasks.pose import SYNTHETIC_FOCAL, estimate_pose, fit_pose
from facedyn.tasks.proxies import PROXY_COLUMNS, StreamProxies, measures

#: the generator's AU behind each proxy
AU_OF = {"AU01_p": "AU01", "AU02_p": "AU02", "AU12_p": "AU12", "AU25_p": "AU25", "AU26_p": "AU26",
         "AU45_p": "AU45"}
SWEEP = [(0.0, p, 0.0) for p in (-20.0, -10.0, 10.0, 20.0)] + [(y, 0.0, 0.0) for y in (-30.0, -15.0, 15.0, 30.0)]


def _landmarks(identity, frames, camera: float | None = None) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``(N, 68, 2)`` landmarks of ``identity`` for ``frames`` = [(AU name or None, (yaw, pitch, roll))], each AU at
    intensity 3: the generator's own projection (``camera`` None), or a pinhole ``camera`` face widths away."""
    au = np.zeros((len(frames), len(AU_INDEX)))
    for k, (name, _) in enumerate(frames):
        if name:
            au[k, AU_INDEX[name]] = 3.0
    pose = np.array([p for _, p in frames], np.float64)
    P = deform(identity, au)
    if camera is None:
        return project(identity, P, pose, np.zeros((len(frames), 3)), 160)[0].astype(np.float64)
    Y = np.einsum("nij,nkj->nki", _rotation(pose), P - [0.0, -14.0, 0.0])
    d = camera * 145.0
    return 80.0 + 0.6 * Y[..., :2] * d / (d - Y[..., 2:3])


def _sweep_frames() -> list:  # type: ignore[type-arg]
    """Rest at frontal, the pose sweep at rest, each AU at frontal, each AU at yaw -30 and +30."""
    return ([(None, (0.0, 0.0, 0.0))] + [(None, p) for p in SWEEP] + [(au, (0.0, 0.0, 0.0)) for au in AU_OF.values()]
            + [(au, (y, 0.0, 0.0)) for au in AU_OF.values() for y in (-30.0, 30.0)])


def _sweep_scores(g: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Per proxy: the largest move over the pose sweep at rest / the frontal response to its AU, and the response at
    yaw -30 and +30 / the frontal one (``g``: measures of :func:`_sweep_frames`)."""
    n = 1 + len(SWEEP)
    move, ratio = {}, {}
    for j, col in enumerate(PROXY_COLUMNS):
        v = g[col]
        resp = v[n + j] - v[0]
        move[col] = float(np.abs(v[1:n] - v[0]).max() / abs(resp))
        k = n + len(PROXY_COLUMNS) + 2 * j
        ratio[col] = ((v[k] - v[1 + SWEEP.index((-30.0, 0.0, 0.0))]) / resp,
                      (v[k + 1] - v[1 + SWEEP.index((30.0, 0.0, 0.0))]) / resp)
    return move, ratio


def test_the_generator_projects_with_facedyns_pose_convention_on_a_weak_perspective_camera() -> None:
    person = sample_identity(np.random.default_rng(5))
    pose = (30.0, -15.0, 8.0)
    lm = _landmarks(person, [(None, pose)])[0]
    # the person's own 3-D face, fitted with the generator's camera: the pose comes back exactly and the landmarks
    # are the projection of that face (R = Rz(roll) Rx(pitch) Ry(yaw), the same signs as facedyn's)
    fit = fit_pose(lm, SYNTHETIC_FOCAL, template=person.shape)
    assert fit is not None
    np.testing.assert_allclose(fit.pose, pose, atol=1e-3)
    assert np.abs(fit.project(person.shape) - lm).max() < 1e-3  # pixels
    # facedyn's default camera (a pinhole 4 face widths away) reads this weak-perspective face's yaw short
    short = pose[0] - fit_pose(lm, template=person.shape).pose[0]
    assert 1.0 < short < 6.0, short  # measured 1.5 (4.3 on the mean face)


def test_proxies_do_not_move_with_head_pose_and_keep_their_response() -> None:
    """Item 1: a pitch sweep of ±20° and a yaw sweep of ±30° at rest move every proxy by < 10 % of its response to its
    AU at intensity 3 at frontal pose; the response at ±30° yaw is within 25 % of the frontal one."""
    worst: dict[str, float] = dict.fromkeys(PROXY_COLUMNS, 0.0)
    planar: dict[str, float] = dict.fromkeys(PROXY_COLUMNS, 0.0)
    lo, hi = 1.0, 1.0
    for seed in range(6):
        lm = _landmarks(sample_identity(np.random.default_rng(seed)), _sweep_frames())
        move, ratio = _sweep_scores(measures(lm, frontalise=True, focal=SYNTHETIC_FOCAL))
        for col in PROXY_COLUMNS:
            worst[col] = max(worst[col], move[col])
            lo, hi = min(lo, *ratio[col]), max(hi, *ratio[col])
        for col, m in _sweep_scores(measures(lm))[0].items():  # the image-plane measures of before
            planar[col] = max(planar[col], m)
    # measured: 0.034 0.036 0.037 0.001 0.077 0.012, responses 1.00-1.02 (image-plane measures: 1.18 0.94 0.79 0.06
    # 1.30 0.25, responses up to 1.16)
    assert max(worst.values()) < 0.1, worst
    assert lo > 0.75 and hi < 1.25, (lo, hi)
    assert planar["AU26_p"] > 0.5 and planar["AU01_p"] > 0.5, planar  # the sweep does move the planar measures


def test_frontalised_measures_keep_nan_frames_and_read_a_frontal_face_as_before() -> None:
    frames = [(None, (0.0, 0.0, 0.0))] * 8 + [("AU25", (0.0, 0.0, 0.0)), (None, (0.0, 0.0, 0.0))]
    lm = _landmarks(sample_identity(np.random.default_rng(0)), frames)
    lm[9] = np.nan
    g, planar = measures(lm, frontalise=True, focal=SYNTHETIC_FOCAL), measures(lm)
    assert np.isnan(g["AU25_p"][9]) and np.isfinite(g["AU25_p"][:9]).all()
    # at frontal pose the lips' gap reads as in the image, in the person's own eye distances
    assert g["AU25_p"][8] - g["AU25_p"][0] == pytest.approx(planar["AU25_p"][8] - planar["AU25_p"][0], rel=0.01)


def test_proxies_on_a_pinhole_camera_with_facedyns_default_focal() -> None:
    """The same sweep seen by a pinhole camera four face widths away, measured with facedyn's default camera."""
    worst: dict[str, float] = dict.fromkeys(PROXY_COLUMNS, 0.0)
    for seed in range(6):
        lm = _landmarks(sample_identity(np.random.default_rng(seed)), _sweep_frames(), camera=4.0)
        for col, m in _sweep_scores(measures(lm, frontalise=True))[0].items():
            worst[col] = max(worst[col], m)
    assert max(worst.values()) < 0.15, worst  # measured: AU26_p 0.092, the others <= 0.05


def test_stream_proxies_after_warm_up_stay_at_rest_through_the_sweep() -> None:
    """analyze's path: :class:`StreamProxies` taking the pose fits of a face it has seen for its warm-up."""
    rng = np.random.default_rng(0)
    person = sample_identity(np.random.default_rng(1))
    warm = [(None, (float(y), float(p), 0.0)) for y, p in rng.uniform(-5, 5, (50, 2))]
    frames = warm + [(None, p) for p in SWEEP] + [(au, (0.0, 0.0, 0.0)) for au in AU_OF.values()]
    lm = _landmarks(person, frames)
    stream = StreamProxies(focal=SYNTHETIC_FOCAL)
    out = [stream(x, stream.fit(x))[0] for x in lm]
    for j, col in enumerate(PROXY_COLUMNS):
        sweep = max(o[col] for o in out[50:50 + len(SWEEP)])
        response = out[50 + len(SWEEP) + j][col]
        assert sweep < 0.1 * response, (col, sweep, response)


def _turned(occluded: bool) -> tuple[np.ndarray, np.ndarray]:
    """Generator landmarks of 6 people at |yaw| 30-45°, pitch -20..20°, and their poses; with ``occluded`` the jaw
    line of the side turned away moved onto a silhouette, 0.2 IOD out and 0.3 up, as dlib placed it on the
    generator's rendered faces at these yaws (measured: 0.38-0.51 IOD from the jaw line's projection)."""
    rng = np.random.default_rng(3)
    poses = np.array([(s * y, p, rng.uniform(-5, 5)) for y in (30, 38, 45) for s in (-1, 1) for p in (-20, 0, 20)])
    lms = []
    for seed in range(6):
        person = sample_identity(np.random.default_rng(seed))
        lm = _landmarks(person, [(None, tuple(p)) for p in poses])
        if occluded:
            iod = np.linalg.norm(lm[:, 36:42].mean(1) - lm[:, 42:48].mean(1), axis=1)
            for k, (yaw, _, _) in enumerate(poses):
                far = slice(9, 17) if yaw > 0 else slice(0, 8)
                lm[k, far, 0] += np.sign(yaw) * 0.2 * iod[k]
                lm[k, far, 1] -= 0.3 * iod[k]
        lms.append(lm)
    return np.concatenate(lms), np.tile(poses, (6, 1))


@pytest.mark.parametrize("occluded", [False, True])
def test_pose_of_turned_heads(occluded: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 3: at |yaw| 30-45° the mean pose error is <= 3° in yaw, pitch and roll."""
    lm, truth = _turned(occluded)
    err = np.abs(estimate_pose(lm, focal=SYNTHETIC_FOCAL) - truth).mean(0)
    # measured: 2.1 2.1 0.8 (occluded: 2.7 2.4 1.1; facedyn's default camera: 3.7 1.7 1.0)
    assert (err <= 3.0).all(), err
    if occluded:  # without fading out the jaw line turned away, the silhouette pulls the fit off
        monkeypatch.setattr(pose_mod, "CONTOUR_FADE_DEG", (1e9, 2e9))
        assert np.abs(estimate_pose(lm, focal=SYNTHETIC_FOCAL) - truth).mean(0).max() > 3.0


def test_confidence_follows_the_landmark_error_not_the_pose() -> None:
    """Item 2: dlib's detector and fitter on rendered faces, yaw -45..45°, pitch -25..25°: Spearman(confidence,
    -error) >= 0.5, and the well-fitted turned faces (error below the median, |yaw| >= 30°) keep >= 0.8 of the
    frontal faces' mean confidence."""
    lmk = FaceLandmarker()
    conf, err, yaw = [], [], []
    for seed in range(700, 704):
        person = sample_identity(np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        for y in (-45, -30, -15, 0, 15, 30, 45):
            for p in (-25, 0, 25):
                tracker = MultiFaceTracker(lmk, redetect_every=2, focal=SYNTHETIC_FOCAL)
                au = np.zeros(len(AU_INDEX))
                au[rng.choice(len(au), 2, replace=False)] = rng.uniform(0, 3, 2)
                for f in range(2):  # detected, then fitted after a small move
                    pose = (y + f * rng.uniform(-3, 3), p + f * rng.uniform(-2, 2), rng.uniform(-5, 5))
                    img, truth = render_frame(person, au * (1 + 0.2 * f), pose, size=112, rng=rng,
                                              offset=tuple(f * rng.uniform(-0.02, 0.02, 2)))
                    faces = tracker(img)
                    if faces:
                        iod = np.linalg.norm(truth[36:42].mean(0) - truth[42:48].mean(0))
                        err.append(np.linalg.norm(faces[0].landmarks - truth, axis=1).mean() / iod)
                        conf.append(faces[0].confidence)
                        yaw.append(abs(y))
    c, e, a = np.array(conf), np.array(err), np.array(yaw)
    assert len(c) > 120
    rho = spearmanr(c, -e)[0]
    ratio = c[(a >= 30) & (e < np.median(e))].mean() / c[a == 0].mean()
    # measured: 0.69, 0.98 (the former shape-only confidence: 0.46, 0.0)
    assert rho >= 0.5 and ratio >= 0.8, (rho, ratio)


class _JumpOnce:
    """A landmarker whose fit (not its detection) on frame ``jump`` returns the same face at pitch +25°."""

    def __init__(self, inner: FaceLandmarker, jumped: np.ndarray, jump: int) -> None:
        self.inner, self.jumped, self.jump = inner, jumped, jump
        self.frame, self.calls = -1, 0

    def next_frame(self) -> None:
        self.frame, self.calls = self.frame + 1, 0

    def boxes(self, image: np.ndarray, quick: bool = False) -> list:  # type: ignore[type-arg]
        self.calls += 1  # the detector ran: the frame is not being fitted
        return self.inner.boxes(image, quick)

    def landmarks_in_box(self, image: np.ndarray, box: tuple) -> np.ndarray:  # type: ignore[type-arg]
        if self.frame == self.jump and self.calls == 0:
            return self.jumped.astype(np.float32)
        return self.inner.landmarks_in_box(image, box)


@pytest.mark.parametrize("step", [MAX_POSE_STEP, float("inf")])
def test_a_fit_whose_pose_jumps_is_detected_again(step: float) -> None:
    """Item 3: a fitted frame whose head pose jumps from the last frame's re-detects instead of keeping the fit."""
    person = sample_identity(np.random.default_rng(2))
    img, _ = render_frame(person, {}, (5.0, 0.0, 0.0), size=128)
    _, jumped = render_frame(person, {}, (5.0, 25.0, 0.0), size=128)
    lmk = _JumpOnce(FaceLandmarker(), jumped, jump=2)
    # shape and width checks off: the pose check alone decides
    tracker = MultiFaceTracker(lmk, redetect_every=10, max_shape_change=1e9, max_scale_change=None,  # type: ignore[arg-type]
                               max_frontal_residual=1.0, max_pose_step=step, focal=SYNTHETIC_FOCAL)
    detected, pitch = [], []
    for _ in range(4):
        lmk.next_frame()
        face = tracker(img)[0]
        detected.append(face.detected)
        pitch.append(face.pose.pose[1])
    if np.isfinite(step):
        assert detected == [True, False, True, False]  # the jump re-detected, the next frame fitted again
        assert max(abs(p - pitch[0]) for p in pitch) < 3.0
    else:
        assert detected == [True, False, False, False] and pitch[2] - pitch[0] > 15.0  # kept the bad fit


def test_smoothing_is_an_exponential_average_per_face() -> None:
    from facedyn.analysis import PoseSmoother

    sm = PoseSmoother(0.1)
    cols = PoseSmoother.COLUMNS
    first = dict.fromkeys(cols, 0.0)
    sm(0, first, 0.0)
    assert first == dict.fromkeys(cols, 0.0)  # a face's first frame is its own
    step = dict.fromkeys(cols, 10.0)
    step["AU45_p"] = float("nan")
    sm(0, step, 0.1)  # one time constant later: 1 - 1/e of the way
    assert step["pose_yaw_deg"] == pytest.approx(10.0 * (1 - np.exp(-1.0)))
    assert np.isnan(step["AU45_p"])  # NaN passes through ...
    after = dict.fromkeys(cols, 0.0)
    sm(0, after, 0.2)
    assert after["AU45_p"] == 0.0  # ... without disturbing the average
    other = dict.fromkeys(cols, 5.0)
    sm(1, other, 0.2)
    assert other["pose_yaw_deg"] == 5.0  # each face its own


def test_analyze_smooth_option(tmp_path: Path) -> None:
    """``smooth=`` (off by default) smooths the pose and proxy columns of iter_faces; a negative value is refused."""
    from facedyn.analysis import iter_faces
    from facedyn.data.synthetic import synthesize_clip
    from facedyn.data.video import write_video
    from facedyn.errors import ConfigError

    clip = synthesize_clip(seed=4, seconds=1.0, fps=25, size=128)
    video = tmp_path / "clip.mp4"
    write_video(video, clip.frames(), fps=25)

    def yaw(smooth: float) -> np.ndarray:
        return np.array([f.face["pose_yaw_deg"] for fs in iter_faces(video, {}, "cpu", smooth=smooth) for f in fs])

    raw, smoothed = yaw(0.0), yaw(0.2)
    assert len(raw) == len(smoothed) == 25 and raw[0] == smoothed[0]
    assert np.abs(np.diff(smoothed)).mean() < np.abs(np.diff(raw)).mean()
    with pytest.raises(ConfigError, match="smooth"):
        next(iter_faces(video, {}, "cpu", smooth=-1.0))
