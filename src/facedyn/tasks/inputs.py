"""What the face tasks (AU intensity, affect) share: the input representation, labels, frame set, networks.

A task is trained on cached representations (:mod:`facedyn.dr.representations`) for speed, but the
network it saves also carries the frozen representation networks (:class:`InputNet`), so
``facedyn.load(run).outputs(faces)`` goes from a still face to the task's outputs as the paper does at
test time (dr-paper.txt §4: "a single face image is used as the input to generate the MDR").

* :class:`TaskConfig`: the fields every task has: ``input`` (``si``, ``sdr``, ``mdr``, ``di``, ``bdi`` or
  a baseline's label), ``labels`` (``store``: the clips' ``labels.csv``; ``proxies``: geometric AU proxies
  from the landmarks, :mod:`facedyn.tasks.proxies`), ``label_columns`` and ``representation`` (the
  resolved sources, filled in when training starts).
* :class:`TaskFrames`: every valid frame with at least one finite label: ``x`` the representation
  ``(C, H, W)``, ``labels`` ``(K,)`` (NaN where unlabelled), ``landmarks`` ``(68, 2)`` crop pixels,
  ``clip``, ``t``.
* :class:`InputNet`: faces ``(B, 3, H, W)`` in [0, 1] → the representation ``(B, C, H, W)``.
* :class:`InputNorm`: per-channel standardisation with statistics of the training set (buffers,
  saved with the weights).
* :class:`TaskMethod`: the shared method logic (frame set, setup, validation values).
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from facedyn.config import TrainConfig, option
from facedyn.data.store import Clip, ClipDataset
from facedyn.data.windows import to_float
from facedyn.dr.representations import IMAGE, Source, build_source_net, load_source_net, read_part, resolve_input
from facedyn.errors import ConfigError, DatasetError
from facedyn.eval.metrics import column_metrics
from facedyn.method import Method, Network
from facedyn.precision import float32_math
from facedyn.tasks.proxies import PROXY_COLUMNS, store_proxies

__all__ = ["LABEL_SOURCES", "InputNet", "InputNorm", "TaskConfig", "TaskFrames", "TaskMethod", "flip_batch", "parts_of"]

#: Where labels come from.
LABEL_SOURCES = ("store", "proxies")
_AU_COLUMN = re.compile(r"^AU\d+$")


@dataclass
class TaskConfig(TrainConfig):
    """Settings every face task shares: the input representation and the labels."""

    input: str = option("si", "Input representation: si (still image), sdr, mdr, di, bdi or a baseline's label "
                              "(unet_mse-di, ...); cache them first with `facedyn represent`.")
    labels: str = option("store", "Labels: store (the clips' labels.csv) or proxies (geometric AU proxies from the "
                                  "landmarks, for footage without annotations).", LABEL_SOURCES)
    label_columns: str = option("", "Comma-separated label columns (default: the task's, found in the data).")
    representation: str = option("", "Resolved input sources (JSON), recorded when training starts; leave empty.")
    input_norm_samples: int = option(256, "Training frames sampled for the per-channel input standardisation.")
    augment: bool = option(True, "Random horizontal flips of training inputs (landmarks mirrored with them).")
    frames_per_subject: int | None = option(None, "Train on at most this many frames per subject (evenly spaced "
                                                  "over their clips), so one long recording does not dominate.")


def parts_of(cfg: TaskConfig) -> list[Source | str]:
    """The resolved parts (``"image"`` or :class:`Source`) recorded in ``cfg.representation``."""
    if not cfg.representation:
        return []
    try:
        raw = json.loads(cfg.representation)
    except json.JSONDecodeError:
        raise ConfigError("--representation is not valid JSON; leave it empty (it is filled in when training "
                          "starts)") from None
    return [IMAGE if p == IMAGE else Source.from_dict(p) for p in raw]


def _parts_json(parts: Sequence[Source | str]) -> str:
    return json.dumps([p if isinstance(p, str) else p.to_dict() for p in parts], sort_keys=True)


def channels_of(parts: Sequence[Source | str]) -> int:
    return sum(3 if isinstance(p, str) else p.channels for p in parts)


# -- labels --------------------------------------------------------------------------------------------------

def columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def au_columns(store: ClipDataset, clips: Sequence[Clip]) -> list[str]:
    """The ``AUxx`` columns of the first labelled clip, in its order."""
    for c in clips:
        df = c.labels
        if df is not None:
            cols = [k for k in df.columns if _AU_COLUMN.match(str(k))]
            if cols:
                return cols
    raise DatasetError(f"{store.path}: no AU columns (AU01, AU12, ...) in the clips' labels; give --label-columns "
                       "or use --labels proxies")


class _Labels:
    """Per-clip label arrays ``(N, K)`` float32 from ``labels.csv`` or the AU proxies."""

    def __init__(self, store: ClipDataset, clips: Sequence[Clip], cols: Sequence[str], source: str) -> None:
        self.cols = list(cols)
        self.arrays: list[np.ndarray] = []
        if source == "proxies":
            bad = [c for c in self.cols if c not in PROXY_COLUMNS]
            if bad:
                raise ConfigError(f"proxy labels have columns {', '.join(PROXY_COLUMNS)}; {', '.join(bad)} is not one")
            prox = store_proxies(store, [c.clip_id for c in clips])
            self.arrays = [prox[c.clip_id][self.cols].to_numpy(np.float32) for c in clips]
            return
        for c in clips:
            df = c.labels
            n = len(c.valid)
            if df is None:
                self.arrays.append(np.full((n, len(self.cols)), np.nan, np.float32))
                continue
            missing = [k for k in self.cols if k not in df.columns]
            if missing:
                raise DatasetError(f"{c.path}: lacks label columns {', '.join(missing)}")
            arr = np.full((n, len(self.cols)), np.nan, np.float32)
            frames = df["frame"].to_numpy(np.int64) if "frame" in df.columns else np.arange(len(df))
            keep = (frames >= 0) & (frames < n)
            arr[frames[keep]] = df.loc[keep, self.cols].to_numpy(np.float32)
            self.arrays.append(arr)


def cap_per_group(index: np.ndarray, groups: np.ndarray, cap: int) -> np.ndarray:
    """Rows of ``index`` ``(M, ...)`` keeping at most ``cap`` per group (evenly spaced, order kept)."""
    if cap < 1:
        raise ConfigError(f"--frames-per-subject must be >= 1, got {cap}")
    keep = np.zeros(len(index), dtype=bool)
    for g in np.unique(groups):
        rows = np.flatnonzero(groups == g)
        if len(rows) > cap:
            rows = rows[np.linspace(0, len(rows) - 1, cap).round().astype(int)]
        keep[rows] = True
    return index[keep]


# -- the frame set -------------------------------------------------------------------------------------------

class TaskFrames(Dataset):
    """Frames of a split with their representation and labels.

    Args:
        store: the clip store.
        split: ``train``/``val``/``test`` or None (every clip).
        parts: ``"image"`` and/or cached :class:`Source` s, stacked along channels in this order.
        label_columns: the ``K`` labels; ``label_source``: ``store`` or ``proxies``.
        frames_per_subject: keep at most this many of each subject's frames, evenly spaced in clip order.

    Items: ``x`` float32 ``(C, H, W)`` (the image in [0, 1], cached parts as stored), ``labels`` float32
    ``(K,)`` (NaN where unlabelled), ``landmarks`` float32 ``(68, 2)`` crop pixels, ``clip`` (index into
    :attr:`clips`), ``t`` frame. Only frames with a face and at least one finite label are used.

    Raises:
        DatasetError: no clip or no labelled frame in the selection; a part not cached.
    """

    def __init__(self, store: ClipDataset, split: str | None, parts: Sequence[Source | str],
                 label_columns: Sequence[str], label_source: str = "store",
                 frames_per_subject: int | None = None) -> None:
        self.store = store
        self.parts = list(parts)
        self.clips = store.clips(split=split)
        if not self.clips:
            raise DatasetError(f"{store.path}: no clips in split {split!r}; check `facedyn info {store.path}`")
        self.label_columns = list(label_columns)
        self._labels = _Labels(store, self.clips, self.label_columns, label_source).arrays
        rows = []
        for ci, c in enumerate(self.clips):
            ok = np.asarray(c.valid, bool) & np.isfinite(self._labels[ci]).any(axis=1)
            rows += [(ci, int(t)) for t in np.flatnonzero(ok)]
        #: int64 ``(M, 2)``: clip number, frame
        self.index = np.asarray(rows, dtype=np.int64).reshape(-1, 2)
        if frames_per_subject is not None and len(self.index):
            self.index = cap_per_group(self.index, np.array([c.subject for c in self.clips])[self.index[:, 0]],
                                       frames_per_subject)
        if not len(self.index):
            raise DatasetError(f"{store.path}: no labelled frame with a face in split {split!r} for "
                               f"{', '.join(self.label_columns)}")
        self._cache: dict[tuple[int, str], np.ndarray] = {}

    @property
    def subjects(self) -> np.ndarray:
        """Subject of every item, ``(M,)`` str."""
        subj = np.array([c.subject for c in self.clips], dtype=object)
        return subj[self.index[:, 0]]

    def labels_array(self) -> np.ndarray:
        """Labels of every item, float32 ``(M, K)``."""
        return np.stack([self._labels[ci][t] for ci, t in self.index]) if len(self.index) else np.zeros((0, 0))

    def _part(self, ci: int, key: str) -> np.ndarray:
        if (ci, key) not in self._cache:
            self._cache[ci, key] = read_part(self.store, key, self.clips[ci].clip_id)
        return self._cache[ci, key]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ci, t = (int(v) for v in self.index[i])
        clip = self.clips[ci]
        xs = [to_float(clip.frames[t]) if isinstance(p, str) else torch.from_numpy(
            np.asarray(self._part(ci, p.key)[t], dtype=np.float32)) for p in self.parts]
        return {"x": torch.cat(xs, dim=0), "labels": torch.from_numpy(self._labels[ci][t].copy()),
                "landmarks": torch.from_numpy(np.asarray(clip.landmarks[t], np.float32)), "clip": ci, "t": t}


# -- networks ------------------------------------------------------------------------------------------------

class InputNet(nn.Module):
    """Faces ``(B, 3, H, W)`` in [0, 1] → the representation ``(B, C, H, W)`` (image and/or frozen DR nets).

    Window dynamic images (``di``/``bdi``) need the neighbouring frames: calling a net with such a part
    raises ConfigError (evaluate those runs on a store, with ``facedyn eval``).
    """

    def __init__(self, parts: Sequence[Source | str]) -> None:
        super().__init__()
        self.kinds: list[str] = []
        nets = {}
        for i, p in enumerate(parts):
            if isinstance(p, str):
                self.kinds.append(IMAGE)
            elif p.net:
                self.kinds.append(f"net{i}")
                nets[f"net{i}"] = build_source_net(p)
            else:
                self.kinds.append(p.label)
        self.nets = nn.ModuleDict(nets)
        for q in self.parameters():
            q.requires_grad_(False)

    def train(self, mode: bool = True) -> InputNet:
        return super().train(False)  # frozen: batch-norm statistics stay as trained

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for k in self.kinds:
            if k == IMAGE:
                out.append(images)
            elif k in self.nets:
                out.append(self.nets[k](images))
            else:
                raise ConfigError(f"this run's input includes the window {k}, which needs the neighbouring frames; "
                                  "evaluate it on a clip store with `facedyn eval`")
        return torch.cat(out, dim=1)


class InputNorm(nn.Module):
    """``(x - mean) / std`` per channel; statistics set by :meth:`fit` and saved with the weights."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Statistics of a sample ``(N, C, H, W)`` over every pixel (std floored at 1e-3)."""
        self.mean.copy_(x.mean(dim=(0, 2, 3), keepdim=True))
        self.std.copy_(x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class TaskNet(Network):
    """Shared shape of the task networks: ``frontend`` (faces → representation), ``norm``, and a head.

    Subclasses define :meth:`predict_rep` (representation ``(B, C, H, W)`` → values ``(B, K)``),
    :meth:`features_rep` (→ ``(B, D)``) and set ``output_key``.
    """

    output_key: str = "pred"

    def __init__(self, parts: Sequence[Source | str], columns: Sequence[str]) -> None:
        super().__init__()
        self.columns = list(columns)
        self.frontend = InputNet(parts)
        self.norm = InputNorm(channels_of(parts))
        self.output_names = (self.output_key,)

    @abstractmethod
    def predict_rep(self, x: torch.Tensor) -> torch.Tensor:
        """Representation ``(B, C, H, W)`` → predicted values ``(B, K)``."""

    @abstractmethod
    def features_rep(self, x: torch.Tensor) -> torch.Tensor:
        """Representation ``(B, C, H, W)`` → the head's features ``(B, D)``."""

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Faces ``(N, 3, H, W)`` in [0, 1] → the head's features ``(N, D)``."""
        return self.features_rep(self.frontend(images))

    def outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Faces → ``{output_key: (N, K)}`` in the order of :attr:`columns`."""
        return {self.output_key: self.predict_rep(self.frontend(images))}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.predict_rep(self.frontend(images))


class TaskMethod(Method):
    """Shared logic of the face tasks (AU intensity, affect): the frame set, setup and validation values.

    Subclasses set ``preset`` (the MDR preset), ``default_columns`` and define :meth:`make_net`,
    :meth:`losses` and :meth:`predict`.
    """

    preset: ClassVar[str] = "au"
    metrics: ClassVar[tuple[str, ...]] = ("icc", "mse")

    @abstractmethod
    def default_columns(self, store: ClipDataset, clips: Sequence[Clip]) -> list[str]:
        """The label columns the task predicts when the run names none (found in ``clips``)."""

    @abstractmethod
    def make_net(self, parts: Sequence[Source | str], cols: Sequence[str]) -> TaskNet:
        """The task's network for input ``parts`` predicting ``cols``."""

    def build(self) -> TaskNet:
        parts = parts_of(self.cfg) or [IMAGE]
        cols = columns(self.cfg.label_columns) or ["?"]
        return self.make_net(parts, cols)

    def dataset(self, store: Any, split: str, seed: int = 0) -> Dataset:
        """Frames of ``split`` with the run's representation (resolved from the store's cache the first time)."""
        sp = None if split == "all" else split
        cfg = self.cfg
        if not cfg.representation:
            parts = resolve_input(store, cfg.input, self.preset)
            cfg = replace(cfg, representation=_parts_json(parts))
        if not cfg.label_columns:
            cols = list(PROXY_COLUMNS) if cfg.labels == "proxies" else self.default_columns(store, store.clips())
            cfg = replace(cfg, label_columns=",".join(cols))
        self.cfg = cfg
        cap = cfg.frames_per_subject if split == "train" else None
        return TaskFrames(store, sp, parts_of(cfg), columns(cfg.label_columns), cfg.labels, cap)

    def setup(self, train_set: Dataset, run_dir: Path) -> TaskConfig:
        """Rebuild the network for the resolved input and labels (seeded as ``facedyn.load`` builds it), load the
        frozen representation networks from their runs and fit the input standardisation."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            self.net = self.build()
        parts = parts_of(self.cfg)
        for i, p in enumerate(parts):
            if not isinstance(p, str) and p.net:
                self.net.frontend.nets[f"net{i}"].load_state_dict(load_source_net(p).state_dict())
        n = min(len(train_set), max(1, self.cfg.input_norm_samples))  # type: ignore[arg-type]
        g = np.random.default_rng(self.cfg.seed)
        idx = g.choice(len(train_set), size=n, replace=False)  # type: ignore[arg-type]
        self.net.norm.fit(torch.stack([train_set[int(i)]["x"] for i in idx]))
        return self.cfg

    def label(self) -> str:
        return self.cfg.input

    def record(self) -> dict[str, Any]:
        parts = parts_of(self.cfg)
        return {"input_parts": [p if isinstance(p, str) else {"key": p.key, "run": p.run} for p in parts],
                "label_columns": columns(self.cfg.label_columns), "labels": self.cfg.labels}

    def predict(self, batch: dict[str, Any]) -> torch.Tensor:
        """Predictions ``(B, K)`` of a batch's representation ``x``."""
        return self.net.predict_rep(batch["x"])

    def validation_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {"pred": self.predict(batch), "true": batch["labels"]}

    def validation_metrics(self, outputs: dict[str, torch.Tensor]) -> dict[str, float]:
        """Whole-set metrics per label column and averaged (``icc_AU12``, ``icc``, ``mse``, ...)."""
        cols = columns(self.cfg.label_columns)
        tab = column_metrics(outputs["true"].numpy(), outputs["pred"].numpy(), cols, self.metrics)
        out: dict[str, float] = {}
        for m, per in tab.items():
            out[m] = per["avg"]
            out.update({f"{m}_{c}": v for c, v in per.items() if c != "avg"})
        return out


def flip_batch(x: torch.Tensor, landmarks: torch.Tensor, p: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip each sample horizontally with probability ``p`` (global torch RNG, seeded by the loop).

    ``x`` ``(B, C, H, W)`` (every channel: the image and its DRs alike); ``landmarks`` ``(B, 68, 2)`` crop
    pixels, mirrored (``x -> W - 1 - x``) and renumbered with :data:`~facedyn.data.faces.landmarks68.MIRROR_68`
    so that point 48 stays the image-left lip corner. AU labels are unchanged (AUs are bilateral).
    """
    from facedyn.data.faces.landmarks68 import MIRROR_68

    B, W = x.shape[0], x.shape[-1]
    flip = torch.rand(B, device=x.device) < p
    x = torch.where(flip.view(B, 1, 1, 1), x.flip(-1), x)
    mirrored = landmarks[:, torch.as_tensor(MIRROR_68, device=landmarks.device)].clone()
    mirrored[..., 0] = W - 1 - mirrored[..., 0]
    return x, torch.where(flip.view(B, 1, 1), mirrored, landmarks)


@float32_math
def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite entries of ``target`` (``(B, K)``); 0 when none is finite."""
    ok = torch.isfinite(target)
    if not ok.any():
        return pred.sum() * 0.0
    return (pred[ok] - target[ok]).pow(2).mean()


def frame_table(ds: TaskFrames, pred: np.ndarray) -> pd.DataFrame:
    """One row per item: ``clip``, ``subject``, ``frame``, ``true_<col>``, ``pred_<col>``."""
    df = pd.DataFrame({"clip": [ds.clips[ci].clip_id for ci in ds.index[:, 0]], "subject": ds.subjects,
                       "frame": ds.index[:, 1]})
    lab = ds.labels_array()
    for j, c in enumerate(ds.label_columns):
        df[f"true_{c}"] = lab[:, j]
        df[f"pred_{c}"] = pred[:, j]
    return df
