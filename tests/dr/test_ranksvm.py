"""Linear RankSVM on a window's own frames: closed-form toys, dual = primal, the eval variants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import optimize

from facedyn.dr.dynamic_image import dynamic_image
from facedyn.dr.rank_loss import eq2_pairs, pair_deltas, ranking_accuracy
from facedyn.dr.ranksvm import (
    fit_ranksvm,
    ranksvm_dr,
    ranksvm_dr_batch,
    solve_box_qp,
    solve_dual,
    window_pairs,
)
from facedyn.errors import ConfigError


def walk_windows(M: int, T: int, C: int = 3, H: int = 8, W: int = 8, step: float = 0.03,
                 seed: int = 0) -> torch.Tensor:
    """(M, 2T+1, C, H, W) float32 random-walk "videos" around a random base image."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(M, 1, C, H, W, generator=g)
    return base + (torch.randn(M, 2 * T + 1, C, H, W, generator=g) * step).cumsum(1)


def primal_objective(w: np.ndarray, z: np.ndarray, C: float) -> float:
    return float(0.5 * w @ w + C * np.maximum(0.0, 1.0 - z @ w).sum())


@pytest.mark.parametrize(("C", "expect"), [(1.0, [0.12, 0.16]), (0.01, [0.03, 0.04]), (0.04, [0.12, 0.16])])
@pytest.mark.parametrize("solver", ["dual", "primal"])
def test_one_pair_closed_form(C: float, expect: list[float], solver: str) -> None:
    # one pair z = x_1 - x_0 = (3, 4): w = min(C, 1/||z||^2) z
    frames = np.array([[1.0, 1.0], [4.0, 5.0]])
    w = fit_ranksvm(frames, [0, 1], C=C, solver=solver)  # type: ignore[arg-type]
    assert np.allclose(w, expect, atol=1e-4)


@pytest.mark.parametrize("solver", ["dual", "primal"])
def test_three_frame_hard_margin_toy(solver: str) -> None:
    # x0 = (0,0) < x1 = (1,0) < x2 = (1,1): constraints w1 >= 1, w2 >= 1, w1 + w2 >= 1  ->  w = (1, 1)
    frames = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    w = fit_ranksvm(frames, np.arange(3), C=100.0, solver=solver)  # type: ignore[arg-type]
    assert np.allclose(w, [1.0, 1.0], atol=1e-4)
    # explicit pairs give the same as ranks
    w2 = fit_ranksvm(frames, (np.array([1, 2, 2]), np.array([0, 0, 1])), C=100.0, solver=solver)  # type: ignore[arg-type]
    assert np.allclose(w, w2, atol=1e-6)


@pytest.mark.parametrize("C", [0.1, 1.0, 10.0])
def test_dual_agrees_with_linearsvc_primal(C: float) -> None:
    T = 3
    win = walk_windows(1, T, step=0.05, seed=int(C * 10))[0]
    a, b = (x.numpy() for x in eq2_pairs(T))
    x = win.reshape(2 * T + 1, -1).double().numpy()
    wd = fit_ranksvm(x, (a, b), C=C, solver="dual")
    wp = fit_ranksvm(x, (a, b), C=C, solver="primal", tol=1e-10)
    assert np.linalg.norm(wd - wp) / np.linalg.norm(wp) < 1e-3
    z = x[a] - x[b]
    assert primal_objective(wd, z, C) <= primal_objective(wp, z, C) * (1 + 1e-6)
    # and the DR helper returns the same function
    d = ranksvm_dr(win, C=C).double().flatten().numpy()
    assert np.linalg.norm(d - wd) / np.linalg.norm(wd) < 1e-5


def test_solve_dual_kkt() -> None:
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(12, 5))
    K = Z @ Z.T
    C = 0.5
    alpha = solve_dual(K, C)
    margin = K @ alpha  # <w, z_p>
    assert bool(((alpha >= -1e-9) & (alpha <= C + 1e-9)).all())
    free = (alpha > 1e-6) & (alpha < C - 1e-6)
    assert np.allclose(margin[free], 1.0, atol=1e-4)
    assert bool((margin[alpha < 1e-6] >= 1 - 1e-4).all())
    assert bool((margin[alpha > C - 1e-6] <= 1 + 1e-4).all())


