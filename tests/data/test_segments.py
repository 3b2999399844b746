"""Time segments: a video read from any frame on gives the frames and timestamps of a full pass, and a
clip prepared in segments by several workers is the clip one worker makes (the frames exactly; the
landmarks too where they do not come from the tracker)."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest

from facedyn.data import prepare as prep
from facedyn.data import video as video_io
from facedyn.data.faces import eye_centres
from facedyn.data.prepare import PrepareOptions, prepare, segment_bounds
from facedyn.data.store import Clip, ClipDataset


def _gop_video(path: Path, n: int = 40, gop: int = 6) -> Path:
    """An H.264 mp4 of ``n`` distinct noise frames with a keyframe every ``gop`` frames and B-frames."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(25))
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        s.options = {"x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=2"}
        for i in range(n):
            img = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            img[:8, :8] = 4 * i
            for packet in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


@pytest.mark.parametrize("cuts", [[6, 12, 30], [1, 7, 39], [20]])
def test_frame_ranges_join_to_the_full_pass(tmp_path: Path, cuts: list[int]) -> None:
    video = _gop_video(tmp_path / "g.mp4")
    full = list(video_io.iter_frames(video))
    assert video_io.frame_count(video) == len(full) == 40
    bounds = [0, *cuts, None]
    joined = [x for a, b in pairwise(bounds) for x in video_io.iter_frames(video, start=a, stop=b)]
    assert [t for _, t in joined] == [t for _, t in full]
    assert all(np.array_equal(f, g) for (f, _), (g, _) in zip(joined, full, strict=True))


def test_frame_range_of_an_image_folder_and_past_the_end(tmp_path: Path) -> None:
    video = _gop_video(tmp_path / "g.mp4", n=12)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, (f, _) in enumerate(video_io.iter_frames(video)):
        av.VideoFrame.from_ndarray(f, format="rgb24").to_image().save(folder / f"{i}.png")
    assert video_io.frame_count(folder) == 12
    part = list(video_io.iter_frames(folder, fps=10, start=5, stop=8))
    assert [t for _, t in part] == [0.5, 0.6, 0.7]
    with pytest.raises(video_io.VideoDecodeError, match="up to 20"):
        list(video_io.iter_frames(video, start=10, stop=20))


def test_segment_bounds() -> None:
    assert segment_bounds(1000, 1) == [(0, None)]
    assert segment_bounds(1000, 2) == [(0, 500), (500, None)]
    assert segment_bounds(250, 4, min_frames=100) == [(0, 125), (125, None)]
    assert segment_bounds(50, 4, min_frames=100) == [(0, None)]


def _arrays(d: Path) -> dict[str, bytes]:
    """Every file of a store but the clips' meta.json (which records the cuts), with its bytes."""
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*"))
            if p.is_file() and p.name != "meta.json"}


@pytest.mark.parametrize("align", ["similarity", "box"])
def test_segmented_clip_equals_one_worker_clip(synth_videos: Path, tmp_path: Path, align: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """With the generator's landmarks nothing depends on where a clip is cut."""
    opts = PrepareOptions(size=32, align=align)
    prepare([synth_videos], tmp_path / "one", opts)
    monkeypatch.setattr(prep, "MIN_SEGMENT_FRAMES", 20)  # 60-frame clips in 2 segments
    prepare([synth_videos], tmp_path / "two", opts, workers=2)
    clip = ClipDataset(tmp_path / "two").clips()[0]
    assert clip.meta["segment_starts"] == [0, 30]
    assert _arrays(tmp_path / "two") == _arrays(tmp_path / "one")


def _source_landmarks(clip: Clip) -> np.ndarray:
    """``(N, 68, 2)`` landmarks in source pixels, from the clip's faces.csv."""
    t = pd.read_csv(clip.path / "faces.csv")
    return np.stack([t[[f"x_{k}" for k in range(68)]].to_numpy(), t[[f"y_{k}" for k in range(68)]].to_numpy()], -1)


@pytest.mark.real
def test_tracker_restarts_at_a_cut(real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracked landmarks: the frames are the same and the landmarks differ only after the cut, slightly."""
    video = real_data / "single_face.mp4"
    prepare([video], tmp_path / "one", PrepareOptions(size=64))
    monkeypatch.setattr(prep, "MIN_SEGMENT_FRAMES", 30)
    prepare([video], tmp_path / "two", PrepareOptions(size=64), workers=2)
    one, two = (ClipDataset(tmp_path / d).clips()[0] for d in ("one", "two"))
    assert one.meta["detector"] == two.meta["detector"] == "dlib-hog+shape_predictor_68+fit10"
    cut = two.meta["segment_starts"][1]
    np.testing.assert_array_equal(one.timestamps, two.timestamps)
    np.testing.assert_array_equal(one.valid, two.valid)
    np.testing.assert_array_equal(one.frames[:cut], two.frames[:cut])
    eyes = [np.stack([eye_centres(m) for m in _source_landmarks(c)]) for c in (one, two)]
    err = np.linalg.norm(eyes[0] - eyes[1], axis=-1)  # source pixels
    assert err[:cut].max() == 0 and err.mean() < 0.5
