"""``facedyn prepare``: videos → detected, aligned, masked face clips in the clip store.

For each clip source (from a dataset adapter): stream-decode the video, find 68 landmarks per frame
(or take the given ones), crop the face to ``size`` and write the clip atomically.

Landmarks (``track``): ``fit`` (the default) detects the face only on the first frame, every
:data:`REDETECT_EVERY` frames and where the fit degrades, and otherwise fits the 68-point model in the box
predicted from the previous frame's landmarks (:class:`~facedyn.data.faces.track.FittingTracker`: 4–8x
less CPU, eye centres within 0.10–0.18 px at 64 px of detecting every frame on the real clips);
``detect`` detects on every frame (stores made before the tracker). The choice is part of the
store's ``detector``, so a store never mixes them.

Two alignments (``align``, see :mod:`facedyn.data.faces.align`): ``similarity`` aligns each frame to
the canonical template and by default zeroes pixels outside the landmarks' convex hull (one streaming
pass); ``box`` crops a square around the landmarks' bounding box smoothed over the clip, without
rotation and by default unmasked, so roll, scale and shift stay in the crops (two streaming passes:
landmarks first, then the crops of the smoothed boxes; the video is never held in memory).

Parallel workers (forked processes) take time segments, not only whole clips: with ``workers > 1`` a
clip of at least ``2 x`` :data:`MIN_SEGMENT_FRAMES` frames is cut into up to ``workers`` equal segments
(:func:`segment_bounds`; the cut depends only on the clip's length and ``workers``). Each segment is
decoded from its start (the video seeks to the keyframe before it) and its tracker starts with a
detection; the segments' frames are joined into one clip, the same files as a one-worker clip (its
meta.json lists the cuts as ``segment_starts``). The frames are identical; landmarks in the first
frames after a cut can differ slightly (sub-pixel) from those of an uncut run, because the tracker
restarts there with a detection (with ``track="detect"`` or given landmarks nothing differs).

Complete clips are skipped on a rerun, and partial ones left by an interrupted run are removed.
``shard=(k, n)`` prepares only the k-th of n deterministic shards of the inputs (:func:`shard_sources`)
into its own store; :func:`facedyn.data.merge.merge` joins such parts into the store one run would make.

The store's data contract (crop ``size``, ``mask``, ``align``, ``template``, ``detector``) is
recorded in ``index.json``; preparing into an existing store with other settings is refused before
anything is written, so every crop of a store is made the same way. Subjects keep the split the
store already gives them; new subjects take their dataset's split or a seeded share of train/val/test.
"""

from __future__ import annotations

import hashlib
import json
import queue as queue_mod
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facedyn import __version__, lock
from facedyn.atomic import write_text
from facedyn.data import video as video_io
from facedyn.data.datasets.base import ClipSource
from facedyn.data.faces.track import REDETECT_EVERY  # ``track="fit"`` detects at least every this many frames
from facedyn.data.sources import collect_sources
from facedyn.data.store import (
    CONTRACT_KEYS,
    GIVEN_LANDMARKS,
    SPLITS,
    ClipPart,
    ClipWriter,
    assign_splits,
    clean_partial,
    ensure_writable_dir,
    is_complete_clip,
    normalize_index,
    read_index,
    store_contract,
    write_index,
)
from facedyn.errors import (
    ConfigError,
    DatasetError,
    FacedynError,
    LabelFormatError,
    OutputError,
    VideoDecodeError,
)

#: face alignments ``prepare`` can make (``align`` in index.json)
ALIGNS = ("similarity", "box")
#: how landmarks are found on each frame: ``fit`` (track between detections) or ``detect`` (every frame)
TRACKS = ("fit", "detect")
#: with several workers, clips of at least twice this many frames are cut into time segments
MIN_SEGMENT_FRAMES = 100


@dataclass
class PrepareOptions:
    """Options of one ``prepare`` run (saved in each clip's meta.json; size, mask, align and the
    detector also in index.json, where every later run into the same store must match them).

    ``align``: ``"similarity"`` or ``"box"`` (:data:`ALIGNS`); ``mask`` None (the default) becomes
    True for ``similarity`` and False for ``box``. ``track``: ``"fit"`` (detect every
    :data:`REDETECT_EVERY` frames and where the fit degrades, fit the 68-point model in between) or
    ``"detect"`` (detect on every frame), :data:`TRACKS`; recorded in the store's ``detector``.
    """

    size: int = 64
    mask: bool | None = None
    detector: str = "hog"
    align: str = "similarity"
    track: str = "fit"
    upsample: int = 1
    max_side: int = 480
    fps: float | None = None  # for image folders
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mask is None:
            self.mask = self.align == "similarity"


