"""TCAE losses (tcae-notes-zh.txt Eq. 1-7), each against a tiny case computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from facedyn.tcae.losses import (
    TCAEWeights,
    combine_transforms,
    cycle_loss,
    embedding_loss,
    l1_sparsity,
    reconstruction_loss,
    tcae_objective,
)


def test_combine_is_softmax_weighted_alpha_a_tau_a_plus_alpha_p_tau_p() -> None:
    tau_a = torch.tensor([[[[2.0]], [[-4.0]]]])   # (1, 2, 1, 1): dx=2, dy=-4
    tau_p = torch.tensor([[[[10.0]], [[0.0]]]])
    mask_a = torch.full((1, 1, 1, 1), math.log(3.0))  # softmax(log 3, 0) = (0.75, 0.25)
    mask_p = torch.zeros(1, 1, 1, 1)
    tau, a, p = combine_transforms(tau_a, tau_p, mask_a, mask_p)
    assert a.item() == pytest.approx(0.75) and p.item() == pytest.approx(0.25)
    # 0.75 * (2, -4) + 0.25 * (10, 0) = (4, -3): the second term uses tau^P (the notes' typo prints tau^A)
    assert tau.flatten().tolist() == pytest.approx([4.0, -3.0])
    _, a2, p2 = combine_transforms(torch.randn(2, 2, 3, 3), torch.randn(2, 2, 3, 3), torch.randn(2, 1, 3, 3),
                                   torch.randn(2, 1, 3, 3))
    assert torch.allclose(a2 + p2, torch.ones_like(a2))


def test_l1_sparsity_eq1_sums_both_components_over_pixels() -> None:
    tau_a = torch.tensor([[[[1.0, -2.0]], [[0.5, 0.0]]], [[[0.0, 0.0]], [[0.0, -3.0]]]])  # (2, 2, 1, 2)
    assert l1_sparsity(tau_a).tolist() == pytest.approx([3.5, 3.0])


def test_reconstruction_and_cycle_are_l1_sums_per_sample() -> None:
    a = torch.tensor([[[[0.0, 1.0]], [[0.5, 0.5]], [[1.0, 0.0]]]])  # (1, 3, 1, 2)
    b = torch.tensor([[[[0.5, 1.0]], [[0.0, 0.5]], [[1.0, 0.25]]]])
    assert reconstruction_loss(a, b).tolist() == pytest.approx([0.5 + 0.5 + 0.25])
    assert cycle_loss(a, b).tolist() == pytest.approx([1.25])
    assert cycle_loss(a, a).tolist() == [0.0]


def test_embedding_loss_eq5_eq6_is_two_squared_distances() -> None:
    kept, kept_ref = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]])   # 4
    moved, moved_ref = torch.tensor([[0.0, 0.0]]), torch.tensor([[3.0, 1.0]])  # 10
    assert embedding_loss(kept, kept_ref, moved, moved_ref).tolist() == pytest.approx([14.0])


def test_objective_eq7_normalisations() -> None:
    # H = W = 2, 3 channels, D = 4: 1/(2*2*3) = 1/12, 1/(2*2*2) = 1/8, 1/4
    one = torch.ones(1)
    w = TCAEWeights(lambda1=2.0, lambda2=3.0, lambda3=5.0)
    got = tcae_objective(rec=12 * one, l1_a=8 * one, cyc_a=6 * one, cyc_p=6 * one, emb_a=1 * one, emb_p=3 * one,
                         hw=(2, 2), dim=4, weights=w)
    # 12/12 + 2 * 8/8 + 3 * (6 + 6)/12 + 5 * (1 + 3)/4 = 1 + 2 + 3 + 5
    assert got.tolist() == pytest.approx([11.0])
