"""VGG-16 feature network for the perceptual loss of Johnson et al. (ECCV 2016).

:class:`VGG16Features` is the convolutional part of VGG-16 laid out exactly as torchvision's
``vgg16().features`` (``features.0`` … ``features.30``; convolutions at indices 0, 2, 5, 7, 10, 12,
14, 17, 19, 21, 24, 26, 28), so a torchvision ``vgg16`` state dict loads into it unchanged
(:func:`load_vgg16_weights`; classifier keys are ignored). It returns the activations
``relu1_2`` (index 3), ``relu2_2`` (8), ``relu3_3`` (15) and ``relu4_3`` (22).

facedyn never downloads weights. Where the user has no VGG-16 file, the ``vgg_features`` method
(:mod:`facedyn.dr.features`) trains a VGG-16-layout network of reduced width as a denoising
autoencoder: this stack up to ``relu4_3`` is the encoder and :class:`VGGDecoder` reconstructs the
clean input from ``relu4_3``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from facedyn.errors import CheckpointError, InputNotFoundError
from facedyn.precision import float32_math

#: ImageNet channel statistics used by torchvision's VGG-16 (inputs in [0, 1], RGB).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Named ReLU outputs → index in ``features``.
LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22}
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
#: VGG-16 configuration "D": channel multipliers of the base width, "M" = 2×2 max-pool.
_CFG: tuple[int | str, ...] = (1, 1, "M", 2, 2, "M", 4, 4, 4, "M", 8, 8, 8, "M", 8, 8, 8, "M")
#: Indices of the convolutions in ``features`` (torchvision layout).
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


class VGG16Features(nn.Module):
    """The VGG-16 convolutional stack, returning the ReLU activations named in ``layers``.

    Args:
        width: channels of the first block (64 in VGG-16; the self-trained fallback uses less).
        layers: which of ``relu1_2, relu2_2, relu3_3, relu4_3`` :meth:`forward` returns.

    Input ``(B, 3, H, W)``; with ``normalize=True`` a float image in [0, 1] RGB (ImageNet mean/std
    are subtracted/divided inside), with ``normalize=False`` an input already on that normalised
    scale (about zero mean, unit std per channel). Output: list of ``(B, C_l, H / 2^k, W / 2^k)``
    activations in the order of ``layers`` (``C_l`` = 64, 128, 256, 512 at ``width=64``; ``k`` = 0..3).
    """

    def __init__(self, width: int = 64, layers: Sequence[str] = DEFAULT_LAYERS) -> None:
        super().__init__()
        for name in layers:
            if name not in LAYERS:
                raise ValueError(f"unknown VGG layer {name!r}; choose from {', '.join(LAYERS)}")
        self.width = width
        self.layers = tuple(layers)
        mods: list[nn.Module] = []
        c_in = 3
        for v in _CFG:
            if v == "M":
                mods.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                c_out = int(v) * width
                mods += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                c_in = c_out
        self.features = nn.Sequential(*mods)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def channels(self) -> list[int]:
        """Channels of each returned activation."""
        return [self.features[LAYERS[n] - 1].out_channels for n in self.layers]  # type: ignore[union-attr]

    def forward(self, x: torch.Tensor, normalize: bool = True) -> list[torch.Tensor]:
        if normalize:
            x = (x - self.mean) / self.std
        want = {LAYERS[n]: i for i, n in enumerate(self.layers)}
        out: list[torch.Tensor | None] = [None] * len(self.layers)
        last = max(want)
        for i, m in enumerate(self.features):
            x = m(x)
            if i in want:
                out[want[i]] = x
            if i >= last:
                break
        return [o for o in out if o is not None]

    def freeze(self) -> VGG16Features:
        """Eval mode, no gradients to its weights (gradients still flow to the input)."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self


