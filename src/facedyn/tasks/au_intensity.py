"""AU intensity estimation by heatmap regression (HG-HMR, Sánchez-Lozano et al., BMVC 2018), method ``au``.

dr-paper.txt §4.4 re-trains HG-HMR on each input representation (Table 1). HG-HMR was published
without training code or its ground-truth heatmap generator; facedyn defines it here:

* **Network**: a stacked hourglass (:class:`~facedyn.nn.hourglass.StackedHourglass`) from the input
  representation ``(B, C, H, W)`` (C = 3 for SI/SDR, 6 for the AU MDR) to one heatmap per AU at
  ``H / stem_stride``.
* **Ground truth**: for AU ``k`` with intensity ``y_k``, ``heat_k(p) = y_k * max_c G_c(p)`` over the AU's
  centres ``c`` (:data:`AU_CENTRES`), ``G_c(p) = exp(-|p - c|^2 / (2 sigma^2))`` divided by its largest
  value on the heatmap grid (a centre between pixels would otherwise lower the peak), so the peak height
  is exactly the intensity; ``sigma =
  sigma_iod * IOD`` (IOD: distance of the eye centres, landmarks 36–41 and 42–47). A frame where an
  AU is unlabelled (NaN) leaves that heatmap out of the loss.
* **Loss**: mean squared error over the heatmaps of every stack (intermediate supervision), plus
  ``peak_weight`` times the squared error of the read-out itself (the last stack's maxima against the
  intensities). HG-HMR uses the heatmap term alone (``--peak-weight 0``, the ``paper`` preset); on a CPU
  budget of a few hundred steps the heatmap term alone barely moves the maxima (measured: validation
  ICC ~0 after 300 steps on synthetic faces), so the CPU default adds the read-out term.
* **Read-out**: the intensity is the heatmap's maximum (clamped at 0).
* **Augmentation**: random horizontal flips of the input with mirrored landmarks (``--no-augment``).

``--model cnn`` swaps in a plain CNN regressor (four conv blocks, global average pooling, a linear
layer to the K intensities, MSE): a sanity baseline without heatmaps. On CPU budgets it is also the
stronger model (measured on 72 synthetic training people, 1 200 steps, same data: validation ICC 0.63
for the CNN at width 16 vs 0.41 for the hourglass at width 32), so the README's synthetic AU table is
given for both; HG-HMR stays the default because it is the paper's model (and the ``paper`` preset's).

AU centres (:data:`AU_CENTRES`): each centre is the mean of some of the 68 landmarks (iBUG numbering:
jaw 0–16, brows 17–26, nose 27–35, eyes 36–47, mouth 48–67) plus an offset in IODs along the face's
axes (``x``: from the image-left to the image-right eye centre; ``y``: ``x`` turned clockwise, down the
face). Bilateral AUs have two centres; the offset's ``x`` is mirrored for the second (image-right) one.

======  ==========================  ==========================  ===============  ==================
AU      name                        image-left centre           image-right      offset (x, y) IOD
======  ==========================  ==========================  ===============  ==================
AU01    inner brow raiser           21 (inner brow end)         22               (0, -0.10)
AU02    outer brow raiser           18 (outer brow)             25               (0, -0.10)
AU04    brow lowerer                21                          22               (+0.10, +0.05)
AU05    upper lid raiser            37, 38 (upper lid)          43, 44           (0, 0)
AU06    cheek raiser                40, 41 (lower lid)          46, 47           (0, +0.30)
AU07    lid tightener               40, 41                      46, 47           (0, +0.05)
AU09    nose wrinkler               31 (nostril wing)           35               (0, -0.30)
AU10    upper lip raiser            50 (upper lip)              52               (0, -0.05)
AU12    lip corner puller           48 (lip corner)             54               (0, 0)
AU14    dimpler                     48                          54               (-0.10, 0)
AU15    lip corner depressor        48                          54               (0, +0.10)
AU17    chin raiser                 57, 8 (lower lip, chin)     –                (0, 0)
AU20    lip stretcher               48                          54               (-0.15, +0.05)
AU23    lip tightener               49, 59                      53, 55           (0, 0)
AU24    lip pressor                 51, 57 (lip centres)        –                (0, 0)
AU25    lips part                   62, 66 (inner lips)         –                (0, 0)
AU26    jaw drop                    8 (chin)                    –                (0, -0.10)
AU43    eyes closed                 36–41 (eye)                 42–47            (0, 0)
AU45    blink                       36–41                       42–47            (0, 0)
======  ==========================  ==========================  ===============  ==================

Label columns are matched to the table by their ``AUxx`` prefix (``AU12``, ``AU12_r``, ``AU12_p``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from facedyn.config import option
from facedyn.data.store import Clip, ClipDataset
from facedyn.dr.representations import Source
from facedyn.errors import ConfigError
from facedyn.method import Selection, register_method
from facedyn.nn.hourglass import StackedHourglass
from facedyn.precision import float32_math
from facedyn.tasks.inputs import TaskConfig, TaskMethod, TaskNet, au_columns, channels_of, flip_batch, masked_mse

__all__ = ["AU_CENTRES", "AUConfig", "AUMethod", "au_centres", "heatmaps"]

_EYE_A, _EYE_B = tuple(range(36, 42)), tuple(range(42, 48))

#: AU → (landmark groups, one per centre; offset (x, y) in IODs for the first centre, x mirrored for the second).
AU_CENTRES: dict[str, tuple[tuple[tuple[int, ...], ...], tuple[float, float]]] = {
    "AU01": (((21,), (22,)), (0.0, -0.10)),
    "AU02": (((18,), (25,)), (0.0, -0.10)),
    "AU04": (((21,), (22,)), (0.10, 0.05)),
    "AU05": (((37, 38), (43, 44)), (0.0, 0.0)),
    "AU06": (((40, 41), (46, 47)), (0.0, 0.30)),
    "AU07": (((40, 41), (46, 47)), (0.0, 0.05)),
    "AU09": (((31,), (35,)), (0.0, -0.30)),
    "AU10": (((50,), (52,)), (0.0, -0.05)),
    "AU12": (((48,), (54,)), (0.0, 0.0)),
    "AU14": (((48,), (54,)), (-0.10, 0.0)),
    "AU15": (((48,), (54,)), (0.0, 0.10)),
    "AU17": (((57, 8),), (0.0, 0.0)),
    "AU20": (((48,), (54,)), (-0.15, 0.05)),
    "AU23": (((49, 59), (53, 55)), (0.0, 0.0)),
    "AU24": (((51, 57),), (0.0, 0.0)),
    "AU25": (((62, 66),), (0.0, 0.0)),
    "AU26": (((8,),), (0.0, -0.10)),
    "AU43": ((_EYE_A, _EYE_B), (0.0, 0.0)),
    "AU45": ((_EYE_A, _EYE_B), (0.0, 0.0)),
}
_AU_PREFIX = re.compile(r"^(AU\d+)")


def au_of(column: str) -> str:
    """The :data:`AU_CENTRES` entry of a label column (``AU12_r`` → ``AU12``, ``AU6`` → ``AU06``)."""
    m = _AU_PREFIX.match(column)
    name = f"AU{int(m.group(1)[2:]):02d}" if m else column
    if name not in AU_CENTRES:
        raise ConfigError(f"label column {column!r} has no AU location; heatmaps are defined for "
                          f"{', '.join(AU_CENTRES)} (use --model cnn for other labels)")
    return name


def _centre_matrix(cols: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For K columns: averaging weights ``(K, 2, 68)``, offsets ``(K, 2, 2)`` (IODs) and centre mask ``(K, 2)``."""
    W = torch.zeros(len(cols), 2, 68)
    off = torch.zeros(len(cols), 2, 2)
    mask = torch.zeros(len(cols), 2, dtype=torch.bool)
    for k, c in enumerate(cols):
        groups, (dx, dy) = AU_CENTRES[au_of(c)]
        for j, g in enumerate(groups):
            W[k, j, list(g)] = 1.0 / len(g)
            off[k, j] = torch.tensor([dx if j == 0 else -dx, dy])
            mask[k, j] = True
    return W, off, mask


