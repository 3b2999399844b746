"""Python API: load a trained run and compute representations (what the CLI's ``infer`` uses)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from facedyn.config import DRConfig
from facedyn.errors import ConfigError, NoFaceError


class DRModel:
    """A trained DR-family network, callable on aligned faces or raw images.

    ``model(images)`` accepts:
      * a float tensor ``(B, 3, H, W)`` in [0, 1] of aligned, masked faces at the model's size;
      * a uint8 array ``(B, H, W, 3)`` / ``(H, W, 3)`` of aligned faces at the model's size;
      * raw RGB uint8 images of any size (``(H, W, 3)`` or a list of them), which it detects,
        aligns and masks itself (``aligned=False`` forces this path).
    It returns the DRs, float ``(B, 3, H, W)`` (unconstrained values).
    """

    def __init__(self, net: torch.nn.Module, cfg: DRConfig, device: torch.device, mask: bool = True) -> None:
        self.net, self.cfg, self.device, self.mask = net, cfg, device, mask
        self._landmarker: Any = None

    @property
    def size(self) -> int:
        return self.cfg.size

    def align(self, image: np.ndarray) -> np.ndarray:
        """Raw RGB uint8 ``(H, W, 3)`` → aligned, masked face uint8 ``(size, size, 3)`` (NoFaceError if none)."""
        from facedyn.data.faces import FaceLandmarker, align_face

        if self._landmarker is None:
            self._landmarker = FaceLandmarker()
        lms = self._landmarker(image)
        if lms is None:
            raise NoFaceError("no face found in the image; give a photo with a visible, roughly frontal face")
        return align_face(image, lms, size=self.size, mask=self.mask).image

    def to_input(self, images: Any, aligned: bool | None = None) -> torch.Tensor:
        if isinstance(images, torch.Tensor):
            x = images.float()
            if x.ndim == 3:
                x = x[None]
            if x.shape[1] != 3 or x.shape[-1] != self.size:
                raise ConfigError(f"tensor input must be (B, 3, {self.size}, {self.size}), got {tuple(x.shape)}")
            return x
        arrs = list(images) if isinstance(images, list | tuple) else (
            [images] if np.asarray(images).ndim == 3 else list(np.asarray(images)))
        out = []
        for a in arrs:
            a = np.asarray(a)
            if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
                raise ConfigError(f"images must be RGB uint8 (H, W, 3), got {a.dtype} {a.shape}")
            is_aligned = aligned if aligned is not None else a.shape[:2] == (self.size, self.size)
            out.append(a if is_aligned else self.align(a))
        t = torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0
        return t

    @torch.no_grad()
    def __call__(self, images: Any, aligned: bool | None = None, batch_size: int = 64) -> torch.Tensor:
        x = self.to_input(images, aligned)
        outs = [self.net(x[i:i + batch_size].to(self.device)).cpu() for i in range(0, len(x), batch_size)]
        return torch.cat(outs)


def load(path: str | Path, device: str = "auto") -> DRModel:
    """Load a trained run directory (``config.json`` + ``checkpoints/best.safetensors``)."""
    from facedyn.eval.ranking import load_run
    from facedyn.train.loop import resolve_device

    dev = resolve_device(device)
    net, cfg = load_run(path, dev)
    return DRModel(net, cfg, dev)
