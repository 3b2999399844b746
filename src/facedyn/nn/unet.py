"""UNet (Ronneberger et al., 2015): the DR generator of dr-paper.txt §4.2 and the baselines' generator.

Encoder: ``depth + 1`` levels of (3×3 conv + norm + ReLU) × 2, max-pooling between levels, widths
``width · 2^k`` (k = 0..depth). Decoder: per level an upsampling ×2 (2×2 transposed conv, or
bilinear + 3×3 conv), concatenation with the encoder's skip, then the double conv; a final 1×1 conv
maps to ``out_channels``. "Same" padding, so the output has the input's size; inputs need ``H`` and
``W`` divisible by ``2^depth``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from facedyn.errors import ConfigError

Norm = Literal["batch", "instance", "none"]
Up = Literal["transpose", "bilinear"]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


class DoubleConv(nn.Sequential):
    """(3×3 conv → norm → ReLU) × 2: ``(B, cin, H, W)`` → ``(B, cout, H, W)``."""

    def __init__(self, cin: int, cout: int, norm: str = "batch") -> None:
        bias = norm == "none"
        super().__init__(
            nn.Conv2d(cin, cout, 3, padding=1, bias=bias), _norm(norm, cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias), _norm(norm, cout), nn.ReLU(inplace=True),
        )


class UpBlock(nn.Module):
    """Upsample ×2 (``cin`` → ``cin // 2`` channels), concatenate the skip, double conv to ``cout``."""

    def __init__(self, cin: int, cout: int, norm: str = "batch", up: str = "transpose") -> None:
        super().__init__()
        half = cin // 2
        if up == "transpose":
            self.up: nn.Module = nn.ConvTranspose2d(cin, half, 2, stride=2)
        else:
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                    nn.Conv2d(cin, half, 3, padding=1))
        self.conv = DoubleConv(half + cout, cout, norm)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet(nn.Module):
    """Encoder/decoder with skip connections; ``(B, in_channels, H, W)`` → ``(B, out_channels, H, W)``.

    Args:
        in_channels, out_channels: channels of input and output (output unconstrained float).
        depth: number of 2× downsamplings (>= 1); ``H`` and ``W`` must be divisible by ``2^depth``.
        width: channels of the first level; level k has ``width · 2^k``.
        norm: ``"batch"``, ``"instance"`` (affine) or ``"none"`` (convs then carry a bias).
        residual_input: add the input to the output (needs ``in_channels == out_channels``).
        final_zero_init: zero the last 1×1 conv's weight and bias, so the net starts as ``f(x) = 0``
            (the DR model uses ``d = centred(I) + f(I)`` and so starts at the still-image floor).
        up: ``"transpose"`` (2×2 transposed conv, as in the original UNet) or ``"bilinear"``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        depth: int = 4,
        width: int = 16,
        norm: Norm = "batch",
        residual_input: bool = False,
        final_zero_init: bool = False,
        up: Up = "transpose",
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ConfigError(f"UNet depth must be >= 1, got {depth}")
        if width < 1 or in_channels < 1 or out_channels < 1:
            raise ConfigError(f"UNet width and channels must be >= 1, got width={width}, "
                              f"in={in_channels}, out={out_channels}")
        if norm not in ("batch", "instance", "none"):
            raise ConfigError(f"UNet norm must be 'batch', 'instance' or 'none', got {norm!r}")
        if up not in ("transpose", "bilinear"):
            raise ConfigError(f"UNet up must be 'transpose' or 'bilinear', got {up!r}")
        if residual_input and in_channels != out_channels:
            raise ConfigError(f"residual_input needs in_channels == out_channels, got {in_channels} and "
                              f"{out_channels}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.depth, self.width = depth, width
        self.residual_input = residual_input
        widths = [width * 2**k for k in range(depth + 1)]
        self.inc = DoubleConv(in_channels, widths[0], norm)
        self.downs = nn.ModuleList(nn.Sequential(nn.MaxPool2d(2), DoubleConv(widths[k - 1], widths[k], norm))
                                   for k in range(1, depth + 1))
        self.ups = nn.ModuleList(UpBlock(widths[k], widths[k - 1], norm, up) for k in range(depth, 0, -1))
        self.outc = nn.Conv2d(widths[0], out_channels, 1)
        if final_zero_init:
            nn.init.zeros_(self.outc.weight)
            nn.init.zeros_(self.outc.bias)

    @property
    def multiple(self) -> int:
        """``H`` and ``W`` must be multiples of this (``2^depth``)."""
        return 2**self.depth

    @classmethod
    def paper(cls, in_channels: int = 3, out_channels: int = 3, **kw: Any) -> UNet:
        """The standard UNet at the paper's 224×224 (dr-paper.txt §4.2): depth 4, width 64 (64…1024)."""
        return cls(in_channels, out_channels, **{"depth": 4, "width": 64, **kw})

    @classmethod
    def cpu(cls, in_channels: int = 3, out_channels: int = 3, **kw: Any) -> UNet:
        """The CPU preset (64 px): depth 4, width 16 (16…256)."""
        return cls(in_channels, out_channels, **{"depth": 4, "width": 16, **kw})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, in_channels, H, W)`` float → ``(B, out_channels, H, W)`` float."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(f"UNet expects (B, {self.in_channels}, H, W), got shape {tuple(x.shape)}")
        H, W = x.shape[-2:]
        m = self.multiple
        if H % m or W % m:
            fix = f"{max(m, H // m * m)}×{max(m, W // m * m)}"
            raise ConfigError(f"UNet of depth {self.depth} needs H and W divisible by {m}, got {H}×{W}; "
                              f"resize or crop the images (e.g. to {fix})")
        skips = [self.inc(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        h = skips.pop()
        for up in self.ups:
            h = up(h, skips.pop())
        out = self.outc(h)
        return out + x if self.residual_input else out
