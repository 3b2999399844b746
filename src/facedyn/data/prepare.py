"""``facedyn prepare``: videos → detected, aligned, masked face clips in the clip store.

For each clip source (from a dataset adapter): stream-decode the video, find 68 landmarks per frame
(or take the given ones), crop the face to ``size`` and write the clip atomically. Two alignments
(``align``, see :mod:`facedyn.data.faces.align`): ``similarity`` aligns each frame to the canonical
template and by default zeroes pixels outside the landmarks' convex hull (one streaming pass);
``box`` crops a square around the landmarks' bounding box smoothed over the clip, without rotation
and by default unmasked, so roll, scale and shift stay in the crops (two streaming passes: landmarks
first, then the crops of the smoothed boxes; the video is never held in memory). Clips run in parallel worker processes;
complete clips are skipped on a rerun, and partial ones left by an interrupted run are removed.

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
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facedyn import __version__
from facedyn.atomic import write_text
from facedyn.data import video as video_io
from facedyn.data.datasets.base import ClipSource
from facedyn.data.store import (
    CONTRACT_KEYS,
    GIVEN_LANDMARKS,
    SPLITS,
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
    InputNotFoundError,
    LabelFormatError,
    VideoDecodeError,
)

#: face alignments ``prepare`` can make (``align`` in index.json)
ALIGNS = ("similarity", "box")


@dataclass
class PrepareOptions:
    """Options of one ``prepare`` run (saved in each clip's meta.json; size, mask, align and the
    detector also in index.json, where every later run into the same store must match them).

    ``align``: ``"similarity"`` or ``"box"`` (:data:`ALIGNS`); ``mask`` None (the default) becomes
    True for ``similarity`` and False for ``box``.
    """

    size: int = 64
    mask: bool | None = None
    detector: str = "hog"
    align: str = "similarity"
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


def detector_id(detector: str) -> str:
    """The name recorded for a ``--detector`` choice: ``"hog"`` -> ``"dlib-hog+shape_predictor_68"``."""
    return f"dlib-{detector}+shape_predictor_68" if detector in ("hog", "cnn") else str(detector)


def run_contract(opts: PrepareOptions) -> dict[str, Any]:
    """The store contract (``size``, ``mask``, ``align``, ``template``, ``detector``) ``opts`` produce."""
    return {"size": int(opts.size), "mask": bool(opts.mask), "align": opts.align,
            "template": template_id(opts.align),
            "detector": detector_id(opts.detector)}


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
        raise DatasetError(f"{out}: this store was prepared with {store}, this run asks for {run}; {hint}")
    return have


def _faces_table(times: list[float], src_lms: list[np.ndarray | None]) -> pd.DataFrame:
    """OpenFace-style per-frame table: frame, timestamp, success, x_0..x_67, y_0..y_67 (source px)."""
    n = len(times)
    lm = np.full((n, 68, 2), np.nan, np.float32)
    for i, m in enumerate(src_lms):
        if m is not None:
            lm[i] = m
    cols: dict[str, Any] = {"frame": np.arange(n), "timestamp": np.round(times, 4),
                            "success": [int(m is not None) for m in src_lms]}
    cols.update({f"x_{k}": lm[:, k, 0] for k in range(68)})
    cols.update({f"y_{k}": lm[:, k, 1] for k in range(68)})
    return pd.DataFrame(cols)


_LANDMARKER: Any = None


def _landmarker(opts: PrepareOptions) -> Any:
    global _LANDMARKER
    if _LANDMARKER is None:
        from facedyn.data.faces import FaceLandmarker

        _LANDMARKER = FaceLandmarker(detector=opts.detector, upsample=opts.upsample, max_side=opts.max_side)
    return _LANDMARKER


def prepare_clip(
    src: ClipSource,
    out: Path,
    opts: PrepareOptions,
    progress: Callable[[int], None] | None = None,
) -> ClipResult:
    """Prepare one clip into ``out/<clip_id>``; raises FacedynError for bad input (nothing written)."""
    from facedyn.data.faces import align_face

    res = ClipResult(src.clip_id, src.subject, src.split)
    info = video_io.probe(src.video)
    fps = src.fps or opts.fps or info.fps if info.is_image_folder else info.fps
    given: np.ndarray | None = None
    if src.landmarks is not None:
        try:
            given = np.load(src.landmarks).astype(np.float32)
        except (OSError, ValueError) as e:
            raise LabelFormatError(f"{src.landmarks}: not a readable .npy landmarks file ({e})") from None
        if given.ndim != 3 or given.shape[1:] != (68, 2):
            raise LabelFormatError(f"{src.landmarks}: landmarks must have shape (N, 68, 2), got {given.shape}")
    writer = ClipWriter(out, src.clip_id, opts.size)
    times: list[float] = []
    src_lms: list[np.ndarray | None] = []
    box = opts.align == "box"
    try:
        pending = 0
        for i, (frame, t) in enumerate(video_io.iter_frames(src.video, fps=fps)):
            if given is not None:
                lms = given[i] if i < len(given) and np.isfinite(given[i]).all() else None
            else:
                lms = _landmarker(opts)(frame)
            if box:
                pass  # crops come in the second pass, once the clip's boxes are smoothed
            elif lms is None:
                writer.add(None, None, False, t)
            else:
                face = align_face(frame, lms, size=opts.size, mask=bool(opts.mask))
                writer.add(face.image, face.landmarks, True, t)
            times.append(t)
            src_lms.append(None if lms is None else np.asarray(lms, np.float32))
            pending += 1
            if progress is not None and pending >= 16:
                progress(pending)
                pending = 0
        if progress is not None and pending:
            progress(pending)
        if box:
            _write_box_crops(writer, src, fps, times, src_lms, opts)
        if given is not None and len(given) != writer.n:
            raise LabelFormatError(
                f"{src.landmarks}: has {len(given)} frames of landmarks but the video has {writer.n}; "
                "give landmarks for every frame"
            )
        labels = src.labels(np.asarray(times)) if src.labels is not None else None
        if labels is not None and len(labels) != writer.n:
            raise LabelFormatError(f"{src.clip_id}: labels have {len(labels)} rows for {writer.n} frames")
        meta = {
            "source": str(Path(src.video).resolve()),
            "fps": float(fps),
            "source_size": [info.width, info.height],
            "detector": GIVEN_LANDMARKS if given is not None else detector_id(opts.detector),
            "mask": opts.mask,
            "align": opts.align,
            "template": template_id(opts.align),
            "subject": src.subject,
            "facedyn_version": __version__,
            **src.extra,
        }
        write_text(writer.tmp / "faces.csv", _faces_table(times, src_lms).to_csv(index=False,
                                                                                          float_format="%.2f"))
        writer.commit(labels, meta)
    except BaseException:
        writer.abort()
        raise
    res.n_frames = writer.n
    res.n_valid = int(sum(m is not None for m in src_lms))
    res.fps = float(fps)
    res.labels = [c for c in labels.columns if c != "frame"] if labels is not None else []
    return res


def _write_box_crops(writer: ClipWriter, src: ClipSource, fps: float, times: list[float],
                     src_lms: list[np.ndarray | None], opts: PrepareOptions) -> None:
    """Second pass of ``--align box``: decode the clip again and write the crops of its smoothed boxes
    (:func:`~facedyn.data.faces.box_track` over the landmarks of the first pass)."""
    from facedyn.data.faces import box_track, crop_face

    valid = np.array([m is not None for m in src_lms], dtype=bool)
    lms = np.stack([m if m is not None else np.zeros((68, 2), np.float32) for m in src_lms]) if src_lms \
        else np.zeros((0, 68, 2), np.float32)
    mats = box_track(lms, valid, fps, opts.size)
    n = 0
    for i, (frame, _) in enumerate(video_io.iter_frames(src.video, fps=fps)):
        if i >= len(src_lms):
            break
        if valid[i]:
            face = crop_face(frame, lms[i], mats[i], opts.size, bool(opts.mask))
            writer.add(face.image, face.landmarks, True, times[i])
        else:
            writer.add(None, None, False, times[i])
        n += 1
    if n != len(src_lms):
        raise VideoDecodeError(f"{src.video}: decoded {n} frames on the second pass, {len(src_lms)} on the first; "
                               "re-export the video")


#: Clip sources of the running prepare, inherited by forked workers (label loaders are closures and
#: need not pickle: workers receive only an index into this list).
_SOURCES: list[ClipSource] = []


def _worker(i: int, out: Path, opts: PrepareOptions, q: Any) -> ClipResult:
    src = _SOURCES[i]

    def report(n: int) -> None:
        q.put(n)

    try:
        return prepare_clip(src, out, opts, progress=report)
    except FacedynError as e:
        return ClipResult(src.clip_id, src.subject, src.split, error=str(e))


def collect_sources(inputs: Sequence[str | Path], kind: str = "folder",
                    landmarks: Path | None = None, **adapter_options: Any) -> list[ClipSource]:
    """Clip sources of every input (video files, folders of videos, image-sequence folders).

    Clip ids are made unique across inputs. ``landmarks`` (one ``(N, 68, 2)`` .npy) is only
    allowed with a single video input.
    """
    from facedyn.data.datasets import discover

    sources: list[ClipSource] = []
    for inp in inputs:
        p = Path(inp)
        if not p.exists():
            raise InputNotFoundError(f"{p}: no such file or folder; check the path")
        if p.is_file() and p.suffix.lower() in video_io.IMAGE_EXTS:
            sources.append(ClipSource(clip_id=p.stem, video=p, subject=p.stem))
            continue
        if p.is_file() and p.suffix.lower() not in video_io.VIDEO_EXTS:
            raise VideoDecodeError(
                f"{p}: not a video or image ({p.suffix or 'no extension'}); give video files or image folders"
            )
        sources.extend(discover(kind, p, **adapter_options))
    if landmarks is not None:
        if len(sources) != 1:
            raise ConfigError(f"--landmarks needs exactly one video input, got {len(sources)} clips")
        if not Path(landmarks).is_file():
            raise InputNotFoundError(f"{landmarks}: no such landmarks file")
        sources[0].landmarks = Path(landmarks)
    seen: dict[str, int] = {}
    for s in sources:
        base = s.clip_id.replace("/", "_")
        if base in seen:
            seen[base] += 1
            s.clip_id = f"{base}_{seen[base]}"
        else:
            seen[base] = 0
            s.clip_id = base
    return sources


def prepare(
    inputs: Sequence[str | Path],
    out: str | Path,
    opts: PrepareOptions | None = None,
    workers: int = 1,
    kind: str = "folder",
    landmarks: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    adapter_options: dict[str, Any] | None = None,
) -> list[ClipResult]:
    """Prepare every clip of ``inputs`` into the dataset directory ``out``.

    Complete clips already in ``out`` are skipped; partial ones from an interrupted run removed.
    ``on_progress(done_frames, total_frames)`` is called as frames are processed. Per-clip errors
    (undecodable file, bad labels) do not stop the other clips: they come back in ``error``.

    Subjects already in the store keep their split (a warning names those whose dataset proposes
    another); new subjects take the split their dataset proposes, or a seeded share (see
    :func:`~facedyn.data.store.assign_splits`). Folds (``facedyn split --folds``) are kept while the
    subjects stay the same, and dropped with a warning when subjects are added.

    Raises:
        ConfigError: a bad option (size not a multiple of 16, unknown align).
        DatasetError: ``out`` holds a store prepared with another size, mask, align, detector or
            template (raised before anything is written).
    """
    opts = opts or PrepareOptions()
    if opts.size < 16 or opts.size % 16:
        raise ConfigError(f"--size must be a multiple of 16 and >= 16 (UNets halve it 4 times), got {opts.size}")
    if opts.align not in ALIGNS:
        raise ConfigError(f"--align {opts.align!r} is not supported; choose one of {', '.join(ALIGNS)}")
    check_store_compatible(out, opts)
    try:
        raw_old = read_index(out) if Path(out).is_dir() else None
    except DatasetError:
        raw_old = None  # a corrupt index is rebuilt from this run's clips
    old = normalize_index(raw_old, out) if raw_old is not None else None
    sources = collect_sources(inputs, kind=kind, landmarks=landmarks, **(adapter_options or {}))
    out = ensure_writable_dir(Path(out))
    clean_partial(out)
    stored = {s: k for k, subs in (old["splits"] if old else {}).items() for s in subs}
    proposed = {s.subject: s.split for s in sources if s.split}
    moved = sorted(s for s, sp in proposed.items() if s in stored and stored[s] != sp)
    if moved:
        warnings.warn(f"{len(moved)} subject(s) ({', '.join(moved)}) keep the split this store gives them, not their "
                      f"dataset's; change it with `facedyn split {out} --val ... --test ...`", stacklevel=2)
    subjects = sorted({s.subject for s in sources} | set(stored))
    split_of = assign_splits(subjects, {**proposed, **stored}, seed=opts.seed)
    for s in sources:
        s.split = split_of[s.subject]

    results: dict[str, ClipResult] = {}
    todo: list[ClipSource] = []
    total = 0
    for s in sources:
        d = out / s.clip_id
        if is_complete_clip(d):
            m = json.loads((d / "meta.json").read_text())
            results[s.clip_id] = ClipResult(s.clip_id, s.subject, s.split, m["n_frames"], m["n_valid"],
                                            m["fps"], skipped=True)
            continue
        todo.append(s)
        try:
            total += max(1, video_io.probe(s.video).n_frames)
        except FacedynError:
            total += 1
    done = 0

    def bump(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(min(done, total), total)

    if workers <= 1 or len(todo) <= 1:
        for s in todo:
            try:
                results[s.clip_id] = prepare_clip(s, out, opts, progress=bump)
            except FacedynError as e:
                results[s.clip_id] = ClipResult(s.clip_id, s.subject, s.split, error=str(e))
    else:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        _SOURCES[:] = todo
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
                    futs: dict[str, Future[ClipResult]] = {s.clip_id: ex.submit(_worker, i, out, opts, q)
                                                           for i, s in enumerate(todo)}
                    for cid, f in futs.items():
                        results[cid] = f.result()
            finally:
                stop.set()
                th.join()
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
    return [results[s.clip_id] for s in sources]
