"""Markdown reports with figures, written next to the results they describe."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from facedyn import runs
from facedyn.atomic import write_text
from facedyn.data.windows import WindowDataset
from facedyn.dr.dynamic_image import dynamic_image
from facedyn.dr.rank_loss import centred
from facedyn.reports.plots import plot_dr_gallery, plot_training
from facedyn.reports.tables import to_markdown


def dr_gallery(data: str | Path, net: Callable[[torch.Tensor], torch.Tensor], T: int, S: int, path: Path,
               split: str | None = "test", n: int = 4, seed: int = 0) -> Path:
    """Figure: input / DR / centred / true DI / true BDI for ``n`` frames of ``split``.

    ``net``: the DR of faces ``(B, 3, H, W)`` (a loaded model, e.g. ``facedyn.load(run)``)."""
    wins = WindowDataset(data, T, S, split=split)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(len(wins), size=min(n, len(wins)), replace=False))
    rows = []
    with torch.no_grad():
        for i in pick:
            it = wins[int(i)]
            w = it["window"][None]
            c = it["centre"][None]
            rows.append({
                "input I_t": (c[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8),
                "DR (ours)": net(c)[0].numpy(),
                "centred I_t": centred(c)[0].numpy(),
                "true DI": dynamic_image(w, direction="forward")[0].numpy(),
                "true BDI": dynamic_image(w, direction="backward")[0].numpy(),
            })
    return plot_dr_gallery(rows, path, title=f"held-out frames, T={T}, S={S}")


def write_dr_report(out: Path, ranking: pd.DataFrame, run: Path, summary: dict[str, Any],
                    figures: dict[str, Path], notes: list[str], extra: str = "") -> Path:
    """``report.md``: data, training, ranking table and figures of a DR run; ``extra``: more markdown
    sections (e.g. the AU table) placed before the notes."""
    out = Path(out)
    metrics = pd.DataFrame(runs.read_metrics(run))
    plot_training(metrics, out / "figures" / "training.png", title=f"DR training ({run.name})")
    rel = {k: Path(v).resolve().relative_to(out.resolve()) for k, v in figures.items()}
    lines = ["# facedyn report", ""]
    lines += ["## Data", "", f"- dataset: `{summary.get('path', '')}`; clips: {summary['n_clips']}, frames: "
              f"{summary['n_frames']}, valid: {100 * summary['valid']:.1f} %, size: {summary['size']} px",
              *[f"- {k}: {', '.join(v)}" for k, v in summary["splits"].items()], ""]
    best_row = metrics.loc[metrics["val_acc"].idxmax()] if "val_acc" in metrics else None
    lines += ["## Training", "", f"- run: `{run}`; epochs: {int(metrics['epoch'].max())}; "
              f"train time: {metrics.get('time_s', pd.Series([0])).sum():.0f} s"]
    if best_row is not None:
        lines.append(f"- validation ranking accuracy: epoch 0 (untrained = centred floor) "
                     f"{100 * metrics['val_acc'].iloc[0]:.1f} %, best {100 * best_row['val_acc']:.1f} % "
                     f"at epoch {int(best_row['epoch'])} (the checkpoint used below)")
    lines += ["", "![training](figures/training.png)", ""]
    lines += ["## Frame ranking (held-out subjects)", "",
              "Percentage of Eq. 2 pairs ranked correctly (ties count as wrong); `acc_before`/`acc_after`: pairs "
              "before/after the centre frame.", "", to_markdown(ranking)]
    lines += [f"![{k}]({v})" for k, v in rel.items()]
    if extra:
        lines += ["", extra.rstrip()]
    lines += ["", "## Notes", "", *[f"- {n}" for n in notes], ""]
    path = out / "report.md"
    write_text(path, "\n".join(lines))
    return path
