"""Stacked hourglass network (Newell et al., ECCV 2016): the backbone of heatmap regression.

Building blocks only; the AU model that uses them is :mod:`facedyn.tasks.au_intensity`.

* :class:`Residual`: pre-activation bottleneck residual block (BN-ReLU-conv 1×1, 3×3, 1×1; a 1×1
  projection on the skip path when the width changes).
* :class:`Hourglass`: one symmetric encoder–decoder of ``depth`` levels at constant width: at each
  level a residual skip branch at the current resolution and a max-pooled branch that recurses, the
  two added after nearest-neighbour upsampling. Input and output ``(B, C, H, W)``; ``H`` and ``W`` must be
  divisible by ``2**depth``.
* :class:`StackedHourglass`: a stem (7×7 conv at stride ``stem_stride``, residual), then ``stacks``
  hourglasses; each produces ``out_channels`` heatmaps at ``1/stem_stride`` of the input resolution,
  and (except the last) feeds them back into the next through 1×1 convolutions (intermediate
  supervision). :meth:`StackedHourglass.forward` returns every stack's heatmaps, the last one is the
  prediction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Hourglass", "Residual", "StackedHourglass"]


class Residual(nn.Module):
    """Pre-activation bottleneck block ``(B, c_in, H, W) → (B, c_out, H, W)``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = max(1, c_out // 2)
        self.body = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(inplace=True), nn.Conv2d(c_in, mid, 1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, c_out, 1),
        )
        self.skip: nn.Module = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels at width ``width``: ``(B, width, H, W) → (B, width, H, W)``."""

    def __init__(self, depth: int, width: int) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"hourglass depth must be >= 1, got {depth}")
        self.depth = depth
        self.skip = Residual(width, width)
        self.down = Residual(width, width)
        self.inner: nn.Module = Hourglass(depth - 1, width) if depth > 1 else Residual(width, width)
        self.up = Residual(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(x)
        y = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return skip + F.interpolate(y, size=skip.shape[-2:], mode="nearest")


class StackedHourglass(nn.Module):
    """``stacks`` hourglasses → heatmaps.

    Args:
        in_channels: input channels (3 for an image, 6/9 for a multi-level DR).
        out_channels: heatmaps per stack (one per AU).
        width: feature channels inside the hourglasses.
        depth: levels of each hourglass.
        stacks: number of hourglasses (intermediate supervision between them).
        stem_stride: 1, 2 or 4: the heatmaps are ``H / stem_stride`` by ``W / stem_stride``.

    ``forward(x)``: ``x`` ``(B, in_channels, H, W)`` → list of ``stacks`` tensors ``(B, out_channels, H/s, W/s)``.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int = 32, depth: int = 3, stacks: int = 1,
                 stem_stride: int = 2) -> None:
        super().__init__()
        if stem_stride not in (1, 2, 4):
            raise ValueError(f"stem_stride must be 1, 2 or 4, got {stem_stride}")
        if stacks < 1:
            raise ValueError(f"stacks must be >= 1, got {stacks}")
        self.stem_stride = stem_stride
        self.depth = depth
        conv_stride = 1 if stem_stride == 1 else 2
        stem: list[nn.Module] = [nn.Conv2d(in_channels, width, 7, stride=conv_stride, padding=3, bias=False),
                                 nn.BatchNorm2d(width), nn.ReLU(inplace=True), Residual(width, width)]
        if stem_stride == 4:
            stem += [nn.MaxPool2d(2), Residual(width, width)]
        self.stem = nn.Sequential(*stem)
        self.hourglasses = nn.ModuleList([Hourglass(depth, width) for _ in range(stacks)])
        self.features = nn.ModuleList([
            nn.Sequential(Residual(width, width), nn.Conv2d(width, width, 1, bias=False), nn.BatchNorm2d(width),
                          nn.ReLU(inplace=True)) for _ in range(stacks)])
        self.heads = nn.ModuleList([nn.Conv2d(width, out_channels, 1) for _ in range(stacks)])
        self.feed_features = nn.ModuleList([nn.Conv2d(width, width, 1) for _ in range(stacks - 1)])
        self.feed_heatmaps = nn.ModuleList([nn.Conv2d(out_channels, width, 1) for _ in range(stacks - 1)])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        need = self.stem_stride * 2 ** self.depth
        if x.shape[-1] % need or x.shape[-2] % need:
            raise ValueError(f"input {tuple(x.shape[-2:])} must be divisible by {need} (stem stride x 2^depth)")
        h = self.stem(x)
        outs = []
        for i, hg in enumerate(self.hourglasses):
            f = self.features[i](hg(h))
            heat = self.heads[i](f)
            outs.append(heat)
            if i < len(self.hourglasses) - 1:
                h = h + self.feed_features[i](f) + self.feed_heatmaps[i](heat)
        return outs
