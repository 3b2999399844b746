"""The smallest complete facedyn method, in one file: the method platform's acceptance test.

It predicts a face's mean brightness from its pixels. Importing this module registers it; nothing
else in facedyn is edited to add it (``tests/test_platform.py`` trains, evaluates, loads and runs it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facedyn.config import TrainConfig, option
from facedyn.method import Method, Network, Selection, register_method


@dataclass
class ToyConfig(TrainConfig):
    epochs: int = option(2, "Epochs.")
    dim: int = option(8, "Embedding size.")


class ToyNet(Network):
    output_names = ("brightness", "embedding")

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, dim, 3, stride=2, padding=1)
        self.head = nn.Linear(dim, 1)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(images)).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(images))[:, 0]

    def outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"brightness": self(images), "embedding": self.encode(images)}


@register_method("toy")
class Toy(Method):
    """Toy: predicts a face's mean brightness (the platform's example method)."""

    Config = ToyConfig
    frames = "frame"
    selection = Selection("mse", "min")

    def build(self) -> ToyNet:
        return ToyNet(self.cfg.dim)

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        x = batch["image"]
        return {"loss": F.mse_loss(self.net(x), x.mean(dim=(1, 2, 3)))}

    def validation_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x = batch["image"]
        return {"mse": (self.net(x) - x.mean(dim=(1, 2, 3))).pow(2)}
