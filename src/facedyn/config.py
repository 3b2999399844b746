"""Typed configs: one dataclass per method, every default declared once, saved as JSON beside every run.

A method's config is a dataclass that extends :class:`TrainConfig` (the loop's settings) with the
method's own fields. Fields are declared with :func:`option`, which carries the help text (the CLI's
``facedyn train <method>`` options are generated from these fields) and, where a field takes one of a
few values, its choices (checked by :func:`validate`). A subclass may redeclare an inherited field to
change its default (e.g. Adam betas).

Presets: a config class lists named overrides in ``PRESETS`` (``"cpu"`` is always the defaults; the
defaults are the CPU setting, so that the demo finishes in minutes on 2 cores, and ``"paper"`` holds the
published setting). Precedence when a run is configured: defaults < preset < ``--config FILE`` <
options given on the command line.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from facedyn.errors import ConfigError


def option(default: Any, help: str, choices: tuple[Any, ...] | None = None, minimum: float | None = None) -> Any:
    """A config field with its default, help text, optional allowed values and optional smallest value (checked by
    :func:`validate` before any work starts)."""
    meta = {"help": help, "choices": choices, "minimum": minimum}
    if isinstance(default, list | dict | set):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Settings of the training loop shared by every method (a method's config extends this)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}}

    epochs: int = option(8, "Epochs (validation and checkpoints after each).", minimum=1)
    steps_per_epoch: int | None = option(None, "Optimiser steps per epoch (default: one pass over the data).",
                                         minimum=1)
    batch_size: int = option(16, "Batch size.", minimum=1)
    lr: float = option(1e-3, "Adam learning rate.", minimum=0)
    betas: tuple[float, float] = option((0.5, 0.9), "Adam betas (dr-paper.txt §4.2: 0.5, 0.9).")
    weight_decay: float = option(0.0, "Adam weight decay.", minimum=0)
    lr_schedule: str = option("constant", "Learning-rate schedule over all steps.", ("constant", "cosine"))
    grad_clip: float | None = option(None, "Clip the gradient norm to this value.")
    precision: str = option("auto", "auto: bf16 autocast where this machine does bf16 natively and a short "
                                    "measurement of this network shows it faster (CUDA with bf16; CPUs with "
                                    "avx512_bf16/amx_bf16), else fp32. Losses and metrics stay fp32.",
                            ("auto", "fp32", "bf16"))
    time_budget: str | None = option(None, "Train for this long instead of a number of epochs (90m, 2h30m, 45s): "
                                           "the lr schedule is stretched over the steps projected from the measured "
                                           "rate; --resume continues the same budget.")
    keep_steps: str = option("", "Also keep the weights at these steps (checkpoints/step<N>.safetensors, for "
                                 "learning curves: `eval rank|probe --weights step<N>`): log (100, 300, 1000, "
                                 "3000, ...) or comma-separated steps.")
    checkpoint_every: float = option(10.0, "With --time-budget: validate and checkpoint at least every this many "
                                           "minutes (a stopped run loses at most that).")
    seed: int = option(0, "Seed of every random choice (initialisation, sampling, augmentation).")
    val_every: int = option(1, "Validate every this many epochs (and after the last).")
    max_val_batches: int | None = option(None, "Validate on at most this many batches.")
    fold: int | None = option(None, "Use the store's person-level fold K as test (K+1 as val); see `facedyn split`.")
    init_from: str | None = option(None, "Start from these weights instead of a random initialisation (fine-tuning): "
                                         "a run directory (its best checkpoint), a shipped model's name or a "
                                         ".safetensors file, of the same network; {fold} is replaced by --fold "
                                         "(cv: one source run per fold). Modules the file lacks (a discriminator) "
                                         "start at random.")


def parse_duration(text: str) -> float:
    """Seconds of a duration like ``90m``, ``2h30m``, ``1.5h``, ``45s`` or a bare number of minutes."""
    import re

    t = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t) * 60
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", t)
    if not t or not parts or "".join(f"{n}{u}" for n, u in parts) != t:
        raise ConfigError(f"--time-budget {text!r}: write a duration like 90m, 2h30m, 1.5h or 45s")
    seconds = sum(float(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"--time-budget {text!r}: must be longer than zero")
    return seconds


def fields_of(cls: type) -> list[dataclasses.Field[Any]]:
    """The dataclass fields of a config class, in declaration order (inherited first)."""
    return [f for f in dataclasses.fields(cls) if f.init]


def field_type(cls: type, name: str) -> Any:
    """The resolved annotation of field ``name`` (``int``, ``float | None``, ``tuple[float, float]``, ...)."""
    return typing.get_type_hints(cls)[name]


def _base_type(tp: Any) -> Any:
    """``X | None`` → ``X``."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def coerce(cls: type, name: str, value: Any) -> Any:
    """``value`` (from JSON or text) converted to field ``name``'s type; ConfigError if it cannot be."""
    tp = field_type(cls, name)
    if value is None:
        return None
    base = _base_type(tp)
    try:
        if typing.get_origin(base) is tuple:
            parts = value.split(",") if isinstance(value, str) else list(value)
            inner = typing.get_args(base)
            if len(inner) == 2 and inner[1] is Ellipsis:
                return tuple(inner[0](p) for p in parts)
            if len(parts) != len(inner):
                raise ValueError
            return tuple(t(p) for t, p in zip(inner, parts, strict=True))
        if base is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            return bool(value)
        if base is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return base(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: {value!r} is not a valid {getattr(base, '__name__', base)}") from None


def validate(cfg: Any) -> Any:
    """Check every field with ``choices``; returns ``cfg``. ConfigError names the field and the choices."""
    for f in fields_of(type(cfg)):
        choices = f.metadata.get("choices")
        v = getattr(cfg, f.name)
        if choices and v not in choices:
            raise ConfigError(f"--{f.name.replace('_', '-')} must be one of {', '.join(map(str, choices))}, got {v!r}")
        least = f.metadata.get("minimum")
        if least is not None and v is not None and v < least:
            raise ConfigError(f"--{f.name.replace('_', '-')} must be at least {least:g}, got {v!r}")
    if getattr(cfg, "time_budget", None):
        parse_duration(cfg.time_budget)
    if getattr(cfg, "checkpoint_every", 1.0) <= 0:
        raise ConfigError("--checkpoint-every must be a positive number of minutes")
    return cfg


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config (tuples become lists)."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type, values: dict[str, Any], strict: bool = True) -> Any:
    """A ``cls`` config from ``values`` (missing keys take their defaults).

    With ``strict``, an unknown key raises ConfigError (a typo in a config file must not pass silently);
    otherwise unknown keys are ignored (reading a run written by another facedyn version).
    """
    known = {f.name for f in fields_of(cls)}
    unknown = sorted(set(values) - known)
    if unknown and strict:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)} for {cls.__name__}; "
                          f"known: {', '.join(sorted(known))}")
    return validate(cls(**{k: coerce(cls, k, v) for k, v in values.items() if k in known}))


