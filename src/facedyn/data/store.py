"""The clip store: aligned face clips on disk, one directory per clip.

Layout of a dataset directory::

    DATASET/
      index.json              the data contract, clips, subjects, splits (and folds)
      <clip_id>/
        frames.npy            uint8 (N, H, W, 3) RGB aligned crops (memory-mapped on read)
        landmarks.npy         float32 (N, 68, 2) landmarks in crop pixels (NaN where no face)
        valid.npy             bool (N,) a face was found on the frame
        timestamps.npy        float64 (N,) seconds from the start of the source
        labels.csv            ``frame`` + one column per label, NaN where unlabelled (optional)
        meta.json             source, fps, size, mask, align, template, detector, subject, facedyn version

``index.json`` (format 2)::

    {"format": 2, "facedyn_version": "...",
     "size": 64, "mask": true, "align": "similarity", "template": "facedyn68:1a2b3c4d",
     "detector": "dlib-hog+shape_predictor_68",
     "clips": {"<clip_id>": {"subject": "P01", "n_frames": 250, "n_valid": 248, "fps": 25.0}, ...},
     "subjects": ["P01", ...],
     "splits": {"train": ["P01", ...], "val": [...], "test": [...]},
     "folds": [["P03", "P07"], ...]}          # only after `facedyn split DATA --folds K`

Splits are by subject and stored once, in ``splits``: a clip is in the split of its subject.
Indexes written before format 2 (a ``split`` per clip, no contract) are still read.

A clip directory only ever appears complete: :class:`ClipWriter` fills a hidden temporary
directory beside it and renames it into place on :meth:`ClipWriter.commit`.
"""

from __future__ import annotations

import json
import operator
import os
import shutil
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facedyn.atomic import clean_temporaries, no_room, write_failed, write_json
from facedyn.errors import ConfigError, DatasetError, OutputError

INDEX = "index.json"
TMP_PREFIX = ".tmp-"
SPLITS = ("train", "val", "test")
#: version of the index.json layout written by :func:`write_index`
FORMAT = 2
#: what a store promises about every crop in it (recorded in index.json; see :meth:`ClipDataset.spec`)
CONTRACT_KEYS = ("size", "mask", "align", "template", "detector")
#: the ``detector`` of a clip whose landmarks came with the source instead of from a detector
GIVEN_LANDMARKS = "given-landmarks"


def ensure_writable_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and check it can be written; OutputError otherwise."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"{path}: cannot write output here ({e.strerror}); choose a writable --out") from None
    return path


@dataclass(frozen=True)
class ClipPart:
    """Frames of one time segment of a clip, from :meth:`ClipWriter.detach`, joined by :meth:`ClipWriter.extend`.

    Attributes:
        raw: the crops, uint8 ``(n, size, size, 3)`` as raw bytes, alone in a temporary directory.
        landmarks: float32 ``(n, 68, 2)`` in crop pixels (NaN where no face).
        valid: bool ``(n,)``.
        timestamps: float64 ``(n,)`` seconds from the start of the source.
    """

    raw: Path
    landmarks: np.ndarray
    valid: np.ndarray
    timestamps: np.ndarray


