"""The one training loop: device, seeding, precision, checkpoint/resume, whole-set validation, DDP.

It trains any :class:`facedyn.method.Method`: every step, for each optimiser of
:meth:`~facedyn.method.Method.param_groups` in order, it calls ``method.losses(batch, group)`` and
back-propagates ``"loss"`` (so a GAN's generator step sees the discriminator just updated). After each
epoch it runs :meth:`~facedyn.method.Method.validation_step` over the whole validation set,
concatenates the per-sample values and hands them to
:meth:`~facedyn.method.Method.validation_metrics` (whole-set metrics: ICC, CCC, F1, AUC are not
averages of per-batch numbers); ``best.safetensors`` follows the method's
:class:`~facedyn.method.Selection` (the epoch-0 validation of the untrained weights counts only where
``Selection.initial``). Hooks: ``method.on_epoch_start(epoch, epochs)`` and
``method.on_step(step, total_steps)``.

Under ``torchrun`` (``WORLD_SIZE`` > 1) trainable modules are wrapped in DistributedDataParallel (gloo
on CPU, nccl on CUDA), batches come from a DistributedSampler, and rank 0 alone validates (on the
plain modules) and writes. Everything the loop writes goes through :mod:`facedyn.runs`.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from facedyn import runs
from facedyn.config import parse_duration
from facedyn.device import resolve_device
from facedyn.errors import CheckpointError, ConfigError
from facedyn.method import Method, move_to
from facedyn.precision import SpeedChoice, autocast, choose


@dataclass
class Runtime:
    """How to run (not what to learn; not part of the run's config): device, loader workers, threads, resume,
    ``channels_last`` (NHWC networks and 4-D batches: ``"auto"`` (measured, see :mod:`facedyn.precision`),
    ``"on"``/``True`` or ``"off"``/``False``) and ``speed``, a :class:`~facedyn.precision.SpeedChoice` made
    before the loop (the runner makes it, so the run record holds it; None: the loop makes it)."""

    device: str = "auto"
    workers: int = 0
    threads: int | None = None
    resume: bool = False
    channels_last: bool | str = "auto"
    speed: SpeedChoice | None = None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (every random choice flows from one seed)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def dist_info() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) under torchrun, else (0, 0, 1)."""
    return (int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0")),
            int(os.environ.get("WORLD_SIZE", "1")))


def lr_factor(schedule: str, step: int, total: int) -> float:
    """Multiplier of the base learning rate at ``step`` of ``total``."""
    if schedule == "constant" or total <= 0:
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    raise ConfigError(f"unknown lr schedule {schedule!r}; use constant or cosine")


class _Shuffle(Sampler[int]):
    """A permutation of the indices of ``data`` drawn from :attr:`seed` alone (set before each pass over the data),
    so the order of the batches does not depend on the loader's workers (a DataLoader that shuffles itself draws from
    its generator once more for each new iterator, and persistent workers reuse one).

    The draw is the one such a DataLoader makes (one int64 for its workers' base seed, then ``randperm``), so a run
    sees the batches that runs of earlier versions saw with ``--workers 0``.
    """

    def __init__(self, data: Dataset) -> None:
        self.data, self.seed = data, 0

    def __len__(self) -> int:
        return len(self.data)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed)
        torch.empty((), dtype=torch.int64).random_(generator=g)
        return iter(torch.randperm(len(self), generator=g).tolist())


def _epoch_batches(loader: DataLoader, sampler: Any, g: torch.Generator, seed: int, epoch: int) -> Iterator[Any]:
    """Batches of one epoch, shuffled from (seed, epoch) alone, so a resumed run sees the same order."""
    k = 0
    while True:
        g.manual_seed(seed * 1_000_003 + epoch * 1009 + k)
        if isinstance(sampler, _Shuffle):
            sampler.seed = seed * 1_000_003 + epoch * 1009 + k
        elif sampler is not None:
            sampler.set_epoch(epoch * 1009 + k)
        yield from loader
        k += 1


