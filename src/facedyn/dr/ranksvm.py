"""Linear RankSVM fitted on a window's own frames: the test-time upper bound of dr-paper.txt §4.3.

Classic RankSVM (Herbrich et al.; Joachims) as a linear SVM on pairwise differences: for pairs
``(a, b)`` that must satisfy ``<w, x_a> > <w, x_b>``, with ``z_p = x_a - x_b``::

    min_w  1/2 ||w||^2 + C sum_p max(0, 1 - <w, z_p>)

No bias (it cancels in a difference). Two solvers give the same ``w``:

``"dual"`` (default)
    The dual is ``max_alpha sum(alpha) - 1/2 alpha^T K alpha``, ``0 <= alpha <= C``, with
    ``K = Z Z^T``, and ``w = Z^T alpha``. A window has few frames (``N = 2T + 1``) but many pixels
    (``D`` = 12 288 at 3×64×64), so ``K`` is built from the ``N × N`` frame Gram matrix
    (``K = A G A^T``, ``A`` the pair/frame incidence matrix) and the QP has only ``P`` (<= 90)
    variables; ``w = sum_a c_a x_a`` is a zero-sum combination of the window's frames
    (``c = A^T alpha``). ``K`` has rank <= N - 1, below ``P`` for T >= 2 (pair differences are
    sums of neighbouring ones): a degenerate dual, on which libsvm's SMO (``SVC(kernel=
    "precomputed")`` on symmetric pairs) and liblinear's coordinate descent were measured to need
    up to 10^6-10^7 iterations (seconds per window) on real windows. :func:`solve_box_qp` (a
    batched primal-dual interior point method) solves every window of a batch at once, exactly,
    in 15-30 Newton steps.
``"primal"``
    ``sklearn.svm.LinearSVC(loss="hinge", fit_intercept=False)`` on the symmetric set
    ``{+z_p (label +1), -z_p (label -1)}`` with ``C/2`` (the same objective) in ``D`` dimensions:
    the independent reference for tests, slow and not always converged on degenerate windows.

Pair sets for a window of ``2T + 1`` frames (centre at index ``T``), see :mod:`facedyn.dr.rank_loss`:
``"eq2"`` both sides (the paper's Eq. 2 constraints), ``"forward"`` only the pairs before the centre
(``b < a <= T``), ``"backward"`` only those after it (``T <= a < b``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from sklearn.svm import LinearSVC

from facedyn.dr.rank_loss import before_centre, eq2_pairs
from facedyn.errors import ConfigError

PairSet = Literal["eq2", "forward", "backward"]
Solver = Literal["dual", "primal"]
PAIR_SETS = ("eq2", "forward", "backward")


def window_pairs(T: int, pairs: PairSet = "eq2") -> tuple[np.ndarray, np.ndarray]:
    """Index arrays ``(a, b)`` (``S_a > S_b`` wanted) of a ``2T + 1`` window for a pair set."""
    a, b = (x.numpy() for x in eq2_pairs(T))
    before = before_centre(T).numpy()
    if pairs == "eq2":
        keep = np.ones_like(before)
    elif pairs == "forward":
        keep = before
    elif pairs == "backward":
        keep = ~before
    else:
        raise ConfigError(f"pairs must be one of {', '.join(PAIR_SETS)}, got {pairs!r}")
    return a[keep], b[keep]


def _order_to_pairs(order: np.ndarray | Sequence[int] | tuple[np.ndarray, np.ndarray],
                    n: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(order, tuple) and len(order) == 2 and np.ndim(order[0]) == 1:
        a = np.asarray(order[0], dtype=np.int64)
        b = np.asarray(order[1], dtype=np.int64)
        if a.shape != b.shape:
            raise ConfigError(f"pair index arrays differ in length: {a.shape} vs {b.shape}")
    else:
        r = np.asarray(order, dtype=np.float64)
        if r.shape != (n,):
            raise ConfigError(f"order must give one rank per frame ({n}), got shape {r.shape}")
        a, b = np.nonzero(r[:, None] > r[None, :])
    if a.size == 0:
        raise ConfigError("no pair to rank: give at least two frames with different ranks")
    if min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= n:
        raise ConfigError(f"pair indices must lie in [0, {n}), got [{min(a.min(), b.min())}, "
                          f"{max(a.max(), b.max())}]")
    return a, b


def _incidence(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    A = np.zeros((a.size, n))
    A[np.arange(a.size), a] += 1.0
    A[np.arange(a.size), b] -= 1.0
    return A


def _max_step(v: np.ndarray, dv: np.ndarray) -> np.ndarray:
    """Largest ``a`` per row with ``v + a dv >= 0`` (``inf`` where ``dv >= 0``): ``(B,)``."""
    neg = dv < 0
    return np.where(neg, v / np.where(neg, -dv, 1.0), np.inf).min(axis=1)


def _ipm_direction(M: np.ndarray, x: np.ndarray, z: np.ndarray, s: np.ndarray, w: np.ndarray, rd: np.ndarray,
                   t1: np.ndarray, t2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Newton direction for complementarity targets ``x z = t1``, ``w s = t2`` (``w = upper - x``)."""
    rhs = -rd + t1 / x - z - t2 / w + s
    dx = np.linalg.solve(M, rhs[..., None])[..., 0]
    return dx, t1 / x - z - z / x * dx, t2 / w - s + s / w * dx


