"""facedyn.eval.metrics against independent implementations (pingouin, scipy, scikit-learn), to 1e-6."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import f1_score, roc_auc_score

from facedyn.errors import ConfigError
from facedyn.eval import metrics as M

pingouin = pytest.importorskip("pingouin")


def _data(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) * 1.5 + 2
    p = 0.7 * y + rng.normal(size=n) * 0.8 + rng.normal()
    return y, p


@pytest.mark.parametrize("seed", range(5))
def test_icc31_matches_pingouin(seed: int) -> None:
    y, p = _data(seed, n=50 + 37 * seed)
    n = len(y)
    long = pd.DataFrame({"target": np.r_[np.arange(n), np.arange(n)], "rater": ["y"] * n + ["p"] * n,
                         "score": np.r_[y, p]})
    tab = pingouin.intraclass_corr(long, targets="target", raters="rater", ratings="score").set_index("Type")
    assert M.icc31(y, p) == pytest.approx(float(tab.loc["ICC(C,1)", "ICC"]), abs=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_pcc_ccc_mse_mae(seed: int) -> None:
    y, p = _data(seed)
    assert M.pcc(y, p) == pytest.approx(pearsonr(y, p).statistic, abs=1e-6)
    cov = np.cov(y, p, bias=True)[0, 1]
    ref = 2 * cov / (y.var() + p.var() + (y.mean() - p.mean()) ** 2)
    assert M.ccc(y, p) == pytest.approx(ref, abs=1e-6)
    assert M.mse(y, p) == pytest.approx(np.mean((y - p) ** 2), abs=1e-9)
    assert M.mae(y, p) == pytest.approx(np.mean(np.abs(y - p)), abs=1e-9)
    assert M.ccc(y, y) == pytest.approx(1.0) and M.icc31(y, y) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(5))
def test_f1_auc_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = (rng.random(300) < 0.3).astype(float)
    score = np.round(y * 0.4 + rng.random(300), 1)  # rounded: ties
    assert M.f1(y, score) == pytest.approx(f1_score(y, score > 0.5), abs=1e-6)
    assert M.auc(y, score) == pytest.approx(roc_auc_score(y, score), abs=1e-6)


def test_undefined_cases_are_nan_not_errors() -> None:
    assert np.isnan(M.pcc([1, 1, 1], [1, 2, 3]))
    assert np.isnan(M.auc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert np.isnan(M.icc31([1.0], [1.0]))
    assert M.f1([0, 0], [0, 0]) == 0.0
    with pytest.raises(ConfigError):
        M.mse([1, 2], [1, 2, 3])


def test_column_metrics_and_torch_input() -> None:
    import torch

    y, p = _data(0)
    yt = np.stack([y, -y], 1)
    yp = np.stack([p, -p], 1)
    yt[3, 1] = np.nan  # an unlabelled row is left out of that column only
    tab = M.column_metrics(torch.from_numpy(yt), torch.from_numpy(yp), ["a", "b"], metrics=("icc", "pcc", "mse"))
    assert tab["icc"]["a"] == pytest.approx(M.icc31(y, p))
    keep = np.arange(len(y)) != 3
    assert tab["pcc"]["b"] == pytest.approx(M.pcc(-y[keep], -p[keep]))
    assert tab["mse"]["avg"] == pytest.approx((tab["mse"]["a"] + tab["mse"]["b"]) / 2)


def test_bootstrap_interval_over_subjects() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(8), 40)
    y = rng.normal(size=len(groups))
    p = y + rng.normal(size=len(groups)) * (0.2 + 0.2 * (groups % 3))
    stat = M.column_statistic("icc")
    lo, hi = M.bootstrap_interval(stat, y, p, groups, n_boot=200, seed=1)
    assert lo < stat(y, p) < hi <= 1
    assert (lo, hi) == M.bootstrap_interval(stat, y, p, groups, n_boot=200, seed=1)  # seeded
    one = M.bootstrap_interval(stat, y, p, np.zeros(len(y)), n_boot=20)
    assert one[0] == pytest.approx(one[1]) == pytest.approx(stat(y, p))
    # too few groups for an interval over them: none (2 people have only 3 distinct resamples)
    assert np.isnan(M.bootstrap_interval(stat, y, p, groups % 2, n_boot=50, min_groups=6)).all()
    assert np.isfinite(M.bootstrap_interval(stat, y, p, groups, n_boot=50, min_groups=6)).all()