def first_batch(dataset: Dataset, batch_size: int) -> Any:
    """The first ``batch_size`` samples of ``dataset`` collated (no shuffling, no random draw)."""
    return next(iter(DataLoader(dataset, batch_size=min(batch_size, len(dataset)), shuffle=False)))  # type: ignore[arg-type]


def choose_speed(method: Method, train_set: Dataset, device: torch.device, runtime: Runtime) -> SpeedChoice:
    """The precision and memory format for training ``method`` (``method.cfg.precision``, ``runtime.channels_last``),
    measured on its first training batch where ``auto`` asks for it (see :mod:`facedyn.precision`)."""
    if runtime.threads:
        torch.set_num_threads(runtime.threads)  # measured at the thread count the run will use
    for m in method.train_modules().values():
        m.to(device)
    return choose(method, first_batch(train_set, method.cfg.batch_size), device, method.cfg.precision,
                  runtime.channels_last)


def keep_milestones(spec: str, up_to: int) -> set[int]:
    """Steps whose weights ``--keep-steps`` keeps: ``log`` → 100, 300, 1 000, 3 000, ... (1 and 3 times the powers
    of ten) up to ``up_to``; ``"500,2000"`` → those steps; ``""`` → none."""
    spec = (spec or "").strip().lower()
    if not spec:
        return set()
    if spec == "log":
        out, p = set(), 100
        while p <= up_to:
            out |= {p, 3 * p}
            p *= 10
        return {s for s in out if s <= up_to}
    try:
        return {int(v) for v in spec.split(",") if v.strip()}
    except ValueError:
        raise ConfigError(f"--keep-steps must be log or comma-separated steps, got {spec!r}") from None


def project_total(step: int, rate: float | None, remaining_s: float, fallback: int) -> int:
    """Steps a time-budgeted run will have made when its budget ends: ``step + rate · remaining`` (at least
    ``step + 1`` while time remains, ``step`` when none does); ``fallback`` before any rate is known."""
    if remaining_s <= 0:
        return max(step, 1)
    if rate is None or rate <= 0:
        return max(fallback, step + 1)
    return max(step + 1, step + round(rate * remaining_s))