def _ipm_step(x: np.ndarray, z: np.ndarray, s: np.ndarray, w: np.ndarray, dx: np.ndarray, dz: np.ndarray,
              ds: np.ndarray) -> np.ndarray:
    """Largest step in (0, 1] keeping ``x, w, z, s >= 0``: ``(B, 1)``."""
    a = np.minimum.reduce([_max_step(x, dx), _max_step(w, -dx), _max_step(z, dz), _max_step(s, ds)])
    return np.minimum(1.0, a)[:, None]


def solve_box_qp(
    Q: np.ndarray, c: np.ndarray, upper: float, tol: float = 1e-10, max_iter: int = 100
) -> np.ndarray:
    """Minimise ``1/2 x^T Q x + c^T x`` subject to ``0 <= x <= upper``, for a batch of problems.

    Mehrotra predictor-corrector primal-dual interior point method. Each Newton system has the
    matrix ``Q + diag(z/x + s/(upper - x))``, positive definite even where ``Q`` is only
    semi-definite (as the rank-deficient RankSVM dual is), so degenerate problems are well-posed.

    Args:
        Q: ``(B, P, P)`` (or ``(P, P)``) symmetric positive semi-definite.
        c: ``(B, P)`` (or ``(P,)``).
        upper: the box's upper bound (> 0).
        tol: stop when the duality gap is below ``tol (1 + |objective|)`` and the dual residual
            below ``tol (1 + max|c|)``.
        max_iter: iteration cap (15-30 are typical).
    Returns:
        float64 ``x`` with the shape of ``c``, strictly inside the box, optimal to ``tol``.
    """
    single = np.ndim(Q) == 2
    Q = np.asarray(Q, dtype=np.float64)
    Q = Q.reshape(-1, Q.shape[-2], Q.shape[-1])
    B, P = Q.shape[:2]
    c = np.broadcast_to(np.asarray(c, dtype=np.float64).reshape(-1, P), (B, P))
    u = float(upper)
    x = np.full((B, P), u / 2)
    z = np.ones((B, P))
    s = np.ones((B, P))
    res_scale = 1.0 + np.abs(c).max(axis=1, initial=0.0)
    active = np.arange(B)
    diag = np.arange(P)
    for _ in range(max_iter):
        Qa, ca, xa, za, sa = Q[active], c[active], x[active], z[active], s[active]
        wa = u - xa
        rd = np.einsum("bij,bj->bi", Qa, xa) + ca - za + sa
        mu = ((xa * za).sum(1) + (wa * sa).sum(1)) / (2 * P)
        objective = 0.5 * np.einsum("bi,bi->b", xa, rd - ca + za - sa) + np.einsum("bi,bi->b", ca, xa)
        keep = (2 * P * mu > tol * (1.0 + np.abs(objective))) | (np.abs(rd).max(1, initial=0.0)
                                                                  > tol * res_scale[active])
        if not keep.any():
            break
        active = active[keep]
        Qa, ca, xa, za, sa, wa, rd, mu = (v[keep] for v in (Qa, ca, xa, za, sa, wa, rd, mu))
        M = Qa.copy()
        M[:, diag, diag] += za / xa + sa / wa

        v = (M, xa, za, sa, wa, rd)
        zero = np.zeros_like(xa)
        dxa, dza, dsa = _ipm_direction(*v, zero, zero)  # predictor (affine scaling)
        a_aff = _ipm_step(xa, za, sa, wa, dxa, dza, dsa)
        mu_aff = (((xa + a_aff * dxa) * (za + a_aff * dza)).sum(1)
                  + ((wa - a_aff * dxa) * (sa + a_aff * dsa)).sum(1)) / (2 * P)
        target = ((mu_aff / mu) ** 3 * mu)[:, None]
        dx, dz, ds = _ipm_direction(*v, target - dxa * dza, target + dxa * dsa)  # corrector
        alpha = np.minimum(1.0, 0.99 * _ipm_step(xa, za, sa, wa, dx, dz, ds))
        xn, zn, sn = xa + alpha * dx, za + alpha * dz, sa + alpha * ds
        # past the precision of float64 a step can leave the interior or overflow: keep the last
        # good iterate of such a problem and stop iterating on it
        ok = ((xn > 0) & (xn < u) & (zn > 0) & (sn > 0) & np.isfinite(zn) & np.isfinite(sn)).all(1)
        x[active[ok]], z[active[ok]], s[active[ok]] = xn[ok], zn[ok], sn[ok]
        active = active[ok]
        if active.size == 0:
            break
    return x[0] if single else x


