"""Per-frame input representations of the face tasks (dr-paper.txt §3.3, Tables 1–2), cached beside the store.

The inputs the AU and affect models are trained on:

========  ====================================================================================  ========
name      what                                                                                  channels
========  ====================================================================================  ========
``si``    the still image                                                                        3
``sdr``   one DR (the ``dr`` run with T=5, S=2): single dynamic representation                   3
``mdr``   multi-level DR: the image (the T=0 level) stacked with DRs of several T, S=2;          6 / 9
          preset ``au`` = image + DR(T=5), preset ``affect`` = image + DR(T=3) + DR(T=5)
``<label>`` a DI-target baseline's output (``unet_mse-di``, ``unet_p-bdi``, ``pix2pix-di``, ...)     3
``di``,   the true forward / backward dynamic image of the window ``t-T*s..t`` / ``t+T*s..t``       3
``bdi``   (T=5, S=2; it needs the neighbouring frames at test time: a reference, not a still-image
          method); frames beyond a clip's ends are clamped to its first/last frame
========  ====================================================================================  ========

``facedyn represent --run R1 --run R2 --data D`` computes every run's output once for every frame of
every clip and caches it under ``D/representations/<key>/<clip_id>.npy``: float16 ``(N, 3, H, W)``
(memory-mapped on read; zeros on frames without a face), each file written atomically (a rerun after a
kill removes the temporary files the kill left; one ``represent`` or ``prepare`` writes a store at a
time). The ``key`` names the run's label, window and a hash of its checkpoint's bytes
(``dr-T5S2-1a2b3c4d5e``), so a retrained or another run never reuses a stale cache.
``D/representations/index.json`` lists every cached source and which were given to the latest
``represent`` call (the *active* ones), against which the names above are resolved
(:func:`resolve_input`). A task run records the keys it was trained on.

Only DR-family runs (``dr``, ``unet_mse``, ``unet_p``, ``pix2pix``: a UNet from one face to a
3-channel map) can be representations; :func:`build_source_net` rebuilds such a network from what the
index records, so a task model can carry its representation networks inside its own checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facedyn import lock, runs
from facedyn.atomic import atomic_path, clean_temporaries, write_json
from facedyn.data.store import ClipDataset
from facedyn.data.windows import scaled_stride, to_float
from facedyn.dr.dynamic_image import make_target
from facedyn.dr.model import DRNet
from facedyn.errors import CheckpointError, ConfigError, DatasetError

__all__ = [
    "CACHE_DIR",
    "DR_FAMILY",
    "IMAGE",
    "MDR_PRESETS",
    "WINDOW_SOURCES",
    "Source",
    "build_source_net",
    "cache_index",
    "read_part",
    "represent",
    "resolve_input",
    "run_source",
    "window_source",
]

#: Folder inside the clip store that holds the cache.
CACHE_DIR = "representations"
#: The part name of the still image itself (never cached: read from ``frames.npy``).
IMAGE = "image"
#: Methods whose runs can be representations.
DR_FAMILY = ("dr", "unet_mse", "unet_p", "pix2pix")
#: Training-free window representations (true dynamic images).
WINDOW_SOURCES = ("di", "bdi")
#: MDR presets: the window half-lengths T of each level (T=0 is the image), all at S=2 (dr-paper.txt §3.3).
MDR_PRESETS: dict[str, tuple[int, ...]] = {"au": (0, 5), "affect": (0, 3, 5)}
#: T of the single DR (``sdr``) and stride of every level.
SDR_T, MDR_S = 5, 2
_INDEX = "index.json"


@dataclass(frozen=True)
class Source:
    """One cached representation: a run's output or a window dynamic image.

    Attributes:
        key: cache folder name (label, window, checkpoint hash).
        label: table name (``dr``, ``unet_mse-di``, ``di``).
        method: the run's method, or ``di``/``bdi``.
        T, S: the window the source was trained on (or pools).
        channels: channels per frame (3).
        run: the run directory (resolved) or ``""``.
        weights: which checkpoint (``best``).
        checkpoint_sha256: hash of the checkpoint file's bytes (``""`` for window sources).
        net: what rebuilds the network without the run directory: ``depth``, ``width``, ``norm``,
            ``residual`` (empty for window sources).
    """

    key: str
    label: str
    method: str
    T: int
    S: int
    channels: int = 3
    run: str = ""
    weights: str = "best"
    checkpoint_sha256: str = ""
    net: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Source:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


def run_source(run: str | Path, weights: str = "best") -> Source:
    """The :class:`Source` of a DR-family run (its checkpoint hashed now).

    Raises:
        CheckpointError: not a run, or no such checkpoint.
        ConfigError: the run's method cannot produce a representation.
    """
    run = runs.resolve_run(run).resolve()  # a shipped model's name, too
    rec = runs.read_record(run)
    if rec.method not in DR_FAMILY:
        raise ConfigError(f"{run}: a {rec.method!r} run is not a representation; give runs of "
                          f"{', '.join(DR_FAMILY)}")
    ck = runs.checkpoint_path(run, weights)
    sha = runs.file_sha256(ck)
    c = rec.config
    label = rec.method if rec.method == "dr" else f"{rec.method}-{c.get('target', 'di')}"
    T, S = int(c.get("T", 5)), int(c.get("S", 2))
    net = {"depth": int(c.get("depth", 4)), "width": int(c.get("width", 16)), "norm": str(c.get("norm", "batch")),
           "residual": bool(c.get("residual", True)) if rec.method == "dr" else False}
    return Source(key=f"{label}-T{T}S{S}-{sha[:10]}", label=label, method=rec.method, T=T, S=S, run=str(run),
                  weights=weights, checkpoint_sha256=sha, net=net)


def window_source(kind: str, T: int = SDR_T, S: int = MDR_S) -> Source:
    """The true forward (``di``) or backward (``bdi``) dynamic image of the (T, S) window."""
    if kind not in WINDOW_SOURCES:
        raise ConfigError(f"unknown window representation {kind!r}; use {' or '.join(WINDOW_SOURCES)}")
    if T < 1 or S < 1:
        raise ConfigError(f"a dynamic image needs T >= 1 and S >= 1, got T={T}, S={S}")
    return Source(key=f"{kind}-T{T}S{S}", label=kind, method=kind, T=T, S=S)


def build_source_net(src: Source) -> DRNet:
    """An untrained network of ``src``'s architecture (load the weights separately)."""
    if not src.net:
        raise ConfigError(f"{src.label}: a window dynamic image has no network; it needs the neighbouring frames")
    n = src.net
    return DRNet(depth=int(n["depth"]), width=int(n["width"]), norm=str(n["norm"]), residual=bool(n["residual"]))