@dataclass
class ClipResult:
    clip_id: str
    subject: str
    split: str | None
    n_frames: int = 0
    n_valid: int = 0
    fps: float = 0.0
    skipped: bool = False
    error: str | None = None
    labels: list[str] = field(default_factory=list)
    warning: str | None = None  # e.g. a damaged video whose decodable frames were kept


def template_id(align: str = "similarity") -> str:
    """Identifier of how crops are placed (``template`` in index.json).

    ``similarity``: the 68-point alignment template, ``"facedyn68:"`` + 8 hex digits of its SHA-1;
    ``box``: ``"box:<scale>x,sigma<s>s"`` (:data:`~facedyn.data.faces.BOX_SCALE`,
    :data:`~facedyn.data.faces.BOX_SIGMA_S`). Crops made another way (another facedyn version) get
    another id, so a store never mixes them.
    """
    from facedyn.data.faces import BOX_SCALE, BOX_SIGMA_S, TEMPLATE_68

    if align == "box":
        return f"box:{BOX_SCALE:g}x,sigma{BOX_SIGMA_S:g}s"
    digest = hashlib.sha1(np.ascontiguousarray(TEMPLATE_68, dtype=np.float64).tobytes()).hexdigest()
    return f"facedyn68:{digest[:8]}"


def detector_id(detector: str, track: str = "detect") -> str:
    """The name recorded for a ``--detector`` and ``--track`` choice.

    ``("hog", "detect")`` -> ``"dlib-hog+shape_predictor_68"`` (the name of stores made before the
    tracker, which all detected on every frame); ``("hog", "fit")`` -> ``"dlib-hog+shape_predictor_68+fit10"``
    (detections at least every :data:`REDETECT_EVERY` frames, fits between them).
    """
    base = f"dlib-{detector}+shape_predictor_68" if detector in ("hog", "cnn") else str(detector)
    return base if track == "detect" else f"{base}+{track}{REDETECT_EVERY}"


def run_contract(opts: PrepareOptions) -> dict[str, Any]:
    """The store contract (``size``, ``mask``, ``align``, ``template``, ``detector``) ``opts`` produce."""
    return {"size": int(opts.size), "mask": bool(opts.mask), "align": opts.align,
            "template": template_id(opts.align),
            "detector": detector_id(opts.detector, opts.track)}


def check_store_compatible(out: str | Path, opts: PrepareOptions) -> dict[str, Any] | None:
    """Refuse (one-line DatasetError) to prepare into a store made with other settings; writes nothing.

    Compares size, mask, align, detector and template with what ``out`` records (values an older
    store does not record are not compared). Returns the store's contract, None when ``out`` holds
    no store yet.
    """
    have = store_contract(out)
    if have is None:
        return None
    want = run_contract(opts)
    diff = [k for k in CONTRACT_KEYS if have.get(k) is not None and have[k] != want[k]]
    if diff:
        store = ", ".join(f"{k}={have[k]}" for k in diff)
        run = ", ".join(f"{k}={want[k]}" for k in diff)
        hint = ("prepare with the store's settings or into another --out" if diff != ["template"] else
                "this facedyn aligns to another template: prepare into another --out")
        if "detector" in diff and have["detector"] == detector_id(opts.detector, "detect"):
            hint += " (this store detected faces on every frame: --track detect)"
        raise DatasetError(f"{out}: this store was prepared with {store}, this run asks for {run}; {hint}")
    return have


#: columns of a clip's ``faces.csv`` (OpenFace-style)
FACES_COLUMNS = ("frame", "timestamp", "success", *(f"x_{k}" for k in range(68)), *(f"y_{k}" for k in range(68)))