class ClipWriter:
    """Stream frames of one clip into a temporary directory, then publish it atomically.

    Usage::

        w = ClipWriter(dataset_dir, "S001", size=64)
        for crop, lms, ok, t in ...:
            w.add(crop, lms, ok, t)
        w.commit(labels_df, meta)      # or w.abort()

    A clip can also be written in time segments, each by its own writer (in its own process):
    ``part = ClipWriter(w.tmp, "seg-0", size)`` ... ``part.detach()``, then ``w.extend(part)`` in order.
    """

    def __init__(self, dataset_dir: Path, clip_id: str, size: int) -> None:
        self.dataset_dir = Path(dataset_dir)
        self.clip_id = clip_id
        self.size = size
        self.tmp = self.dataset_dir / f"{TMP_PREFIX}{clip_id}-{uuid.uuid4().hex[:8]}"
        try:
            self.tmp.mkdir(parents=True)
        except OSError as e:
            raise OutputError(f"{self.dataset_dir}: cannot write clips here ({e.strerror})") from None
        self._raw = open(self.tmp / "frames.raw", "wb")  # noqa: SIM115 - closed in commit/abort
        self._landmarks: list[np.ndarray] = []
        self._valid: list[bool] = []
        self._times: list[float] = []
        self._blank = np.zeros((size, size, 3), np.uint8)
        self._nan_lms = np.full((68, 2), np.nan, np.float32)

    @property
    def n(self) -> int:
        return len(self._valid)

    def add(self, crop: np.ndarray | None, landmarks: np.ndarray | None, valid: bool, timestamp: float) -> None:
        """Append one frame: ``crop`` uint8 ``(size, size, 3)`` (None for no face), landmarks ``(68, 2)``."""
        if not valid or crop is None:
            crop, landmarks, valid = self._blank, self._nan_lms, False
        if crop.shape != (self.size, self.size, 3) or crop.dtype != np.uint8:
            raise ValueError(f"crop must be uint8 ({self.size}, {self.size}, 3), got {crop.dtype} {crop.shape}")
        try:
            self._raw.write(np.ascontiguousarray(crop).tobytes())
        except OSError as e:
            raise self._no_room(e, self.tmp / "frames.raw") from None
        self._landmarks.append(np.asarray(landmarks, np.float32).reshape(68, 2))
        self._valid.append(bool(valid))
        self._times.append(float(timestamp))

    def detach(self) -> ClipPart:
        """Close this writer and hand its frames over as a :class:`ClipPart` (for :meth:`extend`)."""
        self._raw.close()
        n = self.n
        return ClipPart(self.tmp / "frames.raw",
                        np.stack(self._landmarks) if n else np.zeros((0, 68, 2), np.float32),
                        np.asarray(self._valid, dtype=bool), np.asarray(self._times, dtype=np.float64))

    def extend(self, part: ClipPart) -> None:
        """Append the frames of ``part`` (a time segment written by another writer) and remove its files."""
        if self.n == 0 and self._raw.tell() == 0:  # the first part: take its file as it is
            self._raw.close()
            os.replace(part.raw, self.tmp / "frames.raw")
            self._raw = open(self.tmp / "frames.raw", "ab")  # noqa: SIM115 - closed in commit/abort
        else:
            try:
                with open(part.raw, "rb") as f:
                    shutil.copyfileobj(f, self._raw, 1 << 24)
            except OSError as e:
                raise self._no_room(e, self.tmp / "frames.raw") from None
        self._landmarks.extend(np.asarray(part.landmarks, np.float32).reshape(-1, 68, 2))
        self._valid.extend(bool(v) for v in part.valid)
        self._times.extend(float(t) for t in part.timestamps)
        shutil.rmtree(part.raw.parent, ignore_errors=True)

    def _no_room(self, e: BaseException, written: Path) -> BaseException:
        """A write that ran out of room (:func:`facedyn.atomic.no_room`) as the one-line error naming the clip; the
        partial clip is thrown away. Any other error is returned as it is."""
        cause = no_room(e, written)
        if cause is None:
            return e
        self.abort()
        return write_failed(self.dataset_dir / self.clip_id, cause)

    def commit(self, labels: pd.DataFrame | None, meta: dict[str, Any]) -> Path:
        """Write the remaining files and rename the clip into place; returns the clip directory."""
        self._raw.close()
        n = self.n
        written = self.tmp / "frames.npy"
        try:
            # frames.npy: the header, then the raw rows copied in chunks (a plain write: running out of room is an
            # error here, where a memory map would die of SIGBUS)
            with open(written, "wb") as f, open(self.tmp / "frames.raw", "rb") as raw:
                np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False,
                                                         "shape": (n, self.size, self.size, 3)})
                shutil.copyfileobj(raw, f, 1 << 24)
            (self.tmp / "frames.raw").unlink()
            written = self.tmp / "landmarks.npy"
            np.save(written, np.stack(self._landmarks) if n else np.zeros((0, 68, 2), np.float32))
            written = self.tmp / "valid.npy"
            np.save(written, np.asarray(self._valid, dtype=bool))
            written = self.tmp / "timestamps.npy"
            np.save(written, np.asarray(self._times, dtype=np.float64))
            if labels is not None:
                written = self.tmp / "labels.csv"
                labels.to_csv(written, index=False, float_format="%.6g")
            meta = {**meta, "clip_id": self.clip_id, "n_frames": n, "size": self.size,
                    "n_valid": int(np.sum(self._valid))}
            written = self.tmp / "meta.json"
            write_json(written, meta)
        except OutputError:
            self.abort()
            raise
        except OSError as e:
            raise self._no_room(e, written) from None
        final = self.dataset_dir / self.clip_id
        if final.exists():
            shutil.rmtree(final)
        os.replace(self.tmp, final)
        return final

    def abort(self) -> None:
        """Throw away the partial clip."""
        if not self._raw.closed:
            self._raw.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def clean_partial(dataset_dir: Path) -> int:
    """Remove what an interrupted ``prepare`` left: the temporary directories of partial clips and the temporary
    files of writes a kill cut short (``index.json``'s); returns how many. Call while holding the store's lock."""
    n = 0
    for p in Path(dataset_dir).glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(p, ignore_errors=True)
        n += 1
    return n + clean_temporaries(dataset_dir)


