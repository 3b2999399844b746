"""Warping by displacement fields: identity, whole-pixel shifts, gradients."""

from __future__ import annotations

import pytest
import torch

from facedyn.errors import ConfigError
from facedyn.nn.warp import base_grid, warp


def test_zero_flow_is_the_identity() -> None:
    img = torch.rand(2, 3, 9, 7)
    torch.testing.assert_close(warp(img, torch.zeros(2, 2, 9, 7)), img, rtol=0, atol=1e-6)


def test_integer_flow_shifts_by_whole_pixels() -> None:
    img = torch.rand(1, 1, 6, 8)
    flow = torch.zeros(1, 2, 6, 8)
    flow[:, 0] = 2.0  # sample two columns to the right
    flow[:, 1] = -1.0  # and one row up
    out = warp(img, flow)
    torch.testing.assert_close(out[0, 0, 1:, :6], img[0, 0, :-1, 2:], rtol=0, atol=1e-6)


def test_half_pixel_is_the_average_and_gradients_reach_image_and_flow() -> None:
    img = torch.rand(1, 1, 4, 4, requires_grad=True)
    flow = torch.zeros(1, 2, 4, 4, requires_grad=True)
    with torch.no_grad():
        flow[:, 0] = 0.5
    out = warp(img, flow)
    torch.testing.assert_close(out[0, 0, :, :3], 0.5 * (img[0, 0, :, :3] + img[0, 0, :, 1:]))
    out.sum().backward()
    assert img.grad is not None and flow.grad is not None and flow.grad.abs().sum() > 0


def test_base_grid_and_shape_errors() -> None:
    g = base_grid(1, 2, 3)
    assert g[0, 0].tolist() == [[0, 1, 2], [0, 1, 2]] and g[0, 1].tolist() == [[0, 0, 0], [1, 1, 1]]
    with pytest.raises(ConfigError):
        warp(torch.rand(1, 3, 4, 4), torch.zeros(1, 3, 4, 4))


def test_subpixel_displacements_survive_bfloat16() -> None:
    """Positions are summed in float32: in bfloat16, x + 0.1 rounds back to x for x >= 32 (steps of 0.25)."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 64, 64)
    f = torch.full((1, 2, 64, 64), 0.1).bfloat16()
    ref = warp(x, f.float())
    assert torch.allclose(warp(x, f), ref, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.allclose(warp(x, f), ref, atol=1e-6)
    assert ((ref - x).abs()[..., 1:-1, 40:-1] > 1e-4).float().mean() > 0.9  # the right half moves too
    fb = f.clone().requires_grad_(True)
    warp(x, fb).sum().backward()
    ff = f.float().requires_grad_(True)
    warp(x, ff).sum().backward()
    assert torch.allclose(fb.grad.float(), ff.grad, rtol=0.02, atol=1e-3)
