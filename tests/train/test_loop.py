"""The shared training loop on a toy method: checkpoints, selection rules, resume, whole-set metrics,
per-group learning rates, hooks, precision, errors."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

from facedyn import runs
from facedyn.config import TrainConfig, from_dict, option
from facedyn.device import resolve_device
from facedyn.errors import CheckpointError, ConfigError
from facedyn.method import DataSpec, Method, Network, Selection
from facedyn.precision import native_bf16
from facedyn.train.loop import Runtime, fit


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


@dataclass
class LineConfig(TrainConfig):
    epochs: int = option(4, "Epochs.")
    batch_size: int = option(8, "Batch size.")
    lr: float = option(0.05, "Learning rate.")
    betas: tuple[float, float] = option((0.9, 0.99), "Adam betas.")
    bias_lr_scale: float = option(1.0, "Learning-rate multiple of the bias.")
    bn: bool = option(False, "Put a BatchNorm (with buffers) in front of the line.")


class LineNet(Network):
    def __init__(self, bn: bool) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(1) if bn else nn.Identity()
        self.lin = nn.Linear(1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(self.bn(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)


class LineFit(Method):
    """Fits y = ax + b; validation: absolute errors (mean) and the whole-set R^2 (not a mean of batches)."""

    name = "line"
    Config = LineConfig
    selection = Selection("err", "min")

    def __init__(self, cfg: LineConfig, selection: Selection | None = None) -> None:
        super().__init__(cfg, DataSpec(size=1))
        if selection is not None:
            self.selection = selection
        self.calls: list[tuple[str, int]] = []

    def build(self) -> LineNet:
        return LineNet(self.cfg.bn)

    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        return {"main": [{"params": [self.net.lin.weight, *self.net.bn.parameters()]},
                         {"params": [self.net.lin.bias], "lr_scale": self.cfg.bias_lr_scale}]}

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        return {"loss": (self.net(batch["x"]) - batch["y"]).square().mean()}

    def validation_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"pred": self.net(batch["x"])[:, 0], "y": batch["y"][:, 0]}

    def validation_metrics(self, outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        p, y = outputs["pred"].double(), outputs["y"].double()
        r2 = 1 - ((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum()
        return {"err": float((p - y).abs().mean()), "r2": float(r2), "n": float(len(y))}

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        self.calls.append(("epoch", epoch))

    def on_step(self, step: int, total_steps: int) -> None:
        self.calls.append(("step", step))


def _fit(out: Path, resume: bool = False, seed: int = 0, **cfg: Any) -> tuple[LineFit, list[dict[str, Any]]]:
    torch.manual_seed(seed)
    m = LineFit(LineConfig(seed=seed, **cfg))
    return m, fit(m, Lines(), Lines(16, seed=1), out, Runtime(device="cpu", resume=resume))


def test_run_directory_selection_and_whole_set_metrics(tmp_path: Path) -> None:
    m, hist = _fit(tmp_path / "run")
    run = tmp_path / "run"
    assert (run / "checkpoints" / "last.safetensors").exists() and (run / "checkpoints" / "init.safetensors").exists()
    assert [r["epoch"] for r in hist] == [0, 1, 2, 3, 4]
    assert all(r["val_n"] == 16 for r in hist)  # every validation sample, in one whole-set computation
    errs = [r["val_err"] for r in hist]
    assert errs[-1] < errs[0] and hist[-1]["val_r2"] > hist[0]["val_r2"]
    best = load_file(str(run / "checkpoints" / "best.safetensors"))
    assert set(best) == {"net.lin.weight", "net.lin.bias"}
    fresh = LineFit(LineConfig())
    runs.load_weights(run / "checkpoints" / "best.safetensors", {"net": fresh.net})
    with torch.no_grad():
        v = Lines(16, seed=1)
        e = (fresh.net(v.x) - v.y).abs().mean().item()
    assert e == pytest.approx(min(errs), rel=1e-4)
    # hooks: each epoch announced before its steps, steps numbered globally
    assert m.calls[0] == ("epoch", 1) and ("epoch", 4) in m.calls
    assert [s for k, s in m.calls if k == "step"] == list(range(4 * 8))
    # the untrained weights are the init checkpoint
    init = load_file(str(run / "checkpoints" / "init.safetensors"))
    assert not torch.equal(init["net.lin.weight"], best["net.lin.weight"])


def test_selection_may_exclude_the_untrained_network(tmp_path: Path) -> None:
    # "max err" would always pick the untrained epoch 0 if it were allowed
    torch.manual_seed(0)
    m = LineFit(LineConfig(epochs=2), selection=Selection("err", "max", initial=False))
    fit(m, Lines(), Lines(16, seed=1), tmp_path / "r", Runtime(device="cpu"))
    meta_epoch = runs.load_weights(tmp_path / "r" / "checkpoints" / "best.safetensors", {"net": m.net})["epoch"]
    assert meta_epoch != "0"


def test_per_group_learning_rates(tmp_path: Path) -> None:
    frozen_bias, _ = _fit(tmp_path / "a", epochs=1, bias_lr_scale=0.0)
    init = load_file(str(tmp_path / "a" / "checkpoints" / "init.safetensors"))
    assert torch.equal(frozen_bias.net.lin.bias.detach(), init["net.lin.bias"])
    assert not torch.equal(frozen_bias.net.lin.weight.detach(), init["net.lin.weight"])


def test_resume_continues_to_the_same_result(tmp_path: Path) -> None:
    _, full = _fit(tmp_path / "a")
    _fit(tmp_path / "b", epochs=2)
    _, resumed = _fit(tmp_path / "b", resume=True)
    assert [r["epoch"] for r in resumed] == [0, 1, 2, 3, 4]
    assert resumed[-1]["val_err"] == pytest.approx(full[-1]["val_err"], rel=1e-5)


def test_deterministic_with_seed(tmp_path: Path) -> None:
    _, h1 = _fit(tmp_path / "a", epochs=2, seed=3)
    _, h2 = _fit(tmp_path / "b", epochs=2, seed=3)
    assert h1[-1]["val_err"] == h2[-1]["val_err"]


def test_bf16_on_cpu_trains_with_fp32_losses(tmp_path: Path) -> None:
    # bf16 is honoured on any CPU (with a warning where it is emulated); the losses stay fp32
    torch.manual_seed(0)  # the line's initial weights (err 0.51 -> 0.45 after the epoch; seeds 1-3 fall too)
    m = LineFit(LineConfig(epochs=1, precision="bf16"))
    with pytest.warns(UserWarning, match="slower than fp32") if not native_bf16() else contextlib.nullcontext():
        hist = fit(m, Lines(), Lines(16, seed=1), tmp_path / "r", Runtime(device="cpu", channels_last="off"))
    assert hist[-1]["val_err"] < hist[0]["val_err"]


class FakeClock:
    """The loop's clock, advanced by ``tick`` seconds per training step: budgets and checkpoint intervals are
    tested on a time that does not depend on how busy the machine is."""

    def __init__(self, tick: float = 0.005) -> None:
        self.now, self.tick = 1000.0, tick

    def perf_counter(self) -> float:
        return self.now


class ClockedLineFit(LineFit):
    def __init__(self, cfg: LineConfig, clock: FakeClock) -> None:
        super().__init__(cfg)
        self.clock = clock

    def on_step(self, step: int, total_steps: int) -> None:
        super().on_step(step, total_steps)
        self.clock.now += self.clock.tick


def _budget_fit(out: Path, monkeypatch: pytest.MonkeyPatch, budget: str, resume: bool = False,
                stop_after: int | None = None, **cfg: Any) -> tuple[LineFit, list[dict[str, Any]], FakeClock]:
    import facedyn.train.loop as loop

    clock = FakeClock()
    monkeypatch.setattr(loop, "time", clock)
    torch.manual_seed(0)
    m = ClockedLineFit(LineConfig(time_budget=budget, steps_per_epoch=400, lr_schedule="cosine", precision="fp32",
                                  checkpoint_every=0.01, **cfg), clock)

    def progress(p: dict[str, Any]) -> None:
        if stop_after is not None and "val_err" in p and p["epoch"] >= stop_after:
            raise KeyboardInterrupt  # the session is stopped right after a checkpoint

    hist = fit(m, Lines(), Lines(16, seed=1), out, Runtime(device="cpu", resume=resume, channels_last="off"),
               progress=progress)
    return m, hist, clock


def test_time_budget_stops_in_time_and_ends_its_schedule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, hist, clock = _budget_fit(tmp_path / "r", monkeypatch, "3s")
    last = hist[-1]
    # the budget ends training at the first step past it (the clock moves only with steps here)
    assert 3.0 <= last["elapsed_s"] <= 3.0 + clock.tick + 0.05
    assert last["step"] == pytest.approx(3.0 / clock.tick, abs=2)
    # the schedule was stretched over the steps made: it ended where the budget did
    assert last["total_steps"] == last["step"] and last["step"] > 400
    assert last["lr_factor"] < 0.01
    # validation and a checkpoint at least every checkpoint_every minutes (0.6 s here)
    assert len(hist) >= 5 and all(r["time_s"] <= 0.6 + clock.tick + 0.01 for r in hist[1:])
    assert (tmp_path / "r" / "checkpoints" / "last.safetensors").is_file()
    # at a steady rate the total projected early is the final count
    mid = hist[len(hist) // 2]
    assert mid["total_steps"] == pytest.approx(last["step"], abs=2)


def test_time_budget_resumes_the_same_schedule_and_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(KeyboardInterrupt):
        _budget_fit(tmp_path / "r", monkeypatch, "3s", stop_after=2)
    stopped = runs.read_metrics(tmp_path / "r")
    assert stopped[-1]["epoch"] == 2 and stopped[-1]["elapsed_s"] == pytest.approx(1.2, abs=0.05)
    _, hist, clock = _budget_fit(tmp_path / "r", monkeypatch, "3s", resume=True)
    # continues from the checkpoint: epochs and steps go on, the budget counts the earlier session's time
    assert [r["epoch"] for r in hist[:3]] == [0, 1, 2] and hist[3]["step"] > stopped[-1]["step"]
    assert 3.0 <= hist[-1]["elapsed_s"] <= 3.0 + clock.tick + 0.05
    assert hist[-1]["step"] == pytest.approx(3.0 / clock.tick, abs=2)  # this session made only the rest
    assert hist[-1]["total_steps"] == hist[-1]["step"] and hist[-1]["lr_factor"] < 0.01
    # resuming a run whose budget is spent does nothing more
    _, again, _ = _budget_fit(tmp_path / "r", monkeypatch, "3s", resume=True)
    assert again[-1]["step"] == hist[-1]["step"]


def test_time_budget_is_checked() -> None:
    from facedyn.config import parse_duration

    assert parse_duration("90m") == 5400 and parse_duration("2h30m") == 9000 and parse_duration("45s") == 45
    assert parse_duration("1.5h") == 5400 and parse_duration("10") == 600
    for bad in ("abc", "3x", "m5", "0s", "-1m"):
        with pytest.raises(ConfigError, match="time-budget"):
            from_dict(LineConfig, {"time_budget": bad})


def test_bad_checkpoint_and_device(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        runs.load_weights(tmp_path / "missing.safetensors", {"net": nn.Linear(1, 1)})
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError):
        runs.load_weights(bad, {"net": nn.Linear(1, 1)})
    _fit(tmp_path / "run", epochs=1)
    with pytest.raises(CheckpointError, match="do not match"):
        runs.load_weights(tmp_path / "run" / "checkpoints" / "last.safetensors", {"net": LineNet(bn=True)})
    assert resolve_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            resolve_device("cuda")


def test_kept_steps_for_learning_curves(tmp_path: Path) -> None:
    from facedyn.train.loop import keep_milestones

    assert keep_milestones("log", 5000) == {100, 300, 1000, 3000}
    assert keep_milestones("", 10) == set() and keep_milestones("5, 7", 10) == {5, 7}
    with pytest.raises(ConfigError, match="keep-steps"):
        keep_milestones("often", 10)
    _fit(tmp_path / "r", keep_steps="10,20")
    assert runs.kept_steps(tmp_path / "r") == [10, 20]
    # the weights of step 20 are those the loop had then, loadable by name
    meta = runs.load_weights(runs.checkpoint_path(tmp_path / "r", "step20"), {"net": LineNet(False)})
    assert meta["step"] == "20"
    with pytest.raises(CheckpointError, match="step<N>"):
        runs.checkpoint_path(tmp_path / "r", "step-x")
    with pytest.raises(CheckpointError, match="no step30"):
        runs.checkpoint_path(tmp_path / "r", "step30")


def test_init_from_starts_from_another_runs_weights(tmp_path: Path) -> None:
    _fit(tmp_path / "src", epochs=2)
    src_best = load_file(str(tmp_path / "src" / "checkpoints" / "best.safetensors"))
    (tmp_path / "src" / runs.CONFIG_FILE).write_text("{}")  # a run directory (its record)
    best = tmp_path / "src" / "checkpoints" / "best.safetensors"
    assert runs.init_weights_path(str(tmp_path / "src")) == best  # a run directory: its best checkpoint
    assert runs.init_weights_path(str(best)) == best  # a weights file
    (tmp_path / "s3c").symlink_to(tmp_path / "src")
    assert runs.init_weights_path(str(tmp_path / "s{fold}c"), 3) == tmp_path / "s3c" / "checkpoints" / best.name
    # the loop starts from those weights: init.safetensors is the source's best, and training goes on from there
    _, hist = _fit(tmp_path / "tuned", epochs=1, init_from=str(tmp_path / "s{fold}c"), fold=3)
    init = load_file(str(tmp_path / "tuned" / "checkpoints" / "init.safetensors"))
    assert all(torch.equal(init[k], src_best[k]) for k in src_best)
    _, scratch = _fit(tmp_path / "scratch", epochs=1)
    assert hist[0]["val_err"] < scratch[0]["val_err"]  # step 0 already has the source's fit
    # a resumed run keeps its own weights (the source is read once, at the start)
    _, again = _fit(tmp_path / "tuned", epochs=2, init_from=str(tmp_path / "missing"), resume=True)
    assert [r["epoch"] for r in again] == [0, 1, 2]
    with pytest.raises(ConfigError, match=r"\{fold\} needs --fold"):
        runs.init_weights_path("runs/fold{fold}")
    with pytest.raises(ConfigError, match="only field"):
        runs.init_weights_path("runs/{seed}", 1)
    with pytest.raises(CheckpointError, match="no such file"):
        runs.init_weights_path(str(tmp_path / "none.safetensors"))
    with pytest.raises(CheckpointError, match="no such run directory"):
        _fit(tmp_path / "bad", epochs=1, init_from=str(tmp_path / "missing"))
    other = tmp_path / "other.safetensors"
    runs.save_weights(other, {"disc": nn.Linear(2, 2)})
    with pytest.raises(CheckpointError, match="holds none of the modules"):
        _fit(tmp_path / "bad2", epochs=1, init_from=str(other))
    with pytest.raises(CheckpointError, match="do not match"):
        runs.load_weights(tmp_path / "src" / "checkpoints" / "best.safetensors", {"net": LineNet(bn=True)},
                          missing_ok=True)


class _Killed(BaseException):
    """Stands for a kill between two of an epoch's checkpoint files (tests/test_faults.py kills for real)."""


