"""Person-level cross-validation of the DR's frame ranking (``facedyn cv rank``).

One DR per fold of the store's person-level folds (fold ``k`` tested, ``k + 1`` for checkpoint
selection, the rest trained on: the platform's fold rule), each evaluated on its unseen people against
the still-image floors and the true Seq DI; then one table: per fold and pooled over all people, with a
95 % bootstrap interval over people for DR − centred. Resumable: finished folds are kept (their runs
resume as no-ops, their evaluations are cached in ``FOLD/ranking.csv``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facedyn import runs
from facedyn.atomic import write_text
from facedyn.data.store import ClipDataset
from facedyn.errors import ConfigError
from facedyn.reports.tables import markdown_table

FLOORS = ("centred", "identity", "random", "seq-di")


def ensure_folds(data: str | Path, k: int, seed: int = 0) -> list[list[str]]:
    """The store's person-level folds; written (``k`` folds, ``seed``) when the store has none."""
    from facedyn.data.splits import make_folds

    store = ClipDataset(data)
    if store.folds:
        if len(store.folds) != k:
            raise ConfigError(f"{data}: holds {len(store.folds)} folds, not {k}; use --folds {len(store.folds)} or "
                              f"remake them with `facedyn split {data} --folds {k}`")
        return store.folds
    return make_folds(data, k, seed=seed)


def pooled_difference(per_subject: pd.DataFrame, a: str, b: str, n_boot: int = 2000, seed: int = 0
                      ) -> tuple[float, float, float]:
    """Pooled accuracy of method ``a`` minus ``b`` (points) over people, with a 95 % bootstrap interval.

    ``per_subject``: rows ``method, subject, acc, pairs`` (acc in %). People are resampled with
    replacement; each replicate pools the pairs of its people. Returns (difference, low, high).
    """
    def table(m: str) -> pd.DataFrame:
        t = per_subject[per_subject["method"] == m].set_index("subject")
        return t.assign(ok=t["acc"] / 100 * t["pairs"])

    ta, tb = table(a), table(b)
    people = sorted(set(ta.index) & set(tb.index))
    if not people:
        raise ConfigError(f"no person has results for both {a} and {b}")
    ok_a, n_a = ta.loc[people, "ok"].to_numpy(), ta.loc[people, "pairs"].to_numpy()
    ok_b, n_b = tb.loc[people, "ok"].to_numpy(), tb.loc[people, "pairs"].to_numpy()
    diff = 100 * (ok_a.sum() / n_a.sum() - ok_b.sum() / n_b.sum())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(people), size=(n_boot, len(people)))
    reps = 100 * (ok_a[idx].sum(1) / n_a[idx].sum(1) - ok_b[idx].sum(1) / n_b[idx].sum(1))
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return float(diff), float(lo), float(hi)


def _pool(per_subject: pd.DataFrame) -> pd.DataFrame:
    """Pooled accuracy per method from per-person rows."""
    t = per_subject.assign(ok=per_subject["acc"] / 100 * per_subject["pairs"])
    g = t.groupby("method", sort=False)[["ok", "pairs"]].sum()
    return pd.DataFrame({"method": g.index, "acc": 100 * g["ok"] / g["pairs"], "pairs": g["pairs"]})


def cv_rank(
    data: str | Path,
    out: str | Path,
    folds: int,
    T: int,
    S: int,
    preset: str | None = None,
    config_file: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    runtime: Any = None,
    methods: tuple[str, ...] = FLOORS,
    seed: int = 0,
    n_boot: int = 2000,
    max_windows: int | None = None,
    progress: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train and evaluate one DR per person-level fold; write ``cv.csv``, ``cv.md``, ``per_subject.csv``.

    Returns ``{"table": DataFrame (fold, method, acc, ...), "difference": (DR − centred, low, high),
    "markdown": str, "files": [...]}``.
    """
    from facedyn.api import load
    from facedyn.eval.ranking import evaluate_ranking
    from facedyn.train.loop import Runtime
    from facedyn.train.runner import configure, train

    rt = runtime or Runtime()
    rt.resume = True  # every fold continues where it stopped
    out = Path(out)
    fold_lists = ensure_folds(data, folds, seed)
    per_subject, per_fold = [], []
    for k in range(len(fold_lists)):
        run = out / f"fold{k}"
        cfg = configure("dr", preset, config_file, {**(overrides or {}), "T": T, "S": S, "fold": k},
                        resume_from=run)
        cb = (lambda p, k=k: progress(f"fold {k}", p)) if progress else None
        train("dr", data, run, cfg, rt, cb)
        cache = run / "ranking.csv"
        ckpt = runs.checkpoint_path(run, "best")
        if cache.is_file() and cache.stat().st_mtime >= ckpt.stat().st_mtime:
            res = pd.read_csv(cache)
        else:
            res = evaluate_ranking(data, T, S, methods=methods, loaded=[(run, load(run, device=rt.device))],
                                   split="test", fold=k, per_subject=True, max_windows=max_windows, seed=seed,
                                   device=rt.device if rt.device != "auto" else "cpu")
            write_text(cache, res.to_csv(index=False))
        res = res.assign(fold=k)
        per_fold.append(res[res["subject"] == "all"])
        per_subject.append(res[res["subject"] != "all"])
    subj = pd.concat(per_subject, ignore_index=True)
    pooled = _pool(subj).assign(fold="pooled", T=T, S=S)
    table = pd.concat([pd.concat(per_fold, ignore_index=True), pooled], ignore_index=True)
    table = table[["fold", "method", "T", "S", "acc", "acc_before", "acc_after", "pairs"]]
    diff = pooled_difference(subj, "dr", "centred", n_boot=n_boot, seed=seed)
    wide = table.pivot_table(index="fold", columns="method", values="acc", sort=False).reset_index()
    wide["fold"] = wide["fold"].astype(str)
    md = markdown_table(wide) + (f"\nPooled over {subj['subject'].nunique()} people: DR − centred = {diff[0]:+.2f} "
                                 f"points (95 % bootstrap interval over people {diff[1]:+.2f} to {diff[2]:+.2f}).\n")
    if "seq-di" in set(subj["method"]):
        vs = pooled_difference(subj, "dr", "seq-di", n_boot=n_boot, seed=seed)
        md += (f"DR − true Seq DI (which sees the whole window) = {vs[0]:+.2f} points (95 % interval {vs[1]:+.2f} "
               f"to {vs[2]:+.2f}).\n")
    files = [out / "cv.csv", out / "cv.md", out / "per_subject.csv"]
    write_text(files[0], table.to_csv(index=False, float_format="%.3f"))
    write_text(files[1], md)
    write_text(files[2], subj.to_csv(index=False, float_format="%.3f"))
    return {"table": table, "difference": diff, "markdown": md, "files": files}
