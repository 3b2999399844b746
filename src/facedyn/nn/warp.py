"""Warping images by per-pixel displacement fields (bilinear ``grid_sample``), shared by TCAE and FAb-Net.

A displacement field ``flow`` ``(B, 2, H, W)`` holds, in pixels, ``(dx, dy)`` per output pixel: the warped
image at ``(x, y)`` samples the source at ``(x + dx, y + dy)`` (backward warping, as both papers' decoders
predict where each output pixel comes from). Pixel centres are integers ``0..W-1`` (``align_corners=True``),
so a zero field reproduces the source exactly and an integer field shifts it by whole pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from facedyn.errors import ConfigError


def base_grid(B: int, H: int, W: int, device: torch.device | None = None,
              dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Pixel coordinates ``(B, 2, H, W)``: channel 0 is ``x`` (column), channel 1 is ``y`` (row)."""
    ys, xs = torch.meshgrid(torch.arange(H, device=device, dtype=dtype), torch.arange(W, device=device, dtype=dtype),
                            indexing="ij")
    return torch.stack([xs, ys]).unsqueeze(0).expand(B, 2, H, W)


def warp(image: torch.Tensor, flow: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """``image`` ``(B, C, H, W)`` sampled at ``(x + dx, y + dy)`` for ``flow`` ``(B, 2, H, W)`` in pixels.

    Bilinear; outside the image the border pixels are repeated (``padding_mode="border"``) or zeros
    (``"zeros"``). Differentiable with respect to both the image and the flow. Computed in float32 (also
    under autocast and for a bfloat16 ``flow``); the result has ``image``'s dtype.
    """
    if image.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[0] != image.shape[0] \
            or flow.shape[2:] != image.shape[2:]:
        raise ConfigError(f"warp needs image (B, C, H, W) and flow (B, 2, H, W) of the same B, H, W; got "
                          f"{tuple(image.shape)} and {tuple(flow.shape)}")
    B, _, H, W = image.shape
    # Sampling positions and the sampling itself in float32 whatever the input or autocast dtype: under bf16
    # autocast the decoders' displacements are bfloat16, whose 8 significant bits round x + dx to steps of
    # 0.25 px for x in 32..63 (0.5 px from 64), so a 0.1 px displacement vanished in half the columns of a
    # 64 px crop and the gradient with respect to the displacement lost half its direction (cosine 0.48 with
    # float32's; docs/results/tcae/diagnosis.md).
    with torch.autocast(device_type=flow.device.type, enabled=False):
        pos = base_grid(B, H, W, flow.device, torch.float32) + flow.float()
        scale = torch.tensor([2.0 / max(W - 1, 1), 2.0 / max(H - 1, 1)], device=flow.device, dtype=torch.float32)
        grid = (pos * scale.view(1, 2, 1, 1) - 1.0).permute(0, 2, 3, 1)
        out = F.grid_sample(image.float(), grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)
    return out.to(image.dtype)
