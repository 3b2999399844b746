"""``facedyn.analyze``: every face of a video or image through trained models, as one table.

    import facedyn
    df = facedyn.analyze("interview.mp4")                  # the shipped dr-t5
    df = facedyn.analyze("interview.mp4", runs=["dr-t5", "runs/fabnet"])
    df[df.face_id == 0]                                    # one person's rows
    df.loc[0, "dr"]                                        # the DR of that face, (3, 64, 64) float32

Frames are decoded lazily (PyAV). Faces are followed with ids kept across frames
(:class:`~facedyn.data.faces.track.MultiFaceTracker`): with ``track="fit"`` (default) dlib's HOG
detector runs every :data:`~facedyn.data.faces.track.REDETECT_EVERY` frames and wherever a fit degrades,
and the 68-point model is fitted in between (as ``facedyn prepare``); ``track="detect"`` detects on every
frame. Each face is aligned as each run's dataset was (crop size, mask, template) and every model's named
outputs are computed, in batches of faces of consecutive frames.

Columns (the README's column table documents each):

* ``frame, timestamp, face_id, success, x_0..x_67, y_0..y_67``: OpenFace's names, landmarks in source
  pixels;
* :data:`FACE_COLUMNS`: the face box ``face_x, face_y, face_w, face_h`` (source pixels, top-left corner
  and size), ``confidence`` (how likely the landmarks are right, in [0, 1], whatever the head pose:
  :func:`~facedyn.data.faces.track.fit_confidence`), ``detected`` (1 where the detector ran and found the
  face, 0 where it was fitted from the last frame), head pose ``pose_yaw_deg, pose_pitch_deg, pose_roll_deg``
  (degrees, :mod:`facedyn.tasks.pose`, fitted on the face's own proportions), the landmark AU proxies
  ``AU01_p .. AU45_p``, measured on the landmarks seen from the front, relative to the face's running rest,
  and ``proxy_ready`` (:class:`~facedyn.tasks.proxies.StreamProxies`); with ``smooth=`` the pose and proxies are
  smoothed over time (:class:`PoseSmoother`);
* each run's outputs: a scalar per face is one column, a vector of K values ``name_0..name_{K-1}``, an
  image-valued output (a DR) one column of arrays (``arrays=False`` leaves those out); the output that is
  the run's embedding (FAb-Net's, TCAE's AU embedding) is ``<run>_0..<run>_{D-1}``. With several runs,
  the other outputs are prefixed ``<run>.`` (``dr-t3.dr``, ``dr-t5.dr``), as is an output named like the
  face's own columns alone (TCAE's ``tcae.pose_0..``, beside ``pose_yaw_deg``); ``<run>`` is the shipped name or
  the run directory's name.

A frame without a face gives one row with ``face_id`` -1, ``success`` 0, ``confidence`` 0 and NaN
elsewhere.

:func:`iter_faces` yields the same information frame by frame without keeping anything, for long
videos and for writers such as ``facedyn infer``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from facedyn import forked
from facedyn.api import FaceModel, load
from facedyn.data import video as video_io
from facedyn.data.faces.track import FULL_SCAN_EVERY
from facedyn.errors import ConfigError, InputNotFoundError
from facedyn.tasks.proxies import PROXY_COLUMNS
from facedyn.threads import ahead

#: Columns every table starts with (OpenFace's names).
BASE_COLUMNS = ["frame", "timestamp", "face_id", "success",
                *[f"x_{i}" for i in range(68)], *[f"y_{i}" for i in range(68)]]
#: Head pose columns (degrees; signs in :mod:`facedyn.tasks.pose`).
POSE_DEG_COLUMNS = ["pose_yaw_deg", "pose_pitch_deg", "pose_roll_deg"]
#: What the face tracking, the head pose and the landmark AU proxies add after :data:`BASE_COLUMNS`.
FACE_COLUMNS = ["face_x", "face_y", "face_w", "face_h", "confidence", "detected", *POSE_DEG_COLUMNS,
                *PROXY_COLUMNS, "proxy_ready"]
#: Stems of the face's own column families (``pose`` of ``pose_yaw_deg``, ``face`` of ``face_x``, ``x`` of
#: ``x_0``): a run output of one of these names is prefixed with the run even alone (:meth:`_Models.column`).
_COLUMN_STEMS = frozenset("_".join(c.split("_")[:i]) for c in (*BASE_COLUMNS, *FACE_COLUMNS)
                          for i in range(1, c.count("_") + 1))
#: ``track`` values: fit between detections, or detect on every frame.
TRACKS = ("fit", "detect")
#: Faces per forward pass of the models (faces of consecutive frames are batched), ``pipeline="serial"``.
BATCH_FACES = 16
#: The same, ``pipeline="threads"`` with torch networks of 64 px (scaled by (64 / size)^2 for larger ones, at
#: least :data:`BATCH_FACES`): a torch network releases the GIL for each operation and waits for it after each,
#: while the decoding, tracking and per-face threads run Python code; 4x fewer, larger passes made four faces
#: 1.2x faster (one face 1.08x; measured on 2 shared cores), for ~130 MB more memory at the peak of a pass.
#: onnxruntime releases the GIL once a pass: its networks keep :data:`BATCH_FACES` (64 gained < 3 %), as do torch
#: networks with ``pipeline="processes"``, whose tracking runs in the child: there 16 beat 64 (one face, 448 frames:
#: 180 vs 176 frames/s; 150 frames: 154 vs 130, a shorter wait for the first and the last passes).
BATCH_FACES_THREADS = 64
#: torch threads of the models' forward passes, which run in a thread of their own beside the decoding and
#: face tracking. With other work on the cores, 2 OpenMP threads made the DR 5-10x slower than 1 (measured on
#: 2 shared cores: analyze 6.7 vs 28.5 frames/s); 1 thread plus the tracking beside it keeps both cores busy.
NET_THREADS = 1
#: ``pipeline`` values: ``processes`` finds and follows the faces (detection, landmarks, head pose, proxies) in a
#: child process forked for the video (:func:`facedyn.forked.in_child`; Linux), with decoding and the networks in
#: threads of this one; ``threads`` decodes and tracks each in a thread of its own, a few frames ahead of the
#: per-face work and the networks; ``serial`` (the path before, the benchmark's baseline) decodes, tracks and crops
#: in the caller's thread; ``auto`` (default): ``processes`` for a video of :data:`AUTO_PROCESSES_FRAMES` frames or
#: more where the platform forks, else ``threads`` (and for a still image). All give the same table.
PIPELINES = ("auto", "processes", "threads", "serial")
#: ``pipeline="auto"`` picks ``processes`` for videos of at least this many analysed frames (declared; unknown
#: counts as long): forking and filling one more stage cost a few tens of ms a video, which the child repays from
#: ~45 frames on (one face, 512 px, the default torch engine, medians of 5: 30 frames 0.33 s in processes and
#: 0.28 s in threads, 60 frames 0.49 and 0.55 s, 150 frames 0.95 and 1.09 s).
AUTO_PROCESSES_FRAMES = 50
#: ``pipeline="threads"``: frames decoded ahead of the tracking, and frames tracked ahead of the per-face work (each
#: a frame held in memory: 0.8 MB at 512 x 512, 6 MB at 1080p); ``"processes"``: frames in the child's hands (each a
#: slot of shared memory and a frame held here), and (``DECODE_AHEAD``) in the child, frames passed on by the thread
#: that scans ahead.
DECODE_AHEAD = 4
TRACK_AHEAD = 4
CHILD_AHEAD = 8


@dataclass
class FaceResult:
    """One face in one frame (or the empty record of a frame without a face: ``face_id`` -1).

    ``landmarks``: ``(68, 2)`` float32 in source pixels (NaN without a face); ``face``: the
    :data:`FACE_COLUMNS` values (box, confidence, pose, proxies); ``faces``: the aligned crop per data
    spec ``(size, mask, align)``, uint8 ``(size, size, 3)``; ``outputs``: per column prefix the face's output as
    a NumPy array (``()`` scalar, ``(K,)`` vector or ``(C, H, W)`` map).
    """

    frame: int
    timestamp: float
    face_id: int
    landmarks: np.ndarray
    face: dict[str, float] = field(default_factory=dict)
    faces: dict[tuple[int, bool], np.ndarray] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.face_id >= 0

    def row(self, arrays: bool = True) -> dict[str, Any]:
        """This face as a table row (:data:`BASE_COLUMNS`, :data:`FACE_COLUMNS`, then the outputs)."""
        lm = self.landmarks.astype(np.float64)
        r: dict[str, Any] = {"frame": self.frame, "timestamp": round(self.timestamp, 4), "face_id": self.face_id,
                             "success": int(self.success)}
        r.update({f"x_{i}": lm[i, 0] for i in range(68)})
        r.update({f"y_{i}": lm[i, 1] for i in range(68)})
        r.update({c: self.face.get(c, np.nan) for c in FACE_COLUMNS})
        for c in ("detected", "proxy_ready"):
            r[c] = int(self.face.get(c, 0))
        r["confidence"] = float(self.face.get("confidence", 0.0))
        for name, v in self.outputs.items():
            if v.ndim == 0:
                r[name] = float(v)
            elif v.ndim == 1:
                r.update({f"{name}_{k}": float(x) for k, x in enumerate(v)})
            elif arrays:
                r[name] = v
        return r


def run_name(run: str | Path | Any) -> str:
    """How a run is named in column names: a shipped model's name or the run directory's (an ``.onnx``
    file's stem; for a loaded model, its run directory's name)."""
    if not isinstance(run, str | Path):
        run = getattr(run, "run", "model")
    p = Path(run)
    if p.suffix == ".onnx":
        return p.parent.parent.name if p.parent.name == "onnx" else p.stem
    return p.name or str(run)


def _load_one(run: str | Path | Any, device: str | torch.device, engine: str) -> Any:
    if not isinstance(run, str | Path):
        return run  # an already loaded model (FaceModel or OnnxModel)
    if engine == "onnx" or str(run).endswith(".onnx"):
        from facedyn.export import cached_onnx, shared_onnx

        return shared_onnx(run if str(run).endswith(".onnx") else cached_onnx(run), threads=NET_THREADS)
    if engine != "torch":
        raise ConfigError(f"--engine must be torch or onnx, got {engine!r}")
    return load(run, device=device)


def load_models(runs: Sequence[str | Path | Any] | Mapping[str, Any], device: str | torch.device,
                engine: str = "torch") -> dict[str, Any]:
    """Loaded models by run name (:func:`run_name`; ``~k`` added to a repeated name). ``engine="onnx"`` runs each
    network with onnxruntime (exported once, see :func:`facedyn.export.cached_onnx`); ``.onnx`` files are run
    with onnxruntime anyway. A mapping of names to loaded models is returned as it is."""
    if isinstance(runs, Mapping):
        return dict(runs)
    if not runs:
        from facedyn.api import default_runs

        runs = default_runs()
    from facedyn.data.prepare import ALIGNS  # analyze crops faces as prepare can

    out: dict[str, FaceModel] = {}
    for r in runs:
        m = _load_one(r, device, engine)
        if m.data.align not in ALIGNS:
            raise ConfigError(f"{m.run}: trained on {m.data.align!r}-aligned faces; analyze crops faces "
                              f"{' or '.join(ALIGNS)}-aligned only")
        name = run_name(r)
        out[name if name not in out else f"{name}~{len(out)}"] = m
    return out


def _frames(source: Path) -> tuple[Iterator[tuple[np.ndarray, float]], bool]:
    """(frames with timestamps, is a still image)."""
    if not source.exists():
        raise InputNotFoundError(f"{source}: no such image or video")
    if source.is_file() and source.suffix.lower() in video_io.IMAGE_EXTS:
        return iter([(video_io.read_image(source), 0.0)]), True
    return video_io.iter_frames(source), False


class BoxSmoother:
    """Per face, the ``--align box`` crop box ``(cx, cy, side)`` smoothed over time as frames stream in.

    ``prepare`` smooths a clip's landmark boxes with a centred Gaussian of
    :data:`~facedyn.data.faces.BOX_SIGMA_S` seconds (:func:`~facedyn.data.faces.box_track`); a stream has
    no future frames, so here each face's box follows an exponential average with the same time constant
    (the first frame of a face, and a still image, use its own box).
    """

    def __init__(self, sigma_s: float | None = None) -> None:
        from facedyn.data.faces import BOX_SIGMA_S

        self.sigma_s = BOX_SIGMA_S if sigma_s is None else float(sigma_s)
        self.state: dict[int, tuple[np.ndarray, float]] = {}

    def __call__(self, face_id: int, landmarks: np.ndarray, t: float) -> np.ndarray:
        """The smoothed box of ``face_id`` at time ``t`` (seconds) given its ``(68, 2)`` landmarks."""
        from facedyn.data.faces.align import landmark_boxes

        box = landmark_boxes(np.asarray(landmarks, np.float64)[None], np.ones(1, bool))[0]
        prev = self.state.get(face_id)
        if prev is not None and self.sigma_s > 0 and t > prev[1]:
            a = 1.0 - np.exp(-(t - prev[1]) / self.sigma_s)
            box = prev[0] + a * (box - prev[0])
        self.state[face_id] = (box, t)
        return box


class _Models:
    """The runs' networks over batches of faces, writing each face's outputs into its :class:`FaceResult`."""

    def __init__(self, models: dict[str, Any]) -> None:
        self.models = models
        self.specs = sorted({(m.size, m.data.mask, m.data.align) for m in models.values()})

    def column(self, name: str, output: str) -> str:
        """Column (prefix) of run ``name``'s ``output``: ``<run>`` for its embedding, else the output's name
        (``<run>.<output>`` with several runs, or when it is named like a family of the face's own columns:
        TCAE's ``pose`` embedding beside the head pose ``pose_yaw_deg``)."""
        if output == getattr(self.models[name], "embedding_output", None):
            return name
        return f"{name}.{output}" if len(self.models) > 1 or output in _COLUMN_STEMS else output

    def __call__(self, results: list[FaceResult]) -> None:
        if not results:
            return
        for name, m in self.models.items():
            batch = np.stack([r.faces[(m.size, m.data.mask, m.data.align)] for r in results])
            for out, v in m.outputs(batch, aligned=True).items():
                col = self.column(name, out)
                arr = v.numpy()
                for k, r in enumerate(results):
                    r.outputs[col] = arr[k]


class PoseSmoother:
    """Per face, the head pose and the AU proxies smoothed over time as frames stream in (``smooth=``).

    An exponential moving average with a time constant of ``tau`` seconds (causal, as the stream has no future
    frames: it lags changes by about ``tau``); each face has its own, the first frame of a face (and one after
    a gap of several ``tau``) starts it afresh, and NaN values pass through without resetting it.
    """

    COLUMNS = (*POSE_DEG_COLUMNS, *PROXY_COLUMNS)

    def __init__(self, tau: float) -> None:
        self.tau = float(tau)
        self.state: dict[int, tuple[np.ndarray, float]] = {}

    def __call__(self, face_id: int, values: dict[str, float], t: float) -> None:
        """Smooth ``values`` (:data:`COLUMNS` of ``face_id`` at time ``t``, seconds) in place."""
        x = np.array([values[c] for c in self.COLUMNS], np.float64)
        prev = self.state.get(face_id)
        if prev is not None and t > prev[1]:
            a = 1.0 - np.exp(-(t - prev[1]) / self.tau)
            both = np.isfinite(x) & np.isfinite(prev[0])
            x = np.where(both, prev[0] + a * (x - prev[0]), x)
            self.state[face_id] = (np.where(np.isfinite(x), x, prev[0]), t)
        else:
            self.state[face_id] = (x, t)
        values.update(zip(self.COLUMNS, (float(v) for v in x), strict=True))


def _face_values(face: Any, stream: Any) -> dict[str, float]:
    """:data:`FACE_COLUMNS` of one tracked face (``stream``: the face's :class:`StreamProxies`): the head pose
    is the tracker's fit on the face's own shape (:class:`~facedyn.tasks.pose.PoseTracker`), the proxies are
    measured on the landmarks it frontalises."""
    left, top, right, bottom = face.box
    fit = getattr(face, "pose", None)
    if fit is None:
        fit = stream.fit(face.landmarks)
    yaw, pitch, roll = fit.pose if fit is not None else (np.nan, np.nan, np.nan)
    proxies, ready = stream(face.landmarks, fit)
    return {"face_x": left, "face_y": top, "face_w": right - left, "face_h": bottom - top,
            "confidence": face.confidence, "detected": float(face.detected), "pose_yaw_deg": yaw,
            "pose_pitch_deg": pitch, "pose_roll_deg": roll, **proxies, "proxy_ready": float(ready)}


def _long(source: Path, every: int) -> bool:
    """Whether a video has at least :data:`AUTO_PROCESSES_FRAMES` frames to analyse (True where unknown)."""
    try:
        n = video_io.probe(source).n_frames
    except Exception:  # decoding reports the real problem, with its own message
        return True
    return not n or n // every >= AUTO_PROCESSES_FRAMES


#: One face of a frame as the tracking stage gives it: ``face_id``, landmarks ``(68, 2)`` float32, FACE_COLUMNS.
_Found = tuple[int, np.ndarray, dict[str, float]]


def _faces_stage(tracker: Any, finder: Any) -> Any:
    """The tracking stage: ``(key, frame)`` pairs in, each frame's faces (:data:`_Found`) out, in order. With a
    :class:`~facedyn.data.faces.ahead.DetectAhead` ``finder``, the whole-frame scans of the frames the tracker is
    expected to detect run ahead in a thread of their own (as the frames come in)."""
    from facedyn.tasks.proxies import StreamProxies

    streams: dict[int, StreamProxies] = {}

    def faces(found: list[Any]) -> list[_Found]:
        return [(f.face_id, np.asarray(f.landmarks, np.float32),
                 _face_values(f, streams.setdefault(f.face_id, StreamProxies()))) for f in found]

    def stage(frames: Iterator[tuple[Any, np.ndarray]]) -> Iterator[list[_Found]]:
        if finder is None:
            for _, frame in frames:
                yield faces(tracker(frame))
            return

        def scanned() -> Iterator[tuple[int, np.ndarray]]:
            for n, (_, frame) in enumerate(frames):
                finder.find(n, frame)  # its face boxes, where the tracker is expected to detect
                yield n, frame

        with closing(ahead(scanned(), DECODE_AHEAD, "facedyn-detect")) as got:
            for n, frame in got:
                yield faces(finder.track(tracker, n, frame))

    return stage


def iter_faces(source: str | Path, runs: Sequence[str | Path | Any] | Mapping[str, Any] = (),
               device: str | torch.device = "auto", every: int = 1, engine: str = "torch", track: str = "fit",
               batch_faces: int | None = None, pipeline: str = "auto", smooth: float = 0.0,
               full_scan_every: int | None = FULL_SCAN_EVERY) -> Iterator[list[FaceResult]]:
    """For every ``every``-th frame of ``source`` (a video, an image folder or one image), its faces.

    Yields one list per frame: one :class:`FaceResult` per face, by ``face_id`` (or one empty record).
    Nothing is kept between frames but the tracker's state, each face's proxy history and the faces of the
    frames waiting for their forward pass (two batches of ``batch_faces``, by default :data:`BATCH_FACES`
    or :data:`BATCH_FACES_THREADS`). The forward passes run in a worker thread (:data:`NET_THREADS` threads)
    while the next frames are decoded and tracked.
    ``pipeline="processes"`` decodes in a thread, which hands each frame to a child process forked for the video,
    where the faces are found and followed (detection, landmarks, head pose, AU proxies;
    :func:`facedyn.forked.in_child`, :data:`CHILD_AHEAD` frames ahead), and takes their results in this thread;
    ``"threads"`` tracks in a thread instead, a few frames ahead (:data:`DECODE_AHEAD`,
    :data:`TRACK_AHEAD`); in both the whole-frame scans of the frames the tracker is expected to detect run ahead
    in a thread of their own (:class:`~facedyn.data.faces.ahead.DetectAhead`); ``"serial"`` decodes, tracks and
    crops in the caller's thread (the path before); ``"auto"`` (default): ``processes`` for a video of
    :data:`AUTO_PROCESSES_FRAMES` frames or more where the platform forks (:func:`facedyn.forked.available`), else
    ``threads``. All give the same results.
    ``smooth``: seconds; > 0 smooths each face's head pose and AU proxies over time (:class:`PoseSmoother`).
    ``full_scan_every`` (``track="fit"``): the whole frame is scanned for faces at least every this many frames,
    the detections between scan around the faces followed (:data:`~facedyn.data.faces.track.FULL_SCAN_EVERY`);
    None: every detection scans the whole frame (the path before).
    """
    from facedyn.data.faces import MultiFaceTracker, align_face, crop_face
    from facedyn.data.faces.ahead import DetectAhead
    from facedyn.data.faces.align import box_matrix
    from facedyn.data.faces.track import REDETECT_EVERY

    if track not in TRACKS:
        raise ConfigError(f"--track must be one of {', '.join(TRACKS)}, got {track!r}")
    if every < 1:
        raise ConfigError(f"every must be >= 1, got {every}")
    if pipeline not in PIPELINES:
        raise ConfigError(f"pipeline must be one of {', '.join(PIPELINES)}, got {pipeline!r}")
    if not smooth >= 0:
        raise ConfigError(f"--smooth must be >= 0 seconds, got {smooth}")
    if full_scan_every is not None and full_scan_every < 1:
        raise ConfigError(f"--full-scan-every must be >= 1 frame, got {full_scan_every}")
    smoother = PoseSmoother(smooth) if smooth > 0 else None
    path = Path(source)
    frames, still = _frames(path)
    if pipeline == "auto":
        pipeline = "processes" if forked.available() and not still and _long(path, every) else "threads"
    models = _Models(load_models(runs, device, engine))
    if batch_faces is None:
        torch_nets = [m.size for m in models.models.values() if isinstance(m, FaceModel)]
        batch_faces = BATCH_FACES if pipeline != "threads" or not torch_nets else max(
            BATCH_FACES, BATCH_FACES_THREADS * 64 ** 2 // max(torch_nets) ** 2)
    boxes = BoxSmoother()
    box_runs = any(align == "box" for *_, align in models.specs)
    redetect = REDETECT_EVERY if track == "fit" else 1
    full = full_scan_every if track == "fit" and not still else None
    # the whole-frame scans are the ones found ahead (a window around a face needs the tracker's last fit)
    finder = None if pipeline == "serial" else DetectAhead(redetect_every=max(redetect, full or 1), quick=not still)
    tracker = MultiFaceTracker(finder, quick=not still, redetect_every=redetect, full_scan_every=full)
    if pipeline == "processes":  # loaded here, once per process: a child forked for each video shares them
        tracker.load()
    waiting: list[list[FaceResult]] = []
    running: deque[tuple[Future[None], list[list[FaceResult]]]] = deque()
    n_faces = 0
    stage = _faces_stage(tracker, finder)
    tracked: Iterator[tuple[tuple[int, float], np.ndarray, list[_Found]]]
    pairs = (((i, t), frame) for i, (frame, t) in enumerate(frames) if not i % every)
    if pipeline == "serial":  # decode, track, crop in this thread, one frame after the other
        tracked = forked.in_process(pairs, stage)
    elif pipeline == "processes":  # decoding in a thread, which passes the frames to the child; this thread takes
        # their faces as they come (the stage gives results without holding on to frames: it may borrow them)
        tracked = forked.in_child(pairs, stage, CHILD_AHEAD, "facedyn-decode", borrow=True)
    else:  # decoding in a thread, tracking in a thread of its own, a few frames ahead
        decoded = ahead(pairs, DECODE_AHEAD, "facedyn-decode")
        tracked = ahead(forked.in_process(decoded, stage), TRACK_AHEAD, "facedyn-track")
    with ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(NET_THREADS,)) as pool, \
            closing(tracked):  # stops the decoding and tracking threads (or process) when the caller stops early
        for (i, t), frame, found in tracked:
            if not found:
                waiting.append([FaceResult(i, t, -1, np.full((68, 2), np.nan, np.float32))])
            else:
                results = []
                for face_id, landmarks, values in found:
                    r = FaceResult(i, t, face_id, landmarks, face=values)
                    if smoother is not None:
                        smoother(face_id, r.face, t)
                    box = boxes(face_id, r.landmarks, t) if box_runs else None  # once per face and frame
                    for size, mask, align in models.specs:
                        r.faces[(size, mask, align)] = (
                            align_face(frame, r.landmarks, size=size, mask=mask).image if align == "similarity"
                            else crop_face(frame, r.landmarks, box_matrix(box, size), size, mask).image)
                    results.append(r)
                waiting.append(results)
                n_faces += len(results)
            if n_faces >= batch_faces:
                running.append((pool.submit(models, [r for rs in waiting for r in rs if r.success]), waiting))
                waiting, n_faces = [], 0
                while len(running) > 1 or (running and running[0][0].done()):
                    done, batch = running.popleft()
                    done.result()
                    yield from batch
        running.append((pool.submit(models, [r for rs in waiting for r in rs if r.success]), waiting))
        while running:
            done, batch = running.popleft()
            done.result()
            yield from batch


def analyze(source: str | Path, runs: Sequence[str | Path | Any] = (), device: str | torch.device = "auto",
            arrays: bool = True, every: int = 1, engine: str = "torch", track: str = "fit",
            smooth: float = 0.0, pipeline: str = "auto", full_scan_every: int | None = FULL_SCAN_EVERY
            ) -> pd.DataFrame:
    """One row per face per frame of ``source`` (see the module docstring for the columns).

    ``runs``: run directories, shipped model names or loaded models (default: the shipped ``dr-t5``);
    ``arrays``: keep image-valued outputs (one array per row; a long video's DRs take memory: use
    :func:`iter_faces` to stream);
    ``every``: analyse every k-th frame; ``engine``: ``torch`` or ``onnx`` (onnxruntime);
    ``track``: ``fit`` (detect every few frames, fit the landmarks in between) or ``detect`` (every frame);
    ``smooth``: 0 (default) or a time constant in seconds: each face's head pose and AU proxies are smoothed over
    time by an exponential moving average (:class:`PoseSmoother`; it lags changes by about that much);
    ``pipeline``: ``auto`` (default: the faces followed in a forked child process for a long video where the
    platform forks, else in a thread), ``processes``, ``threads`` or ``serial`` (:data:`PIPELINES`,
    :func:`iter_faces`; the same table); ``full_scan_every``: see :func:`iter_faces`.
    """
    models = load_models(runs, device, engine)
    rows = [r.row(arrays) for faces in iter_faces(source, models, device, every, engine, track, smooth=smooth,
                                                  pipeline=pipeline, full_scan_every=full_scan_every)
            for r in faces]
    df = pd.DataFrame(rows)
    first = [*BASE_COLUMNS, *FACE_COLUMNS]
    df = df[[*first, *[c for c in df.columns if c not in first]]]
    df.attrs.update(source=str(source), runs=list(models))  # what facedyn.view needs to draw the page
    return df
