"""TCAE: the Twin-Cycle Autoencoder (Li et al., CVPR 2019; specification: tcae-notes-zh.txt).

A shared encoder maps a face to an AU embedding ``phi`` and a pose embedding ``psi`` (``emb_dim`` = 256
each, the size Eq. 7 normalises by). From a source ``I_s`` and a target ``I_t``:

* the AU decoder ``D_A(phi_s, phi_t)`` predicts ``tau^A`` (a ``W x H x 2`` displacement field) plus a mask
  channel (the notes' ``W x H x 3``); ``I_A = tau^A(I_s)`` is the AU-changed face;
* the pose decoder ``D_P(psi_s, psi_t)`` predicts ``tau^P`` plus a mask; ``I_P = tau^P(I_s)``;
* ``tau = alpha^A tau^A + alpha^P tau^P`` (softmax of the two masks per pixel) warps ``I_s`` onto ``I_t``
  (Eq. 2);
* AU cycle: encode ``I_A`` → ``(phi_s^A, psi_s^A)``; ``D_A(phi_s^A, phi_s)`` gives ``tau^{-A}`` from
  ``I_A`` back to ``I_s`` (Eq. 3); ``psi_s^A ≈ psi_s``, ``phi_s^A ≈ phi_t`` (Eq. 5);
* pose cycle: encode ``I_P`` → ``(phi_s^P, psi_s^P)``; ``D_P(psi_s^P, psi_s)`` gives ``tau^{-P}`` from
  ``I_P`` back to ``I_s`` (Eq. 4); ``phi_s^P ≈ phi_s``, ``psi_s^P ≈ psi_t`` (Eq. 6).

A decoder's two inputs are always (source embedding, target embedding) concatenated. The notes print
the AU cycle's reverse input as ``(phi_s phi_s^A)``, the pair, and the pose cycle's as
``(psi_s psi_s^A)``, a typo: the reverse of the pose change goes from ``I_P`` back to ``I_s``, so its
input is ``(psi_s^P, psi_s)``.

Displacements are warped in pixels (:func:`facedyn.nn.warp.warp`, backward, border padding, float32
sampling positions); they are held in units of the crop side (so that Eq. 1's sparsity weight means the
same at 64 px and at 128 px) and Eq. 1 is taken in those units. A decoder's raw output is scaled by
``flow_gain`` (1/16 crop side per unit, 4 px at 64 px) before that: the notes give no scale, and with one
crop side per unit an Adam step at lr 1e-3 moved the displacements by ~1 px, as much as a face moves between
frames, so input-dependent displacements were mostly noise to L_rec; training then settled on copying the
source (near-zero, input-independent displacements and masks, embeddings constant within a clip; see
docs/results/tcae/diagnosis.md). ``phi`` and ``psi`` are layer-normalised (zero
mean, unit variance over their dimensions, no learned scale), so Eq. 5–6 cannot be lowered by shrinking
the embeddings towards zero. Encoder (stride-2 4x4 convolutions to 4 x 4, then one linear layer to
``phi, psi``) and decoders (one linear layer to 4 x 4, then bilinear x2 upsampling + 3x3 convolutions)
use BatchNorm and LeakyReLU as the authors' released code does.

Eq. 7's weights: the notes give none; the defaults follow the weights of the authors' released code
relative to L_rec (10 : 1 for the cycles and embeddings, 0.1 for the flow's L1 on coordinates normalised
to [-1, 1], i.e. 0.02 per crop side): lambda1 = 0.02, lambda2 = 0.1; lambda3 = 0.01 because these
embeddings have unit variance per dimension. With lambda1 = 0.1, lambda2 = 1 the cycles and the sparsity
term won: the displacements shrank to ~0.002-0.007 px within the first 150-450 steps on the synthetic and
the real box-aligned stores (validation L_rec equal to the identity warp's).

Training pairs come from one clip, ``min_gap_s``..``max_gap_s`` seconds apart, with the curriculum of
:mod:`facedyn.tcae.curriculum` (the largest gap grows over the epochs). The run's ``figures/tcae_pairs.png``
shows source, target, AU-changed, pose-changed and full reconstruction with both displacement fields and
``alpha^A`` for validation pairs, remade after every validation (so it shows the last epoch's network).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from facedyn.config import TrainConfig, option
from facedyn.errors import ConfigError
from facedyn.method import Method, Network, Selection, register_method
from facedyn.nn.warp import warp
from facedyn.precision import float32_math
from facedyn.tcae.curriculum import CurriculumPairs, max_gap_at
from facedyn.tcae.losses import (
    TCAEWeights,
    combine_transforms,
    cycle_loss,
    embedding_loss,
    l1_sparsity,
    reconstruction_loss,
    tcae_objective,
)

__all__ = ["TCAEConfig", "TCAEMethod", "TCAENet"]


@dataclass
class TCAEConfig(TrainConfig):
    """TCAE: encoder to phi (AU) and psi (pose), twin displacement decoders, Eq. 1-7, gap curriculum."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "paper": {"width": 64, "flow_stride": 1,
                                                                          "batch_size": 64}}
    #: what runs recorded before a field existed were trained with (facedyn.config.from_record)
    RECORDED_DEFAULTS: ClassVar[dict[str, Any]] = {"flow_gain": 1.0}

    epochs: int = option(8, "Epochs (validation and checkpoints after each).")
    steps_per_epoch: int | None = option(150, "Optimiser steps per epoch (default 150; none: one pass over the "
                                              "pairs).")
    lr: float = option(1e-3, "Adam learning rate.")
    betas: tuple[float, float] = option((0.9, 0.999), "Adam betas.")
    width: int = option(16, "Channels of the first encoder layer (doubling per level, at most 8x); the decoders "
                            "mirror it (paper preset: 64).")
    flow_stride: int = option(2, "Decoders predict the displacement and mask at 1/flow_stride of the crop size, "
                                 "bilinearly upsampled to W x H (2 saves ~40 % of the CPU time; paper: 1).",
                              (1, 2, 4))
    norm: str = option("batch", "Normalisation after each convolution but the first: batch (BatchNorm, as in the "
                                "authors' code) or none.", ("batch", "none"))
    emb_dim: int = option(256, "Size of each embedding, phi (AU) and psi (pose); Eq. 7 divides by it (256).")
    lambda1: float = option(0.02, "Eq. 7 weight of the AU displacement sparsity (Eq. 1, displacements in crop "
                                  "sides); the authors' released weights relative to L_rec.")
    lambda2: float = option(0.1, "Eq. 7 weight of the AU and pose cycles (Eq. 3, 4); the authors' released weights "
                                 "relative to L_rec.")
    lambda3: float = option(0.01, "Eq. 7 weight of the embedding consistencies (Eq. 5, 6; embeddings have unit "
                                  "variance per dimension, so 0.01 keeps them below the image terms).")
    flow_gain: float = option(0.0625, "Displacement in crop sides per unit of the decoders' output (1/16: 4 px at "
                                      "64 px). With 1 (runs before 2026-12-05), one Adam step at lr 1e-3 moved the "
                                      "displacements by ~1 px, as much as faces move between frames, and training "
                                      "settled on copying the source.")
    warmup: float = option(0.5, "Fraction of the optimiser steps over which lambda1..lambda3 grow linearly from 0 to "
                                "their values (the decoders first learn to explain the motion; 0: full weights "
                                "from the first step).")
    min_gap_s: float = option(0.04, "Smallest source-target gap in seconds.")
    max_gap_s: float = option(1.0, "Largest source-target gap in seconds (reached after the curriculum ramp).")
    curriculum_start_s: float = option(0.2, "Largest gap in seconds at epoch 1 (curriculum).")
    curriculum_ramp: float = option(0.5, "Fraction of the epochs over which the largest gap grows linearly to "
                                         "max_gap_s (0: no curriculum).")
    augment: bool = option(True, "Random horizontal flips (the same for source and target).")
    jitter: float = option(0.05, "Shift each training frame independently by up to this fraction of the crop side "
                                 "(random crops, as the authors' loader jitters its VoxCeleb frames; 0: off).")
    val_pairs: int | None = option(512, "Validate on at most this many pairs, spread evenly over the validation "
                                        "people (none: every pair).")


