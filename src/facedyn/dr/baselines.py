"""Target-regression baselines of dr-paper.txt §4.3 (Fig. 4): networks trained to reproduce a DI.

Each baseline maps the centre frame ``I_t`` to an explicit target computed on the fly from the
batch's window, the forward dynamic image (``target="di"``, frames ``t−T..t``) or the backward one
(``target="bdi"``, frames ``t+T..t``), and is trained separately for each target:

``unet_mse`` (:class:`MSEMethod`)
    UNet, mean squared error to the target.
``unet_p`` (:class:`PerceptualMethod`)
    UNet, perceptual (feature reconstruction) loss of Johnson et al. on VGG-16 ``relu1_2``,
    ``relu2_2``, ``relu3_3``, ``relu4_3``. The VGG-16 weights come from a file the user gives
    (``extra["vgg_weights"]``, torchvision ``vgg16`` state dict); without one facedyn trains its own
    VGG-16-layout feature network (:func:`facedyn.nn.vgg.train_feature_net`, a reduced-width
    denoising autoencoder over the training faces and targets, then frozen). Nothing is downloaded.
    The run's ``config.json`` says which: ``"feature_net": "vgg16:<path>"`` or ``"self-trained"``.
``pix2pix`` (:class:`Pix2PixMethod`)
    UNet generator + conditional 70×70 PatchGAN, cGAN loss + ``l1_weight`` (100) · L1 (Isola et al.).

The generator of every baseline is ``facedyn.dr.model.build_net(cfg)`` (``DRNet(residual=False)``,
``d = unet(2I − 1)``), registered as module ``"net"``, so ``facedyn.eval.ranking.load_run`` rebuilds it.

Target normalisation (:func:`make_target`): DI magnitudes grow with ``T`` and vary between clips, so
every target is divided by its own standard deviation over all ``C·H·W`` values. Its mean is *not*
subtracted: ranking by ``<d, I_a> − <d, I_b>`` is invariant to a positive scale of ``d`` but not to
adding a constant (``<c·1, I_a − I_b> ≠ 0`` whenever the frames' brightness differs), so scaling
alone keeps the target's rankings exactly those of the true DI.

Settings in ``DRConfig.extra`` (defaults in brackets): ``vgg_weights`` [none → self-trained],
``perceptual_layers`` [all four], ``perceptual_weights`` [1 each], ``pixel_weight`` [0: perceptual
only], ``feature_steps`` [300], ``feature_width`` [16; VGG-16 has 64], ``l1_weight`` [100],
``gan_mode`` [``vanilla`` = BCE with logits as in pix2pix, or ``lsgan``], ``d_width`` [the UNet
width], ``d_layers`` [3 → 70×70], ``d_norm`` [``batch``].
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader

from facedyn import __version__
from facedyn.config import DRConfig
from facedyn.dr.dynamic_image import dynamic_image
from facedyn.dr.model import build_net
from facedyn.dr.rank_loss import eq2_pairs, pair_deltas, ranking_accuracy
from facedyn.errors import CheckpointError, ConfigError
from facedyn.nn.patchgan import PatchGAN70
from facedyn.nn.vgg import (
    DEFAULT_LAYERS,
    IMAGENET_MEAN,
    IMAGENET_STD,
    LAYERS,
    VGG16Features,
    load_vgg16_weights,
    perceptual_loss,
    train_feature_net,
)
from facedyn.train.loop import LoopConfig, SingleNetMethod, fit, resolve_device

BASELINES = ("unet_mse", "unet_p", "pix2pix")
TARGETS = ("di", "bdi")
FEATURE_NET_FILE = "feature_net.safetensors"


def make_target(window: torch.Tensor, target: str, eps: float = 1e-8) -> torch.Tensor:
    """The regression target of a window: its forward (``di``) or backward (``bdi``) dynamic image,
    divided per sample by its standard deviation (mean kept, so its frame rankings are unchanged).

    Args:
        window: ``(B, 2T+1, C, H, W)`` float in [0, 1], temporal order, centre at index ``T``.
        target: ``di`` (frames ``t−T..t``) or ``bdi`` (frames ``t+T..t``).
    Returns:
        ``(B, C, H, W)`` float, unit std per sample (zeros where the DI is zero).
    """
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; use di or bdi")
    direction = "forward" if target == "di" else "backward"
    with torch.no_grad():
        d = dynamic_image(window, direction=direction)
        s = d.flatten(1).std(dim=1).clamp_min(eps)
        return d / s.view(-1, *([1] * (d.dim() - 1)))


def side_mask(T: int, target: str) -> torch.Tensor:
    """Bool ``(P,)`` over the Eq. 2 pairs of :func:`eq2_pairs`: the pairs a ``target`` ranks
    (``di``: before the centre, ``b < a <= t``; ``bdi``: after it, ``t <= a < b``)."""
    a, b = eq2_pairs(T)
    before = (a <= T) & (b < T)
    return before if target == "di" else ~before


class _TargetMethod(SingleNetMethod):
    """Shared parts: a generator ``net`` regressing :func:`make_target` of the batch's window.

    Batches: ``centre (B, 3, H, W)`` and ``window (B, 2T+1, 3, H, W)``, float in [0, 1].
    Validation metrics per sample: ``side_acc`` (ranking accuracy over the pairs its target ranks;
    the selection metric), ``acc`` (all Eq. 2 pairs) and ``mse`` (to the normalised target).

    Before the first training step (the loop's epoch-0 validation) ``side_acc`` is reported as
    ``untrained_side_acc`` instead, so the untrained network is never selected as the best
    checkpoint: a baseline is a network *trained* on DI targets, and a randomly initialised UNet's
    output, a random filtering of the image, can rank frames well above chance by itself.
    """

    select_metric = "side_acc"
    select_mode = "max"

    def __init__(self, net: nn.Module, cfg: DRConfig) -> None:
        if cfg.target not in TARGETS:
            raise ConfigError(f"baseline {cfg.method!r} needs --target di or bdi, got {cfg.target!r}")
        super().__init__(net)
        self.cfg = cfg
        self.target = cfg.target
        self._side: dict[tuple[int, str], torch.Tensor] = {}
        self.trained = False  # set by the first call of losses()

    def _side_mask(self, T: int, device: torch.device) -> torch.Tensor:
        key = (T, str(device))
        if key not in self._side:
            self._side[key] = side_mask(T, self.target).to(device)
        return self._side[key]

    def validate(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        window = batch["window"]
        d = self.net(batch["centre"])
        tgt = make_target(window, self.target)
        T = (window.shape[1] - 1) // 2
        side = self._side_mask(T, d.device)
        ok = pair_deltas(d, window) > 0
        name = "side_acc" if self.trained else "untrained_side_acc"
        return {name: ok[:, side].float().mean(dim=1),
                "acc": ranking_accuracy(d, window),
                "mse": (d - tgt).pow(2).flatten(1).mean(dim=1)}


class MSEMethod(_TargetMethod):
    """UNet (MSE): ``loss = mean((net(I) − target)^2)``."""

    def losses(self, batch: dict[str, Any], group: str) -> dict[str, torch.Tensor]:
        self.trained = True
        d = self.net(batch["centre"])
        loss = F.mse_loss(d, make_target(batch["window"], self.target))
        return {"loss": loss}


class PerceptualMethod(_TargetMethod):
    """UNet (P): ``loss = sum_j w_j mean((phi_j(net(I)) − phi_j(target))^2) + pixel_weight · MSE``.

    ``features`` is a frozen :class:`VGG16Features`; DRs are fed to it as inputs already on its
    normalised scale (``normalize=False``: a unit-std DR is on the scale of an ImageNet-normalised
    image). It is not a checkpointed module (a user's VGG-16 is referenced by path; the self-trained
    one is saved beside the run's checkpoints) and follows the batch to its device.
    """

    def __init__(self, net: nn.Module, cfg: DRConfig, features: VGG16Features,
                 weights: list[float] | None = None, pixel_weight: float = 0.0) -> None:
        super().__init__(net, cfg)
        self.features = features.freeze()
        self.weights = weights
        self.pixel_weight = float(pixel_weight)

    def _feats(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.features.mean.device != x.device:
            self.features.to(x.device)
        return self.features(x, normalize=False)

    def losses(self, batch: dict[str, Any], group: str) -> dict[str, torch.Tensor]:
        self.trained = True
        d = self.net(batch["centre"])
        tgt = make_target(batch["window"], self.target)
        with torch.no_grad():
            ft = self._feats(tgt)
        perc = perceptual_loss(self._feats(d), ft, self.weights)
        mse = F.mse_loss(d, tgt)
        loss = perc + self.pixel_weight * mse if self.pixel_weight else perc
        return {"loss": loss, "perceptual": perc.detach(), "mse": mse.detach()}


class Pix2PixMethod(_TargetMethod):
    """Pix2Pix: UNet generator ``G`` (module ``net``) and conditional PatchGAN ``D`` (module ``D``).

    Groups, stepped in this order each step (as pix2pix's ``optimize_parameters``):
      ``D``: ``0.5 · [gan(D(I, target), real) + gan(D(I, G(I).detach()), fake)]``;
      ``G``: ``gan(D(I, G(I)), real) + l1_weight · mean|G(I) − target|`` with the just-updated D.
    ``G(I)`` and the target are computed once per step (in the D call) and reused in the G call.
    ``gan`` is BCE with logits (``vanilla``, pix2pix's default) or least squares (``lsgan``). D sees
    ``cat([2I − 1, d])`` (6 channels). Differences from pix2pix: the generator is the same UNet as the
    other baselines (no dropout, no tanh: a DR is unbounded) and one learning rate serves both
    groups (the loop's). Under DDP, D runs twice (real, fake) before its backward: not yet tested.
    """

    def __init__(self, net: nn.Module, cfg: DRConfig, disc: nn.Module, l1_weight: float = 100.0,
                 gan_mode: str = "vanilla") -> None:
        super().__init__(net, cfg)
        if gan_mode not in ("vanilla", "lsgan"):
            raise ConfigError(f"unknown gan_mode {gan_mode!r}; use vanilla or lsgan")
        self.D = disc
        self.l1_weight = float(l1_weight)
        self.gan_mode = gan_mode
        self._modules = {"net": net, "D": disc}
        self._cache: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def set_modules(self, modules: dict[str, nn.Module]) -> None:
        super().set_modules(modules)
        self.D = modules["D"]

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"D": list(self.D.parameters()), "G": list(self.net.parameters())}

    def _gan(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        label = torch.ones_like(logits) if real else torch.zeros_like(logits)
        if self.gan_mode == "lsgan":
            return F.mse_loss(logits, label)
        return F.binary_cross_entropy_with_logits(logits, label)

    def _fake_and_target(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        centre = batch["centre"]
        if self._cache is not None and self._cache[0] is centre:
            return self._cache[1], self._cache[2]
        fake = self.net(centre)
        tgt = make_target(batch["window"], self.target)
        self._cache = (centre, fake, tgt)
        return fake, tgt

    def losses(self, batch: dict[str, Any], group: str) -> dict[str, torch.Tensor]:
        self.trained = True
        src = batch["centre"] * 2.0 - 1.0
        fake, tgt = self._fake_and_target(batch)
        if group == "D":
            real_logits = self.D(torch.cat([src, tgt], dim=1))
            fake_logits = self.D(torch.cat([src, fake.detach()], dim=1))
            loss_real = self._gan(real_logits, True)
            loss_fake = self._gan(fake_logits, False)
            return {"loss": 0.5 * (loss_real + loss_fake), "real": loss_real.detach(), "fake": loss_fake.detach()}
        if group == "G":
            self._cache = None  # G's graph is consumed by this backward; next step recomputes
            gan = self._gan(self.D(torch.cat([src, fake], dim=1)), True)
            l1 = F.l1_loss(fake, tgt)
            return {"loss": gan + self.l1_weight * l1, "gan": gan.detach(), "l1": l1.detach()}
        raise ValueError(f"unknown group {group!r}; Pix2Pix has groups D and G")


def _feature_batches(train: Any, target: str, batch_size: int, seed: int) -> Callable[[], torch.Tensor]:
    """Batches for the self-trained feature net: the ImageNet-normalised centre faces and the
    normalised targets of ``batch_size // 2`` random training windows, ``(≈batch_size, 3, H, W)``."""
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(train, batch_size=max(1, batch_size // 2), shuffle=True, generator=g, drop_last=False)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    state: dict[str, Any] = {"it": iter(loader)}

    def next_batch() -> torch.Tensor:
        try:
            b = next(state["it"])
        except StopIteration:
            state["it"] = iter(loader)
            b = next(state["it"])
        faces = (b["centre"] - mean) / std
        return torch.cat([faces, make_target(b["window"], target)])

    return next_batch


def build_feature_net(cfg: DRConfig, train: Any, out: Path, loop: LoopConfig,
                      progress: Callable[[dict[str, Any]], None] | None = None) -> tuple[VGG16Features, str]:
    """The perceptual network of ``unet_p`` and how the run's config describes it.

    ``extra["vgg_weights"]``: a torchvision ``vgg16`` state dict → ``"vgg16:<absolute path>"``.
    Otherwise the self-trained network (``"self-trained"``), saved to
    ``out/checkpoints/feature_net.safetensors`` and reused when the run resumes. While it trains,
    ``progress`` receives ``{"stage": "feature_net", "epoch": 0, "step", "total_steps", "loss"}``.
    """
    ex = cfg.extra
    layers = tuple(ex.get("perceptual_layers") or DEFAULT_LAYERS)
    for name in layers:
        if name not in LAYERS:
            raise ConfigError(f"unknown perceptual layer {name!r}; choose from {', '.join(LAYERS)}")
    path = ex.get("vgg_weights")
    if path:
        return load_vgg16_weights(path, layers=layers), f"vgg16:{Path(path).resolve()}"
    width = int(ex.get("feature_width", 16))
    file = out / "checkpoints" / FEATURE_NET_FILE
    if loop.resume and file.is_file():
        net = VGG16Features(width=width, layers=layers)
        try:
            net.load_state_dict(load_file(str(file)), strict=True)
        except Exception:
            raise CheckpointError(f"{file}: does not match feature_width={width}; resume with the run's "
                                  "own settings or start a new run") from None
        return net.freeze(), "self-trained"
    batches = _feature_batches(train, cfg.target, loop.batch_size, loop.seed)
    steps = int(ex.get("feature_steps", 300))

    def log(step: int, loss: float) -> None:
        if progress is not None:
            progress({"stage": "feature_net", "epoch": 0, "step": step, "total_steps": steps, "loss": loss})

    net = train_feature_net(batches, steps=steps, width=width, layers=layers, device=resolve_device(loop.device),
                            seed=loop.seed, log=log, log_every=10)
    if int(os.environ.get("RANK", "0")) == 0:
        file.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}, str(file),
                  metadata={"kind": "facedyn self-trained VGG16Features", "width": str(width)})
    return net.cpu(), "self-trained"


def build_method(cfg: DRConfig, net: nn.Module, features: VGG16Features | None = None) -> _TargetMethod:
    """The method object of baseline ``cfg.method`` around generator ``net``."""
    ex = cfg.extra
    if cfg.method == "unet_mse":
        return MSEMethod(net, cfg)
    if cfg.method == "unet_p":
        if features is None:
            raise ValueError("unet_p needs a feature network")
        w = ex.get("perceptual_weights")
        return PerceptualMethod(net, cfg, features, weights=list(w) if w else None,
                                pixel_weight=float(ex.get("pixel_weight", 0.0)))
    if cfg.method == "pix2pix":
        disc = PatchGAN70(in_channels=6, width=int(ex.get("d_width", cfg.width)),
                          n_layers=int(ex.get("d_layers", 3)), norm=str(ex.get("d_norm", "batch")))
        return Pix2PixMethod(net, cfg, disc, l1_weight=float(ex.get("l1_weight", 100.0)),
                             gan_mode=str(ex.get("gan_mode", "vanilla")))
    raise ConfigError(f"unknown baseline {cfg.method!r}; choose from {', '.join(BASELINES)}")


def train_baseline(
    data: str | Path,
    out: str | Path,
    cfg: DRConfig,
    loop: LoopConfig,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train one DI-target baseline (``cfg.method``, ``cfg.target``) on ``data`` into run directory ``out``.

    Same behaviour as :func:`facedyn.dr.train.train_dr`: training windows of split ``train``,
    validation on split ``val``, ``config.json`` with ``{"method", "dr", ...}`` (plus
    ``"target_normalisation"`` and, for ``unet_p``, ``"feature_net"``), then the shared loop.
    """
    from facedyn.dr.train import window_sets

    if cfg.method not in BASELINES:
        raise ConfigError(f"unknown baseline {cfg.method!r}; choose from {', '.join(BASELINES)}")
    if cfg.target not in TARGETS:
        raise ConfigError(f"baseline {cfg.method} needs --target di or bdi, got {cfg.target!r}")
    if cfg.T < 1:
        raise ConfigError(f"a dynamic-image target needs T >= 1, got T={cfg.T}")
    if cfg.size % (2 ** cfg.depth):
        raise ConfigError(f"image size {cfg.size} must be divisible by 2^depth = {2 ** cfg.depth}")
    torch.manual_seed(loop.seed)
    train, val = window_sets(data, cfg.T, cfg.S)
    size = int(train.clips[0].frames.shape[1])
    if size % (2 ** cfg.depth):
        raise ConfigError(f"the dataset's image size {size} must be divisible by 2^depth = {2 ** cfg.depth}")
    cfg.size = size
    net = build_net(cfg)
    out = Path(out)
    saved: dict[str, Any] = {}
    features = None
    if cfg.method == "unet_p":
        features, saved["feature_net"] = build_feature_net(cfg, train, out, loop, progress=progress)
        saved["perceptual_layers"] = list(features.layers)
    method = build_method(cfg, net, features)
    loop.out = str(out)
    saved = {"method": cfg.method, "dr": cfg.to_dict(), "data": str(Path(data).resolve()),
             "n_train_windows": len(train), "n_val_windows": len(val) if val is not None else 0,
             "target_normalisation": "dynamic image divided by its per-sample std (mean kept)",
             **saved, "facedyn_version": __version__}
    return fit(method, train, val, loop, saved, progress=progress)