def solve_dual(K: np.ndarray, C: float = 1.0, tol: float = 1e-10) -> np.ndarray:
    """Dual coefficients ``alpha`` of the bias-free hinge RankSVM with pair kernel ``K``.

    Solves ``max sum(alpha) - 1/2 alpha^T K alpha`` s.t. ``0 <= alpha <= C`` (:func:`solve_box_qp`).
    ``K``: ``(P, P)`` or a batch ``(B, P, P)``; returns ``(P,)`` or ``(B, P)``.
    """
    if not C > 0:
        raise ConfigError(f"C must be > 0, got {C}")
    return solve_box_qp(K, -np.ones(K.shape[:-1]), C, tol=tol)


def frame_coefficients(gram: np.ndarray, a: np.ndarray, b: np.ndarray, C: float = 1.0) -> np.ndarray:
    """Coefficients ``c`` with ``w = sum_i c_i x_i`` from the frames' Gram matrix.

    ``gram``: ``(N, N)`` or a batch ``(B, N, N)``; returns ``(N,)`` or ``(B, N)``. The frames may be
    shifted by a common vector (e.g. minus the centre frame): ``c`` sums to zero, so ``w`` is the same.
    """
    A = _incidence(a, b, gram.shape[-1])
    K = A @ gram @ A.T
    return solve_dual(K, C) @ A


def _as_2d(frames: np.ndarray | torch.Tensor) -> np.ndarray:
    x = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if x.ndim < 2:
        raise ConfigError(f"frames must be (N, D) or (N, C, H, W), got shape {x.shape}")
    return x.reshape(x.shape[0], -1).astype(np.float64)


