"""The downstream benchmark (`facedyn eval downstream`): every representation kind on a tiny labelled store,
the draws of labelled people, the moment-based scores against the metrics module, resuming, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from facedyn.errors import ConfigError
from facedyn.eval.metrics import f1, icc31, mse
from facedyn.tasks.downstream import _from_moments, _moments, _scores, budget_draws, icc31_moments, run_downstream
from facedyn.tasks.downstream_config import KINDS, DownstreamConfig
from support.cli import run_cli
from support.task_fixtures import AUS, make_task_store, train_tiny_dr


@pytest.fixture(scope="module")
def store8(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight people at 64 px (the shipped models' crops): train P1-P5, val P6, test P7, P8."""
    return make_task_store(tmp_path_factory.mktemp("ds") / "data", n_frames=16, subjects=8, size=64)


def _tiny(**kw: object) -> DownstreamConfig:
    base = dict(budgets="2,all", repeats=2, steps=3, batch_size=8, width=4, n_boot=40, pca_dim=8,
                frames_per_person=8)
    base.update(kw)
    return DownstreamConfig(**base)  # type: ignore[arg-type]


def test_every_kind_scored_on_the_same_unseen_people(store8: Path, tmp_path: Path) -> None:
    said: list[str] = []
    res = run_downstream(store8, tmp_path / "out", _tiny(), progress=said.append)
    t = res["table"]
    kinds = DownstreamConfig().kind_list()
    assert set(KINDS) - {"mdr-ft"} == {k.split("/")[0] for k in kinds}  # the defaults: every kind but the costly one
    assert list(dict.fromkeys(t["kind"])) == kinds and kinds[0] == "si"
    assert set(t["budget"]) == {2, "all"}
    # 2 labelled people of the 5 + 1 (val) in the pool: two draws; all: one draw of the six
    assert t.loc[t["budget"] == 2, "draws"].eq(2).all() and t.loc[t["budget"] == "all", "draws"].eq(1).all()
    assert t.loc[t["budget"] == "all", "labelled"].eq(6).all() and t["test_people"].eq(2).all()
    for m in ("icc", "mse"):
        assert np.isfinite(t[m]).all()
    si = t[t["kind"] == "si"]
    assert si["icc_vs_si"].isna().all()  # the reference has no difference to itself
    assert np.isfinite(t.loc[t["kind"] != "si", "icc_vs_si"]).all()
    rec = json.loads((tmp_path / "out" / "run.json").read_text())
    assert rec["tests"] == [["P7", "P8"]] and rec["columns"] == AUS
    for draws in rec["draws"].values():
        assert all(not {"P7", "P8"} & set(d) for d in draws)
    md = (tmp_path / "out" / "downstream.md").read_text()
    assert "Paired Δ ICC vs SI" in md and "fabnet/mlp" in md and "Draws per budget: 2 people: 2" in md
    assert (tmp_path / "out" / "figures" / "downstream.png").stat().st_size > 1000
    n_cells = len(list((tmp_path / "out" / "cells").glob("*.npy")))
    assert n_cells == len(kinds) * 3
    # resumed: nothing is trained again and the table is the same
    said2: list[str] = []
    res2 = run_downstream(store8, tmp_path / "out", _tiny(), progress=said2.append)
    assert not [s for s in said2 if "labelled people, draw" in s] and [s for s in said if "labelled people, draw" in s]
    pd.testing.assert_frame_equal(res2["table"], t)
    # another budget reuses the cells of the budgets already made
    said3: list[str] = []
    run_downstream(store8, tmp_path / "out", _tiny(budgets="2,3,all", kinds="si,pixels", heads="linear"),
                   progress=said3.append)
    trained = [s for s in said3 if "labelled people, draw" in s]
    assert len(trained) == 2 * 2 and all(" 3 labelled" in s for s in trained)
    # other DR runs redo the DR kinds only, not the still image's cells
    said4: list[str] = []
    run_downstream(store8, tmp_path / "out", _tiny(budgets="2", kinds="si,mdr,pixels", heads="linear",
                                                   dr="dr-t5,dr-t3"), progress=said4.append)
    trained = [s for s in said4 if "labelled people, draw" in s]
    assert len(trained) == 2 and all(s.startswith("mdr:") for s in trained)