def au_centres(landmarks: torch.Tensor, cols: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """AU centres of faces.

    Args:
        landmarks: ``(B, 68, 2)`` pixels.
        cols: K label columns (see :func:`au_of`).
    Returns:
        centres ``(B, K, 2, 2)`` pixels, mask ``(K, 2)`` (which centres exist), IOD ``(B,)`` pixels.
    """
    W, off, mask = (t.to(landmarks.device) for t in _centre_matrix(cols))
    lm = landmarks.float()
    eye_a = lm[:, list(_EYE_A)].mean(dim=1)
    eye_b = lm[:, list(_EYE_B)].mean(dim=1)
    iod = (eye_b - eye_a).norm(dim=-1).clamp_min(1e-6)
    ex = (eye_b - eye_a) / iod[:, None]
    ey = torch.stack([-ex[:, 1], ex[:, 0]], dim=-1)
    base = torch.einsum("kjl,blc->bkjc", W.to(lm.dtype), lm)
    shift = off[None, ..., :1] * ex[:, None, None] + off[None, ..., 1:] * ey[:, None, None]
    return base + shift * iod[:, None, None, None], mask, iod


def heatmaps(landmarks: torch.Tensor, intensity: torch.Tensor, cols: Sequence[str], size: int, stride: int,
             sigma_iod: float) -> torch.Tensor:
    """Ground-truth heatmaps: Gaussians at the AU centres with peak height = intensity.

    Args:
        landmarks: ``(B, 68, 2)`` crop pixels (pixel centres at integers).
        intensity: ``(B, K)`` (NaN → a zero map; mask it out of the loss).
        cols: the K label columns.
        size: crop side in pixels; stride: crop pixels per heatmap pixel.
        sigma_iod: Gaussian std in IODs.
    Returns:
        ``(B, K, size // stride, size // stride)`` float.
    """
    centres, mask, iod = au_centres(landmarks, cols)
    h = size // stride
    c = (centres + 0.5) / stride - 0.5  # crop pixels → heatmap pixels
    grid = torch.arange(h, device=landmarks.device, dtype=c.dtype)
    sig = (sigma_iod * iod / stride).clamp_min(0.5)[:, None, None, None]  # (B, 1, 1, 1)
    gx = torch.exp(-(grid[None, None, None, :] - c[..., 0:1]) ** 2 / (2 * sig ** 2))  # (B, K, 2, h)
    gy = torch.exp(-(grid[None, None, None, :] - c[..., 1:2]) ** 2 / (2 * sig ** 2))
    g = gy[..., :, None] * gx[..., None, :]  # (B, K, 2, h, h)
    g = g / g.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)  # the grid's highest pixel is exactly 1
    g = g * mask[None, :, :, None, None].to(g.dtype)
    peak = torch.nan_to_num(intensity.float(), nan=0.0).clamp_min(0.0)
    return g.amax(dim=2) * peak[..., None, None]