@float32_math
def perceptual_loss(
    feats_pred: Sequence[torch.Tensor],
    feats_target: Sequence[torch.Tensor],
    weights: Sequence[float] | None = None,
) -> torch.Tensor:
    """Feature reconstruction loss of Johnson et al.: ``sum_j w_j · mean((phi_j(y_hat) − phi_j(y))^2)``.

    The mean over ``C_j · H_j · W_j`` (and the batch) is their ``1 / (C_j H_j W_j) ||·||²``.
    Args:
        feats_pred, feats_target: lists of ``(B, C_j, H_j, W_j)`` activations, same layers.
        weights: per-layer weights (1 each by default).
    Returns: scalar tensor.
    """
    if len(feats_pred) != len(feats_target):
        raise ValueError(f"{len(feats_pred)} predicted vs {len(feats_target)} target feature maps")
    w = list(weights) if weights is not None else [1.0] * len(feats_pred)
    total = feats_pred[0].new_zeros(())
    for wj, p, t in zip(w, feats_pred, feats_target, strict=True):
        total = total + wj * F.mse_loss(p, t)
    return total


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__}); "
                                  "give torchvision vgg16 weights (.pth or .safetensors)") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(f"{path}: not a loadable state dict ({type(e).__name__}); give a torchvision vgg16 "
                              "state dict saved with torch.save(model.state_dict()) or as .safetensors") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors; "
                              "give a torchvision vgg16 state dict")
    return obj


def load_vgg16_weights(path: str | Path, layers: Sequence[str] = DEFAULT_LAYERS) -> VGG16Features:
    """A frozen :class:`VGG16Features` (width 64) with the weights of a torchvision ``vgg16`` state dict.

    ``path``: ``.pth``/``.pt`` (read with ``torch.load(weights_only=True)``) or ``.safetensors``;
    ``classifier.*`` keys are ignored, a ``module.`` prefix is stripped. The convolutions up to the
    deepest requested layer must be present with VGG-16's shapes (a truncated file that stops after
    ``conv4_3`` is fine); anything else raises :class:`CheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: no such VGG-16 weights file; give the path of a torchvision vgg16 "
                                 "state dict, or a run of `facedyn train vgg_features`")
    state = _read_state_dict(path)
    state = {k.removeprefix("module."): v for k, v in state.items()}
    feats = {k: v for k, v in state.items() if k.startswith("features.")}
    if any(k.endswith("running_mean") for k in feats):
        raise CheckpointError(f"{path}: looks like vgg16_bn (batch-norm layers); give plain vgg16 weights")
    net = VGG16Features(width=64, layers=layers)
    expected = net.state_dict()
    last = max(LAYERS[n] for n in net.layers)
    needed = [k for k in expected if int(k.split(".")[1]) < last]
    missing = [k for k in needed if k not in feats]
    if missing:
        raise CheckpointError(f"{path}: not torchvision vgg16 weights (no {missing[0]}, {len(feats)} feature "
                              "tensors found); give a vgg16 state dict")
    for k, v in feats.items():
        if k not in expected:
            raise CheckpointError(f"{path}: unexpected key {k} for vgg16 features; give plain vgg16 weights")
        if tuple(v.shape) != tuple(expected[k].shape):
            raise CheckpointError(f"{path}: {k} has shape {tuple(v.shape)}, vgg16 has {tuple(expected[k].shape)}; "
                                  "give plain vgg16 weights")
    net.load_state_dict({k: v.float() for k, v in feats.items()}, strict=False)
    return net.freeze()


class VGGDecoder(nn.Module):
    """Upsamples ``relu4_3`` (``8w`` channels at 1/8 resolution) back to a 3-channel image."""

    def __init__(self, width: int) -> None:
        super().__init__()
        chans = [8 * width, 4 * width, 2 * width, width]
        mods: list[nn.Module] = []
        for a, b in itertools.pairwise(chans):
            mods += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(a, b, 3, padding=1), nn.ReLU()]
        mods.append(nn.Conv2d(width, 3, 3, padding=1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
