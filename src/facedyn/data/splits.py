"""Changing a store's splits without hand edits: named val/test subjects, or person-level k folds.

Splits are by subject, never by frame, and live in one place: ``index.json``'s ``splits``
(``{"train": [...], "val": [...], "test": [...]}``). Folds (``index.json``'s ``folds``) are a
separate, optional partition of the subjects for cross-validation; ``ClipDataset(path, fold=i)``
turns fold ``i`` into train/val/test (see :func:`fold_splits`). Both are written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from facedyn.atomic import write_json
from facedyn.data.store import INDEX, ClipDataset, fold_splits, normalize_index
from facedyn.errors import ConfigError, DatasetError

__all__ = ["fold_splits", "make_folds", "set_splits"]


def _names(names: Iterable[str] | None) -> list[str]:
    """Distinct, stripped, non-empty names in their given order."""
    out: list[str] = []
    for n in names or []:
        n = str(n).strip()
        if n and n not in out:
            out.append(n)
    return out


def _checked_folds(ds: ClipDataset, k: int) -> None:
    n = len(ds.subjects)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 2 <= k <= n:
        if n < 2:
            raise ConfigError(f"--folds needs at least 2 subjects; {ds.path} has {n}")
        raise ConfigError(f"--folds must be between 2 and the number of subjects ({n}) of {ds.path}, got {k}")


def _load(dataset_dir: str | os.PathLike[str]) -> tuple[ClipDataset, dict[str, Any]]:
    ds = ClipDataset(dataset_dir)
    return ds, normalize_index(ds.index, ds.path)


def set_splits(
    dataset_dir: str | os.PathLike[str],
    val: list[str] | None = None,
    test: list[str] | None = None,
) -> dict[str, list[str]]:
    """Put the named subjects in val and test and every other subject in train; write ``index.json``.

    Args:
        dataset_dir: a prepared dataset directory.
        val: subjects for validation (none when None or empty).
        test: subjects for testing (none when None or empty).
    Returns:
        The new splits, ``{"train": [...], "val": [...], "test": [...]}`` (each sorted).
    Raises:
        DatasetError: a name is not a subject of the store (the message lists the known ones), or
            the store cannot be read.
        ConfigError: the same subject named for both val and test.
    """
    ds, index = _load(dataset_dir)
    index["splits"] = splits = _planned_splits(ds, val, test)
    write_json(ds.path / INDEX, index)
    return splits


def check_request(dataset_dir: str | os.PathLike[str], val: list[str] | None = None, test: list[str] | None = None,
                  folds: int | None = None) -> None:
    """Raise what :func:`set_splits` / :func:`make_folds` would raise for these arguments, writing nothing (so a
    command can refuse before slower work, such as the identity check, starts)."""
    ds, _ = _load(dataset_dir)
    if val is not None or test is not None:
        _planned_splits(ds, val, test)
    if folds is not None:
        _checked_folds(ds, folds)


def _planned_splits(ds: ClipDataset, val: list[str] | None, test: list[str] | None) -> dict[str, list[str]]:
    v, t = _names(val), _names(test)
    known = ds.subjects
    unknown = [s for s in v + t if s not in known]
    if unknown:
        raise DatasetError(f"{ds.path}: no subject {', '.join(repr(s) for s in unknown)}; "
                           f"known subjects: {', '.join(known)}")
    both = [s for s in v if s in t]
    if both:
        raise ConfigError(f"subject {', '.join(repr(s) for s in both)} named for both val and test; "
                          "a subject belongs to one split")
    held = set(v) | set(t)
    return {"train": sorted(s for s in known if s not in held), "val": sorted(v), "test": sorted(t)}


def make_folds(dataset_dir: str | os.PathLike[str], k: int, seed: int = 0) -> list[list[str]]:
    """Partition the subjects into ``k`` person-level folds and store them in ``index.json``.

    The subjects (sorted) are shuffled with ``seed`` and dealt round-robin, so fold sizes differ by
    at most one and every subject is in exactly one fold. The stored splits are left as they are;
    ``ClipDataset(path, fold=i)`` uses test = ``folds[i]``, val = ``folds[(i + 1) % k]``, train =
    the rest (with ``k = 2``: no val).

    Args:
        dataset_dir: a prepared dataset directory.
        k: number of folds, 2 .. number of subjects.
        seed: seed of the shuffle (the same seed and subjects give the same folds).
    Returns:
        ``k`` lists of subjects (each sorted).
    Raises:
        ConfigError: ``k`` outside 2 .. number of subjects.
        DatasetError: the store cannot be read.
    """
    ds, index = _load(dataset_dir)
    _checked_folds(ds, k)
    subjects = sorted(ds.subjects)
    n = len(subjects)
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [subjects[i] for i in order]
    folds = [sorted(shuffled[j::k]) for j in range(int(k))]
    index["folds"] = folds
    write_json(ds.path / INDEX, index)
    return folds

