"""Picking the torch device (``--device auto|cpu|cuda[:N]``)."""

from __future__ import annotations

import torch

from facedyn.errors import ConfigError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU; otherwise ``torch.device(name)`` (checked)."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device; use auto, cpu or cuda[:N]") from None
