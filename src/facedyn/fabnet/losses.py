"""FAb-Net's losses: the multi-source confidence blend, the L1 reconstruction and the curriculum.

The multi-source loss of the slides (Wiles, Koepke & Zisserman, BMVC 2018)::

    L = || t - sum_i e^{C_i} * g(v_t, v_si)(s_i) / sum_i e^{C_i} ||_1

is computed with a softmax over the sources (:func:`confidence_weights`), which is the same ratio without
overflow for large ``C_i``. With one source the weight is 1 everywhere and the loss is the single-source
L1 ``|| t - g(v_t, v_s)(s) ||_1``.

Curriculum (the slides' "Curriculum strategy"; the authors' ``train_attention_curriculum.py``): each batch's
per-sample losses are sorted (easiest first) and only the samples whose rank lies in a percentile window are
back-propagated: at first ``[0, 50)``, then the window shifts by 10 percentiles, four times:
``[10, 60)``, ``[20, 70)``, ``[30, 80)``, ``[40, 90)``. The authors shift when the validation loss stops
falling; facedyn shifts on a fixed epoch schedule (:func:`curriculum_stage`): training is cut into
``shifts + 1`` equal parts of the epochs, one window each (10 epochs: epochs 1-2, 3-4, 5-6, 7-8, 9-10).
"""

from __future__ import annotations

import torch

from facedyn.errors import ConfigError
from facedyn.precision import float32_math


def confidence_weights(logits: torch.Tensor) -> torch.Tensor:
    """Per-pixel source weights ``e^{C_i} / sum_j e^{C_j}`` from confidence logits.

    Args:
        logits: ``(B, K, 1, H, W)`` the confidence maps ``C_i`` of the ``K`` sources.
    Returns:
        ``(B, K, 1, H, W)``, non-negative, summing to 1 over ``K`` at every pixel (a softmax: stable for any
        ``C_i``).
    """
    return torch.softmax(logits, dim=1)


def blend_sources(warped: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """The generated frame ``sum_i e^{C_i} s'_i / sum_i e^{C_i}``.

    Args:
        warped: ``(B, K, C, H, W)`` the sources sampled by their predicted flows, ``s'_i = g(v_t, v_si)(s_i)``.
        logits: ``(B, K, 1, H, W)`` confidence maps ``C_i``.
    Returns:
        ``(B, C, H, W)``.
    """
    if warped.dim() != 5 or logits.dim() != 5 or logits.shape[2] != 1 or warped.shape[:2] != logits.shape[:2] \
            or warped.shape[3:] != logits.shape[3:]:
        raise ConfigError(f"blend_sources needs warped (B, K, C, H, W) and logits (B, K, 1, H, W); got "
                          f"{tuple(warped.shape)} and {tuple(logits.shape)}")
    return (confidence_weights(logits) * warped).sum(dim=1)


@float32_math
def per_sample_l1(generated: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per sample, ``(B, C, H, W)`` twice → ``(B,)`` (mean over channels and pixels)."""
    return (generated - target).abs().flatten(1).mean(dim=1)


def curriculum_stage(epoch: int, epochs: int, shifts: int = 4) -> int:
    """0-based curriculum stage of ``epoch`` (1-based) of ``epochs``: the epochs cut into ``shifts + 1``
    equal parts, stage ``k`` on part ``k``. With fewer epochs than stages, some stages are skipped."""
    if epochs < 1 or not 1 <= epoch <= epochs:
        raise ConfigError(f"epoch must lie in 1..epochs, got epoch {epoch} of {epochs}")
    if shifts < 0:
        raise ConfigError(f"curriculum shifts must be >= 0, got {shifts}")
    return min(shifts, (epoch - 1) * (shifts + 1) // epochs)


def percentile_window(stage: int, start: int = 50, shift: int = 10) -> tuple[int, int]:
    """Percentiles ``[lo, hi)`` of the per-sample losses back-propagated at curriculum ``stage``:
    ``[stage * shift, start + stage * shift)`` (stage 0: the easiest ``start`` %)."""
    lo, hi = stage * shift, start + stage * shift
    if not 0 <= lo < hi <= 100:
        raise ConfigError(f"curriculum window [{lo}, {hi}) at stage {stage} leaves 0..100 %; lower "
                          "--curriculum-start, --curriculum-shift or --curriculum-shifts")
    return lo, hi


def curriculum_schedule(epochs: int, start: int = 50, shift: int = 10, shifts: int = 4) -> list[dict[str, int]]:
    """The windows a run of ``epochs`` epochs uses: ``[{"first_epoch", "last_epoch", "lo", "hi"}, ...]``."""
    rows: list[dict[str, int]] = []
    for e in range(1, epochs + 1):
        lo, hi = percentile_window(curriculum_stage(e, epochs, shifts), start, shift)
        if rows and (rows[-1]["lo"], rows[-1]["hi"]) == (lo, hi):
            rows[-1]["last_epoch"] = e
        else:
            rows.append({"first_epoch": e, "last_epoch": e, "lo": lo, "hi": hi})
    return rows


def window_slice(n: int, lo: int, hi: int) -> tuple[int, int]:
    """Positions ``[i0, i1)`` of the sorted batch of ``n`` samples inside the percentile window ``[lo, hi)``:
    ``i0 = floor(n * lo / 100)``, ``i1 = floor(n * hi / 100)`` (as the authors' code), at least one sample."""
    if n < 1:
        raise ConfigError("the curriculum needs a batch of at least one sample")
    i0 = min(n - 1, n * lo // 100)
    return i0, max(i0 + 1, n * hi // 100)


def curriculum_select(per_sample: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Indices ``(M,)`` of the samples whose loss rank lies in the percentile window ``[lo, hi)``.

    Args:
        per_sample: ``(B,)`` forward-pass losses (ranked without gradient; ties keep batch order).
        lo, hi: percentiles, ``0 <= lo < hi <= 100``.
    """
    order = torch.sort(per_sample.detach(), stable=True).indices
    i0, i1 = window_slice(per_sample.shape[0], lo, hi)
    return order[i0:i1]


@float32_math
def curriculum_loss(per_sample: torch.Tensor, lo: int = 0, hi: int = 100) -> torch.Tensor:
    """Mean of the per-sample losses ``(B,)`` inside the percentile window ``[lo, hi)`` (scalar); the
    others get no gradient. ``lo=0, hi=100``: the plain batch mean."""
    if (lo, hi) == (0, 100):
        return per_sample.mean()
    return per_sample[curriculum_select(per_sample, lo, hi)].mean()