def fit(
    method: Method,
    train_set: Dataset,
    val_set: Dataset | None,
    run_dir: str | Path,
    runtime: Runtime | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Train ``method`` (settings from ``method.cfg``) into ``run_dir``; returns the metrics history.

    The run record (``config.json``) is written by the caller (:func:`facedyn.train.runner.train`);
    this writes the checkpoints, ``metrics.csv`` and the resume state. ``progress`` receives a dict
    (``epoch``, ``step``, ``total_steps``, running train losses, validation metrics) as training goes.

    Without ``cfg.time_budget`` the run makes ``epochs`` epochs of ``steps_per_epoch`` steps. With it, the run
    trains until the budget (wall time: training, validation and checkpoints, summed over resumed sessions) is
    spent: an "epoch" is then one interval between validations (``steps_per_epoch`` steps, or fewer where
    ``checkpoint_every`` minutes pass first), and the schedule's total is the projection ``step + rate ·
    remaining time``, re-projected every step from the rate measured so far, so the schedule ends when the
    budget does. Every metrics row records ``total_steps`` (the projection then) and ``lr_factor``.
    """
    rt = runtime or Runtime()
    cfg = method.cfg
    rank, local_rank, world = dist_info()
    distributed = world > 1
    device = resolve_device(rt.device)
    if distributed:
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
    if rt.threads:
        torch.set_num_threads(rt.threads)
    budget = parse_duration(cfg.time_budget) if cfg.time_budget else None
    speed = rt.speed or choose_speed(method, train_set, device, rt)
    amp = autocast(speed.precision, device)
    run_dir = Path(run_dir)
    plain = dict(method.train_modules())
    nhwc = speed.channels_last
    for m in plain.values():
        m.to(device)
        if nhwc:
            m.to(memory_format=torch.channels_last)
    state = runs.load_train_state(run_dir, device) if rt.resume else None
    if state is None and cfg.init_from:  # every rank (DDP would broadcast rank 0's anyway)
        runs.load_weights(runs.init_weights_path(cfg.init_from, cfg.fold), plain, missing_ok=True)
    if rank == 0:
        runs.ensure_run_dir(run_dir)
        if state is None:
            runs.save_weights(run_dir / runs.CHECKPOINTS / "init.safetensors", plain, {"epoch": "0", "step": "0"})
    seed_everything(cfg.seed + rank)

    groups = method.param_groups()  # on the plain modules (DDP wrappers hide their attributes)
    wrapped = dict(plain)
    if distributed:
        for k, m in plain.items():
            if any(p.requires_grad for p in m.parameters()):
                wrapped[k] = nn.parallel.DistributedDataParallel(
                    m, device_ids=[local_rank] if device.type == "cuda" else None)
        method.use_modules(wrapped)
    opts = {name: torch.optim.Adam([{k: v for k, v in pg.items() if k != "lr_scale"} | {"lr": cfg.lr}
                                    for pg in pgs], lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
            for name, pgs in groups.items()}
    scales = {name: [float(pg.get("lr_scale", 1.0)) for pg in pgs] for name, pgs in groups.items()}

    g = torch.Generator()
    g.manual_seed(cfg.seed)
    sampler: Sampler[int] = _Shuffle(train_set)
    if distributed:
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(train_set, shuffle=True, seed=cfg.seed)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler,
                        num_workers=rt.workers, drop_last=len(train_set) >= cfg.batch_size, generator=g,
                        persistent_workers=rt.workers > 0, pin_memory=device.type == "cuda")
    if len(loader) == 0:
        raise ConfigError("the training set is empty: no sample fits the valid frames; use more or longer clips, "
                          "or settings that need fewer frames")
    steps_per_epoch = cfg.steps_per_epoch or len(loader)
    total_steps = steps_per_epoch * cfg.epochs
    sel = method.selection
    keep = keep_milestones(getattr(cfg, "keep_steps", ""), 10**9)

    history: list[dict[str, Any]] = []
    start_epoch, step, best, best_step, spent = 0, 0, None, None, 0.0
    if state is not None:
        if "weights" in state:  # the weights the state goes with (last.safetensors may be an epoch ahead)
            runs.restore_weights(state["weights"], plain, run_dir / runs.CHECKPOINTS / "last.state.pt")
        else:  # written before states held the weights
            runs.load_weights(run_dir / runs.CHECKPOINTS / "last.safetensors", plain)
        for k, o in opts.items():
            o.load_state_dict(state["optim"][k])
        start_epoch, step, best, best_step = state["epoch"], state["step"], state["best"], state.get("best_step")
        spent = float(state.get("elapsed_s", 0.0))
        total_steps = int(state.get("total_steps", total_steps)) if budget else total_steps
        torch.set_rng_state(state["torch_rng"])
        np.random.set_state(state["numpy_rng"])
        # rows of an epoch whose state was never written (killed part-way through its checkpoint) are redone
        history = [r for r in runs.read_metrics(run_dir) if int(r.get("epoch", 0)) <= start_epoch]
    session_t0, session_step0 = time.perf_counter(), step

    def elapsed() -> float:
        """Seconds of this run so far (earlier sessions included)."""
        return spent + time.perf_counter() - session_t0

    def reproject() -> int:
        assert budget is not None
        t = time.perf_counter() - session_t0
        rate = (step - session_step0) / t if step > session_step0 and t > 0 else None
        return project_total(step, rate, budget - elapsed(), fallback=total_steps or steps_per_epoch)

    def epochs_planned() -> int:
        return max(1, math.ceil(total_steps / steps_per_epoch)) if budget else cfg.epochs

    def run_validation() -> dict[str, float]:
        if val_set is None or len(val_set) == 0:
            return {}
        method.use_modules(plain)
        for m in plain.values():
            m.eval()
        # validation stays fp32: metrics are not computed from bf16 outputs
        metrics = method.evaluate(val_set, cfg.batch_size, device, rt.workers, cfg.max_val_batches)
        for m in plain.values():
            m.train()
        method.use_modules(wrapped)
        return {f"val_{k}": v for k, v in metrics.items()}

    def save(name: str, epoch: int) -> None:
        if rank == 0:
            runs.save_weights(run_dir / runs.CHECKPOINTS / f"{name}.safetensors", plain,
                              {"epoch": str(epoch), "step": str(step)})

    key = f"val_{sel.metric}"
    if state is not None and rank == 0 and "weights" in state:
        # killed after the state was written but before last/best followed: write them from it
        for name in ("last", *(["best"] if state.get("best_step") == step else [])):
            try:
                behind = (not (run_dir / runs.CHECKPOINTS / f"{name}.safetensors").is_file()
                          or runs.checkpoint_step(run_dir, name) != step)
            except CheckpointError:
                behind = True
            if behind:
                save(name, start_epoch)
    if start_epoch == 0 and rank == 0:
        v0 = run_validation()
        history = [{"epoch": 0, "step": 0, "time_s": 0.0, **v0}]
        runs.write_metrics(run_dir, history)
        if sel.initial and key in v0:
            best, best_step = v0[key], 0
            save("best", 0)
        if progress:
            progress({"epoch": 0, "step": 0, "total_steps": total_steps, **v0})

    for m in plain.values():
        m.train()
    if budget:
        total_steps = reproject()
    epoch = start_epoch
    while (elapsed() < budget) if budget else (epoch < cfg.epochs):
        epoch += 1
        method.on_epoch_start(epoch, epochs_planned())
        t0 = time.perf_counter()
        it = _epoch_batches(loader, sampler, g, cfg.seed, epoch)
        sums: dict[str, float] = {}
        n = 0
        f = 1.0
        for i in range(steps_per_epoch):
            if budget and i > 0 and (elapsed() >= budget or time.perf_counter() - t0 >= 60 * cfg.checkpoint_every):
                break
            method.on_step(step, total_steps)
            batch = move_to(next(it), device, channels_last=nhwc)
            f = lr_factor(cfg.lr_schedule, step, total_steps)
            for gname, opt in opts.items():
                for pg, s in zip(opt.param_groups, scales[gname], strict=True):
                    pg["lr"] = cfg.lr * s * f
                with amp:
                    losses = method.losses(batch, gname)
                opt.zero_grad(set_to_none=True)
                losses["loss"].backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_([p for pg in opt.param_groups for p in pg["params"]],
                                                   cfg.grad_clip)
                opt.step()
                for k, v in losses.items():
                    name = k if len(opts) == 1 else f"{gname}_{k}"
                    sums[name] = sums.get(name, 0.0) + float(v.detach())
            step += 1
            n += 1
            if step in keep:
                save(f"step{step}", epoch)
            if budget:
                total_steps = reproject()
            if progress:
                progress({"epoch": epoch, "step": step, "total_steps": total_steps,
                          **{k: v / n for k, v in sums.items()}})
        last = elapsed() >= budget if budget else epoch == cfg.epochs
        row: dict[str, Any] = {"epoch": epoch, "step": step, "time_s": round(time.perf_counter() - t0, 2),
                               **{f"train_{k}": v / max(n, 1) for k, v in sums.items()}}
        improved = False
        if rank == 0 and (epoch % cfg.val_every == 0 or last or budget):
            row.update(run_validation())
            if key in row and sel.better(row[key], best):
                best, best_step, improved = row[key], step, True
        if budget:
            total_steps = step if elapsed() >= budget else reproject()
        row.update({"total_steps": total_steps, "lr_factor": round(f, 6), "elapsed_s": round(elapsed(), 1)})
        if rank == 0:  # the state is the commit point: see facedyn.runs
            history.append(row)
            runs.write_metrics(run_dir, history)
            save("last", epoch)
            runs.save_train_state(run_dir, {"weights": runs.state_dict_of(plain),
                                            "optim": {k: o.state_dict() for k, o in opts.items()}, "epoch": epoch,
                                            "step": step, "best": best, "best_step": best_step,
                                            "torch_rng": torch.get_rng_state(), "numpy_rng": np.random.get_state(),
                                            "elapsed_s": elapsed(), "total_steps": total_steps})
            if improved:
                save("best", epoch)
        if progress:
            progress({"epoch": epoch, "step": step, "total_steps": total_steps, **row})
    method.use_modules(plain)
    if distributed:
        torch.distributed.barrier()
    return history
