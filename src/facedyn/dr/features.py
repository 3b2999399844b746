"""``vgg_features``: facedyn's own VGG-16-layout feature network, for the perceptual baseline ``unet_p``.

The perceptual loss of Johnson et al. needs VGG-16 features. facedyn never downloads weights: a user
with a torchvision VGG-16 file gives it to ``unet_p --features FILE``; otherwise this method trains a
VGG-16-layout network of reduced width (default 16 channels in the first block; VGG-16 has 64) as a
denoising autoencoder on the images the perceptual loss will compare: the training faces
(ImageNet-normalised) and the normalised DI targets. The stack up to ``relu4_3`` is the encoder,
:class:`~facedyn.nn.vgg.VGGDecoder` reconstructs the clean input from ``relu4_3``; ``unet_p --features
RUN`` then uses the frozen stack.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from facedyn.config import TrainConfig, option
from facedyn.dr.dynamic_image import TARGETS, make_target
from facedyn.method import Method, Network, Selection, register_method
from facedyn.nn.vgg import DEFAULT_LAYERS, IMAGENET_MEAN, IMAGENET_STD, LAYERS, VGG16Features, VGGDecoder
from facedyn.precision import mse_loss


@dataclass
class FeatureNetConfig(TrainConfig):
    """The self-trained VGG-16-layout feature network (a denoising autoencoder)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "paper": {"width": 64}}

    epochs: int = option(3, "Epochs.")
    steps_per_epoch: int | None = option(100, "Optimiser steps per epoch.")
    betas: tuple[float, float] = option((0.9, 0.999), "Adam betas.")
    width: int = option(16, "Channels of the first VGG block (VGG-16: 64).")
    noise: float = option(0.2, "Std of the Gaussian noise added to the input (the target is the clean input).")
    target: str = option("di", "Which dynamic image the feature net also learns to reconstruct.", TARGETS)
    T: int = option(5, "Window half-length of the DI targets.")
    S: int = option(2, "Window stride of the DI targets (frames at 25 fps).")


class VGGFeatureNet(Network):
    """VGG-16 stack (``vgg``) + decoder; ``encode`` = global average of the ``relu4_3`` maps, ``(N, 8·width)``."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.vgg = VGG16Features(width=width, layers=DEFAULT_LAYERS)
        self.decoder = VGGDecoder(width)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` on the normalised input scale → its reconstruction from ``relu4_3``."""
        return self.decoder(self.vgg.features[: LAYERS["relu4_3"] + 1](x))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.vgg(images, normalize=True)[-1].mean(dim=(2, 3))


@register_method("vgg_features")
class FeatureNetMethod(Method):
    """Self-trained VGG-16-layout feature network for unet_p (denoising autoencoder; nothing downloaded)."""

    Config = FeatureNetConfig
    frames = "window"
    selection = Selection("mse", "min", initial=False)

    def build(self) -> VGGFeatureNet:
        return VGGFeatureNet(self.cfg.width)

    def _inputs(self, batch: dict[str, Any]) -> torch.Tensor:
        """ImageNet-normalised centre faces and normalised DI targets, ``(2B, 3, H, W)``."""
        mean = torch.tensor(IMAGENET_MEAN, device=batch["centre"].device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=batch["centre"].device).view(1, 3, 1, 1)
        return torch.cat([(batch["centre"] - mean) / std, make_target(batch["window"], self.cfg.target)])

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        x = self._inputs(batch)
        noisy = x + self.cfg.noise * torch.randn_like(x)
        return {"loss": mse_loss(self.net.reconstruct(noisy), x)}

    def validation_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        x = self._inputs(batch)
        return {"mse": (self.net.reconstruct(x) - x).pow(2).flatten(1).mean(dim=1)}