@dataclass
class AUConfig(TaskConfig):
    """AU intensity: hourglass heatmap regression (HG-HMR) or a plain CNN regressor."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "cpu": {}, "paper": {"width": 128, "stacks": 2, "depth": 3, "stem_stride": 4, "peak_weight": 0.0}}

    model: str = option("hg", "hg: hourglass heatmap regression (HG-HMR); cnn: plain CNN regressor (sanity "
                              "baseline).", ("hg", "cnn"))
    width: int = option(32, "Hourglass / CNN width.")
    depth: int = option(3, "Hourglass levels (crop / stem_stride must be divisible by 2^depth).")
    stacks: int = option(1, "Stacked hourglasses (intermediate supervision).")
    stem_stride: int = option(2, "Heatmaps at crop / stem_stride (1, 2 or 4).", (1, 2, 4))
    sigma_iod: float = option(0.15, "Std of the heatmap Gaussians, in inter-ocular distances.")
    peak_weight: float = option(1.0, "Weight of the read-out term (heatmap maxima vs intensities) added to the "
                                     "heatmap MSE (HG-HMR: 0).")
    betas: tuple[float, float] = option((0.9, 0.999), "Adam betas.")


class HGNet(TaskNet):
    """Representation → AU heatmaps (stacked hourglass); intensities = heatmap maxima."""

    output_key = "au"

    def __init__(self, parts: Sequence[Source | str], cols: Sequence[str], width: int, depth: int, stacks: int,
                 stem_stride: int) -> None:
        super().__init__(parts, cols)
        self.hg = StackedHourglass(channels_of(parts), len(cols), width=width, depth=depth, stacks=stacks,
                                   stem_stride=stem_stride)

    def heatmaps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every stack's heatmaps ``(B, K, h, w)`` of a representation ``x`` ``(B, C, H, W)``."""
        return self.hg(self.norm(x))

    def predict_rep(self, x: torch.Tensor) -> torch.Tensor:
        return self.heatmaps(x)[-1].amax(dim=(-2, -1)).clamp_min(0.0)

    def features_rep(self, x: torch.Tensor) -> torch.Tensor:
        return self.heatmaps(x)[-1].flatten(1)