def test_a_representation_that_saw_a_test_person_is_refused(store8: Path, tmp_path: Path) -> None:
    dr = train_tiny_dr(store8, tmp_path / "dr", T=2, S=1)  # trained on P1-P5, validated on P6
    res = run_downstream(store8, tmp_path / "ok", _tiny(kinds="si,sdr,mdr,mdr-ft,dr", heads="linear", dr=str(dr),
                                                        budgets="2"))
    assert set(res["table"]["kind"]) == {"si", "sdr", "mdr", "mdr-ft", "dr/linear"}
    assert np.isfinite(res["table"]["icc"]).all()
    with pytest.raises(ConfigError, match="trained or validated on 1 of the test people"):
        run_downstream(store8, tmp_path / "bad", _tiny(kinds="si,sdr", dr=str(dr), test_split="val"))
    # a DR that learnt from the test people's frames without labels: admitted when asked, and named
    res = run_downstream(store8, tmp_path / "seen", _tiny(kinds="si,sdr", dr=str(dr), test_split="val", budgets="2",
                                                          allow_seen=True))
    assert f"seen, without labels, by {dr} (1 of them)" in res["markdown"]


def test_settings_are_checked_before_work() -> None:
    for kw, msg in ((dict(kinds="si,nope"), "unknown nope"), (dict(budgets="1"), "at least 2"),
                    (dict(budgets="x"), "not a number"), (dict(heads="svm"), "--heads"),
                    (dict(repeats=0), "--repeats"), (dict(labels="x"), "--labels"), (dict(dr=""), "--dr")):
        with pytest.raises(ConfigError, match=msg):
            DownstreamConfig(**kw).check()  # type: ignore[arg-type]


def test_budget_draws_are_stable_and_distinct() -> None:
    pool = [f"p{i}" for i in range(12)]
    a = budget_draws(pool, 3, 4, seed=0)
    assert len(a) == 4 and all(len(d) == 3 and set(d) <= set(pool) for d in a)
    assert len({tuple(d) for d in a}) > 1
    assert budget_draws(pool, 3, 2, seed=0) == a[:2]  # more repeats keep the first draws
    assert budget_draws(list(reversed(pool)), 3, 4, seed=0) == a  # the pool's order does not matter
    assert budget_draws(pool, 0, 4, seed=0) == [sorted(pool)] == budget_draws(pool, 12, 4, seed=0)


def test_scores_from_moments_match_the_metrics_module() -> None:
    rng = np.random.default_rng(0)
    yt = rng.normal(1, 1, (200, 3))
    yt[rng.random((200, 3)) < 0.1] = np.nan
    yp = yt + rng.normal(0, 0.7, (200, 3)) * np.array([1.0, 2.0, 0.5])
    groups = np.repeat([f"s{i}" for i in range(10)], 20)
    thr = np.array([1.0, 1.5, 0.5])
    S = _moments(yt, yp[:, None], thr, groups, sorted(set(groups))).sum(0)[0]  # (K, 9)
    got = _from_moments(S)
    for k in range(3):
        ok = np.isfinite(yt[:, k])
        assert got["icc"][k] == pytest.approx(icc31(yt[ok, k], yp[ok, k]), abs=1e-10)
        assert got["mse"][k] == pytest.approx(mse(yt[ok, k], yp[ok, k]), abs=1e-10)
        # presence at >= thr; the metrics module's F1 binarises at > threshold: equal on continuous values
        assert got["f1"][k] == pytest.approx(f1(yt[ok, k], yp[ok, k], threshold=thr[k]), abs=1e-10)
    # ICC(3,1) of two raters from the two-way ANOVA mean squares (Shrout & Fleiss), written out independently
    t, p = yt[:, 0][np.isfinite(yt[:, 0])], yp[:, 0][np.isfinite(yt[:, 0])]
    n, x = len(t), np.stack([t, p], 1)
    ss_rows = 2 * ((x.mean(1) - x.mean()) ** 2).sum()
    ss_cols = n * ((x.mean(0) - x.mean()) ** 2).sum()
    ss_err = ((x - x.mean()) ** 2).sum() - ss_rows - ss_cols
    msr, mse_ = ss_rows / (n - 1), ss_err / (n - 1)
    assert icc31_moments(np.array([n, t.sum(), p.sum(), (t * t).sum(), (p * p).sum(), (t * p).sum()])) == \
        pytest.approx((msr - mse_) / (msr + mse_), abs=1e-12)


