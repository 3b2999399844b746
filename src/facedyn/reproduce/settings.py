"""How big a recipe runs: the ``paper`` and ``cpu`` presets, and the ``--set KEY=VALUE`` overrides.

Crop sizes: the DR paper states 224 x 224 (dr-paper.txt §4.2); the seeds give none for TCAE and
FAb-Net, whose ``paper`` sizes here (128, 256) are facedyn's choice. Training budgets (epochs x steps)
are facedyn's choice too: none of the seeds states a step count. The ``cpu`` preset is the scale
this project measures its own results at (64 px; the budgets of ``scripts/downstream_synthetic.sh``
and the FAb-Net budget study in DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from facedyn.errors import ConfigError

PRESETS = ("paper", "cpu")

#: crop size per model family and preset
SIZES: dict[str, dict[str, int]] = {"paper": {"dr": 224, "tcae": 128, "fabnet": 256},
                                    "cpu": {"dr": 64, "tcae": 64, "fabnet": 64}}

#: (epochs, steps per epoch, batch size or None for the method's preset) per method and preset
BUDGETS: dict[str, dict[str, tuple[int, int, int | None]]] = {
    "paper": {"dr": (20, 1000, 16), "unet_mse": (20, 1000, 16), "unet_p": (20, 1000, 16), "pix2pix": (20, 1000, 16),
              "vgg_features": (5, 1000, 16), "au": (20, 1000, 16), "affect": (20, 1000, 16),
              "tcae": (20, 2000, None), "fabnet": (10, 2000, None)},
    "cpu": {"dr": (10, 200, 16), "unet_mse": (10, 200, 16), "unet_p": (10, 200, 16), "pix2pix": (10, 200, 16),
            "vgg_features": (3, 100, 16), "au": (6, 500, 16), "affect": (10, 200, 16),
            "tcae": (8, 150, None), "fabnet": (10, 600, None)},
}

#: validation batches after each epoch (checkpoint selection), per preset
VAL_BATCHES: dict[str, int] = {"paper": 200, "cpu": 20}

#: what ``--set`` accepts, with its type and meaning
SETTABLE: dict[str, tuple[type, str]] = {
    "size": (int, "crop size of every store of the recipe (overrides the preset's per family)"),
    "epochs": (int, "epochs of every training stage"),
    "steps": (int, "optimiser steps per epoch of every training stage"),
    "batch_size": (int, "batch size of every training stage"),
    "val_batches": (int, "validation batches after each epoch of every training stage (paper 200, cpu 20)"),
    "max_windows": (int, "frame ranking: windows evaluated per dataset and setting (default: all)"),
    "frames": (int, "probes: frames per person (default 150)"),
    "n_boot": (int, "bootstrap replicates of the task tables' intervals (default 1000)"),
    "T": (int, "dr-fig3: window half-length (default 5)"),
    "S": (int, "dr-fig3: stride at 25 fps (default 2)"),
    "grid_T": (str, "dr-fig4: the T values, e.g. 3,5,7,9 (default)"),
    "grid_S": (str, "dr-fig4: the S values, e.g. 1,2,3,4 (default)"),
    "precision": (str, "training precision: auto (default: measured per machine), fp32 or bf16"),
    "channels_last": (str, "training memory format: auto (default: measured), on or off"),
    "workers": (int, "prepare: worker processes (default 1)"),
    "threads": (int, "CPU threads of torch and BLAS in every stage (default: all; 1 when other work shares them)"),
    "vgg_weights": (str, "dr-table2: a VGG-16 (VGG-Face) state dict to fine-tune; default: trained from scratch"),
    "gpu_factor": (float, "dry run: how many times faster one GPU is than the measured CPU (default 1000)"),
}


@dataclass(frozen=True)
class Settings:
    """One recipe run's scale: the preset plus ``--set`` overrides, and where it runs."""

    preset: str = "paper"
    device: str = "auto"
    seed: int = 0
    overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ConfigError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")

    def get(self, key: str, default: Any = None) -> Any:
        return self.overrides.get(key, default)

    def size(self, family: str) -> int:
        """Crop size of a model family's stores (``dr``, ``tcae``, ``fabnet``)."""
        return int(self.get("size", SIZES[self.preset][family]))

    def budget(self, method: str) -> dict[str, Any]:
        """Training overrides of ``method``: epochs, steps_per_epoch, batch_size (``--set`` wins)."""
        epochs, steps, batch = BUDGETS[self.preset][method]
        out: dict[str, Any] = {"epochs": int(self.get("epochs", epochs)),
                               "steps_per_epoch": int(self.get("steps", steps))}
        out["max_val_batches"] = int(self.get("val_batches", VAL_BATCHES[self.preset]))
        if self.get("precision"):
            out["precision"] = str(self.get("precision"))
        batch = self.get("batch_size", batch)
        if batch is not None:
            out["batch_size"] = int(batch)
        return out


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    """``["steps=2", "size=32"]`` -> ``{"steps": 2, "size": 32}`` (typed by :data:`SETTABLE`).

    Raises:
        ConfigError: not ``KEY=VALUE``, an unknown key, or a value of the wrong type.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in SETTABLE:
            raise ConfigError(f"--set {item!r}: write KEY=VALUE with KEY one of {', '.join(SETTABLE)}")
        tp = SETTABLE[key][0]
        try:
            out[key] = tp(value.strip())
        except ValueError:
            raise ConfigError(f"--set {item!r}: {key} must be {tp.__name__}") from None
    return out


def int_list(text: str, what: str) -> list[int]:
    """``"3,5,7"`` -> ``[3, 5, 7]`` (positive integers)."""
    try:
        vals = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        vals = []
    if not vals or min(vals) < 1:
        raise ConfigError(f"--set {what}={text!r}: give positive integers separated by commas, like 3,5,7,9")
    return vals
