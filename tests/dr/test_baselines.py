"""DI-target baselines (dr-paper.txt §4.3): targets, losses, Pix2Pix update order, end-to-end runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from facedyn.config import DRConfig
from facedyn.data.store import ClipWriter, write_index
from facedyn.dr.baselines import (
    MSEMethod,
    PerceptualMethod,
    Pix2PixMethod,
    build_feature_net,
    build_method,
    make_target,
    side_mask,
    train_baseline,
)
from facedyn.dr.dynamic_image import dynamic_image
from facedyn.dr.model import build_net
from facedyn.dr.rank_loss import eq2_pairs, pair_deltas
from facedyn.dr.train import train_dr
from facedyn.errors import ConfigError
from facedyn.eval.ranking import load_run
from facedyn.nn.vgg import VGG16Features
from facedyn.train.loop import LoopConfig, load_weights

T = 2
SIZE = 32


def _blob_frames(n: int, size: int, seed: int) -> np.ndarray:
    """uint8 ``(n, size, size, 3)``: a smooth blob drifting across a shaded face-like disc."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    disc = ((yy - 0.5) ** 2 + (xx - 0.5) ** 2 < 0.2).astype(np.float32)
    colour = rng.uniform(0.3, 0.8, 3).astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi)
    frames = []
    for t in range(n):
        cy = 0.5 + 0.2 * np.sin(0.15 * t + phase)
        cx = 0.5 + 0.2 * np.cos(0.1 * t + phase)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 0.01)
        img = disc[..., None] * (colour * (0.6 + 0.1 * yy[..., None]) + 0.35 * blob[..., None])
        frames.append(np.clip(img * 255, 0, 255).astype(np.uint8))
    return np.stack(frames)