def test_paired_difference_and_draw_spread() -> None:
    rng = np.random.default_rng(1)
    yt = rng.normal(0, 1, (300, 2))
    groups = np.repeat([f"s{i}" for i in range(10)], 30)
    good = yt[:, None] + rng.normal(0, 0.3, (300, 2, 2))  # two draws
    bad = yt[:, None] + rng.normal(0, 1.5, (300, 2, 2))
    sc = _scores(yt, {"si": bad, "x": good}, np.zeros(2), groups, n_boot=200, seed=0)
    assert sc["x"]["icc"] > sc["si"]["icc"]
    assert sc["x"]["icc_vs_si"] == pytest.approx(sc["x"]["icc"] - sc["si"]["icc"], abs=1e-9)
    assert sc["x"]["icc_vs_si_lo"] > 0  # the paired interval excludes zero
    assert sc["x"]["icc_lo"] <= sc["x"]["icc"] <= sc["x"]["icc_hi"]
    assert np.isfinite(sc["x"]["icc_sd"]) and sc["x"]["mse_vs_si"] < 0
    assert "icc_vs_si" not in sc["si"]


def test_cli(store8: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
             monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run_cli(["eval", "downstream", "--help"], capsys, monkeypatch)
    assert code == 0 and "--budgets" in out and "labelled people" in out
    code, _, err = run_cli(["eval", "downstream", "--data", str(store8), "--kinds", "si,nope"], capsys, monkeypatch)
    assert code != 0 and "unknown nope" in err and "Traceback" not in err
    code, out, err = run_cli(["eval", "downstream", "--data", str(store8), "--out", str(tmp_path / "o"), "--kinds",
                              "si,pixels", "--heads", "linear", "--budgets", "3", "--repeats", "1", "--steps", "2",
                              "--frames-per-person", "6", "--n-boot", "20", "--threads", "1"], capsys, monkeypatch)
    assert code == 0, err
    assert "pixels/linear" in out and (tmp_path / "o" / "downstream.csv").is_file()
    # the summary of the README and the results page, from that table
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "scripts" / "downstream_summary.py"
    p = subprocess.run([sys.executable, str(script), str(tmp_path / "o" / "downstream.csv"), "--kinds",
                        "si,pixels/linear"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "| 3 | 1 |" in p.stdout and "| pixels/linear |" in p.stdout


def test_mdr_ft_trains_the_dr_network_along() -> None:
    import copy

    import torch

    from facedyn.api import load
    from facedyn.tasks.downstream import _train_net

    dr = load("dr-t5", device="cpu").net
    for q in dr.parameters():
        q.requires_grad_(True)
    before = copy.deepcopy(dr.state_dict())
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 3, 64, 64, generator=g)
    y = torch.rand(12, 2, generator=g) * 3
    from facedyn.data.faces.landmarks68 import template

    lm = torch.from_numpy(template(64)).float()
    p = _train_net("cnn", x, y, lm.expand(12, 68, 2).clone(), x[:5], ["AU12", "AU25"], _tiny(steps=3), seed=0, dr=dr)
    assert p.shape == (5, 2) and np.isfinite(p).all()
    moved = [k for k, v in dr.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert moved  # the DR's weights were trained, not frozen
