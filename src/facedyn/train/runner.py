"""Train any registered method on a prepared dataset: the Python API behind ``facedyn train <method>``.

    from facedyn.train import train
    res = train("dr", "data/synth", "runs/dr", {"T": 5, "S": 2, "epochs": 8})
    res.history[-1]["val_acc"]

:func:`configure` resolves a method's config from defaults, a preset, a config file (a run's
``config.json`` or a plain JSON of fields) and explicit overrides; :func:`train` builds the method,
its frame sets, records the run and runs the loop; :func:`sweep` trains one run per combination of
values (the Fig. 4 grid of T × S is one such sweep).
"""

from __future__ import annotations

import itertools
import json
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from facedyn import lock, methods, runs
from facedyn.config import TrainConfig, coerce, fields_of, from_record, resolve, to_dict
from facedyn.data.store import ClipDataset
from facedyn.device import resolve_device
from facedyn.errors import CheckpointError, ConfigError, DatasetError
from facedyn.method import DataSpec, Method
from facedyn.precision import SpeedChoice, layout_setting
from facedyn.train.loop import Runtime, choose_speed, dist_info, fit, seed_everything


@dataclass
class TrainResult:
    """What :func:`train` returns: the run directory, the config it recorded and the metrics history."""

    run: Path
    config: TrainConfig
    history: list[dict[str, Any]]
    speed: SpeedChoice | None = None

    def best(self, metric: str | None = None) -> float | None:
        """Best validation value of ``metric`` (default: the method's selection metric)."""
        cls = methods.get(runs.read_record(self.run).method)
        key = f"val_{metric or cls.selection.metric}"
        vals = [r[key] for r in self.history if isinstance(r.get(key), int | float)]
        if not vals:
            return None
        return max(vals) if cls.selection.mode == "max" else min(vals)


def read_config_file(path: str | Path) -> tuple[dict[str, Any], bool]:
    """Fields from a JSON file, and whether it was a run's record.

    ``path``: a run directory (or a shipped model's name) or its ``config.json`` (its ``config`` entry), or a flat
    JSON object of fields.
    """
    path = Path(path)
    if runs.names_shipped(path):
        path = runs.resolve_run(path)
    if (path / runs.CONFIG_FILE).is_file():
        return dict(runs.read_record(path).config), True
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file; give a run directory or a JSON file of settings")
    if path.name == runs.CONFIG_FILE:
        return dict(runs.read_record(path.parent).config), True
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"--config {path}: not valid JSON") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"--config {path}: must hold a JSON object of settings")
    return obj, False


def configure(method: str | type[Method], preset: str | None = None, config_file: str | Path | None = None,
              overrides: dict[str, Any] | None = None, resume_from: str | Path | None = None) -> TrainConfig:
    """A method's config: defaults < ``preset`` < ``config_file`` < ``overrides``.

    A run's config.json as ``config_file`` contributes the fields this method shares with it (so a
    baseline can copy a DR run's window and UNet). With ``resume_from`` (a run directory that has a
    record), the run's recorded config replaces defaults, preset and file, so a resumed run keeps its
    settings (its calibrated margin included); ``overrides`` still apply (e.g. more ``epochs``).
    """
    cls = methods.get(method) if isinstance(method, str) else method
    if resume_from is not None and runs.is_run(resume_from):
        rec = runs.read_record(resume_from)
        if rec.method != cls.name:
            raise CheckpointError(f"{resume_from}: holds a {rec.method!r} run; cannot resume it as {cls.name!r}")
        return from_record(cls.Config, {**rec.config, **(overrides or {})})
    file_values: dict[str, Any] = {}
    if config_file:
        file_values, from_run = read_config_file(config_file)
        if from_run:
            known = {f.name for f in fields_of(cls.Config)}
            file_values = {k: v for k, v in file_values.items() if k in known}
    over = dict(overrides or {})
    if "epochs" in over and "time_budget" not in over:
        over["time_budget"] = None  # asking for epochs means epochs, not a budget copied from another run
    return resolve(cls.Config, preset, file_values, over)


def open_store(data: str | Path, fold: int | None) -> ClipDataset:
    """The clip store, with the person-level fold applied when ``fold`` is given."""
    return ClipDataset(data, fold=fold) if fold is not None else ClipDataset(data)


def has_split(store: ClipDataset, split: str) -> bool:
    return bool(store.splits.get(split))