class CNNRegressor(TaskNet):
    """Representation → K intensities: four conv blocks (conv-BN-ReLU ×2, max-pool), average pool, linear."""

    output_key = "au"

    def __init__(self, parts: Sequence[Source | str], cols: Sequence[str], width: int) -> None:
        super().__init__(parts, cols)
        layers: list[nn.Module] = []
        c = channels_of(parts)
        for mult in (1, 2, 4, 8):
            w = width * mult
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c = w
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(c, len(cols))

    def features_rep(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.norm(x))

    def predict_rep(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features_rep(x))


@float32_math
def heatmap_mse(outs: Sequence[torch.Tensor], target: torch.Tensor, intensity: torch.Tensor) -> torch.Tensor:
    """Sum over the stacks of the mean squared heatmap error (intermediate supervision), over the AUs whose
    ``intensity`` ``(B, K)`` is labelled. ``outs``: each stack's ``(B, K, h, w)``; ``target`` the same shape."""
    ok = torch.isfinite(intensity)[..., None, None].to(target.dtype)
    n = ok.sum().clamp_min(1.0) * target.shape[-1] * target.shape[-2]
    return sum(((((h - target) ** 2) * ok).sum() / n for h in outs), target.new_zeros(()))


@register_method("au")
class AUMethod(TaskMethod):
    """AU intensity from one face's representation (SI/SDR/MDR/...): HG-HMR heatmap regression (dr-paper Table 1)."""

    Config = AUConfig
    frames = "frame"
    selection = Selection("icc", "max", initial=False)
    preset = "au"
    metrics = ("icc", "mse")

    def default_columns(self, store: ClipDataset, clips: Sequence[Clip]) -> list[str]:
        return au_columns(store, clips)

    def make_net(self, parts: Sequence[Source | str], cols: Sequence[str]) -> TaskNet:
        c = self.cfg
        if c.model == "cnn":
            return CNNRegressor(parts, cols, c.width)
        if cols != ["?"]:
            for col in cols:
                au_of(col)
        need = c.stem_stride * 2 ** c.depth
        if self.data.size % need:
            raise ConfigError(f"the crop size {self.data.size} must be divisible by stem_stride x 2^depth = {need}; "
                              "use a smaller --depth or --stem-stride")
        return HGNet(parts, cols, c.width, c.depth, c.stacks, c.stem_stride)

    def losses(self, batch: dict[str, Any], group: str = "main") -> dict[str, torch.Tensor]:
        y, x, lm = batch["labels"], batch["x"], batch["landmarks"]
        if self.cfg.augment:
            x, lm = flip_batch(x, lm)
        if self.cfg.model == "cnn":
            return {"loss": masked_mse(self.net.predict_rep(x), y)}
        cols = self.net.columns
        target = heatmaps(lm, y, cols, self.data.size, self.cfg.stem_stride, self.cfg.sigma_iod)
        outs = self.net.heatmaps(x)
        heat = heatmap_mse(outs, target, y)
        peak = masked_mse(outs[-1].amax(dim=(-2, -1)), y)
        loss = heat + self.cfg.peak_weight * peak if self.cfg.peak_weight else heat
        return {"loss": loss, "heatmap": heat.detach(), "peak_mse": peak.detach()}

    def record(self) -> dict[str, Any]:
        rec = super().record()
        if self.cfg.model == "hg":
            rec["au_centres"] = {c: au_of(c) for c in rec["label_columns"]}
        return rec
