"""vgg_features: facedyn's own VGG-16-layout feature network learns to reconstruct, and freezes for unet_p."""

from __future__ import annotations

from pathlib import Path

import torch

from facedyn.config import from_dict
from facedyn.dr.baselines import load_feature_net
from facedyn.dr.features import FeatureNetMethod
from facedyn.method import DataSpec


def _windows(B: int = 4, T: int = 2, size: int = 16) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    base = torch.rand(B, 1, 3, size, size, generator=g)
    drift = torch.linspace(0, 0.2, 2 * T + 1).view(1, -1, 1, 1, 1)
    window = (base + drift * torch.rand(B, 1, 3, size, size, generator=g)).clamp(0, 1)
    return {"centre": window[:, T].clone(), "window": window}


def test_feature_net_learns_to_reconstruct() -> None:
    torch.manual_seed(0)
    m = FeatureNetMethod(from_dict(FeatureNetMethod.Config, {"width": 4, "T": 2}), DataSpec(size=16))
    batch = _windows()
    opt = torch.optim.Adam([p for pg in m.param_groups()["main"] for p in pg["params"]], lr=3e-3)
    with torch.no_grad():
        first = float(m.validation_step(batch)["mse"].mean())
    for _ in range(60):
        loss = m.losses(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = float(m.validation_step(batch)["mse"].mean())
    assert last < 0.8 * first
    assert m.net.encode(batch["centre"]).shape == (4, 8 * 4)


def test_feature_run_loads_frozen_with_gradients_to_the_input(tmp_path: Path, synth_store: Path) -> None:
    from facedyn.train import train

    train("vgg_features", synth_store, tmp_path / "f", {"epochs": 1, "steps_per_epoch": 1, "batch_size": 2,
                                                        "width": 4, "T": 2, "S": 1})
    net, desc = load_feature_net(str(tmp_path / "f"), ("relu1_2", "relu4_3"))
    assert desc.startswith("vgg_features:") and not any(p.requires_grad for p in net.parameters())
    x = torch.randn(1, 3, 16, 16, requires_grad=True)
    sum(f.sum() for f in net(x, normalize=False)).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach the input (perceptual loss)
