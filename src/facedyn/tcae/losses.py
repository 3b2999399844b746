"""TCAE losses (tcae-notes-zh.txt Eq. 1–7): small pure functions, one per equation.

Notation (per sample of a batch of ``B`` source/target pairs, crops ``H x W``):

* ``I_s``, ``I_t``: source and target images ``(B, 3, H, W)`` in [0, 1];
* ``phi``, ``psi``: AU and pose embeddings ``(B, D)`` (D = 256 in the paper);
* ``tau^A``, ``tau^P``: AU- and pose-related displacement fields ``(B, 2, H, W)`` (``(dx, dy)`` per pixel,
  backward warping as :func:`facedyn.nn.warp.warp`), each decoded with a mask channel ``(B, 1, H, W)``;
* ``tau = alpha^A tau^A + alpha^P tau^P`` with ``alpha^A + alpha^P = 1`` per pixel (softmax of the two
  mask channels). The notes print ``alpha^A tau^A + alpha^P tau^A``: a typo, the second term is
  ``alpha^P tau^P``.

Eq. 1–6 are returned as the notes write them, per-sample **sums** ``(B,)`` over pixels (and channels or
embedding dimensions); :func:`tcae_objective` applies Eq. 7's normalisations (W x H x 3 for image terms,
W x H x 2 for the displacement term, the embedding size D for the embedding terms) and the weights
lambda1..lambda3, and averages over the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from facedyn.precision import float32_math

__all__ = [
    "TCAEWeights",
    "combine_transforms",
    "cycle_loss",
    "embedding_loss",
    "l1_sparsity",
    "reconstruction_loss",
    "tcae_objective",
]


def combine_transforms(tau_a: torch.Tensor, tau_p: torch.Tensor, mask_a: torch.Tensor,
                       mask_p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The combined transform ``tau = alpha^A tau^A + alpha^P tau^P`` (notes, "Target reconstruction").

    ``(alpha^A, alpha^P)`` is the per-pixel softmax of the two mask channels, so ``alpha^A + alpha^P = 1``
    at every pixel. (The notes print ``alpha^P tau^A`` for the second term: a typo for ``alpha^P tau^P``.)

    Args:
        tau_a, tau_p: ``(B, 2, H, W)`` displacement fields.
        mask_a, mask_p: ``(B, 1, H, W)`` mask logits.

    Returns:
        ``tau`` ``(B, 2, H, W)``, ``alpha_a`` and ``alpha_p`` ``(B, 1, H, W)``.
    """
    alpha = torch.softmax(torch.cat([mask_a, mask_p], dim=1), dim=1)
    alpha_a, alpha_p = alpha[:, :1], alpha[:, 1:]
    return alpha_a * tau_a + alpha_p * tau_p, alpha_a, alpha_p


def l1_sparsity(tau_a: torch.Tensor) -> torch.Tensor:
    """Eq. 1: ``L1^A = sum_{x,y} ||tau^A_xy||_1`` per sample. ``tau_a`` ``(B, 2, H, W)`` → ``(B,)``."""
    return tau_a.abs().flatten(1).sum(1)


def reconstruction_loss(warped: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 2: ``L_rec = ||tau(I_s) - I_t||_1`` per sample (sum over pixels and channels).

    ``warped`` = ``tau(I_s)`` and ``target`` = ``I_t``, ``(B, C, H, W)`` → ``(B,)``.
    """
    return (warped - target).abs().flatten(1).sum(1)


def cycle_loss(back: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Eq. 3 / Eq. 4: ``||tau^{-A}(tau^A(I_s)) - I_s||_1`` (or the pose cycle's) per sample.

    ``back`` = the source warped there and back, ``source`` = ``I_s``, ``(B, C, H, W)`` → ``(B,)``.
    """
    return (back - source).abs().flatten(1).sum(1)


def embedding_loss(kept: torch.Tensor, kept_ref: torch.Tensor, moved: torch.Tensor,
                   moved_ref: torch.Tensor) -> torch.Tensor:
    """Eq. 5 / Eq. 6: ``||kept - kept_ref||^2 + ||moved - moved_ref||^2`` per sample, ``(B, D)`` each → ``(B,)``.

    AU cycle (Eq. 5): ``kept = psi_s^A``, ``kept_ref = psi_s`` (changing the AUs keeps the pose) and
    ``moved = phi_s^A``, ``moved_ref = phi_t`` (I_A has the target's AUs). Pose cycle (Eq. 6):
    ``kept = phi_s^P``, ``kept_ref = phi_s`` and ``moved = psi_s^P``, ``moved_ref = psi_t``.
    """
    return (kept - kept_ref).pow(2).sum(1) + (moved - moved_ref).pow(2).sum(1)


@dataclass(frozen=True)
class TCAEWeights:
    """Eq. 7's weights: ``lambda1`` (AU sparsity), ``lambda2`` (cycles), ``lambda3`` (embeddings)."""

    lambda1: float
    lambda2: float
    lambda3: float


@float32_math
def tcae_objective(rec: torch.Tensor, l1_a: torch.Tensor, cyc_a: torch.Tensor, cyc_p: torch.Tensor,
                   emb_a: torch.Tensor, emb_p: torch.Tensor, hw: tuple[int, int], dim: int,
                   weights: TCAEWeights, channels: int = 3) -> torch.Tensor:
    """Eq. 7, per sample ``(B,)``::

        L = L_rec / (W H 3) + lambda1 L1^A / (W H 2) + lambda2 (L_cyc^A + L_cyc^P) / (W H 3)
            + lambda3 (L_emb^A + L_emb^P) / D

    from the per-sample sums of Eq. 1–6 (each ``(B,)``); ``hw`` = ``(H, W)``, ``dim`` = D (256 in the
    notes, the embedding size), ``channels`` = 3 for RGB.
    """
    H, W = hw
    pix = float(H * W)
    return (rec / (pix * channels) + weights.lambda1 * l1_a / (pix * 2)
            + weights.lambda2 * (cyc_a + cyc_p) / (pix * channels)
            + weights.lambda3 * (emb_a + emb_p) / float(dim))
