"""``facedyn.analyze``: every face of a video or image through trained models, as one table.

    import facedyn
    df = facedyn.analyze("interview.mp4", runs=["runs/dr"])
    df[df.face_id == 0]                      # one person's rows
    df.loc[0, "dr"]                          # the DR of that face, (3, 64, 64) float32

Frames are decoded lazily (PyAV), every face is detected (dlib HOG + 68 landmarks) and keeps a
``face_id`` across frames by box overlap, each face is aligned as each run's dataset was (crop size,
mask, template) and every model's named outputs are computed. Columns: ``frame, timestamp, face_id,
success, x_0..x_67, y_0..y_67`` (OpenFace-style, landmarks in source pixels), then the outputs: a
scalar per face is one column, a vector of K values ``name_0..name_{K-1}``, an image-valued output (a
DR) one column of arrays (``arrays=False`` leaves those out). A frame without a face gives one row
with ``face_id`` -1, ``success`` 0 and NaN landmarks. With several runs, output columns are prefixed
by each run's label (``dr.dr``, ``unet_mse-di.dr``).

:func:`iter_faces` yields the same information frame by frame without keeping anything, for long
videos and for writers such as ``facedyn infer``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from facedyn.api import FaceModel, load
from facedyn.data import video as video_io
from facedyn.errors import ConfigError, InputNotFoundError

#: Columns every table starts with (OpenFace's names).
BASE_COLUMNS = ["frame", "timestamp", "face_id", "success",
                *[f"x_{i}" for i in range(68)], *[f"y_{i}" for i in range(68)]]


@dataclass
class FaceResult:
    """One face in one frame (or the empty record of a frame without a face: ``face_id`` -1).

    ``landmarks``: ``(68, 2)`` float32 in source pixels (NaN without a face); ``faces``: the aligned
    crop per data spec ``(size, mask)``, uint8 ``(size, size, 3)``; ``outputs``: per column prefix the
    face's output as a NumPy array (``()`` scalar, ``(K,)`` vector or ``(C, H, W)`` map).
    """

    frame: int
    timestamp: float
    face_id: int
    landmarks: np.ndarray
    faces: dict[tuple[int, bool], np.ndarray] = field(default_factory=dict)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.face_id >= 0

    def row(self, arrays: bool = True) -> dict[str, Any]:
        """This face as a table row (:data:`BASE_COLUMNS`, then the outputs)."""
        lm = self.landmarks.astype(np.float64)
        r: dict[str, Any] = {"frame": self.frame, "timestamp": round(self.timestamp, 4), "face_id": self.face_id,
                             "success": int(self.success)}
        r.update({f"x_{i}": lm[i, 0] for i in range(68)})
        r.update({f"y_{i}": lm[i, 1] for i in range(68)})
        for name, v in self.outputs.items():
            if v.ndim == 0:
                r[name] = float(v)
            elif v.ndim == 1:
                r.update({f"{name}_{k}": float(x) for k, x in enumerate(v)})
            elif arrays:
                r[name] = v
        return r


def _load_one(run: str | Path | Any, device: str | torch.device, engine: str) -> Any:
    if not isinstance(run, str | Path):
        return run  # an already loaded model (FaceModel or OnnxModel)
    if engine == "onnx" or str(run).endswith(".onnx"):
        from facedyn.export import OnnxModel, cached_onnx

        return OnnxModel(run if str(run).endswith(".onnx") else cached_onnx(run))
    if engine != "torch":
        raise ConfigError(f"--engine must be torch or onnx, got {engine!r}")
    return load(run, device=device)


def load_models(runs: Sequence[str | Path | Any], device: str | torch.device, engine: str = "torch"
                ) -> dict[str, Any]:
    """Loaded models by column prefix (no prefix for a single run). ``engine="onnx"`` runs each network with
    onnxruntime (exported once into the run directory); ``.onnx`` files are run with onnxruntime anyway."""
    if not runs:
        from facedyn.api import default_runs

        runs = default_runs()
    loaded = [_load_one(r, device, engine) for r in runs]
    for m in loaded:
        if m.data.align != "similarity":
            raise ConfigError(f"{m.run}: trained on {m.data.align!r}-aligned faces; analyze aligns faces to the "
                              "similarity template only")
    if len(loaded) == 1:
        return {"": loaded[0]}
    out: dict[str, FaceModel] = {}
    for m in loaded:
        key = m.label if m.label not in out else f"{m.label}~{len(out)}"
        out[key] = m
    return out


def _frames(source: Path) -> tuple[Iterator[tuple[np.ndarray, float]], bool]:
    """(frames with timestamps, is a still image)."""
    if not source.exists():
        raise InputNotFoundError(f"{source}: no such image or video")
    if source.is_file() and source.suffix.lower() in video_io.IMAGE_EXTS:
        return iter([(video_io.read_image(source), 0.0)]), True
    return video_io.iter_frames(source), False


def iter_faces(source: str | Path, runs: Sequence[str | Path | Any], device: str | torch.device = "auto",
               every: int = 1, engine: str = "torch") -> Iterator[list[FaceResult]]:
    """For every ``every``-th frame of ``source`` (a video, an image folder or one image), its faces.

    Yields one list per frame: one :class:`FaceResult` per face, by ``face_id`` (or one empty record).
    Nothing is kept between frames but the tracker's last boxes.
    """
    from facedyn.data.faces import MultiFaceTracker, align_face

    models = load_models(runs, device, engine)
    frames, still = _frames(Path(source))
    tracker = MultiFaceTracker(quick=not still)
    specs = sorted({(m.size, m.data.mask) for m in models.values()})
    for i, (frame, t) in enumerate(frames):
        if i % every:
            continue
        found = tracker(frame)
        if not found:
            yield [FaceResult(i, t, -1, np.full((68, 2), np.nan, np.float32))]
            continue
        results = [FaceResult(i, t, f.face_id, np.asarray(f.landmarks, np.float32)) for f in found]
        for size, mask in specs:
            for r in results:
                r.faces[(size, mask)] = align_face(frame, r.landmarks, size=size, mask=mask).image
        for prefix, m in models.items():
            batch = np.stack([r.faces[(m.size, m.data.mask)] for r in results])
            outs = m.outputs(batch, aligned=True)
            for name, v in outs.items():
                col = f"{prefix}.{name}" if prefix else name
                arr = v.numpy()
                for k, r in enumerate(results):
                    r.outputs[col] = arr[k]
        yield results


def analyze(source: str | Path, runs: Sequence[str | Path | Any] = (), device: str | torch.device = "auto",
            arrays: bool = True, every: int = 1, engine: str = "torch") -> pd.DataFrame:
    """One row per face per frame of ``source`` (see the module docstring for the columns).

    ``runs``: run directories, shipped model names or loaded models (default: the shipped ``dr-t5``);
    ``arrays``: keep image-valued outputs (one array per row; a long video's DRs take memory: use
    :func:`iter_faces` to stream);
    ``every``: analyse every k-th frame; ``engine``: ``torch`` or ``onnx`` (onnxruntime).
    """
    rows = [r.row(arrays) for faces in iter_faces(source, runs, device, every, engine) for r in faces]
    df = pd.DataFrame(rows)
    return df[[*BASE_COLUMNS, *[c for c in df.columns if c not in BASE_COLUMNS]]]
