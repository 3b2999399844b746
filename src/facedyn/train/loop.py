"""The one training loop: device, seeding, checkpoint/resume, validation-based selection, DDP, logging.

A *method* is a set of ``torch.nn.Module``s plus a loss function that takes a batch and returns
named losses. Methods with several optimisers (a GAN) list their parameter groups in the order
they are stepped; :meth:`Method.losses` is called once per group and step, so a group's loss is
computed with the other groups' current weights (the usual alternating GAN update).

Run directory written by :func:`fit`::

    RUN/config.json                 the method's and loop's configuration
    RUN/checkpoints/last.safetensors  weights after the latest epoch (resume point)
    RUN/checkpoints/best.safetensors  weights of the best validation epoch (selection metric)
    RUN/checkpoints/last.optim.pt   optimiser states, epoch and step (resume)
    RUN/metrics.csv                 one row per epoch: train losses, validation metrics, time
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import DataLoader, Dataset

from facedyn.atomic import atomic_path
from facedyn.data.store import atomic_write_json, ensure_writable_dir
from facedyn.errors import CheckpointError, ConfigError


class Method(Protocol):
    """What the loop trains."""

    #: name of the validation metric used to select the best checkpoint, and "max" or "min"
    select_metric: str
    select_mode: str

    def modules(self) -> dict[str, nn.Module]:
        """Named modules whose weights are checkpointed."""
        ...

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameter groups, one optimiser each, in the order they are stepped."""
        ...

    def losses(self, batch: dict[str, Any], group: str) -> dict[str, torch.Tensor]:
        """Named losses for ``group``; the ``"loss"`` entry is back-propagated."""
        ...

    def validate(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Per-sample validation metrics ``(B,)`` for a batch (averaged over the whole set)."""
        ...


class SingleNetMethod:
    """Base of methods with one network, registered as ``"net"``, and one optimiser."""

    def __init__(self, net: nn.Module) -> None:
        self.net = net
        self._modules: dict[str, nn.Module] = {"net": net}

    def modules(self) -> dict[str, nn.Module]:
        return self._modules

    def set_modules(self, modules: dict[str, nn.Module]) -> None:
        """Take the (DDP-wrapped) modules the loop made."""
        self._modules = modules
        self.net = modules["net"]

    def optim_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"main": list(self.net.parameters())}


@dataclass
class LoopConfig:
    """Settings of the loop itself (the method has its own)."""

    out: str = "runs/run"
    epochs: int = 10
    steps_per_epoch: int | None = None  # None: one pass over the training set
    batch_size: int = 16
    lr: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 0.0
    lr_schedule: str = "constant"  # constant | cosine
    grad_clip: float | None = None
    device: str = "auto"
    workers: int = 0
    seed: int = 0
    val_every: int = 1
    resume: bool = False
    max_val_batches: int | None = None
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; otherwise ``torch.device(name)`` (checked)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device; use auto, cpu or cuda[:N]") from None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every random choice flows from one seed)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _dist() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) under torchrun, else (0, 0, 1)."""
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")), ws


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def state_dict_of(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Flat ``{"module.param": tensor}`` of several modules (DDP wrappers unwrapped)."""
    out: dict[str, torch.Tensor] = {}
    for name, m in modules.items():
        m = getattr(m, "module", m)
        for k, v in m.state_dict().items():
            out[f"{name}.{k}"] = v.detach().cpu().contiguous()
    return out


def load_state_into(modules: dict[str, nn.Module], state: dict[str, torch.Tensor], path: Path) -> None:
    for name, m in modules.items():
        m = getattr(m, "module", m)
        prefix = f"{name}."
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            m.load_state_dict(sub, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise CheckpointError(f"{path}: weights do not match the model ({first}); was it trained with other "
                                  "settings?") from None


def save_weights(path: Path, modules: dict[str, nn.Module], metadata: dict[str, str] | None = None) -> None:
    """Save modules' weights as safetensors, atomically."""
    with atomic_path(path) as tmp:
        save_file(state_dict_of(modules), str(tmp), metadata=metadata or {})


def load_weights(path: str | Path, modules: dict[str, nn.Module]) -> None:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint; train first or give the right run directory")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__})") from None
    load_state_into(modules, state, path)


def _lr_factor(schedule: str, step: int, total: int) -> float:
    if schedule == "constant" or total <= 0:
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    raise ConfigError(f"unknown lr schedule {schedule!r}; use constant or cosine")


def _epoch_batches(loader: DataLoader, sampler: Any, g: torch.Generator, seed: int, epoch: int) -> Iterator[Any]:
    """Batches of one epoch, shuffled from (seed, epoch) alone, so a resumed run sees the same order."""
    k = 0
    while True:
        g.manual_seed(seed * 1_000_003 + epoch * 1009 + k)
        if sampler is not None and hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch * 1009 + k)
        yield from loader
        k += 1


