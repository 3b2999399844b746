"""Python API: load any trained run as a model, evaluate it on a dataset.

``facedyn.load(run)`` works for every registered method and returns a :class:`FaceModel`:

* ``model.encode(images) -> (N, D)``: the method's representation (the flattened DR, TCAE's AU
  embedding, FAb-Net's embedding), images ``(N, 3, H, W)`` float in [0, 1] aligned as the run's
  dataset was (or uint8 faces, or raw photos, which it detects and aligns itself);
* ``model.outputs(images) -> dict``: the network's named per-face outputs (what ``analyze`` tabulates);
* the network's own calls, e.g. ``model.dr(images)`` for a DR run, with the same input handling;
* ``model.net``, ``model.cfg``, ``model.data`` (crop size, mask, alignment), ``model.method``.

``facedyn.load(run, weights="init")`` is the same network at its initialisation (the baseline every
probe compares against); ``weights="last"`` the latest epoch; ``"best"`` (default) the selected one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facedyn import methods, runs
from facedyn.config import from_record
from facedyn.device import resolve_device
from facedyn.errors import CheckpointError, ConfigError, NoFaceError
from facedyn.method import DataSpec, Method

#: The shipped model used when no run is given (``facedyn infer IMAGE``, ``facedyn.analyze(video)``).
DEFAULT_MODEL = "dr-t5"
#: Shipped models and the one run resolver live in :mod:`facedyn.runs` (re-exported here).
SHIPPED_DIR = runs.SHIPPED_DIR
shipped_models = runs.shipped_models
resolve_run = runs.resolve_run


def default_runs() -> list[str]:
    """``[DEFAULT_MODEL]`` when this install ships it; ConfigError saying what to give otherwise."""
    if DEFAULT_MODEL not in shipped_models():
        raise ConfigError(f"no run given and this install ships no {DEFAULT_MODEL!r} model; give --run RUN (a "
                          "directory made by `facedyn train`)")
    return [DEFAULT_MODEL]


def build_method(record: runs.RunRecord) -> Method:
    """The method object of a run record (its network freshly built, weights not loaded)."""
    cls = methods.import_method(record.method, record.module)
    cfg = from_record(cls.Config, record.config)
    return cls(cfg, DataSpec.from_dict(record.data))


class FaceModel:
    """A trained network plus what it needs to prepare faces (see the module docstring)."""

    def __init__(self, method: Method, run: Path, weights: str, device: torch.device) -> None:
        self.method = method
        self.run = run
        self.weights = weights
        self.device = device
        self.net = method.net.to(device).eval()
        self._landmarker: Any = None

    @property
    def cfg(self) -> Any:
        return self.method.cfg

    @property
    def data(self) -> DataSpec:
        return self.method.data

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def name(self) -> str:
        """The method's name (``dr``, ``unet_mse``, ...)."""
        return self.method.name

    @property
    def label(self) -> str:
        """How the run is named in result tables (``dr``, ``unet_mse-di``, ...)."""
        return self.method.label()

    @property
    def embedding_output(self) -> str | None:
        """The key of :meth:`outputs` that holds :meth:`encode`'s vector (None: no such output, e.g. a DR)."""
        return getattr(self.net, "embedding_output", None)

    def __repr__(self) -> str:
        return f"FaceModel({self.name!r}, run={str(self.run)!r}, weights={self.weights!r}, size={self.size})"

    # -- inputs ------------------------------------------------------------------------------------
    def align(self, image: np.ndarray) -> np.ndarray:
        """Raw RGB uint8 ``(H, W, 3)`` → the largest face aligned as the run's data, uint8 ``(size, size, 3)``."""
        from facedyn.data.faces import FaceLandmarker, align_face

        if self.data.align != "similarity":
            raise ConfigError(f"this run's data were aligned with {self.data.align!r}; give faces aligned that way")
        if self._landmarker is None:
            self._landmarker = FaceLandmarker()
        found = self._landmarker.detect_all(image)  # a full scan, largest face first (as analyze scans stills)
        if not found:
            raise NoFaceError("no face found in the image; give a photo with a visible, roughly frontal face")
        return align_face(image, found[0], size=self.size, mask=self.data.mask).image

    def to_input(self, images: Any, aligned: bool | None = None) -> torch.Tensor:
        """Images as the network's input, float ``(N, C, size, size)`` in [0, 1] on the CPU.

        Accepts a float tensor ``(N, C, H, W)``/``(C, H, W)`` in [0, 1] of aligned faces; uint8 arrays
        ``(N, H, W, 3)``/``(H, W, 3)`` or a list of them: aligned faces at the model's size are used as
        they are, anything else is a raw photo whose largest face is detected and aligned
        (``aligned=True``/``False`` forces either reading).
        """
        if isinstance(images, torch.Tensor):
            x = images.float()
            if x.ndim == 3:
                x = x[None]
            if x.ndim != 4 or x.shape[1] != self.data.channels or tuple(x.shape[-2:]) != (self.size, self.size):
                raise ConfigError(f"tensor input must be (N, {self.data.channels}, {self.size}, {self.size}), "
                                  f"got {tuple(x.shape)}")
            return x
        arr = images if isinstance(images, list | tuple) else np.asarray(images)
        items = list(arr) if isinstance(arr, list | tuple) or np.asarray(arr).ndim == 4 else [arr]
        out = []
        for a in items:
            a = np.asarray(a)
            if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
                raise ConfigError(f"images must be RGB uint8 (H, W, 3), got {a.dtype} {a.shape}")
            is_aligned = aligned if aligned is not None else a.shape[:2] == (self.size, self.size)
            out.append(a if is_aligned else self.align(a))
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0

    # -- running -----------------------------------------------------------------------------------
    @torch.no_grad()
    def _batched(self, fn: Callable[[torch.Tensor], Any], images: Any, batch_size: int,
                 aligned: bool | None) -> list[Any]:
        x = self.to_input(images, aligned)
        return [fn(x[i:i + batch_size].to(self.device)) for i in range(0, len(x), batch_size)]

    def encode(self, images: Any, batch_size: int = 64, aligned: bool | None = None) -> torch.Tensor:
        """The representation ``(N, D)`` float (CPU) of ``N`` faces (see :meth:`to_input` for inputs)."""
        return torch.cat([e.float().cpu() for e in self._batched(self.net.encode, images, batch_size, aligned)])

    def outputs(self, images: Any, batch_size: int = 64, aligned: bool | None = None) -> dict[str, torch.Tensor]:
        """The network's named outputs for ``N`` faces, each ``(N, ...)`` float on the CPU."""
        parts = self._batched(self.net.outputs, images, batch_size, aligned)
        return {k: torch.cat([p[k].float().cpu() for p in parts]) for k in (parts[0] if parts else {})}

    def __call__(self, images: Any, batch_size: int = 64, aligned: bool | None = None) -> torch.Tensor:
        """The network's forward pass on ``N`` faces (for a DR run: the DRs ``(N, 3, H, W)``)."""
        return torch.cat([y.float().cpu() for y in self._batched(self.net, images, batch_size, aligned)])

    def __getattr__(self, name: str) -> Any:
        """The network's own calls (``model.dr(images)``, ``model.flow(src, tgt)``), with inputs
        converted by :meth:`to_input` and outputs on the CPU."""
        if name.startswith("_") or "net" not in self.__dict__:
            raise AttributeError(name)
        fn = getattr(self.net, name, None)
        if not callable(fn) or isinstance(fn, torch.nn.Module):
            raise AttributeError(f"{type(self.net).__name__} has no method {name!r}")

        @torch.no_grad()
        def call(*images: Any) -> Any:
            out = fn(*(self.to_input(x).to(self.device) for x in images))
            return _to_cpu(out)

        return call


