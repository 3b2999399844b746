"""Training DR models with the Rank Loss (dr-paper.txt §3.2), on the shared loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facedyn import __version__
from facedyn.config import DRConfig
from facedyn.data.store import ClipDataset
from facedyn.data.windows import WindowDataset
from facedyn.dr.model import build_net
from facedyn.dr.rank_loss import calibrate_theta, rank_loss, ranking_accuracy
from facedyn.errors import ConfigError, DatasetError
from facedyn.train.loop import LoopConfig, SingleNetMethod, fit


def augment_windows(window: torch.Tensor, flip: float = 0.5, gain: float = 0.2, bias: float = 0.05) -> torch.Tensor:
    """Per-sample random horizontal flip and brightness/contrast change of a whole window.

    ``window`` ``(B, N, C, H, W)`` in [0, 1]. The same transform applies to every frame of a sample, so the
    temporal order (what the Rank Loss learns) is untouched; pixels outside the face stay zero. Uses the
    global torch RNG (seeded by the loop).
    """
    B = window.shape[0]
    dev = window.device
    flipped = torch.rand(B, device=dev) < flip
    out = torch.where(flipped.view(B, 1, 1, 1, 1), window.flip(-1), window)
    g = 1 + gain * (2 * torch.rand(B, 1, 1, 1, 1, device=dev) - 1)
    b = bias * (2 * torch.rand(B, 1, 1, 1, 1, device=dev) - 1)
    face = (out.amax(dim=2, keepdim=True) > 0).to(out.dtype)
    return ((out * g + b) * face).clamp(0, 1)


class DRMethod(SingleNetMethod):
    """Rank-Loss training of a DR network: batch ``centre (B,3,H,W)``, ``window (B,2T+1,3,H,W)``."""

    select_metric = "acc"
    select_mode = "max"

    def __init__(self, net: nn.Module, cfg: DRConfig) -> None:
        super().__init__(net)
        self.cfg = cfg

    def losses(self, batch: dict[str, Any], group: str) -> dict[str, torch.Tensor]:
        window = augment_windows(batch["window"]) if self.cfg.augment else batch["window"]
        T = window.shape[1] // 2
        d = self.net(window[:, T])
        loss = rank_loss(d, window, theta=float(self.cfg.theta or 0.0), gamma=self.cfg.gamma,
                         epsilon=self.cfg.epsilon, normalize_pairs=self.cfg.normalize_pairs)
        with torch.no_grad():
            acc = ranking_accuracy(d, window).mean()
        return {"loss": loss, "acc": acc}

    def validate(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        d = self.net(batch["centre"])
        return {"acc": ranking_accuracy(d, batch["window"])}


def window_sets(data: str | Path, T: int, S: int, val_split: str = "val",
                train_every: int = 1, val_every: int = 2) -> tuple[WindowDataset, WindowDataset | None]:
    """Training windows (split ``train``) and validation windows (held-out subjects)."""
    ds = ClipDataset(data)
    train = WindowDataset(ds, T, S, split="train", every=train_every)
    if len(train) == 0:
        raise DatasetError(f"{ds.path}: no training window at T={T}, S={S}; use more or longer clips, or smaller T/S")
    val = None
    if any(c.get("split") == val_split for c in ds.index["clips"].values()):
        val = WindowDataset(ds, T, S, split=val_split, every=val_every)
    return train, val


def calibrate_theta_for(train: WindowDataset, net: nn.Module, n_windows: int = 64, seed: int = 0) -> float:
    """θ so that a random DR with the per-element std of the untrained network's output clears it on
    fewer than 0.1 % of the Eq. 2 pairs of real training windows (dr-paper.txt §4.2)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(train), generator=g)[:n_windows].tolist()
    wins = torch.stack([train[i]["window"] for i in idx])
    with torch.no_grad():
        net.eval()
        d0 = net(wins[:, train.T])
        net.train()
    scale = float(d0.std()) or 1.0
    return float(calibrate_theta(wins, scale=scale, generator=g))


def train_dr(
    data: str | Path,
    out: str | Path,
    cfg: DRConfig,
    loop: LoopConfig,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train one DR-family model (``cfg.method``) on ``data`` into the run directory ``out``."""
    if cfg.method != "dr":
        from facedyn.dr.baselines import train_baseline

        return train_baseline(data, out, cfg, loop, progress=progress)
    if cfg.size % (2 ** cfg.depth):
        raise ConfigError(f"image size {cfg.size} must be divisible by 2^depth = {2 ** cfg.depth}")
    torch.manual_seed(loop.seed)
    train, val = window_sets(data, cfg.T, cfg.S)
    size = train.clips[0].frames.shape[1]
    if size != cfg.size:
        cfg.size = int(size)
    net = build_net(cfg)
    if cfg.theta is None:
        cfg.theta = calibrate_theta_for(train, net, seed=loop.seed)
    loop.out = str(out)
    saved = {"method": cfg.method, "dr": cfg.to_dict(), "data": str(Path(data).resolve()),
             "n_train_windows": len(train), "n_val_windows": len(val) if val is not None else 0,
             "facedyn_version": __version__}
    return fit(DRMethod(net, cfg), train, val, loop, saved, progress=progress)
