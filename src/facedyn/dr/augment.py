"""Window-consistent augmentation: the same random transform for every frame of a window.

The Rank Loss learns the temporal order of a window's frames, so a transform must not differ between the
frames of one window (that would be motion); it may differ between windows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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


def jitter_windows(window: torch.Tensor, scale: float, shift: float, rotation: float,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Each window re-aligned by a random similarity: scale in ``1 ± scale``, shift in ``± shift`` px (each axis),
    rotation in ``± rotation`` degrees (uniform), about the crop centre, the same for all frames of a window.

    ``window`` ``(B, N, C, H, W)`` in [0, 1] → same shape (zeros where the transform leaves the crop).
    """
    B, N, C, H, W = window.shape
    u = torch.rand(B, 4, generator=generator).to(window.device) * 2 - 1
    s = 1 + scale * u[:, 0]
    a = torch.deg2rad(rotation * u[:, 1])
    tx, ty = shift * u[:, 2] * 2 / W, shift * u[:, 3] * 2 / H  # normalised coordinates span 2
    cos, sin = torch.cos(a) / s, torch.sin(a) / s  # output -> input mapping (inverse of the image transform)
    theta = torch.stack([torch.stack([cos, -sin, -tx], 1), torch.stack([sin, cos, -ty], 1)], 1)
    grid = F.affine_grid(theta, [B, C, H, W], align_corners=False)
    grid = grid.repeat_interleave(N, dim=0)
    out = F.grid_sample(window.reshape(B * N, C, H, W), grid, mode="bilinear",
                                          padding_mode="zeros", align_corners=False)
    return out.reshape(B, N, C, H, W)
