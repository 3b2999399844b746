"""The pix2pix PatchGAN discriminator (Isola et al., CVPR 2017), 70×70 receptive field by default.

Layout (``n_layers=3``, the paper's 70×70 discriminator, C64-C128-C256-C512)::

    Conv4x4(in, 64, s2) LeakyReLU(0.2)                      (no norm on the first layer)
    Conv4x4(64, 128, s2)  Norm LeakyReLU(0.2)
    Conv4x4(128, 256, s2) Norm LeakyReLU(0.2)
    Conv4x4(256, 512, s1) Norm LeakyReLU(0.2)
    Conv4x4(512, 1, s1)                                    (one logit per patch)

All convolutions have padding 1. Each output logit sees a 70×70 input patch: walking back from the
output, r = 1 → 4 → 7 → 16 → 34 → 70 (``r ← (r − 1)·stride + 4``). As in pix2pix the
discriminator is conditional: its input is the source image concatenated with the (real or
generated) output along channels, hence ``in_channels = 6`` for an RGB image and a 3-channel DR.
On small images (64 px) the receptive field covers most of the image; the model still works.
"""

from __future__ import annotations

import torch
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; use batch, instance or none")


def receptive_field(n_layers: int = 3) -> int:
    """Input pixels (per side) seen by one output logit of :class:`PatchGAN70` (70 for ``n_layers=3``)."""
    strides = [2] * n_layers + [1, 1]
    r = 1
    for s in reversed(strides):
        r = (r - 1) * s + 4
    return r


class PatchGAN70(nn.Module):
    """Conditional PatchGAN discriminator.

    Args:
        in_channels: channels of ``cat([source, output], dim=1)`` (6 for an image and a DR).
        width: channels of the first layer (64 in pix2pix); later layers use ``min(2^n, 8) · width``.
        n_layers: stride-2 layers (3 → 70×70 patches, see :func:`receptive_field`).
        norm: ``batch`` (pix2pix default), ``instance`` or ``none``; convolutions followed by a
            batch norm have no bias (as in pix2pix).

    Input ``(B, in_channels, H, W)`` float; output ``(B, 1, H', W')`` real/fake logits, one per patch
    (``H' = H/8 − 2`` for ``n_layers=3``).
    """

    def __init__(self, in_channels: int = 6, width: int = 64, n_layers: int = 3, norm: str = "batch") -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        bias = norm != "batch"
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [nn.Conv2d(width * prev, width * mult, 4, stride=stride, padding=1, bias=bias),
                       _norm(norm, width * mult), nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(width * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)
        self.n_layers = n_layers

    @property
    def receptive_field(self) -> int:
        return receptive_field(self.n_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