def load_source_net(src: Source) -> DRNet:
    """``src``'s network with its run's weights, in eval mode.

    Raises:
        CheckpointError: the run or checkpoint is gone, or its bytes changed since ``src`` was made.
    """
    net = build_source_net(src)
    ck = runs.checkpoint_path(src.run, src.weights)
    if src.checkpoint_sha256 and runs.file_sha256(ck) != src.checkpoint_sha256:
        raise CheckpointError(f"{src.run}: its {src.weights} checkpoint changed since the representation "
                              f"{src.key} was made; rerun `facedyn represent`")
    runs.load_weights(ck, {"net": net})
    return net.eval()


# -- the cache ---------------------------------------------------------------------------------------------

def cache_dir(store: ClipDataset) -> Path:
    return store.path / CACHE_DIR


def cache_index(store: ClipDataset) -> dict[str, Any]:
    """``{"sources": {key: Source dict}, "active": [keys of the latest represent call]}`` (empty if none)."""
    p = cache_dir(store) / _INDEX
    if not p.is_file():
        return {"sources": {}, "active": []}
    try:
        obj = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        raise DatasetError(f"{p}: unreadable; delete {cache_dir(store)} and rerun `facedyn represent`") from None
    return {"sources": dict(obj.get("sources", {})), "active": list(obj.get("active", []))}


def part_path(store: ClipDataset, key: str, clip_id: str) -> Path:
    return cache_dir(store) / key / f"{clip_id}.npy"


