"""The FAb-Net method (Wiles, Koepke & Zisserman, BMVC 2018): self-supervised facial attribute embedding.

Batches are a target frame and ``K`` source frames of the same clip (``target`` ``(B, 3, H, W)``, ``sources``
``(B, K, 3, H, W)``, :class:`~facedyn.data.windows.SourcesDataset`). The network embeds every frame, predicts
from each (target, source) pair of embeddings a flow that samples the source into the target, blends the
warped sources by their confidence maps and is trained with the L1 error to the target
(:mod:`facedyn.fabnet.losses`), back-propagating only the curriculum's percentile window of each batch.
Validation reports the L1 on held-out people (all samples, no curriculum) and selects the checkpoint by it.

The papers train on loosely cropped face tracks (VoxCeleb), where the flow must explain head roll, scale and
shift; train on a ``prepare --align box`` store where one exists (a run records its store's alignment).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch.utils.data import Dataset

from facedyn.config import TrainConfig, option
from facedyn.errors import ConfigError
from facedyn.fabnet.losses import (
    curriculum_loss,
    curriculum_schedule,
    curriculum_stage,
    per_sample_l1,
    percentile_window,
)
from facedyn.fabnet.model import FabNet
from facedyn.method import Method, Selection, register_method
from facedyn.nn.warp import warp


@dataclass
class FabNetConfig(TrainConfig):
    """FAb-Net: embedding, flow decoder, sources, curriculum and augmentation."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"cpu": {}, "paper": {"batch_size": 128, "flow_size": 0}}

    epochs: int = option(10, "Epochs (validation and checkpoints after each; the curriculum has 5 stages).")
    lr: float = option(5e-4, "Adam learning rate.")
    betas: tuple[float, float] = option((0.9, 0.999), "Adam betas.")
    embedding_dim: int = option(256, "Size of the attribute embedding v (paper: 256).")
    width: int = option(16, "Base width of the encoder and decoder (paper: 16).")
    flow_range: float = option(0.5, "Largest offset, as a fraction of half the crop side (1: the far border, as the "
                                    "authors' tanh sampler).")
    flow_size: int = option(32, "Side at which the decoder predicts flow and confidences, upsampled bilinearly to "
                                "the crop (0: the crop size, as the paper; 32 makes the decoder 4x cheaper at 64 px).")
    n_sources: int = option(3, "Source frames per target (1: the single-source FAb-Net; paper: 3).")
    min_gap_s: float = option(0.0, "Sources lie at least this far from the target (seconds; at least 1 frame).")
    max_gap_s: float = option(2.0, "Sources lie at most this far from the target (seconds).")
    curriculum: bool = option(True, "Back-propagate only a percentile window of each batch's samples ranked by "
                                    "their loss, shifting from the easiest towards harder ones over training.")
    curriculum_start: int = option(50, "Width of the window in percent; the first stage keeps the easiest this %.")
    curriculum_shift: int = option(10, "Percentiles the window moves at each shift.")
    curriculum_shifts: int = option(4, "Number of shifts (the epochs are cut into shifts+1 equal stages).")
    jitter: float = option(0.05, "Shift each frame independently by up to this fraction of the side (the "
                                 "authors' per-frame random crop).")
    flip: bool = option(True, "Flip a whole sample (target and sources) horizontally at random.")


def jitter_frames(images: torch.Tensor, max_shift: float) -> torch.Tensor:
    """Each image ``(N, C, H, W)`` translated by its own random offset of up to ``max_shift`` × its side in x
    and y (bilinear, border pixels repeated); uses the global torch RNG (seeded by the loop)."""
    if max_shift <= 0:
        return images
    N, _, H, W = images.shape
    off = (2 * torch.rand(N, 2, 1, 1, device=images.device, dtype=images.dtype) - 1) * max_shift
    off = off * torch.tensor([W, H], device=images.device, dtype=images.dtype).view(1, 2, 1, 1)
    return warp(images, off.expand(N, 2, H, W))