def fit_ranksvm(
    frames: np.ndarray | torch.Tensor,
    order: np.ndarray | Sequence[int] | tuple[np.ndarray, np.ndarray],
    C: float = 1.0,
    solver: Solver = "dual",
    tol: float = 1e-7,
    max_iter: int = 200_000,
) -> np.ndarray:
    """Fit a linear ranking function ``S(x) = <w, x>`` on ``frames``.

    Args:
        frames: ``(N, D)`` (or ``(N, C, H, W)``, flattened) float frames, e.g. in [0, 1].
        order: either one rank per frame ``(N,)`` (every pair with ``order[i] > order[j]`` asks
            ``S_i > S_j``; equal ranks give no constraint; ``np.arange(N)`` is classic forward rank
            pooling), or a tuple ``(a, b)`` of index arrays asking ``S_a > S_b`` pair by pair.
        C: hinge weight (> 0); larger is closer to the hard-margin solution.
        solver: ``"dual"`` (Gram matrix + interior point, fast for N << D) or ``"primal"``
            (liblinear in D dimensions, the slow reference).
        tol, max_iter: tolerance and iteration cap of the primal solver.
    Returns:
        ``w`` float64 ``(D,)``.
    """
    x = _as_2d(frames)
    a, b = _order_to_pairs(order, x.shape[0])
    if not C > 0:
        raise ConfigError(f"C must be > 0, got {C}")
    if solver == "dual":
        xc = x - x.mean(axis=0, keepdims=True)
        c = frame_coefficients(xc @ xc.T, a, b, C)
        return xc.T @ c
    if solver == "primal":
        z = x[a] - x[b]
        y = np.concatenate([np.ones(len(z)), -np.ones(len(z))])
        m = LinearSVC(loss="hinge", C=C / 2.0, fit_intercept=False, tol=tol, max_iter=max_iter)
        m.fit(np.concatenate([z, -z]), y)
        return m.coef_[0].astype(np.float64)
    raise ConfigError(f"solver must be 'dual' or 'primal', got {solver!r}")


def ranksvm_dr_batch(windows: torch.Tensor, C: float = 1.0, pairs: PairSet = "eq2", chunk: int = 256
                     ) -> torch.Tensor:
    """RankSVM DR of every window, fitted on the window's own frames.

    Args:
        windows: ``(B, 2T+1, C, H, W)`` float frames in temporal order, centre at index ``T`` (T >= 1).
        C: hinge weight. pairs: ``"eq2"``, ``"forward"`` or ``"backward"`` (module docstring).
        chunk: windows processed at once (bounds memory).
    Returns:
        ``(B, C, H, W)`` in ``windows``' float dtype (float32 for integer input), on its device.
        Frame differences and the Gram matrix are computed in that dtype (float32: relative error
        ~1e-6 in ``K``), the QP in float64.
    """
    if windows.dim() != 5 or windows.shape[1] < 3 or windows.shape[1] % 2 != 1:
        raise ConfigError(f"windows must be (B, 2T+1, C, H, W) with T >= 1, got shape {tuple(windows.shape)}")
    B, N = windows.shape[:2]
    T = (N - 1) // 2
    a, b = window_pairs(T, pairs)
    dtype = windows.dtype if windows.is_floating_point() else torch.float32
    out = torch.empty((B, *windows.shape[2:]), dtype=dtype)
    for start in range(0, B, chunk):
        # frames minus the centre frame (the shift cancels: coefficients sum to 0); neighbouring
        # frames are near copies, so these differences are small and exact ties stay exact
        x = windows[start : start + chunk].detach().to("cpu", dtype)
        x = (x - x[:, T : T + 1]).flatten(2)  # (b, N, D)
        grams = torch.bmm(x, x.transpose(1, 2)).double().numpy()
        coef = torch.from_numpy(frame_coefficients(grams, a, b, C)).to(dtype)  # (b, N)
        out[start : start + chunk] = torch.bmm(coef.unsqueeze(1), x).view(-1, *windows.shape[2:])
    return out.to(windows.device)


def ranksvm_dr(window: torch.Tensor, C: float = 1.0, pairs: PairSet = "eq2") -> torch.Tensor:
    """RankSVM DR of one window (Eq. 2 constraints by default), fitted on its own frames.

    Args:
        window: ``(2T+1, C, H, W)`` float frames in temporal order, centre at index ``T`` (T >= 1).
        C: hinge weight. pairs: ``"eq2"``, ``"forward"`` or ``"backward"``.
    Returns:
        ``(C, H, W)`` float tensor.
    """
    if window.dim() != 4:
        raise ConfigError(f"window must be (2T+1, C, H, W), got shape {tuple(window.shape)}")
    return ranksvm_dr_batch(window.unsqueeze(0), C=C, pairs=pairs)[0]
