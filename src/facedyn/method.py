"""What a facedyn method is: one class, registered once by name.

A method couples a typed config (a :class:`~facedyn.config.TrainConfig` subclass), the frame set it
trains on, the network users get back from ``facedyn.load`` and the losses and validation metrics the
training loop needs. Adding a method = one module with one :func:`register_method` class; no edit to
the CLI, the loop, the run format, ``load`` or ``analyze``::

    @register_method("toy")
    class Toy(Method):
        \"\"\"One line of help for `facedyn train toy`.\"\"\"
        Config = ToyConfig            # dataclass extending TrainConfig
        frames = "frame"              # frame set: window | pair | sources | frame
        selection = Selection("mse", "min")

        def build(self) -> Network: ...                       # the inference network
        def losses(self, batch, group="main") -> dict: ...    # {"loss": ..., other named terms}
        def validation_step(self, batch) -> dict: ...         # per-sample values, (B, ...) tensors

The inference network is a :class:`Network`: a ``torch.nn.Module`` with ``encode(images) -> (N, D)``
(images ``(N, C, H, W)`` float in [0, 1], aligned as the run's dataset was) and ``outputs(images) ->
dict`` (its named per-face outputs: ``(N,)`` scalars, ``(N, K)`` vectors or ``(N, C, H, W)`` maps),
plus whatever method-specific calls it offers (``dr(images)``, ``flow(src, tgt)``, ...).

Registered methods live in :mod:`facedyn.methods`; this module only defines the contract, so that
method modules can import it without importing each other.
"""

from __future__ import annotations

import contextlib
from abc import ABC, ABCMeta, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import Dataset

from facedyn.config import TrainConfig
from facedyn.errors import ConfigError

#: Frame sets a method can train on (samplers in :mod:`facedyn.data.windows`).
FRAME_SETS = ("window", "pair", "sources", "frame")


@dataclass(frozen=True)
class Selection:
    """How the loop picks ``best.safetensors``.

    Attributes:
        metric: a key of :meth:`Method.validation_metrics`.
        mode: ``"max"`` or ``"min"``.
        initial: whether the untrained weights (the epoch-0 validation) may be selected. True where the
            untrained network is a meaningful baseline to beat (the DR starts at the still-image floor);
            False where a method is by definition a trained network (the DI-target baselines).
    """

    metric: str
    mode: str = "max"
    initial: bool = True

    def better(self, value: float, best: float | None) -> bool:
        if best is None:
            return True
        return value > best if self.mode == "max" else value < best