def augment_sample(target: torch.Tensor, sources: torch.Tensor, jitter: float, flip: bool
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Random horizontal flip of whole samples and independent per-frame jitter.

    ``target`` ``(B, 3, H, W)``, ``sources`` ``(B, K, 3, H, W)`` → the same shapes.
    """
    B, K = sources.shape[:2]
    if flip:
        f = torch.rand(B, device=target.device) < 0.5
        target = torch.where(f.view(B, 1, 1, 1), target.flip(-1), target)
        sources = torch.where(f.view(B, 1, 1, 1, 1), sources.flip(-1), sources)
    if jitter > 0:
        frames = jitter_frames(torch.cat([target, sources.flatten(0, 1)]), jitter)
        target, sources = frames[:B], frames[B:].unflatten(0, (B, K))
    return target, sources


@register_method("fabnet")
class FabNetMethod(Method):
    """FAb-Net: self-supervised face embedding from flow between frames (multi-source, curriculum)."""

    Config = FabNetConfig
    frames = "sources"
    selection = Selection("l1", "min", initial=False)
    learns_head_motion = True

    def build(self) -> FabNet:
        c = self.cfg
        if c.n_sources < 1:
            raise ConfigError(f"--n-sources must be >= 1, got {c.n_sources}")
        if c.curriculum_shift < 0 or c.curriculum_shifts < 0:
            raise ConfigError("--curriculum-shift and --curriculum-shifts must be >= 0")
        percentile_window(c.curriculum_shifts, c.curriculum_start, c.curriculum_shift)  # the last window fits
        if c.jitter < 0 or c.jitter >= 0.5:
            raise ConfigError(f"--jitter must lie in [0, 0.5), got {c.jitter}")
        #: the percentile window ``[lo, hi)`` of the current epoch (set by :meth:`on_epoch_start`)
        self.window = self._window(1)
        self._train_set: Dataset | None = None
        return FabNet(self.data.size, c.embedding_dim, c.width, c.flow_range, c.flow_size or None)

    def _window(self, epoch: int) -> tuple[int, int]:
        c = self.cfg
        if not c.curriculum:
            return 0, 100
        stage = curriculum_stage(epoch, max(c.epochs, epoch), c.curriculum_shifts)
        return percentile_window(stage, c.curriculum_start, c.curriculum_shift)

    def setup(self, train_set: Dataset, run_dir: Path) -> FabNetConfig:
        self._train_set = train_set
        return self.cfg

    def on_epoch_start(self, epoch: int, epochs: int) -> None:
        self.window = self._window(epoch)
        set_epoch = getattr(self._train_set, "set_epoch", None)
        if callable(set_epoch):  # other sources for each target every epoch (loader workers=0)
            set_epoch(epoch)

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        target, sources = batch["target"], batch["sources"]
        if self.cfg.jitter > 0 or self.cfg.flip:
            target, sources = augment_sample(target, sources, self.cfg.jitter, self.cfg.flip)
        out = self.net(target, sources)
        per = per_sample_l1(out["generated"], target)
        lo, hi = self.window
        return {"loss": curriculum_loss(per, lo, hi), "l1": per.detach().mean(),
                "window_lo": torch.tensor(float(lo))}

    def validation_step(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        target, sources = batch["target"], batch["sources"]
        out = self.net(target, sources)
        copy = (sources - target[:, None]).abs().flatten(2).mean(dim=2).mean(dim=1)
        return {"l1": per_sample_l1(out["generated"], target), "l1_copy": copy}

    def label(self) -> str:
        c = self.cfg
        return f"fabnet-{c.n_sources}src" + ("-curric" if c.curriculum else "")

    def record(self) -> dict[str, Any]:
        c = self.cfg
        sched = (curriculum_schedule(c.epochs, c.curriculum_start, c.curriculum_shift, c.curriculum_shifts)
                 if c.curriculum else [{"first_epoch": 1, "last_epoch": c.epochs, "lo": 0, "hi": 100}])
        return {"curriculum_schedule": sched}