def test_stopped_between_checkpoint_files_resumes_from_the_state(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An epoch writes metrics.csv, last, last.state.pt, best (the state is the commit point): stopped after the
    weights but before the state, the epoch's metrics row is dropped and the epoch redone from the state's weights;
    stopped after the state but before best, best is rewritten from the state. Either way: the uninterrupted run."""
    _, full = _fit(tmp_path / "full")
    errs = [r["val_err"] for r in full]
    assert errs == sorted(errs, reverse=True)  # every epoch is the best so far
    run = tmp_path / "run"
    save_state, save_weights = runs.save_train_state, runs.save_weights

    def state_unless_epoch2(run_dir: Path, state: dict[str, Any]) -> None:
        if state["epoch"] == 2:
            raise _Killed
        save_state(run_dir, state)

    def weights_unless_best2(path: Path, modules: Any, metadata: dict[str, str] | None = None) -> None:
        if Path(path).stem == "best" and (metadata or {}).get("epoch") == "2":
            raise _Killed
        save_weights(path, modules, metadata)

    with monkeypatch.context() as mp, pytest.raises(_Killed):
        mp.setattr(runs, "save_train_state", state_unless_epoch2)
        _fit(run)
    assert runs.checkpoint_step(run, "last") == 16 and [r["epoch"] for r in runs.read_metrics(run)] == [0, 1, 2]
    with monkeypatch.context() as mp, pytest.raises(_Killed):
        mp.setattr(runs, "save_weights", weights_unless_best2)
        _fit(run, resume=True)
    assert runs.checkpoint_step(run, "best") == 8  # epoch 1's: the state (epoch 2) says epoch 2 was best
    _fit(run, resume=True, epochs=2)  # nothing left to train: the resume alone puts best right
    assert runs.checkpoint_step(run, "best") == 16
    _, resumed = _fit(run, resume=True)
    assert [r["epoch"] for r in resumed] == [r["epoch"] for r in runs.read_metrics(run)] == [0, 1, 2, 3, 4]
    assert [r["val_err"] for r in resumed] == pytest.approx([r["val_err"] for r in full], rel=1e-5)
    for name in ("best", "last"):
        a, b = (load_file(str(r / "checkpoints" / f"{name}.safetensors")) for r in (run, tmp_path / "full"))
        assert all(torch.allclose(a[k], b[k], rtol=1e-5) for k in b), name