def faces_csv(times: np.ndarray, src_lms: np.ndarray) -> str:
    """A clip's ``faces.csv``: frame, timestamp, success, x_0..x_67, y_0..y_67 (source px, 2 decimals).

    The text pandas' ``to_csv(index=False, float_format="%.2f")`` writes for that table (empty cells
    where no face), made row by row with one format string (pandas formats cell by cell, ~1 ms a frame).

    Args:
        times: ``(N,)`` seconds; src_lms: ``(N, 68, 2)`` float32 source pixels, NaN where no face.
    """
    n = len(times)
    xy = np.concatenate([src_lms[:, :, 0], src_lms[:, :, 1]], axis=1) if n else np.zeros((0, 136), np.float32)
    found = np.isfinite(xy).all(axis=1)
    face = "%d,%.2f,1," + ",".join(["%.2f"] * 136)
    lines = [",".join(FACES_COLUMNS)]
    for i, (t, ok, row) in enumerate(zip(np.round(times, 4).tolist(), found.tolist(), xy.tolist(), strict=True)):
        lines.append(face % (i, t, *row) if ok else f"{i},{t:.2f},0" + "," * 136)
    return "\n".join(lines) + "\n"


_LANDMARKERS: dict[tuple[str, int, int], Any] = {}


def _landmarker(opts: PrepareOptions) -> Any:
    """This process's :class:`~facedyn.data.faces.FaceLandmarker` for ``opts`` (models load once)."""
    key = (opts.detector, opts.upsample, opts.max_side)
    if key not in _LANDMARKERS:
        from facedyn.data.faces import FaceLandmarker

        _LANDMARKERS[key] = FaceLandmarker(detector=opts.detector, upsample=opts.upsample, max_side=opts.max_side)
    return _LANDMARKERS[key]


def _frame_landmarker(opts: PrepareOptions) -> Callable[[np.ndarray], np.ndarray | None]:
    """A fresh per-frame landmark finder for one run of consecutive frames (a clip or a time segment).

    ``track="fit"``: a new :class:`~facedyn.data.faces.track.FittingTracker` (it starts with a
    detection); ``"detect"``: the landmarker itself (it keeps no state between frames).
    """
    if opts.track == "detect":
        return _landmarker(opts)
    from facedyn.data.faces.track import FittingTracker

    return FittingTracker(_landmarker(opts), redetect_every=REDETECT_EVERY)


def _given_landmarks(src: ClipSource) -> np.ndarray | None:
    """The source's own landmarks ``(N, 68, 2)`` float32, or None when it has none.

    Raises:
        LabelFormatError: the file cannot be read or has another shape.
    """
    if src.landmarks is None:
        return None
    if isinstance(src.landmarks, np.ndarray):
        given = np.asarray(src.landmarks, dtype=np.float32)
        if given.ndim != 3 or given.shape[1:] != (68, 2):
            raise LabelFormatError(f"{src.clip_id}: landmarks must have shape (N, 68, 2), got {given.shape}")
        return given
    try:
        given = np.load(src.landmarks).astype(np.float32)
    except (OSError, ValueError) as e:
        raise LabelFormatError(f"{src.landmarks}: not a readable .npy landmarks file ({e})") from None
    if given.ndim != 3 or given.shape[1:] != (68, 2):
        raise LabelFormatError(f"{src.landmarks}: landmarks must have shape (N, 68, 2), got {given.shape}")
    return given


