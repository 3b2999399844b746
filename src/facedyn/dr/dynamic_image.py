"""Dynamic images by approximate rank pooling (Bilen et al., CVPR 2016), forward and backward.

Approximate rank pooling (ARP) summarises frames ``1..N`` (temporal order) as ``sum_i alpha_i I_i``
with::

    alpha_i = sum_{t=i..N} (2t - N - 1) / t = 2(N - i + 1) - (N + 1)(H_N - H_{i-1})

``H_k`` the k-th harmonic number (``H_0 = 0``); this is ``fw(i)`` of the authors' reference code.
The weights sum to zero (``sum_i alpha_i = sum_t (2t - N - 1) = 0``), so a constant offset of all
frames does not change the dynamic image; for ``N >= 2`` the last frame gets a positive weight and
the first a negative one. Some widely copied ports drop the ``- 1`` (``(2t - N) / t``): those
weights sum to ``N``, not 0, and leak the mean frame into the result. We keep the ``- 1``.

For a window ``(2T + 1)`` frames centred on ``t`` (index ``T``), the forward dynamic image (DI)
pools ``t-T..t`` and the backward one (BDI) pools the reversed frames ``t+T..t``; both end on the
centre frame, so both rank frames by how close they are to ``t``.
"""

from __future__ import annotations

from typing import Literal

import torch

from facedyn.errors import ConfigError

Direction = Literal["forward", "backward"]


def arp_weights(N: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """ARP weights ``alpha_i = 2(N - i + 1) - (N + 1)(H_N - H_{i-1})`` for ``i = 1..N``: ``(N,)``.

    Computed in float64 and cast to ``dtype``. ``N = 1`` gives ``[0.]``.
    """
    if N < 1:
        raise ConfigError(f"approximate rank pooling needs at least one frame, got N={N}")
    i = torch.arange(1, N + 1, dtype=torch.float64)
    harmonic = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(1.0 / i, 0)])  # H_0..H_N
    alpha = 2.0 * (N - i + 1) - (N + 1) * (harmonic[N] - harmonic[:-1])
    return alpha.to(dtype)


def approximate_rank_pooling(frames: torch.Tensor) -> torch.Tensor:
    """Dynamic image of one sequence: ``sum_i alpha_i frames_i``.

    Args:
        frames: ``(N, C, H, W)`` float in temporal order (e.g. in [0, 1]).
    Returns:
        ``(C, H, W)`` float (unbounded; zero-sum weights, later frames weighted positively).
    """
    if frames.dim() != 4:
        raise ConfigError(f"frames must be (N, C, H, W), got shape {tuple(frames.shape)}")
    return approximate_rank_pooling_batch(frames.unsqueeze(0))[0]


def approximate_rank_pooling_batch(frames: torch.Tensor) -> torch.Tensor:
    """Dynamic images of a batch of sequences.

    Args:
        frames: ``(B, N, C, H, W)`` float in temporal order.
    Returns:
        ``(B, C, H, W)`` float.
    """
    if frames.dim() != 5:
        raise ConfigError(f"frames must be (B, N, C, H, W), got shape {tuple(frames.shape)}")
    dtype = frames.dtype if frames.is_floating_point() else torch.float32
    alpha = arp_weights(frames.shape[1], dtype=dtype).to(frames.device)
    return torch.einsum("n,bnchw->bchw", alpha, frames.to(dtype))


def dynamic_image(window: torch.Tensor, direction: Direction = "forward") -> torch.Tensor:
    """Forward (DI) or backward (BDI) dynamic image of each window, ending on its centre frame.

    Args:
        window: ``(B, 2T+1, C, H, W)`` float frames in temporal order, centre at index ``T``.
        direction: ``"forward"`` pools frames ``t-T..t`` (indices ``0..T``); ``"backward"`` pools
            ``t+T..t`` (indices ``2T..T``, reversed so the centre frame comes last).
    Returns:
        ``(B, C, H, W)`` float.
    """
    if window.dim() != 5 or window.shape[1] % 2 != 1:
        raise ConfigError(f"window must be (B, 2T+1, C, H, W), got shape {tuple(window.shape)}")
    T = (window.shape[1] - 1) // 2
    if direction == "forward":
        return approximate_rank_pooling_batch(window[:, : T + 1])
    if direction == "backward":
        return approximate_rank_pooling_batch(window[:, T:].flip(1))
    raise ConfigError(f"direction must be 'forward' or 'backward', got {direction!r}")


#: Regression targets of the DI-target baselines: the forward (``di``) or backward (``bdi``) DI.
TARGETS = ("di", "bdi")


def make_target(window: torch.Tensor, target: str, eps: float = 1e-8) -> torch.Tensor:
    """The regression target of a window: its forward (``di``) or backward (``bdi``) dynamic image,
    divided per sample by its standard deviation.

    DI magnitudes grow with ``T`` and vary between clips, so every target is divided by its own standard
    deviation over all ``C·H·W`` values. Its mean is *not* subtracted: ranking by ``<d, I_a> − <d, I_b>``
    is invariant to a positive scale of ``d`` but not to adding a constant (``<c·1, I_a − I_b> ≠ 0``
    whenever the frames' brightness differs), so scaling alone keeps the target's rankings exactly
    those of the true DI.

    Args:
        window: ``(B, 2T+1, C, H, W)`` float in [0, 1], temporal order, centre at index ``T``.
        target: ``di`` (frames ``t−T..t``) or ``bdi`` (frames ``t+T..t``).
    Returns:
        ``(B, C, H, W)`` float, unit std per sample (zeros where the DI is zero).
    """
    if target not in TARGETS:
        raise ConfigError(f"unknown target {target!r}; use di or bdi")
    with torch.no_grad():
        d = dynamic_image(window, direction="forward" if target == "di" else "backward")
        s = d.flatten(1).std(dim=1).clamp_min(eps)
        return d / s.view(-1, *([1] * (d.dim() - 1)))
