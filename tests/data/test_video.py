"""Video decode/encode with PyAV: round trips, timestamps, image folders, bad files."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from facedyn.data.video import iter_frames, list_images, probe, read_image, read_video, write_video
from facedyn.errors import InputNotFoundError, OutputError, VideoDecodeError


def _moving_square(n: int = 20, h: int = 48, w: int = 64) -> np.ndarray:
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i, 10:30, 2 + 2 * i: 22 + 2 * i] = (200, 80, 40)
    return frames


def test_mp4_round_trip(tmp_path: Path) -> None:
    frames = _moving_square()
    p = tmp_path / "a.mp4"
    assert write_video(p, frames, fps=25) == len(frames)
    got, times, fps = read_video(p)
    assert got.shape == frames.shape and got.dtype == np.uint8
    assert fps == pytest.approx(25.0)
    np.testing.assert_allclose(times, np.arange(len(frames)) / 25.0, atol=1e-3)
    # lossy codec, but close to the source
    assert np.abs(got.astype(int) - frames.astype(int)).mean() < 6
    info = probe(p)
    assert (info.width, info.height, info.n_frames) == (64, 48, 20)


def test_odd_size_is_padded_and_no_temp_left(tmp_path: Path) -> None:
    p = tmp_path / "odd.mp4"
    write_video(p, np.zeros((3, 31, 33, 3), np.uint8), fps=10)
    assert read_video(p)[0].shape == (3, 32, 34, 3)
    assert [q.name for q in tmp_path.iterdir()] == ["odd.mp4"]


def test_deterministic_encoding_repeats_whatever_the_cores(tmp_path: Path) -> None:
    """``deterministic=True``: the same bytes on every encode, with one core or all of them (libx264's default SIMD
    code and thread count gave these frames other bitstreams, and other pixels, from encode to encode)."""
    from facedyn.data.synthetic import synthesize_clip

    frames = list(synthesize_clip(3, 1.2, size=160).frames())
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    p = tmp_path / "a.mp4"
    encoded = []
    for k in range(4):
        one_core = cores is not None and len(cores) > 1 and k % 2 == 1
        if one_core:
            os.sched_setaffinity(0, {min(cores)})  # libx264's own thread count follows the cores it may use
        try:
            write_video(p, frames, fps=25, deterministic=True)
        finally:
            if one_core:
                os.sched_setaffinity(0, cores)
        encoded.append(p.read_bytes())
    assert all(e == encoded[0] for e in encoded)
    assert np.abs(read_video(p)[0].astype(int) - np.stack(frames)).mean() < 8
    with pytest.raises(ValueError, match="libx264"):
        write_video(p, frames, fps=25, codec="mpeg4", deterministic=True)


def test_resize_inside_ffmpeg(tmp_path: Path) -> None:
    p = tmp_path / "a.mp4"
    write_video(p, _moving_square(), fps=25)
    f, _ = next(iter_frames(p, size=(32, 24)))
    assert f.shape == (24, 32, 3)


def test_image_folder_natural_order(tmp_path: Path) -> None:
    for i in (1, 2, 10):
        img = np.full((8, 8, 3), i * 20, np.uint8)
        cv2.imwrite(str(tmp_path / f"f{i}.png"), img)
    assert [p.name for p in list_images(tmp_path)] == ["f1.png", "f2.png", "f10.png"]
    frames, times, _fps = read_video(tmp_path, fps=10)
    assert [int(f[0, 0, 0]) for f in frames] == [20, 40, 200]
    np.testing.assert_allclose(times, [0, 0.1, 0.2])
    assert read_image(tmp_path / "f2.png")[0, 0, 0] == 40


def test_variable_frame_rate_timestamps(tmp_path: Path) -> None:
    import av

    p = tmp_path / "vfr.mkv"
    pts = [0, 40, 80, 200, 240]  # ms: a gap in the middle
    with av.open(str(p), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        s.codec_context.time_base = __import__("fractions").Fraction(1, 1000)
        for t in pts:
            vf = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            vf.pts, vf.time_base = t, __import__("fractions").Fraction(1, 1000)
            for pk in s.encode(vf):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    times = [t for _, t in iter_frames(p)]
    np.testing.assert_allclose(times, np.array(pts) / 1000, atol=2e-3)


def test_missing_path() -> None:
    with pytest.raises(InputNotFoundError, match="no such file"):
        probe("/nonexistent/video.mp4")


def test_text_file_named_mp4(tmp_path: Path) -> None:
    p = tmp_path / "notes.mp4"
    p.write_text("this is not a video\n" * 20)
    with pytest.raises(VideoDecodeError) as e:
        list(iter_frames(p))
    assert "\n" not in str(e.value)


def test_truncated_video(tmp_path: Path) -> None:
    p = tmp_path / "a.mp4"
    write_video(p, (np.random.default_rng(0).random((60, 64, 64, 3)) * 255).astype(np.uint8), fps=25)
    data = p.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match=r"truncated|corrupt|cannot be decoded"):
        list(iter_frames(cut))


def test_unwritable_output(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError):
        write_video(blocker / "sub" / "a.mp4", _moving_square(2), fps=25)
