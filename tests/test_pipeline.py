"""``analyze``'s threaded pipeline (decoding, tracking and the networks in threads of their own, face boxes found
ahead) and its processes pipeline (the tracking in a forked child) give the table of the serial one, stop their
threads and child when their caller stops, and pass errors on."""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from facedyn import forked
from facedyn.analysis import PIPELINES, analyze, iter_faces
from facedyn.data import video as video_io
from facedyn.data.faces import FaceLandmarker, MultiFaceTracker
from facedyn.data.faces.ahead import DetectAhead
from facedyn.errors import ConfigError
from facedyn.threads import ahead


def _same_table(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-6) -> None:
    """Same columns, rows and values (NaN where the other has NaN); the arrays (the DR, from batches of other
    sizes) within ``rtol`` of their range."""
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    arrays = [c for c in a.columns if a[c].map(lambda v: isinstance(v, np.ndarray)).any()]
    pd.testing.assert_frame_equal(a.drop(columns=arrays), b.drop(columns=arrays), check_exact=True)
    for c in arrays:
        for x, y in zip(a[c], b[c], strict=True):
            if isinstance(x, np.ndarray):
                np.testing.assert_allclose(y, x, rtol=rtol, atol=rtol * np.abs(x).max())
            else:
                assert np.isnan(x) and np.isnan(y)


@pytest.fixture(scope="module")
def two_faces_with_gaps(synth_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two synthetic people side by side, 60 frames: both gone on frames 20-25, the right one on 40-44 (frames
    without a face, a face the detector misses, detections off the fit-tracker's schedule)."""
    left, right = sorted(synth_videos.rglob("*.mp4"))[:2]

    def frames() -> Iterator[np.ndarray]:
        for k, ((a, _), (b, _)) in enumerate(islice(zip(video_io.iter_frames(left), video_io.iter_frames(right),
                                                        strict=False), 60)):
            frame = np.hstack([a, b])
            if 20 <= k < 26:
                frame[:] = 90
            elif 40 <= k < 45:
                frame[:, a.shape[1]:] = 90
            yield frame

    out = tmp_path_factory.mktemp("pipeline") / "two.mp4"
    video_io.write_video(out, frames(), fps=25, deterministic=True)
    return out


#: the pipelines that run here (processes: where the platform forks)
_PARALLEL = ["threads", *(["processes"] if forked.available() else [])]


@pytest.mark.parametrize("track", ["fit", "detect"])
def test_the_parallel_pipelines_give_the_serial_table(two_faces_with_gaps: Path, track: str) -> None:
    assert PIPELINES == ("auto", "processes", "threads", "serial")
    for every in (1, 2):
        serial = analyze(two_faces_with_gaps, device="cpu", every=every, track=track, pipeline="serial")
        for pipeline in ["auto", *_PARALLEL]:  # auto (the default): by the clip's length
            _same_table(serial, analyze(two_faces_with_gaps, device="cpu", every=every, track=track,
                                        pipeline=pipeline))
        assert serial["face_id"].max() >= 1 and (serial["face_id"] == -1).any()  # two faces, and frames without


def test_a_single_face_clip_and_a_still_image_are_the_same_in_both_pipelines(synth_videos: Path,
                                                                             tmp_path: Path) -> None:
    video = sorted(synth_videos.rglob("*.mp4"))[0]
    frame = next(video_io.iter_frames(video))[0]
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), np.ascontiguousarray(frame[:, :, ::-1]))
    for source in (video, still):
        serial = analyze(source, device="cpu", pipeline="serial")
        for pipeline in _PARALLEL:
            _same_table(serial, analyze(source, device="cpu", pipeline=pipeline))
    with pytest.raises(ConfigError, match="pipeline must be one of auto, processes, threads, serial"):
        analyze(video, device="cpu", pipeline="parallel")
    with pytest.raises(ConfigError, match="full-scan-every must be >= 1"):
        analyze(video, device="cpu", full_scan_every=0)


