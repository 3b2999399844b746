"""FAb-Net's network (Wiles, Koepke & Zisserman, BMVC 2018): embedding encoder and flow decoder.

* Encoder: a face ``(N, 3, H, W)`` in [0, 1] → the attribute embedding ``v`` ``(N, D)`` (D = 256 by default):
  4×4 stride-2 convolutions (LeakyReLU 0.2, batch norm after the first) down to a 2×2 map, then one
  convolution over the whole remaining map to a 1×1 of ``D`` channels (the authors' encoder, with as many
  stride-2 layers as the crop size needs).
* Decoder ``g(v_t, v_s)``: the concatenated target and source embeddings ``(N, 2D)`` → ReLU, then ×2 bilinear
  upsampling + 3×3 convolution + batch norm + ReLU per level, up to the crop size → three maps: the offsets
  ``(δx, δy)`` in pixels (``tanh`` × ``flow_range`` × half the side, so ``flow_range=1`` reaches the far
  border, as the authors' ``tanh`` in normalised coordinates) and the confidence logit ``C`` of that source.
  The authors predict ``C`` with a second decoder of the same shape; here one decoder trunk predicts both
  (half the decoder cost on a CPU). The maps may be predicted at a lower side ``flow_size`` and upsampled
  bilinearly to the crop (the decoder's full-resolution levels are most of a training step on a CPU: at 64 px
  a 32 px flow makes the decoder 4x cheaper). Its last convolution starts at zero: an untrained decoder
  predicts zero flow and equal confidences, so the generated frame starts as the sources' mean.
* The generated frame samples each source at ``(x + δx, y + δy)`` (:func:`facedyn.nn.warp.warp`, bilinear)
  and blends the sources with the softmax of their confidences (:func:`facedyn.fabnet.losses.blend_sources`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from facedyn.errors import ConfigError
from facedyn.fabnet.losses import blend_sources, confidence_weights
from facedyn.method import Network
from facedyn.nn.warp import warp


def encoder_sides(size: int) -> list[int]:
    """Spatial sides after each 4×4 stride-2 convolution (padding 1) from ``size`` until the side is <= 2."""
    if size < 2:
        raise ConfigError(f"FAb-Net needs crops of at least 2 px, got {size}")
    sides = []
    s = size
    while s > 2:
        s = (s + 2 - 4) // 2 + 1
        sides.append(s)
    return sides


class FabNetEncoder(nn.Module):
    """``(N, 3, size, size)`` in [0, 1] → embedding ``(N, dim)`` (the network sees ``2x - 1``)."""

    def __init__(self, size: int, dim: int = 256, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        sides = encoder_sides(size)
        for i in range(len(sides)):
            c_out = width * min(2 ** i, 8)
            layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1))
            if i > 0:
                layers.append(nn.BatchNorm2d(c_out))
            layers.append(nn.LeakyReLU(0.2))
            c_in = c_out
        last = sides[-1] if sides else size
        layers.append(nn.Conv2d(c_in, dim, last))  # the whole last map → 1×1
        self.net = nn.Sequential(*layers)
        self.size, self.dim = size, dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or tuple(images.shape[-2:]) != (self.size, self.size):
            raise ConfigError(f"FAb-Net encodes (N, 3, {self.size}, {self.size}) faces, got {tuple(images.shape)}")
        return self.net(images * 2.0 - 1.0).flatten(1)


class FabNetDecoder(nn.Module):
    """``g``: concatenated embeddings ``(N, 2·dim)`` → flow ``(N, 2, size, size)`` in pixels and confidence
    logits ``(N, 1, size, size)``."""

    def __init__(self, size: int, dim: int = 256, width: int = 16, flow_range: float = 1.0,
                 flow_size: int | None = None) -> None:
        super().__init__()
        #: side at which the maps are predicted (then upsampled to ``size``)
        self.flow_size = min(size, flow_size) if flow_size else size
        n_up = max(1, math.ceil(math.log2(self.flow_size)))
        layers: list[nn.Module] = [nn.ReLU()]
        c_in = 2 * dim
        for i in range(n_up - 1):
            c_out = width * min(8, 2 ** (n_up - 2 - i))
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
            c_in = c_out
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Conv2d(c_in, 3, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.size = size
        #: largest offset in pixels: ``flow_range`` × half the side
        self.max_offset = float(flow_range) * (size - 1) / 2.0

    def forward(self, v_t: torch.Tensor, v_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``v_t``, ``v_s`` ``(N, dim)`` → (flow ``(N, 2, H, W)`` in pixels, confidence logits ``(N, 1, H, W)``)."""
        x = self.trunk(torch.cat([v_t, v_s], dim=1)[:, :, None, None])
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if x.shape[-1] != self.flow_size:
            x = F.interpolate(x, size=(self.flow_size, self.flow_size), mode="bilinear", align_corners=False)
        out = self.head(x)
        if self.flow_size != self.size:
            out = F.interpolate(out, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return torch.tanh(out[:, :2]) * self.max_offset, out[:, 2:3]


class FabNet(Network):
    """The FAb-Net network: :meth:`encode` (the embedding), :meth:`flow`, :meth:`generate`.

    ``forward(target)`` is :meth:`encode`; ``forward(target, sources)`` the training reconstruction
    (:meth:`reconstruct`), so a DDP-wrapped network trains through its ``forward``.
    """

    output_names = ("embedding",)
    embedding_output = "embedding"

    def __init__(self, size: int, dim: int = 256, width: int = 16, flow_range: float = 1.0,
                 flow_size: int | None = None) -> None:
        super().__init__()
        if dim < 1 or width < 1 or not flow_range > 0 or (flow_size is not None and flow_size < 0):
            raise ConfigError(f"FAb-Net needs embedding_dim >= 1, width >= 1, flow_range > 0, flow_size >= 0; got "
                              f"{dim}, {width}, {flow_range}, {flow_size}")
        self.encoder = FabNetEncoder(size, dim, width)
        self.decoder = FabNetDecoder(size, dim, width, flow_range, flow_size)
        self.size, self.dim = size, dim

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Faces ``(N, 3, H, W)`` in [0, 1] → embeddings ``v`` ``(N, D)``."""
        return self.encoder(images)

    def outputs(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"embedding": self.encode(images)}

    def flow(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Offsets ``(N, 2, H, W)`` in pixels (``δx``, ``δy``) at which to sample ``src`` ``(N, 3, H, W)`` to
        generate ``tgt`` ``(N, 3, H, W)``: ``g(v_t, v_s)``."""
        v = self.encode(torch.cat([tgt, src]))
        return self.decoder(v[: len(tgt)], v[len(tgt):])[0]

    def reconstruct(self, sources: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The generated frame of ``target`` from its sources.

        Args:
            sources: ``(B, K, 3, H, W)`` in [0, 1].
            target: ``(B, 3, H, W)`` in [0, 1].
        Returns:
            ``generated`` ``(B, 3, H, W)``; per source ``warped`` ``(B, K, 3, H, W)``, ``flow``
            ``(B, K, 2, H, W)`` (pixels), ``logits`` ``(B, K, 1, H, W)`` (``C_i``) and ``weights``
            ``(B, K, 1, H, W)`` (softmax of ``C_i`` over ``K``); ``embedding`` ``(B, D)`` of the target.
        """
        if sources.dim() != 5 or target.dim() != 4 or sources.shape[0] != target.shape[0] \
                or sources.shape[2:] != target.shape[1:]:
            raise ConfigError(f"FAb-Net needs sources (B, K, 3, H, W) and target (B, 3, H, W); got "
                              f"{tuple(sources.shape)} and {tuple(target.shape)}")
        B, K = sources.shape[:2]
        flat = sources.flatten(0, 1)  # (B·K, 3, H, W), target b's sources at rows b·K .. b·K+K-1
        v = self.encode(torch.cat([target, flat]))  # one pass: batch norm sees targets and sources together
        v_t, v_s = v[:B], v[B:]
        flow, logits = self.decoder(v_t.repeat_interleave(K, dim=0), v_s)
        warped = warp(flat, flow).unflatten(0, (B, K))
        logits = logits.unflatten(0, (B, K))
        return {"generated": blend_sources(warped, logits), "warped": warped, "flow": flow.unflatten(0, (B, K)),
                "logits": logits, "weights": confidence_weights(logits), "embedding": v_t}

    def generate(self, sources: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`reconstruct` with the sources flat: ``sources`` ``(B·K, 3, H, W)`` (target ``b``'s sources
        at rows ``b·K .. b·K+K-1``), ``target`` ``(B, 3, H, W)``; for ``facedyn.load(run).generate(...)``."""
        B = target.shape[0]
        if B == 0 or sources.shape[0] % B:
            raise ConfigError(f"generate needs K sources per target: got {sources.shape[0]} sources for {B} targets")
        return self.reconstruct(sources.unflatten(0, (B, sources.shape[0] // B)), target)

    def forward(self, target: torch.Tensor, sources: torch.Tensor | None = None
                ) -> torch.Tensor | dict[str, torch.Tensor]:
        return self.encode(target) if sources is None else self.reconstruct(sources, target)
