"""The DR-family network: a UNet that maps one still face to a dynamic representation d_t.

Shared by the Rank-Loss DR (``residual=True``: ``d = centred(I) + f(I)``, f's last layer zero-initialised so
training starts at the still-image floor) and the DI-target baselines (``residual=False``: ``d = f(I)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facedyn.config import TrainConfig, option
from facedyn.dr.rank_loss import centred
from facedyn.errors import ConfigError
from facedyn.method import Network
from facedyn.nn.unet import UNet

#: Which Eq. 2 pairs a network's DR is meant to rank: all of them (the DR), those before the centre
#: (a forward-DI target) or those after it (a backward-DI target).
PAIR_SIDES = ("all", "before", "after")


@dataclass
class WindowUNetConfig(TrainConfig):
    """Settings shared by every DR-family method: the window and the UNet."""

    T: int = option(5, "Window half-length: 2T+1 frames around the centre frame.", minimum=1)
    S: int = option(2, "Stride between window frames, in frames at 25 fps (scaled by each clip's fps).", minimum=1)
    depth: int = option(4, "UNet levels (the crop size must be divisible by 2^depth).", minimum=1)
    width: int = option(16, "UNet base width (paper: 64).", minimum=1)
    norm: str = option("batch", "UNet normalisation.", ("batch", "instance", "none"))


class DRNet(Network):
    """``(B, 3, H, W)`` face in [0, 1] → DR ``(B, 3, H, W)`` (unconstrained float).

    ``residual``: ``d = centred(I) + f(I)`` with f's last layer starting at zero, so an untrained net
    is exactly the still-image floor ``centred(I)`` (the image minus its own per-channel mean over all
    pixels; on real aligned faces this ranks 78 % of pairs at T=5, S=2, against 65 % for the mean over
    the face hull only, measured on the talking clips). Otherwise ``d = f(I)``. ``f`` sees ``2I − 1``.
    ``pair_side`` says which Eq. 2 pairs the DR is meant to rank (see :data:`PAIR_SIDES`).
    """

    output_names = ("dr",)

    def __init__(self, depth: int = 4, width: int = 16, norm: str = "batch", residual: bool = True,
                 pair_side: str = "all", in_channels: int = 3) -> None:
        super().__init__()
        if pair_side not in PAIR_SIDES:
            raise ConfigError(f"pair_side must be one of {PAIR_SIDES}, got {pair_side!r}")
        self.residual = residual
        self.pair_side = pair_side
        self.unet = UNet(in_channels=in_channels, out_channels=3, depth=depth, width=width, norm=norm,
                         final_zero_init=residual)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f = self.unet(images * 2.0 - 1.0)
        return centred(images) + f if self.residual else f

    def dr(self, images: torch.Tensor) -> torch.Tensor:
        """The DR ``(B, 3, H, W)`` of faces ``(B, 3, H, W)`` in [0, 1]."""
        return self(images)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The flattened DR, ``(B, 3·H·W)``."""
        return self(images).flatten(1)

    def outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"dr": self(images)}


def build_drnet(cfg: WindowUNetConfig, size: int, residual: bool, pair_side: str = "all") -> DRNet:
    """The DR-family network for crops of ``size`` px; ConfigError when the UNet cannot halve the size."""
    if size % (2 ** cfg.depth):
        raise ConfigError(f"the dataset's crop size {size} must be divisible by 2^depth = {2 ** cfg.depth}; "
                          "use a smaller --depth or prepare the data with another --size")
    return DRNet(depth=cfg.depth, width=cfg.width, norm=cfg.norm, residual=residual, pair_side=pair_side)
