"""Identity check for person-level splits: subjects that look like one person.

Person-level splits and folds only hold out people if every person has one subject name. A person filed
under two names (two folders of a video corpus) ends up on both sides of a split and leaks. This module
compares subjects by face descriptor and lists the pairs that look like one person:

* Per clip, :data:`FRAMES_PER_CLIP` frames evenly spaced over the frames with a face are decoded from the
  clip's *source* video (the store's 64 px crops are far below the 150 px face chips the network expects).
  The face is placed by the store's own 68 landmarks, which ``faces.csv`` keeps in source pixels, or, for a
  folder of videos (or a store without ``faces.csv``), by dlib's HOG detector and 68-point predictor.
* ``dlib.get_face_chip`` cuts a 150 px chip aligned on those landmarks, and dlib's face-recognition ResNet
  (``dlib_face_recognition_resnet_model_v1.dat``, shipped in ``face-recognition-models``) gives a 128-D
  descriptor per chip.
* A subject's descriptor is the mean of its clips' mean descriptors (each clip counts once); two
  subjects' distance is the Euclidean (L2) distance of those means.

Threshold (:data:`IDENTITY_THRESHOLD` = 0.40) and a band to look at (up to :data:`IDENTITY_LOOK` = 0.45): dlib
calls two *single images* one person below 0.6; means over frames are less noisy. Measured on the corpus
(81 people, 131 clips): a person filed under two names, simulated by every split of each of the 14 people with
several clips into two groups of clips (290 splits), gives 0.18 (median), 0.33 (99th percentile), 0.42 at most
(one strong-disgust clip of W009 against its other 7); different people give 0.55 at the 1st percentile of 3 240
pairs and 0.422 at the closest (M030 and ret1: two young East Asian men, different by eye; dlib's network
places East Asian faces closer together), then 0.452. Below 0.40: 289 of the 290 splits and no pair of
different people. Pairs between 0.40 and 0.45 are listed as *close: look* (the one missed split and the one
different pair are both there), not counted as one person: the two distributions touch at 0.42, so that band
needs a human eye.

Where a store clip's source video is missing (a store moved to another machine), its descriptors come from
the store's own crops upscaled to 256 px, with a warning naming the clips: those distances are rougher.

Descriptors are cached per clip (atomic ``.npz`` files): in a store under ``DATA/identities/``, for a folder of
videos under ``$FACEDYN_CACHE_DIR/identities`` (default ``~/.cache/facedyn``), keyed by the source file's path,
size and modification time, so a second check reads them instead of decoding anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facedyn.atomic import atomic_path
from facedyn.data.store import ClipDataset, read_index
from facedyn.errors import ConfigError, DatasetError, FacedynError, InputNotFoundError

__all__ = [
    "FRAMES_PER_CLIP",
    "IDENTITY_LOOK",
    "IDENTITY_THRESHOLD",
    "ClipDescriptors",
    "advice",
    "cached_only",
    "check_identities",
    "clip_descriptors",
    "describe",
    "face_chip",
    "identity_pairs",
    "subject_descriptors",
    "warn_same_people",
]

#: subjects whose mean descriptors are closer than this are reported as one person (see the module text)
IDENTITY_THRESHOLD = 0.40
#: pairs from the threshold up to this distance are listed as close, to look at (not counted as one person)
IDENTITY_LOOK = 0.45
#: frames sampled per clip (evenly spaced over the frames with a face)
FRAMES_PER_CLIP = 10
#: side of the face chip the recognition network takes, and the chip's padding (dlib's defaults)
CHIP_SIZE, CHIP_PADDING = 150, 0.25
#: the store's 64 px crops are upscaled to this side when the source video is missing
CROP_UPSCALE_TO = 256
#: folder of the per-clip cache inside a store
CACHE_DIR = "identities"
#: bump when descriptors would come out differently (invalidates every cache)
CACHE_VERSION = 1

_FACES = "faces.csv"


@dataclass
class ClipDescriptors:
    """Face descriptors of one clip.

    Attributes:
        clip_id: the clip's id (a store's, or the one ``prepare`` would give it).
        subject: the person the clip is filed under.
        source: the video (or image folder) the frames were decoded from.
        frames: ``(n,)`` int frame indices the descriptors come from.
        descriptors: ``(n, 128)`` float32, one per frame where a face was found.
        how: ``"store-landmarks"`` (the store's landmarks on source frames), ``"detected"`` (dlib HOG on
            source frames) or ``"crops"`` (the store's crops, upscaled: the source was missing).
    """

    clip_id: str
    subject: str
    source: Path
    frames: np.ndarray
    descriptors: np.ndarray
    how: str


@dataclass
class _Item:
    """A clip to describe: where its frames come from and where its cache lives."""

    clip_id: str
    subject: str
    source: Path
    cache: Path
    clip_dir: Path | None = None  # a store clip: its faces.csv, valid.npy and crops


# -- dlib ------------------------------------------------------------------------------------------------------

_MODELS: dict[str, Any] = {}


def _recognizer() -> Any:
    if "rec" not in _MODELS:
        from facedyn.data.faces.detect import _dlib, recognition_model_path

        _MODELS["rec"] = _dlib().face_recognition_model_v1(str(recognition_model_path()))
    return _MODELS["rec"]


def _landmarker() -> Any:
    if "lm" not in _MODELS:
        from facedyn.data.faces import FaceLandmarker

        _MODELS["lm"] = FaceLandmarker()
    return _MODELS["lm"]


def face_chip(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The 150 px face chip dlib's recognition network takes, aligned on 68 landmarks (image pixels)."""
    from facedyn.data.faces.detect import _dlib

    dlib = _dlib()
    pts = np.asarray(landmarks, np.float64).reshape(68, 2)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    rect = dlib.rectangle(int(np.floor(lo[0])), int(np.floor(lo[1])), int(np.ceil(hi[0])), int(np.ceil(hi[1])))
    shape = dlib.full_object_detection(rect, [dlib.point(round(x), round(y)) for x, y in pts])
    return np.asarray(dlib.get_face_chip(np.ascontiguousarray(image), shape, size=CHIP_SIZE, padding=CHIP_PADDING))


def describe(chips: list[np.ndarray]) -> np.ndarray:
    """``(n, 128)`` float32 descriptors of face chips (RGB ``uint8 (150, 150, 3)``), one batch."""
    if not chips:
        return np.zeros((0, 128), np.float32)
    out = _recognizer().compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
    return np.asarray([np.asarray(d) for d in out], np.float32).reshape(len(chips), 128)


# -- which frames ------------------------------------------------------------------------------------------------

def _evenly(candidates: np.ndarray, k: int) -> np.ndarray:
    """``k`` of ``candidates`` (sorted) evenly spaced, ends excluded (all when there are fewer)."""
    if len(candidates) <= k:
        return candidates
    pos = ((np.arange(k) + 0.5) * len(candidates) / k).astype(int)
    return candidates[pos]


def _store_landmarks(clip_dir: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Frame indices with a face and their ``(n, 68, 2)`` landmarks in source pixels (``faces.csv``); None
    when the clip has no ``faces.csv`` (stores made before it)."""
    p = clip_dir / _FACES
    if not p.is_file():
        return None
    df = pd.read_csv(p)
    xy = np.stack([df[[f"x_{k}" for k in range(68)]].to_numpy(np.float64),
                   df[[f"y_{k}" for k in range(68)]].to_numpy(np.float64)], axis=-1)
    ok = np.isfinite(xy).all(axis=(1, 2))
    return df["frame"].to_numpy(int)[ok], xy[ok]


def _source_frames(item: _Item, k: int) -> Iterator[tuple[int, np.ndarray, np.ndarray | None]]:
    """``(frame index, RGB frame, landmarks or None)`` of ``k`` frames of a source video."""
    from facedyn.data import video as video_io

    given = _store_landmarks(item.clip_dir) if item.clip_dir is not None else None
    if given is not None:
        frames, lms = given
        pick = _evenly(np.arange(len(frames)), k)
        by_frame = {int(frames[i]): lms[i] for i in pick}
        for i, img in video_io.frames_at(item.source, by_frame):
            yield i, img, by_frame[i]
        return
    if item.clip_dir is not None:
        valid = np.flatnonzero(np.load(item.clip_dir / "valid.npy"))
        wanted = _evenly(valid, k)
    else:
        n = video_io.frame_count(item.source) or video_io.probe(item.source).n_frames
        wanted = _evenly(np.arange(max(n, 1)), k)
    for i, img in video_io.frames_at(item.source, wanted.tolist()):
        yield i, img, None


def _crop_frames(clip_dir: Path, k: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """The store's own crops, upscaled to :data:`CROP_UPSCALE_TO` px, with their landmarks (no source needed)."""
    import cv2

    valid = np.load(clip_dir / "valid.npy")
    lms = np.load(clip_dir / "landmarks.npy")
    crops = np.load(clip_dir / "frames.npy", mmap_mode="r")
    ok = np.flatnonzero(valid & np.isfinite(lms).all(axis=(1, 2)))
    for i in _evenly(ok, k).tolist():
        crop = np.asarray(crops[i])
        f = CROP_UPSCALE_TO / crop.shape[0]
        big = cv2.resize(crop, (CROP_UPSCALE_TO, CROP_UPSCALE_TO), interpolation=cv2.INTER_CUBIC)
        yield i, big, (lms[i].astype(np.float64) + 0.5) * f - 0.5


def _compute(item: _Item, k: int, from_crops: bool) -> ClipDescriptors:
    """Descriptors of up to ``k`` frames of one clip (frames where no face is found are left out)."""
    idx, chips = [], []
    if from_crops:
        assert item.clip_dir is not None
        how = "crops"
        for i, img, lms in _crop_frames(item.clip_dir, k):
            idx.append(i)
            chips.append(face_chip(img, lms))
    else:
        how = "store-landmarks" if item.clip_dir is not None and (item.clip_dir / _FACES).is_file() else "detected"
        for i, img, lms in _source_frames(item, k):
            if lms is None:
                lms = _landmarker()(img)
                if lms is None:
                    continue
            idx.append(i)
            chips.append(face_chip(img, lms))
    return ClipDescriptors(item.clip_id, item.subject, item.source, np.asarray(idx, np.int64), describe(chips), how)


# -- the cache ---------------------------------------------------------------------------------------------------

def _key(item: _Item, from_crops: bool) -> dict[str, Any]:
    """What a cached clip must match: the file its frames come from (path, size, mtime), crops or not, the version."""
    src = item.clip_dir / "frames.npy" if from_crops and item.clip_dir is not None else item.source
    st = src.stat()
    return {"version": CACHE_VERSION, "source": str(src.resolve()), "bytes": st.st_size,
            "mtime_ns": st.st_mtime_ns, "crops": bool(from_crops)}


def _read_cache(item: _Item, key: dict[str, Any], k: int | None) -> ClipDescriptors | None:
    """The cached descriptors of ``item`` if they match ``key`` and were made with ``k`` frames per clip (None:
    any number)."""
    if not item.cache.is_file():
        return None
    try:
        with np.load(item.cache, allow_pickle=False) as z:
            if json.loads(str(z["key"])) != key or (k is not None and int(z["frames_per_clip"]) != k):
                return None
            return ClipDescriptors(item.clip_id, item.subject, item.source, z["frames"].astype(np.int64),
                                   z["descriptors"].astype(np.float32), str(z["how"]))
    except (OSError, ValueError, KeyError, json.JSONDecodeError):
        return None  # unreadable: computed again and overwritten


def _write_cache(item: _Item, key: dict[str, Any], k: int, d: ClipDescriptors) -> None:
    with atomic_path(item.cache) as tmp, open(tmp, "wb") as f:
        np.savez(f, key=np.asarray(json.dumps(key, sort_keys=True)), frames_per_clip=np.asarray(k),
                 frames=d.frames, descriptors=d.descriptors, how=np.asarray(d.how))


# -- what to check ---------------------------------------------------------------------------------------------

def _items(source: str | os.PathLike[str]) -> tuple[list[_Item], ClipDataset | None]:
    """The clips of a store (its index) or of a folder of videos (as ``prepare`` would name them)."""
    root = Path(source)
    if not root.exists():
        raise InputNotFoundError(f"{root}: no such store or folder; give a prepared store or a folder of videos")
    if root.is_dir() and read_index(root) is not None:
        ds = ClipDataset(root)
        items = []
        for clip in ds.clips():
            src = clip.meta.get("source")
            items.append(_Item(clip.clip_id, clip.subject, Path(src) if src else clip.path / "missing-source",
                               root / CACHE_DIR / f"{clip.clip_id}.npz", clip.path))
        return items, ds
    from facedyn.data.sources import collect_sources
    from facedyn.precision import cache_dir

    items = []
    for s in collect_sources([root]):
        path = Path(s.video).resolve()
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:16]
        items.append(_Item(s.clip_id, s.subject, path, cache_dir() / CACHE_DIR / f"{digest}.npz"))
    if not items:
        raise DatasetError(f"{root}: holds no videos or image folders; give a prepared store or a folder of videos "
                           "(one folder per person)")
    return items, None


def clip_descriptors(
    source: str | os.PathLike[str],
    frames_per_clip: int | None = FRAMES_PER_CLIP,
    progress: Callable[[int, int, str], None] | None = None,
    compute: bool = True,
) -> list[ClipDescriptors]:
    """Face descriptors of every clip of a store or a folder of videos (cached; see the module text).

    Args:
        source: a prepared store, or a folder of videos (one folder per person, as ``prepare`` reads it).
        frames_per_clip: frames sampled per clip; None: descriptors cached with any number count, and
            :data:`FRAMES_PER_CLIP` where a clip is described anew.
        progress: called as ``progress(done, total, clip_id)`` after each clip.
        compute: False: use only cached clips (the others are left out; nothing is decoded).

    Raises:
        InputNotFoundError: ``source`` does not exist.
        DatasetError: it holds no clips.
        ConfigError: ``frames_per_clip`` < 1.
    """
    _check_frames(frames_per_clip)
    return _describe_all(_items(source)[0], frames_per_clip, progress, compute)


def _check_frames(frames_per_clip: int | None) -> int | None:
    if frames_per_clip is None:
        return None
    if isinstance(frames_per_clip, bool) or not isinstance(frames_per_clip, int | np.integer) or frames_per_clip < 1:
        raise ConfigError(f"frames per clip must be a positive integer, got {frames_per_clip!r}")
    return int(frames_per_clip)


def _describe_all(items: list[_Item], frames_per_clip: int | None, progress: Callable[[int, int, str], None] | None,
                  compute: bool) -> list[ClipDescriptors]:
    k = _check_frames(frames_per_clip)
    out: list[ClipDescriptors] = []
    from_crops: list[str] = []
    for n, item in enumerate(items, 1):
        crops = not item.source.exists()
        if crops and item.clip_dir is None:
            raise InputNotFoundError(f"{item.source}: vanished while checking; check the folder and rerun")
        if crops:
            from_crops.append(item.clip_id)
        key = _key(item, crops)
        d = _read_cache(item, key, k)
        if d is None and compute:
            try:
                d = _compute(item, k or FRAMES_PER_CLIP, crops)
            except FacedynError as e:
                warnings.warn(f"{item.clip_id}: left out of the identity check ({e})", stacklevel=3)
            else:
                _write_cache(item, key, k or FRAMES_PER_CLIP, d)
        if d is not None:
            out.append(d)
        if progress is not None:
            progress(n, len(items), item.clip_id)
    if from_crops and compute:
        shown = ", ".join(from_crops[:5]) + (f" and {len(from_crops) - 5} more" if len(from_crops) > 5 else "")
        warnings.warn(f"{len(from_crops)} clip(s) ({shown}) have no source video where the store recorded it; "
                      "their descriptors come from the store's small crops, upscaled, and are rougher: put the "
                      "videos back to check them properly", stacklevel=3)
    return out


def subject_descriptors(clips: Iterable[ClipDescriptors]) -> dict[str, np.ndarray]:
    """Each subject's descriptor: the mean of its clips' mean descriptors (clips without a face left out)."""
    per: dict[str, list[np.ndarray]] = {}
    for c in clips:
        if len(c.descriptors):
            per.setdefault(c.subject, []).append(c.descriptors.mean(axis=0))
    return {s: np.mean(v, axis=0).astype(np.float32) for s, v in sorted(per.items())}


def identity_pairs(descriptors: dict[str, np.ndarray], threshold: float = IDENTITY_THRESHOLD,
                   split_of: dict[str, str] | None = None, look: float = IDENTITY_LOOK) -> pd.DataFrame:
    """Every pair of subjects with the L2 distance of their descriptors, closest first.

    Columns: ``subject_a``, ``subject_b``, ``distance``, ``same_person`` (distance < ``threshold``), ``close``
    (``threshold`` <= distance < ``look``: worth a look, not counted as one person), and with ``split_of`` also
    ``split_a``, ``split_b`` and ``leak`` (one person in two different splits).
    """
    names = sorted(descriptors)
    cols = ["subject_a", "subject_b", "distance", "same_person", "close"] + (
        ["split_a", "split_b", "leak"] if split_of else [])
    if len(names) < 2:
        return pd.DataFrame(columns=cols)
    x = np.stack([descriptors[s] for s in names]).astype(np.float64)
    dist = np.sqrt(np.maximum(((x[:, None] - x[None]) ** 2).sum(-1), 0.0))
    a, b = np.triu_indices(len(names), k=1)
    df = pd.DataFrame({"subject_a": [names[i] for i in a], "subject_b": [names[j] for j in b],
                       "distance": dist[a, b]})
    df["same_person"] = df["distance"] < threshold
    df["close"] = ~df["same_person"] & (df["distance"] < max(look, threshold))
    if split_of:
        df["split_a"] = [split_of.get(s, "") for s in df["subject_a"]]
        df["split_b"] = [split_of.get(s, "") for s in df["subject_b"]]
        df["leak"] = df["same_person"] & (df["split_a"] != df["split_b"])
    return df.sort_values(["distance", "subject_a", "subject_b"], kind="stable").reset_index(drop=True)[cols]


def _check_threshold(threshold: float) -> float:
    try:
        t = float(threshold)
    except (TypeError, ValueError):
        t = float("nan")
    if not 0.0 < t < 2.0:
        raise ConfigError(f"identity threshold must be a distance between 0 and 2 (default {IDENTITY_THRESHOLD}), "
                          f"got {threshold!r}")
    return t


def check_identities(
    source: str | os.PathLike[str],
    threshold: float = IDENTITY_THRESHOLD,
    frames_per_clip: int | None = FRAMES_PER_CLIP,
    progress: Callable[[int, int, str], None] | None = None,
    compute: bool = True,
) -> pd.DataFrame:
    """Pairs of subjects of a store or a folder of videos, by face-descriptor distance, closest first.

    Args:
        source: a prepared store (subjects from its index, faces placed by its landmarks on the source
            videos) or a folder of videos (one folder per person: subjects as ``facedyn prepare`` names them).
        threshold: pairs closer than this are ``same_person`` (default :data:`IDENTITY_THRESHOLD`); those from
            there up to :data:`IDENTITY_LOOK` are ``close`` (listed to look at).
        frames_per_clip: frames sampled per clip (default :data:`FRAMES_PER_CLIP`; None: as cached, see
            :func:`clip_descriptors`).
        progress: ``progress(done, total, clip_id)`` after each clip.
        compute: False: only clips already cached count (nothing is decoded).

    Returns:
        Every pair (see :func:`identity_pairs`; a store adds the subjects' splits and ``leak``). ``attrs``:
        ``threshold``, ``look`` (the end of the close band), ``subjects`` (how many were compared), ``no_face``
        (subjects without any face found, not compared), ``clips`` (how many clips were described) and
        ``from_crops`` (clips described from the store's crops).

    Raises:
        InputNotFoundError, DatasetError, ConfigError: see :func:`clip_descriptors`; a bad ``threshold``.
    """
    t = _check_threshold(threshold)
    _check_frames(frames_per_clip)
    items, ds = _items(source)
    clips = _describe_all(items, frames_per_clip, progress, compute)
    desc = subject_descriptors(clips)
    split_of = {s: k for k, subs in ds.splits.items() for s in subs} if ds is not None else None
    df = identity_pairs(desc, t, split_of)
    df.attrs.update(threshold=t, look=max(IDENTITY_LOOK, t), subjects=len(desc), clips=len(clips),
                    no_face=sorted({i.subject for i in items} - set(desc)) if compute else [],
                    from_crops=[c.clip_id for c in clips if c.how == "crops"])
    return df


def cached_only(source: str | os.PathLike[str], frames_per_clip: int | None = None) -> bool:
    """Whether every clip of ``source`` has its descriptors cached (with ``frames_per_clip`` frames; None: any
    number), so that a check with the same ``frames_per_clip`` decodes nothing."""
    k = _check_frames(frames_per_clip)
    try:
        items, _ = _items(source)
    except FacedynError:
        return False
    for item in items:
        crops = not item.source.exists()
        if crops and item.clip_dir is None:
            return False
        if _read_cache(item, _key(item, crops), k) is None:
            return False
    return True


def advice(source: str | os.PathLike[str]) -> str:
    """What to do about a pair that may be one person (one line; a store also gets the split commands)."""
    text = ("look at their clips; if they are one person, put their videos in one folder (one folder per person) "
            "and prepare again")
    if Path(source).is_dir() and read_index(source) is not None:
        text += (f", or keep both in one split (`facedyn split {source} --val ... --test ...`) and remake any folds "
                 f"(`facedyn split {source} --folds K`)")
    return text


def warn_same_people(source: str | os.PathLike[str], threshold: float = IDENTITY_THRESHOLD,
                     frames_per_clip: int | None = None) -> pd.DataFrame:
    """Run :func:`check_identities` and warn (one line) about the pairs below ``threshold``; returns those pairs.

    ``frames_per_clip`` None (the default) takes the descriptors cached by any earlier check as they are.
    """
    df = check_identities(source, threshold=threshold, frames_per_clip=frames_per_clip)
    near = df[df["same_person"]]
    if len(near):
        pairs = ", ".join(f"{a}~{b} ({d:.2f})" for a, b, d in
                          zip(near["subject_a"], near["subject_b"], near["distance"], strict=True))
        warnings.warn(f"{len(near)} pair(s) of subjects may be one person (face-descriptor distance < "
                      f"{threshold:g}): {pairs}; {advice(source)}", stacklevel=2)
    return near
