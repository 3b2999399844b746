"""The probes' fast linear models equal scikit-learn's pipelines (StandardScaler + Ridge / LogisticRegression)."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from facedyn.eval import metrics as M
from facedyn.tasks.linear import inner_splits, logistic_cv, logistic_fit, ridge_cv, standardiser
from facedyn.tasks.probes import fit_logistic


def _data(seed: int = 0, n: int = 240, d: int = 12) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 20, d) + rng.normal(size=d) * 30
    X[:, 3] = 7.0  # a constant feature (scaled by 1, as StandardScaler does)
    return X.astype(np.float32), np.repeat(np.arange(8), n // 8)


def test_standardiser_is_standard_scaler() -> None:
    X, _ = _data()
    s = StandardScaler().fit(X.astype(np.float64))
    mu, sd = standardiser(X)
    np.testing.assert_allclose(mu, s.mean_, rtol=1e-12)
    np.testing.assert_allclose(sd, s.scale_, rtol=1e-10)


def test_ridge_every_alpha_and_the_choice_equal_sklearn() -> None:
    X, g = _data()
    rng = np.random.default_rng(1)
    Y = X.astype(np.float64) @ rng.normal(size=(X.shape[1], 3)) + rng.normal(size=(len(X), 3)) * 40
    alphas = (0.1, 10.0, 1000.0, 1e5)
    errs = []
    for a in alphas:  # the old loop: a pipeline per alpha and inner split
        err = 0.0
        for tr, va in inner_splits(g):
            m = make_pipeline(StandardScaler(), Ridge(alpha=a)).fit(X[tr].astype(np.float64), Y[tr])
            err += float(np.mean((m.predict(X[va]) - Y[va]) ** 2))
        errs.append(err)
    model, best = ridge_cv(X, Y, g, alphas)
    assert best == alphas[int(np.argmin(errs))]
    ref = make_pipeline(StandardScaler(), Ridge(alpha=best)).fit(X.astype(np.float64), Y).predict(X)
    np.testing.assert_allclose(model.predict(X), ref, rtol=1e-7, atol=1e-7 * np.abs(ref).max())


def test_logistic_equals_sklearn_at_each_c_and_picks_the_same_c() -> None:
    X, g = _data(2)
    rng = np.random.default_rng(3)
    z = (X - X.mean(0)) / (X.std(0) + 1e-9)
    B = (z[:, :4] @ rng.normal(size=(4, 3)) + rng.logistic(size=(len(X), 3)) > np.array([0.0, 1.5, 3.0])).astype(float)
    B[:, 2] = B[:, 2] * (g < 6)  # rare, and absent from some inner folds' people
    cs = (0.01, 0.1, 1.0)

    def ref(Xa: np.ndarray, y: np.ndarray, c: float) -> LogisticRegression:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return make_pipeline(StandardScaler(), LogisticRegression(C=c, class_weight="balanced", tol=1e-10,
                                                                      max_iter=5000)).fit(Xa.astype(np.float64), y)

    for c in cs:
        mine, _ = logistic_fit(X, B, c)
        for j in range(B.shape[1]):
            np.testing.assert_allclose(mine.predict(X)[:, j], ref(X, B[:, j], c).predict_proba(X)[:, 1], atol=2e-5)
    model, chosen = logistic_cv(X, B, g, cs)
    for j in range(B.shape[1]):  # the old selection: mean AUC over the inner splits with both classes on both sides
        splits = [(tr, va) for tr, va in inner_splits(g) if len(np.unique(B[tr, j])) == 2
                  and len(np.unique(B[va, j])) == 2]
        auc = [np.mean([M.auc(B[va, j], ref(X[tr], B[tr, j], c).predict_proba(X[va])[:, 1]) for tr, va in splits])
               for c in cs]
        assert chosen[j] == cs[int(np.argmax(auc))]
        np.testing.assert_allclose(model.predict(X)[:, j], ref(X, B[:, j], chosen[j]).predict_proba(X)[:, 1],
                                   atol=2e-5)
    assert fit_logistic(X, np.zeros(len(X)), g) is None  # one class: no model
    one = fit_logistic(X, B[:, 0], g)
    assert one is not None and one.predict_proba(X).shape == (len(X), 2)


def test_wide_features_fewer_rows_than_columns_equal_sklearn() -> None:
    """N < D (a flattened image): the thin-SVD basis gives sklearn's ridge and logistic solutions."""
    rng = np.random.default_rng(4)
    n, d = 64, 300
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, d)
    g = np.repeat(np.arange(8), n // 8)
    Y = X[:, :5] @ rng.normal(size=(5, 2)) + rng.normal(size=(n, 2))
    model, best = ridge_cv(X, Y, g, (1.0, 100.0))
    ref = make_pipeline(StandardScaler(), Ridge(alpha=best)).fit(X, Y).predict(X)
    np.testing.assert_allclose(model.predict(X), ref, rtol=1e-7, atol=1e-7 * np.abs(ref).max())
    B = (X[:, :1] + rng.logistic(size=(n, 1)) > 0).astype(float)
    mine, _ = logistic_fit(X, B, 0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", tol=1e-10,
                                                                max_iter=5000)).fit(X, B[:, 0])
    np.testing.assert_allclose(mine.predict(X)[:, 0], sk.predict_proba(X)[:, 1], atol=2e-5)
