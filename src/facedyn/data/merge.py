"""``facedyn merge``: join store parts (``facedyn prepare --shard K/N``) into one clip store.

A job array (SLURM, any batch system) runs ``facedyn prepare INPUTS --shard K/N --out part-K`` for
K = 1..N; ``facedyn merge part-1 ... part-N --out STORE`` then makes the store one ``prepare INPUTS
--out STORE`` run would make (with the same ``--workers``), file for file: the clip directories are the
parts' own, and ``index.json`` is written from their indexes as that run writes it (its splits were
drawn over all the inputs by every shard alike). Parts made by different facedyn versions get this
version in ``index.json``.

The parts must share the store contract (size, mask, align, template, detector) and hold disjoint
clips, and a subject must be in the same split in every part; otherwise nothing is written. The store
is built in a temporary directory beside ``out`` (``.tmp-merge-<name>``) and renamed into place, so it
appears complete or not at all; a second merge into the same ``out`` while one runs is refused, and a
rerun after a merge was killed takes over and replaces what it left. Clip files are hard-linked where
the parts are on the same file system (facedyn replaces its files, never rewrites them in place) and
copied elsewhere; the parts are left as they are.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from facedyn import __version__, lock
from facedyn.data.store import (
    CONTRACT_KEYS,
    INDEX,
    SPLITS,
    TMP_PREFIX,
    is_complete_clip,
    normalize_index,
    read_index,
    write_index,
)
from facedyn.errors import DatasetError, OutputError

__all__ = ["merge"]


def _read_part(path: Path) -> dict[str, Any]:
    """The normalised index of one part; DatasetError when ``path`` is not a complete store."""
    if not path.is_dir():
        raise DatasetError(f"{path}: no such store part; give the --out folders of `facedyn prepare --shard K/N`")
    raw = read_index(path)
    if raw is None:
        raise DatasetError(f"{path}: not a prepared store (no {INDEX}); finish its `facedyn prepare --shard K/N` first")
    index = normalize_index(raw, path)
    missing = [cid for cid in index["clips"] if not is_complete_clip(path / cid)]
    if missing:
        raise DatasetError(f"{path}: clip {missing[0]!r} listed in {INDEX} is missing; rerun its `facedyn prepare`")
    return index


def _check_contracts(parts: Sequence[Path], indexes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The parts' common contract; DatasetError naming the first part that differs from the first."""
    first = {k: indexes[0][k] for k in CONTRACT_KEYS}
    for path, index in zip(parts[1:], indexes[1:], strict=True):
        diff = [k for k in CONTRACT_KEYS if index[k] != first[k]]
        if diff:
            theirs = ", ".join(f"{k}={index[k]}" for k in diff)
            ours = ", ".join(f"{k}={first[k]}" for k in diff)
            raise DatasetError(f"{path}: prepared with {theirs}, but {parts[0]} with {ours}; merge only the parts of "
                               "one sharded prepare (same --size, --mask, --align, --detector, --track)")
    return first


def _joined(parts: Sequence[Path], indexes: Sequence[dict[str, Any]]
            ) -> tuple[dict[str, dict[str, Any]], dict[str, Path], dict[str, str]]:
    """Clip infos, the part each clip comes from, and each subject's split, over all parts.

    Raises:
        DatasetError: a clip in two parts, or a subject in different splits in two parts.
    """
    clips: dict[str, dict[str, Any]] = {}
    origin: dict[str, Path] = {}
    split_of: dict[str, str] = {}
    split_from: dict[str, Path] = {}
    for path, index in zip(parts, indexes, strict=True):
        for cid, info in index["clips"].items():
            if cid in clips:
                raise DatasetError(f"clip {cid!r} is in both {origin[cid]} and {path}; give each shard's part once "
                                   "(parts of one `prepare --shard K/N` never share clips)")
            clips[cid], origin[cid] = info, path
        for split, subjects in index["splits"].items():
            for s in subjects:
                if split_of.setdefault(s, split) != split:
                    raise DatasetError(f"subject {s!r} is in the {split_of[s]} split in {split_from[s]} but in {split} "
                                       f"in {path}; the parts come from different prepares (or a `facedyn split`)")
                split_from.setdefault(s, path)
    return clips, origin, split_of


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"{out}: exists and is not empty; merge into a new --out")


def merge(parts: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str]) -> dict[str, Any]:
    """Join the store parts ``parts`` into a new store ``out``; returns the ``index.json`` written.

    Args:
        parts: store directories made by ``facedyn prepare --shard K/N`` (any order; one part alone
            is allowed and copies it).
        out: the new store; must not exist, or be an empty folder.

    Raises:
        DatasetError: a part is missing or incomplete, the parts' contracts differ, a clip is in two
            parts, or a subject is in two splits (nothing is written).
        OutputError: ``out`` exists and is not empty, or cannot be written.
    """
    paths = [Path(p) for p in parts]
    if not paths:
        raise DatasetError("give the store parts to merge (the --out folders of `facedyn prepare --shard K/N`)")
    out = Path(out)
    _check_out(out)
    indexes = [_read_part(p) for p in paths]
    contract = _check_contracts(paths, indexes)
    clips, origin, split_of = _joined(paths, indexes)
    if any(index.get("folds") for index in indexes):
        warnings.warn("the parts' cross-validation folds are not merged; make them for the whole store with "
                      f"`facedyn split {out} --folds K`", stacklevel=2)
    versions = {index["facedyn_version"] for index in indexes}
    version = versions.pop() if len(versions) == 1 else __version__
    tmp = out.parent / f"{TMP_PREFIX}merge-{out.name}"
    # one merge into ``out`` at a time; what a killed one left in ``tmp`` is taken over and thrown away
    with lock.hold(tmp, "merge"):
        try:
            for p in tmp.iterdir():
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p)
                elif p.name != lock.LOCK_FILE:
                    p.unlink()
            for cid in sorted(clips):
                shutil.copytree(origin[cid] / cid, tmp / cid, copy_function=_link_or_copy)
            subjects = {str(c["subject"]) for c in clips.values()}
            splits = {k: sorted(s for s in subjects if split_of.get(s, "train") == k) for k in SPLITS}
            index = write_index(tmp, clips, version, splits=splits, contract=contract)
            _check_out(out)
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            raise OutputError(f"{out}: cannot write the merged store ({e.strerror})") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        lock.lock_path(out).unlink(missing_ok=True)  # the lock file came along; the lock is still held
    return index
