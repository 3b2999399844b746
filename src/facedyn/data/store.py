"""The clip store: aligned face clips on disk, one directory per clip.

Layout of a dataset directory::

    DATASET/
      index.json              clips, subjects, splits
      <clip_id>/
        frames.npy            uint8 (N, H, W, 3) RGB aligned crops (memory-mapped on read)
        landmarks.npy         float32 (N, 68, 2) landmarks in crop pixels (NaN where no face)
        valid.npy             bool (N,) a face was found on the frame
        timestamps.npy        float64 (N,) seconds from the start of the source
        labels.csv            ``frame`` + one column per label, NaN where unlabelled (optional)
        meta.json             source, fps, size, detector, subject, split, facedyn version

A clip directory only ever appears complete: :class:`ClipWriter` fills a hidden temporary
directory beside it and renames it into place on :meth:`ClipWriter.commit`.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facedyn.atomic import atomic_path
from facedyn.errors import DatasetError, OutputError

INDEX = "index.json"
TMP_PREFIX = ".tmp-"
SPLITS = ("train", "val", "test")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_save_npy(path: Path, arr: np.ndarray) -> None:
    """``np.save`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


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


class ClipWriter:
    """Stream frames of one clip into a temporary directory, then publish it atomically.

    Usage::

        w = ClipWriter(dataset_dir, "S001", size=64)
        for crop, lms, ok, t in ...:
            w.add(crop, lms, ok, t)
        w.commit(labels_df, meta)      # or w.abort()
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
        self._raw.write(np.ascontiguousarray(crop).tobytes())
        self._landmarks.append(np.asarray(landmarks, np.float32).reshape(68, 2))
        self._valid.append(bool(valid))
        self._times.append(float(timestamp))

    def commit(self, labels: pd.DataFrame | None, meta: dict[str, Any]) -> Path:
        """Write the remaining files and rename the clip into place; returns the clip directory."""
        self._raw.close()
        n = self.n
        raw = np.memmap(self.tmp / "frames.raw", dtype=np.uint8, mode="r", shape=(n, self.size, self.size, 3)) \
            if n else np.zeros((0, self.size, self.size, 3), np.uint8)
        out = np.lib.format.open_memmap(self.tmp / "frames.npy", mode="w+", dtype=np.uint8,
                                        shape=(n, self.size, self.size, 3))
        chunk = 1024
        for i in range(0, n, chunk):
            out[i:i + chunk] = raw[i:i + chunk]
        out.flush()
        del out, raw
        (self.tmp / "frames.raw").unlink()
        np.save(self.tmp / "landmarks.npy", np.stack(self._landmarks) if n else np.zeros((0, 68, 2), np.float32))
        np.save(self.tmp / "valid.npy", np.asarray(self._valid, dtype=bool))
        np.save(self.tmp / "timestamps.npy", np.asarray(self._times, dtype=np.float64))
        if labels is not None:
            labels.to_csv(self.tmp / "labels.csv", index=False, float_format="%.6g")
        meta = {**meta, "clip_id": self.clip_id, "n_frames": n, "size": self.size,
                "n_valid": int(np.sum(self._valid))}
        (self.tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
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
    """Remove temporary directories left by an interrupted ``prepare``; returns how many."""
    n = 0
    for p in Path(dataset_dir).glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(p, ignore_errors=True)
        n += 1
    return n


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


class ClipDataset:
    """A prepared dataset directory (``index.json`` + clip directories)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DatasetError(
                f"{self.path}: no such dataset; create it with `facedyn prepare INPUT --out {self.path}`"
            )
        idx = self.path / INDEX
        if not idx.is_file():
            raise DatasetError(
                f"{self.path}: not a prepared dataset (no {INDEX}); run `facedyn prepare INPUT --out {self.path}`"
            )
        try:
            self.index: dict[str, Any] = json.loads(idx.read_text())
        except json.JSONDecodeError:
            raise DatasetError(f"{idx}: corrupt index; rerun `facedyn prepare` on this dataset") from None
        self._clips: dict[str, Clip] = {}

    @property
    def clip_ids(self) -> list[str]:
        return list(self.index["clips"].keys())

    def clip(self, clip_id: str) -> Clip:
        if clip_id not in self._clips:
            p = self.path / clip_id
            if not is_complete_clip(p):
                raise DatasetError(f"{p}: clip listed in {INDEX} is missing; rerun `facedyn prepare`")
            self._clips[clip_id] = Clip(p)
        return self._clips[clip_id]

    def clips(self, split: str | None = None, subjects: list[str] | None = None) -> list[Clip]:
        """Clips of a split (``train``/``val``/``test``) and/or a subject list; all when neither."""
        out = []
        for cid, info in self.index["clips"].items():
            if split is not None and info.get("split") != split:
                continue
            if subjects is not None and info.get("subject") not in subjects:
                continue
            out.append(self.clip(cid))
        return out

    @property
    def subjects(self) -> list[str]:
        return list(self.index.get("subjects", []))

    @property
    def splits(self) -> dict[str, list[str]]:
        return dict(self.index.get("splits", {}))


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


def write_index(dataset_dir: Path, clip_info: dict[str, dict[str, Any]], version: str) -> dict[str, Any]:
    """Write ``index.json`` from per-clip info (``subject``, ``split``, ``n_frames``, ``n_valid``, ...)."""
    subjects = sorted({c["subject"] for c in clip_info.values()})
    splits: dict[str, list[str]] = {k: [] for k in SPLITS}
    for s in subjects:
        sp = next((c.get("split") for c in clip_info.values() if c["subject"] == s), "train") or "train"
        splits.setdefault(sp, []).append(s)
    index = {"facedyn_version": version, "clips": dict(sorted(clip_info.items())), "subjects": subjects,
             "splits": splits}
    atomic_write_json(Path(dataset_dir) / INDEX, index)
    return index
