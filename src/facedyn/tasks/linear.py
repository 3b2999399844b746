"""Cross-validated linear models for the probes, fast and equal to their scikit-learn counterparts.

Both models standardise the features on the rows they are fitted on (scikit-learn's ``StandardScaler``:
population standard deviation, near-constant features scaled by 1) and pick their penalty by a
person-level inner CV (``GroupKFold``, 3 folds) exactly as :func:`facedyn.tasks.probes.fit_ridge` /
``fit_logistic`` always did; only the arithmetic is shared instead of repeated:

* :func:`ridge_cv` -- ridge regression (intercept unpenalised) for every alpha at once: one
  eigendecomposition of the standardised Gram matrix per inner split gives the predictions of all alphas
  (``w(alpha) = Q diag(1 / (lambda + alpha)) Q^T X^T y``), the same solution as ``Ridge(alpha)`` to
  rounding (tested against it);
* :func:`logistic_cv` -- balanced binary logistic regressions of several targets sharing the features,
  solved together: a vectorised L-BFGS (one history and line search per target, in lockstep, so one
  matrix product serves every target) on scikit-learn's objective (mean class-weighted log-loss +
  ``||w||^2 / (2 C n)``, intercept unpenalised), warm-started along the C path (ascending) and from the
  inner solutions for the final fit, run to a gradient 100x below scikit-learn's default tolerance
  (no convergence warning: the old ``LogisticRegression(max_iter=300)`` often stopped before its own).

Shapes: ``X`` ``(N, D)`` features, ``Y`` ``(N, K)`` targets, ``groups`` ``(N,)`` person ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facedyn.eval import metrics as M

__all__ = ["LinearModel", "inner_splits", "logistic_cv", "logistic_fit", "ridge_cv", "standardiser"]

#: L-BFGS stops for a target when every gradient component of its (mean-scaled) objective is below this.
GTOL = 1e-6
MAX_ITER = 2000
_HISTORY = 10


def inner_splits(groups: np.ndarray, n: int = 3) -> list[tuple[np.ndarray, np.ndarray]]:
    """Person-level inner CV: ``GroupKFold(min(n, people))`` (train rows, validation rows); [] for one person."""
    from sklearn.model_selection import GroupKFold

    k = min(n, len(np.unique(groups)))
    if k < 2:
        return []
    return list(GroupKFold(n_splits=k).split(np.zeros(len(groups)), groups=groups))


def standardiser(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, scale)`` ``(D,)`` of ``X`` ``(N, D)`` as ``StandardScaler`` computes them (near-constant → scale 1)."""
    X = np.asarray(X, dtype=np.float64)
    mu = X.mean(0)
    var = X.var(0)
    eps = np.finfo(np.float64).eps
    constant = var <= len(X) * eps * var + (len(X) * mu * eps) ** 2
    sd = np.sqrt(var)
    sd[constant] = 1.0
    return mu, sd


@dataclass
class LinearModel:
    """``z = X @ coef + intercept`` on raw features: ``coef`` ``(D, K)``, ``intercept`` ``(K,)``."""

    coef: np.ndarray
    intercept: np.ndarray
    logistic: bool = False

    def decision(self, X: np.ndarray) -> np.ndarray:
        """``(N, K)`` linear scores."""
        return np.asarray(X, dtype=np.float64) @ self.coef + self.intercept

    def predict(self, X: np.ndarray) -> np.ndarray:
        """``(N, K)`` regression predictions (ridge) or probabilities of class 1 (logistic)."""
        z = self.decision(X)
        return _sigmoid(z) if self.logistic else z

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """``(N, 2)`` class probabilities of a single-target logistic model (scikit-learn's layout)."""
        p = self.predict(X)[:, 0]
        return np.stack([1.0 - p, p], 1)


