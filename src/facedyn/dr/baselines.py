"""Target-regression baselines of dr-paper.txt §4.3 (Fig. 4): networks trained to reproduce a DI.

Each baseline maps the centre frame ``I_t`` to an explicit target computed on the fly from the batch's
window (:func:`facedyn.dr.dynamic_image.make_target`): the forward dynamic image (``--target di``,
frames ``t−T..t``) or the backward one (``--target bdi``, frames ``t+T..t``), one model per target.
The generator of every baseline is the DR-family UNet without the residual (``d = f(2I − 1)``); it
ranks the pairs on its target's side of the centre (``pair_side``), and ``facedyn eval rank`` pairs a
DI model with a BDI model of the same method into ``<method>-seq``.

``unet_mse`` (:class:`MSEMethod`)
    UNet, mean squared error to the target.
``unet_p`` (:class:`PerceptualMethod`)
    UNet, perceptual (feature reconstruction) loss of Johnson et al. on VGG-16 ``relu1_2``,
    ``relu2_2``, ``relu3_3``, ``relu4_3``. ``--features`` names a torchvision ``vgg16`` state dict
    (the paper's network) or a run of ``facedyn train vgg_features`` (facedyn's own reduced-width
    network, for users without VGG-16 weights; nothing is downloaded). The frozen feature network is
    saved in the run's checkpoints, and config.json says which one it was.
``pix2pix`` (:class:`Pix2PixMethod`)
    UNet generator + conditional 70×70 PatchGAN, cGAN loss + ``l1_weight`` (100) · L1 (Isola et al.).

Checkpoint selection: the ranking accuracy on the target's own side of the validation pairs, from the
first trained epoch on (a baseline is by definition a *trained* network, and a random UNet's output, a
random filtering of the image, can rank frames well above chance by itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from facedyn import runs
from facedyn.config import option
from facedyn.dr.dynamic_image import TARGETS, make_target
from facedyn.dr.features import FeatureNetConfig, VGGFeatureNet
from facedyn.dr.model import DRNet, WindowUNetConfig, build_drnet
from facedyn.dr.rank_loss import before_centre, pair_deltas, ranking_accuracy
from facedyn.errors import ConfigError
from facedyn.method import Method, Selection, register_method
from facedyn.nn.patchgan import PatchGAN70
from facedyn.nn.vgg import LAYERS, VGG16Features, load_vgg16_weights, perceptual_loss
from facedyn.precision import bce_with_logits, l1_loss, mse_loss

_PRESETS: dict[str, dict[str, Any]] = {"cpu": {}, "paper": {"width": 64}}


@dataclass
class TargetConfig(WindowUNetConfig):
    """A DI-target baseline: window, UNet and which dynamic image it regresses."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = _PRESETS

    target: str = option("di", "Regression target: forward (di) or backward (bdi) dynamic image.", TARGETS)


@dataclass
class PerceptualConfig(TargetConfig):
    """UNet(P): the perceptual loss and its feature network."""

    features: str = option("", "VGG-16 features: a torchvision vgg16 state dict (.pth/.safetensors) or a run of "
                                "`facedyn train vgg_features`.")
    perceptual_layers: str = option("relu1_2,relu2_2,relu3_3,relu4_3", "Comma-separated VGG layers of the loss.")
    perceptual_weights: str = option("", "Comma-separated weight per layer (default 1 each).")
    pixel_weight: float = option(0.0, "Weight of an extra pixel MSE (0: perceptual loss only, as the paper).")


@dataclass
class Pix2PixConfig(TargetConfig):
    """Pix2Pix: the conditional PatchGAN and the L1 weight."""

    l1_weight: float = option(100.0, "Weight of the L1 term (pix2pix: 100).")
    gan_mode: str = option("vanilla", "GAN loss: vanilla (BCE with logits, as pix2pix) or lsgan.",
                           ("vanilla", "lsgan"))
    d_width: int | None = option(None, "Discriminator base width (default: the UNet width).")
    d_layers: int = option(3, "Discriminator layers (3 gives 70x70 patches).")
    d_norm: str = option("batch", "Discriminator normalisation.", ("batch", "instance", "none"))


