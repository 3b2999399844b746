"""Dimensional affect (valence, arousal) from one face's representation with VGG-16, method ``affect``.

dr-paper.txt §4.4 fine-tunes VGG-16 on each input (SI, SDR, MDR, the DI-target baselines; Table 2).
Here:

* **Backbone**: the VGG-16 convolutional stack in torchvision's layout
  (:class:`facedyn.nn.vgg.VGG16Features`, all 13 convolutions and 5 pools), its first convolution
  widened to the representation's channels (3 for SI/SDR, 9 for the affect MDR = image + DR(T=3) +
  DR(T=5)).
* **Weights**: ``--vgg-weights FILE`` loads a user's torchvision ``vgg16`` state dict (``.pth`` or
  ``.safetensors``, read without torchvision; facedyn downloads nothing) and fine-tunes it; the widened
  first convolution gives every 3-channel group of the input the pretrained RGB kernels divided by the
  number of groups (so a stack of identical images responds as the image alone). Without a file the
  network is trained from scratch at ``--width`` (CPU preset: 16, i.e. a quarter of VGG-16's widths).
* **Initialisation** (from scratch): torchvision's VGG scheme (:meth:`VGGRegressor.reset_parameters`).
* **Head**: global average pooling of ``pool5`` → ``fc(hidden)`` → ReLU → dropout → ``fc(K)``: one output
  per dimension (valence, arousal), unbounded; loss: mean squared error (``--loss ccc``: 1 − CCC per
  dimension, averaged); random horizontal flips of the input (``--no-augment``).
* **Metrics** (whole validation set): PCC, CCC and MSE per dimension and averaged; the checkpoint is
  selected by the average CCC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from facedyn.config import option
from facedyn.data.store import Clip, ClipDataset
from facedyn.dr.representations import Source
from facedyn.errors import ConfigError, DatasetError
from facedyn.method import Selection, register_method
from facedyn.nn.vgg import CONV_INDICES, VGG16Features, load_vgg16_weights
from facedyn.precision import float32_math
from facedyn.tasks.inputs import TaskConfig, TaskMethod, TaskNet, channels_of, flip_batch, masked_mse

__all__ = ["AFFECT_COLUMNS", "AffectConfig", "AffectMethod", "VGGRegressor", "ccc_loss", "widen_first_conv"]

#: Default label columns.
AFFECT_COLUMNS = ("valence", "arousal")


@dataclass
class AffectConfig(TaskConfig):
    """Affect: VGG-16 regression of valence and arousal."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "paper": {"width": 64, "hidden": 4096}}

    input: str = option("si", "Input representation: si (still image), sdr, mdr (image + DR(T=3) + DR(T=5)), di, bdi "
                              "or a baseline's label; cache them first with `facedyn represent`.")
    vgg_weights: str = option("", "A torchvision vgg16 state dict (.pth/.safetensors) to fine-tune (width 64); "
                                  "default: train from scratch at --width.")
    width: int = option(16, "VGG-16 base width when trained from scratch (VGG-16: 64).")
    hidden: int = option(128, "Hidden units of the regression head (VGG-16's fc: 4096).")
    dropout: float = option(0.5, "Dropout before the last layer.")
    loss: str = option("mse", "Training loss: mse, or ccc (1 - concordance per dimension).", ("mse", "ccc"))
    lr: float = option(1e-4, "Adam learning rate.")
    betas: tuple[float, float] = option((0.9, 0.999), "Adam betas.")


def widen_first_conv(conv: nn.Conv2d, channels: int) -> nn.Conv2d:
    """A copy of a 3-channel ``conv`` taking ``channels`` (a multiple of 3) inputs: each group of 3 input
    channels gets the RGB kernels divided by the number of groups; bias unchanged."""
    if channels % conv.in_channels:
        raise ConfigError(f"cannot widen a {conv.in_channels}-channel convolution to {channels} channels")
    groups = channels // conv.in_channels
    new = nn.Conv2d(channels, conv.out_channels, conv.kernel_size, stride=conv.stride,  # type: ignore[arg-type]
                    padding=conv.padding, bias=conv.bias is not None)  # type: ignore[arg-type]
    with torch.no_grad():
        new.weight.copy_(conv.weight.repeat(1, groups, 1, 1) / groups)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)  # type: ignore[union-attr]
    return new


