"""Tables 1–2 of dr-paper.txt for trained task runs: ``facedyn eval au`` and ``facedyn eval affect``.

:func:`evaluate_task` predicts every labelled frame of the test people with each run, groups the runs
by their input (SI, DI, BDI, the baselines, SDR, MDR; runs of one input trained on different
person-level folds are pooled, each predicting its own fold's test people), and writes:

* ``<task>.csv``: one row per input; per metric and column (and ``avg``, the mean over columns) the
  whole-set value and its 95 % percentile-bootstrap interval over test subjects (``_lo``, ``_hi``); with an
  SI row, ``<metric>_avg_vs_si`` (and ``_lo``/``_hi``): the input's average minus the still image's on the
  same frames, its interval from *paired* replicates (both inputs scored on the same resampled subjects,
  so the interval says whether the input beats the still image, which two overlapping intervals do not);
* ``<task>.md``: the same as markdown, one table per metric (AU: ICC and MSE; affect: PCC, CCC, MSE), and
  the paired differences to SI;
* ``predictions.csv``: every frame's truth and prediction per input;
* ``figures/traces.png``: predicted vs true over time for a few test clips.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from facedyn import runs as runs_mod
from facedyn.atomic import write_text
from facedyn.data.store import ClipDataset
from facedyn.errors import ConfigError
from facedyn.eval.metrics import HIGHER_IS_BETTER, bootstrap_interval, column_metrics, column_statistic
from facedyn.reports.plots import plot_traces
from facedyn.reports.tables import markdown_table
from facedyn.tasks.inputs import LABEL_SOURCES, TaskFrames, columns, frame_table

__all__ = ["TASKS", "evaluate_task", "interval_cell", "paired_difference", "predict_run", "task_table"]

#: task → (method name, metrics)
TASKS: dict[str, tuple[str, tuple[str, ...]]] = {"au": ("au", ("icc", "mse")),
                                                  "affect": ("affect", ("pcc", "ccc", "mse"))}
_NAMES = {"si": "SI", "di": "DI (true, window)", "bdi": "BDI (true, window)", "sdr": "SDR", "mdr": "MDR",
          "unet_mse": "UNet(MSE)", "unet_p": "UNet(P)", "pix2pix": "Pix2Pix"}


def _row_key(label: str) -> tuple[int, str]:
    """Row order: SI, the true DIs, the baselines (by label), SDR, MDR."""
    order = {"si": 0, "di": 1, "bdi": 2, "sdr": 8, "mdr": 9}
    return order.get(label, 5), label


@torch.no_grad()
def predict_run(run: str | Path, data: str | Path, split: str = "test", labels: str | None = None,
                device: str = "auto", batch_size: int = 64) -> tuple[pd.DataFrame, Any]:
    """Predictions of a task run on the labelled frames of ``split`` (the run's fold, if it used one).

    Returns:
        (frame table: ``clip``, ``subject``, ``frame``, ``true_<col>``, ``pred_<col>``; the loaded model).
    """
    from facedyn.api import load

    model = load(run, device=device)
    method = model.method
    if labels is not None:
        if labels not in LABEL_SOURCES:
            raise ConfigError(f"--labels must be one of {', '.join(LABEL_SOURCES)}, got {labels!r}")
        method.cfg = replace(method.cfg, labels=labels)
    fold = getattr(method.cfg, "fold", None)
    store = ClipDataset(data, fold=fold) if fold is not None else ClipDataset(data)
    ds: TaskFrames = method.dataset(store, split)  # type: ignore[assignment]
    preds = []
    for i in range(0, len(ds), batch_size):
        x = torch.stack([ds[j]["x"] for j in range(i, min(len(ds), i + batch_size))]).to(model.device)
        preds.append(method.net.predict_rep(x).float().cpu().numpy())
    pred = np.concatenate(preds) if preds else np.zeros((0, len(ds.label_columns)), np.float32)
    return frame_table(ds, pred), model


#: Fewer test subjects than this: values without intervals (a bootstrap over people needs people).
MIN_INTERVAL_SUBJECTS = 6


def task_table(frames: dict[str, pd.DataFrame], cols: Sequence[str], metrics: Sequence[str], n_boot: int = 1000,
               level: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """One row per input: ``input``, ``frames``, ``subjects``, then ``<metric>_<col>`` (and ``_lo``/``_hi``) for
    every column and ``avg``; ``_lo``/``_hi`` are NaN with fewer than :data:`MIN_INTERVAL_SUBJECTS` subjects."""
    rows = []
    for label, df in frames.items():
        yt = df[[f"true_{c}" for c in cols]].to_numpy(np.float64)
        yp = df[[f"pred_{c}" for c in cols]].to_numpy(np.float64)
        groups = df["subject"].to_numpy()
        tab = column_metrics(yt, yp, cols, metrics)
        row: dict[str, Any] = {"input": label, "frames": len(df), "subjects": int(df["subject"].nunique())}
        for m in metrics:
            for j, c in enumerate([*cols, "avg"]):
                stat = column_statistic(m, None if c == "avg" else j)
                lo, hi = bootstrap_interval(stat, yt, yp, groups, n_boot=n_boot, level=level, seed=seed,
                                            min_groups=MIN_INTERVAL_SUBJECTS)
                row[f"{m}_{c}"], row[f"{m}_{c}_lo"], row[f"{m}_{c}_hi"] = tab[m][c], lo, hi
            if "si" in frames and label != "si":
                key = f"{m}_avg_vs_si"
                row[key], row[f"{key}_lo"], row[f"{key}_hi"] = paired_difference(
                    df, frames["si"], cols, m, n_boot=n_boot, level=level, seed=seed)
        rows.append(row)
    return pd.DataFrame(rows)


def paired_difference(df: pd.DataFrame, ref: pd.DataFrame, cols: Sequence[str], metric_name: str,
                      n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Average ``metric_name`` of one input's frame table minus that of a reference input (the still image).

    The two tables are joined on ``(clip, frame)`` (frames only one of them predicts are left out) and the
    interval comes from paired replicates: each resamples the subjects once and scores both inputs on them.

    Args:
        df, ref: frame tables (``clip``, ``subject``, ``frame``, ``true_<col>``, ``pred_<col>``).
        cols: the K label columns; metric_name: a metric of :data:`~facedyn.eval.metrics.METRICS`.
    Returns:
        ``(difference, low, high)``; NaNs when the tables share no frame.
    """
    keys = ["clip", "frame"]
    pred = [f"pred_{c}" for c in cols]
    both = df.merge(ref[keys + pred], on=keys, suffixes=("", "_ref"))
    if both.empty:
        return float("nan"), float("nan"), float("nan")
    yt = both[[f"true_{c}" for c in cols]].to_numpy(np.float64)
    yp = np.stack([both[pred].to_numpy(np.float64), both[[f"{p}_ref" for p in pred]].to_numpy(np.float64)], axis=1)
    avg = column_statistic(metric_name)

    def stat(t: np.ndarray, p: np.ndarray) -> float:  # p (M, 2, K): the input, the reference
        return avg(t, p[:, 0]) - avg(t, p[:, 1])

    lo, hi = bootstrap_interval(stat, yt, yp, both["subject"].to_numpy(), n_boot=n_boot, level=level, seed=seed,
                                min_groups=MIN_INTERVAL_SUBJECTS)
    return stat(yt, yp), lo, hi


def interval_cell(v: float, lo: float, hi: float, signed: bool = False) -> str:
    """``value [low, high]`` (``+``-signed for differences); the value alone without an interval; ``–`` when
    the value is not finite."""
    if not np.isfinite(v):
        return "–"
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{v:+.3f}" if signed else f"{v:.3f}"
    return f"{v:+.3f} [{lo:+.2f}, {hi:+.2f}]" if signed else f"{v:.3f} [{lo:.2f}, {hi:.2f}]"


def _markdown(table: pd.DataFrame, cols: Sequence[str], metrics: Sequence[str], level: float) -> str:
    names = [_NAMES.get(i, i) for i in table["input"]]
    few = int(table["subjects"].min()) if len(table) else 0
    out = []
    if few < MIN_INTERVAL_SUBJECTS:
        out += [f"No intervals: only {few} test people (a {100 * level:.0f} % bootstrap interval over people needs "
                f"at least {MIN_INTERVAL_SUBJECTS}); the values below are point estimates.", ""]
    for m in metrics:
        arrow = "higher is better" if HIGHER_IS_BETTER[m] else "lower is better"
        out += [f"**{m.upper()}** ({arrow}; [{100 * level:.0f} % bootstrap interval over test subjects])", ""]
        cells = {c: [interval_cell(*r) for r in table[[f"{m}_{c}", f"{m}_{c}_lo", f"{m}_{c}_hi"]].to_numpy()]
                 for c in [*cols, "avg"]}
        out += [markdown_table(pd.DataFrame({"input": names, **cells}), fmt=str).rstrip("\n"), ""]
    diff = [m for m in metrics if f"{m}_avg_vs_si" in table]
    if diff:
        rest = (table["input"] != "si").to_numpy()
        cells = {f"Δ {m.upper()} ({'higher' if HIGHER_IS_BETTER[m] else 'lower'} is better)":
                 [interval_cell(*r, signed=True)
                  for r in table.loc[rest, [f"{m}_avg_vs_si{s}" for s in ("", "_lo", "_hi")]].to_numpy(np.float64)]
                 for m in diff}
        out += [f"**Paired difference to SI** (input − SI, average over columns, on the same frames; "
                f"[{100 * level:.0f} % interval from the same resampled test subjects for both])", "",
                markdown_table(pd.DataFrame({"input": np.array(names, dtype=object)[rest], **cells}), fmt=str)
                .rstrip("\n"), ""]
    return "\n".join(out)


def evaluate_task(task: str, data: str | Path, run_dirs: Sequence[str | Path], out: str | Path,
                  split: str = "test", labels: str | None = None, n_boot: int = 1000, level: float = 0.95,
                  seed: int = 0, device: str = "auto", n_traces: int = 3,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Evaluate task runs (``au`` or ``affect``) on ``split`` of ``data`` into ``out`` (see the module docstring).

    Args:
        run_dirs: task runs (folders of runs, e.g. a ``--grid`` sweep, are expanded).
        labels: ``store`` or ``proxies`` instead of each run's own label source (columns must match).
    Returns:
        ``table`` (DataFrame), ``markdown``, ``files`` (paths written), ``frames`` (per-input frame tables).
    Raises:
        ConfigError: no runs, a run of another method, runs that predict different columns, or two runs of
            one input on the same fold.
    """
    if task not in TASKS:
        raise ConfigError(f"unknown task {task!r}; choose from {', '.join(TASKS)}")
    method_name, metrics = TASKS[task]
    paths = runs_mod.expand_runs(list(run_dirs))
    if not paths:
        raise ConfigError(f"give at least one `facedyn train {method_name}` run with --run")
    out = Path(out)
    per_input: dict[str, list[pd.DataFrame]] = {}
    folds: dict[str, set[Any]] = {}
    cols: list[str] | None = None
    for p in paths:
        rec = runs_mod.read_record(p)
        if rec.method != method_name:
            raise ConfigError(f"{p}: is a {rec.method!r} run; `facedyn eval {task}` needs {method_name} runs")
        if progress:
            progress(str(p))
        df, model = predict_run(p, data, split=split, labels=labels, device=device)
        label, fold = model.method.label(), getattr(model.cfg, "fold", None)
        run_cols = columns(model.cfg.label_columns)
        if cols is None:
            cols = run_cols
        elif run_cols != cols:
            raise ConfigError(f"{p}: predicts {', '.join(run_cols)}, the other runs {', '.join(cols)}; evaluate runs "
                              "of one label set together")
        if fold in folds.setdefault(label, set()):
            raise ConfigError(f"{p}: a second {label!r} run on fold {fold}; give one run per input and fold")
        folds[label].add(fold)
        per_input.setdefault(label, []).append(df.assign(input=label, fold=fold if fold is not None else -1))
    assert cols is not None
    frames = {k: pd.concat(per_input[k], ignore_index=True) for k in sorted(per_input, key=_row_key)}
    table = task_table(frames, cols, metrics, n_boot=n_boot, level=level, seed=seed)
    md = _markdown(table, cols, metrics, level)
    written = []
    csv_path, md_path = out / f"{task}.csv", out / f"{task}.md"
    write_text(csv_path, table.to_csv(index=False, float_format="%.4f"))
    write_text(md_path, md)
    pred_path = out / "predictions.csv"
    write_text(pred_path, pd.concat(frames.values(), ignore_index=True).to_csv(index=False, float_format="%.4f"))
    written += [csv_path, md_path, pred_path]
    if n_traces > 0:
        names = {k: _NAMES.get(k, k) for k in frames}
        written.append(plot_traces(frames, cols, out / "figures" / "traces.png", names, n_clips=n_traces))
    return {"table": table, "markdown": md, "files": written, "frames": frames, "columns": cols}