class _TargetMethod(Method):
    """Shared parts: a generator ``net`` regressing :func:`make_target` of the batch's window.

    Batches: ``centre (B, 3, H, W)`` and ``window (B, 2T+1, 3, H, W)``, float in [0, 1].
    Validation values per sample: ``side_acc`` (ranking accuracy over the pairs its target ranks; the
    selection metric), ``acc`` (all Eq. 2 pairs) and ``mse`` (to the normalised target).
    """

    Config: ClassVar[type[TargetConfig]] = TargetConfig
    frames = "window"
    selection = Selection("side_acc", "max", initial=False)

    def build(self) -> DRNet:
        if self.cfg.T < 1:
            raise ConfigError(f"a dynamic-image target needs T >= 1, got T={self.cfg.T}")
        side = "before" if self.cfg.target == "di" else "after"
        return build_drnet(self.cfg, self.data.size, residual=False, pair_side=side)

    def label(self) -> str:
        return f"{self.name}-{self.cfg.target}"

    def record(self) -> dict[str, Any]:
        return {"target_normalisation": "dynamic image divided by its per-sample std (mean kept)"}

    def validation_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        window = batch["window"]
        d = self.net(batch["centre"])
        T = (window.shape[1] - 1) // 2
        before = before_centre(T).to(d.device)
        side = before if self.cfg.target == "di" else ~before
        ok = pair_deltas(d, window) > 0
        return {"side_acc": ok[:, side].float().mean(dim=1), "acc": ranking_accuracy(d, window),
                "mse": (d - make_target(window, self.cfg.target)).pow(2).flatten(1).mean(dim=1)}


@register_method("unet_mse")
class MSEMethod(_TargetMethod):
    """DI-target baseline: UNet regressing the (backward) dynamic image with MSE (dr-paper.txt §4.3)."""

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        d = self.net(batch["centre"])
        return {"loss": mse_loss(d, make_target(batch["window"], self.cfg.target))}


def _float_list(text: str, name: str) -> list[float] | None:
    if not text.strip():
        return None
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--{name.replace('_', '-')} must be comma-separated numbers, got {text!r}") from None


def load_feature_net(source: str, layers: tuple[str, ...]) -> tuple[VGG16Features, str]:
    """The frozen feature network named by ``--features`` and how the run records it.

    ``source``: a torchvision ``vgg16`` state dict (→ ``"vgg16:<path>"``) or a ``vgg_features`` run
    directory (→ ``"vgg_features:<path>"``, its best checkpoint).
    """
    if not source:
        raise ConfigError("unet_p needs --features: a torchvision vgg16 state dict, or a run of "
                          "`facedyn train vgg_features --data D --out FEATS` (facedyn downloads nothing)")
    path = Path(source).resolve()
    if path.is_dir():
        rec = runs.read_record(path)
        if rec.method != "vgg_features":
            raise ConfigError(f"--features {source}: is a {rec.method!r} run; give a vgg_features run or a "
                              "vgg16 weights file")
        width = int(rec.config.get("width", FeatureNetConfig.width))
        holder = VGGFeatureNet(width)
        runs.load_weights(runs.checkpoint_path(path, "best"), {"net": holder})
        net = VGG16Features(width=width, layers=layers)
        net.load_state_dict(holder.vgg.state_dict())
        return net.freeze(), f"vgg_features:{path}"
    return load_vgg16_weights(path, layers=layers), f"vgg16:{path}"


