"""The method registry: name → method class (config dataclass, frame set, network, losses, metrics).

Built-in methods register themselves when their module is imported; the imports below are their one
registration each. Methods from other packages register through the ``facedyn.methods`` entry-point
group (``[project.entry-points."facedyn.methods"] mymethod = "mypkg.mymethod"``), or by importing a
module that uses :func:`register_method` before calling facedyn. A run records the module that
registered its method, so ``facedyn.load`` imports it again in a fresh process.

=============  =========================================================================================
dr             Dynamic Representation: UNet trained with the Rank Loss (dr-paper.txt Eq. 3)
unet_mse       DI-target baseline: UNet regressing the (backward) dynamic image, MSE
unet_p         DI-target baseline: UNet with the perceptual loss of Johnson et al. on VGG-16 features
pix2pix        DI-target baseline: UNet generator + 70×70 PatchGAN (Isola et al.)
vgg_features   facedyn's own VGG-16-layout feature network for unet_p (denoising autoencoder)
=============  =========================================================================================
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import entry_points

from facedyn.dr import baselines as _baselines  # noqa: F401  (registers unet_mse, unet_p, pix2pix)
from facedyn.dr import features as _features  # noqa: F401  (registers vgg_features)
from facedyn.dr import method as _dr  # noqa: F401  (registers dr)
from facedyn.errors import CheckpointError, ConfigError
from facedyn.fabnet import method as _fabnet  # noqa: F401  (registers fabnet)
from facedyn.method import Method, lookup, register_method, registered
from facedyn.tasks import affect as _affect  # noqa: F401  (registers affect)
from facedyn.tasks import au_intensity as _au  # noqa: F401  (registers au)
from facedyn.tcae import model as _tcae  # noqa: F401  (registers tcae)

__all__ = ["Method", "available", "get", "import_method", "register_method"]


@functools.cache
def _load_entry_points() -> None:
    for ep in entry_points(group="facedyn.methods"):
        try:
            ep.load()
        except Exception as e:  # a broken plugin must not break facedyn
            import warnings

            warnings.warn(f"facedyn method plugin {ep.name!r} ({ep.value}) failed to load: {e}", stacklevel=2)


def available() -> dict[str, type[Method]]:
    """Every registered method, by name (built-ins, plugins, and any module imported so far)."""
    _load_entry_points()
    return dict(registered())


def get(name: str) -> type[Method]:
    """The method class registered as ``name``; ConfigError listing the available ones otherwise."""
    cls = lookup(name)
    if cls is None:
        _load_entry_points()
        cls = lookup(name)
    if cls is None:
        raise ConfigError(f"unknown method {name!r}; available: {', '.join(available())}")
    return cls


def import_method(name: str, module: str) -> type[Method]:
    """The method of a saved run: ``name``, importing ``module`` (which registers it) if needed."""
    if lookup(name) is None and module:
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise CheckpointError(f"the run's method {name!r} comes from module {module!r}, which cannot be "
                                  f"imported ({e}); install the package that provides it") from None
    return get(name)
