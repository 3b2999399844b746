"""The Rank Loss of dr-paper.txt §3.2 (Eq. 1–3) and the quantities around it.

A window holds ``N = 2T + 1`` frames in temporal order with the centre frame ``t`` at index ``T``.
A DR ``d`` scores every frame by the Frobenius inner product ``S_a = <d, I_a>`` (all channels and
pixels) and ``delta_ab = S_a - S_b`` (Eq. 1). Eq. 2 asks ``delta_ab > 0`` for every pair on one
side of ``t`` where ``a`` is the frame closer to ``t``:

* before ``t``: ``b < a <= t`` (scores rise towards the centre),
* after ``t``:  ``t <= a < b`` (scores fall away from the centre).

Eq. 3's two sums include the centre frame itself (``a`` runs up to ``t`` in the first sum and
starts at ``t`` in the second), so each side has ``T(T+1)/2`` pairs and a window ``T(T+1)``.

Eq. 3, per sample::

    L(d) = gamma * ||d||^2 - epsilon + sum_{Eq. 2 pairs} max(0, theta - delta_ab)

Numerics: every score is taken against the window minus its centre frame, ``<d, I_a - I_t>``.
``delta_ab`` is unchanged (the common term ``<d, I_t>`` cancels), but neighbouring frames are near
copies of each other, so the plain scores are large numbers whose differences lose float32 digits;
the centred scores are small, and duplicated frames give exact ties.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from scipy import optimize, special

from facedyn.errors import ConfigError
from facedyn.precision import float32_math

Reduction = Literal["mean", "sum", "none"]


# --------------------------------------------------------------------------------------------- pairs
def _pairs_np(T: int) -> tuple[np.ndarray, np.ndarray]:
    a_list: list[int] = []
    b_list: list[int] = []
    t = T
    # First sum of Eq. 3: b = t-T .. t-1, a = b+1 .. t.
    for b in range(t - T, t):
        for a in range(b + 1, t + 1):
            a_list.append(a)
            b_list.append(b)
    # Second sum of Eq. 3: a = t .. t+T-1, b = a+1 .. t+T. The paper prints the upper limit of b as
    # "T"; with the window indexed around t it can only mean t + T (a typo in dr-paper.txt Eq. 3).
    for a in range(t, t + T):
        for b in range(a + 1, t + T + 1):
            a_list.append(a)
            b_list.append(b)
    return np.asarray(a_list, dtype=np.int64), np.asarray(b_list, dtype=np.int64)


def eq2_pairs(T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(a, b)`` of all Eq. 2 pairs in a window of ``2T + 1`` frames (centre at index ``T``).

    The first ``T(T+1)/2`` pairs lie before the centre (``b < a <= T``), the rest after it
    (``T <= a < b``); ``a`` is always the frame closer to the centre. Both are int64 ``(T(T+1),)``.
    ``T = 0`` gives empty tensors.
    """
    if T < 0:
        raise ConfigError(f"T must be >= 0, got {T}")
    a, b = _pairs_on(int(T), torch.device("cpu"))
    return a.clone(), b.clone()


