"""FAb-Net: shapes, the identity warp, confidence blending, the curriculum, training, load, figures."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import facedyn
from facedyn import runs
from facedyn.config import from_dict
from facedyn.errors import ConfigError, FacedynError
from facedyn.fabnet.losses import (
    blend_sources,
    confidence_weights,
    curriculum_loss,
    curriculum_schedule,
    curriculum_select,
    curriculum_stage,
    per_sample_l1,
    percentile_window,
    window_slice,
)
from facedyn.fabnet.method import FabNetMethod, augment_sample, jitter_frames
from facedyn.fabnet.model import FabNet, encoder_sides
from facedyn.method import DataSpec
from facedyn.train import train

SMALL = {"embedding_dim": 8, "width": 4, "batch_size": 4, "steps_per_epoch": 2, "epochs": 2, "max_gap_s": 0.4}


@pytest.mark.parametrize("size", [16, 32, 48, 64])
def test_shapes(size: int) -> None:
    torch.manual_seed(0)
    net = FabNet(size, dim=16, width=4).eval()
    B, K = 2, 3
    target, sources = torch.rand(B, 3, size, size), torch.rand(B, K, 3, size, size)
    assert net.encode(target).shape == (B, 16)
    assert net.outputs(target)["embedding"].shape == (B, 16)
    assert net(target).shape == (B, 16)
    assert net.flow(sources[:, 0], target).shape == (B, 2, size, size)
    out = net.reconstruct(sources, target)
    assert out["generated"].shape == (B, 3, size, size)
    assert out["warped"].shape == (B, K, 3, size, size)
    assert out["flow"].shape == (B, K, 2, size, size)
    assert out["logits"].shape == out["weights"].shape == (B, K, 1, size, size)
    flat = net.generate(sources.flatten(0, 1), target)
    torch.testing.assert_close(flat["generated"], out["generated"])
    assert encoder_sides(size)[-1] <= 2


def test_flow_predicted_at_a_lower_side_is_upsampled_to_the_crop() -> None:
    torch.manual_seed(0)
    net = FabNet(32, dim=8, width=4, flow_size=8).eval()
    assert net.decoder.flow_size == 8
    out = net.reconstruct(torch.rand(2, 2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    assert out["flow"].shape == (2, 2, 2, 32, 32) and out["weights"].shape == (2, 2, 1, 32, 32)
    assert FabNet(16, dim=8, width=4, flow_size=32).decoder.flow_size == 16  # never above the crop
    with torch.no_grad():
        net.decoder.head.bias.copy_(torch.tensor([1.0, 0.0, 0.0]))  # a constant field stays constant
    with torch.no_grad():
        f = net.flow(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    torch.testing.assert_close(f[0, 0], torch.full((32, 32), float(f[0, 0, 0, 0])))
    assert float(f[0, 0, 0, 0]) == pytest.approx(np.tanh(1.0) * net.decoder.max_offset, rel=1e-5)


def test_shape_errors_are_one_line_config_errors() -> None:
    net = FabNet(32, dim=8, width=4)
    with pytest.raises(ConfigError, match=r"\(N, 3, 32, 32\)"):
        net.encode(torch.rand(1, 3, 16, 16))
    with pytest.raises(ConfigError, match="sources"):
        net.reconstruct(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    with pytest.raises(ConfigError, match="K sources per target"):
        net.generate(torch.rand(5, 3, 32, 32), torch.rand(2, 3, 32, 32))
    with pytest.raises(ConfigError, match="blend_sources"):
        blend_sources(torch.rand(2, 3, 3, 8, 8), torch.rand(2, 2, 1, 8, 8))


def test_zero_flow_reproduces_the_source() -> None:
    """The untrained decoder predicts zero flow (its last layer starts at zero): each warped source is the source
    itself, and with one source the generated frame is that source."""
    torch.manual_seed(0)
    net = FabNet(32, dim=8, width=4).eval()
    sources, target = torch.rand(2, 3, 3, 32, 32), torch.rand(2, 3, 32, 32)
    out = net.reconstruct(sources, target)
    assert out["flow"].abs().max() == 0
    torch.testing.assert_close(out["warped"], sources, rtol=0, atol=1e-5)  # float grid round trip
    torch.testing.assert_close(out["generated"], sources.mean(dim=1), rtol=0, atol=1e-5)  # equal confidences
    one = net.reconstruct(sources[:, :1], target)
    torch.testing.assert_close(one["generated"], sources[:, 0], rtol=0, atol=1e-5)


def test_confidence_weights_sum_to_one_per_pixel_and_follow_the_slides_equation() -> None:
    g = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(2, 3, 1, 5, 6, generator=g)
    w = confidence_weights(logits)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(2, 1, 5, 6))
    assert (w >= 0).all()
    warped = torch.rand(2, 3, 3, 5, 6, generator=g)
    slides = (logits.exp() * warped).sum(dim=1) / logits.exp().sum(dim=1)  # sum e^C s' / sum e^C
    torch.testing.assert_close(blend_sources(warped, logits), slides)
    # stable where e^C overflows float32: the most confident source wins, nothing is NaN
    big = torch.tensor([1000.0, -1000.0, 0.0]).view(1, 3, 1, 1, 1).expand(1, 3, 1, 5, 6)
    wb = confidence_weights(big)
    assert torch.isfinite(wb).all()
    torch.testing.assert_close(wb.sum(dim=1), torch.ones(1, 1, 5, 6))
    torch.testing.assert_close(blend_sources(warped[:1], big), warped[:1, 0])


def test_curriculum_stages_and_windows_over_ten_epochs() -> None:
    stages = [curriculum_stage(e, 10) for e in range(1, 11)]
    assert stages == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert [percentile_window(s) for s in range(5)] == [(0, 50), (10, 60), (20, 70), (30, 80), (40, 90)]
    assert curriculum_schedule(10) == [
        {"first_epoch": 1, "last_epoch": 2, "lo": 0, "hi": 50},
        {"first_epoch": 3, "last_epoch": 4, "lo": 10, "hi": 60},
        {"first_epoch": 5, "last_epoch": 6, "lo": 20, "hi": 70},
        {"first_epoch": 7, "last_epoch": 8, "lo": 30, "hi": 80},
        {"first_epoch": 9, "last_epoch": 10, "lo": 40, "hi": 90},
    ]
    assert [curriculum_stage(e, 3) for e in (1, 2, 3)] == [0, 1, 3]  # fewer epochs than stages: stages skipped
    with pytest.raises(ConfigError):
        percentile_window(6)  # [60, 110) leaves 0..100


@pytest.mark.parametrize(("stage", "ranks"), [(0, range(0, 10)), (1, range(2, 12)), (2, range(4, 14)),
                                              (3, range(6, 16)), (4, range(8, 18))])
def test_curriculum_selects_the_stated_percentiles(stage: int, ranks: range) -> None:
    """20 samples with known losses: stage k back-propagates exactly the samples ranked 2k .. 2k+9 (percentiles
    10k .. 10k+50), and no other sample gets a gradient."""
    g = torch.Generator().manual_seed(stage)
    perm = torch.randperm(20, generator=g)
    per = (perm.float() + 1).requires_grad_(True)  # sample i has rank perm[i]
    lo, hi = percentile_window(stage)
    chosen = set(curriculum_select(per, lo, hi).tolist())
    assert chosen == {i for i in range(20) if int(perm[i]) in ranks}
    loss = curriculum_loss(per, lo, hi)
    loss.backward()
    assert per.grad is not None
    assert {i for i in range(20) if per.grad[i] != 0} == chosen
    torch.testing.assert_close(loss, per.detach()[sorted(chosen)].mean())


def test_window_slice_floors_like_the_authors_and_keeps_one_sample() -> None:
    assert window_slice(16, 10, 60) == (1, 9)  # int(0.1*16), int(0.6*16)
    assert window_slice(16, 30, 80) == (4, 12)
    assert window_slice(1, 40, 90) == (0, 1)
    assert curriculum_loss(torch.tensor([3.0, 1.0, 2.0])) == 2.0  # no curriculum: the plain mean


def _method(**kw: object) -> FabNetMethod:
    return FabNetMethod(from_dict(FabNetMethod.Config, {**SMALL, **kw}), DataSpec(size=16))


def test_method_follows_the_schedule_and_records_it() -> None:
    m = _method(epochs=10)
    seen = []
    for e in range(1, 11):
        m.on_epoch_start(e, 10)
        seen.append(m.window)
    assert seen == [(0, 50)] * 2 + [(10, 60)] * 2 + [(20, 70)] * 2 + [(30, 80)] * 2 + [(40, 90)] * 2
    assert m.record()["curriculum_schedule"][-1] == {"first_epoch": 9, "last_epoch": 10, "lo": 40, "hi": 90}
    off = _method(epochs=10, curriculum=False)
    off.on_epoch_start(1, 10)
    assert off.window == (0, 100) and off.record()["curriculum_schedule"][0]["hi"] == 100
    assert off.label() == "fabnet-3src" and _method(n_sources=1).label() == "fabnet-1src-curric"


@pytest.mark.parametrize("bad", [{"n_sources": 0}, {"curriculum_start": 80}, {"jitter": 0.6},
                                 {"curriculum_shift": -1}])
def test_bad_settings_are_config_errors(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        _method(**bad)


def test_augmentation_keeps_shapes_and_flips_whole_samples() -> None:
    torch.manual_seed(0)
    t, s = torch.rand(4, 3, 16, 16), torch.rand(4, 2, 3, 16, 16)
    t2, s2 = augment_sample(t, s, jitter=0.0, flip=True)
    for b in range(4):  # target and its sources flipped together or not at all
        flipped = torch.equal(t2[b], t[b].flip(-1))
        assert flipped or torch.equal(t2[b], t[b])
        assert torch.equal(s2[b], s[b].flip(-1) if flipped else s[b])
    j = jitter_frames(t, 0.1)
    assert j.shape == t.shape and not torch.equal(j, t)
    assert torch.equal(jitter_frames(t, 0.0), t)


def test_training_reduces_the_loss_on_a_fixed_batch() -> None:
    """Targets are their source shifted by a few pixels: the flow learns it and the L1 falls."""
    torch.manual_seed(0)
    m = _method(n_sources=1, curriculum=False, jitter=0.0, flip=False)
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    blobs = torch.stack([torch.exp(-((xx - 5 - b) ** 2 + (yy - 8) ** 2) / 8) for b in range(8)])
    src = blobs[:, None].expand(8, 3, 16, 16)
    batch = {"target": src.roll(2, dims=-1), "sources": src[:, None]}
    opt = torch.optim.Adam(m.net.parameters(), lr=3e-3)
    first = float(m.losses(batch)["l1"])
    for _ in range(15):
        loss = m.losses(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(m.losses(batch)["l1"]) < 0.5 * first


def test_train_load_generate_figures(synth_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "fab"
    res = train("fabnet", synth_store, run, SMALL)
    assert [r["epoch"] for r in res.history] == [0, 1, 2]
    assert np.isfinite(res.history[-1]["val_l1"]) and "val_l1_copy" in res.history[-1]
    assert res.history[1]["train_window_lo"] == 0.0
    rec = runs.read_record(run)
    assert rec.method == "fabnet" and rec.module == "facedyn.fabnet.method" and rec.data["size"] == 32
    assert rec.config["n_sources"] == 3 and rec.config["curriculum"] is True
    assert rec.extra["curriculum_schedule"][0] == {"first_epoch": 1, "last_epoch": 1, "lo": 0, "hi": 50}

    model = facedyn.load(run, device="cpu")
    faces = torch.rand(4, 3, 32, 32)
    assert model.encode(faces).shape == (4, 8)
    assert model.outputs(faces)["embedding"].shape == (4, 8)
    assert model.flow(faces, faces.flip(0)).shape == (4, 2, 32, 32)
    gen = model.generate(torch.rand(6, 3, 32, 32), faces[:2])  # 3 sources for each of 2 targets
    assert gen["generated"].shape == (2, 3, 32, 32) and gen["weights"].shape == (2, 3, 1, 32, 32)
    init = facedyn.load(run, weights="init", device="cpu")
    assert not torch.allclose(init.encode(faces), model.encode(faces))
    assert set(facedyn.evaluate(run, synth_store, split="test", device="cpu")) == {"l1", "l1_copy"}

    from facedyn.fabnet.figures import flow_to_rgb, write_figures

    paths = write_figures(run, n=2)
    assert [p.name for p in paths] == ["fabnet_samples.png", "training.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
    rgb = flow_to_rgb(np.zeros((2, 4, 4)))
    assert rgb.shape == (4, 4, 3) and rgb.max() == 0

    from facedyn.fabnet.retrieval import retrieval_figure, retrieval_scores

    fig = retrieval_figure(run, synth_store, tmp_path / "retrieval.png", n_queries=2, k=1, every=10)
    assert fig.stat().st_size > 1000
    df = retrieval_scores(run, synth_store, k=3, n_queries=10, every=10)
    assert list(df["features"]) == ["trained", "init", "pixels", "random"] and (df["nme_mean"] > 0).all()

    from facedyn.cli import main  # the same through `facedyn eval retrieval`

    out = tmp_path / "ret"
    argv = ["facedyn", "eval", "retrieval", "--run", str(run), "--data", str(synth_store), "--out", str(out),
            "--k", "1", "--queries", "10", "--figure-queries", "2", "--device", "cpu"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as e:
            main()
    assert e.value.code == 0
    assert (out / "retrieval.png").stat().st_size > 1000
    text = (out / "retrieval.md").read_text()
    assert "| trained |" in text and "| random |" in text and "![retrieval](retrieval.png)" in text
    assert list(pd.read_csv(out / "retrieval.csv")["features"]) == ["trained", "init", "pixels", "random"]


def test_single_source_without_curriculum_trains(synth_store: Path, tmp_path: Path) -> None:
    res = train("fabnet", synth_store, tmp_path / "one", {**SMALL, "epochs": 1, "n_sources": 1,
                                                          "curriculum": False})
    assert res.config.n_sources == 1 and res.history[1]["train_window_lo"] == 0.0
    assert res.history[1]["train_loss"] == pytest.approx(res.history[1]["train_l1"])


def test_nearest_other_people_never_returns_the_same_person() -> None:
    from facedyn.fabnet.retrieval import landmark_nme, nearest_other_people

    feats = np.array([[1, 0], [1, 0.01], [0.9, 0.1], [0, 1], [0.1, 1]], float)
    subjects = np.array(["a", "a", "b", "b", "c"])
    nn_idx = nearest_other_people(feats, subjects, np.array([0, 3]), k=2)
    assert nn_idx.tolist() == [[2, 4], [4, 0]] or nn_idx.tolist() == [[2, 4], [4, 1]]
    assert nearest_other_people(feats, subjects, np.array([0]), k=2, distinct=True).tolist() == [[2, 4]]
    with pytest.raises(FacedynError, match="fewer than 3 people"):
        nearest_other_people(feats, subjects, np.array([0]), k=3, distinct=True)
    lms = np.zeros((5, 68, 2), np.float32)
    lms[:, 45, 0] = 10.0  # outer-eye distance 10
    lms[2] += 1.0
    assert landmark_nme(lms, np.array([0]), np.array([[2]]))[0] == pytest.approx(np.sqrt(2) * 67 / 68 / 10 +
                                                                                   0.0, rel=0.05)


def test_cli_has_train_fabnet(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from facedyn.cli import main

    monkeypatch.setattr(sys, "argv", ["facedyn", "train", "fabnet", "--help"])
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "--n-sources" in text and "--no-curriculum" in text and "--embedding-dim" in text


def test_per_sample_l1() -> None:
    a, b = torch.zeros(2, 3, 4, 4), torch.ones(2, 3, 4, 4)
    b[1] = 0.5
    assert per_sample_l1(a, b).tolist() == [1.0, 0.5]
    assert issubclass(ConfigError, FacedynError)