class VGGRegressor(TaskNet):
    """Representation ``(B, C, H, W)`` → ``(B, K)`` affect values through VGG-16 (see the module docstring)."""

    output_key = "affect"

    def __init__(self, parts: Sequence[Source | str], cols: Sequence[str], width: int, hidden: int,
                 dropout: float) -> None:
        super().__init__(parts, cols)
        vgg = VGG16Features(width=width)
        c = channels_of(parts)
        if c != 3:
            vgg.features[0] = widen_first_conv(vgg.features[0], c)  # type: ignore[arg-type]
        self.features = vgg.features  # torchvision layout: features.0 ... features.30
        out_c = vgg.features[CONV_INDICES[-1]].out_channels  # type: ignore[union-attr]
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(out_c, hidden), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, len(cols))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """torchvision's VGG initialisation: He-normal convolutions (fan-out, ReLU), zero biases, linear layers
        N(0, 0.01). PyTorch's default (uniform, gain 1/sqrt(3)) shrinks the signal at each of the 13 BN-free
        convolutions, and from scratch the regressor then sat at a constant output on DR inputs (measured:
        CCC 0.00 for SDR and MDR after 1 600 steps, two seeds)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    @torch.no_grad()
    def load_pretrained(self, vgg: VGG16Features) -> None:
        """Copy a width-64 VGG-16's convolutions in (the first one widened, see :func:`widen_first_conv`)."""
        for i in CONV_INDICES:
            src: nn.Conv2d = vgg.features[i]  # type: ignore[assignment]
            dst: nn.Conv2d = self.features[i]  # type: ignore[assignment]
            if i == 0 and dst.in_channels != src.in_channels:
                src = widen_first_conv(src, dst.in_channels)
            if dst.weight.shape != src.weight.shape:
                raise ConfigError(f"VGG-16 weights have shape {tuple(src.weight.shape)} at features.{i}, the network "
                                  f"{tuple(dst.weight.shape)}; --vgg-weights needs --width 64")
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)  # type: ignore[union-attr]

    def features_rep(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(self.norm(x))))

    def predict_rep(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.features_rep(x)))


@float32_math
def ccc_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the K columns of ``1 - CCC`` of ``(B, K)`` batches (rows with a NaN target left out per column)."""
    losses = []
    for k in range(pred.shape[1]):
        ok = torch.isfinite(target[:, k])
        if ok.sum() < 2:
            continue
        p, t = pred[ok, k], target[ok, k]
        mp, mt = p.mean(), t.mean()
        cov = ((p - mp) * (t - mt)).mean()
        ccc = 2 * cov / (p.var(unbiased=False) + t.var(unbiased=False) + (mp - mt) ** 2 + 1e-8)
        losses.append(1 - ccc)
    return torch.stack(losses).mean() if losses else pred.sum() * 0.0


@register_method("affect")
class AffectMethod(TaskMethod):
    """Valence/arousal from one face's representation (SI/SDR/MDR/...) with VGG-16 (dr-paper Table 2)."""

    Config = AffectConfig
    frames = "frame"
    selection = Selection("ccc", "max", initial=False)
    preset = "affect"
    metrics = ("pcc", "ccc", "mse")

    def default_columns(self, store: ClipDataset, clips: Sequence[Clip]) -> list[str]:
        for c in clips:
            df = c.labels
            if df is not None:
                cols = [k for k in AFFECT_COLUMNS if k in df.columns]
                if cols:
                    return cols
        raise DatasetError(f"{store.path}: no valence/arousal columns in the clips' labels; give --label-columns")

    def make_net(self, parts: Sequence[Source | str], cols: Sequence[str]) -> TaskNet:
        c = self.cfg
        if self.data.size % 32:
            raise ConfigError(f"VGG-16 halves the crop five times: the crop size {self.data.size} must be divisible "
                              "by 32")
        return VGGRegressor(parts, cols, 64 if c.vgg_weights else c.width, c.hidden, c.dropout)

    def setup(self, train_set: Any, run_dir: Any) -> AffectConfig:
        """The shared setup, then the user's VGG-16 weights (only when training starts: a trained run carries
        its fine-tuned weights and does not need the file again)."""
        cfg = super().setup(train_set, run_dir)
        if cfg.vgg_weights:
            self.net.load_pretrained(load_vgg16_weights(cfg.vgg_weights))  # type: ignore[operator]
        return cfg

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        x = flip_batch(batch["x"], batch["landmarks"])[0] if self.cfg.augment else batch["x"]
        pred = self.net.predict_rep(x)
        y = batch["labels"]
        mse = masked_mse(pred, y)
        if self.cfg.loss == "ccc":
            return {"loss": ccc_loss(pred, y), "mse": mse.detach()}
        return {"loss": mse}

    def record(self) -> dict[str, Any]:
        return {**super().record(), "backbone": f"vgg16:{self.cfg.vgg_weights}" if self.cfg.vgg_weights
                else f"vgg16-layout from scratch, width {self.cfg.width}"}