def fit(
    method: Method,
    train_set: Dataset,
    val_set: Dataset | None,
    cfg: LoopConfig,
    config_to_save: dict[str, Any],
    progress: Callable[[dict[str, Any]], None] | None = None,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> list[dict[str, Any]]:
    """Train ``method`` and write the run directory ``cfg.out``; returns the metrics history.

    Every epoch: ``steps_per_epoch`` optimiser steps (or one pass), then validation metrics on
    ``val_set``; ``best.safetensors`` keeps the epoch with the best ``method.select_metric``
    (epoch 0 = the weights before training, so training can never select something worse than its
    starting point on validation data). With ``cfg.resume`` the run continues from ``last``.
    ``progress`` receives a dict (epoch, step, total_steps, losses, val metrics) as training goes.
    """
    rank, local_rank, world = _dist()
    distributed = world > 1
    device = resolve_device(cfg.device)
    if distributed:
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend)
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed + rank)
    out = Path(cfg.out)
    ckpt = out / "checkpoints"
    if rank == 0:
        ensure_writable_dir(ckpt)
        cfg_file = out / "config.json"
        if cfg.resume and cfg_file.exists():
            old = json.loads(cfg_file.read_text())
            if old.get("method") != config_to_save.get("method"):
                raise CheckpointError(f"{out}: holds a {old.get('method')!r} run; cannot resume it as "
                                      f"{config_to_save.get('method')!r}")
        atomic_write_json(cfg_file, {**config_to_save, "loop": asdict(cfg)})

    modules = method.modules()
    for m in modules.values():
        m.to(device)
    if distributed:
        for k, m in list(modules.items()):
            if any(p.requires_grad for p in m.parameters()):
                modules[k] = torch.nn.parallel.DistributedDataParallel(
                    m, device_ids=[local_rank] if device.type == "cuda" else None)
        if hasattr(method, "set_modules"):
            method.set_modules(modules)
    groups = method.optim_groups()
    opts = {g: torch.optim.Adam(ps, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
            for g, ps in groups.items()}

    g = torch.Generator()
    g.manual_seed(cfg.seed)
    sampler = None
    if distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(train_set, shuffle=True, seed=cfg.seed)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=cfg.workers, drop_last=len(train_set) >= cfg.batch_size, generator=g,
                        persistent_workers=cfg.workers > 0, collate_fn=collate_fn,
                        pin_memory=device.type == "cuda")
    if len(loader) == 0:
        raise ConfigError("the training set is empty: no full window fits the valid frames; "
                          "use smaller T or S, or more/longer clips")
    steps_per_epoch = cfg.steps_per_epoch or len(loader)
    total_steps = steps_per_epoch * cfg.epochs

    history: list[dict[str, Any]] = []
    start_epoch, step = 0, 0
    best = -math.inf if method.select_mode == "max" else math.inf
    if cfg.resume and (ckpt / "last.safetensors").exists():
        load_weights(ckpt / "last.safetensors", modules)
        st = torch.load(ckpt / "last.optim.pt", map_location=device, weights_only=False)
        for k, o in opts.items():
            o.load_state_dict(st["optim"][k])
        start_epoch, step, best = st["epoch"], st["step"], st["best"]
        torch.set_rng_state(st["torch_rng"])
        np.random.set_state(st["numpy_rng"])
        history = _read_metrics(out / "metrics.csv")

    def run_validation() -> dict[str, float]:
        if val_set is None or len(val_set) == 0:
            return {}
        for m in modules.values():
            m.eval()
        sums: dict[str, float] = {}
        n = 0
        vl = DataLoader(val_set, batch_size=cfg.batch_size, shuffle=False, num_workers=cfg.workers,
                        collate_fn=collate_fn)
        with torch.no_grad():
            for bi, batch in enumerate(vl):
                if cfg.max_val_batches is not None and bi >= cfg.max_val_batches:
                    break
                res = method.validate(to_device(batch, device))
                for k, v in res.items():
                    sums[k] = sums.get(k, 0.0) + float(v.double().sum())
                n += len(next(iter(res.values())))
        for m in modules.values():
            m.train()
        return {f"val_{k}": v / max(n, 1) for k, v in sums.items()}

    def is_better(v: float) -> bool:
        return v > best if method.select_mode == "max" else v < best

    def checkpoint(name: str, epoch: int) -> None:
        if rank != 0:
            return
        save_weights(ckpt / f"{name}.safetensors", modules, {"epoch": str(epoch), "step": str(step)})

    key = f"val_{method.select_metric}"
    if start_epoch == 0 and rank == 0:
        v0 = run_validation()
        row0 = {"epoch": 0, "step": 0, "time_s": 0.0, **v0}
        history = [row0]
        _write_metrics(out / "metrics.csv", history)
        if key in v0:
            best = v0[key]
        checkpoint("best", 0)
        if progress:
            progress({"epoch": 0, "step": 0, "total_steps": total_steps, **v0})

    for m in modules.values():
        m.train()
    for epoch in range(start_epoch + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        it = _epoch_batches(loader, sampler, g, cfg.seed, epoch)
        sums: dict[str, float] = {}
        for _ in range(steps_per_epoch):
            batch = to_device(next(it), device)
            f = _lr_factor(cfg.lr_schedule, step, total_steps)
            for gname, opt in opts.items():
                for pg in opt.param_groups:
                    pg["lr"] = cfg.lr * f
                losses = method.losses(batch, gname)
                opt.zero_grad(set_to_none=True)
                losses["loss"].backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(groups[gname], cfg.grad_clip)
                opt.step()
                for k, v in losses.items():
                    name = k if len(opts) == 1 else f"{gname}_{k}"
                    sums[name] = sums.get(name, 0.0) + float(v.detach())
            step += 1
            if progress:
                progress({"epoch": epoch, "step": step, "total_steps": total_steps,
                          **{k: v / max(1, step - (epoch - 1) * steps_per_epoch) for k, v in sums.items()}})
        row: dict[str, Any] = {"epoch": epoch, "step": step, "time_s": round(time.perf_counter() - t0, 2),
                               **{f"train_{k}": v / steps_per_epoch for k, v in sums.items()}}
        if rank == 0 and (epoch % cfg.val_every == 0 or epoch == cfg.epochs):
            row.update(run_validation())
            if key in row and is_better(row[key]):
                best = row[key]
                checkpoint("best", epoch)
        if rank == 0:
            history.append(row)
            _write_metrics(out / "metrics.csv", history)
            checkpoint("last", epoch)
            with atomic_path(ckpt / "last.optim.pt") as tmp:
                torch.save({"optim": {k: o.state_dict() for k, o in opts.items()}, "epoch": epoch, "step": step,
                            "best": best, "torch_rng": torch.get_rng_state(),
                            "numpy_rng": np.random.get_state()}, tmp)
        if progress:
            progress({"epoch": epoch, "step": step, "total_steps": total_steps, **row})
    if distributed:
        torch.distributed.barrier()
    return history


def _write_metrics(path: Path, rows: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow(r)


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path) as f:
        return [{k: _num(v) for k, v in r.items()} for r in csv.DictReader(f)]


def _num(v: str) -> Any:
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def count_parameters(modules: Iterable[nn.Module]) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())
