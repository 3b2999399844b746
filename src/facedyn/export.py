"""ONNX export of any run's network, and an onnxruntime model with the :class:`~facedyn.api.FaceModel` interface.

``export_onnx(run, "model.onnx")`` traces the network's ``encode`` and ``outputs`` for aligned faces
``(N, C, H, W)`` float in [0, 1] (dynamic batch) into one graph whose outputs are ``encode`` then each
named output, and stores the run's record (method, config, data spec) in the model's metadata. An
:class:`OnnxModel` reads that back, so ``facedyn.analyze``/``infer`` align faces the same way whichever
engine runs the network (``--engine onnx``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facedyn import runs
from facedyn.api import FaceModel, load
from facedyn.atomic import atomic_path
from facedyn.errors import CheckpointError, ConfigError, FacedynError
from facedyn.method import DataSpec

METADATA_KEY = "facedyn_run"


class _Graph(nn.Module):
    """``images -> (encode, *outputs)``: what the ONNX graph computes."""

    def __init__(self, net: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.net = net
        self.names = names

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outs = self.net.outputs(images)
        return (self.net.encode(images), *(outs[n] for n in self.names))


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise FacedynError("ONNX export needs the onnx and onnxscript packages: pip install 'onnx==1.23.2' "
                           "'onnxscript==0.7.2'") from None


def export_onnx(run: str | Path | FaceModel, out: str | Path, weights: str = "best") -> Path:
    """Write the network of ``run`` as ONNX to ``out`` (atomically); returns ``out``.

    Inputs: ``images`` ``(N, C, size, size)`` float32 in [0, 1]; outputs: ``encode`` ``(N, D)`` and the
    network's named outputs. The run's record goes into the model's metadata (``facedyn_run``).
    """
    _require_onnx()
    import onnx

    model = run if isinstance(run, FaceModel) else load(run, weights=weights, device="cpu")
    net = model.net.cpu().eval()
    x = torch.rand(2, model.data.channels, model.size, model.size)
    with torch.no_grad():
        names = tuple(net.outputs(x).keys())
    graph = _Graph(net, names).eval()
    out = Path(out)
    if out.suffix != ".onnx":
        raise ConfigError(f"{out}: give a path ending in .onnx")
    record = {**asdict(runs.read_record(model.run)), "label": model.label, "embedding_output": model.embedding_output}
    with atomic_path(out) as tmp:
        prog = torch.onnx.export(graph, (x,), input_names=["images"], output_names=["encode", *names],
                                 dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1)}}, dynamo=True,
                                 verbose=False)
        proto = prog.model_proto
        entry = proto.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, json.dumps(record)
        onnx.save(proto, str(tmp))
    return out


def cached_onnx(run: str | Path, weights: str = "best") -> Path:
    """The run's network exported to ``RUN/onnx/<weights>.onnx`` (exported again when the checkpoint is newer;
    a shipped model's into the user's cache, see :func:`facedyn.runs.onnx_path`)."""
    run = runs.resolve_run(run)
    path = runs.onnx_path(run, weights)
    ckpt = runs.checkpoint_path(run, weights)
    if not path.is_file() or path.stat().st_mtime < ckpt.stat().st_mtime:
        export_onnx(run, path, weights=weights)
    return path


class OnnxModel:
    """An exported network run by onnxruntime, with FaceModel's ``encode``/``outputs`` and its settings.

    ``threads``: onnxruntime's threads per call (default: its own choice, one per core, which spin while they
    wait); a number also stops them spinning, for a network that runs in a thread beside other work
    (``facedyn.analyze`` runs its networks with :data:`facedyn.analysis.NET_THREADS`).
    """

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise FacedynError("--engine onnx needs onnxruntime: pip install 'onnxruntime==1.31.1'") from None
        self.path = Path(path)
        if not self.path.is_file():
            raise CheckpointError(f"{self.path}: no such ONNX model; make one with `facedyn export onnx RUN`")
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = opts.inter_op_num_threads = int(threads)
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise CheckpointError(f"{self.path}: not a loadable ONNX model ({type(e).__name__})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise CheckpointError(f"{self.path}: not exported by facedyn (no run record); export with "
                                  "`facedyn export onnx RUN`")
        self.record = json.loads(meta[METADATA_KEY])
        self.data = DataSpec.from_dict(self.record["data"])
        self.names = [o.name for o in self.session.get_outputs()]
        self.run = self.path

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def name(self) -> str:
        return str(self.record["method"])

    @property
    def label(self) -> str:
        return str(self.record.get("label", self.name))

    @property
    def embedding_output(self) -> str | None:
        return self.record.get("embedding_output")

    def __repr__(self) -> str:
        return f"OnnxModel({self.name!r}, path={str(self.path)!r}, size={self.size})"

    def _inputs(self, images: Any) -> np.ndarray:
        if isinstance(images, torch.Tensor):
            return images.float().numpy()
        arr = np.asarray(images)
        if arr.dtype == np.uint8:
            arr = arr[None] if arr.ndim == 3 else arr
            return (arr.transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
        return arr.astype(np.float32)

    def _run(self, images: Any) -> list[np.ndarray]:
        return self.session.run(None, {"images": np.ascontiguousarray(self._inputs(images))})

    def encode(self, images: Any, aligned: bool | None = None) -> torch.Tensor:
        """``(N, D)`` representation of aligned faces (float ``(N, C, H, W)`` in [0, 1] or uint8 crops)."""
        return torch.from_numpy(self._run(images)[0])

    def outputs(self, images: Any, aligned: bool | None = None) -> dict[str, torch.Tensor]:
        """The network's named outputs, as the torch model's :meth:`~facedyn.api.FaceModel.outputs`."""
        res = self._run(images)
        return {n: torch.from_numpy(v) for n, v in zip(self.names[1:], res[1:], strict=True)}


_SHARED: dict[tuple[str, int | None], tuple[int, OnnxModel]] = {}
_SHARED_LOCK = threading.Lock()


def shared_onnx(path: str | Path, threads: int | None = None) -> OnnxModel:
    """The :class:`OnnxModel` of ``path`` with ``threads``, made once per process (and again, replacing it, when
    the file changes) and shared by its callers: ``facedyn.analyze`` on video after video creates the onnxruntime
    session (~30 ms) and fills its memory arena once, not per video. A session runs calls from several threads."""
    p = Path(path)
    try:
        key, version = (str(p.resolve()), threads), p.stat().st_mtime_ns
    except OSError:
        return OnnxModel(p, threads)  # its own error for a missing file
    with _SHARED_LOCK:
        got = _SHARED.get(key)
        if got is None or got[0] != version:
            got = _SHARED[key] = (version, OnnxModel(p, threads))
    return got[1]
