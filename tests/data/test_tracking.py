"""Tests of facedyn.data.faces.track.MultiFaceTracker: id assignment alone, then dlib on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facedyn.data.faces import FaceLandmarker, MultiFaceTracker, TrackedFace


def _box(cx: float, cy: float, side: float = 100.0) -> tuple[float, float, float, float]:
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


def _tracker(min_iou: float = 0.3, max_gap: int = 5) -> MultiFaceTracker:
    # its landmarker is never called (nor dlib loaded): assign_ids needs boxes only
    return MultiFaceTracker(min_iou=min_iou, max_gap=max_gap)


# ------------------------------------------------------------------ id assignment, no dlib


def test_new_faces_numbered_left_to_right_in_order_of_appearance() -> None:
    tr = _tracker()
    assert tr.assign_ids([]) == []
    # first frame: three faces given in no particular order get 0, 1, 2 from left to right
    assert tr.assign_ids([_box(500, 100), _box(100, 100), _box(300, 300)]) == [2, 0, 1]
    # same places, another order: same ids, in the order of the boxes given
    assert tr.assign_ids([_box(102, 101), _box(498, 100), _box(301, 298)]) == [0, 2, 1]
    # a fourth face appears: the next id, whatever its position
    assert tr.assign_ids([_box(50, 400), _box(102, 101), _box(498, 100), _box(301, 298)]) == [3, 0, 2, 1]
    # two new faces in one frame: numbered left to right after the ones seen before
    assert tr.assign_ids([_box(900, 100), _box(700, 100), _box(102, 101)]) == [5, 4, 0]


def test_faces_that_swap_sides_slowly_keep_their_ids() -> None:
    """Two faces walk past each other (one nearer the camera, lower in the frame): ids follow them."""
    tr = _tracker()
    a_x, b_x = 100.0, 500.0
    for t in range(60):
        a = _box(a_x + 7 * t, 150)
        b = _box(b_x - 7 * t, 210)  # the boxes overlap as they pass, by IoU < 0.3
        ids = tr.assign_ids([b, a] if t % 2 else [a, b])
        assert ids == ([1, 0] if t % 2 else [0, 1]), t
    assert a[0] > b[0] + 300  # they did swap sides


def test_greedy_matching_takes_the_highest_overlap_first() -> None:
    tr = _tracker(min_iou=0.1)
    tr.assign_ids([_box(100, 100), _box(160, 100)])  # ids 0 (left), 1 (right), overlapping
    # one detection between them, closer to face 1: it continues 1, and 0 is not matched
    assert tr.assign_ids([_box(150, 100)]) == [1]
    # next frame both are back: 0 is still live and gets its id back
    assert tr.assign_ids([_box(160, 100), _box(101, 100)]) == [1, 0]


def test_gaps_up_to_max_gap_keep_the_id_longer_ones_start_a_new_id() -> None:
    """A face missing for fewer than max_gap frames is still live; missing for max_gap or more, it is new."""
    tr = _tracker(max_gap=3)
    face, other = _box(200, 200), _box(600, 200)
    assert tr.assign_ids([face, other]) == [0, 1]
    for _ in range(2):  # face 0 missing for 2 frames (seen 3 frames ago when it returns)
        assert tr.assign_ids([other]) == [1]
    assert tr.assign_ids([face, other]) == [0, 1]
    for _ in range(3):  # missing for 3 frames: not seen in the last max_gap frames
        assert tr.assign_ids([other]) == [1]
    assert tr.assign_ids([face, other]) == [2, 1]
    for _ in range(10):  # an empty frame counts too: everybody gone for longer than max_gap
        assert tr.assign_ids([]) == []
    assert tr.assign_ids([other, face]) == [4, 3]


def test_a_box_that_jumps_away_is_a_new_face_and_reset_forgets_everything() -> None:
    tr = _tracker(min_iou=0.3)
    assert tr.assign_ids([_box(100, 100)]) == [0]
    assert tr.assign_ids([_box(125, 100)]) == [0]  # IoU 0.6
    assert tr.assign_ids([_box(190, 100)]) == [1]  # IoU 0.22 < 0.3: someone else
    tr.reset()
    assert tr.assign_ids([_box(190, 100), _box(20, 20)]) == [1, 0]


def test_options_are_validated() -> None:
    with pytest.raises(ValueError):
        MultiFaceTracker(min_iou=0.0)
    with pytest.raises(ValueError):
        MultiFaceTracker(max_gap=0)


# ------------------------------------------------------------------ dlib on real photos


@pytest.fixture(scope="module")
def landmarker() -> FaceLandmarker:
    return FaceLandmarker().load()


def _check_faces(faces: list[TrackedFace]) -> None:
    for f in faces:
        assert f.landmarks.shape == (68, 2) and f.landmarks.dtype == np.float32
        assert len(f.box) == 4 and all(isinstance(v, float) for v in f.box)
        l, t, r, b = f.box
        cx, cy = f.landmarks[27:48].mean(0)  # nose and eyes: inside the face's own box
        assert l < cx < r and t < cy < b


@pytest.mark.real
def test_real_group_photo_four_faces_numbered_left_to_right(real_data: Path, landmarker: FaceLandmarker) -> None:
    """multi_face.jpg shows five people; HOG (default settings) finds the four without sunglasses."""
    from facedyn.data.video import read_image

    img = read_image(real_data / "multi_face.jpg")
    faces = MultiFaceTracker(landmarker, quick=False)(img)
    assert [f.face_id for f in faces] == [0, 1, 2, 3]
    _check_faces(faces)
    lefts = [f.box[0] for f in faces]
    assert lefts == sorted(lefts)
    assert len(landmarker.detect_all(img)) == 4
    # quick=True stops at the first upsampling level with a face: it misses the smaller faces here
    assert 1 <= len(MultiFaceTracker(landmarker, quick=True)(img)) < 4


def test_two_moving_copies_of_a_real_face_keep_ids_0_and_1(landmarker: FaceLandmarker) -> None:
    """The astronaut photo pasted twice on a canvas, the copies drifting a few px per frame."""
    skdata = pytest.importorskip("skimage.data")
    # her head and shoulders, 300 x 400: below, HOG also fires weakly (score ~0.1) on her suit
    photo = np.ascontiguousarray(np.asarray(skdata.astronaut())[:300, 56:456])
    h, w = photo.shape[:2]
    tr = MultiFaceTracker(landmarker)
    for t in range(8):
        canvas = np.full((h + 60, 2 * w + 80, 3), 90, np.uint8)
        x0, y0 = 10 + 4 * t, 20 + 2 * t  # left copy drifts right and down
        x1, y1 = w + 60 - 3 * t, 30 - 2 * t  # right copy drifts left and up
        canvas[y0:y0 + h, x0:x0 + w] = photo
        canvas[y1:y1 + h, x1:x1 + w] = photo
        faces = tr(canvas)
        assert [f.face_id for f in faces] == [0, 1], t
        _check_faces(faces)
        assert faces[0].box[2] < faces[1].box[0]  # face 0 is the left copy
        shift = faces[0].landmarks.mean(0) - faces[1].landmarks.mean(0)
        assert np.abs(shift - (x0 - x1, y0 - y1)).max() < 3.0  # the same face, where each copy is
    tr.reset()
    assert [f.face_id for f in tr(canvas)] == [0, 1]
    assert tr(np.zeros_like(canvas)) == []


# ------------------------------------------------------------------ whole-frame scans every few detections


def _entering(synth_videos: Path) -> list[np.ndarray]:
    """Two synthetic people side by side, 60 frames; the right one enters at frame 12."""
    from facedyn.data import video as video_io

    left, right = sorted(synth_videos.rglob("*.mp4"))[:2]
    out = []
    for k, ((a, _), (b, _)) in enumerate(zip(video_io.iter_frames(left), video_io.iter_frames(right), strict=False)):
        out.append(np.hstack([a, b if k >= 12 else np.full_like(b, 90)]))
    return out


def test_full_scans_every_few_detections_follow_the_faces_and_find_one_that_enters(synth_videos: Path) -> None:
    frames = _entering(synth_videos)
    lmk = FaceLandmarker()
    every = MultiFaceTracker(lmk, redetect_every=10)  # the whole frame at every detection (the path before)
    sparse = MultiFaceTracker(lmk, redetect_every=10, full_scan_every=30)
    a, b = [every(f) for f in frames], [sparse(f) for f in frames]
    enters = [next(k for k, faces in enumerate(run) if len(faces) == 2) for run in (a, b)]
    assert 12 <= enters[0] <= 12 + 10 - 1 and 12 <= enters[1] <= 12 + 30 - 1  # found at the next whole-frame scan
    assert sparse.full_scans < every.full_scans == every.detections and sparse.detections >= len(frames) // 10
    # the left face, followed throughout, is as close to its true landmarks (the generator's) as with whole-frame
    # scans (measured: mean error 0.094 vs 0.107 eye distances)
    truth = np.load(next(p for p in sorted(synth_videos.rglob("*.landmarks.npy"))))
    iod = np.linalg.norm(truth[:, 36:42].mean(1) - truth[:, 42:48].mean(1), axis=1)
    err = [np.mean([np.linalg.norm(faces[0].landmarks - t, axis=1).mean() / d for faces, t, d in
                    zip(run, truth, iod, strict=False)]) for run in (a, b)]
    assert all(fa[0].face_id == fb[0].face_id == 0 for fa, fb in zip(a, b, strict=True))
    assert err[1] <= err[0] + 0.01 and err[1] < 0.15
    with pytest.raises(ValueError, match="full_scan_every"):
        MultiFaceTracker(lmk, full_scan_every=0)


def test_boxes_near_finds_the_face_around_its_box_and_nothing_elsewhere(synth_videos: Path) -> None:
    frame = _entering(synth_videos)[20]
    lmk = FaceLandmarker()
    whole = lmk.boxes(frame, quick=False)
    assert len(whole) == 2
    for box in whole:
        near = lmk.boxes_near(frame, [box])
        assert len(near) == 1 and max(abs(p - q) for p, q in zip(near[0][:4], box[:4], strict=False)) < 0.25 * (
            box[2] - box[0])
    assert len(lmk.boxes_near(frame, list(whole))) == 2
    side = whole[0][2] - whole[0][0]
    assert lmk.boxes_near(np.full_like(frame, 90), [whole[0]]) == []
    assert lmk.boxes_near(frame, [(0.0, 0.0, side / 4, side / 4)]) == []  # a window with no face in it


def test_load_readies_the_models_and_the_pose_constants_before_any_frame() -> None:
    """What ``analyze`` calls before it forks a child per video: the child then shares them instead of making
    them again (the pose constants alone took ~0.12 s a video)."""
    from facedyn.data.faces.detect import _shape_predictor
    from facedyn.tasks import pose

    pose._action_projector.cache_clear()
    tracker = MultiFaceTracker(redetect_every=10)
    assert tracker.load() is tracker
    assert pose._action_projector.cache_info().currsize == 1 and _shape_predictor.cache_info().currsize == 1
