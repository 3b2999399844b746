"""Decode and encode video with PyAV (FFmpeg).

Frames are streamed (never a whole video in memory unless asked for with :func:`read_video`):
each is an RGB ``uint8`` array ``(H, W, 3)`` with its presentation time in seconds taken from the
container, so variable-frame-rate files keep their real timing. Folders of numbered images
(``0001.png``, ``img_2.jpg``, ...) are read in natural numeric order at an assumed frame rate.

Frame ``i`` is always the ``i``-th frame a decode from the start gives, in every container (MPEG-1/2
program and transport streams ``.mpg``/``.ts``, ``.avi``, ``.mkv``, ``.webm``, ``.mp4``, image folders):
the count of frames is the count decoded. A container's own count (:attr:`VideoInfo.n_frames`) is an
estimate: an MPEG program stream declares none, and its duration, estimated by FFmpeg from the bitrate,
gave 54-74 frames for 75-frame files; an ``.mp4`` whose edit list cuts its first frames declares them too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from facedyn.atomic import atomic_path
from facedyn.errors import InputNotFoundError, VideoDecodeError

VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".webm", ".wmv", ".mov", ".m4v", ".mpg", ".mpeg", ".flv"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
DEFAULT_IMAGE_FPS = 25.0
#: Containers (PyAV's ``format.name``) whose index gives every frame its own timestamp, so that a seek lands
#: on a known frame. Others are decoded from the start: in MPEG program streams (``.mpg``) a seek decoded
#: frames under another frame's timestamp (or failed near the end), measured on files of 75 frames.
INDEXED_FORMATS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "avi"})
#: libx264 threads of :func:`write_video` ``(deterministic=True)``: fixed, as the bitstream depends on the count.
DETERMINISTIC_THREADS = 4


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (or image folder).

    ``n_frames``: the frames the container declares (``.mp4``, ``.avi``); where it declares none, the
    packets counted without decoding in containers without an index (MPEG program / transport / elementary
    streams, whose duration is estimated from the bitrate), else duration x fps (``.mkv``, ``.webm``). An
    estimate for progress bars and plans: a file may decode to a few frames fewer than it declares. The
    exact count is the decoded one (:func:`iter_frames`; :func:`frame_count` without decoding).
    """

    path: Path
    fps: float
    n_frames: int
    width: int
    height: int
    duration: float
    is_image_folder: bool = False