@pytest.mark.skipif(not forked.available(), reason="the processes pipeline needs a platform that forks")
def test_auto_follows_the_faces_of_a_long_video_in_a_child_process(synth_videos: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import facedyn.analysis

    video = sorted(synth_videos.rglob("*.mp4"))[0]  # 60 frames
    for frames, child in ((60, True), (61, False)):  # a video of at least AUTO_PROCESSES_FRAMES frames is long
        monkeypatch.setattr(facedyn.analysis, "AUTO_PROCESSES_FRAMES", frames)
        stream = iter_faces(video, device="cpu", batch_faces=4)
        next(stream)
        assert bool(mp.active_children()) == child
        stream.close()
    assert not mp.active_children()


def _threads_named(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


@pytest.mark.parametrize("pipeline", _PARALLEL)
def test_stopping_early_stops_the_decoding_and_tracking_threads(synth_videos: Path, pipeline: str) -> None:
    video = sorted(synth_videos.rglob("*.mp4"))[0]
    before = set(_threads_named("facedyn-"))
    stream = iter_faces(video, device="cpu", batch_faces=4, pipeline=pipeline)  # results come after 4 frames
    first = [next(stream) for _ in range(3)]
    assert [faces[0].frame for faces in first] == [0, 1, 2]
    assert set(_threads_named("facedyn-")) - before  # decoding and tracking run ahead
    assert bool(mp.active_children()) == (pipeline == "processes")
    stream.close()
    assert not set(_threads_named("facedyn-")) - before and not mp.active_children()


def test_ahead_keeps_order_bounds_memory_and_passes_errors_on() -> None:
    made: list[int] = []
    closed = threading.Event()

    def numbers() -> Iterator[int]:
        try:
            for k in range(50):
                made.append(k)
                if k == 30:
                    raise ValueError("broken at 30")
                yield k
        finally:
            closed.set()

    got = []
    with pytest.raises(ValueError, match="broken at 30"):
        for k in ahead(numbers(), depth=3):
            time.sleep(0.001)
            assert len(made) <= len(got) + 3 + 2  # the queue, the item being handed over, the one being made
            got.append(k)
    assert got == list(range(30)) and closed.wait(5)

    stream = ahead(numbers(), depth=2, name="facedyn-test")
    assert [next(stream) for _ in range(5)] == list(range(5))
    closed.clear()
    stream.close()  # the consumer stops: the worker ends and the source is closed (in the worker)
    assert closed.is_set() and not _threads_named("facedyn-test")
    with pytest.raises(ValueError, match="depth"):
        ahead([], depth=0)


def test_detect_ahead_takes_only_the_boxes_of_the_very_frame(synth_videos: Path) -> None:
    video = sorted(synth_videos.rglob("*.mp4"))[0]
    frames = [f for f, _ in islice(video_io.iter_frames(video), 30)]
    plain = MultiFaceTracker(FaceLandmarker(), redetect_every=10)
    finder = DetectAhead(redetect_every=10)
    tracker = MultiFaceTracker(finder, redetect_every=10)
    copied, detected = None, []
    for n, frame in enumerate(frames):
        if copied is None and n > 0 and finder.expected(n):
            copied = n
            finder.find(n, frame.copy())  # the boxes of another array (the same pixels): not taken
        else:
            finder.find(n, frame)
        a, b = plain(frame), finder.track(tracker, n, frame)
        assert [(f.face_id, f.detected) for f in a] == [(f.face_id, f.detected) for f in b]
        assert all(np.array_equal(x.landmarks, y.landmarks) for x, y in zip(a, b, strict=True))
        detected += [n] if b and b[0].detected else []
    assert copied in detected and plain.detections == tracker.detections == len(detected) >= 3
    assert finder.hits + finder.misses == len(detected) and finder.hits >= 2 and finder.unused == 1
    assert [n for n in range(30, 60) if finder.expected(n)] == [n for n in range(30, 60) if n % 10 == detected[-1] % 10
                                                                 and n > detected[-1]]


@pytest.mark.slow
def test_the_onnx_engine_in_the_threads_pipeline_matches_the_serial_torch_table(two_faces_with_gaps: Path,
                                                                               tmp_path: Path) -> None:
    from facedyn.export import export_onnx

    onnx = export_onnx("dr-t5", tmp_path / "dr-t5" / "onnx" / "best.onnx")  # named dr-t5 in the table too
    serial = analyze(two_faces_with_gaps, device="cpu", every=3, pipeline="serial")
    threads = analyze(two_faces_with_gaps, runs=[onnx], device="cpu", every=3, engine="onnx")
    assert threads.attrs["runs"] == serial.attrs["runs"] == ["dr-t5"]
    _same_table(serial, threads, rtol=1e-5)  # tracking, pose, proxies exactly; the DR within another engine's rounding
