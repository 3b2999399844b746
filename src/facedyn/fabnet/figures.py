"""Figures of a FAb-Net run: sources, confidence maps, target, generated frame and flow; training curves.

    from facedyn.fabnet.figures import write_figures
    write_figures("runs/fabnet")            # → runs/fabnet/figures/fabnet_samples.png, training.png

Each row of ``fabnet_samples.png`` is one target of people not seen in training (the run's ``val`` split, else
``test``, else every clip): its ``K`` sources, each source's confidence weight ``e^{C_i} / sum_j e^{C_j}``
(0 black .. 1 white), each source's flow (hue = direction, brightness = length, scaled per figure), then the
target, the generated frame and the absolute error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from facedyn.api import load
from facedyn.data.store import ClipDataset
from facedyn.data.windows import SourcesDataset
from facedyn.errors import DatasetError
from facedyn.reports.plots import plot_training, save_figure
from facedyn.runs import FIGURES, read_metrics, read_record


def flow_to_rgb(flow: np.ndarray, max_mag: float | None = None) -> np.ndarray:
    """A flow field ``(2, H, W)`` (``dx``, ``dy``) → uint8 ``(H, W, 3)``: hue = direction, value = length /
    ``max_mag`` (default: the field's largest length), full saturation. Zero flow is black."""
    dx, dy = np.asarray(flow[0], np.float64), np.asarray(flow[1], np.float64)
    mag = np.hypot(dx, dy)
    top = float(max_mag) if max_mag else float(mag.max())
    hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
    val = np.clip(mag / top, 0, 1) if top > 0 else np.zeros_like(mag)
    hsv = np.stack([hue, np.ones_like(hue), val], axis=-1)
    return (255 * matplotlib.colors.hsv_to_rgb(hsv)).round().astype(np.uint8)


def _img(x: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float in [0, 1] → uint8 ``(H, W, 3)``."""
    return (x.clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def pick_split(store: ClipDataset, prefer: tuple[str, ...] = ("val", "test")) -> str | None:
    """The first of ``prefer`` that has people in ``store``; None (every clip) if none has."""
    return next((s for s in prefer if store.splits.get(s)), None)


def sample_batch(data: str | Path, n_sources: int, min_gap_s: float, max_gap_s: float, n: int = 6,
                 split: str | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` targets with their sources, spread over the clips of ``split`` (None: val, else test, else all).

    Returns ``target`` ``(n, 3, H, W)`` and ``sources`` ``(n, K, 3, H, W)`` in [0, 1].
    """
    store = ClipDataset(data)
    ds = SourcesDataset(store, n_sources, min_gap_s, max_gap_s, split=split or pick_split(store), seed=seed)
    if len(ds) == 0:
        raise DatasetError(f"{data}: no target with {n_sources} sources to draw")
    idx = np.linspace(0, len(ds) - 1, min(n, len(ds))).round().astype(int)
    items = [ds[int(i)] for i in idx]
    return {"target": torch.stack([it["target"] for it in items]),  # type: ignore[misc]
            "sources": torch.stack([it["sources"] for it in items])}  # type: ignore[misc]


def plot_reconstructions(batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor], path: Path,
                         title: str = "") -> Path:
    """The sample grid (see the module docstring) from a batch and the network's :meth:`reconstruct` output."""
    target, sources = batch["target"], batch["sources"]
    B, K = sources.shape[:2]
    flows = out["flow"].numpy()
    top = float(np.hypot(flows[:, :, 0], flows[:, :, 1]).max()) or 1.0
    cols = ([f"source {i + 1}" for i in range(K)] + [f"confidence {i + 1}" for i in range(K)]
            + [f"flow {i + 1}" for i in range(K)] + ["target", "generated", "|error|"])
    fig, axes = plt.subplots(B, len(cols), figsize=(1.35 * len(cols), 1.4 * B), squeeze=False)
    for b in range(B):
        tiles: list[tuple[np.ndarray, dict[str, Any]]] = []
        tiles += [(_img(sources[b, i]), {}) for i in range(K)]
        tiles += [(out["weights"][b, i, 0].numpy(), {"cmap": "gray", "vmin": 0, "vmax": 1}) for i in range(K)]
        tiles += [(flow_to_rgb(flows[b, i], top), {}) for i in range(K)]
        err = (out["generated"][b] - target[b]).abs().mean(0).numpy()
        tiles += [(_img(target[b]), {}), (_img(out["generated"][b]), {}),
                  (err, {"cmap": "magma", "vmin": 0, "vmax": 0.5})]
        for j, (a, kw) in enumerate(tiles):
            ax = axes[b][j]
            ax.imshow(a, **kw)
            ax.set_xticks([])
            ax.set_yticks([])
            if b == 0:
                ax.set_title(cols[j], fontsize=7)
    fig.suptitle((title + "\n" if title else "") + f"flow: hue = direction, brightness = length (max {top:.1f} px); "
                 "confidence: softmax weight 0 (black) .. 1 (white); |error| 0 .. 0.5", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    return save_figure(fig, path, dpi=110)


def write_figures(run: str | Path, data: str | Path | None = None, n: int = 6, split: str | None = None,
                  weights: str = "best", seed: int = 0, device: str = "cpu") -> list[Path]:
    """Write ``RUN/figures/fabnet_samples.png`` (sources, confidences, flows, target, generated frame, error)
    and ``RUN/figures/training.png``; returns their paths.

    ``data``: the store to draw from (default: the one the run was trained on); ``split``: default val, else
    test, else every clip.
    """
    run = Path(run)
    rec = read_record(run)
    model = load(run, weights=weights, device=device)
    cfg = model.cfg
    batch = sample_batch(data or rec.data["path"], cfg.n_sources, cfg.min_gap_s, cfg.max_gap_s, n=n, split=split,
                         seed=seed)
    with torch.no_grad():
        out = model.net.reconstruct(batch["sources"].to(model.device), batch["target"].to(model.device))
    out = {k: v.float().cpu() for k, v in out.items()}
    fig_dir = run / FIGURES
    align = rec.data.get("align", "?")
    paths = [plot_reconstructions(batch, out, fig_dir / "fabnet_samples.png",
                                  title=f"{model.label} ({weights} weights, {align}-aligned crops)")]
    metrics = read_metrics(run)
    if metrics:
        paths.append(plot_training(pd.DataFrame(metrics), fig_dir / "training.png", title=f"{model.label} training"))
    return paths