def is_complete_clip(path: Path) -> bool:
    return (path / "meta.json").is_file() and (path / "frames.npy").is_file() and (path / "valid.npy").is_file()


@dataclass
class Clip:
    """A clip read from the store; arrays are loaded lazily, frames memory-mapped.

    Attributes:
        path: the clip directory.
    """

    path: Path

    @cached_property
    def meta(self) -> dict[str, Any]:
        return json.loads((self.path / "meta.json").read_text())

    @property
    def clip_id(self) -> str:
        return self.path.name

    @property
    def subject(self) -> str:
        return str(self.meta.get("subject", self.clip_id))

    @property
    def fps(self) -> float:
        return float(self.meta["fps"])

    @cached_property
    def frames(self) -> np.ndarray:
        """uint8 ``(N, H, W, 3)``, memory-mapped read-only."""
        return np.load(self.path / "frames.npy", mmap_mode="r")

    @cached_property
    def landmarks(self) -> np.ndarray:
        """float32 ``(N, 68, 2)`` in crop pixels, NaN where no face."""
        return np.load(self.path / "landmarks.npy")

    @cached_property
    def valid(self) -> np.ndarray:
        """bool ``(N,)``."""
        return np.load(self.path / "valid.npy")

    @cached_property
    def timestamps(self) -> np.ndarray:
        p = self.path / "timestamps.npy"
        return np.load(p) if p.exists() else np.arange(len(self.valid)) / self.fps

    @cached_property
    def labels(self) -> pd.DataFrame | None:
        p = self.path / "labels.csv"
        return pd.read_csv(p) if p.exists() else None

    def __len__(self) -> int:
        return len(self.valid)