def from_record(cls: type, values: dict[str, Any]) -> Any:
    """A ``cls`` config from a run's recorded settings (unknown keys ignored). A field the record lacks takes
    ``cls.RECORDED_DEFAULTS[name]`` when given (what the code did before the field existed, so an older run
    loads and resumes as it was trained), else its default."""
    return from_dict(cls, {**getattr(cls, "RECORDED_DEFAULTS", {}), **values}, strict=False)


def resolve(cls: type, preset: str | None = None, *layers: dict[str, Any]) -> Any:
    """Defaults, then ``cls.PRESETS[preset]``, then each of ``layers`` in order (later wins)."""
    values: dict[str, Any] = {}
    if preset is not None:
        if preset not in cls.PRESETS:
            raise ConfigError(f"--preset must be one of {', '.join(cls.PRESETS)}, got {preset!r}")
        values.update(cls.PRESETS[preset])
    for layer in layers:
        values.update(layer)
    return from_dict(cls, values)


def help_of(cls: type, name: str) -> str:
    """Help text of field ``name`` (with its choices)."""
    f = next(f for f in fields_of(cls) if f.name == name)
    text = str(f.metadata.get("help", ""))
    choices = f.metadata.get("choices")
    if choices:
        text += f" One of: {', '.join(map(str, choices))}."
    return text
