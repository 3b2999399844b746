"""The shared training loop on a toy method: checkpoints, selection, resume, determinism, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

from facedyn.errors import CheckpointError, ConfigError
from facedyn.train.loop import LoopConfig, fit, load_weights, resolve_device


class Lines(Dataset):
    """y = 3x - 1 with a little noise."""

    def __init__(self, n: int = 64, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 1, generator=g)
        self.y = 3 * self.x - 1 + 0.01 * torch.randn(n, 1, generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i], "y": self.y[i]}


class Toy:
    select_metric = "err"
    select_mode = "min"

    def __init__(self) -> None:
        self.net = nn.Linear(1, 1)

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"main": list(self.net.parameters())}

    def losses(self, batch: dict[str, Any], group: str) -> dict[str, torch.Tensor]:
        return {"loss": (self.net(batch["x"]) - batch["y"]).square().mean()}

    def validate(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"err": (self.net(batch["x"]) - batch["y"]).abs()[:, 0]}


def _fit(out: Path, epochs: int, resume: bool = False, seed: int = 0) -> tuple[Toy, list[dict[str, Any]]]:
    torch.manual_seed(seed)
    m = Toy()
    cfg = LoopConfig(out=str(out), epochs=epochs, batch_size=8, lr=0.05, betas=(0.9, 0.99), seed=seed,
                     resume=resume, device="cpu")
    return m, fit(m, Lines(), Lines(16, seed=1), cfg, {"method": "toy"})


def test_run_directory_and_selection(tmp_path: Path) -> None:
    _m, hist = _fit(tmp_path / "run", epochs=4)
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["method"] == "toy"
    assert (run / "checkpoints" / "last.safetensors").exists()
    assert (run / "metrics.csv").read_text().startswith("epoch")
    assert [r["epoch"] for r in hist] == [0, 1, 2, 3, 4]
    errs = [r["val_err"] for r in hist]
    assert errs[-1] < errs[0]  # it learns
    best = load_file(str(run / "checkpoints" / "best.safetensors"))
    assert set(best) == {"net.weight", "net.bias"}
    fresh = Toy()
    load_weights(run / "checkpoints" / "best.safetensors", fresh.modules())
    # the best checkpoint is the epoch with the lowest validation error
    with torch.no_grad():
        v = Lines(16, seed=1)
        e = (fresh.net(v.x) - v.y).abs().mean().item()
    assert e == pytest.approx(min(errs), rel=1e-4)


def test_resume_continues_to_the_same_result(tmp_path: Path) -> None:
    _, full = _fit(tmp_path / "a", epochs=4)
    _fit(tmp_path / "b", epochs=2)
    _, resumed = _fit(tmp_path / "b", epochs=4, resume=True)
    assert [r["epoch"] for r in resumed] == [0, 1, 2, 3, 4]
    assert resumed[-1]["val_err"] == pytest.approx(full[-1]["val_err"], rel=1e-5)


def test_deterministic_with_seed(tmp_path: Path) -> None:
    _, h1 = _fit(tmp_path / "a", epochs=2, seed=3)
    _, h2 = _fit(tmp_path / "b", epochs=2, seed=3)
    assert h1[-1]["val_err"] == h2[-1]["val_err"]


def test_bad_checkpoint_and_device(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_weights(tmp_path / "missing.safetensors", {"net": nn.Linear(1, 1)})
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        load_weights(bad, {"net": nn.Linear(1, 1)})
    _fit(tmp_path / "run", epochs=1)
    with pytest.raises(CheckpointError, match="do not match"):
        load_weights(tmp_path / "run" / "checkpoints" / "last.safetensors", {"net": nn.Linear(2, 1)})
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")