@dataclass(frozen=True)
class DataSpec:
    """What a run records of its dataset, and what a loaded model needs to prepare new faces the same way.

    ``size``: crop side in pixels; ``mask``: pixels outside the landmarks' hull zeroed; ``align``:
    ``"similarity"`` (to ``template``) or another alignment; ``detector``: how landmarks were found;
    ``channels``: input channels of the network (3 for an RGB face).
    """

    size: int
    mask: bool = True
    align: str = "similarity"
    template: str = ""
    detector: str = ""
    channels: int = 3

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSpec:
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in keys})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Network(nn.Module, metaclass=ABCMeta):
    """Base of the networks ``facedyn.load`` returns: ``encode`` and named ``outputs``.

    ``output_names`` lists the keys of :meth:`outputs` (so ``analyze`` can plan its columns);
    ``embedding_output`` names the one that holds :meth:`encode`'s vector, if any (``analyze`` tabulates it
    as ``<run>_0..D-1``).
    """

    output_names: tuple[str, ...] = ()
    embedding_output: str | None = None

    @abstractmethod
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` float in [0, 1] → ``(N, D)`` float, the method's representation."""

    def outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named per-face outputs: ``(N,)``, ``(N, K)`` or ``(N, C, H, W)`` tensors."""
        return {}


class Method(ABC):
    """Base class of every method (see the module docstring for the contract).

    Subclasses set ``Config``, ``frames``, ``selection`` and define :meth:`build`, :meth:`losses`
    and :meth:`validation_step`; everything else has a default. ``self.cfg`` is the config,
    ``self.data`` the :class:`DataSpec`, ``self.net`` the network from :meth:`build`.
    """

    name: ClassVar[str] = ""
    Config: ClassVar[type[TrainConfig]] = TrainConfig
    frames: ClassVar[str] = "frame"
    selection: ClassVar[Selection] = Selection("loss", "min")
    #: the method learns head motion between frames (TCAE, FAb-Net): crops that keep it (``prepare --align box``)
    #: are its data; on similarity-aligned crops training warns that roll, scale and shift were removed
    learns_head_motion: ClassVar[bool] = False

    def __init__(self, cfg: TrainConfig, data: DataSpec) -> None:
        if not isinstance(cfg, self.Config):
            raise ConfigError(f"method {self.name!r} needs a {self.Config.__name__}, got {type(cfg).__name__}")
        self.cfg: Any = cfg
        self.data = data
        self.net: Network = self.build()

    # -- what every method defines ---------------------------------------------------------------
    @abstractmethod
    def build(self) -> Network:
        """The inference network (registered for checkpoints as module ``"net"``)."""

    @abstractmethod
    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        """Named losses of one batch for optimiser ``group``; ``"loss"`` is back-propagated."""

    @abstractmethod
    def validation_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Per-sample validation values ``(B, ...)``; the loop concatenates them over the whole set."""

    # -- defaults a method may override ----------------------------------------------------------
    def validation_metrics(self, outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        """Whole-set metrics from the concatenated :meth:`validation_step` values (default: means)."""
        return {k: float(v.double().mean()) for k, v in outputs.items() if v.numel()}

    def evaluate(self, dataset: Dataset, batch_size: int = 16, device: torch.device | None = None,
                 workers: int = 0, max_batches: int | None = None,
                 autocast: contextlib.AbstractContextManager[Any] | None = None) -> dict[str, float]:
        """Whole-set metrics of the current networks on ``dataset``: :meth:`validation_step` on every batch
        (no gradients; the caller sets eval mode), values concatenated, then :meth:`validation_metrics`."""
        from torch.utils.data import DataLoader

        device = device or next(self.net.parameters()).device
        parts: dict[str, list[torch.Tensor]] = {}
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
        with torch.no_grad(), autocast or contextlib.nullcontext():
            for bi, batch in enumerate(loader):
                if max_batches is not None and bi >= max_batches:
                    break
                for k, v in self.validation_step(move_to(batch, device)).items():
                    parts.setdefault(k, []).append(v.detach().float().cpu())
        return self.validation_metrics({k: torch.cat(v) for k, v in parts.items() if v})

    def dataset(self, store: Any, split: str, seed: int = 0) -> Dataset:
        """The frame set of ``split`` (``train``, ``val``, ``test`` or ``all``) of a clip store.

        The default builds :attr:`frames` from the config's fields: ``window`` uses ``T``, ``S``
        (validation on every 2nd centre frame); ``pair`` ``min_gap_s``, ``max_gap_s``; ``sources``
        also ``n_sources``; ``frame`` ``label_columns`` when the config has it.
        """
        from facedyn.data import windows as fs

        c = self.cfg
        sp = None if split == "all" else split
        if self.frames == "window":
            return fs.WindowDataset(store, c.T, c.S, split=sp, every=1 if split == "train" else 2)
        if self.frames == "pair":
            return fs.PairDataset(store, c.min_gap_s, c.max_gap_s, split=sp, seed=seed)
        if self.frames == "sources":
            return fs.SourcesDataset(store, c.n_sources, c.min_gap_s, c.max_gap_s, split=sp, seed=seed)
        if self.frames == "frame":
            return fs.FrameDataset(store, split=sp, label_columns=getattr(c, "label_columns", None) or None)
        raise ConfigError(f"method {self.name!r}: unknown frame set {self.frames!r}; use one of {FRAME_SETS}")

    def setup(self, train_set: Dataset, run_dir: Path) -> TrainConfig:
        """Data-dependent initialisation before training (e.g. a margin calibrated on training data).

        Returns the resolved config that the run records (the default: ``self.cfg`` unchanged).
        """
        return self.cfg

    def train_modules(self) -> dict[str, nn.Module]:
        """Every module whose weights are checkpointed (``"net"`` first; frozen helpers allowed)."""
        return {"net": self.net}

    def param_groups(self) -> dict[str, list[dict[str, Any]]]:
        """Optimisers, stepped in this order each step, each a list of torch param groups.

        A group may carry ``"lr_scale"`` (a multiple of the config's ``lr``; default 1).
        """
        return {"main": [{"params": [p for p in self.net.parameters() if p.requires_grad]}]}

    def use_modules(self, modules: dict[str, nn.Module]) -> None:
        """Point the method's attributes at ``modules`` (the loop's DDP wrappers, or the plain modules).

        The default sets ``self.<name>`` for every name of :meth:`train_modules`.
        """
        for k, m in modules.items():
            setattr(self, k, m)

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        """Hook before epoch ``epoch`` (1-based) of ``epochs``: schedules, curricula."""
        return None

    def on_step(self, step: int, total_steps: int) -> None:
        """Hook before optimiser step ``step`` (0-based) of ``total_steps``."""
        return None

    def label(self) -> str:
        """How this run is named in result tables (default: the method name)."""
        return self.name

    def record(self) -> dict[str, Any]:
        """Extra facts the run's config.json records (what a reader needs to interpret the run)."""
        return {}


def move_to(batch: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Tensors of a (nested) batch moved to ``device``; with ``channels_last`` 4-D tensors ``(B, C, H, W)`` are
    stored NHWC (the values and shapes are unchanged)."""
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        return batch.contiguous(memory_format=torch.channels_last) if channels_last and batch.dim() == 4 else batch
    if isinstance(batch, dict):
        return {k: move_to(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(move_to(v, device, channels_last) for v in batch)
    return batch


_REGISTRY: dict[str, type[Method]] = {}


def register_method(name: str) -> Any:
    """Class decorator: register a :class:`Method` subclass under ``name`` (``facedyn train <name>``)."""

    def deco(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register_method({name!r}) needs a Method subclass")
        if cls.frames not in FRAME_SETS:
            raise TypeError(f"method {name!r}: frames must be one of {FRAME_SETS}, got {cls.frames!r}")
        old = _REGISTRY.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise TypeError(f"method name {name!r} is taken by {old.__module__}.{old.__qualname__}")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def registered() -> Iterator[tuple[str, type[Method]]]:
    """(name, class) of the methods registered so far (see :func:`facedyn.methods.available`)."""
    return iter(sorted(_REGISTRY.items()))


def lookup(name: str) -> type[Method] | None:
    return _REGISTRY.get(name)