def read_index(dataset_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The raw ``index.json`` of ``dataset_dir`` as stored, or None when there is none.

    Raises:
        DatasetError: the file exists but is not valid JSON.
    """
    idx = Path(dataset_dir) / INDEX
    if not idx.is_file():
        return None
    try:
        raw = json.loads(idx.read_text())
    except json.JSONDecodeError:
        raise DatasetError(f"{idx}: corrupt index; rerun `facedyn prepare` on this dataset") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("clips", {}), dict):
        raise DatasetError(f"{idx}: not a facedyn index; rerun `facedyn prepare` on this dataset")
    return raw


def contract_from_clips(dataset_dir: str | os.PathLike[str],
                        clip_ids: list[str] | None = None) -> dict[str, Any] | None:
    """The store contract as the clips' ``meta.json`` files tell it (stores without one in the index).

    ``size``, ``mask``, ``align`` and ``template`` come from the first complete clip (``align``
    defaults to ``"similarity"``, the only alignment older versions made; a value a clip does not
    record is None); ``detector`` from the first clip whose landmarks came from a detector (clips
    prepared with given landmarks do not tell). Returns None when there is no complete clip.
    """
    root = Path(dataset_dir)
    ids = clip_ids if clip_ids is not None else sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    contract: dict[str, Any] | None = None
    for cid in ids:
        if not is_complete_clip(root / cid):
            continue
        try:
            meta = json.loads((root / cid / "meta.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if contract is None:
            contract = {"size": meta.get("size"), "mask": meta.get("mask"), "align": meta.get("align", "similarity"),
                        "template": meta.get("template"), "detector": None}
        det = meta.get("detector")
        if det and det != GIVEN_LANDMARKS:
            contract["detector"] = det
            break
    return contract


def normalize_index(raw: dict[str, Any], dataset_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A format-2 view of an index, whichever version wrote it.

    Format 2 (this version) records the store contract (``size``, ``mask``, ``align``,
    ``template``, ``detector``), ``clips`` (id -> subject, n_frames, n_valid, fps), ``subjects``,
    ``splits`` (``{"train": [...], "val": [...], "test": [...]}``, the one source of truth) and
    optional ``folds``. Older indexes (no ``format``) kept a ``split`` per clip; it becomes the
    splits here, and the contract is read from the clips' ``meta.json``.

    Raises:
        DatasetError: a subject listed in two splits, or in two folds.
    """
    root = Path(dataset_dir)
    clips = {cid: {k: v for k, v in dict(info).items() if k != "split"} for cid, info in raw.get("clips", {}).items()}
    for cid, info in clips.items():
        info.setdefault("subject", cid)
    subjects = sorted({str(c["subject"]) for c in clips.values()} | set(raw.get("subjects", [])))
    given = raw.get("splits") or {}
    if not any(given.get(k) for k in SPLITS):  # old stores: per-clip splits
        given = {k: [] for k in SPLITS}
        for info in raw.get("clips", {}).values():
            sp = info.get("split")
            if sp in given and info.get("subject") not in given[sp]:
                given[sp].append(str(info.get("subject")))
    known = set(subjects)
    splits: dict[str, list[str]] = {k: sorted(str(s) for s in given.get(k, []) if str(s) in known) for k in SPLITS}
    seen: dict[str, str] = {}
    for k, subs in splits.items():
        for s in subs:
            if s in seen:
                raise DatasetError(f"{root}: subject {s!r} is in both the {seen[s]} and {k} splits; reassign it with "
                                   f"`facedyn split {root} --val ... --test ...`")
            seen[s] = k
    folds = [sorted(str(s) for s in f) for f in raw.get("folds") or []]
    flat = [s for f in folds for s in f]
    if len(flat) != len(set(flat)):
        dup = next(s for s in flat if flat.count(s) > 1)
        raise DatasetError(f"{root}: subject {dup!r} is in two folds; remake them with "
                           f"`facedyn split {root} --folds K`")
    if "format" in raw:
        contract = {k: raw.get(k) for k in CONTRACT_KEYS}
    else:
        contract = contract_from_clips(root, sorted(clips)) or dict.fromkeys(CONTRACT_KEYS)
    out: dict[str, Any] = {"format": FORMAT, "facedyn_version": raw.get("facedyn_version"), **contract,
                           "clips": dict(sorted(clips.items())), "subjects": subjects, "splits": splits}
    if folds:
        out["folds"] = folds
    return out


def fold_splits(folds: list[list[str]], i: int, subjects: list[str] | None = None) -> dict[str, list[str]]:
    """Train/val/test subjects of cross-validation fold ``i`` of ``k = len(folds)`` folds.

    The rule: test = ``folds[i]``, val = ``folds[(i + 1) % k]``, train = every other subject
    (all of ``subjects`` when given, else the other folds). With ``k = 2`` no fold is left for
    validation: val is empty and train is the other fold.
    """
    k = len(folds)
    test = sorted(folds[i])
    val = sorted(folds[(i + 1) % k]) if k > 2 else []
    held = set(test) | set(val)
    pool = subjects if subjects is not None else [s for f in folds for s in f]
    return {"train": sorted(s for s in pool if s not in held), "val": val, "test": test}


class ClipDataset:
    """A prepared dataset directory (``index.json`` + clip directories).

    Splits are by subject: a clip belongs to the split of its subject. ``index["splits"]`` holds the
    subjects of ``train``, ``val`` and ``test``; with ``fold=i`` they come instead from the
    person-level folds made by ``facedyn split DATA --folds K`` (:func:`facedyn.data.splits.make_folds`):
    test = ``folds[i]``, val = ``folds[(i + 1) % K]``, train = every other subject (with ``K = 2``,
    val is empty and train is the other fold).

    Attributes:
        path: the dataset directory.
        index: ``index.json`` as stored (older versions' layout included); read the normalised
            views (:attr:`splits`, :attr:`subjects`, :meth:`spec`, ...) rather than this.
        fold: the cross-validation fold in use, or None for the stored splits.

    Raises:
        DatasetError: no such directory, no or a corrupt ``index.json``, a subject in two splits,
            ``fold`` given for a store without folds, or folds that no longer cover the subjects.
        ConfigError: ``fold`` out of range.
    """

    def __init__(self, path: str | os.PathLike[str], fold: int | None = None) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DatasetError(
                f"{self.path}: no such dataset; create it with `facedyn prepare INPUT --out {self.path}`"
            )
        raw = read_index(self.path)
        if raw is None:
            raise DatasetError(
                f"{self.path}: not a prepared dataset (no {INDEX}); run `facedyn prepare INPUT --out {self.path}`"
            )
        self.index: dict[str, Any] = raw
        self._norm = normalize_index(raw, self.path)
        self.fold = fold
        if fold is None:
            self._splits: dict[str, list[str]] = self._norm["splits"]
        else:
            folds = self.folds
            if not folds:
                raise DatasetError(f"{self.path}: has no cross-validation folds; make them with "
                                   f"`facedyn split {self.path} --folds K`")
            try:
                fold = operator.index(fold)
            except TypeError:
                raise ConfigError(f"fold must be an integer, got {fold!r}") from None
            self.fold = fold
            if not 0 <= fold < len(folds):
                raise ConfigError(f"fold {fold} out of range: {self.path} has {len(folds)} folds "
                                  f"(0..{len(folds) - 1}); pick one of those or remake them with "
                                  f"`facedyn split {self.path} --folds K`")
            missing = sorted(set(self.subjects) - {s for f in folds for s in f})
            if missing:
                raise DatasetError(f"{self.path}: no fold holds {', '.join(missing)} (added after the folds were "
                                   f"made); remake them with `facedyn split {self.path} --folds {len(folds)}`")
            self._splits = fold_splits(folds, fold, self.subjects)
        self._split_of = {s: k for k, subs in self._splits.items() for s in subs}
        self._clips: dict[str, Clip] = {}

    @property
    def clip_ids(self) -> list[str]:
        return list(self._norm["clips"].keys())

    def clip(self, clip_id: str) -> Clip:
        if clip_id not in self._clips:
            p = self.path / clip_id
            if not is_complete_clip(p):
                raise DatasetError(f"{p}: clip listed in {INDEX} is missing; rerun `facedyn prepare`")
            self._clips[clip_id] = Clip(p)
        return self._clips[clip_id]

    def clips(self, split: str | None = None, subjects: list[str] | None = None) -> list[Clip]:
        """Clips of a split (``train``/``val``/``test``, through their subject) and/or a subject list.

        All clips when neither is given; the clips of subjects in no split only then.

        Raises:
            ConfigError: ``split`` is not one of train, val, test.
        """
        if split is not None and split not in SPLITS:
            raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        keep = set(subjects) if subjects is not None else None
        out = []
        for cid, info in self._norm["clips"].items():
            subj = str(info["subject"])
            if split is not None and self._split_of.get(subj) != split:
                continue
            if keep is not None and subj not in keep:
                continue
            out.append(self.clip(cid))
        return out

    @property
    def subjects(self) -> list[str]:
        """Every subject of the store, sorted."""
        return list(self._norm["subjects"])

    @property
    def splits(self) -> dict[str, list[str]]:
        """Subjects of ``train``, ``val`` and ``test`` in use (the fold's when ``fold`` is set)."""
        return {k: list(v) for k, v in self._splits.items()}

    def split_of(self, subject: str) -> str:
        """``"train"``, ``"val"`` or ``"test"``: the split ``subject`` is in.

        Raises:
            DatasetError: the subject is not in the store, or is in no split.
        """
        if subject not in self._split_of:
            if subject not in self._norm["subjects"]:
                raise DatasetError(f"{self.path}: no subject {subject!r}; known: {', '.join(self.subjects)}")
            raise DatasetError(f"{self.path}: subject {subject!r} is in no split; place it with "
                               f"`facedyn split {self.path} --val ... --test ...`")
        return self._split_of[subject]

    @property
    def folds(self) -> list[list[str]]:
        """Person-level cross-validation folds (lists of subjects); empty when none were made."""
        return [list(f) for f in self._norm.get("folds", [])]

    @property
    def size(self) -> int | None:
        """Side of the square crops in pixels (None only for an old store without clips)."""
        v = self._norm["size"]
        return None if v is None else int(v)

    @property
    def mask(self) -> bool | None:
        """Whether pixels outside the landmarks' convex hull are zeroed (None: an old store that did not say)."""
        v = self._norm["mask"]
        return None if v is None else bool(v)

    @property
    def align(self) -> str | None:
        """How faces were aligned: ``"similarity"`` (onto the 68-point template)."""
        return self._norm["align"]

    @property
    def template(self) -> str | None:
        """Identifier of the 68-point template the crops were aligned to (None: an old store)."""
        return self._norm["template"]

    @property
    def detector(self) -> str | None:
        """The landmark detector prepare used (None: an old store whose clips all had given landmarks)."""
        return self._norm["detector"]

    def spec(self) -> dict[str, Any]:
        """What a training run records about its data: ``size``, ``mask``, ``align``, ``template``, ``detector``."""
        return {"size": self.size, "mask": self.mask, "align": self.align, "template": self.template,
                "detector": self.detector}


def store_contract(dataset_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The contract (``size``, ``mask``, ``align``, ``template``, ``detector``) of an existing store.

    From ``index.json`` (old indexes: from the clips), else from complete clips an interrupted
    first ``prepare`` left; None when ``dataset_dir`` holds no store. Values a store does not
    record are None.
    """
    root = Path(dataset_dir)
    if not root.is_dir():
        return None
    try:
        raw = read_index(root)
    except DatasetError:
        raw = None
    if raw is not None and raw.get("clips"):
        norm = normalize_index({k: v for k, v in raw.items() if k not in ("splits", "folds")}, root)
        return {k: norm[k] for k in CONTRACT_KEYS}
    return contract_from_clips(root)


def assign_splits(subjects: list[str], given: dict[str, str], seed: int = 0,
                  fractions: tuple[float, float] = (0.2, 0.2)) -> dict[str, str]:
    """Map every subject to ``train``/``val``/``test``, by subject (never by frame).

    Subjects with a split from the dataset keep it; the others are shuffled with ``seed`` and a
    ``fractions = (val, test)`` share goes to val and test (each at least one subject when three
    or more subjects are unassigned; with one or two, all go to train).
    """
    out = {s: given[s] for s in subjects if s in given}
    rest = sorted(s for s in subjects if s not in given)
    rng = np.random.default_rng(seed)
    rest = [rest[i] for i in rng.permutation(len(rest))]
    n = len(rest)
    n_val = n_test = 0
    if n >= 3:
        n_val = max(1, round(fractions[0] * n))
        n_test = max(1, round(fractions[1] * n))
        while n - n_val - n_test < 1:
            n_val -= 1 if n_val >= n_test else 0
            n_test -= 1 if n_test > n_val else 0
    for i, s in enumerate(rest):
        out[s] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return out


def write_index(
    dataset_dir: str | os.PathLike[str],
    clip_info: dict[str, dict[str, Any]],
    version: str,
    splits: dict[str, list[str]] | None = None,
    contract: dict[str, Any] | None = None,
    folds: list[list[str]] | None = None,
) -> dict[str, Any]:
    """Write a format-2 ``index.json`` atomically; returns what was written.

    Args:
        clip_info: clip id -> ``subject``, ``n_frames``, ``n_valid``, ``fps``, ... A ``split`` key
            there (the older layout) is taken as that subject's split when ``splits`` is None, and
            not stored per clip.
        version: the facedyn version that wrote the store.
        splits: ``{"train": [...], "val": [...], "test": [...]}`` subjects; subjects in none go to train.
        contract: ``size``, ``mask``, ``align``, ``template``, ``detector``; read from the clips'
            ``meta.json`` when None.
        folds: person-level cross-validation folds to keep, if any.
    """
    root = Path(dataset_dir)
    subjects = sorted({str(c["subject"]) for c in clip_info.values()})
    if splits is None:
        splits = {k: [] for k in SPLITS}
        for c in clip_info.values():
            sp = c.get("split")
            if sp in splits and c["subject"] not in splits[sp]:
                splits[sp].append(str(c["subject"]))
    known = set(subjects)
    out_splits = {k: sorted(s for s in splits.get(k, []) if s in known) for k in SPLITS}
    placed = {s for v in out_splits.values() for s in v}
    out_splits["train"] = sorted(set(out_splits["train"]) | (known - placed))
    if contract is None:
        contract = contract_from_clips(root, sorted(clip_info)) or {}
    index: dict[str, Any] = {
        "format": FORMAT,
        "facedyn_version": version,
        **{k: contract.get(k) for k in CONTRACT_KEYS},
        "clips": {cid: {k: v for k, v in info.items() if k != "split"} for cid, info in sorted(clip_info.items())},
        "subjects": subjects,
        "splits": out_splits,
    }
    if folds:
        index["folds"] = [sorted(f) for f in folds]
    write_json(root / INDEX, index)
    return index