def _window_batch(B: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    frames = [torch.from_numpy(_blob_frames(2 * T + 1, SIZE, seed + i)).permute(0, 3, 1, 2).float() / 255
              for i in range(B)]
    window = torch.stack(frames)
    return {"centre": window[:, T].clone(), "window": window}


def _cfg(method: str, target: str = "di", **extra: object) -> DRConfig:
    return DRConfig(method=method, target=target, T=T, S=1, size=SIZE, depth=2, width=8, extra=dict(extra))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 subjects × 1 clip × 40 frames of 32×32 moving blobs; splits train / val / test."""
    root = tmp_path_factory.mktemp("store")
    info = {}
    for i, split in enumerate(("train", "val", "test")):
        cid = f"s{i}_c0"
        w = ClipWriter(root, cid, size=SIZE)
        for t, fr in enumerate(_blob_frames(40, SIZE, seed=10 + i)):
            w.add(fr, np.full((68, 2), SIZE / 2, np.float32), True, t / 25.0)
        w.commit(None, {"source": "test", "fps": 25.0, "subject": f"s{i}", "split": split})
        info[cid] = {"subject": f"s{i}", "split": split, "n_frames": 40, "n_valid": 40}
    write_index(root, info, "test")
    return root


def test_make_target_is_scaled_dynamic_image_with_same_rankings() -> None:
    batch = _window_batch()
    w = batch["window"]
    for target, direction in (("di", "forward"), ("bdi", "backward")):
        tgt = make_target(w, target)
        di = dynamic_image(w, direction=direction)
        std = tgt.flatten(1).std(dim=1)
        torch.testing.assert_close(std, torch.ones(len(w)), rtol=1e-4, atol=1e-4)
        scale = di.flatten(1).std(dim=1).view(-1, 1, 1, 1)
        torch.testing.assert_close(tgt * scale, di, rtol=1e-4, atol=1e-6)  # scaled only, mean kept
        assert torch.equal(pair_deltas(tgt, w) > 0, pair_deltas(di, w) > 0)
    with pytest.raises(ConfigError):
        make_target(w, "sideways")


def test_side_mask_splits_eq2_pairs_before_and_after() -> None:
    a, b = eq2_pairs(T)
    before, after = side_mask(T, "di"), side_mask(T, "bdi")
    assert int(before.sum()) == int(after.sum()) == T * (T + 1) // 2
    assert torch.equal(before, ~after)
    assert bool(((b[before] < a[before]) & (a[before] <= T)).all())
    assert bool(((a[after] >= T) & (a[after] < b[after])).all())


def test_true_di_target_ranks_its_side_perfectly_on_smooth_motion() -> None:
    # a model that outputs the target exactly scores high on its own side: sanity of side_acc
    batch = _window_batch()

    class Oracle(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return make_target(batch["window"], "di")

    m = MSEMethod(Oracle(), _cfg("unet_mse"))
    assert set(m.validate(batch)) == {"untrained_side_acc", "acc", "mse"}  # no training step yet
    m.trained = True
    res = m.validate(batch)
    assert set(res) == {"side_acc", "acc", "mse"}
    assert float(res["mse"].max()) == 0.0
    assert float(res["side_acc"].mean()) >= float(res["acc"].mean())


def _train_steps(method: object, batch: dict[str, torch.Tensor], steps: int, lr: float = 1e-3) -> list[dict]:
    groups = method.optim_groups()  # type: ignore[attr-defined]
    opts = {g: torch.optim.Adam(ps, lr=lr, betas=(0.5, 0.9)) for g, ps in groups.items()}
    hist = []
    for _ in range(steps):
        row = {}
        for g, opt in opts.items():
            losses = method.losses(batch, g)  # type: ignore[attr-defined]
            assert all(torch.isfinite(v).all() for v in losses.values())
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            row[g] = float(losses["loss"].detach())
        hist.append(row)
    return hist


@pytest.mark.parametrize("method_name", ["unet_mse", "unet_p", "pix2pix"])
def test_losses_finite_and_decrease(method_name: str) -> None:
    torch.manual_seed(0)
    batch = _window_batch()
    cfg = _cfg(method_name)
    feats = VGG16Features(width=4).freeze() if method_name == "unet_p" else None
    method = build_method(cfg, build_net(cfg), feats)
    hist = _train_steps(method, batch, steps=12)
    key = "G" if method_name == "pix2pix" else "main"
    first, last = hist[0][key], hist[-1][key]
    assert last < first, f"{method_name}: loss {first:.4f} -> {last:.4f}"
    val = method.validate(batch)
    assert all(v.shape == (4,) for v in val.values())


def test_pix2pix_updates_d_then_g_and_runs_g_once() -> None:
    torch.manual_seed(0)
    batch = _window_batch()
    cfg = _cfg("pix2pix")
    method = build_method(cfg, build_net(cfg))
    assert isinstance(method, Pix2PixMethod)
    assert list(method.optim_groups()) == ["D", "G"]
    assert set(method.modules()) == {"net", "D"}
    calls = []
    method.net.register_forward_hook(lambda *_: calls.append(1))
    opts = {g: torch.optim.Adam(ps, lr=1e-3) for g, ps in method.optim_groups().items()}

    def snap(m: torch.nn.Module) -> list[torch.Tensor]:
        return [p.detach().clone() for p in m.parameters()]

    def changed(before: list[torch.Tensor], m: torch.nn.Module) -> bool:
        return any(not torch.equal(a, p) for a, p in zip(before, m.parameters(), strict=True))

    g0, d0 = snap(method.net), snap(method.D)
    losses = method.losses(batch, "D")
    assert set(losses) >= {"loss", "real", "fake"}
    opts["D"].zero_grad()
    losses["loss"].backward()
    assert all(p.grad is None for p in method.net.parameters())  # D's loss sees G(I).detach()
    opts["D"].step()
    assert changed(d0, method.D) and not changed(g0, method.net)

    g1, d1 = snap(method.net), snap(method.D)
    losses = method.losses(batch, "G")
    assert set(losses) >= {"loss", "gan", "l1"}
    total = float(losses["loss"].detach())
    assert total == pytest.approx(float(losses["gan"]) + 100.0 * float(losses["l1"]), rel=1e-5)
    opts["G"].zero_grad()
    losses["loss"].backward()
    opts["G"].step()
    assert changed(g1, method.net) and not changed(d1, method.D)
    assert len(calls) == 1  # G ran once for both groups of the step

    method.losses(batch, "D")  # next step: a fresh G(I) (the same batch object reappears)
    assert len(calls) == 2


def test_perceptual_method_uses_frozen_features() -> None:
    torch.manual_seed(0)
    batch = _window_batch()
    cfg = _cfg("unet_p", pixel_weight=0.5)
    feats = VGG16Features(width=4)
    method = build_method(cfg, build_net(cfg), feats)
    assert isinstance(method, PerceptualMethod)
    assert set(method.modules()) == {"net"}
    losses = method.losses(batch, "main")
    torch.testing.assert_close(losses["loss"], losses["perceptual"] + 0.5 * losses["mse"])
    losses["loss"].backward()
    assert all(p.grad is None for p in feats.parameters())


def test_config_errors(store: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        train_baseline(store, tmp_path / "r", _cfg("unet_mse", target="none"), LoopConfig())
    with pytest.raises(ConfigError):
        train_baseline(store, tmp_path / "r", _cfg("unet_l2"), LoopConfig())
    with pytest.raises(ConfigError):
        build_method(_cfg("pix2pix", gan_mode="wgan"), build_net(_cfg("pix2pix")))


def test_user_vgg_weights_are_recorded(tmp_path: Path) -> None:
    sd = {k: v for k, v in VGG16Features().state_dict().items() if int(k.split(".")[1]) <= 21}
    path = tmp_path / "vgg16.safetensors"
    save_file(sd, str(path))
    net, desc = build_feature_net(_cfg("unet_p", vgg_weights=str(path)), None, tmp_path / "run", LoopConfig())
    assert desc == f"vgg16:{path.resolve()}"
    assert net.width == 64 and not any(p.requires_grad for p in net.parameters())


@pytest.mark.parametrize(("method_name", "target"), [("unet_mse", "di"), ("unet_p", "bdi"), ("pix2pix", "di")])
def test_train_baseline_end_to_end_and_load_run(store: Path, tmp_path: Path, method_name: str, target: str) -> None:
    cfg = _cfg(method_name, target=target, feature_steps=4, feature_width=4)
    run = tmp_path / "run"
    loop = LoopConfig(epochs=1, steps_per_epoch=2, batch_size=4, device="cpu")
    seen: list[dict] = []
    hist = train_dr(store, run, cfg, loop, progress=seen.append)  # dispatches to train_baseline
    assert all({"epoch", "step", "total_steps"} <= set(p) for p in seen)
    assert any(p.get("stage") == "feature_net" for p in seen) == (method_name == "unet_p")
    assert [r["epoch"] for r in hist] == [0, 1]
    assert "val_side_acc" in hist[-1] and 0.0 <= hist[-1]["val_side_acc"] <= 1.0
    # the untrained net (epoch 0) reports its accuracy under another name and is never "best"
    assert "val_side_acc" not in hist[0] and "val_untrained_side_acc" in hist[0]
    with safe_open(str(run / "checkpoints" / "best.safetensors"), "pt") as f:
        assert f.metadata()["epoch"] == "1"
    saved = json.loads((run / "config.json").read_text())
    assert saved["method"] == method_name and saved["dr"]["target"] == target
    if method_name == "unet_p":
        assert saved["feature_net"] == "self-trained"
        assert (run / "checkpoints" / "feature_net.safetensors").is_file()
    net, loaded = load_run(run)
    assert loaded.method == method_name and loaded.target == target
    x = torch.rand(2, 3, SIZE, SIZE)
    ref = build_net(cfg)
    load_weights(run / "checkpoints" / "best.safetensors", {"net": ref})
    torch.testing.assert_close(net(x), ref.eval()(x))


def test_unet_p_resume_reuses_its_feature_net(store: Path, tmp_path: Path) -> None:
    cfg = _cfg("unet_p", feature_steps=3, feature_width=4)
    run = tmp_path / "run"
    train_baseline(store, run, cfg, LoopConfig(epochs=1, steps_per_epoch=1, batch_size=4, device="cpu"))
    file = run / "checkpoints" / "feature_net.safetensors"
    before = file.read_bytes()
    cfg2 = _cfg("unet_p", feature_steps=3, feature_width=4)
    hist = train_baseline(store, run, cfg2, LoopConfig(epochs=2, steps_per_epoch=1, batch_size=4, device="cpu",
                                                       resume=True, seed=1))
    assert [r["epoch"] for r in hist] == [0, 1, 2]
    assert file.read_bytes() == before  # not retrained (a new seed would give other weights)
