"""The DR network: a UNet that maps one still face to its dynamic representation d_t."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from facedyn.config import DRConfig
from facedyn.dr.rank_loss import centred
from facedyn.nn.unet import UNet


def face_mask(images: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` bool: pixels inside the face (aligned crops are zero outside the hull)."""
    return images.amax(dim=1, keepdim=True) > 0


class DRNet(nn.Module):
    """``d = centred(I) + f(I)`` (``residual=True``) or ``d = f(I)``.

    Input ``(B, 3, H, W)`` float in [0, 1]; output ``(B, 3, H, W)`` unconstrained float. With
    ``residual`` the last UNet layer starts at zero, so an untrained net is exactly the
    still-image floor ``centred(I)``: the image minus its own per-channel mean over all pixels (as
    DESIGN.md defines it; on real aligned faces this ranks 78 % of pairs at T=5, S=2, against 65 % for
    the mean over the face hull only, measured on the talking clips).
    """

    def __init__(self, cfg: DRConfig) -> None:
        super().__init__()
        self.residual = cfg.residual
        self.unet = UNet(in_channels=3, out_channels=3, depth=cfg.depth, width=cfg.width, norm=cfg.norm,
                         final_zero_init=cfg.residual)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        f = self.unet(images * 2.0 - 1.0)
        if not self.residual:
            return f
        return centred(images) + f


def build_net(cfg: DRConfig) -> nn.Module:
    """The generator network of any DR-family method (Rank-Loss DR or a DI-target baseline)."""
    if cfg.method == "dr":
        return DRNet(cfg)
    return DRNet(replace(cfg, residual=False))
