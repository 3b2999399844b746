"""TCAE through the platform: `facedyn train tcae`, facedyn.load, figures, the separation check."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import facedyn
from facedyn import runs
from facedyn.cli import main
from facedyn.tcae.figures import FIGURE_NAME
from facedyn.tcae.separation import render_pairs, separation_check, separation_summary
from facedyn.train import train

TINY = {"epochs": 2, "steps_per_epoch": 2, "batch_size": 4, "width": 4, "emb_dim": 16, "curriculum_start_s": 0.08,
        "curriculum_ramp": 1.0}


@pytest.fixture(scope="module")
def tcae_run(synth_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("tcae") / "run"
    res = train("tcae", synth_store, run, TINY)
    assert [r["epoch"] for r in res.history] == [0, 1, 2]
    assert np.isfinite(res.history[-1]["val_loss"]) and np.isfinite(res.history[-1]["train_rec"])
    return run


def test_registry_load_encode_outputs_and_reconstruct(tcae_run: Path) -> None:
    rec = runs.read_record(tcae_run)
    assert rec.method == "tcae" and rec.module == "facedyn.tcae.model"
    assert rec.extra["curriculum_max_gap_s"] == [0.08, 1.0]
    model = facedyn.load(tcae_run, device="cpu")
    faces = torch.rand(5, 3, 32, 32)
    z = model.encode(faces)
    assert z.shape == (5, 16)
    outs = model.outputs(faces)
    assert torch.equal(outs["au"], z) and outs["pose"].shape == (5, 16)
    r = model.reconstruct(faces, faces.flip(0))
    assert r["tau_au"].shape == (5, 2, 32, 32) and r["reconstruction"].shape == (5, 3, 32, 32)
    init = facedyn.load(tcae_run, weights="init", device="cpu")
    assert not torch.allclose(init.encode(faces), z)
    assert (tcae_run / "figures" / FIGURE_NAME).is_file()


def test_cli_has_train_tcae_with_its_options(capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["facedyn", "train", "tcae", "--help"])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--lambda1", "--lambda2", "--lambda3", "--min-gap-s", "--max-gap-s", "--curriculum-ramp",
                "--emb-dim", "--flow-stride"):
        assert opt in text


@pytest.mark.parametrize("align", ["similarity", "box"])
def test_render_pairs_change_one_factor(align: str) -> None:
    for kind in ("pose", "au"):
        src, tgt, table = render_pairs(kind, n_people=1, pairs_per_person=2, size=32, align=align, mask=False)
        assert src.shape == tgt.shape == (2, 3, 32, 32) and len(table) == 2
        assert (src - tgt).abs().mean() > 0.002  # the factor changed something
        if kind == "pose":
            assert (table["d_au"] == 0).all() and (table[["d_yaw", "d_pitch", "d_roll"]].abs().sum(axis=1) > 0).all()
        else:
            assert (table["d_au"] > 0).all() and (table[["d_yaw", "d_pitch", "d_roll"]] == 0).all().all()


def test_separation_check_table(tcae_run: Path) -> None:
    df = separation_check(facedyn.load(tcae_run, device="cpu"), n_people=1, pairs_per_person=2)
    assert sorted(df["kind"].unique()) == ["au", "pose"] and len(df) == 4
    s = separation_summary(df)
    assert set(s) >= {"pose_ratio", "au_ratio", "pose_tau_au_px", "au_tau_pose_px", "alpha_concentration"}
    assert all(np.isfinite(v) and v >= 0 for v in s.values())
    assert df.loc[df["kind"] == "pose", "alpha_concentration"].isna().all()


def test_au_region_and_alpha_concentration() -> None:
    from facedyn.data.faces.landmarks68 import template
    from facedyn.tcae.separation import au_region

    lm = template(64).astype(np.float64)
    assert not au_region(lm, lm, 64).any()  # nothing moved: no region
    moved = lm.copy()
    moved[48:60, 1] -= 2.0  # the outer lips move up 2 px (AU10-like), nothing else
    region = au_region(lm, moved, 64)
    ys = np.nonzero(region)[0]
    assert region.mean() < 0.2 and ys.min() > lm[30, 1] and ys.max() < lm[8, 1]  # around the mouth only
    # AU pairs rendered by the generator: the region covers what moved, and a uniform alpha^A has concentration 1
    table = render_pairs("au", n_people=1, pairs_per_person=2, size=64, align="box", mask=False)[2]
    for a, b in zip(table["src_landmarks"], table["tgt_landmarks"], strict=True):
        r = au_region(np.asarray(a), np.asarray(b), 64)
        assert 0 < r.mean() < 0.8
        alpha = np.full((64, 64), 0.5)
        assert alpha[r].sum() / alpha.sum() / r.mean() == pytest.approx(1.0)


def test_figure_scale_ignores_edge_outliers() -> None:
    from facedyn.tcae.figures import display_scale

    f = torch.zeros(2, 2, 64, 64)
    f[:, 0, 8:56, 8:56] = 1.5  # the face moves 1.5 px
    f[:, 0, :, -2:] = 40.0     # outside the image: no gradient, free to drift
    assert display_scale([f, torch.zeros_like(f)]) == pytest.approx(1.5)


def test_runs_recorded_before_flow_gain_load_with_the_gain_they_trained_with() -> None:
    from facedyn.config import from_record, resolve
    from facedyn.tcae.model import TCAEConfig

    assert resolve(TCAEConfig).flow_gain == 0.0625  # new runs
    assert from_record(TCAEConfig, {"width": 8}).flow_gain == 1.0  # a config.json without the field
    assert from_record(TCAEConfig, {"flow_gain": 0.0625}).flow_gain == 0.0625
