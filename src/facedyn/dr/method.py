"""The Dynamic Representation method (dr-paper.txt §3): a UNet trained with the Rank Loss.

Batches are windows (``centre (B, 3, H, W)``, ``window (B, 2T+1, 3, H, W)`` in [0, 1]); the loss is
Eq. 3 over the Eq. 2 pairs of each window; validation reports the ranking accuracy on held-out people
and selects the checkpoint by it (epoch 0, the untrained network = the still-image floor, included).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch.utils.data import Dataset

from facedyn.config import option
from facedyn.dr.augment import augment_windows, jitter_windows
from facedyn.dr.model import DRNet, WindowUNetConfig, build_drnet
from facedyn.dr.rank_loss import calibrate_theta, rank_loss, ranking_accuracy
from facedyn.method import Method, Selection, register_method


@dataclass
class DRConfig(WindowUNetConfig):
    """The DR: window, UNet, Rank Loss (Eq. 3) and augmentation."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "paper": {"width": 64}}

    residual: bool = option(True, "d = centred(I) + f(I) with f zero-initialised (training starts at the floor).")
    theta: float | None = option(None, "Rank Loss margin (default: calibrated so a random DR clears it on < 0.1 % "
                                       "of training pairs).")
    gamma: float = option(0.0, "Weight of gamma*||d||^2 in Eq. 3.")
    epsilon: float = option(0.0, "Relaxation epsilon of Eq. 3.")
    normalize_pairs: bool = option(False, "Divide the hinge sum by the number of pairs.")
    augment: bool = option(True, "Random flips and brightness/contrast, the same for a whole window.")
    per_person: int | None = option(None, "Train on at most this many windows per person (evenly spaced), so that "
                                          "people with long clips do not dominate; default: all windows.")
    align_jitter: tuple[float, float, float] = option(
        (0.0, 0.0, 0.0), "Random similarity per training window, bounds SCALE SHIFT_PX ROTATION_DEG (as if another "
        "aligner's template had been used); 0 0 0: off.")


def calibrate_theta_for(train: Dataset, net: torch.nn.Module, n_windows: int = 64, seed: int = 0) -> float:
    """θ so that a random DR with the per-element std of the untrained network's output clears it on
    fewer than 0.1 % of the Eq. 2 pairs of real training windows (dr-paper.txt §4.2)."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(train), generator=g)[:n_windows].tolist()  # type: ignore[arg-type]
    wins = torch.stack([train[i]["window"] for i in idx])
    T = wins.shape[1] // 2
    was_training = net.training
    with torch.no_grad():
        net.eval()
        d0 = net(wins[:, T])
        net.train(was_training)
    scale = float(d0.std()) or 1.0
    return float(calibrate_theta(wins, scale=scale, generator=g))


@register_method("dr")
class DRMethod(Method):
    """Dynamic Representation: UNet from one still face, trained with the Rank Loss (dr-paper.txt Eq. 3)."""

    Config = DRConfig
    frames = "window"
    selection = Selection("acc", "max", initial=True)

    def build(self) -> DRNet:
        return build_drnet(self.cfg, self.data.size, residual=self.cfg.residual)

    def dataset(self, store: Any, split: str, seed: int = 0) -> Dataset:
        if split == "train" and self.cfg.per_person is not None:
            from facedyn.data.windows import WindowDataset

            return WindowDataset(store, self.cfg.T, self.cfg.S, split="train", per_subject=self.cfg.per_person)
        return super().dataset(store, split, seed)

    def setup(self, train_set: Dataset, run_dir: Path) -> DRConfig:
        if self.cfg.theta is None:
            self.cfg = replace(self.cfg, theta=calibrate_theta_for(train_set, self.net, seed=self.cfg.seed))
        return self.cfg

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        window = batch["window"]
        if any(self.cfg.align_jitter):
            window = jitter_windows(window, *self.cfg.align_jitter)
        if self.cfg.augment:
            window = augment_windows(window)
        T = window.shape[1] // 2
        d = self.net(window[:, T])
        loss = rank_loss(d, window, theta=float(self.cfg.theta or 0.0), gamma=self.cfg.gamma,
                         epsilon=self.cfg.epsilon, normalize_pairs=self.cfg.normalize_pairs)
        with torch.no_grad():
            acc = ranking_accuracy(d, window).mean()
        return {"loss": loss, "acc": acc}

    def validation_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"acc": ranking_accuracy(self.net(batch["centre"]), batch["window"])}