# -- network ---------------------------------------------------------------------------------------------

def _levels(size: int) -> int:
    """Number of stride-2 levels from ``size`` down to 4 x 4."""
    n = round(math.log2(size / 4))
    if size < 16 or 4 * 2 ** n != size:
        raise ConfigError(f"TCAE needs a crop size that is 4 times a power of two (16, 32, 64, 128, ...), got "
                          f"{size}; prepare the data with such a --size")
    return n


def _norm(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


class Encoder(nn.Module):
    """Face ``(B, 3, S, S)`` → ``(phi, psi)``, each ``(B, emb_dim)`` layer-normalised (no affine)."""

    def __init__(self, size: int, width: int, emb_dim: int, channels: int = 3, norm: str = "batch") -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for i in range(_levels(size)):
            c_out = width * min(2 ** i, 8)
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), _norm(norm if i else "none", c_out),
                       nn.LeakyReLU(0.2, inplace=True)]
            c_in = c_out
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in * 16, 2 * emb_dim)
        self.emb_dim = emb_dim

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(self.convs(x).flatten(1))
        phi, psi = h.split(self.emb_dim, dim=1)
        norm = nn.functional.layer_norm
        return norm(phi, (self.emb_dim,)), norm(psi, (self.emb_dim,))


class FlowDecoder(nn.Module):
    """``(source embedding, target embedding)`` ``(B, 2 D)`` → displacement ``(B, 2, S, S)`` in crop sides
    and a mask logit ``(B, 1, S, S)``: the notes' ``W x H x 3`` output of ``D_A`` / ``D_P``.

    With ``stride`` > 1 the three channels are decoded at ``S / stride`` and bilinearly upsampled to ``S``.
    """

    def __init__(self, size: int, width: int, emb_dim: int, stride: int = 1, norm: str = "batch") -> None:
        super().__init__()
        if stride not in (1, 2, 4) or size // stride < 4:
            raise ConfigError(f"flow_stride must be 1, 2 or 4 (and leave at least 4 x 4), got {stride}")
        self.size = size
        n = _levels(size // stride)
        c = width * min(2 ** (n - 1), 8)
        self.c0 = c
        self.fc = nn.Linear(2 * emb_dim, c * 16)
        layers: list[nn.Module] = []
        for i in range(n):
            c_out = width * min(2 ** max(n - 2 - i, 0), 8)
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(c, c_out, 3, padding=1), _norm(norm, c_out), nn.LeakyReLU(0.2, inplace=True)]
            c = c_out
        self.ups = nn.Sequential(*layers)
        self.out = nn.Conv2d(c, 3, 3, padding=1)
        # start near the identity transform (zero displacement, equal masks) while every weight gets gradients
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.zeros_(self.out.bias)

    def forward(self, src_emb: torch.Tensor, tgt_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = nn.functional.leaky_relu(self.fc(torch.cat([src_emb, tgt_emb], 1)), 0.2)
        y = self.out(self.ups(h.view(len(h), self.c0, 4, 4)))
        if y.shape[-1] != self.size:
            y = nn.functional.interpolate(y, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return y[:, :2], y[:, 2:]


class TCAENet(Network):
    """The TCAE network: encoder, AU decoder ``D_A``, pose decoder ``D_P`` (module docstring).

    ``encode(images)`` is ``phi`` ``(N, emb_dim)``; ``outputs(images)`` ``{"au": phi, "pose": psi}``;
    :meth:`reconstruct` gives the named images and fields of a source/target pair (for figures).
    """

    output_names = ("au", "pose")
    embedding_output = "au"

    def __init__(self, size: int, width: int = 16, emb_dim: int = 256, channels: int = 3,
                 flow_stride: int = 1, norm: str = "batch", flow_gain: float = 0.0625) -> None:
        super().__init__()
        self.size = size
        self.emb_dim = emb_dim
        self.flow_gain = float(flow_gain)
        self.encoder = Encoder(size, width, emb_dim, channels, norm)
        self.au_decoder = FlowDecoder(size, width, emb_dim, flow_stride, norm)
        self.pose_decoder = FlowDecoder(size, width, emb_dim, flow_stride, norm)

    # -- representations -----------------------------------------------------------------------------
    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(N, 3, S, S)`` in [0, 1] → ``(phi, psi)``, each ``(N, emb_dim)``."""
        return self.encoder(images)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The AU embedding ``phi`` ``(N, emb_dim)``."""
        return self.encoder(images)[0]

    def forward(self, images: torch.Tensor, target: torch.Tensor | None = None) -> Any:
        """:meth:`encode` of ``images``; with ``target``, :meth:`cycle` of the pairs (the training pass, so
        that a DistributedDataParallel wrapper sees it)."""
        return self.encode(images) if target is None else self.cycle(images, target)

    def outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        phi, psi = self.encoder(images)
        return {"au": phi, "pose": psi}

    # -- transforms ----------------------------------------------------------------------------------
    def _flow(self, decoder: FlowDecoder, src_emb: torch.Tensor, tgt_emb: torch.Tensor,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(displacement in crop sides ``(B, 2, S, S)``, the same in pixels, mask logit ``(B, 1, S, S)``)."""
        raw, mask = decoder(src_emb, tgt_emb)
        unit = raw * self.flow_gain
        return unit, unit * float(self.size), mask

    def cycle(self, src: torch.Tensor, tgt: torch.Tensor) -> dict[str, torch.Tensor]:
        """Everything Eq. 1–7 need for a batch of pairs ``src``, ``tgt`` ``(B, 3, S, S)`` in [0, 1].

        Keys: ``phi_s, psi_s, phi_t, psi_t`` ``(B, D)``; ``tau_a_unit`` ``(B, 2, S, S)`` (crop sides);
        ``tau_a, tau_p, tau`` ``(B, 2, S, S)`` (pixels); ``alpha_a`` ``(B, 1, S, S)``; images ``(B, 3, S, S)``
        ``out`` = tau(I_s), ``I_A``, ``I_P``, ``back_a`` = tau^{-A}(I_A), ``back_p`` = tau^{-P}(I_P);
        ``phi_sA, psi_sA, phi_sP, psi_sP`` ``(B, D)`` (embeddings of I_A and I_P).
        """
        B = len(src)
        phi, psi = self.encoder(torch.cat([src, tgt]))
        phi_s, phi_t, psi_s, psi_t = phi[:B], phi[B:], psi[:B], psi[B:]
        tau_a_unit, tau_a, mask_a = self._flow(self.au_decoder, phi_s, phi_t)
        _, tau_p, mask_p = self._flow(self.pose_decoder, psi_s, psi_t)
        tau, alpha_a, _ = combine_transforms(tau_a, tau_p, mask_a, mask_p)
        out = warp(src, tau)
        I_A = warp(src, tau_a)
        I_P = warp(src, tau_p)
        phi2, psi2 = self.encoder(torch.cat([I_A, I_P]))
        phi_sA, phi_sP, psi_sA, psi_sP = phi2[:B], phi2[B:], psi2[:B], psi2[B:]
        # reverse transforms: decoder inputs are (source, target) = (changed face, original source);
        # the notes' pose cycle input (psi_s psi_s^A) is a typo for (psi_s^P, psi_s)
        _, tau_a_back, _ = self._flow(self.au_decoder, phi_sA, phi_s)
        _, tau_p_back, _ = self._flow(self.pose_decoder, psi_sP, psi_s)
        back_a = warp(I_A, tau_a_back)
        back_p = warp(I_P, tau_p_back)
        return {"phi_s": phi_s, "psi_s": psi_s, "phi_t": phi_t, "psi_t": psi_t, "tau_a_unit": tau_a_unit,
                "tau_a": tau_a, "tau_p": tau_p, "tau": tau, "alpha_a": alpha_a, "out": out, "I_A": I_A, "I_P": I_P,
                "back_a": back_a, "back_p": back_p, "phi_sA": phi_sA, "psi_sA": psi_sA, "phi_sP": phi_sP,
                "psi_sP": psi_sP}

    def reconstruct(self, src: torch.Tensor, tgt: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named images and fields of pairs ``src``, ``tgt`` ``(B, 3, S, S)`` (figures; no cycles).

        Returns ``source``, ``target``, ``au_changed`` (I_A), ``pose_changed`` (I_P), ``reconstruction``
        (tau(I_s)) ``(B, 3, S, S)``; ``tau_au``, ``tau_pose``, ``tau`` ``(B, 2, S, S)`` in pixels;
        ``alpha_au`` ``(B, 1, S, S)``.
        """
        phi_s, psi_s = self.encoder(src)
        phi_t, psi_t = self.encoder(tgt)
        _, tau_a, mask_a = self._flow(self.au_decoder, phi_s, phi_t)
        _, tau_p, mask_p = self._flow(self.pose_decoder, psi_s, psi_t)
        tau, alpha_a, _ = combine_transforms(tau_a, tau_p, mask_a, mask_p)
        return {"source": src, "target": tgt, "au_changed": warp(src, tau_a), "pose_changed": warp(src, tau_p),
                "reconstruction": warp(src, tau), "tau_au": tau_a, "tau_pose": tau_p, "tau": tau,
                "alpha_au": alpha_a}


# -- losses of a batch -------------------------------------------------------------------------------------

@float32_math
def tcae_terms(c: dict[str, torch.Tensor], src: torch.Tensor, tgt: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample sums ``(B,)`` of Eq. 1–6 from :meth:`TCAENet.cycle`'s output ``c``."""
    return {
        "rec": reconstruction_loss(c["out"], tgt),                                  # Eq. 2
        "l1_a": l1_sparsity(c["tau_a_unit"]),                                       # Eq. 1 (crop sides)
        "cyc_a": cycle_loss(c["back_a"], src),                                      # Eq. 3
        "cyc_p": cycle_loss(c["back_p"], src),                                      # Eq. 4
        "emb_a": embedding_loss(c["psi_sA"], c["psi_s"], c["phi_sA"], c["phi_t"]),  # Eq. 5
        "emb_p": embedding_loss(c["phi_sP"], c["phi_s"], c["psi_sP"], c["psi_t"]),  # Eq. 6
    }


def warmup_factor(step: int, total_steps: int, warmup: float) -> float:
    """Multiplier of lambda1..lambda3 at optimiser step ``step`` (0-based) of ``total_steps``: linear from 0 to 1
    over the first ``warmup`` fraction of the steps, then 1 (``warmup = 0``: always 1)."""
    n = warmup * total_steps
    return 1.0 if n <= 0 else float(min(1.0, step / n))


def jitter_frames(x: torch.Tensor, amount: float) -> torch.Tensor:
    """Each image of ``x`` ``(B, C, H, W)`` shifted by its own random ``(dx, dy)`` in ``[-amount, amount]`` crop
    sides (bilinear, border pixels repeated): the random crops of the authors' data loader. Global torch RNG."""
    if amount <= 0:
        return x
    B, _, H, W = x.shape
    d = (torch.rand(B, 2, 1, 1, device=x.device) * 2 - 1) * amount * torch.tensor([W, H], device=x.device,
                                                                                   dtype=x.dtype).view(1, 2, 1, 1)
    return warp(x, d.expand(B, 2, H, W))


def flip_pairs(src: torch.Tensor, tgt: torch.Tensor, p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror a random share ``p`` of the pairs left–right (source and target alike; global torch RNG)."""
    f = (torch.rand(len(src), device=src.device) < p).view(-1, 1, 1, 1)
    return torch.where(f, src.flip(-1), src), torch.where(f, tgt.flip(-1), tgt)


@register_method("tcae")
class TCAEMethod(Method):
    """TCAE: twin-cycle autoencoder separating AU motion from head-pose motion (Li et al., CVPR 2019)."""

    Config = TCAEConfig
    frames = "pair"
    selection = Selection("loss", "min", initial=False)
    learns_head_motion = True

    def build(self) -> TCAENet:
        return TCAENet(self.data.size, self.cfg.width, self.cfg.emb_dim, self.data.channels, self.cfg.flow_stride,
                       self.cfg.norm, self.cfg.flow_gain)

    @property
    def weights(self) -> TCAEWeights:
        """Eq. 7's weights now: the configured ones times the warm-up factor (:func:`warmup_factor`)."""
        f = getattr(self, "_warm", 1.0)
        return TCAEWeights(f * self.cfg.lambda1, f * self.cfg.lambda2, f * self.cfg.lambda3)

    def on_step(self, step: int, total_steps: int) -> None:
        self._warm = warmup_factor(step, total_steps, self.cfg.warmup)

    def dataset(self, store: Any, split: str, seed: int = 0) -> Dataset:
        """Training pairs follow the curriculum (:class:`CurriculumPairs`); other splits use the full gap range,
        at most ``val_pairs`` of them, evenly spaced over the split's clips."""
        if split != "train":
            full = super().dataset(store, split, seed)
            n = len(full)  # type: ignore[arg-type]
            cap = self.cfg.val_pairs
            if cap is None or n <= cap:
                return full
            return Subset(full, sorted({int(i) for i in np.linspace(0, n - 1, cap).round()}))
        ds = CurriculumPairs(store, self.cfg.min_gap_s, self.cfg.max_gap_s, split="train", seed=seed)
        self._train_pairs: CurriculumPairs | None = ds
        return ds

    def setup(self, train_set: Dataset, run_dir: Path) -> TCAEConfig:
        self._run_dir: Path | None = Path(run_dir)
        return self.cfg

    def curriculum(self) -> list[float]:
        """Largest source–target gap (seconds) of each epoch 1..epochs."""
        c = self.cfg
        return [round(max_gap_at(e, c.epochs, c.curriculum_start_s, c.max_gap_s, c.curriculum_ramp), 4)
                for e in range(1, c.epochs + 1)]

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        ds = getattr(self, "_train_pairs", None)
        if ds is not None:
            c = self.cfg
            ds.set_epoch(epoch)
            ds.set_max_gap(max_gap_at(epoch, epochs, c.curriculum_start_s, c.max_gap_s, c.curriculum_ramp))

    def record(self) -> dict[str, Any]:
        return {"curriculum_max_gap_s": self.curriculum(),
                "displacements": "decoded in crop sides, warped in pixels; Eq. 1 in crop sides"}

    def _objective(self, src: torch.Tensor, tgt: torch.Tensor, weights: TCAEWeights,
                   ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        c = self.net(src, tgt)
        t = tcae_terms(c, src, tgt)
        total = tcae_objective(t["rec"], t["l1_a"], t["cyc_a"], t["cyc_p"], t["emb_a"], t["emb_p"],
                               (src.shape[-2], src.shape[-1]), self.cfg.emb_dim, weights, src.shape[1])
        return {"loss": total, **t}, c

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        src, tgt = batch["source"], batch["target"]
        if self.cfg.augment:
            src, tgt = flip_pairs(src, tgt)
        if self.cfg.jitter > 0:
            src, tgt = jitter_frames(src, self.cfg.jitter), jitter_frames(tgt, self.cfg.jitter)
        terms, _ = self._objective(src, tgt, self.weights)
        H, W = src.shape[-2:]
        n_img, n_flow = float(H * W * src.shape[1]), float(H * W * 2)
        with torch.no_grad():
            logs = {"rec": terms["rec"].mean() / n_img, "l1_a": terms["l1_a"].mean() / n_flow,
                    "cyc": (terms["cyc_a"] + terms["cyc_p"]).mean() / n_img,
                    "emb": (terms["emb_a"] + terms["emb_p"]).mean() / self.cfg.emb_dim}
        return {"loss": terms["loss"].mean(), **logs}

    def validation_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        src, tgt = batch["source"], batch["target"]
        # validated with the full weights of Eq. 7, so epochs compare during the warm-up
        terms, c = self._objective(src, tgt, TCAEWeights(self.cfg.lambda1, self.cfg.lambda2, self.cfg.lambda3))
        H, W = src.shape[-2:]
        n_img = float(H * W * src.shape[1])
        if getattr(self, "_run_dir", None) is not None and getattr(self, "_fig_pairs", None) is None:
            # figure pairs: the first pair of every batch of the first validation (6 picked evenly from them)
            self._fig_pool: list[tuple[torch.Tensor, torch.Tensor]] = getattr(self, "_fig_pool", [])
            self._fig_pool.append((src[0].detach().cpu(), tgt[0].detach().cpu()))
        return {"loss": terms["loss"], "rec": terms["rec"] / n_img,
                "floor": (src - tgt).abs().flatten(1).mean(1),
                "tau_au_px": c["tau_a"].norm(dim=1).flatten(1).mean(1),
                "tau_pose_px": c["tau_p"].norm(dim=1).flatten(1).mean(1),
                "alpha_au": c["alpha_a"].flatten(1).mean(1)}

    def validation_metrics(self, outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        m = super().validation_metrics(outputs)
        if m.get("floor"):
            m["rec_vs_floor"] = m["rec"] / m["floor"]
        run_dir = getattr(self, "_run_dir", None)
        pool = getattr(self, "_fig_pool", None)
        if getattr(self, "_fig_pairs", None) is None and pool:
            pick = sorted({round(i) for i in torch.linspace(0, len(pool) - 1, min(6, len(pool))).tolist()})
            self._fig_pairs = (torch.stack([pool[i][0] for i in pick]), torch.stack([pool[i][1] for i in pick]))
            self._fig_pool = []
        pairs = getattr(self, "_fig_pairs", None)
        if run_dir is not None and pairs is not None:
            from facedyn.tcae.figures import write_pair_figure

            dev = next(self.net.parameters()).device
            with torch.no_grad():
                rec = self.net.reconstruct(pairs[0].to(dev), pairs[1].to(dev))
            write_pair_figure(rec, run_dir)
        return m
