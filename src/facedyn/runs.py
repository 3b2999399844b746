"""Run directories: the only code that reads or writes them.

Layout::

    RUN/config.json                    the run record (:class:`RunRecord`)
    RUN/checkpoints/init.safetensors   the network before training (``facedyn.load(run, weights="init")``)
    RUN/checkpoints/best.safetensors   the epoch chosen by the method's selection rule
    RUN/checkpoints/last.safetensors   the latest epoch
    RUN/checkpoints/last.state.pt      the resume point: the weights, optimiser states, epoch, step, best value
                                       and RNG states of the last epoch
    RUN/metrics.csv                    one row per epoch: train losses, validation metrics, time
    RUN/figures/*.png                  figures
    RUN/onnx/<weights>.onnx            the network exported to ONNX (``--engine onnx``)

Every file is written atomically. Weights are safetensors with one flat ``"<module>.<param>"`` key
space, so several modules (a GAN's generator and discriminator) live in one file.

An epoch ends by writing ``metrics.csv``, ``last.safetensors``, ``last.state.pt`` and (when it improved)
``best.safetensors``, in that order; ``last.state.pt`` is the commit point. A run killed between these
writes resumes from the last state written: the metrics rows after it are dropped and ``last``/``best``
rewritten from it (:func:`facedyn.train.loop.fit`), so they never disagree with the state. The
temporary files of writes a kill interrupted are removed when training starts again (:func:`clean_partial`).
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import os
import re
import shlex
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save
from torch import nn

from facedyn import __version__
from facedyn.atomic import atomic_path, clean_temporaries, write_json
from facedyn.errors import CheckpointError, ConfigError, OutputError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
CHECKPOINTS = "checkpoints"
FIGURES = "figures"
WEIGHTS = ("best", "last", "init")


@dataclass
class RunRecord:
    """What ``config.json`` holds.

    Attributes:
        method: registered method name; ``module`` the module that registers it (imported on load,
            so runs of methods from other packages load too).
        config: the method's config (its dataclass as a dict, the loop's settings included).
        data: the dataset: ``path`` as given, ``index_sha256`` and ``subjects`` (:func:`data_identity`), the
            :class:`~facedyn.method.DataSpec` fields (``size``, ``mask``,
            ``align``, ``template``, ``detector``, ``channels``), ``fold`` and the frame-set sizes.
        extra: method-specific facts (:meth:`facedyn.method.Method.record`).
        speed: the precision (``"fp32"``/``"bf16"``) and memory format the run trained with, what was asked
            for, why, and the measurement behind it (:class:`facedyn.precision.SpeedChoice`).
        facedyn_version, command, created: provenance (the command line that made the run, and when).
        resumed: one ``{"command", "at"}`` per later process that resumed the run (``command`` and ``created``
            stay those of the process that started it).
        init_sha256: with ``init_from``: the SHA-256 of the weights file it named when training started (a
            shipped model or run retrained since no longer holds this run's initial weights).
    """

    method: str
    module: str
    config: dict[str, Any]
    data: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    speed: dict[str, Any] = field(default_factory=dict)
    facedyn_version: str = __version__
    command: str = ""
    created: str = ""
    resumed: list[dict[str, str]] = field(default_factory=list)
    init_sha256: str = ""


def command_line() -> str:
    """The current process's command line, shell-quoted (recorded in every run): ``facedyn ...`` for the CLI
    (its entry point or ``python -m facedyn``), ``python SCRIPT ...`` for a script that trains through the API."""
    prog = Path(sys.argv[0]).name if sys.argv else ""
    if prog in ("facedyn", "__main__.py", ""):
        head = ["facedyn"]
    elif prog.endswith(".py"):
        head = ["python", sys.argv[0]]
    else:
        head = [prog]
    return " ".join(shlex.quote(a) for a in [*head, *sys.argv[1:]])


def now_utc() -> str:
    """The current time, ISO 8601 in UTC to the second (run provenance)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def is_run(path: str | Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def write_record(run_dir: str | Path, record: RunRecord) -> Path:
    """Write ``config.json`` (creating the run directory); returns its path."""
    run_dir = Path(run_dir)
    if not record.created:
        record.created = now_utc()
    path = run_dir / CONFIG_FILE
    write_json(path, asdict(record))
    return path


def read_record(run_dir: str | Path) -> RunRecord:
    """``config.json`` of a run; CheckpointError with what to do when it is missing or unreadable."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{run_dir}: not a run directory (no {CONFIG_FILE}); give a directory made by "
                              "`facedyn train`")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CheckpointError(f"{path}: not valid JSON; the run is damaged, train it again") from None
    if "config" not in raw and "dr" in raw:  # written by facedyn 0.1 (DR-family runs only)
        return _record_v1(raw)
    try:
        return RunRecord(**{k: raw[k] for k in RunRecord.__dataclass_fields__ if k in raw})
    except TypeError:
        raise CheckpointError(f"{path}: lacks the method, config or data entries of a facedyn run") from None


def _record_v1(raw: dict[str, Any]) -> RunRecord:
    """A 0.1 record (``{"method", "dr": {...}, "loop": {...}}``) in today's form."""
    dr = dict(raw["dr"])
    method = raw.get("method", "dr")
    loop = raw.get("loop", {})
    config = {k: v for k, v in dr.items() if k not in ("method", "size", "extra")}
    if method == "dr":
        config.pop("target", None)
    config.update({k: loop[k] for k in ("epochs", "steps_per_epoch", "batch_size", "lr", "betas", "weight_decay",
                                        "lr_schedule", "grad_clip", "seed") if k in loop})
    config.update({k: v for k, v in dr.get("extra", {}).items() if k not in ("augment",)})
    module = "facedyn.dr.method" if method == "dr" else "facedyn.dr.baselines"
    return RunRecord(method=method, module=module, config=config,
                     data={"path": raw.get("data", ""), "size": dr.get("size", 64), "mask": True},
                     facedyn_version=raw.get("facedyn_version", "0.1.0"))


# -- weights ---------------------------------------------------------------------------------------

def is_weights_name(weights: str) -> bool:
    """``best``, ``last``, ``init`` or ``step<N>`` (a checkpoint kept at step N, see ``--keep-steps``)."""
    return weights in WEIGHTS or bool(re.fullmatch(r"step\d+", weights))


def kept_steps(run_dir: str | Path) -> list[int]:
    """The steps whose weights a run kept (``checkpoints/step<N>.safetensors``), ascending."""
    names = (p.stem for p in (Path(run_dir) / CHECKPOINTS).glob("step*.safetensors"))
    return sorted(int(n[4:]) for n in names if re.fullmatch(r"step\d+", n))


def checkpoint_path(run_dir: str | Path, weights: str = "best") -> Path:
    """``RUN/checkpoints/<weights>.safetensors`` (``best`` falls back to ``last``); CheckpointError if absent."""
    if not is_weights_name(weights):
        raise CheckpointError(f"weights must be one of {', '.join(WEIGHTS)} or step<N> (kept with --keep-steps), "
                              f"got {weights!r}")
    ck = Path(run_dir) / CHECKPOINTS
    path = ck / f"{weights}.safetensors"
    if not path.is_file() and weights == "best":
        path = ck / "last.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{Path(run_dir)}: has no {weights} checkpoint; train it (again) with `facedyn train`")
    return path


def state_dict_of(modules: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    """Flat ``{"module.param": tensor}`` of several modules (DDP wrappers unwrapped)."""
    out: dict[str, torch.Tensor] = {}
    for name, m in modules.items():
        m = getattr(m, "module", m)
        for k, v in m.state_dict().items():
            out[f"{name}.{k}"] = v.detach().cpu().contiguous()
    return out


def save_weights(path: str | Path, modules: dict[str, nn.Module], metadata: dict[str, str] | None = None) -> None:
    """Save modules' weights as safetensors, atomically; the same weights and metadata give the same bytes (a
    checkpoint's SHA-256 identifies it: ``init_sha256``, representation caches)."""
    blob = _sorted_metadata(save(state_dict_of(modules), metadata=metadata or {}))
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(blob)


def _sorted_metadata(blob: bytes) -> bytes:
    """safetensors writes ``__metadata__`` in the order of a per-process hash map: sort it, keeping the header's
    length (padded with spaces, as the format allows) so the tensors' offsets stay valid."""
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    if not header.get("__metadata__"):
        return blob
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:  # cannot happen (same keys and values), but never write a broken header
        return blob
    return blob[:8] + text.ljust(n) + blob[8 + n:]


def load_weights(path: str | Path, modules: dict[str, nn.Module], missing_ok: bool = False) -> dict[str, str]:
    """Load ``modules`` (strictly, each from its ``"<name>."`` keys) from a safetensors file.

    Keys of other modules in the file are ignored (a loaded model needs only its network, not the
    discriminator it was trained against). ``missing_ok``: a module with no keys in the file keeps its weights
    (at least one module must load). Returns the file's metadata.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint; train first or give the right run directory")
    try:
        state = load_file(str(path))
        with safe_open(str(path), "pt") as f:
            metadata = dict(f.metadata() or {})
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__})") from None
    restore_weights(state, modules, path, missing_ok)
    return metadata


def restore_weights(state: dict[str, torch.Tensor], modules: dict[str, nn.Module], source: str | Path,
                    missing_ok: bool = False) -> None:
    """Load ``modules`` from a flat ``{"module.param": tensor}`` (:func:`state_dict_of`), as :func:`load_weights`;
    ``source`` names where it came from in errors."""
    loaded = 0
    for name, m in modules.items():
        m = getattr(m, "module", m)
        prefix = f"{name}."
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if missing_ok and not sub:
            continue
        loaded += 1
        try:
            m.load_state_dict(sub, strict=True)
        except RuntimeError as e:
            first = str(e).splitlines()[0]
            raise CheckpointError(f"{source}: weights do not match the model ({first}); was it trained with other "
                                  "settings?") from None
    if not loaded:
        raise CheckpointError(f"{source}: holds none of the modules {', '.join(modules)}; give weights of this method")


def init_weights_path(spec: str, fold: int | None = None) -> Path:
    """The weights file ``--init-from SPEC`` names: a ``.safetensors`` file, or the best checkpoint of a run
    directory or shipped model; ``{fold}`` in ``spec`` is replaced by ``fold``.

    Raises:
        ConfigError: ``{fold}`` without a fold, or another ``{...}`` field.
        CheckpointError: no such file, run or checkpoint.
    """
    if "{fold}" in spec and fold is None:
        raise ConfigError(f"--init-from {spec!r}: {{fold}} needs --fold K")
    try:
        text = spec.format(fold=fold) if "{" in spec else spec
    except (KeyError, IndexError, ValueError):
        raise ConfigError(f"--init-from {spec!r}: the only field it may hold is {{fold}}") from None
    p = Path(text)
    if p.suffix == ".safetensors":
        if not p.is_file():
            raise CheckpointError(f"--init-from {text}: no such file")
        return p
    return checkpoint_path(resolve_run(p), "best")


def checkpoint_step(run_dir: str | Path, weights: str) -> int | None:
    """The training step a run's checkpoint was saved at (its metadata; no tensors read), None when it does not say.

    Raises:
        CheckpointError: no such checkpoint (as :func:`checkpoint_path`), or not a safetensors file.
    """
    path = checkpoint_path(run_dir, weights)
    try:
        with safe_open(str(path), "pt") as f:
            step = (f.metadata() or {}).get("step")
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(e).__name__})") from None
    return int(step) if step is not None and str(step).isdigit() else None


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks (weights provenance)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def data_identity(data: str | Path, subjects: list[str]) -> dict[str, Any]:
    """What a run records of the store it trained on, portable across machines.

    ``path``: the store as the user gave it (relative paths stay relative: no absolute path of the machine
    that trained is written unless the user gave one); ``index_sha256``: the SHA-256 of its ``index.json``
    (clips, frame counts, splits, crop contract), which identifies the store wherever it lies; ``subjects``:
    its people. The crop settings come beside these from the store's :class:`~facedyn.method.DataSpec`.
    """
    index = Path(data) / "index.json"
    return {"path": str(data), "index_sha256": file_sha256(index) if index.is_file() else "",
            "subjects": sorted(subjects)}


def _train_state_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / "last.state.pt"


def clean_partial(run_dir: str | Path) -> int:
    """Remove the temporary files that writes interrupted by a kill left in a run directory and its checkpoints
    (what training writes); returns how many.

    Call only while holding the run's lock (:func:`facedyn.lock.hold`), as training does.
    """
    run_dir = Path(run_dir)
    return clean_temporaries(run_dir, run_dir / CHECKPOINTS)


def has_train_state(run_dir: str | Path) -> bool:
    """Whether the run finished an epoch: a resumed run continues from it (:func:`load_train_state`)."""
    return _train_state_path(run_dir).is_file() and (Path(run_dir) / CHECKPOINTS / "last.safetensors").is_file()


def save_train_state(run_dir: str | Path, state: dict[str, Any]) -> None:
    """The resume point (``last.state.pt``): weights, optimiser states, counters and RNG states of the last epoch."""
    with atomic_path(_train_state_path(run_dir)) as tmp:
        torch.save(state, tmp)


def load_train_state(run_dir: str | Path, device: torch.device) -> dict[str, Any] | None:
    """The saved training state, or None when the run has not finished an epoch yet."""
    if not has_train_state(run_dir):
        return None
    path = _train_state_path(run_dir)
    try:
        return torch.load(path, map_location=device, weights_only=False)
    except Exception as e:
        raise CheckpointError(f"{path}: unreadable ({type(e).__name__}); delete the run or train without --resume") \
            from None


# -- metrics -----------------------------------------------------------------------------------------

def write_metrics(run_dir: str | Path, rows: list[dict[str, Any]]) -> None:
    """``metrics.csv``: one row per epoch, the union of all rows' keys as columns."""
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with atomic_path(Path(run_dir) / METRICS_FILE) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow(r)


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of ``metrics.csv`` (numbers parsed; empty cells left out of their row), ``[]`` when absent."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    with open(path) as f:
        return [{k: _num(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]


def _num(v: str) -> Any:
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def onnx_path(run_dir: str | Path, weights: str = "best") -> Path:
    """Where a run's network exported to ONNX is kept: ``RUN/onnx/<weights>.onnx``; for a shipped model (whose
    directory is part of the installed package) ``$XDG_CACHE_HOME/facedyn/onnx/<name>/<weights>.onnx``
    (``~/.cache`` by default)."""
    if is_shipped(run_dir):
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        return cache / "facedyn" / "onnx" / Path(run_dir).name / f"{weights}.onnx"
    return Path(run_dir) / "onnx" / f"{weights}.onnx"


def figure_path(run_dir: str | Path, name: str) -> Path:
    """Where a run's figure ``name`` (``.png``) goes."""
    return Path(run_dir) / FIGURES / name


# -- finding runs ------------------------------------------------------------------------------------

#: Models that ship inside the package (``make models``), one run directory each, taken by name wherever a
#: run is: ``facedyn.load("dr-t5")``, ``--run dr-t5``, ``export onnx dr-t5``, ``--config dr-t5``, ...
SHIPPED_DIR = Path(__file__).resolve().parent / "assets" / "models"


def shipped_models() -> list[str]:
    """Names of the models shipped inside the package."""
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.parent.name for p in SHIPPED_DIR.glob(f"*/{CONFIG_FILE}"))


def is_shipped(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` is one of the shipped models' directories (read-only: never write into it)."""
    return Path(run_dir).resolve().parent == SHIPPED_DIR.resolve()


def names_shipped(run: str | Path) -> bool:
    """Whether ``run`` is a shipped model's name (a bare name, no directory part, that is not an existing path)."""
    p = Path(run)
    return len(p.parts) == 1 and not p.exists() and (SHIPPED_DIR / p.name / CONFIG_FILE).is_file()


def resolve_run(run: str | Path) -> Path:
    """The run directory ``run`` names: a directory made by ``facedyn train``, or a shipped model's name.

    The one resolver of every command and function that takes a run. A path that exists wins over a shipped
    name; a bare name (no directory part) that is not a path is looked up among :func:`shipped_models`.

    Raises:
        CheckpointError: neither (naming the shipped models), or a directory without a readable record.
    """
    p = Path(run)
    if is_run(p):
        return p
    if names_shipped(p):
        return SHIPPED_DIR / p.name
    if p.exists():
        read_record(p)  # raises the precise error
    names = shipped_models()
    raise CheckpointError(f"{run}: no such run directory" + (f" or shipped model (shipped: {', '.join(names)})"
                                                             if names else "") + "; give a directory made by "
                          "`facedyn train`")


def expand_runs(paths: list[Path] | list[str]) -> list[Path]:
    """Run directories (or shipped models' names: :func:`resolve_run`), descending one level into sweep folders
    (``OUT/T3_S1/config.json``)."""
    out: list[Path] = []
    for r in map(Path, paths):
        if not is_run(r) and r.is_dir() and any(r.glob(f"*/{CONFIG_FILE}")):
            out.extend(sorted(p.parent for p in r.glob(f"*/{CONFIG_FILE}")))
        else:
            out.append(resolve_run(r))
    return out


def ensure_run_dir(run_dir: str | Path) -> Path:
    """Create the run directory and its ``checkpoints/`` (OutputError when it cannot be written)."""
    run_dir = Path(run_dir)
    try:
        (run_dir / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{run_dir}: cannot write the run here ({e.strerror}); choose a writable --out") from None
    return run_dir