def segment_bounds(n_frames: int, workers: int, min_frames: int | None = None) -> list[tuple[int, int | None]]:
    """Time segments ``[(start, stop), ...]`` a clip of ``n_frames`` frames is prepared in.

    ``min(workers, n_frames // min_frames)`` equal segments (at least one), so each has at least
    ``min_frames`` (default :data:`MIN_SEGMENT_FRAMES`) frames; the last one's ``stop`` is None (to
    the end of the video). Depends only on ``n_frames`` and ``workers``: runs with the same
    ``workers`` cut a clip at the same frames.
    """
    least = MIN_SEGMENT_FRAMES if min_frames is None else int(min_frames)
    k = max(1, min(int(workers), int(n_frames) // max(1, least)))
    cuts = [round(i * n_frames / k) for i in range(k + 1)]
    return [(cuts[i], cuts[i + 1] if i < k - 1 else None) for i in range(k)]


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``.

    Raises:
        ConfigError: anything else (one line, with an example).
    """
    try:
        k_text, n_text = str(text).split("/")
        k, n = int(k_text), int(n_text)
    except ValueError:
        k = n = 0
    if not 1 <= k <= n:
        raise ConfigError(f"--shard must be K/N with 1 <= K <= N (the K-th of N shards, like 1/4), got {text!r}")
    return k, n


def shard_sources(sources: Sequence[ClipSource], shard: tuple[int, int]) -> list[ClipSource]:
    """The clip sources of shard ``(k, n)``: every n-th of the sources sorted by clip id, from the k-th.

    The shards of ``1/n`` .. ``n/n`` partition the sources, and they depend only on the clip ids
    (the inputs), not on the machine or the order the inputs were given in.
    """
    k, n = shard
    ordered = sorted(sources, key=lambda s: s.clip_id)
    return [s for i, s in enumerate(ordered) if i % n == k - 1]


@dataclass(frozen=True)
class _Job:
    """One unit of work: frames ``start <= i < stop`` (``stop`` None: to the end) of ``_SOURCES[source]``.

    Without ``boxes``: find the landmarks (and, for ``similarity``, write the crops); with ``boxes``
    (``box`` alignment, second pass): write the crops of these frames, ``boxes`` ``(n, 2, 3)`` float64
    crop matrices, ``landmarks`` ``(n, 68, 2)`` float32 source pixels (NaN: no face), ``times`` ``(n,)``.
    Parts are written into ``tmp``, the clip's temporary directory.
    """

    source: int
    segment: int
    start: int
    stop: int | None
    fps: float
    tmp: Path
    boxes: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    times: np.ndarray | None = None


@dataclass
class _JobOut:
    """What a job gives back: ``times`` ``(n,)``, ``landmarks`` ``(n, 68, 2)`` float32 source px (NaN: no
    face), the crops as a :class:`~facedyn.data.store.ClipPart` (None in the first pass of ``box``), or
    the one-line ``error`` that stopped it."""

    times: np.ndarray
    landmarks: np.ndarray
    part: ClipPart | None = None
    error: str | None = None
    warning: str | None = None


#: Clip sources of the running prepare, inherited by forked workers (label loaders are closures and
#: need not pickle: jobs carry only an index into this list).
_SOURCES: list[ClipSource] = []


def _landmark_job(job: _Job, opts: PrepareOptions, progress: Callable[[int], None]) -> _JobOut:
    """Decode the job's frames, find their landmarks and (``similarity``) write their aligned crops."""
    from facedyn.data.faces import align_face

    src = _SOURCES[job.source]
    given = _given_landmarks(src)
    find = _frame_landmarker(opts)
    crops = None if opts.align == "box" else ClipWriter(job.tmp, f"seg-{job.segment:05d}", opts.size)
    times: list[float] = []
    lms: list[np.ndarray | None] = []
    warning = None
    try:
        pending = 0
        frames = _KeepDecodable(video_io.iter_frames(src.video, fps=job.fps, start=job.start, stop=job.stop),
                                  keep=job.stop is None)
        for i, (frame, t) in enumerate(frames, start=job.start):
            if given is not None:
                lm = given[i] if i < len(given) and np.isfinite(given[i]).all() else None
            else:
                lm = find(frame)
            if crops is not None and lm is None:
                crops.add(None, None, False, t)
            elif crops is not None:
                face = align_face(frame, lm, size=opts.size, mask=bool(opts.mask))
                crops.add(face.image, face.landmarks, True, t)
            times.append(t)
            lms.append(lm)
            pending += 1
            if pending >= 16:
                progress(pending)
                pending = 0
        if pending:
            progress(pending)
        warning = frames.warning
    except BaseException:
        if crops is not None:
            crops.abort()
        raise
    stacked = np.full((len(lms), 68, 2), np.nan, np.float32)
    for j, m in enumerate(lms):
        if m is not None:
            stacked[j] = m
    return _JobOut(np.asarray(times, np.float64), stacked, crops.detach() if crops is not None else None,
                   warning=warning)


class _KeepDecodable:
    """Iterate ``frames`` (from :func:`~facedyn.data.video.iter_frames`); with ``keep``, a video that turns out
    damaged after some frames decoded (cut short: fewer frames than its container declares, or a decoding error
    part-way) ends the iteration instead of raising, and ``warning`` says so. What a user gets from a damaged
    file is then every frame that decodes, flagged in the clip's ``meta.json`` (``damaged``) and in prepare's
    table, rather than nothing; a file where nothing decodes is still an error."""

    def __init__(self, frames: Iterator[tuple[np.ndarray, float]], keep: bool) -> None:
        self.frames, self.keep, self.n, self.warning = frames, keep, 0, None

    def __iter__(self) -> Iterator[tuple[np.ndarray, float]]:
        try:
            for item in self.frames:
                self.n += 1
                yield item
        except VideoDecodeError as e:
            if not (self.keep and self.n):
                raise
            self.warning = f"{str(e).split('; ')[0]}: kept the {self.n} frames that decode"


def _box_crop_job(job: _Job, opts: PrepareOptions, progress: Callable[[int], None]) -> _JobOut:
    """Second pass of ``--align box``: decode the job's frames again and write the crops of its boxes."""
    from facedyn.data.faces import crop_face

    assert job.boxes is not None and job.landmarks is not None and job.times is not None
    src = _SOURCES[job.source]
    n = len(job.times)
    writer = ClipWriter(job.tmp, f"seg-{job.segment:05d}", opts.size)
    try:
        frames = _KeepDecodable(video_io.iter_frames(src.video, fps=job.fps, start=job.start, stop=job.start + n),
                                  keep=True)  # a damaged file fails after the frames the first pass kept
        for j, (frame, _) in enumerate(frames):
            if np.isfinite(job.landmarks[j]).all():
                face = crop_face(frame, job.landmarks[j], job.boxes[j], opts.size, bool(opts.mask))
                writer.add(face.image, face.landmarks, True, job.times[j])
            else:
                writer.add(None, None, False, job.times[j])
        if frames.n < n:
            raise VideoDecodeError(f"decoded {frames.n} of the {n} frames")
    except VideoDecodeError as e:
        writer.abort()
        raise VideoDecodeError(f"{src.video}: the second pass (crops) decoded other frames than the first "
                               f"({e}); re-export the video") from None
    except BaseException:
        writer.abort()
        raise
    return _JobOut(job.times, job.landmarks, writer.detach())


def _run_job(job: _Job, opts: PrepareOptions, progress: Callable[[int], None]) -> _JobOut:
    """Run one job; a user-facing error (bad input) comes back in ``error`` instead of raising."""
    try:
        return (_landmark_job if job.boxes is None else _box_crop_job)(job, opts, progress)
    except OutputError:
        raise  # out of room or unwritable: no other clip would fare better, so the run stops
    except FacedynError as e:
        empty = np.zeros(0, np.float64)
        return _JobOut(empty, np.zeros((0, 68, 2), np.float32), error=str(e))


def _pool_job(job: _Job, opts: PrepareOptions, q: Any) -> _JobOut:
    return _run_job(job, opts, q.put)


@dataclass
class _ClipRun:
    """A clip being prepared in segments: its writer, the segments' outputs so far, the pass it is in.

    ``bounds``: its time segments (:func:`segment_bounds`); ``source_size``: ``[width, height]``.
    """

    index: int
    fps: float
    bounds: list[tuple[int, int | None]]
    source_size: list[int]
    writer: ClipWriter | None = None
    outs: dict[int, _JobOut] = field(default_factory=dict)
    pending: int = 0
    cropping: bool = False  # box: the second pass is under way
    error: str | None = None
    warning: str | None = None  # the video is damaged; its decodable frames were kept

    def start(self, out: Path, size: int) -> list[_Job]:
        """Open the clip's writer (its temporary directory) and return the jobs of its first pass."""
        self.writer = ClipWriter(out, _SOURCES[self.index].clip_id, size)
        self.pending = len(self.bounds)
        return [_Job(self.index, k, a, b, self.fps, self.writer.tmp) for k, (a, b) in enumerate(self.bounds)]


def _box_jobs(run: _ClipRun, opts: PrepareOptions) -> list[_Job]:
    """The second-pass jobs of a ``box`` clip: its boxes smoothed over the landmarks of all its segments."""
    from facedyn.data.faces import box_track

    assert run.writer is not None
    outs = [run.outs[k] for k in range(len(run.bounds))]
    lms = np.concatenate([o.landmarks for o in outs]) if outs else np.zeros((0, 68, 2), np.float32)
    valid = np.isfinite(lms).all(axis=(1, 2))
    mats = box_track(np.where(valid[:, None, None], lms, 0).astype(np.float32), valid, run.fps, opts.size)
    jobs, start = [], 0
    for k, o in enumerate(outs):
        n = len(o.times)
        jobs.append(_Job(run.index, k, start, start + n, run.fps, run.writer.tmp, mats[start:start + n],
                         o.landmarks, o.times))
        start += n
    run.outs, run.cropping, run.pending = {}, True, len(jobs)
    return jobs


def _finish_clip(run: _ClipRun, opts: PrepareOptions) -> ClipResult:
    """Join the segments' crops into the clip, write its tables and meta, and publish it.

    Raises:
        LabelFormatError: given landmarks or labels do not have one row per frame.
    """
    src = _SOURCES[run.index]
    writer = run.writer
    assert writer is not None
    outs = [run.outs[k] for k in range(len(run.bounds))]
    for o in outs:
        assert o.part is not None
        writer.extend(o.part)
    times = np.concatenate([o.times for o in outs])
    src_lms = np.concatenate([o.landmarks for o in outs])
    given = _given_landmarks(src)
    warning = run.warning
    if given is not None and warning and len(given) > writer.n:
        given = given[: writer.n]  # landmarks of the frames a damaged file declares but does not hold
    if given is not None and len(given) != writer.n:
        raise LabelFormatError(
            f"{src.clip_id if isinstance(src.landmarks, np.ndarray) else src.landmarks}: has {len(given)} frames "
            f"of landmarks but the video has {writer.n}; "
            "give landmarks for every frame"
        )
    labels = src.labels(times) if src.labels is not None else None
    if labels is not None and len(labels) != writer.n:
        raise LabelFormatError(f"{src.clip_id}: labels have {len(labels)} rows for {writer.n} frames")
    meta = {
        "source": str(Path(src.video).resolve()),
        "fps": float(run.fps),
        "source_size": run.source_size,
        "detector": GIVEN_LANDMARKS if given is not None else detector_id(opts.detector, opts.track),
        "mask": opts.mask,
        "align": opts.align,
        "template": template_id(opts.align),
        "subject": src.subject,
        "facedyn_version": __version__,
        **({"segment_starts": [a for a, _ in run.bounds]} if len(run.bounds) > 1 else {}),
        **src.extra,
    }
    if warning:
        meta["damaged"] = warning
    write_text(writer.tmp / "faces.csv", faces_csv(times, src_lms))
    writer.commit(labels, meta)
    found = np.isfinite(src_lms).all(axis=(1, 2))
    return ClipResult(src.clip_id, src.subject, src.split, writer.n, int(found.sum()), float(run.fps),
                      labels=[c for c in labels.columns if c != "frame"] if labels is not None else [],
                      warning=warning)


@contextmanager
def _job_runner(workers: int, opts: PrepareOptions, bump: Callable[[int], None]
                ) -> Iterator[Callable[[Callable[[], _Job | None]], Iterator[tuple[_Job, _JobOut]]]]:
    """A function that runs the jobs ``next_job()`` hands out (None: no more for now) in this process or in
    ``workers`` forked processes, and yields ``(job, output)`` as each finishes; ``bump(n)`` gets progress.

    At most ``workers`` jobs run at a time and the next one is asked for only when a process is free,
    so jobs a finished one leads to (a ``box`` clip's second pass) run before later clips start.
    """
    if workers <= 1:
        def inline(next_job: Callable[[], _Job | None]) -> Iterator[tuple[_Job, _JobOut]]:
            while (job := next_job()) is not None:
                yield job, _run_job(job, opts, bump)

        yield inline
        return

    import multiprocessing as mp

    ctx = mp.get_context("fork")
    with ctx.Manager() as manager:
        q = manager.Queue()
        stop = threading.Event()

        def pump() -> None:
            while not stop.is_set():
                try:
                    bump(q.get(timeout=0.1))
                except queue_mod.Empty:
                    continue

        th = threading.Thread(target=pump, daemon=True)
        th.start()
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
                def pooled(next_job: Callable[[], _Job | None]) -> Iterator[tuple[_Job, _JobOut]]:
                    running: dict[Future[_JobOut], _Job] = {}
                    while True:
                        while len(running) < workers and (job := next_job()) is not None:
                            running[ex.submit(_pool_job, job, opts, q)] = job
                        if not running:
                            return
                        done, _ = wait(running, return_when=FIRST_COMPLETED)
                        for f in done:
                            yield running.pop(f), f.result()

                yield pooled
        finally:
            stop.set()
            th.join()


def _prepare_clips(runs: list[_ClipRun], out: Path, opts: PrepareOptions, workers: int,
                   bump: Callable[[int], None]) -> dict[str, ClipResult]:
    """Prepare the clips of ``runs`` (their segments as jobs, clips started in order); their results by id.

    A clip whose job or finishing fails with a FacedynError gets it as its ``error`` (its temporary
    directory removed); any other exception stops the run, and the unfinished clips are removed.
    """
    results: dict[str, ClipResult] = {}
    waiting = deque(runs)
    queue: deque[_Job] = deque()
    by_index = {r.index: r for r in runs}

    def next_job() -> _Job | None:
        if not queue and waiting:
            queue.extend(waiting.popleft().start(out, opts.size))  # the clip's temporary dir opens now
        return queue.popleft() if queue else None

    def fail(run: _ClipRun, error: str) -> None:
        src = _SOURCES[run.index]
        if run.writer is not None:
            run.writer.abort()
        results[src.clip_id] = ClipResult(src.clip_id, src.subject, src.split, error=error)

    try:
        with _job_runner(workers, opts, bump) as run_jobs:
            for job, res in run_jobs(next_job):
                run = by_index[job.source]
                run.pending -= 1
                if res.error is not None:
                    run.error = run.error or res.error
                else:
                    run.outs[job.segment] = res
                    run.warning = run.warning or res.warning
                if run.pending:
                    continue
                if run.error is not None:
                    fail(run, run.error)
                    continue
                try:
                    if opts.align == "box" and not run.cropping:
                        queue.extendleft(reversed(_box_jobs(run, opts)))
                    else:
                        results[_SOURCES[run.index].clip_id] = _finish_clip(run, opts)
                except OutputError:
                    raise
                except FacedynError as e:
                    fail(run, str(e))
    finally:
        for run in runs:
            if run.writer is not None and _SOURCES[run.index].clip_id not in results:
                run.writer.abort()
    return results


def _plan_clip(index: int, opts: PrepareOptions, workers: int) -> tuple[_ClipRun, int]:
    """The clip run of ``_SOURCES[index]`` (fps, time segments for ``workers``) and its frame count estimate
    (:attr:`~facedyn.data.video.VideoInfo.n_frames`, for the progress bar; the clip gets the frames decoded).

    Raises:
        FacedynError: the source cannot be opened (not a video, no such file).
    """
    src = _SOURCES[index]
    info = video_io.probe(src.video)
    fps = (src.fps or opts.fps or info.fps) if info.is_image_folder else info.fps
    bounds: list[tuple[int, int | None]] = [(0, None)]
    if workers > 1 and info.n_frames >= 2 * MIN_SEGMENT_FRAMES:
        exact = video_io.frame_count(src.video)  # None (a damaged file): decoded whole, in one segment
        if exact is not None:
            bounds = segment_bounds(exact, workers)
    return _ClipRun(index, float(fps), bounds, [info.width, info.height]), max(1, info.n_frames)


def prepare(
    inputs: Sequence[str | Path],
    out: str | Path,
    opts: PrepareOptions | None = None,
    workers: int = 1,
    kind: str = "folder",
    landmarks: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    adapter_options: dict[str, Any] | None = None,
    shard: tuple[int, int] | None = None,
    check_identities: bool | None = None,
) -> list[ClipResult]:
    """Prepare every clip of ``inputs`` into the dataset directory ``out``.

    Complete clips already in ``out`` are skipped; partial ones from an interrupted run removed.
    ``on_progress(done_frames, total_frames)`` is called as frames are processed. Per-clip errors
    (undecodable file, bad labels) do not stop the other clips: they come back in ``error``.
    ``workers`` processes share the clips and the time segments of long clips (see the module's text).

    ``shard=(k, n)`` prepares only the clips of the k-th of n shards (:func:`shard_sources`); the
    subjects' splits are still drawn over all the inputs, as one run would, so parts joined with
    :func:`facedyn.data.merge.merge` make the store one run makes (with the same ``workers``).

    ``check_identities``: once a store holds two or more subjects, True runs the identity check
    (:func:`facedyn.data.identities.warn_same_people`: decodes ~10 frames per clip) and warns about subjects
    that look like one person; None (the default) does so only when every clip's descriptors are
    already cached (a check has run before: nothing is decoded); False never.

    Subjects already in the store keep their split (a warning names those whose dataset proposes
    another); new subjects take the split their dataset proposes, or a seeded share (see
    :func:`~facedyn.data.store.assign_splits`). Folds (``facedyn split --folds``) are kept while the
    subjects stay the same, and dropped with a warning when subjects are added.

    Raises:
        ConfigError: a bad option (size not a multiple of 16, unknown align or track, bad shard).
        DatasetError: ``out`` holds a store prepared with another size, mask, align, detector or
            template (raised before anything is written).
    """
    opts = opts or PrepareOptions()
    if opts.size < 16 or opts.size % 16:
        raise ConfigError(f"--size must be a multiple of 16 and >= 16 (UNets halve it 4 times), got {opts.size}")
    if opts.align not in ALIGNS:
        raise ConfigError(f"--align {opts.align!r} is not supported; choose one of {', '.join(ALIGNS)}")
    if opts.track not in TRACKS:
        raise ConfigError(f"--track {opts.track!r} is not supported; choose one of {', '.join(TRACKS)}")
    if shard is not None:
        parse_shard(f"{shard[0]}/{shard[1]}")
    check_store_compatible(out, opts)
    try:
        raw_old = read_index(out) if Path(out).is_dir() else None
    except DatasetError:
        raw_old = None  # a corrupt index is rebuilt from this run's clips
    old = normalize_index(raw_old, out) if raw_old is not None else None
    sources = collect_sources(inputs, kind=kind, landmarks=landmarks, **(adapter_options or {}))
    out = ensure_writable_dir(Path(out))
    with lock.hold(out, "prepare"):  # one writer per store: a second prepare refuses in one line
        clean_partial(out)
        stored = {s: k for k, subs in (old["splits"] if old else {}).items() for s in subs}
        proposed = {s.subject: s.split for s in sources if s.split}
        moved = sorted(s for s, sp in proposed.items() if s in stored and stored[s] != sp)
        if moved:
            warnings.warn(f"{len(moved)} subject(s) ({', '.join(moved)}) keep the split this store gives them, not "
                          f"their dataset's; change it with `facedyn split {out} --val ... --test ...`", stacklevel=2)
        subjects = sorted({s.subject for s in sources} | set(stored))
        split_of = assign_splits(subjects, {**proposed, **stored}, seed=opts.seed)
        for s in sources:
            s.split = split_of[s.subject]
        if shard is not None:
            sources = shard_sources(sources, shard)

        results: dict[str, ClipResult] = {}
        _SOURCES[:] = sources
        try:
            runs: list[_ClipRun] = []
            total = 0
            for i, s in enumerate(sources):
                d = out / s.clip_id
                if is_complete_clip(d):
                    m = json.loads((d / "meta.json").read_text())
                    results[s.clip_id] = ClipResult(s.clip_id, s.subject, s.split, m["n_frames"], m["n_valid"],
                                                    m["fps"], skipped=True)
                    continue
                try:
                    run, n = _plan_clip(i, opts, workers)
                except FacedynError as e:
                    results[s.clip_id] = ClipResult(s.clip_id, s.subject, s.split, error=str(e))
                    continue
                runs.append(run)
                total += n
            done = 0

            def bump(n: int) -> None:
                nonlocal done, total
                done += n
                total = max(total, done)  # the headers' counts are estimates: the frames decoded are what counts
                if on_progress is not None:
                    on_progress(done, total)

            parallel = workers if sum(len(r.bounds) for r in runs) > 1 else 1
            results.update(_prepare_clips(runs, out, opts, parallel, bump))
            if on_progress is not None and runs:
                on_progress(done, done)  # the decoded count, where a header promised more frames
        finally:
            _SOURCES.clear()
        clip_info = {}
        for s in sources:
            r = results[s.clip_id]
            if r.error is None:
                clip_info[s.clip_id] = {"subject": s.subject, "n_frames": r.n_frames, "n_valid": r.n_valid,
                                        "fps": r.fps}
        # keep clips prepared by earlier runs with other inputs
        for cid, info in (old["clips"] if old else {}).items():
            if cid not in clip_info and is_complete_clip(out / cid):
                clip_info[cid] = info
        if clip_info:
            final = sorted({str(c["subject"]) for c in clip_info.values()})
            splits = {k: [s for s in final if split_of.get(s, "train") == k] for k in SPLITS}
            folds = old.get("folds") if old else None
            if folds and sorted(s for f in folds for s in f) != final:
                warnings.warn(f"{out}: the subjects changed, so its {len(folds)} cross-validation folds were dropped; "
                              f"remake them with `facedyn split {out} --folds {len(folds)}`", stacklevel=2)
                folds = None
            write_index(out, clip_info, __version__, splits=splits, contract=run_contract(opts), folds=folds)
        for r in results.values():
            if r.error is None and r.n_frames and r.n_valid == 0:
                warnings.warn(f"{r.clip_id}: no face found in any of its {r.n_frames} frames; kept, but it gives no "
                              "windows", stacklevel=2)
        if check_identities is not False and clip_info and len({c["subject"] for c in clip_info.values()}) >= 2:
            from facedyn.data import identities

            if check_identities or identities.cached_only(out):
                identities.warn_same_people(out)
        return [results[s.clip_id] for s in sources]
