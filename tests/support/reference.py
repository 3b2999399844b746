"""Literal transcriptions used as references by tests and benchmarks (not library code)."""

from __future__ import annotations

import torch


def rank_loss_loops(d: torch.Tensor, window: torch.Tensor, theta: float, gamma: float = 0.0,
                     epsilon: float = 0.0) -> torch.Tensor:
    """Eq. 3 transcribed literally with Python loops (reference for tests and the benchmark).

    Same inputs and output as :func:`rank_loss` (batch mean). Scores are the plain ``<d, I_a>``.
    """
    B, N = window.shape[:2]
    T = (N - 1) // 2
    t = T
    total = d.new_zeros(())
    for i in range(B):
        def score(a: int, i: int = i) -> torch.Tensor:
            return (d[i] * window[i, a]).sum()

        def delta(a: int, b: int) -> torch.Tensor:
            return score(a) - score(b)

        L = gamma * (d[i] ** 2).sum() - epsilon
        for b in range(t - T, t - 1 + 1):
            for a in range(b + 1, t + 1):
                L = L + torch.clamp(theta - delta(a, b), min=0)
        for a in range(t, t + T - 1 + 1):
            for b in range(a + 1, t + T + 1):  # printed upper limit "T" read as t + T
                L = L + torch.clamp(theta - delta(a, b), min=0)
        total = total + L
    return total / B
