"""facedyn: learn how faces move.

Public API::

    import facedyn
    model = facedyn.load("runs/dr")        # a trained run directory
    dr = model(images)                     # (B, 3, H, W) dynamic representations
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "infer", "load"]


def load(path: str, device: str = "auto"):
    """Load a trained run directory (``config.json`` + ``checkpoints/``) as a callable model."""
    from facedyn.api import load as _load

    return _load(path, device=device)


def infer(model, images):
    """Run ``model`` on aligned faces or raw images; returns a ``(B, 3, H, W)`` tensor."""
    return model(images)
