"""DI-target baselines (dr-paper.txt §4.3): targets, losses, Pix2Pix update order, end-to-end runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import facedyn
from facedyn import runs
from facedyn.config import from_dict
from facedyn.data.store import ClipWriter, write_index
from facedyn.dr.baselines import MSEMethod, PerceptualMethod, Pix2PixMethod, load_feature_net
from facedyn.dr.dynamic_image import dynamic_image, make_target
from facedyn.dr.rank_loss import before_centre, eq2_pairs, pair_deltas
from facedyn.errors import ConfigError
from facedyn.method import DataSpec
from facedyn.nn.vgg import VGG16Features
from facedyn.train import train

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


def _method(cls: type, target: str = "di", **settings: object) -> object:
    cfg = from_dict(cls.Config, {"target": target, "T": T, "S": 1, "depth": 2, "width": 8, **settings})
    return cls(cfg, DataSpec(size=SIZE))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 subjects × 1 clip × 40 frames of 32×32 moving blobs; splits train / val / test."""
    root = tmp_path_factory.mktemp("store")
    info = {}
    for i in range(3):
        cid = f"s{i}_c0"
        w = ClipWriter(root, cid, size=SIZE)
        for t, fr in enumerate(_blob_frames(40, SIZE, seed=10 + i)):
            w.add(fr, np.full((68, 2), SIZE / 2, np.float32), True, t / 25.0)
        w.commit(None, {"source": "test", "fps": 25.0, "subject": f"s{i}", "mask": True})
        info[cid] = {"subject": f"s{i}", "n_frames": 40, "n_valid": 40, "fps": 25.0}
    write_index(root, info, "test", splits={"train": ["s0"], "val": ["s1"], "test": ["s2"]})
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


def test_before_centre_splits_eq2_pairs_before_and_after() -> None:
    a, b = eq2_pairs(T)
    before = before_centre(T)
    assert int(before.sum()) == int((~before).sum()) == T * (T + 1) // 2
    assert bool(((b[before] < a[before]) & (a[before] <= T)).all())
    assert bool(((a[~before] >= T) & (a[~before] < b[~before])).all())


def test_true_di_target_ranks_its_side_perfectly_on_smooth_motion() -> None:
    # a model that outputs the target exactly scores high on its own side: sanity of side_acc
    batch = _window_batch()
    m = _method(MSEMethod)
    m.net = lambda x: make_target(batch["window"], "di")  # an oracle generator
    res = m.validation_step(batch)
    assert set(res) == {"side_acc", "acc", "mse"}
    assert float(res["mse"].max()) == 0.0
    assert float(res["side_acc"].mean()) >= float(res["acc"].mean())
    assert MSEMethod.selection.initial is False  # a baseline is a trained network: epoch 0 never selected


def _train_steps(method: object, batch: dict[str, torch.Tensor], steps: int, lr: float = 1e-3) -> list[dict]:
    groups = method.param_groups()  # type: ignore[attr-defined]
    opts = {g: torch.optim.Adam(pgs, lr=lr, betas=(0.5, 0.9)) for g, pgs in groups.items()}
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
    cls = {"unet_mse": MSEMethod, "unet_p": PerceptualMethod, "pix2pix": Pix2PixMethod}[method_name]
    method = _method(cls)
    if method_name == "unet_p":
        method.features = VGG16Features(width=4).freeze()
    hist = _train_steps(method, batch, steps=12)
    key = "G" if method_name == "pix2pix" else "main"
    first, last = hist[0][key], hist[-1][key]
    assert last < first, f"{method_name}: loss {first:.4f} -> {last:.4f}"
    val = method.validation_step(batch)
    assert all(v.shape == (4,) for v in val.values())


def test_pix2pix_updates_d_then_g_and_runs_g_once() -> None:
    torch.manual_seed(0)
    batch = _window_batch()
    method = _method(Pix2PixMethod)
    assert list(method.param_groups()) == ["D", "G"]
    assert set(method.train_modules()) == {"net", "D"}
    calls = []
    method.net.register_forward_hook(lambda *_: calls.append(1))
    opts = {g: torch.optim.Adam(pgs, lr=1e-3) for g, pgs in method.param_groups().items()}

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
    method = _method(PerceptualMethod, pixel_weight=0.5)
    feats = VGG16Features(width=4)
    method.features = feats.freeze()
    assert set(method.train_modules()) == {"net", "features"}
    assert list(method.param_groups()) == ["main"] and len(method.param_groups()["main"][0]["params"]) == len(
        list(method.net.parameters()))
    losses = method.losses(batch, "main")
    torch.testing.assert_close(losses["loss"], losses["perceptual"] + 0.5 * losses["mse"])
    losses["loss"].backward()
    assert all(p.grad is None for p in feats.parameters())


def test_config_errors(store: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="target"):
        train("unet_mse", store, tmp_path / "r", {"target": "none"})
    with pytest.raises(ConfigError, match="unknown method"):
        train("unet_l2", store, tmp_path / "r")
    with pytest.raises(ConfigError, match="gan-mode"):
        train("pix2pix", store, tmp_path / "r", {"gan_mode": "wgan"})
    with pytest.raises(ConfigError, match="--T must be at least 1"):
        train("unet_mse", store, tmp_path / "r", {"T": 0})


def test_user_vgg_weights_are_recorded(tmp_path: Path) -> None:
    sd = {k: v for k, v in VGG16Features().state_dict().items() if int(k.split(".")[1]) <= 21}
    path = tmp_path / "vgg16.safetensors"
    save_file(sd, str(path))
    net, desc = load_feature_net(str(path), ("relu1_2", "relu2_2", "relu3_3", "relu4_3"))
    assert desc == f"vgg16:{path.resolve()}"
    assert net.width == 64 and not any(p.requires_grad for p in net.parameters())


@pytest.mark.parametrize(("method_name", "target"), [("unet_mse", "di"), ("unet_p", "bdi"), ("pix2pix", "di")])
def test_train_baseline_end_to_end_and_load(store: Path, tmp_path: Path, method_name: str, target: str) -> None:
    small = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "T": T, "S": 1}
    settings = {**small, "target": target, "depth": 2, "width": 8}
    if method_name == "unet_p":
        train("vgg_features", store, tmp_path / "feats", {**small, "width": 4})
        settings["features"] = str(tmp_path / "feats")
    run = tmp_path / "run"
    seen: list[dict] = []
    res = train(method_name, store, run, settings, progress=seen.append)
    assert all({"epoch", "step", "total_steps"} <= set(p) for p in seen)
    hist = res.history
    assert [r["epoch"] for r in hist] == [0, 1]
    assert 0.0 <= hist[-1]["val_side_acc"] <= 1.0
    # the untrained net (epoch 0) is validated but never "best"
    with safe_open(str(run / "checkpoints" / "best.safetensors"), "pt") as f:
        assert f.metadata()["epoch"] == "1"
    rec = runs.read_record(run)
    assert rec.method == method_name and rec.config["target"] == target
    assert rec.extra["target_normalisation"].startswith("dynamic image divided")
    model = facedyn.load(run, device="cpu")
    assert model.label == f"{method_name}-{target}"
    assert model.net.pair_side == ("before" if target == "di" else "after")
    x = torch.rand(2, 3, SIZE, SIZE)
    ref = _method(type(model.method), target=target)
    runs.load_weights(run / "checkpoints" / "best.safetensors", {"net": ref.net})
    torch.testing.assert_close(model.dr(x), ref.net.eval()(x))
