"""Rank Loss (dr-paper.txt Eq. 1-3), pair enumeration, accuracy, theta calibration, centring."""

from __future__ import annotations

import itertools

import pytest
import torch

from facedyn.dr.rank_loss import (
    calibrate_theta,
    centred,
    eq2_pairs,
    frame_scores,
    pair_deltas,
    random_clear_rate,
    rank_loss,
    ranking_accuracy,
)
from facedyn.errors import ConfigError
from support.reference import rank_loss_loops


def walk_windows(M: int, T: int, C: int = 3, H: int = 8, W: int = 8, step: float = 0.03,
                 seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(M, 2T+1, C, H, W) smooth random-walk "videos" around a random base image, in about [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(M, 1, C, H, W, generator=g, dtype=torch.float64)
    walk = (torch.randn(M, 2 * T + 1, C, H, W, generator=g, dtype=torch.float64) * step).cumsum(1)
    return (base + walk).to(dtype)


def literal_eq3(d: torch.Tensor, window: torch.Tensor, theta: float, gamma: float,
                epsilon: float) -> torch.Tensor:
    """Eq. 3 for one sample, written from the printed equation with t as an absolute frame number."""
    T = (window.shape[0] - 1) // 2
    t = 100  # frames t-T .. t+T live at window[a - (t - T)]

    def frame(a: int) -> torch.Tensor:  # V_a = I_a
        return window[a - (t - T)]

    def delta(a: int, b: int) -> torch.Tensor:
        return (d * frame(a)).sum() - (d * frame(b)).sum()

    L = gamma * (d**2).sum() - epsilon
    for b in range(t - T, t - 1 + 1):
        for a in range(b + 1, t + 1):
            L = L + max(0.0, theta - delta(a, b))
    for a in range(t, t + T - 1 + 1):
        for b in range(a + 1, t + T + 1):  # printed upper limit "T" = t + T
            L = L + max(0.0, theta - delta(a, b))
    return L


# ------------------------------------------------------------------------------------------- pairs
@pytest.mark.parametrize("T", [0, 1, 2, 3, 5, 9])
def test_eq2_pairs_count_and_sides(T: int) -> None:
    a, b = eq2_pairs(T)
    assert a.dtype == torch.int64 and b.dtype == torch.int64
    assert len(a) == len(b) == T * (T + 1)
    half = T * (T + 1) // 2
    assert bool(((b[:half] < a[:half]) & (a[:half] <= T)).all())
    assert bool(((a[half:] >= T) & (a[half:] < b[half:])).all())
    assert len(set(zip(a.tolist(), b.tolist(), strict=True))) == len(a)  # no duplicates


@pytest.mark.parametrize("T", [1, 2, 4, 7])
def test_eq2_pairs_match_the_eq2_criterion_plus_the_centre(T: int) -> None:
    # Eq. 2: |a-t| < |b-t| and (a-t)(b-t) > 0; Eq. 3's sums also take a = t against every b.
    t = T
    expect = {(a, b) for a, b in itertools.product(range(2 * T + 1), repeat=2)
              if abs(a - t) < abs(b - t) and ((a - t) * (b - t) > 0 or a == t)}
    got = set(zip(*(x.tolist() for x in eq2_pairs(T)), strict=True))
    assert got == expect


def test_eq2_pairs_are_fresh_tensors() -> None:
    a, _ = eq2_pairs(3)
    a[0] = 99
    assert eq2_pairs(3)[0][0] != 99


# ------------------------------------------------------------------------------------- loss values
@pytest.mark.parametrize(("T", "gamma", "epsilon"), [(1, 0.0, 0.0), (3, 0.01, 0.5), (5, 0.2, 2.0)])
def test_rank_loss_equals_literal_double_loops(T: int, gamma: float, epsilon: float) -> None:
    win = walk_windows(3, T, C=2, H=5, W=4, seed=T, dtype=torch.float64)
    g = torch.Generator().manual_seed(7)
    d = torch.randn(3, 2, 5, 4, generator=g, dtype=torch.float64)
    deltas = pair_deltas(d, win)
    theta = float(deltas.abs().median())  # a margin some pairs clear and some do not
    got = rank_loss(d, win, theta=theta, gamma=gamma, epsilon=epsilon)
    literal = torch.stack([literal_eq3(d[i], win[i], theta, gamma, epsilon) for i in range(3)]).mean()
    shared = rank_loss_loops(d, win, theta, gamma, epsilon)
    assert torch.allclose(got, literal, rtol=1e-10, atol=1e-10)
    assert torch.allclose(got, shared, rtol=1e-10, atol=1e-10)
    assert 0 < float((deltas < theta).float().mean()) < 1  # the hinge is active on some pairs only


def test_rank_loss_float32_agrees_with_float64() -> None:
    win = walk_windows(4, 5, H=32, W=32, dtype=torch.float64)
    d = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = rank_loss(d, win, theta=1.0, gamma=1e-3)
    got = rank_loss(d.float(), win.float(), theta=1.0, gamma=1e-3)
    assert abs(float(got) - float(ref)) < 1e-4 * max(1.0, abs(float(ref)))


def test_reductions_and_normalize_pairs() -> None:
    T = 3
    win = walk_windows(5, T)
    d = torch.randn(5, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    per = rank_loss(d, win, theta=0.5, gamma=0.1, epsilon=0.3, reduction="none")
    assert per.shape == (5,)
    assert torch.allclose(rank_loss(d, win, 0.5, 0.1, 0.3), per.mean())
    assert torch.allclose(rank_loss(d, win, 0.5, 0.1, 0.3, reduction="sum"), per.sum())
    hinge = rank_loss(d, win, 0.5, reduction="none")
    norm = rank_loss(d, win, 0.5, reduction="none", normalize_pairs=True)
    assert torch.allclose(norm, hinge / (T * (T + 1)))
    with pytest.raises(ConfigError):
        rank_loss(d, win, 0.5, reduction="max")  # type: ignore[arg-type]


def test_gradcheck_wrt_d() -> None:
    win = walk_windows(2, 2, C=2, H=3, W=3, dtype=torch.float64, step=0.2)
    d = torch.randn(2, 2, 3, 3, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    deltas = pair_deltas(d, win).flatten().sort().values
    gaps = deltas[1:] - deltas[:-1]
    k = int(gaps.argmax())
    theta = float((deltas[k] + deltas[k + 1]) / 2)  # far from every kink delta = theta
    assert float((deltas - theta).abs().min()) > 1e-3
    d.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: rank_loss(x, win, theta, gamma=0.3, epsilon=0.1), (d,))
    assert torch.autograd.gradcheck(lambda x: rank_loss(x, win, theta, normalize_pairs=True), (d,))


def test_known_ranking_direction_gives_zero_hinge() -> None:
    T, c, k = 4, 0.05, 200.0
    g = torch.Generator().manual_seed(4)
    u = torch.randn(2, 3, 8, 8, generator=g, dtype=torch.float64)
    u = u / u.flatten(1).norm(dim=1).view(2, 1, 1, 1)
    base = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64)
    dist = (torch.arange(2 * T + 1) - T).abs().to(torch.float64)
    win = base[:, None] + c * (-dist).view(1, -1, 1, 1, 1) * u[:, None]
    d = k * u
    theta, gamma, eps = 5.0, 1e-3, 0.7  # every delta >= k*c = 10 > theta
    assert float(pair_deltas(d, win).min()) >= k * c - 1e-9
    loss = rank_loss(d, win, theta, gamma=gamma, epsilon=eps, reduction="none")
    assert torch.allclose(loss, torch.full((2,), gamma * k**2 - eps, dtype=torch.float64))
    assert torch.equal(ranking_accuracy(d, win), torch.ones(2))
    # the opposite direction ranks every pair backwards
    assert torch.equal(ranking_accuracy(-d, win), torch.zeros(2))


def test_pair_deltas_are_score_differences() -> None:
    T = 3
    win = walk_windows(2, T, dtype=torch.float64)
    d = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    S = torch.einsum("bchw,bnchw->bn", d, win)  # plain Eq. 1 scores
    a, b = eq2_pairs(T)
    assert torch.allclose(pair_deltas(d, win), S[:, a] - S[:, b])
    fs = frame_scores(d, win)
    assert torch.allclose(fs - fs[:, T : T + 1], S - S[:, T : T + 1])


def test_ranking_accuracy_counts_ties_as_wrong() -> None:
    T = 2
    frame = torch.rand(1, 1, 3, 4, 4)
    still = frame.expand(1, 2 * T + 1, 3, 4, 4).clone()  # a still video: every delta is exactly 0
    d = torch.randn(1, 3, 4, 4)
    assert float(pair_deltas(d, still).abs().max()) == 0.0
    assert float(ranking_accuracy(d, still)[0]) == 0.0
    win = walk_windows(3, T)
    assert torch.equal(ranking_accuracy(torch.zeros(3, 3, 8, 8), win), torch.zeros(3))


def test_accuracy_is_fraction_of_positive_deltas() -> None:
    win = walk_windows(6, 5)
    d = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    acc = ranking_accuracy(d, win)
    assert acc.shape == (6,)
    assert torch.allclose(acc, (pair_deltas(d, win) > 0).float().mean(1))
    assert bool(((acc >= 0) & (acc <= 1)).all())


def test_shape_errors_are_config_errors() -> None:
    win = walk_windows(2, 2)
    with pytest.raises(ConfigError, match="odd"):
        rank_loss(torch.zeros(2, 3, 8, 8), win[:, :4], 1.0)
    with pytest.raises(ConfigError, match="does not match"):
        rank_loss(torch.zeros(2, 3, 4, 4), win, 1.0)
    with pytest.raises(ConfigError, match="window must be"):
        ranking_accuracy(torch.zeros(2, 3, 8, 8), win[0])


# ------------------------------------------------------------------------------------------ theta
def _random_pair_fraction(windows: torch.Tensor, theta: float, scale: float, n: int, seed: int) -> float:
    M, N = windows.shape[:2]
    T = (N - 1) // 2
    a, b = eq2_pairs(T)
    x = windows.double().reshape(M * N, -1)
    r = torch.randn(n, x.shape[1], generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * scale
    s = (r @ x.T).view(n, M, N)
    return float(((s[:, :, a] - s[:, :, b]) > theta).double().mean())


def test_calibrated_theta_keeps_random_drs_below_a_tenth_of_a_percent() -> None:
    cal = walk_windows(16, 3, seed=10)
    scale = 0.3
    theta = calibrate_theta(cal, scale=scale)
    assert theta > 0
    assert abs(random_clear_rate(cal, theta, scale) - 5e-4) < 1e-9  # exact at the default quantile
    # fresh random DRs (~400k pairs each) on the calibration windows and on unseen windows
    assert _random_pair_fraction(cal, theta, scale, n=2000, seed=11) < 1e-3
    fresh = walk_windows(16, 3, seed=12)
    assert _random_pair_fraction(fresh, theta, scale, n=2000, seed=13) < 1e-3


def test_calibrate_theta_exact_matches_monte_carlo_and_scales() -> None:
    cal = walk_windows(12, 2, seed=20)
    exact = calibrate_theta(cal, quantile=0.99)
    mc = calibrate_theta(cal, quantile=0.99, n_random=2000, generator=torch.Generator().manual_seed(0))
    assert abs(mc - exact) / exact < 0.05
    assert abs(calibrate_theta(cal, quantile=0.99, scale=4.0) - 4 * exact) < 1e-6 * exact
    assert calibrate_theta(cal, quantile=0.999) > exact


def test_calibrate_theta_errors_and_still_windows() -> None:
    cal = walk_windows(2, 2)
    with pytest.raises(ConfigError):
        calibrate_theta(cal, quantile=1.0)
    with pytest.raises(ConfigError):
        calibrate_theta(cal, scale=0.0)
    with pytest.raises(ConfigError):
        calibrate_theta(cal[:, :1])
    still = cal[:, :1].expand(-1, 5, -1, -1, -1)
    assert calibrate_theta(still) == 0.0


# ---------------------------------------------------------------------------------------- centred
def test_centred_zero_mean_per_channel() -> None:
    x = torch.rand(3, 3, 10, 12)
    c = centred(x)
    assert c.shape == x.shape
    assert torch.allclose(c.mean(dim=(2, 3)), torch.zeros(3, 3), atol=1e-6)
    assert torch.allclose(x - c, x.mean(dim=(2, 3), keepdim=True).expand_as(x))


def test_centred_with_mask_uses_face_pixels_only() -> None:
    x = torch.rand(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.bool)
    mask[:, :, 2:6, 1:7] = True
    x = x * mask  # an aligned crop: zero outside the hull
    c = centred(x, mask=mask)
    assert float(c[~mask.expand_as(c)].abs().max()) == 0.0
    inside = c.permute(1, 0, 2, 3)[:, mask[:, 0]]  # (3, pixels in the mask)
    assert torch.allclose(inside.mean(dim=1), torch.zeros(3), atol=1e-6)
    assert torch.allclose(centred(x, mask=torch.ones(2, 1, 8, 8, dtype=torch.bool)), centred(x), atol=1e-6)
    empty = centred(x, mask=torch.zeros(2, 1, 8, 8, dtype=torch.bool))
    assert float(empty.abs().max()) == 0.0
    with pytest.raises(ConfigError):
        centred(x, mask=mask[:, :, :4])
