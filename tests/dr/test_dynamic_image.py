"""Approximate rank pooling (Bilen et al.) and forward/backward dynamic images."""

from __future__ import annotations

import pytest
import torch

from facedyn.dr.dynamic_image import (
    approximate_rank_pooling,
    approximate_rank_pooling_batch,
    arp_weights,
    dynamic_image,
)
from facedyn.dr.rank_loss import pair_deltas, ranking_accuracy
from facedyn.errors import ConfigError


def definition_weights(N: int) -> list[float]:
    """alpha_i = sum_{t=i..N} (2t - N - 1) / t, straight from the definition."""
    return [sum((2 * t - N - 1) / t for t in range(i, N + 1)) for i in range(1, N + 1)]


def dropped_minus_one(N: int) -> torch.Tensor:
    """The variant some ports use: 2(N - i + 1) - N (H_N - H_{i-1}), i.e. (2t - N) / t."""
    return torch.tensor([sum((2 * t - N) / t for t in range(i, N + 1)) for i in range(1, N + 1)],
                        dtype=torch.float64)


@pytest.mark.parametrize("N", [1, 2, 3, 4, 6, 10, 11, 19])
def test_weights_equal_the_definition(N: int) -> None:
    got = arp_weights(N, dtype=torch.float64)
    assert got.shape == (N,)
    assert torch.allclose(got, torch.tensor(definition_weights(N), dtype=torch.float64), atol=1e-12)


def test_weights_known_values() -> None:
    assert torch.allclose(arp_weights(2, torch.float64), torch.tensor([-0.5, 0.5], dtype=torch.float64))
    expect3 = torch.tensor([-4 / 3, 2 / 3, 2 / 3], dtype=torch.float64)
    assert torch.allclose(arp_weights(3, torch.float64), expect3)
    assert arp_weights(1).tolist() == [0.0]


@pytest.mark.parametrize("N", [2, 3, 6, 11, 19])
def test_weights_sum_to_zero_last_positive_first_negative(N: int) -> None:
    w = arp_weights(N, dtype=torch.float64)
    assert abs(float(w.sum())) < 1e-10  # sum_i alpha_i = sum_t (2t - N - 1) = 0
    assert float(w[-1]) == pytest.approx((N - 1) / N)
    assert float(w[0]) < 0


@pytest.mark.parametrize("N", [2, 3, 6, 11, 19])
def test_weights_are_not_the_dropped_minus_one_variant(N: int) -> None:
    ours = arp_weights(N, dtype=torch.float64)
    port = dropped_minus_one(N)
    assert float((ours - port).abs().max()) > 0.1
    assert float(port.sum()) == pytest.approx(N)  # the variant leaks N x the mean frame
    # exactly: port_i - ours_i = H_N - H_{i-1}
    H = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(1 / torch.arange(1, N + 1.0), 0)])
    assert torch.allclose(port - ours, H[N] - H[:-1].to(torch.float64))


def test_constant_offset_does_not_change_the_dynamic_image() -> None:
    frames = torch.rand(7, 3, 5, 5, dtype=torch.float64)
    assert torch.allclose(approximate_rank_pooling(frames + 0.37), approximate_rank_pooling(frames))


def test_linear_ramp_scores_rise_with_time() -> None:
    g = torch.Generator().manual_seed(0)
    base, u = torch.rand(3, 8, 8, generator=g), torch.randn(3, 8, 8, generator=g)
    N = 9
    frames = torch.stack([base + 0.05 * i * u for i in range(N)])
    di = approximate_rank_pooling(frames)
    assert di.shape == (3, 8, 8)
    scores = torch.einsum("chw,nchw->n", di.double(), frames.double())
    assert bool((scores[1:] > scores[:-1]).all())
    # DI of the ramp is a positive multiple of its direction: sum_i i alpha_i = N(N+1)(N-1)/12 per step
    k = 0.05 * N * (N + 1) * (N - 1) / 12
    assert torch.allclose(di, k * u, atol=1e-4)


def test_matches_explicit_weighted_sum_and_batch() -> None:
    frames = torch.rand(2, 5, 3, 4, 4)
    w = arp_weights(5)
    explicit = sum(w[i] * frames[:, i] for i in range(5))
    assert torch.allclose(approximate_rank_pooling_batch(frames), explicit, atol=1e-6)
    assert torch.allclose(approximate_rank_pooling(frames[1]), explicit[1], atol=1e-6)


def test_backward_di_is_di_of_reversed_window_and_both_end_on_centre() -> None:
    T = 3
    win = torch.rand(2, 2 * T + 1, 3, 6, 6)
    di = dynamic_image(win, "forward")
    bdi = dynamic_image(win, "backward")
    assert torch.allclose(di, approximate_rank_pooling_batch(win[:, : T + 1]))
    assert torch.allclose(bdi, approximate_rank_pooling_batch(win.flip(1)[:, : T + 1]))
    assert torch.allclose(dynamic_image(win.flip(1), "forward"), bdi)
    # uint8-like input promotes to float
    assert dynamic_image((win * 255).to(torch.uint8), "forward").dtype == torch.float32


def test_forward_di_ranks_the_past_and_backward_di_the_future() -> None:
    # a monotonic motion through the centre frame: Eq. 2 wants scores to rise before t and fall after
    T = 4
    g = torch.Generator().manual_seed(1)
    base, u = (torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64) for _ in range(2))
    i = torch.arange(2 * T + 1, dtype=torch.float64).view(1, -1, 1, 1, 1)
    win = base[:, None] + 0.1 * i * u[:, None]
    half = T * (T + 1) // 2
    fwd = pair_deltas(dynamic_image(win, "forward"), win)
    bwd = pair_deltas(dynamic_image(win, "backward"), win)
    assert bool((fwd[:, :half] > 0).all()) and bool((fwd[:, half:] < 0).all())
    assert bool((bwd[:, :half] < 0).all()) and bool((bwd[:, half:] > 0).all())
    assert torch.equal(ranking_accuracy(dynamic_image(win, "forward"), win), torch.full((2,), 0.5))


def test_errors() -> None:
    with pytest.raises(ConfigError):
        arp_weights(0)
    with pytest.raises(ConfigError):
        approximate_rank_pooling(torch.rand(2, 3, 4, 4, 4))
    with pytest.raises(ConfigError):
        dynamic_image(torch.rand(1, 4, 3, 4, 4))
    with pytest.raises(ConfigError):
        dynamic_image(torch.rand(1, 5, 3, 4, 4), direction="sideways")  # type: ignore[arg-type]