@register_method("unet_p")
class PerceptualMethod(_TargetMethod):
    """DI-target baseline: UNet with the perceptual loss on VGG-16 features (Johnson et al.)."""

    Config = PerceptualConfig

    def __init__(self, cfg: PerceptualConfig, data: Any) -> None:
        super().__init__(cfg, data)
        self.layers = tuple(v.strip() for v in cfg.perceptual_layers.split(",") if v.strip())
        for name in self.layers:
            if name not in LAYERS:
                raise ConfigError(f"unknown perceptual layer {name!r}; choose from {', '.join(LAYERS)}")
        self.weights = _float_list(cfg.perceptual_weights, "perceptual_weights")
        if self.weights is not None and len(self.weights) != len(self.layers):
            raise ConfigError(f"--perceptual-weights gives {len(self.weights)} weights for {len(self.layers)} layers")
        self.features: VGG16Features | None = None
        self.feature_source = ""

    def setup(self, train_set: Dataset, run_dir: Path) -> PerceptualConfig:
        self.features, self.feature_source = load_feature_net(self.cfg.features, self.layers)
        return self.cfg

    def train_modules(self) -> dict[str, nn.Module]:
        mods: dict[str, nn.Module] = {"net": self.net}
        if self.features is not None:
            mods["features"] = self.features  # frozen; saved so the run is self-contained
        return mods

    def record(self) -> dict[str, Any]:
        return {**super().record(), "feature_net": self.feature_source, "perceptual_layers": list(self.layers)}

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        if self.features is None:
            raise ConfigError("unet_p: the feature network is not set up; train through facedyn.train")
        d = self.net(batch["centre"])
        tgt = make_target(batch["window"], self.cfg.target)
        with torch.no_grad():
            ft = self.features(tgt, normalize=False)
        # DRs are fed on the network's normalised scale: a unit-std DR is on the scale of an
        # ImageNet-normalised image.
        perc = perceptual_loss(self.features(d, normalize=False), ft, self.weights)
        mse = mse_loss(d, tgt)
        loss = perc + self.cfg.pixel_weight * mse if self.cfg.pixel_weight else perc
        return {"loss": loss, "perceptual": perc.detach(), "mse": mse.detach()}


@register_method("pix2pix")
class Pix2PixMethod(_TargetMethod):
    """DI-target baseline: Pix2Pix, UNet generator + 70x70 PatchGAN, cGAN + 100 L1 (Isola et al.).

    Optimisers, stepped in this order each step (as pix2pix's ``optimize_parameters``):
      ``D``: ``0.5 · [gan(D(I, target), real) + gan(D(I, G(I).detach()), fake)]``;
      ``G``: ``gan(D(I, G(I)), real) + l1_weight · mean|G(I) − target|`` with the just-updated D.
    ``G(I)`` and the target are computed once per step (in the D call) and reused in the G call.
    D sees ``cat([2I − 1, d])`` (6 channels). Differences from pix2pix: the generator is the same UNet
    as the other baselines (no dropout, no tanh: a DR is unbounded) and one learning rate serves both.
    """

    Config = Pix2PixConfig

    def __init__(self, cfg: Pix2PixConfig, data: Any) -> None:
        super().__init__(cfg, data)
        self.D: nn.Module = PatchGAN70(in_channels=6, width=cfg.d_width or cfg.width, n_layers=cfg.d_layers,
                                       norm=cfg.d_norm)
        self._cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def train_modules(self) -> dict[str, nn.Module]:
        return {"net": self.net, "D": self.D}

    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        return {"D": [{"params": list(self.D.parameters())}], "G": [{"params": list(self.net.parameters())}]}

    def _gan(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        label = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.cfg.gan_mode == "lsgan":
            return mse_loss(logits, label)
        return bce_with_logits(logits, label)

    def _fake_and_target(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        centre = batch["centre"]
        if self._cache is not None and self._cache[0] is centre:
            return self._cache[1], self._cache[2]
        fake = self.net(centre)
        tgt = make_target(batch["window"], self.cfg.target)
        self._cache = (centre, fake, tgt)
        return fake, tgt

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        src = batch["centre"] * 2.0 - 1.0
        fake, tgt = self._fake_and_target(batch)
        if group == "D":
            loss_real = self._gan(self.D(torch.cat([src, tgt], dim=1)), True)
            loss_fake = self._gan(self.D(torch.cat([src, fake.detach()], dim=1)), False)
            return {"loss": 0.5 * (loss_real + loss_fake), "real": loss_real.detach(), "fake": loss_fake.detach()}
        if group == "G":
            self._cache = None  # G's graph is consumed by this backward; the next step recomputes
            gan = self._gan(self.D(torch.cat([src, fake], dim=1)), True)
            l1 = l1_loss(fake, tgt)
            return {"loss": gan + self.cfg.l1_weight * l1, "gan": gan.detach(), "l1": l1.detach()}
        raise ValueError(f"unknown group {group!r}; Pix2Pix has groups D and G")
