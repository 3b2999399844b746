"""TCAE figures: source, target, AU-changed, pose-changed and full reconstruction, the two displacement fields.

Displacement fields are drawn in the usual optical-flow colours: hue = direction (where each output pixel
samples the source from), brightness = magnitude, with one scale for ``tau^A`` and ``tau^P`` alike, so their
sizes compare at a glance. The scale (printed in the title, pixels) is the 99th percentile of the magnitudes
inside the crop less a border of 1/8 of its side (:func:`display_scale`), not the largest magnitude: a
displacement that samples outside the image gets no gradient (border padding repeats the edge pixel), so a
few edge pixels drift to large values, and a scale set by them drew every displacement on the face black.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from facedyn import runs
from facedyn.reports.plots import save_figure

__all__ = ["COLUMNS", "FIGURE_NAME", "display_scale", "flow_to_rgb", "write_pair_figure"]

#: File name of the figure in the run's ``figures/``.
FIGURE_NAME = "tcae_pairs.png"
#: (key of :meth:`facedyn.tcae.model.TCAENet.reconstruct`, column title)
COLUMNS = (("source", "source I_s"), ("target", "target I_t"), ("au_changed", "AU-changed I_A"),
           ("pose_changed", "pose-changed I_P"), ("reconstruction", "tau(I_s)"), ("tau_au", "tau^A"),
           ("tau_pose", "tau^P"), ("alpha_au", "alpha^A"))


def flow_to_rgb(flow: np.ndarray, max_mag: float) -> np.ndarray:
    """Displacement ``(2, H, W)`` (pixels) → RGB float ``(H, W, 3)`` in [0, 1]: hue = direction, value =
    magnitude / ``max_mag`` (clipped), full saturation."""
    from matplotlib.colors import hsv_to_rgb

    dx, dy = np.asarray(flow, dtype=np.float64)
    mag = np.hypot(dx, dy)
    hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
    val = np.clip(mag / max_mag, 0, 1) if max_mag > 0 else np.zeros_like(mag)
    return hsv_to_rgb(np.stack([hue, np.ones_like(hue), val], -1))


def display_scale(fields: list[torch.Tensor], q: float = 0.99) -> float:
    """Brightness scale (pixels) of displacement fields ``(B, 2, H, W)``: the ``q`` quantile of their per-pixel
    lengths inside the crop less a border of 1/8 of its side (all pixels when that leaves none)."""
    mags = []
    for f in fields:
        H, W = f.shape[-2:]
        b = min(H, W) // 8
        inner = f[..., b:H - b, b:W - b] if b and 2 * b < H and 2 * b < W else f
        mags.append(inner.detach().float().norm(dim=1).flatten())
    m = torch.cat(mags)
    return float(torch.quantile(m, q)) if m.numel() else 0.0


def _img(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()


def write_pair_figure(rec: dict[str, torch.Tensor], run_dir: str | Path, name: str = FIGURE_NAME,
                      title: str = "TCAE on validation pairs") -> Path:
    """Draw :meth:`~facedyn.tcae.model.TCAENet.reconstruct`'s output (one row per pair) into the run's figures.

    ``rec``: ``source, target, au_changed, pose_changed, reconstruction`` ``(B, 3, H, W)``, ``tau_au``,
    ``tau_pose`` ``(B, 2, H, W)`` in pixels, ``alpha_au`` ``(B, 1, H, W)``. Written atomically; returns the path.
    """
    B = len(rec["source"])
    mag = display_scale([rec["tau_au"], rec["tau_pose"]])
    fig, axes = plt.subplots(B, len(COLUMNS), figsize=(1.3 * len(COLUMNS), 1.35 * B + 0.5), squeeze=False)
    for i in range(B):
        for j, (key, label) in enumerate(COLUMNS):
            ax = axes[i, j]
            if key.startswith("tau"):
                ax.imshow(flow_to_rgb(rec[key][i].detach().cpu().numpy(), mag))
            elif key == "alpha_au":
                ax.imshow(rec[key][i, 0].detach().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            else:
                ax.imshow(_img(rec[key][i]))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(label, fontsize=7)
    fig.suptitle(f"{title}; displacement colour = direction, brightness = magnitude (full = {mag:.1f} px, the 99th "
                 "percentile inside the crop); "
                 "alpha^A white = AU field used", fontsize=6)
    path = runs.figure_path(run_dir, name)
    return save_figure(fig, path, dpi=110)