def read_part(store: ClipDataset, key: str, clip_id: str) -> np.ndarray:
    """The cached float16 ``(N, C, H, W)`` of one clip, memory-mapped read-only.

    Raises:
        DatasetError: not cached (or cached for a clip of another length).
    """
    p = part_path(store, key, clip_id)
    if not p.is_file():
        raise DatasetError(f"{store.path}: representation {key} is not cached for clip {clip_id}; run "
                           f"`facedyn represent --data {store.path} --run ...` with its run")
    arr = np.load(p, mmap_mode="r")
    n = store.clip(clip_id).meta.get("n_frames", len(store.clip(clip_id).valid))
    if arr.shape[0] != n:
        raise DatasetError(f"{p}: holds {arr.shape[0]} frames, the clip {n}; the clip changed: rerun `facedyn "
                           "represent`")
    return arr


def _window_frames(frames: np.ndarray, t0: int, t1: int, T: int, stride: int) -> torch.Tensor:
    """Windows of frames ``t0..t1-1`` as ``(B, 2T+1, 3, H, W)`` floats, indices clamped to the clip."""
    n = len(frames)
    offs = np.arange(-T, T + 1) * stride
    idx = np.clip(np.arange(t0, t1)[:, None] + offs[None], 0, n - 1)
    return to_float(frames[idx])


@torch.no_grad()
def _compute_clip(src: Source, net: DRNet | None, clip: Any, batch_size: int, device: torch.device) -> np.ndarray:
    """float16 ``(N, 3, H, W)`` of one clip (zeros on frames without a face)."""
    frames = clip.frames
    valid = np.asarray(clip.valid, dtype=bool)
    n = len(frames)
    h, w = frames.shape[1:3]
    out = np.zeros((n, src.channels, h, w), np.float16)
    stride = scaled_stride(src.S, clip.fps)
    for t0 in range(0, n, batch_size):
        t1 = min(n, t0 + batch_size)
        if net is not None:
            y = net(to_float(frames[t0:t1]).to(device))
        else:
            y = make_target(_window_frames(frames, t0, t1, src.T, stride), src.method)
        out[t0:t1] = y.float().cpu().numpy().astype(np.float16)
    out[~valid] = 0
    return out


def _write_part(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, arr)


def represent(store: ClipDataset | str | Path, run_dirs: Sequence[str | Path] = (), windows: Sequence[str] = (),
              weights: str = "best", device: str | torch.device = "cpu", batch_size: int = 64,
              progress: Callable[[str, int, int], None] | None = None) -> list[Source]:
    """Cache the representations of ``run_dirs`` (and window DIs ``windows``) for every clip of ``store``.

    Clips already cached under the same key are skipped (the key changes when the checkpoint does).
    The given sources become the store's *active* ones (what ``--input sdr|mdr|<label>`` resolves to).

    Args:
        store: the clip store (or its path).
        run_dirs: DR-family runs (``facedyn train dr|unet_mse|unet_p|pix2pix``) on crops like the store's.
        windows: ``di`` and/or ``bdi`` (T=5, S=2).
        progress: ``(source label, clips done, clips)`` after each clip.
    Returns:
        The sources, in the order given.
    Raises:
        ConfigError: nothing to compute, a run trained on crops of another size/alignment.
    """
    from facedyn.device import resolve_device

    ds = store if isinstance(store, ClipDataset) else ClipDataset(store)
    if not run_dirs and not windows:
        raise ConfigError("give at least one --run (a dr/unet_mse/unet_p/pix2pix run) or --windows di,bdi")
    dev = resolve_device(device)
    sources = [run_source(r, weights) for r in run_dirs] + [window_source(k) for k in windows]
    for s in sources:
        if s.run:
            _check_contract(ds, s)
    with lock.hold(ds.path, "represent"):  # one writer per store (prepare, represent)
        root = cache_dir(ds)
        if root.is_dir():  # what writes a killed represent had begun
            clean_temporaries(root, *(d for d in root.iterdir() if d.is_dir()))
        index = cache_index(ds)
        clip_ids = ds.clip_ids
        for s in sources:
            net = load_source_net(s).to(dev) if s.run else None
            for i, cid in enumerate(clip_ids):
                p = part_path(ds, s.key, cid)
                clip = ds.clip(cid)
                if not (p.is_file() and np.load(p, mmap_mode="r").shape[0] == len(clip.valid)):
                    _write_part(p, _compute_clip(s, net, clip, batch_size, dev))
                if progress:
                    progress(s.label, i + 1, len(clip_ids))
            index["sources"][s.key] = s.to_dict()
        index["active"] = [s.key for s in sources]
        write_json(root / _INDEX, index)
    return sources