def _natural_key(p: Path) -> list[object]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` in natural numeric order (``2.png`` before ``10.png``)."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=_natural_key)


def is_video_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_EXTS


def is_image_folder(path: Path) -> bool:
    return path.is_dir() and len(list_images(path)) > 0


def _folder_images(path: Path) -> list[Path]:
    images = list_images(path)
    if not images:
        raise VideoDecodeError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_EXTS))})")
    return images


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file or folder; check the path")


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise VideoDecodeError(
            f"{path}: cannot be decoded as video ({type(e).__name__}); is it a real, complete video file?"
        ) from None
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path}: has no video stream; give a video file or a folder of images")
    return container


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Read a video's (or image folder's) fps, frame count and size without decoding it all."""
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        images = _folder_images(path)
        first = read_image(images[0])
        n = len(images)
        return VideoInfo(path, DEFAULT_IMAGE_FPS, n, first.shape[1], first.shape[0], n / DEFAULT_IMAGE_FPS, True)
    with _open(path) as c:
        s = c.streams.video[0]
        rate = s.average_rate or s.guessed_rate or s.base_rate
        fps = float(rate) if rate else DEFAULT_IMAGE_FPS
        if s.duration is not None and s.time_base is not None:
            duration = float(s.duration * s.time_base)
        elif c.duration is not None:
            duration = c.duration / av.time_base
        else:
            duration = 0.0
        n = s.frames
        if not n and c.format.name not in INDEXED_FORMATS:
            pts = _packet_pts(c)  # no index: the header's duration is a guess from the bitrate
            n = len(pts[0]) if pts else 0
        n = n or round(duration * fps)
        return VideoInfo(path, fps, int(n), s.codec_context.width, s.codec_context.height, duration)


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode one image file to RGB ``uint8 (H, W, 3)``."""
    path = Path(path)
    _check_exists(path)
    with _open(path) as c:
        try:
            frame = next(c.decode(video=0))
        except (av.FFmpegError, StopIteration) as e:
            raise VideoDecodeError(f"{path}: cannot be decoded as an image ({type(e).__name__})") from None
        return frame.to_ndarray(format="rgb24")


def _packet_pts(container: av.container.InputContainer) -> tuple[list[int], int] | None:
    """Presentation times (stream ticks) of the video stream's packets that decode to a frame, sorted (one per
    frame), and the number of packets (those the container marks discarded included).

    Packets marked discarded are left out: an edit list that starts the video after its first frames (a
    phone's ``.mp4``: 98 packets, the first 3 discarded, 95 frames decoded). None when a packet carries no
    timestamp (then frames can only be counted by decoding). Times may repeat: an MPEG program stream with
    several frames per packet has times the demuxer interpolated (a run of frames placed two frames early,
    seen in files of 600 and more small frames). Leaves ``container`` at its end: seek or reopen before
    decoding.
    """
    stream = container.streams.video[0]
    pts: list[int] = []
    total = 0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue  # the demuxer's end-of-stream marker
            if packet.pts is None:
                return None
            total += 1
            if not getattr(packet, "is_discard", False):
                pts.append(int(packet.pts))
    except av.FFmpegError:
        return None
    pts.sort()
    return pts, total


def _counted(container: av.container.InputContainer) -> list[int] | None:
    """The frames' packet times (:func:`_packet_pts`) when their packets agree with the frames the container
    declares (when it declares any), else None (a damaged file, or packets without timestamps)."""
    declared = container.streams.video[0].frames
    got = _packet_pts(container)
    if got is None or not got[0] or (declared and declared != got[1]):
        return None
    return got[0]


def _unique(pts: list[int] | None) -> list[int] | None:
    """``pts`` when no time repeats (then each identifies its frame), else None."""
    return pts if pts is not None and len(set(pts)) == len(pts) else None


def frame_count(path: str | os.PathLike[str]) -> int | None:
    """The exact number of frames, read from the container without decoding; None when it cannot tell.

    Image folders: their number of images. Videos: their number of video packets less those the container
    marks discarded (an edit list's), when every packet has a timestamp and the packets agree with the
    frames the container declares (when it declares any); a damaged file whose counts disagree gives None.
    Tested equal to the decoded count on ``.mpg`` (MPEG-1/2), ``.avi`` (MPEG-4, MJPEG), ``.mkv``, ``.webm``
    and ``.mp4`` files, and on a phone's ``.mp4`` with an edit list (98 declared, 95 decoded).
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        return len(_folder_images(path))
    with _open(path) as c:
        pts = _counted(c)
    return None if pts is None else len(pts)


def frame_times(path: str | os.PathLike[str], fps: float | None = None) -> np.ndarray | None:
    """Every frame's timestamp in seconds from the first, read from the packets without decoding (None
    when they cannot tell: a packet without a timestamp, repeated times, counts that disagree).

    What :func:`iter_frames` gives, one per frame: image folders ``i / fps`` (default 25), videos their
    packets' presentation times, sorted.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_dir():
        return np.arange(len(_folder_images(path))) / float(fps or DEFAULT_IMAGE_FPS)
    with _open(path) as c:
        base = c.streams.video[0].time_base
        pts = _unique(_counted(c))
    if not pts or base is None:
        return None
    return (np.asarray(pts, np.float64) - pts[0]) * float(base)


def _frame_time(frame: av.VideoFrame, index: int, stream: av.video.stream.VideoStream,
                prev: float | None = None) -> float:
    """Presentation time of the ``index``-th frame in seconds, from the stream.

    A frame without a timestamp, or whose timestamp is not after the previous frame's (``prev``, the time
    this function gave it), is placed one frame period (the stream's frame rate) after it: the demuxer of an
    MPEG program stream interpolates the times of frames that share a packet and placed runs of such frames
    two frames early (their times repeating the frames' before). The first frame without one: ``index /
    frame rate``.
    """
    rate = float(stream.average_rate or stream.guessed_rate or DEFAULT_IMAGE_FPS)
    t = frame.time
    if prev is not None and (t is None or t <= prev):
        return prev + 1.0 / rate
    return float(t) if t is not None else index / rate


def _to_array(frame: av.VideoFrame, size: tuple[int, int] | None) -> np.ndarray:
    if size is None:
        return frame.to_ndarray(format="rgb24")
    return frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="BILINEAR").to_ndarray()


#: ``(index, frame, time)``: the frame's index from the first decoded frame, its time in seconds (:func:`_frame_time`).
_Decoded = tuple[int, av.VideoFrame, float]


def _sought_frames(container: av.container.InputContainer, start: int) -> Generator[_Decoded, None, int | None]:
    """``(index, frame, time)`` from frame ``start`` on, decoded after seeking to the keyframe before it.

    Frames are identified by their timestamps among the packets' (:func:`_packet_pts`, each time once), in
    containers with an index (:data:`INDEXED_FORMATS`). Returns None once the stream ended, else the index of
    the first frame it could not place (``start`` when the stream cannot be sought this way), from which the
    caller decodes from the start.
    """
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    if container.format.name not in INDEXED_FORMATS:
        return start
    got = _packet_pts(container)
    pts = _unique(got[0] if got is not None else None)
    if pts is None or start >= len(pts):
        return start
    i = start
    try:
        container.seek(pts[start], stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.pts is None:
                return i
            if frame.pts < pts[start]:
                continue
            if i >= len(pts) or frame.pts != pts[i]:
                return i
            yield i, frame, _frame_time(frame, i, stream)  # increasing: the packets' times, each once
            i += 1
    except av.FFmpegError:
        return i
    return None


def _decoded_frames(path: Path, start: int) -> Iterator[_Decoded]:
    """``(index, frame, time)`` of every frame from ``start`` on, indices counted from the first frame.

    From ``start > 0`` the container seeks (:func:`_sought_frames`); where that cannot place a frame,
    decoding restarts from the first frame and skips to the next index wanted, so the frames and times are
    the ones a decode from the start gives.
    """
    nxt: int | None = start
    if start > 0:
        with _open(path) as c:
            nxt = yield from _sought_frames(c, start)
        if nxt is None:
            return
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        t: float | None = None
        for i, frame in enumerate(container.decode(stream)):
            t = _frame_time(frame, i, stream, t)
            if i >= nxt:
                yield i, frame, t
    finally:
        container.close()


def _first_time(path: Path) -> float:
    """Presentation time of a video's first decoded frame in seconds (timestamps count from it)."""
    for _, _, t in _decoded_frames(path, 0):
        return t
    return 0.0


def iter_frames(
    path: str | os.PathLike[str],
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    start: int = 0,
    stop: int | None = None,
) -> Iterator[tuple[np.ndarray, float]]:
    """Stream ``(frame, timestamp)`` pairs from a video file or a folder of numbered images.

    Args:
        path: video file or image folder.
        size: optional ``(width, height)`` to resize to inside FFmpeg (bilinear).
        fps: frame rate assumed for image folders (default 25); ignored for videos.
        start, stop: only frames ``start <= i < stop`` (``stop`` None: to the end), the same frames
            and timestamps a full pass gives them. Videos seek to the keyframe before ``start`` when
            their packets carry timestamps, else decode from the first frame and skip.

    Yields:
        ``frame``: RGB ``uint8 (H, W, 3)``; ``timestamp``: seconds from the stream start.

    Raises:
        VideoDecodeError: not a video, or truncated (fewer frames than the container declares, or
            than ``stop``, or a decoding error part-way).
    """
    path = Path(path)
    _check_exists(path)
    if start < 0 or (stop is not None and stop < start):
        raise ValueError(f"bad frame range {start}..{stop}")
    if path.is_dir():
        images = _folder_images(path)
        rate = fps or DEFAULT_IMAGE_FPS
        for i in range(start, len(images) if stop is None else min(stop, len(images))):
            frame = read_image(images[i])
            if size is not None:
                import cv2

                frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            yield frame, i / rate
        if stop is not None and stop > len(images):
            raise VideoDecodeError(f"{path}: has {len(images)} images, frames up to {stop} were expected")
        return

    with _open(path) as c:
        declared = c.streams.video[0].frames
    t0 = _first_time(path) if start > 0 else None
    count = start
    try:
        for i, frame, t in _decoded_frames(path, start):
            if stop is not None and i >= stop:
                break
            if t0 is None:
                t0 = t
            count = i + 1
            yield _to_array(frame, size), float(t - t0)
    except av.FFmpegError as e:
        raise VideoDecodeError(
            f"{path}: decoding failed after {count} frames ({type(e).__name__}); the file looks "
            "truncated or corrupt: re-export or re-download it"
        ) from None
    if count == 0:
        raise VideoDecodeError(f"{path}: no frame could be decoded; the file is empty or corrupt")
    if stop is not None and count < stop:
        raise VideoDecodeError(f"{path}: decoded {count} frames, frames up to {stop} were expected; "
                               "the file looks truncated: re-export the video")
    # A container that declares more frames than it holds was cut short (allow small slack:
    # some muxers count a frame or two that decoders drop).
    # (Containers often declare a few frames more than decoders return, e.g. 98 declared and
    # 95 decoded in a real phone clip, so only a clear shortfall counts as truncation.)
    if stop is None and declared and count < declared - max(5, int(0.05 * declared)):
        raise VideoDecodeError(
            f"{path}: truncated, decoded {count} of {declared} declared frames; re-export the video"
        )


def frames_at(path: str | os.PathLike[str], indices: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
    """Stream ``(index, frame)`` for the wanted frame indices only (sorted, each once), RGB ``uint8 (H, W, 3)``.

    Index ``i`` is the ``i``-th decoded frame, as in :func:`iter_frames` and the clip store. Each frame
    is reached by seeking to the keyframe before it (videos whose packets carry timestamps, in a container
    with an index: :data:`INDEXED_FORMATS`), so a few frames of a long video cost a few keyframe intervals of
    decoding, not the whole file; other containers (``.mpg``) are decoded once from the start up to the last
    index wanted. Indices past the end of the file, or past the point where a damaged file stops decoding,
    are left out.
    """
    path = Path(path)
    _check_exists(path)
    wanted = sorted({int(i) for i in indices if int(i) >= 0})
    if path.is_dir():
        images = _folder_images(path)
        for i in wanted:
            if i < len(images):
                yield i, read_image(images[i])
        return
    with _open(path) as c:
        indexed = c.format.name in INDEXED_FORMATS
    if not indexed and wanted:
        todo = set(wanted)
        frames = _decoded_frames(path, 0)
        try:
            for i, frame, _ in frames:
                if i in todo:
                    yield i, frame.to_ndarray(format="rgb24")
                    todo.discard(i)
                    if not todo:
                        return
        except av.FFmpegError:
            return
        finally:
            frames.close()
        return
    for i in wanted:
        frames = _decoded_frames(path, i)
        try:
            _, frame, _ = next(frames)
        except (StopIteration, av.FFmpegError):
            return
        finally:
            frames.close()
        yield i, frame.to_ndarray(format="rgb24")


def read_video(
    path: str | os.PathLike[str], size: tuple[int, int] | None = None, fps: float | None = None
) -> tuple[np.ndarray, np.ndarray, float]:
    """Decode a whole (short) video: ``frames (N, H, W, 3)`` uint8, ``timestamps (N,)`` s, fps."""
    info = probe(path)
    frames, times = [], []
    for f, t in iter_frames(path, size=size, fps=fps):
        frames.append(f)
        times.append(t)
    rate = (fps or info.fps) if info.is_image_folder else info.fps
    return np.stack(frames), np.asarray(times, dtype=np.float64), rate


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float,
    crf: int = 18,
    codec: str = "libx264",
    deterministic: bool = False,
) -> int:
    """Encode RGB ``uint8 (H, W, 3)`` frames to an H.264 mp4, atomically (temp file, then rename).

    Odd widths/heights are padded by one pixel (yuv420p needs even sizes). Returns frames written.

    ``deterministic``: the same frames give the same bitstream (so the same decoded pixels) on every run,
    whatever the cores and SIMD extensions of the CPU (with one FFmpeg/libx264 build): libx264 runs its
    portable C code (``asm=0``) on a fixed number of threads (:data:`DETERMINISTIC_THREADS`). By default
    libx264 picks its SIMD code and its thread count per machine, and its AVX-512 code does not even repeat
    on one machine: two encodes of the same frames decoded up to 29 grey levels apart. The C code encodes
    about 3-4x slower.
    """
    if deterministic and codec != "libx264":
        raise ValueError(f"deterministic encoding is implemented for libx264 only, not {codec!r}")
    path = Path(path)
    n = 0
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format=None if path.suffix else "mp4") as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            options = {"crf": str(crf), "preset": "veryfast"}
            if deterministic:
                options["x264-params"] = "asm=0"  # its SIMD code differs per CPU (the AVX-512 code: per run)
                stream.codec_context.thread_count = DETERMINISTIC_THREADS  # auto: per machine (its cores)
            stream.options = options
        for frame in frames:
            if n == 0:
                h, w = frame.shape[:2]
                stream.width, stream.height = w + (w % 2), h + (h % 2)
            if frame.shape[0] % 2 or frame.shape[1] % 2:
                frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(vf):
                out.mux(packet)
            n += 1
        for packet in stream.encode():
            out.mux(packet)
    return n
