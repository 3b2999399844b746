"""Input images of the face stage: RGB ``uint8 (H, W, 3)``, grayscale ``(H, W)`` accepted."""

from __future__ import annotations

import numpy as np

__all__ = ["as_rgb"]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """``image`` as a C-contiguous RGB ``uint8 (H, W, 3)``; a gray ``(H, W)`` becomes 3 equal channels.

    Raises:
        ValueError: not ``uint8``, or neither ``(H, W, 3)`` nor ``(H, W)``.
    """
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"image must be (H, W, 3) RGB or (H, W) gray, got {img.shape}")
    return np.ascontiguousarray(img)