def _to_cpu(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.float().cpu()
    if isinstance(out, dict):
        return {k: _to_cpu(v) for k, v in out.items()}
    if isinstance(out, list | tuple):
        return type(out)(_to_cpu(v) for v in out)
    return out


def load(run: str | Path, weights: str = "best", device: str | torch.device = "auto") -> FaceModel:
    """Load a run directory (or a shipped model's name) of any registered method.

    ``weights``: ``"best"`` (the selected checkpoint), ``"last"`` or ``"init"`` (the network at its
    initialisation, before any training step; where the run has no ``init.safetensors``, as the shipped
    models, rebuilt from the run's seed, or read from the weights its ``init_from`` names).
    """
    path = resolve_run(run)
    rec = runs.read_record(path)
    dev = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rec.config.get("seed", 0)))  # what the trainer did before building
        method = build_method(rec)
    if weights != "init" or (path / runs.CHECKPOINTS / "init.safetensors").is_file():
        runs.load_weights(runs.checkpoint_path(path, weights), {"net": method.net})
    elif rec.config.get("init_from"):  # a run without its init checkpoint that started from other weights (dr-t9)
        start = runs.init_weights_path(rec.config["init_from"], rec.config.get("fold"))
        if rec.init_sha256 and runs.file_sha256(start) != rec.init_sha256:
            raise CheckpointError(f"{path}: started from {rec.config['init_from']!r}, whose weights ({start}) have "
                                  "changed since; its initial weights are gone: use weights='best' or 'last'")
        runs.load_weights(start, {"net": method.net}, missing_ok=True)
    # else: a run shipped without its init checkpoint (the shipped models): the network just built from the run's
    # seed is the one the trainer built and saved as init (same seed, same construction)
    return FaceModel(method, path, weights, dev)


def evaluate(run: str | Path, data: str | Path, split: str = "test", weights: str = "best",
             device: str | torch.device = "auto", batch_size: int = 32) -> dict[str, float]:
    """The method's own whole-set metrics (its validation metrics) of a run on a split of a dataset.

    ``split``: ``train``, ``val``, ``test`` (people of that split, with the run's fold if it used one)
    or ``all``.
    """
    from facedyn.data.store import ClipDataset

    model = load(run, weights=weights, device=device)
    fold = getattr(model.cfg, "fold", None)
    store = ClipDataset(data, fold=fold) if fold is not None else ClipDataset(data)
    ds = model.method.dataset(store, split, seed=int(getattr(model.cfg, "seed", 0)))
    if len(ds) == 0:  # type: ignore[arg-type]
        raise ConfigError(f"{data}: no samples in split {split!r} for {model.name}")
    return model.method.evaluate(ds, batch_size=batch_size, device=model.device)