def train(
    method: str | type[Method],
    data: str | Path,
    out: str | Path,
    config: TrainConfig | dict[str, Any] | None = None,
    runtime: Runtime | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    command: str | None = None,
) -> TrainResult:
    """Train ``method`` on the dataset ``data`` into the run directory ``out``.

    ``config``: the method's config dataclass, or a dict of its fields (defaults for the rest). With
    ``runtime.resume`` and no ``config``, the run's recorded config is used. Training windows/pairs
    come from split ``train``, validation from split ``val`` (people never seen in training).
    """
    rt = runtime or Runtime()
    cls = methods.get(method) if isinstance(method, str) else method
    out = Path(out)
    if config is None:
        cfg = configure(cls, resume_from=out if rt.resume else None)
    elif isinstance(config, dict):
        cfg = configure(cls, overrides=config, resume_from=out if rt.resume else None)
    else:
        cfg = config
    previous = runs.read_record(out) if rt.resume and runs.is_run(out) else None  # the run this call resumes
    if previous is not None and previous.method != cls.name:
        raise CheckpointError(f"{out}: holds a {previous.method!r} run; cannot resume it as {cls.name!r}")
    continuing = previous is not None and runs.has_train_state(out)  # training goes on from its last epoch
    init_sha = ""  # the weights --init-from names, pinned by hash (a wrong one fails before anything is written)
    if cfg.init_from and not continuing:
        init_sha = runs.file_sha256(runs.init_weights_path(cfg.init_from, cfg.fold))
    store = open_store(data, cfg.fold)
    spec = DataSpec.from_dict(store.spec())
    if cls.learns_head_motion and spec.align == "similarity":
        warnings.warn(f"{store.path}: similarity-aligned crops (head roll, scale and shift removed): {cls.name} learns "
                      "head motion between frames; prepare a store with --align box for it", stacklevel=2)
    seed_everything(cfg.seed)  # the network's initialisation flows from the seed
    m = cls(cfg, spec)
    train_set = m.dataset(store, "train", seed=cfg.seed)
    if len(train_set) == 0:  # type: ignore[arg-type]
        raise DatasetError(f"{store.path}: no training samples for {cls.name}; use more or longer clips")
    val_set = m.dataset(store, "val", seed=cfg.seed + 1) if has_split(store, "val") else None
    cfg = m.setup(train_set, out)
    rt = replace(rt, speed=rt.speed or _speed(m, train_set, previous, rt))
    record = runs.RunRecord(
        method=cls.name, module=cls.__module__, config=to_dict(cfg),
        data={**runs.data_identity(data, store.subjects), **spec.to_dict(), "fold": cfg.fold,
              "splits": {k: list(v) for k, v in store.splits.items()},
              "n_train": len(train_set), "n_val": len(val_set) if val_set is not None else 0},  # type: ignore[arg-type]
        extra=m.record(), command=command if command is not None else runs.command_line(),
        speed=rt.speed.to_dict() if rt.speed else {}, init_sha256=init_sha)
    if continuing:  # the run keeps who started it and from what, and adds this process
        assert previous is not None
        record.resumed = [*previous.resumed, {"command": record.command, "at": runs.now_utc()}]
        record.command, record.created = previous.command, previous.created
        record.init_sha256 = previous.init_sha256
    writer = dist_info()[0] == 0  # rank 0 alone writes the run
    with lock.hold(out, "train") if writer else nullcontext():  # one training per run directory
        if writer:
            runs.ensure_run_dir(out)
            runs.clean_partial(out)  # temporaries of writes a killed run left
            runs.write_record(out, record)
        history = fit(m, train_set, val_set, out, rt, progress=progress)
    return TrainResult(out, cfg, history, rt.speed)


def _speed(method: Method, train_set: Any, previous: runs.RunRecord | None, rt: Runtime) -> SpeedChoice:
    """The run's precision and memory format: a resumed run (``previous``, its record) keeps the one it recorded
    (same numerics, no new measurement) unless asked for another; a new run measures where ``auto`` asks for it."""
    if previous is not None and previous.speed:
        prev = SpeedChoice.from_dict(previous.speed)
        asked = {"precision": method.cfg.precision, "channels_last": layout_setting(rt.channels_last)}
        if all(asked[k] in ("auto", prev.requested.get(k)) for k in asked):
            return prev
    return choose_speed(method, train_set, resolve_device(rt.device), rt)


def parse_grid(specs: list[str], config_cls: type) -> dict[str, list[Any]]:
    """``["T=3,5,7,9", "S=1,2"]`` → ``{"T": [3, 5, 7, 9], "S": [1, 2]}`` (values typed by the config field)."""
    known = {f.name for f in fields_of(config_cls)}
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        name = name.strip().lstrip("-").replace("-", "_")
        if not sep or not values.strip():
            raise ConfigError(f"--grid {spec!r}: write NAME=V1,V2,... (e.g. T=3,5,7,9)")
        if name not in known:
            raise ConfigError(f"--grid {spec!r}: {name!r} is not a setting of this method")
        grid[name] = [coerce(config_cls, name, v.strip()) for v in values.split(",") if v.strip()]
    return grid


def grid_runs(out: str | Path, grid: dict[str, list[Any]]) -> list[tuple[Path, dict[str, Any]]]:
    """One (run directory, settings) per combination: ``OUT/T3_S1`` in grid order (last key fastest);
    no grid → ``[(OUT, {})]``."""
    if not grid:
        return [(Path(out), {})]
    keys = list(grid)
    jobs = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        name = "_".join(f"{k}{v}" for k, v in zip(keys, combo, strict=True))
        jobs.append((Path(out) / name, dict(zip(keys, combo, strict=True))))
    return jobs


def sweep(method: str | type[Method], data: str | Path, out: str | Path, grid: dict[str, list[Any]] | None = None,
          preset: str | None = None, config_file: str | Path | None = None, overrides: dict[str, Any] | None = None,
          runtime: Runtime | None = None, progress: Callable[[Path, dict[str, Any]], None] | None = None,
          ) -> list[TrainResult]:
    """Train one run per combination of ``grid`` values under ``out`` (one run into ``out`` without a grid).

    Each run's config is :func:`configure` (``preset``, ``config_file``, ``overrides`` plus the
    combination); with ``runtime.resume`` a run that exists continues with its recorded config.
    ``progress(run_dir, info)`` reports each run's progress.
    """
    rt = runtime or Runtime()
    results = []
    for run, combo in grid_runs(out, grid or {}):
        cfg = configure(method, preset, config_file, {**(overrides or {}), **combo},
                        resume_from=run if rt.resume else None)
        cb = (lambda p, run=run: progress(run, p)) if progress else None
        results.append(train(method, data, run, cfg, rt, cb))
    return results