@lru_cache(maxsize=64)
def _pairs_on(T: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The Eq. 2 pair indices on ``device`` (cached: the one pair cache)."""
    a, b = _pairs_np(T)
    return torch.from_numpy(a).to(device), torch.from_numpy(b).to(device)


def before_centre(T: int) -> torch.Tensor:
    """Bool ``(T(T+1),)`` over :func:`eq2_pairs`: True for the pairs before the centre (``b < a <= T``),
    the ones a forward dynamic image ranks; False for those after it (the backward DI's)."""
    a, b = eq2_pairs(T)
    return (a <= T) & (b < T)


def _half_length(d: torch.Tensor, window: torch.Tensor) -> int:
    if window.dim() != 5:
        raise ConfigError(f"window must be (B, 2T+1, C, H, W), got shape {tuple(window.shape)}")
    n = window.shape[1]
    if n % 2 != 1:
        raise ConfigError(f"a window needs an odd number of frames 2T+1 (centre at index T), got {n}")
    if d.shape != window.shape[:1] + window.shape[2:]:
        raise ConfigError(f"d {tuple(d.shape)} does not match the window's frames {tuple(window.shape)}: "
                          "d must be (B, C, H, W) with the window (B, 2T+1, C, H, W)")
    return (n - 1) // 2


def frame_scores(d: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Centred scores ``<d, I_a - I_t>`` for every frame of the window (Eq. 1 up to a per-sample constant).

    Args:
        d: ``(B, C, H, W)`` float DR.
        window: ``(B, 2T+1, C, H, W)`` float frames in temporal order, centre at index ``T``.
    Returns:
        ``(B, 2T+1)`` in ``d``'s dtype; differences between entries are the ``delta_ab`` of Eq. 1.
    """
    T = _half_length(d, window)
    w = window.to(d.dtype)
    w = (w - w[:, T : T + 1]).flatten(2)  # (B, N, D)
    return torch.bmm(w, d.flatten(1).unsqueeze(-1)).squeeze(-1)


def pair_deltas(d: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """``delta_ab = S_a - S_b`` for every Eq. 2 pair, in :func:`eq2_pairs` order.

    Args:
        d: ``(B, C, H, W)`` float DR.
        window: ``(B, 2T+1, C, H, W)`` float frames in temporal order, centre at index ``T``.
    Returns:
        ``(B, T(T+1))`` float; positive where the pair is ranked as Eq. 2 asks.
    """
    T = _half_length(d, window)
    s = frame_scores(d, window)
    a, b = _pairs_on(T, s.device)
    return s[:, a] - s[:, b]


@float32_math
def rank_loss(
    d: torch.Tensor,
    window: torch.Tensor,
    theta: float,
    gamma: float = 0.0,
    epsilon: float = 0.0,
    *,
    reduction: Reduction = "mean",
    normalize_pairs: bool = False,
) -> torch.Tensor:
    """The Rank Loss of Eq. 3.

    Per sample ``gamma * ||d||^2 - epsilon + sum_pairs max(0, theta - delta_ab)`` over the
    ``T(T+1)`` Eq. 2 pairs.

    Args:
        d: ``(B, C, H, W)`` float DR (unconstrained).
        window: ``(B, 2T+1, C, H, W)`` float frames (e.g. in [0, 1]) in temporal order, centre at ``T``.
        theta: the margin ("rank success factor"); see :func:`calibrate_theta`.
        gamma: weight of ``||d||^2`` (squared Frobenius norm over channels and pixels).
        epsilon: constant subtracted per sample (does not change gradients).
        reduction: ``"mean"`` (default, the batch mean), ``"sum"`` or ``"none"`` (``(B,)``).
        normalize_pairs: divide the hinge sum by the pair count ``T(T+1)``, so ``theta``/``gamma``
            keep their meaning across ``T``. Default False: the paper's plain sum.
    Returns:
        A scalar tensor (``(B,)`` with ``reduction="none"``).
    """
    deltas = pair_deltas(d, window)
    hinge = torch.clamp(theta - deltas, min=0).sum(dim=1)
    if normalize_pairs and deltas.shape[1] > 0:
        hinge = hinge / deltas.shape[1]
    per = hinge - epsilon
    if gamma:
        per = per + gamma * d.flatten(1).pow(2).sum(dim=1)
    if reduction == "mean":
        return per.mean()
    if reduction == "sum":
        return per.sum()
    if reduction == "none":
        return per
    raise ConfigError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


@float32_math
def ranking_accuracy(d: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Fraction of Eq. 2 pairs with ``delta_ab > 0`` (a tie counts as wrong).

    Args:
        d: ``(B, C, H, W)`` float DR.
        window: ``(B, 2T+1, C, H, W)`` float frames in temporal order, centre at index ``T``.
    Returns:
        ``(B,)`` float32 in [0, 1] (NaN for ``T = 0``, which has no pairs).
    """
    return (pair_deltas(d, window) > 0).float().mean(dim=1)


# ---------------------------------------------------------------------------------------- centring
def centred(images: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Each image minus its own per-channel spatial mean: the still-image floor DR.

    Args:
        images: ``(B, C, H, W)`` float (e.g. in [0, 1]).
        mask: optional ``(B, 1, H, W)`` bool (or 0/1) face region, e.g. the non-zero pixels of an
            aligned crop (zero outside the landmark hull). The mean is then taken over the mask only
            and the result is zero outside it, so the background does not pull the mean down.
    Returns:
        ``(B, C, H, W)`` float, zero mean per channel (over the mask where given).
    """
    if images.dim() != 4:
        raise ConfigError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    if mask is None:
        return images - images.mean(dim=(2, 3), keepdim=True)
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != images.shape[0] \
            or mask.shape[2:] != images.shape[2:]:
        raise ConfigError(f"mask must be (B, 1, H, W) matching images {tuple(images.shape)}, "
                          f"got {tuple(mask.shape)}")
    m = mask.to(images.dtype)
    count = m.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    mean = (images * m).sum(dim=(2, 3), keepdim=True) / count
    return (images - mean) * m


# ------------------------------------------------------------------------------------ theta
def _pair_diff_norms(windows: torch.Tensor) -> np.ndarray:
    """``||I_a - I_b||_F`` for every Eq. 2 pair of every window: float64 ``(M * P,)``."""
    N = windows.shape[1]
    T = (N - 1) // 2
    a, b = eq2_pairs(T)
    w = windows.to(torch.float64)
    w = (w - w[:, T : T + 1]).flatten(2)
    gram = torch.bmm(w, w.transpose(1, 2))  # (M, N, N)
    sq = gram[:, a, a] + gram[:, b, b] - 2 * gram[:, a, b]
    return sq.clamp_min(0).sqrt().flatten().numpy()


def random_clear_rate(windows: torch.Tensor, theta: float, scale: float = 1.0) -> float:
    """Expected fraction of Eq. 2 pairs on which a random DR clears the margin (``delta_ab > theta``).

    "Random DR": i.i.d. ``N(0, scale^2)`` entries. Given the window, ``delta_ab = <d, I_a - I_b>`` is
    then exactly ``N(0, scale^2 ||I_a - I_b||^2)``, so the rate is the mean normal tail probability
    over the pairs (no sampling). ``windows``: ``(M, 2T+1, C, H, W)`` float.
    """
    s = _pair_diff_norms(windows) * scale
    s = s[s > 0]
    total = windows.shape[0] * (windows.shape[1] ** 2 - 1) // 4
    if total == 0:
        return 0.0
    return float(special.ndtr(-theta / s).sum() / total)


def calibrate_theta(
    windows: torch.Tensor,
    quantile: float = 0.9995,
    n_random: int = 0,
    scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> float:
    """The margin ``theta`` that a random DR clears (``delta_ab > theta``) on ``1 - quantile`` of the pairs.

    dr-paper.txt §4.2: "θ is set beforehand to ensure the chance level ranking accuracy to be less
    than 0.1 %". Here a *random DR* has i.i.d. ``N(0, scale^2)`` entries, ``scale`` being the
    per-element std the DR is expected to have (e.g. the std of the model's output at
    initialisation, or of the centred image); ``theta`` is the ``quantile`` of ``delta_ab`` over
    random DRs x the Eq. 2 pairs of the given real windows. ``theta`` scales linearly with ``scale``.

    The default ``quantile`` 0.9995 aims at half the allowed 0.1 %: at exactly 0.999 a random DR
    would clear the margin on 0.1 % of pairs on average (not fewer), and other windows than the
    calibration ones scatter around it. The price is a ``theta`` ~8 % larger than the 0.999 one.

    Args:
        windows: ``(M, 2T+1, C, H, W)`` float real windows (temporal order, centre at ``T``), T >= 1.
        quantile: in (0, 1); the fraction of random pairs that must *not* clear ``theta``.
        n_random: 0 (default) computes the quantile exactly: given a window, ``delta_ab`` of a
            Gaussian DR is ``N(0, scale^2 ||I_a - I_b||^2)``, so the rate is a mixture of normal tails
            solved for ``theta`` by root finding. ``n_random > 0`` instead draws that many random
            DRs, scores each against every window and takes the empirical quantile (Monte Carlo).
        scale: per-element std of the random DR (> 0).
        generator: torch generator for the Monte-Carlo draws.
    Returns:
        ``theta`` (float >= 0).
    """
    if windows.dim() != 5 or windows.shape[1] < 3 or windows.shape[1] % 2 != 1:
        raise ConfigError(f"windows must be (M, 2T+1, C, H, W) with T >= 1, got shape {tuple(windows.shape)}")
    if not 0.0 < quantile < 1.0:
        raise ConfigError(f"quantile must lie in (0, 1), got {quantile}")
    if not scale > 0:
        raise ConfigError(f"scale must be > 0, got {scale}")
    if n_random > 0:
        M, N = windows.shape[:2]
        T = (N - 1) // 2
        a, b = eq2_pairs(T)
        w = windows.to(torch.float32)
        w = (w - w[:, T : T + 1]).reshape(M * N, -1)  # (M*N, D)
        deltas = []
        for start in range(0, n_random, 64):
            k = min(64, n_random - start)
            r = torch.randn(k, w.shape[1], generator=generator) * scale
            s = (r @ w.T).view(k, M, N)
            deltas.append((s[:, :, a] - s[:, :, b]).flatten())
        return max(0.0, float(torch.quantile(torch.cat(deltas).double(), quantile)))
    sig = _pair_diff_norms(windows) * scale
    total = sig.size
    sig = sig[sig > 0]
    if sig.size == 0:
        return 0.0
    target = (1.0 - quantile) * total

    def excess(theta: float) -> float:
        return float(special.ndtr(-theta / sig).sum()) - target

    if excess(0.0) <= 0:  # more than 1 - quantile of the pairs are exact ties: any theta >= 0 will do
        return 0.0
    hi = float(sig.max()) * 8.0  # a normal tail beyond 8 sigma is < 1e-15
    while excess(hi) > 0:
        hi *= 2.0
    theta = optimize.brentq(excess, 0.0, hi, xtol=1e-12 * hi, rtol=1e-12, maxiter=200)
    return float(theta) if math.isfinite(theta) else 0.0