def _to_raw(w_std: np.ndarray, b_std: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights ``(D, K)`` on standardised features → weights and intercepts on the raw ones."""
    coef = w_std / sd[:, None]
    return coef, b_std - mu @ coef


# -- ridge --------------------------------------------------------------------------------------------------

class _Design:
    """Features standardised on their own rows, and the eigendecomposition of their Gram matrix
    ``Xs^T Xs = Q diag(lam) Q^T`` (shared by the ridge path and the logistic preconditioner).

    With fewer rows than features (``N < D``, e.g. a flattened image) ``Q`` is ``(D, N)``: the right singular
    vectors of a thin SVD, the row space of ``Xs``. That is exact, not an approximation: an L2-penalised
    linear model's optimum lies in that row space (its gradient is ``Xs^T r + lam w``), and the ``D x D``
    eigendecomposition of a 12 288-wide feature would take hours.
    """

    def __init__(self, X: np.ndarray) -> None:
        self.mu, self.sd = standardiser(X)
        self.Xs = (np.asarray(X, np.float64) - self.mu) / self.sd
        n, d = self.Xs.shape
        if n < d:
            _, sv, vt = np.linalg.svd(self.Xs, full_matrices=False)
            self.Q, lam = vt.T, sv**2
        else:
            lam, self.Q = np.linalg.eigh(self.Xs.T @ self.Xs)
        self.lam = np.clip(lam, 0.0, None)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, np.float64) - self.mu) / self.sd


class _RidgeEigen:
    """Ridge solutions (``Y`` centred, intercept unpenalised) for any alpha from one :class:`_Design`."""

    def __init__(self, X: np.ndarray | _Design, Y: np.ndarray) -> None:
        d = X if isinstance(X, _Design) else _Design(X)
        self.mu, self.sd, self.Q, self.lam = d.mu, d.sd, d.Q, d.lam
        Y = np.asarray(Y, np.float64)
        self.ymean = Y.mean(0)
        self.B = self.Q.T @ (d.Xs.T @ (Y - self.ymean))  # (D, L) in the eigenbasis

    def weights(self, alpha: float) -> np.ndarray:
        """``(D, L)`` weights on standardised features."""
        return self.Q @ (self.B / (self.lam + alpha)[:, None])

    def model(self, alpha: float) -> LinearModel:
        coef, b = _to_raw(self.weights(alpha), self.ymean, self.mu, self.sd)
        return LinearModel(coef, b)


def ridge_cv(X: np.ndarray, Y: np.ndarray, groups: np.ndarray, alphas: Sequence[float]) -> tuple[LinearModel, float]:
    """Standardise + ridge of ``Y`` ``(N, L)`` on ``X`` ``(N, D)``, alpha by person-level inner CV.

    The alpha with the lowest summed validation MSE (first of ``alphas`` on ties; the middle one without an
    inner CV) is refitted on all rows. Returns the model and the alpha.
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    best, best_err = alphas[len(alphas) // 2], np.inf
    splits = inner_splits(groups)
    if splits:
        errs = np.zeros(len(alphas))
        for tr, va in splits:
            r = _RidgeEigen(_Design(X[tr]), Y[tr])
            P = ((X[va] - r.mu) / r.sd) @ r.Q  # validation rows in the eigenbasis
            for i, a in enumerate(alphas):
                pred = P @ (r.B / (r.lam + a)[:, None]) + r.ymean
                errs[i] += float(np.mean((pred - Y[va]) ** 2))
        for a, err in zip(alphas, errs, strict=True):
            if err < best_err:
                best, best_err = a, err
    return _RidgeEigen(X, Y).model(best), best


# -- logistic -----------------------------------------------------------------------------------------------

def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _balanced_weights(Y: np.ndarray) -> np.ndarray:
    """``(N, K)`` ``class_weight="balanced"`` sample weights of 0/1 targets ``Y`` ``(N, K)``: ``n / (2 n_class)``."""
    n = len(Y)
    pos = Y.sum(0)
    return np.where(Y > 0.5, n / (2.0 * np.maximum(pos, 1)), n / (2.0 * np.maximum(n - pos, 1)))


def _loss_grad(Xs: np.ndarray, Y: np.ndarray, sw: np.ndarray, lam: np.ndarray,
               W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objective ``(K,)`` and gradient ``(D + 1, K)`` of each target at ``W`` (last row: intercepts).

    ``lam``: ``(D, K)``, a diagonal penalty ``sum_j lam_j w_j^2 / 2`` per target.
    """
    z = Xs @ W[:-1] + W[-1]
    # log(1 + e^z) - y z, stably
    loss = np.logaddexp(0.0, z) - Y * z
    n = len(Xs)
    f = (sw * loss).sum(0) / n + 0.5 * (lam * W[:-1] ** 2).sum(0)
    r = sw * (_sigmoid(z) - Y) / n
    g = np.empty_like(W)
    g[:-1] = Xs.T @ r + lam * W[:-1]
    g[-1] = r.sum(0)
    return f, g


def _lbfgs(Xs: np.ndarray, Y: np.ndarray, lam: np.ndarray, W0: np.ndarray | None = None,
           gtol: float = GTOL, max_iter: int = MAX_ITER) -> np.ndarray:
    """Minimise each target's balanced logistic objective; ``Xs`` ``(N, D)`` standardised, ``Y`` ``(N, K)`` 0/1,
    ``lam`` ``(K,)`` = ``1 / (C n)`` or ``(D, K)`` (a diagonal penalty). Returns ``W`` ``(D + 1, K)`` (last
    row: intercepts).

    One L-BFGS per column (own history, own Armijo backtracking), advanced in lockstep.
    """
    d = Xs.shape[1]
    k = Y.shape[1]
    sw = _balanced_weights(Y)
    lam = np.broadcast_to(np.asarray(lam, np.float64), (d, k))
    W = np.zeros((d + 1, k)) if W0 is None else np.array(W0, dtype=np.float64)
    f, g = _loss_grad(Xs, Y, sw, lam, W)
    S = np.zeros((_HISTORY, d + 1, k))
    Yh = np.zeros((_HISTORY, d + 1, k))
    rho = np.zeros((_HISTORY, k))
    gamma = np.ones(k)
    head = 0
    active = np.abs(g).max(0) > gtol
    first = True
    for _ in range(max_iter):
        if not active.any():
            break
        # two-loop recursion, newest pair first
        q = g.copy()
        order = [(head - 1 - i) % _HISTORY for i in range(_HISTORY)]
        alpha = np.zeros((_HISTORY, k))
        for j in order:
            alpha[j] = rho[j] * (S[j] * q).sum(0)
            q -= alpha[j] * Yh[j]
        r = gamma * q
        for j in reversed(order):
            beta = rho[j] * (Yh[j] * r).sum(0)
            r += S[j] * (alpha[j] - beta)
        step_dir = -r
        slope = (g * step_dir).sum(0)
        bad = slope >= 0
        if bad.any():  # not a descent direction: steepest descent for those columns
            step_dir[:, bad] = -g[:, bad]
            slope[bad] = -(g[:, bad] ** 2).sum(0)
        t = np.where(first, np.minimum(1.0, 1.0 / np.maximum(np.abs(g).sum(0), 1e-12)), 1.0)
        first = False
        # Armijo backtracking, per column
        cols = np.flatnonzero(active)
        W_new, f_new, g_new = W.copy(), f.copy(), g.copy()
        todo = cols
        for _ls in range(40):
            trial = W[:, todo] + t[todo] * step_dir[:, todo]
            ft, gt = _loss_grad(Xs, Y[:, todo], sw[:, todo], lam[:, todo], trial)
            ok = ft <= f[todo] + 1e-4 * t[todo] * slope[todo]
            acc = todo[ok]
            W_new[:, acc], f_new[acc], g_new[:, acc] = trial[:, ok], ft[ok], gt[:, ok]
            todo = todo[~ok]
            if not todo.size:
                break
            t[todo] *= 0.5
        stuck = np.zeros(k, bool)
        stuck[todo] = True  # no decrease found: at the optimum to rounding
        s = W_new - W
        y = g_new - g
        sy = (s * y).sum(0)
        good = active & ~stuck & (sy > 1e-12 * np.maximum((y * y).sum(0), 1e-300))
        S[head][:, good] = s[:, good]
        Yh[head][:, good] = y[:, good]
        rho[head] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        gamma = np.where(good, sy / np.maximum((y * y).sum(0), 1e-300), gamma)
        head = (head + 1) % _HISTORY
        W, f, g = W_new, f_new, g_new
        active = active & ~stuck & (np.abs(g).max(0) > gtol)
    return W


def _logistic_solve(d: _Design, Y: np.ndarray, cs: np.ndarray, W0: np.ndarray | None = None) -> np.ndarray:
    """Balanced logistic regression of each 0/1 column of ``Y`` ``(N, K)`` on ``d.Xs`` with inverse penalty ``cs``
    ``(K,)``; returns the standardised weights ``(D + 1, K)`` (last row: intercepts).

    L-BFGS runs in preconditioned coordinates ``w = Q diag(h)^-1/2 v`` with ``h = lam / (4 n) + 1 / (C n)``,
    the objective's Hessian when every ``p (1 - p)`` is 1/4: a change of variables (same minimum, same
    predictions) that makes the problem well conditioned, so it converges in tens of steps instead of
    thousands. Columns with the same C share the rotated features.
    """
    n = len(d.Xs)
    W = np.zeros((d.Xs.shape[1] + 1, Y.shape[1]))
    for c in np.unique(cs):
        cols = np.flatnonzero(cs == c)
        lam = 1.0 / (c * n)
        h = d.lam / (4.0 * n) + lam
        P = d.Q / np.sqrt(h)  # w = P v
        Xr = d.Xs @ P
        V0 = None
        if W0 is not None:
            V0 = np.empty((len(h) + 1, cols.size))
            V0[:-1] = np.sqrt(h)[:, None] * (d.Q.T @ W0[:-1][:, cols])
            V0[-1] = W0[-1, cols]
        V = _lbfgs(Xr, Y[:, cols], np.repeat((lam / h)[:, None], cols.size, 1), V0)
        W[:-1, cols] = P @ V[:-1]
        W[-1, cols] = V[-1]
    return W


def logistic_fit(X: np.ndarray | _Design, Y: np.ndarray, cs: Sequence[float] | np.ndarray | float,
                 W0: np.ndarray | None = None) -> tuple[LinearModel, np.ndarray]:
    """Standardise ``X`` and fit one balanced logistic regression per column of 0/1 ``Y`` ``(N, K)``, with the
    inverse penalty ``cs[k]`` for column k. Returns the model on raw features and the standardised weights
    ``(D + 1, K)`` (a warm start for a related fit)."""
    d = X if isinstance(X, _Design) else _Design(X)
    c = np.broadcast_to(np.asarray(cs, np.float64), (Y.shape[1],))
    W = _logistic_solve(d, np.asarray(Y, np.float64), c, W0)
    coef, b = _to_raw(W[:-1], W[-1], d.mu, d.sd)
    return LinearModel(coef, b, logistic=True), W


def logistic_cv(X: np.ndarray, Y: np.ndarray, groups: np.ndarray,
                cs: Sequence[float]) -> tuple[LinearModel | None, list[float | None]]:
    """Balanced logistic regressions of each 0/1 column of ``Y`` ``(N, K)`` on standardised ``X``, C by inner CV.

    Per column, C maximises the mean validation AUC over the inner splits whose training and validation rows
    both hold the two classes (first of ``cs`` on ties; the middle one without such a split); columns with
    one class only get no model (their C is None and their column of the model predicts NaN).
    Returns the model (``predict`` → ``(N, K)`` probabilities of class 1) and the chosen C per column.
    """
    X = np.asarray(X, np.float64)
    Y = np.asarray(Y, np.float64)
    k = Y.shape[1]
    fit = np.array([len(np.unique(Y[:, j])) == 2 for j in range(k)])
    chosen: list[float | None] = [None] * k
    if not fit.any():
        return None, chosen
    order = np.argsort(cs, kind="stable")  # warm starts along increasing C
    score_sum = np.zeros((k, len(cs)))
    score_n = np.zeros(k)
    warm: dict[int, list[np.ndarray]] = {}
    for tr, va in inner_splits(groups):
        ok = fit & np.array([len(np.unique(Y[tr, j])) == 2 and len(np.unique(Y[va, j])) == 2 for j in range(k)])
        cols = np.flatnonzero(ok)
        if not cols.size:
            continue
        score_n[cols] += 1
        W = None
        design = _Design(X[tr])
        for i in order:
            model, W = logistic_fit(design, Y[tr][:, cols], cs[i], W)
            warm.setdefault(i, []).append((cols, W))  # type: ignore[arg-type]
            p = model.predict(X[va])
            for m, j in enumerate(cols):
                score_sum[j, i] += M.auc(Y[va, j], p[:, m])
    best = np.full(k, len(cs) // 2)
    for j in np.flatnonzero(score_n):
        mean = score_sum[j] / score_n[j]
        bi, bs = len(cs) // 2, -np.inf
        for i in range(len(cs)):  # the first best in the given order
            if mean[i] > bs:
                bi, bs = i, mean[i]
        best[j] = bi
    cols = np.flatnonzero(fit)
    # warm start of the final fit: the mean of the inner solutions at each column's C
    W0 = np.zeros((X.shape[1] + 1, cols.size))
    cnt = np.zeros(cols.size)
    for m, j in enumerate(cols):
        for sel, Wi in warm.get(int(best[j]), []):
            hit = np.flatnonzero(sel == j)
            if hit.size:
                W0[:, m] += Wi[:, hit[0]]
                cnt[m] += 1
    W0 /= np.maximum(cnt, 1)
    c_cols = np.array([cs[best[j]] for j in cols], np.float64)
    sub, _ = logistic_fit(X, Y[:, cols], c_cols, W0)
    coef = np.zeros((X.shape[1], k))
    inter = np.full(k, np.nan)
    coef[:, cols], inter[cols] = sub.coef, sub.intercept
    for j in cols:
        chosen[j] = float(cs[best[j]])
    return LinearModel(coef, inter, logistic=True), chosen
