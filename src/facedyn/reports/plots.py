"""Figures: Fig. 4-style ranking curves, DR galleries, training curves (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from facedyn.atomic import atomic_path


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` atomically (a .png, tight bounding box) and close it; returns the path."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def minmax_uint8(d: np.ndarray) -> np.ndarray:
    """Display map of a DR: per-image min–max to [0, 255]. ``d`` ``(3, H, W)`` → uint8 ``(H, W, 3)``."""
    d = np.asarray(d, dtype=np.float64)
    lo, hi = d.min(), d.max()
    x = (d - lo) / (hi - lo) if hi > lo else np.zeros_like(d)
    return (255 * x).round().astype(np.uint8).transpose(1, 2, 0)


def plot_ranking_curves(df: pd.DataFrame, path: Path, title: str = "Frame ranking accuracy") -> Path:
    """Accuracy (%) vs T, one line per method, one panel per S (dr-paper.txt Fig. 4)."""
    strides = sorted(df["S"].unique())
    fig, axes = plt.subplots(1, len(strides), figsize=(4.2 * len(strides), 3.6), squeeze=False, sharey=True)
    styles = {"ranksvm": dict(ls="--", color="k"), "seq-di": dict(ls="--", color="tab:blue", lw=1.5),
              "random": dict(ls=":", color="gray"),
              "centred": dict(ls="-.", color="tab:brown"), "identity": dict(ls="-.", color="tab:pink"),
              "dr": dict(lw=2.5, color="tab:red")}
    others = [m for m in df["method"].unique() if m not in styles]
    palette = plt.get_cmap("tab20")
    for i, m in enumerate(others):
        styles[m] = dict(color=palette(i % 20), lw=1.2, ls="-" if str(m).endswith("seq") else ":")
    for ax, S in zip(axes[0], strides, strict=True):
        sub = df[df["S"] == S]
        for m, g in sub.groupby("method", sort=False):
            g = g.sort_values("T")
            ax.plot(g["T"], g["acc"], marker="o", ms=3, label=m, **styles.get(str(m), {}))
        ax.set_title(f"S = {S}")
        ax.set_xlabel("T (window half-length)")
        ax.set_xticks(sorted(df["T"].unique()))
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("pairs ranked correctly (%)")
    handles: dict[str, object] = {}
    for ax in axes[0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles.keys()), fontsize=7, loc="center left",
               bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_dr_gallery(rows: list[dict[str, np.ndarray]], path: Path, title: str = "") -> Path:
    """A grid: one row per frame, columns = named images (input uint8 ``(H, W, 3)`` or DR ``(3, H, W)``).

    DR-like arrays (float, channel-first) are shown by per-image min–max (noted in the title).
    """
    cols = list(rows[0].keys())
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(1.9 * len(cols), 1.9 * len(rows)), squeeze=False)
    for i, r in enumerate(rows):
        for j, k in enumerate(cols):
            a = r[k]
            img = a if a.dtype == np.uint8 else minmax_uint8(a)
            axes[i][j].imshow(img)
            axes[i][j].set_xticks([])
            axes[i][j].set_yticks([])
            if i == 0:
                axes[i][j].set_title(k, fontsize=9)
    fig.suptitle((title + "\n" if title else "") + "DRs shown by per-image min–max to [0, 255]", fontsize=9)
    return save_figure(fig, path)


def plot_training(metrics: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Training loss and validation accuracy per epoch."""
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.3))
    loss_cols = [c for c in metrics.columns if c.startswith("train_") and "loss" in c]
    for c in loss_cols:
        ax[0].plot(metrics["epoch"], metrics[c], marker=".", label=c)
    ax[0].set_xlabel("epoch")
    ax[0].set_title("training loss")
    if loss_cols:
        ax[0].legend(fontsize=7)
    for c in [c for c in metrics.columns if c.startswith("val_")]:
        ax[1].plot(metrics["epoch"], metrics[c], marker="o", label=c)
    ax[1].set_xlabel("epoch")
    ax[1].set_title("validation")
    ax[1].legend(fontsize=7)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_traces(frames: dict[str, pd.DataFrame], cols: Sequence[str], path: Path, names: dict[str, str] | None = None,
                n_clips: int = 3, max_cols: int = 4) -> Path:
    """Predicted vs true over time for ``n_clips`` clips (per clip, the ``max_cols`` columns that vary most).

    ``frames``: input name → table with ``clip``, ``frame``, ``true_<col>``, ``pred_<col>`` (the first input's
    truth is drawn); ``names``: display names of the inputs.
    """
    names = names or {}
    first = next(iter(frames.values()))
    clips = sorted(first["clip"].unique())
    pick = [clips[i] for i in np.linspace(0, len(clips) - 1, min(n_clips, len(clips))).round().astype(int)]
    pick = list(dict.fromkeys(pick))
    fig, axes = plt.subplots(len(pick), max_cols, figsize=(3.6 * max_cols, 2.4 * len(pick)), squeeze=False)
    palette = plt.get_cmap("tab10")
    for r, clip in enumerate(pick):
        ref = first[first["clip"] == clip].sort_values("frame")
        var = {c: float(np.nanvar(ref[f"true_{c}"])) for c in cols}
        shown = sorted(cols, key=lambda c: -var[c])[:max_cols]
        for k in range(max_cols):
            ax = axes[r][k]
            if k >= len(shown):
                ax.axis("off")
                continue
            c = shown[k]
            ax.plot(ref["frame"], ref[f"true_{c}"], color="k", lw=1.8, label="true")
            for i, (label, df) in enumerate(frames.items()):
                d = df[df["clip"] == clip].sort_values("frame")
                ax.plot(d["frame"], d[f"pred_{c}"], color=palette(i % 10), lw=1.0, label=names.get(label, label))
            ax.set_title(f"{clip}: {c}", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.supxlabel("frame")
    fig.tight_layout()
    return save_figure(fig, path)


def plot_budget_curves(table: pd.DataFrame, path: Path, metrics: Sequence[str], higher: dict[str, bool],
                       title: str = "AU intensity against labelled people") -> Path:
    """Each metric against the number of labelled people (log axis), one line per representation ``kind`` with its
    95 % band (``<metric>_lo``/``_hi``); ``table`` has ``kind``, ``labelled`` and the metric columns (the
    downstream benchmark's table). The still image (``si``) is drawn black and thick."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.0 * len(metrics), 3.8), squeeze=False)
    kinds = list(dict.fromkeys(table["kind"]))
    palette = plt.get_cmap("tab20")
    for ax, m in zip(axes[0], metrics, strict=True):
        for i, k in enumerate(kinds):
            g = table[table["kind"] == k].sort_values("labelled")
            style = (dict(color="k", lw=2.4) if k == "si" else
                     dict(color=palette(i % 20), lw=1.2, ls="--" if str(k).endswith("/mlp") else "-"))
            ax.plot(g["labelled"], g[m], marker="o", ms=3, label=k, **style)
            ax.fill_between(g["labelled"], g[f"{m}_lo"], g[f"{m}_hi"], color=style["color"], alpha=0.10, lw=0)
        ax.set_xscale("log")
        xs = sorted(table["labelled"].unique())
        ax.set_xticks(xs)
        ax.set_xticklabels([str(int(x)) for x in xs])
        ax.minorticks_off()
        ax.set_xlabel("labelled people")
        ax.set_title(f"{m.upper()} ({'higher' if higher.get(m, True) else 'lower'} is better)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False)
    fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)