def _check_contract(ds: ClipDataset, s: Source) -> None:
    rec = runs.read_record(s.run)
    size = rec.data.get("size")
    if size is not None and ds.size is not None and int(size) != ds.size:
        raise ConfigError(f"{s.run}: trained on {size} px crops, {ds.path} holds {ds.size} px; train the DR on "
                          "crops of the same size")
    for k in ("align", "mask"):
        a, b = rec.data.get(k), getattr(ds, k)
        if a is not None and b is not None and a != b:
            raise ConfigError(f"{s.run}: trained on crops with {k}={a}, {ds.path} has {k}={b}; prepare both alike")


# -- resolving an input name ---------------------------------------------------------------------------------

def _active(store: ClipDataset) -> list[Source]:
    idx = cache_index(store)
    return [Source.from_dict(idx["sources"][k]) for k in idx["active"] if k in idx["sources"]]


def _pick(cands: list[Source], what: str, store: ClipDataset) -> Source:
    if not cands:
        raise ConfigError(f"{store.path}: no cached {what}; run `facedyn represent --data {store.path} --run ...` "
                          "with such a run first")
    if len(cands) > 1:
        raise ConfigError(f"{store.path}: several cached {what} ({', '.join(c.key for c in cands)}); give "
                          "`facedyn represent` only the runs you want")
    return cands[0]


def _dr(active: list[Source], T: int, store: ClipDataset) -> Source:
    return _pick([s for s in active if s.method == "dr" and s.T == T and s.S == MDR_S], f"DR with T={T}, S={MDR_S}",
                 store)


def resolve_input(store: ClipDataset, name: str, preset: str) -> list[Source | str]:
    """The parts (:data:`IMAGE` or cached :class:`Source`) of input ``name`` for a task with MDR ``preset``.

    ``si`` → image; ``sdr`` → the active DR with T=5, S=2; ``mdr`` → image + the active DRs of the
    preset's levels; ``di``/``bdi`` → the cached window DI (T=5, S=2); any other name → the active
    baseline with that label (or method name, when only one target of it is active).

    Raises:
        ConfigError: an unknown name, or the sources it needs are not (or ambiguously) cached.
    """
    if preset not in MDR_PRESETS:
        raise ConfigError(f"unknown MDR preset {preset!r}; choose from {', '.join(MDR_PRESETS)}")
    if name == "si":
        return [IMAGE]
    active = _active(store)
    if name == "sdr":
        return [_dr(active, SDR_T, store)]
    if name == "mdr":
        return [IMAGE if T == 0 else _dr(active, T, store) for T in MDR_PRESETS[preset]]
    if name in WINDOW_SOURCES:
        src = window_source(name)
        if src.key not in cache_index(store)["sources"]:
            raise ConfigError(f"{store.path}: the {name} is not cached; run `facedyn represent --data {store.path} "
                              f"--windows {name}`")
        return [src]
    cands = [s for s in active if s.label == name] or [s for s in active if s.method == name]
    if not cands and name not in {s.method for s in active}:
        known = ["si", "sdr", "mdr", *WINDOW_SOURCES, *sorted({s.label for s in active if s.method != "dr"})]
        raise ConfigError(f"unknown input {name!r}; choose from {', '.join(known)} (baselines: cache their runs "
                          "with `facedyn represent`)")
    if len(cands) > 1:  # several windows of one baseline: prefer the SDR's window
        cands = [s for s in cands if s.T == SDR_T] or cands
    return [_pick(cands, f"representation {name!r}", store)]
