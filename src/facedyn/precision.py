"""Numeric precision and memory format of training, chosen per machine by measurement.

Machines differ: on a CPU with native bf16 (``avx512_bf16`` / ``amx_bf16`` on x86, ``bf16`` on Arm) bf16
autocast trains the project's networks 2-2.6x faster than fp32; on a CPU without it bf16 is emulated and
15-20x *slower*. Channels-last (NHWC) helps some networks on some CPUs and hurts others. So ``--precision
auto`` and ``--channels-last auto`` time a few forward+backward steps of the method's *own* losses on a
real training batch for each candidate setting (seconds), cache the result per machine and network shape,
and pick the fastest:

- ``precision``: ``auto`` → bf16 on CUDA with bf16 support; on a CPU with native bf16 where bf16 measures
  at least :data:`MARGIN` faster than fp32; fp32 otherwise. ``bf16`` is honoured everywhere (on a CPU
  without native bf16 with a one-line warning giving the measured slowdown). ``fp32``: no autocast.
- ``channels_last``: ``auto`` → NHWC where it measures :data:`MARGIN` faster at the chosen precision.

Only the networks run under autocast: the loss math, the Rank Loss inner products and the metrics run in
fp32 (loss functions are wrapped in :func:`float32_math`, which casts their tensor arguments to fp32 and
turns autocast off), and validation runs without autocast.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from facedyn.atomic import write_json
from facedyn.errors import ConfigError

PRECISIONS = ("auto", "fp32", "bf16")
LAYOUTS = ("auto", "on", "off")
#: A candidate must be at least this much faster (relative) to replace the plain setting (fp32, NCHW).
MARGIN = 0.05
#: CPU flags that mean native bf16 arithmetic (x86: AVX-512 BF16, AMX; Arm: FEAT_BF16).
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")

F = TypeVar("F", bound=Callable[..., Any])


# -- what the machine has ----------------------------------------------------------------------------------

@functools.cache
def cpu_info() -> dict[str, Any]:
    """``{"model": str, "flags": [bf16-related flags], "isa": torch's CPU capability}`` of this machine."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and value.strip():
            model = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    isa = ""
    with contextlib.suppress(Exception):
        isa = str(torch.backends.cpu.get_cpu_capability())
    return {"model": model, "flags": sorted(f for f in flags if f in BF16_FLAGS or f.startswith("amx")), "isa": isa}


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` does bf16 arithmetic natively (CUDA: ``is_bf16_supported``; CPU: its flags)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return any(f in BF16_FLAGS for f in cpu_info()["flags"])


# -- autocast and fp32 loss math ------------------------------------------------------------------------

def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on ``device`` for ``precision="bf16"``; nothing for ``"fp32"``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision != "bf16":
        raise ConfigError(f"--precision must be auto, fp32 or bf16, got {precision!r}")
    return torch.autocast(device.type, dtype=torch.bfloat16)


def to_float32(x: Any) -> Any:
    """Half-precision (bf16, fp16) tensors of a (nested) structure as fp32; everything else (fp64 included)
    unchanged."""
    if isinstance(x, torch.Tensor):
        return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
    if isinstance(x, dict):
        return {k: to_float32(v) for k, v in x.items()}
    if isinstance(x, list | tuple) and not hasattr(x, "_fields"):
        return type(x)(to_float32(v) for v in x)
    return x


def float32_math(fn: F) -> F:
    """Decorator: run ``fn`` in fp32 (or finer) under any autocast (half-precision tensor arguments cast to fp32,
    autocast off).

    For losses and metrics: a network's bf16 output enters the loss as fp32 (sums over many pixels and
    pairs lose too much in bf16's 8-bit mantissa).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = to_float32(args), to_float32(kwargs)
        devices = {a.device.type for a in [*args, *kwargs.values()] if isinstance(a, torch.Tensor)} or {"cpu"}
        with contextlib.ExitStack() as stack:
            for d in devices:
                stack.enter_context(torch.autocast(d, enabled=False))
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


#: PyTorch's losses computed in fp32 whatever the autocast (for network outputs that may be bf16).
mse_loss = float32_math(torch.nn.functional.mse_loss)
l1_loss = float32_math(torch.nn.functional.l1_loss)
bce_with_logits = float32_math(torch.nn.functional.binary_cross_entropy_with_logits)


# -- the choice ------------------------------------------------------------------------------------------

@dataclass
class SpeedChoice:
    """What the loop runs with and why (recorded in the run's ``config.json`` as ``speed``).

    ``precision``: ``"fp32"`` or ``"bf16"``; ``channels_last``: NHWC networks and batches; ``requested``:
    the settings asked for; ``reason``: one line; ``measured``: images/s per setting (``"bf16/nhwc"``, ...)
    where something was measured; ``machine``: CPU model and its bf16 flags (or the CUDA device).
    """

    precision: str = "fp32"
    channels_last: bool = False
    requested: dict[str, str] = field(default_factory=lambda: {"precision": "fp32", "channels_last": "off"})
    reason: str = ""
    measured: dict[str, float] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SpeedChoice:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


def layout_setting(value: bool | str | None) -> str:
    """``True``/``False``/``None`` or ``auto|on|off`` (also ``true|false``) → ``auto``, ``on`` or ``off``."""
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return "on" if value else "off"
    v = str(value).strip().lower()
    v = {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}.get(v, v)
    if v not in LAYOUTS:
        raise ConfigError(f"--channels-last must be auto, on or off, got {value!r}")
    return v


def settings_to_measure(precision: str, layout: str, device: torch.device) -> list[tuple[str, bool]]:
    """The (precision, channels_last) candidates a choice needs timed; ``[]`` when nothing needs measuring."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision must be auto, fp32 or bf16, got {precision!r}")
    if precision == "auto":
        precs = ["bf16"] if device.type == "cuda" and native_bf16(device) else (
            ["fp32", "bf16"] if device.type == "cpu" and native_bf16(device) else ["fp32"])
    else:
        precs = [precision]
    if precision == "bf16" and device.type == "cpu" and not native_bf16(device):
        precs = ["fp32", "bf16"]  # to state the slowdown in the warning
    layouts = [False, True] if layout == "auto" else [layout == "on"]
    cands = [(p, nl) for p in precs for nl in layouts]
    return cands if len(cands) > 1 else []


def pick(measured: dict[str, float], precision: str, layout: str, device: torch.device) -> tuple[str, bool, str]:
    """(precision, channels_last, reason) from measured images/s (keys ``"fp32/nchw"``, ``"bf16/nhwc"``, ...).

    A setting replaces the plain one only when at least :data:`MARGIN` faster (noise must not flip it).
    """
    def rate(p: str, nl: bool) -> float | None:
        return measured.get(f"{p}/{'nhwc' if nl else 'nchw'}")

    native = native_bf16(device)
    if precision == "auto":
        if device.type == "cuda":
            prec = "bf16" if native else "fp32"
        elif not native:
            prec = "fp32"
        else:
            best = {p: max((r for nl in (False, True) if (r := rate(p, nl)) is not None), default=None)
                    for p in ("fp32", "bf16")}
            prec = "bf16" if (best["bf16"] is not None and best["fp32"] is not None
                              and best["bf16"] >= (1 + MARGIN) * best["fp32"]) else "fp32"
    else:
        prec = precision
    if layout == "auto":
        a, b = rate(prec, False), rate(prec, True)
        nhwc = a is not None and b is not None and b >= (1 + MARGIN) * a
    else:
        nhwc = layout == "on"
    shown = ", ".join(f"{k} {v:.0f}" for k, v in measured.items())
    if device.type == "cuda":
        why = "CUDA device with bf16" if native and precision == "auto" else f"--precision {precision}"
    elif precision == "auto":
        flags = ", ".join(cpu_info()["flags"]) or "none"
        why = (f"CPU with native bf16 ({flags})" if native else "CPU without native bf16 (no avx512_bf16/amx_bf16)")
    else:
        why = f"--precision {precision}"
    reason = f"{why}; chose {prec}{' + channels_last' if nhwc else ''}"
    if measured:
        reason += f" (measured img/s: {shown})"
    return prec, nhwc, reason


# -- measurement -----------------------------------------------------------------------------------------

def cache_dir() -> Path:
    """Where measurements are cached: ``$FACEDYN_CACHE_DIR`` or ``~/.cache/facedyn``."""
    env = os.environ.get("FACEDYN_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "facedyn"


def _shape_of(batch: Any) -> Any:
    if isinstance(batch, torch.Tensor):
        return [list(batch.shape), str(batch.dtype)]
    if isinstance(batch, dict):
        return {k: _shape_of(v) for k, v in sorted(batch.items())}
    if isinstance(batch, list | tuple):
        return [_shape_of(v) for v in batch]
    return None


def measurement_key(method: Any, batch: Any, device: torch.device) -> str:
    """A key naming this machine, torch, the thread count, the method, its modules' shapes and the batch."""
    mods = method.train_modules()
    desc = {"machine": cpu_info() if device.type == "cpu" else torch.cuda.get_device_name(device),
            "device": device.type, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "method": method.name, "modules": {k: [type(m).__name__, sum(p.numel() for p in m.parameters())]
                                                 for k, m in mods.items()},
            "batch": _shape_of(batch)}
    return hashlib.sha1(json.dumps(desc, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _read_cache() -> dict[str, Any]:
    path = cache_dir() / "speed.json"
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return {}


def _write_cache(key: str, value: dict[str, float]) -> None:
    data = _read_cache()
    data[key] = value
    with contextlib.suppress(Exception):  # a read-only home must not stop training
        write_json(cache_dir() / "speed.json", data)


def machine_busy() -> float | None:
    """The 1-minute load average when other work crowds the cores (above twice the CPU count: a training that
    uses every core is load ~1x), else None."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return None
    return load if load > 2 * (os.cpu_count() or 1) else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(method: Any, batch: Any, device: torch.device, precision: str, channels_last: bool,
               steps: int = 4, warmup: int = 2, min_seconds: float = 0.5) -> float:
    """Samples per second of ``method``'s training step (every optimiser group's losses forward + backward)
    on ``batch`` at one setting. The method's weights, buffers (BatchNorm statistics) and the RNG are left as
    they were: nothing is learned and no random choice of the run is consumed."""
    from facedyn.method import move_to

    mods = method.train_modules()
    saved = {k: copy.deepcopy(m.state_dict()) for k, m in mods.items()}
    groups = list(method.param_groups())
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    b = move_to(batch, device, channels_last=channels_last)
    n = _batch_len(batch)
    params = [p for m in mods.values() for p in m.parameters()]
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            for m in mods.values():
                m.to(device=device, memory_format=fmt)
                m.train()
            done, elapsed = 0, 0.0
            for i in range(warmup + 10_000):
                if i == warmup:
                    _sync(device)
                    t0 = time.perf_counter()
                for g in groups:
                    with autocast(precision, device):
                        loss = method.losses(b, g)["loss"]
                    loss.backward()
                    for p in params:
                        p.grad = None
                if i >= warmup:
                    done += 1
                    _sync(device)
                    elapsed = time.perf_counter() - t0
                    if done >= steps and elapsed >= min_seconds:
                        break
        finally:
            for k, m in mods.items():
                m.to(memory_format=torch.contiguous_format)
                m.load_state_dict(saved[k])
    return done * n / max(elapsed, 1e-9)


def _batch_len(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        return _batch_len(next(iter(batch.values())))
    if isinstance(batch, list | tuple):
        return _batch_len(batch[0])
    return 1


def measure(method: Any, batch: Any, device: torch.device, candidates: Sequence[tuple[str, bool]],
            use_cache: bool = True, rounds: int = 3, min_seconds: float = 0.15) -> dict[str, float]:
    """Images/s of each (precision, channels_last) candidate (cached per machine and network shape).

    The candidates are timed in ``rounds`` interleaved rounds (A, B, C, D, A, B, ...), each at least
    ``min_seconds``, and each keeps its best round: on a machine where other work comes and goes, every
    candidate sees the same conditions and a transient slowdown does not decide the choice. A measurement
    made while the machine is busy (:func:`machine_busy`) is used but not cached: it would decide later runs.
    """
    key = measurement_key(method, batch, device)
    cached = _read_cache().get(key, {}) if use_cache else {}
    names = {f"{p}/{'nhwc' if nl else 'nchw'}": (p, nl) for p, nl in candidates}
    out = {k: float(cached[k]) for k in names if k in cached}
    todo = [k for k in names if k not in out]
    best: dict[str, float] = {}
    for r in range(rounds if todo else 0):
        for k in todo:
            p, nl = names[k]
            rate = time_steps(method, batch, device, p, nl, steps=2, warmup=2 if r == 0 else 1,
                              min_seconds=min_seconds)
            best[k] = max(best.get(k, 0.0), rate)
    out.update(best)
    if use_cache and best and machine_busy() is None:
        _write_cache(key, {**cached, **best})
    return {k: out[k] for k in names}


def choose(method: Any, batch: Any, device: torch.device, precision: str = "auto",
           channels_last: bool | str | None = "auto", use_cache: bool = True) -> SpeedChoice:
    """The :class:`SpeedChoice` for training ``method`` on batches like ``batch`` on ``device``."""
    layout = layout_setting(channels_last)
    cands = settings_to_measure(precision, layout, device)
    measured = measure(method, batch, device, cands, use_cache) if cands else {}
    prec, nhwc, reason = pick(measured, precision, layout, device)
    busy = machine_busy() if measured and device.type == "cpu" else None
    if busy is not None:
        reason += (f"; measured while the machine was busy (load {busy:.1f} on {os.cpu_count()} CPUs): not cached, "
                   "the choice may differ on an idle machine")
    if precision == "bf16" and device.type == "cpu" and not native_bf16(device):
        f, b = measured.get(f"fp32/{'nhwc' if nhwc else 'nchw'}"), measured.get(f"bf16/{'nhwc' if nhwc else 'nchw'}")
        slow = f"{f / b:.1f}x slower than fp32 (measured)" if f and b else "emulated"
        warnings.warn(f"--precision bf16 on a CPU without native bf16: {slow}; --precision auto picks fp32 here",
                      stacklevel=2)
    machine = ({"device": torch.cuda.get_device_name(device)} if device.type == "cuda"
               else {"cpu": cpu_info()["model"], "bf16_flags": cpu_info()["flags"], "threads": torch.get_num_threads()})
    return SpeedChoice(prec, nhwc, {"precision": precision, "channels_last": layout}, reason, measured, machine)
