"""Affect (method `affect`): VGG-16 layout, widened first conv, user weights, CCC loss, training and tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from facedyn.dr.representations import IMAGE, represent
from facedyn.errors import ConfigError
from facedyn.eval.metrics import ccc
from facedyn.nn.vgg import VGG16Features
from facedyn.tasks.affect import VGGRegressor, ccc_loss, widen_first_conv
from facedyn.tasks.evaluation import evaluate_task
from facedyn.train import train
from facedyn.train.loop import Runtime
from support.task_fixtures import make_task_store, train_tiny_dr


def test_widened_conv_answers_a_stack_of_copies_like_the_image() -> None:
    conv = nn.Conv2d(3, 5, 3, padding=1)
    wide = widen_first_conv(conv, 9)
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(wide(x.repeat(1, 3, 1, 1)), conv(x))
    with pytest.raises(ConfigError):
        widen_first_conv(conv, 7)


def test_ccc_loss_is_one_minus_ccc() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=(50, 2))
    p = y * 0.5 + rng.normal(size=(50, 2)) * 0.3 + 0.2
    want = 1 - np.mean([ccc(y[:, k], p[:, k]) for k in range(2)])
    assert float(ccc_loss(torch.from_numpy(p), torch.from_numpy(y))) == pytest.approx(want, abs=1e-6)


def test_user_vgg_weights_are_loaded_into_the_widened_network(tmp_path: Path) -> None:
    ref = VGG16Features(width=64)
    state = {f"features.{k}": v for k, v in ref.features.state_dict().items()}
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    from facedyn.nn.vgg import load_vgg16_weights

    net = VGGRegressor([IMAGE, IMAGE, IMAGE], ["valence", "arousal"], width=64, hidden=8, dropout=0.0)
    net.load_pretrained(load_vgg16_weights(path))
    torch.testing.assert_close(net.features[2].weight, ref.features[2].weight)
    torch.testing.assert_close(net.features[0].weight[:, 3:6], ref.features[0].weight / 3)
    small = VGGRegressor([IMAGE], ["valence"], width=16, hidden=8, dropout=0.0)
    with pytest.raises(ConfigError, match="width 64"):
        small.load_pretrained(load_vgg16_weights(path))


@pytest.mark.slow
def test_train_affect_mdr_and_si_then_table(tmp_path: Path) -> None:
    data = make_task_store(tmp_path / "data")
    runs = [train_tiny_dr(data, tmp_path / f"dr{T}", T=T) for T in (3, 5)]
    represent(data, runs, device="cpu")
    small = {"epochs": 1, "steps_per_epoch": 3, "batch_size": 8, "width": 4, "hidden": 8, "input_norm_samples": 16}
    for inp, loss in (("si", "mse"), ("mdr", "ccc")):
        res = train("affect", data, tmp_path / f"aff_{inp}", {**small, "input": inp, "loss": loss},
                    Runtime(device="cpu", threads=1))
        assert res.config.label_columns == "valence,arousal"
        assert {"val_pcc", "val_ccc", "val_mse", "val_ccc_valence"} <= set(res.history[-1])
    out = evaluate_task("affect", data, [tmp_path / "aff_si", tmp_path / "aff_mdr"], tmp_path / "ev", n_boot=10,
                        device="cpu")
    assert list(out["table"]["input"]) == ["si", "mdr"]
    assert "PCC" in out["markdown"] and (tmp_path / "ev" / "affect.csv").is_file()


@pytest.mark.slow
def test_semaine_layout_through_represent_train_eval(tmp_path: Path) -> None:
    from facedyn.data.prepare import PrepareOptions, prepare
    from support.task_fixtures import synthetic_video

    root = tmp_path / "semaine"
    for seed, (part, session) in enumerate((("train", "s01_u01"), ("train", "s02_u02"), ("devel", "s03_u03"),
                                            ("test", "s04_u04"))):
        labels = synthetic_video(root / part / f"{session}.mp4", seed=10 + seed)
        rows = "\n".join(f"{t:.4f},{v:.4f},{a:.4f}" for t, v, a in
                         zip(labels["timestamp"], labels["valence"], labels["arousal"], strict=True))
        (root / part / f"{session}.csv").write_text("time,valence,arousal\n" + rows + "\n")
    data = tmp_path / "data"
    res = prepare([root], data, PrepareOptions(size=32), kind="semaine")
    assert not any(r.error for r in res)
    runs = [train_tiny_dr(data, tmp_path / f"dr{T}", T=T) for T in (3, 5)]
    represent(data, runs, device="cpu")
    small = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "width": 4, "hidden": 8, "input_norm_samples": 16}
    for inp in ("si", "sdr", "mdr"):
        train("affect", data, tmp_path / f"aff_{inp}", {**small, "input": inp}, Runtime(device="cpu", threads=1))
    out = evaluate_task("affect", data, [tmp_path / f"aff_{i}" for i in ("si", "sdr", "mdr")], tmp_path / "ev",
                        n_boot=10, device="cpu")
    assert list(out["table"]["input"]) == ["si", "sdr", "mdr"]
    assert np.isfinite(out["table"]["mse_avg"]).all()


@pytest.mark.parametrize("groups", [1, 3])
def test_from_scratch_vgg_keeps_the_signal_through_its_13_convolutions(groups: int) -> None:
    torch.manual_seed(0)
    net = VGGRegressor([IMAGE] * groups, ["valence", "arousal"], 16, 128, 0.5)
    x = torch.randn(8, 3 * groups, 64, 64)  # standardised input
    rms = float(net.features(x).detach().pow(2).mean().sqrt())
    assert 0.1 < rms < 10.0  # PyTorch's default initialisation leaves ~0.015 here
    assert torch.count_nonzero(net.out.bias) == 0
