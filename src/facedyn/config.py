"""Configs saved as JSON beside every run and checkpoint, and the presets (paper vs CPU demo)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: Paper settings (dr-paper.txt §4.2): 224×224 UNet input/output, Adam lr 1e-3, betas (0.5, 0.9).
PAPER = {"size": 224, "width": 64, "depth": 4, "batch_size": 16}
#: CPU settings of this project: the demo finishes in minutes on 2 cores.
CPU = {"size": 64, "width": 16, "depth": 4, "batch_size": 16}
PRESETS = {"paper": PAPER, "cpu": CPU}


@dataclass
class DRConfig:
    """A DR (or DI-target baseline) model and its training objective.

    ``method``: ``dr`` (Rank Loss), ``unet_mse``, ``unet_p`` (perceptual), ``pix2pix``;
    ``target``: ``di`` / ``bdi`` for the target-regression baselines, ``none`` for ``dr``.
    ``residual``: d = centred(I) + f(I) with f's last layer zero-initialised (starts at the floor).
    ``theta``: Rank Loss margin; None = calibrated on training windows (random DR clears it on < 0.1 %
    of pairs). ``normalize_pairs``: divide the hinge sum by the number of pairs. ``augment``: random
    horizontal flips and brightness/contrast changes, the same for the centre frame and its whole window.
    """

    method: str = "dr"
    target: str = "none"
    T: int = 5
    S: int = 2
    size: int = 64
    depth: int = 4
    width: int = 16
    norm: str = "batch"
    residual: bool = True
    theta: float | None = None
    gamma: float = 0.0
    epsilon: float = 0.0
    normalize_pairs: bool = False
    augment: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DRConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)
