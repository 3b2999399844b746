"""Learning curves: a run's held-out metric at each checkpoint it kept (``--keep-steps``), beside its baselines.

For a DR-family run (:func:`ranking_curve`): the frame-ranking accuracy (dr-paper §4.3) on people it never
trained or validated on, at ``init`` (step 0), every ``step<N>`` checkpoint and the last weights, with the
training-free baselines of the same windows as lines (the centred still image, the true sequential DI). This
tells a budget limit (the curve still rises at its last point) from a recipe limit (it has flattened below the
baselines). ``groups`` adds the accuracy over named groups of people (e.g. emoting vs talking footage).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facedyn import runs
from facedyn.atomic import write_text
from facedyn.errors import CheckpointError, ConfigError
from facedyn.eval.ranking import evaluate_ranking, load_ranking_models, window_setting

#: Baselines drawn as lines on a ranking curve.
CURVE_BASELINES = ("centred", "seq-di")


def _pooled(df: pd.DataFrame, method: str, subjects: Sequence[str] | None = None) -> float:
    """Accuracy (%) of ``method`` over all pairs of ``subjects`` (all people when None), from per-person rows."""
    rows = df[(df["method"] == method) & (df["subject"] != "all")]
    if subjects is not None:
        rows = rows[rows["subject"].isin(list(subjects))]
    n = rows["pairs"].to_numpy(np.float64)
    if not n.sum():
        return float("nan")
    return float((rows["acc"].to_numpy(np.float64) * n).sum() / n.sum())


def ranking_curve(run: str | Path, data: str | Path, split: str = "test", max_windows: int | None = 2000,
                  seed: int = 0, device: str = "cpu", groups: Mapping[str, Sequence[str]] | None = None,
                  baselines: Sequence[str] = CURVE_BASELINES,
                  progress: Callable[[str], None] | None = None) -> pd.DataFrame:
    """One row per checkpoint (``init`` = step 0, each kept ``step<N>``, ``last`` unless it is a kept step, ``best``).

    A run trained on a person-level fold (``--fold K``, e.g. a ``cv rank`` fold) is scored on that fold's split.

    Columns: ``weights``, ``step``, ``acc`` (%, pooled over the split's people), ``acc_<group>`` per group,
    and per baseline ``<baseline>`` (the same on every row: it is not trained) and ``<baseline>_<group>``.
    The same windows (``max_windows`` drawn with ``seed``) score every checkpoint and baseline.
    """
    say = progress or (lambda s: None)
    steps = runs.kept_steps(run)
    if not steps:
        raise CheckpointError(f"{run}: kept no step checkpoints; train it with --keep-steps log")
    model = load_ranking_models([run], device)[0][1]
    setting = window_setting(model)
    if setting is None:
        raise ConfigError(f"{run}: a {model.name!r} run has no window (T, S); ranking curves need a DR-family run")
    T, S = setting
    sp = None if split == "all" else split
    fold = getattr(model.cfg, "fold", None)  # a cv fold's run: its split is the store's fold, not the store's own
    common = {"split": sp, "max_windows": max_windows, "seed": seed, "device": device, "per_subject": True,
              "fold": fold}
    base = evaluate_ranking(data, T, S, methods=tuple(baselines), **common)
    groups = dict(groups or {})
    fixed: dict[str, float] = {}
    for b in baselines:
        fixed[b] = _pooled(base, b)
        for g, people in groups.items():
            fixed[f"{b}_{g}"] = _pooled(base, b, people)
    rows = []
    for name in ["init", *(f"step{s}" for s in steps), "last", "best"]:
        try:
            if name in ("last", "best"):
                step = runs.checkpoint_step(run, name) or 0  # from the file's metadata, before loading it
                if name == "last" and step in steps:  # the last weights are a kept step's: already a row
                    continue
            else:
                step = 0 if name == "init" else int(name[4:])
            loaded = load_ranking_models([run], device, weights=name)
        except CheckpointError:
            continue
        df = evaluate_ranking(data, T, S, methods=(), loaded=loaded, **common)
        label = df.loc[df["subject"] == "all", "method"].iloc[0]
        row: dict[str, Any] = {"weights": name, "step": step, "acc": _pooled(df, label)}
        for g, people in groups.items():
            row[f"acc_{g}"] = _pooled(df, label, people)
        rows.append({**row, **fixed})
        say(f"{name}: {row['acc']:.2f} %")
    return pd.DataFrame(rows)


def write_ranking_curve(curve: pd.DataFrame, out: str | Path, title: str = "") -> list[Path]:
    """``curve.csv`` and ``curve.png`` (accuracy vs step, log axis; baselines as horizontal lines) in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facedyn.reports.plots import save_figure

    out = Path(out)
    csv = out / "curve.csv"
    write_text(csv, curve.to_csv(index=False, float_format="%.3f"))
    steps = curve[curve["weights"] != "best"]
    groups = [c[4:] for c in curve.columns if c.startswith("acc_")]
    fig, axes = plt.subplots(1, 1 + len(groups), figsize=(5.2 * (1 + len(groups)), 3.8), squeeze=False)
    for ax, g in zip(axes[0], ["", *groups], strict=True):
        suffix = f"_{g}" if g else ""
        x = steps["step"].clip(lower=1)  # init at step 0 drawn at 1 on the log axis
        ax.plot(x, steps[f"acc{suffix}"], "o-", color="C0", label="DR (held-out people)")
        best = curve[curve["weights"] == "best"]
        if len(best):
            ax.plot(best["step"].clip(lower=1), best[f"acc{suffix}"], "*", ms=12, color="C3",
                    label="best (chosen on validation people)")
        for i, b in enumerate(CURVE_BASELINES):
            if f"{b}{suffix}" in curve:
                ax.axhline(float(curve[f"{b}{suffix}"].iloc[0]), color=f"C{i + 1}", ls="--", label=b)
        ax.set_xscale("log")
        ax.set_xlabel("training step (log; init drawn at 1)")
        ax.set_ylabel("ranking accuracy (%)")
        ax.set_title(f"{title} {g}".strip() or "learning curve")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    png = save_figure(fig, out / "curve.png")
    plt.close(fig)
    return [csv, png]


#: Headline metric of each probe task: (column of :func:`facedyn.tasks.probes.run_probes`, lower is better).
PROBE_METRICS: dict[str, tuple[tuple[str, bool], ...]] = {
    "landmarks": (("NME %", True),),
    "pose": (("mean MAE", True), ("mean PCC", False)),
    "au": (("mean F1", False), ("mean AUC", False)),
}


def probe_curve(run: str | Path, data: str | Path, tasks: Sequence[str] = ("landmarks", "pose", "au"),
                features: str = "encode", max_frames_per_subject: int | None = 150, device: str = "cpu",
                seed: int = 0, progress: Callable[[str], None] | None = None,
                person_norm: bool | None = None) -> pd.DataFrame:
    """Long table of probe metrics at ``init``, every kept ``step<N>`` and ``last``, and of PCA pixels.

    Columns: ``task``, ``representation`` (``trained``, ``init``, ``pixels``), ``weights``, ``step`` (NaN for
    pixels), ``metric`` (e.g. ``"NME %"``), ``value``, ``lower_is_better``. Every checkpoint is probed on the
    same frames and person-level folds of the people the run never trained or validated on; ``person_norm`` as in
    :func:`~facedyn.tasks.probes.run_probes` (None: per task, on for ``au``).
    """
    from facedyn.tasks.probes import run_probes

    if not runs.kept_steps(runs.resolve_run(run)):
        raise CheckpointError(f"{run}: kept no step checkpoints; train it with --keep-steps log")
    rows: list[dict[str, Any]] = []
    for task in tasks:
        if task not in PROBE_METRICS:
            raise ConfigError(f"--task must be among {', '.join(PROBE_METRICS)}, got {task!r}")
        df = run_probes(run, data, task, features=[features], weights="all", device=device, seed=seed,
                        max_frames_per_subject=max_frames_per_subject, progress=progress,
                        person_norm=person_norm)
        for _, r in df.iterrows():
            for metric, lower in PROBE_METRICS[task]:
                rows.append({"task": task, "representation": r["representation"], "weights": r["weights"],
                             "step": r["step"], "metric": metric, "value": float(r[metric]),
                             "lower_is_better": lower})
    return pd.DataFrame(rows)


def probe_curve_table(curve: pd.DataFrame) -> pd.DataFrame:
    """The long table of :func:`probe_curve` as one row per checkpoint (and ``init``, ``pixels``) and one column
    per ``"<task> <metric>"``, in the curve's order."""
    wide = curve.assign(column=curve["task"] + " " + curve["metric"],
                        weights=curve["weights"].fillna("").replace("", "pixels"),
                        step=curve["step"].fillna(-1).astype(int))
    table = wide.pivot_table(index=["weights", "step"], columns="column", values="value", sort=False).reset_index()
    table.columns.name = None
    table["step"] = table["step"].astype(object).where(table["step"] >= 0, "")
    order = list(dict.fromkeys(wide["column"]))
    return table[["weights", "step", *order]]


def write_probe_curve(curve: pd.DataFrame, out: str | Path, title: str = "") -> list[Path]:
    """``curve.csv`` and ``curve.png`` (one panel per task metric: the trained network's value vs step on a log
    axis, the init network and PCA pixels as horizontal lines) in ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from facedyn.reports.plots import save_figure

    out = Path(out)
    csv = out / "curve.csv"
    write_text(csv, curve.to_csv(index=False, float_format="%.4f"))
    panels = list(dict.fromkeys(zip(curve["task"], curve["metric"], strict=True)))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (task, metric) in zip(axes[0], panels, strict=True):
        sub = curve[(curve["task"] == task) & (curve["metric"] == metric)]
        tr = sub[sub["representation"] == "trained"].sort_values("step")
        x = tr["step"].astype(float).clip(lower=1)
        ax.plot(x, tr["value"], "o-", color="C0", label="trained (held-out people)")
        for i, rep in enumerate(("init", "pixels")):
            v = sub.loc[sub["representation"] == rep, "value"]
            if len(v):
                ax.axhline(float(v.iloc[0]), color=f"C{i + 1}", ls="--", label="init network" if rep == "init"
                           else "PCA pixels")
        lower = bool(sub["lower_is_better"].iloc[0])
        ax.set_xscale("log")
        ax.set_xlabel("training step (log)")
        ax.set_ylabel(f"{metric} ({'lower' if lower else 'higher'} is better)")
        ax.set_title(f"{task}: {metric}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    png = save_figure(fig, out / "curve.png")
    plt.close(fig)
    return [csv, png]
