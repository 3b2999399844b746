"""Exact frame counts in every container PyAV reads: one row per decoded frame, ``frame`` = decode index,
timestamps from the stream (issue 30, item 4).

Each test writes its own small files with PyAV: MPEG-1/MPEG-2 in ``.mpg`` (program streams, as GRID's clips:
their header declares no frame count, and FFmpeg's duration estimate gave 54-74 frames for 75), MPEG-2 in a
``.ts`` transport stream, MPEG-4 and MJPEG in ``.avi``, H.264 and FFV1 in ``.mkv``, VP8/VP9 in ``.webm``, H.264
in ``.mp4`` (also with an edit list), and image folders.
Every frame carries its index as a binary code of white blocks, so a frame decoded under another's index shows.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import facedyn
from facedyn.data import video as video_io

N, FPS, SIZE = 75, 25, 160  # a GRID clip: 3 s at 25 fps
_BITS, _BLOCK = 10, 8


def _code(frame: np.ndarray, i: int) -> np.ndarray:
    """``frame`` with ``i`` drawn as a binary code in its top rows (white block = 1)."""
    out = frame.copy()
    out[:_BLOCK + 4, :_BITS * (_BLOCK + 2) + 2] = 0
    for b in range(_BITS):
        if (i >> b) & 1:
            out[2:2 + _BLOCK, 2 + b * (_BLOCK + 2):2 + b * (_BLOCK + 2) + _BLOCK] = 255
    return out


def _index(frame: np.ndarray) -> int:
    """The index :func:`_code` drew into ``frame`` (after lossy coding)."""
    inner = [frame[4:_BLOCK, 4 + b * (_BLOCK + 2):b * (_BLOCK + 2) + _BLOCK].mean() for b in range(_BITS)]
    return sum(1 << b for b, v in enumerate(inner) if v > 128)


@pytest.fixture(scope="module")
def face_frames() -> list[np.ndarray]:
    """A synthetic face turning its head a little, each frame with its index drawn in."""
    from facedyn.data.synthetic import render_frame, sample_identity

    ident = sample_identity(np.random.default_rng(11))
    frames = []
    for i in range(N):
        pose = (5 * np.sin(2 * np.pi * i / N), 2 * np.sin(4 * np.pi * i / N), 0.0)
        f, _ = render_frame(ident, {"AU25": 2.0 * (i % 25 > 12)}, pose, SIZE, np.random.default_rng(i))
        frames.append(_code(f, i))
    return frames


def _write(path: Path, frames: list[np.ndarray], codec: str, pix_fmt: str = "yuv420p", b_frames: int | None = None,
           audio: bool = False) -> Path:
    """Encode ``frames`` at :data:`FPS` with presentation times ``i / FPS`` (PyAV, the container by suffix)."""
    rate = Fraction(FPS)
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=rate)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        if codec in ("mpeg1video", "mpeg2video", "mpeg4"):
            s.codec_context.bit_rate = 2_000_000
            s.codec_context.gop_size = 12
        if b_frames is not None:
            s.codec_context.max_b_frames = b_frames
        a = c.add_stream("mp2", rate=16000) if audio else None
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = i, 1 / rate
            for p in s.encode(vf):
                c.mux(p)
            if a is not None:  # GRID's clips carry their speech beside the video
                af = av.AudioFrame.from_ndarray(np.zeros((1, 640), np.int16), format="s16", layout="mono")
                af.sample_rate, af.pts, af.time_base = 16000, i * 640, Fraction(1, 16000)
                for p in a.encode(af):
                    c.mux(p)
        for p in s.encode():
            c.mux(p)
        if a is not None:
            for p in a.encode():
                c.mux(p)
    return path


CONTAINERS = [  # (file, codec, pixel format, B-frames, audio)
    ("grid.mpg", "mpeg1video", "yuv420p", 2, True),
    ("mpeg2.mpg", "mpeg2video", "yuv420p", 2, False),
    ("mpeg2.ts", "mpeg2video", "yuv420p", 2, False),
    ("mpeg4.avi", "mpeg4", "yuv420p", 2, False),
    ("mjpeg.avi", "mjpeg", "yuvj420p", None, False),
    ("h264.mkv", "libx264", "yuv420p", None, False),
    ("ffv1.mkv", "ffv1", "yuv420p", None, False),
    ("vp8.webm", "libvpx", "yuv420p", None, False),
    ("vp9.webm", "libvpx-vp9", "yuv420p", None, False),
    ("h264.mp4", "libx264", "yuv420p", None, False),
]


@pytest.mark.parametrize(("name", "codec", "pix_fmt", "b_frames", "audio"), CONTAINERS,
                         ids=[c[0] for c in CONTAINERS])
def test_every_container_one_row_per_decoded_frame(name: str, codec: str, pix_fmt: str, b_frames: int | None,
                                                   audio: bool, face_frames: list[np.ndarray],
                                                   tmp_path: Path) -> None:
    path = _write(tmp_path / name, face_frames, codec, pix_fmt, b_frames, audio)
    decoded = list(video_io.iter_frames(path))
    times = np.array([t for _, t in decoded])
    assert [_index(f) for f, _ in decoded] == list(range(N))  # every frame, in order, each once
    np.testing.assert_allclose(times, np.arange(N) / FPS, atol=1e-3)  # the times the file was written with
    assert (np.diff(times) > 0).all()
    # counted without decoding: the header's count (or, without one, its packets) and the packets' times
    assert video_io.probe(path).n_frames == N and video_io.frame_count(path) == N
    np.testing.assert_allclose(video_io.frame_times(path), times, atol=1e-6)
    # a part of the video (prepare's segments) is the same frames at the same times as a full pass
    for start in (1, 13, 37, 70):
        part = list(video_io.iter_frames(path, start=start, stop=start + 5))
        assert [_index(f) for f, _ in part] == list(range(start, start + 5)), start
        np.testing.assert_allclose([t for _, t in part], times[start:start + 5], atol=1e-9)
    assert [(i, _index(f)) for i, f in video_io.frames_at(path, [74, 5, 40])] == [(5, 5), (40, 40), (74, 74)]
    # analyze: one row per decoded frame (one face), frame = decode index, the stream's times
    df = facedyn.analyze(path, runs={}, device="cpu")
    assert len(df) == N and df["frame"].tolist() == list(range(N))
    assert (df["success"] == 1).all() and (df["face_id"] == 0).all()
    np.testing.assert_allclose(df["timestamp"], times, atol=1e-4)


def test_mp4_edit_list_counts_the_frames_it_shows(face_frames: list[np.ndarray], tmp_path: Path) -> None:
    """An edit list that starts the video at its 4th frame (as a phone's clip: 98 frames declared, 95 decoded):
    the 3 frames before it are neither counted nor decoded, and a part of the video is not shifted by them."""
    path = tmp_path / "edit.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width = s.height = SIZE
        s.pix_fmt = "yuv420p"
        for i, frame in enumerate(face_frames[:30]):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = i - 3, Fraction(1, FPS)  # before 0: cut by the muxer's edit list
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    decoded = list(video_io.iter_frames(path))
    assert [_index(f) for f, _ in decoded] == list(range(3, 30))
    assert video_io.frame_count(path) == 27 and video_io.probe(path).n_frames == 30  # the header: an estimate
    times = np.array([t for _, t in decoded])
    np.testing.assert_allclose(times, np.arange(27) / FPS, atol=1e-3)
    np.testing.assert_allclose(video_io.frame_times(path), times, atol=1e-6)
    part = list(video_io.iter_frames(path, start=10, stop=13))
    assert [_index(f) for f, _ in part] == [13, 14, 15]  # the 11th-13th frames decoded, not 3 earlier
    np.testing.assert_allclose([t for _, t in part], times[10:13], atol=1e-9)
    assert [_index(f) for _, f in video_io.frames_at(path, [0, 20])] == [3, 23]


def test_image_folder_one_row_per_image(face_frames: list[np.ndarray], tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(face_frames[:12]):
        cv2.imwrite(str(folder / f"img_{i + 1}.png"), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))  # 1..12: natural order
    assert video_io.probe(folder).n_frames == video_io.frame_count(folder) == 12
    assert [_index(f) for f, _ in video_io.iter_frames(folder)] == list(range(12))
    np.testing.assert_allclose(video_io.frame_times(folder), np.arange(12) / 25)
    df = facedyn.analyze(folder, runs={}, device="cpu")
    assert df["frame"].tolist() == list(range(12)) and (df["success"] == 1).all()
    np.testing.assert_allclose(df["timestamp"], np.arange(12) / 25)


def test_mpeg_program_stream_times_stay_on_the_stream(tmp_path: Path) -> None:
    """Several small frames per packet: FFmpeg's demuxer interpolates their times and (FFmpeg 8) gave runs of
    frames the times of the frames two before; each such frame is placed one frame period after the previous."""
    n = 600
    frames = [_code(np.full((48, 112, 3), (i * 7) % 256, np.uint8), i) for i in range(n)]
    path = _write(tmp_path / "small.mpg", frames, "mpeg1video", b_frames=2)
    with av.open(str(path)) as c:
        raw = np.array([f.time for f in c.decode(video=0)])
    decoded = list(video_io.iter_frames(path))
    times = np.array([t for _, t in decoded])
    assert len(decoded) == n and [_index(f) for f, _ in decoded] == list(range(n))
    np.testing.assert_allclose(times, np.arange(n) / FPS, atol=1e-9)
    assert video_io.frame_count(path) == n == video_io.probe(path).n_frames
    bad = np.flatnonzero(np.diff(raw) <= 0)  # where the demuxer repeated times (none: nothing to mend)
    for start in [int(b) for b in bad[:2]] + [n // 2]:
        part = [t for _, t in video_io.iter_frames(path, start=start, stop=start + 4)]
        np.testing.assert_allclose(part, times[start:start + 4], atol=1e-9)


def test_prepare_and_label_check_count_the_decoded_frames(face_frames: list[np.ndarray], tmp_path: Path) -> None:
    """An MPEG-1 program stream: prepare's progress ends at the decoded count, the clip holds every frame, and the
    label check times every frame."""
    from facedyn.data.datasets.report import _frame_times
    from facedyn.data.prepare import PrepareOptions, prepare
    from facedyn.data.store import ClipDataset

    (tmp_path / "v").mkdir()
    video = _write(tmp_path / "v" / "s1.mpg", face_frames, "mpeg1video", b_frames=2)
    calls: list[tuple[int, int]] = []
    res = prepare([video], tmp_path / "d", PrepareOptions(size=64), on_progress=lambda d, t: calls.append((d, t)))
    assert res[0].error is None and res[0].n_frames == N
    assert calls[-1] == (N, N) and all(d <= t for d, t in calls)
    assert len(ClipDataset(tmp_path / "d").clips()[0]) == N
    np.testing.assert_allclose(_frame_times(video, None), np.arange(N) / FPS, atol=1e-6)
