"""UNet: shapes, gradient flow, zero-initialised output, size errors, presets."""

from __future__ import annotations

import pytest
import torch

from facedyn.errors import ConfigError
from facedyn.nn.unet import UNet


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(("depth", "H", "W"), [(1, 6, 10), (2, 8, 12), (3, 16, 24), (4, 16, 48)])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_output_shape(depth: int, H: int, W: int, norm: str) -> None:
    net = UNet(in_channels=3, out_channels=5, depth=depth, width=4, norm=norm)  # type: ignore[arg-type]
    y = net(torch.rand(2, 3, H, W))
    assert y.shape == (2, 5, H, W)
    assert y.dtype == torch.float32
    assert bool(torch.isfinite(y).all())


def test_bilinear_up_and_other_channel_counts() -> None:
    net = UNet(in_channels=6, out_channels=1, depth=3, width=4, up="bilinear")
    assert net(torch.rand(1, 6, 16, 16)).shape == (1, 1, 16, 16)


def test_gradient_reaches_the_first_layer() -> None:
    net = UNet(depth=3, width=4)
    x = torch.rand(2, 3, 16, 16, requires_grad=True)
    net(x).square().mean().backward()
    first = net.inc[0].weight
    assert first.grad is not None and float(first.grad.abs().sum()) > 0
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is not None for p in net.parameters())


def test_final_zero_init_gives_exactly_zero_and_then_learns() -> None:
    net = UNet(depth=2, width=4, final_zero_init=True)
    x = torch.rand(3, 3, 8, 8)
    y = net(x)
    assert torch.equal(y, torch.zeros_like(y))
    target = torch.randn(3, 3, 8, 8)
    for _ in range(2):  # plain gradient steps: the first moves only the last layer, the second the rest
        net.zero_grad()
        (net(x) - target).square().mean().backward()
        with torch.no_grad():
            for p in net.parameters():
                if p.grad is not None:
                    p -= 0.1 * p.grad
    with torch.no_grad():
        assert float(net(x).abs().max()) > 0


def test_residual_input_adds_the_input() -> None:
    net = UNet(depth=2, width=4, residual_input=True, final_zero_init=True)
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(net(x), x)
    with pytest.raises(ConfigError, match="in_channels == out_channels"):
        UNet(in_channels=3, out_channels=1, residual_input=True)


def test_size_not_divisible_is_a_config_error() -> None:
    net = UNet(depth=4, width=4)
    assert net.multiple == 16
    with pytest.raises(ConfigError, match="divisible by 16"):
        net(torch.rand(1, 3, 40, 48))
    with pytest.raises(ConfigError, match="expects"):
        net(torch.rand(1, 1, 48, 48))
    for bad in ({"depth": 0}, {"width": 0}, {"norm": "group"}, {"up": "pixelshuffle"}):
        with pytest.raises(ConfigError):
            UNet(**bad)  # type: ignore[arg-type]


def test_presets_and_parameter_counts() -> None:
    cpu = UNet.cpu()
    assert (cpu.depth, cpu.width) == (4, 16)
    assert 1.5e6 < n_params(cpu) < 2.5e6  # 1.94 M
    paper = UNet.paper()
    assert (paper.depth, paper.width) == (4, 64)
    assert abs(n_params(paper) - 31.04e6) < 0.1e6  # the classic UNet's ~31 M parameters
    # doubling the width roughly quadruples the parameters
    assert 3.5 < n_params(UNet(width=32)) / n_params(UNet(width=16)) < 4.5
    assert UNet.cpu(out_channels=1, norm="none").out_channels == 1
    with torch.no_grad():
        assert cpu.eval()(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