@pytest.mark.parametrize("upper", [0.05, 1.0, 50.0])
def test_box_qp_matches_a_generic_solver_on_rank_deficient_problems(upper: float) -> None:
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(4, 10, 3))  # rank 3 in 10 variables, like a RankSVM dual
    Q = Z @ Z.transpose(0, 2, 1)
    c = -np.ones((4, 10))
    x = solve_box_qp(Q, c, upper)
    assert x.shape == (4, 10) and bool(((x > 0) & (x < upper)).all())
    for i in range(4):
        def f(v: np.ndarray, i: int = i) -> tuple[float, np.ndarray]:
            return 0.5 * v @ Q[i] @ v + c[i] @ v, Q[i] @ v + c[i]

        ref = optimize.minimize(f, np.zeros(10), jac=True, method="L-BFGS-B", bounds=[(0, upper)] * 10,
                                options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
        assert f(x[i])[0] <= ref.fun + 1e-7 * (1 + abs(ref.fun))
        assert np.allclose(Z[i].T @ x[i], Z[i].T @ ref.x, atol=1e-4 * (1 + np.abs(Z[i].T @ ref.x).max()))
    assert np.allclose(solve_box_qp(Q[0], c[0], upper), x[0])


def test_degenerate_windows_with_repeated_frames() -> None:
    # duplicated frames (e.g. 25 fps content in a 50 fps file) make exact ties and a singular K
    T = 3
    wins = walk_windows(3, T, seed=9)
    wins[:, 1] = wins[:, 0]
    wins[:, 5] = wins[:, 4]
    wins[2] = wins[2, :1]  # a still window: nothing to rank
    d = ranksvm_dr_batch(wins, C=10.0)
    assert bool(torch.isfinite(d).all())
    assert float(d[2].abs().max()) == 0.0
    deltas = pair_deltas(d[:2], wins[:2])
    a, b = eq2_pairs(T)
    tie = torch.tensor([(int(p), int(q)) in {(1, 0), (4, 5)} for p, q in zip(a, b, strict=True)])
    assert bool((deltas[:, ~tie] > 0).all())
    assert float(deltas[:, tie].abs().max()) < 1e-6 * float(deltas.abs().max())


def test_ranks_own_frames_at_least_as_well_as_the_true_dynamic_images() -> None:
    T = 5
    wins = walk_windows(8, T, step=0.03, seed=3)
    d = ranksvm_dr_batch(wins)
    assert d.shape == (8, 3, 8, 8) and d.dtype == torch.float32
    acc_svm = ranking_accuracy(d, wins)
    half = T * (T + 1) // 2
    di_ok = pair_deltas(dynamic_image(wins, "forward"), wins)[:, :half] > 0
    bdi_ok = pair_deltas(dynamic_image(wins, "backward"), wins)[:, half:] > 0
    acc_seq_di = torch.cat([di_ok, bdi_ok], dim=1).float().mean(1)
    assert bool((acc_svm >= acc_seq_di).all())
    assert float(acc_svm.mean()) > 0.95


def test_forward_and_backward_variants_fit_their_own_side() -> None:
    T = 4
    wins = walk_windows(4, T, seed=5)
    half = T * (T + 1) // 2
    fwd = pair_deltas(ranksvm_dr_batch(wins, C=100.0, pairs="forward"), wins)
    bwd = pair_deltas(ranksvm_dr_batch(wins, C=100.0, pairs="backward"), wins)
    assert bool((fwd[:, :half] > 0).all()) and bool((bwd[:, half:] > 0).all())
    a, b = window_pairs(T, "forward")
    assert len(a) == half and bool((b < a).all()) and bool((a <= T).all())
    a, b = window_pairs(T, "backward")
    assert len(a) == half and bool((a < b).all()) and bool((a >= T).all())


def test_batch_equals_single_and_keeps_dtype() -> None:
    wins = walk_windows(3, 2, seed=7).double()
    batch = ranksvm_dr_batch(wins, C=2.0)
    assert batch.dtype == torch.float64
    for i in range(3):
        assert torch.allclose(batch[i], ranksvm_dr(wins[i], C=2.0), rtol=1e-6, atol=1e-9)


def test_dr_is_a_zero_sum_combination_of_the_frames() -> None:
    # shifting every frame by the same image does not change the fitted DR
    wins = walk_windows(2, 3, seed=8).double()
    d = ranksvm_dr_batch(wins)
    shifted = ranksvm_dr_batch(wins + torch.rand(2, 1, 3, 8, 8, dtype=torch.float64))
    assert torch.allclose(d, shifted, atol=1e-6 * float(d.abs().max()))


def test_errors() -> None:
    with pytest.raises(ConfigError):
        fit_ranksvm(np.zeros((3, 4)), [0, 0, 0])
    with pytest.raises(ConfigError):
        fit_ranksvm(np.zeros((3, 4)), [0, 1])
    with pytest.raises(ConfigError):
        fit_ranksvm(np.zeros((3, 4)), (np.array([0]), np.array([5])))
    with pytest.raises(ConfigError):
        fit_ranksvm(np.eye(3), [0, 1, 2], C=0.0)
    with pytest.raises(ConfigError):
        fit_ranksvm(np.eye(3), [0, 1, 2], solver="qp")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        ranksvm_dr_batch(torch.rand(2, 1, 3, 4, 4))
    with pytest.raises(ConfigError):
        window_pairs(2, "sideways")  # type: ignore[arg-type]
