"""PatchGAN70 receptive field and shapes; VGG16Features layout, weight loading, perceptual loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from facedyn.errors import CheckpointError, InputNotFoundError
from facedyn.nn.patchgan import PatchGAN70, receptive_field
from facedyn.nn.vgg import VGG16Features, load_vgg16_weights, perceptual_loss

# torchvision's vgg16().features: convolutions at these indices (ReLU after each, 5 max-pools).
TORCHVISION_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
EXPECTED_KEYS = [f"features.{i}.{p}" for i in TORCHVISION_CONVS for p in ("weight", "bias")]


def _measured_receptive_field(net: torch.nn.Module, size: int) -> tuple[int, int]:
    """Rows and columns of the input that one central output logit depends on (gradient != 0)."""
    net.eval()  # batch norm in train mode would couple every pixel through the batch statistics
    x = torch.randn(1, 6, size, size, requires_grad=True)
    y = net(x)
    h, w = y.shape[-2:]
    y[0, 0, h // 2, w // 2].backward()
    g = x.grad.abs().sum(dim=(0, 1))
    rows = torch.nonzero(g.sum(dim=1)).flatten()
    cols = torch.nonzero(g.sum(dim=0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_patchgan_receptive_field_is_70(norm: str) -> None:
    torch.manual_seed(0)
    net = PatchGAN70(in_channels=6, width=4, n_layers=3, norm=norm)
    if norm == "instance":
        # instance norm couples all pixels of a channel; measure the conv stack alone
        net = torch.nn.Sequential(*[m for m in net.model if not isinstance(m, torch.nn.InstanceNorm2d)])
    assert receptive_field(3) == 70
    assert _measured_receptive_field(net, 160) == (70, 70)


@pytest.mark.parametrize(("n_layers", "rf"), [(1, 16), (2, 34), (3, 70), (4, 142)])
def test_patchgan_receptive_field_formula_matches_measurement(n_layers: int, rf: int) -> None:
    torch.manual_seed(0)
    net = PatchGAN70(width=2, n_layers=n_layers, norm="none")
    assert net.receptive_field == rf
    assert _measured_receptive_field(net, rf + 64) == (rf, rf)


def test_patchgan_layout_and_output_shape() -> None:
    net = PatchGAN70(in_channels=6, width=64)
    convs = [m for m in net.model if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert all(c.kernel_size == (4, 4) for c in convs)
    assert convs[0].bias is not None and convs[1].bias is None  # no bias before batch norm
    out = PatchGAN70(width=8)(torch.rand(2, 6, 64, 64))
    assert out.shape == (2, 1, 6, 6)


def test_vgg_state_dict_matches_torchvision_keys() -> None:
    net = VGG16Features()
    sd = net.state_dict()
    assert list(sd) == EXPECTED_KEYS
    assert sd["features.0.weight"].shape == (64, 3, 3, 3)
    assert sd["features.28.weight"].shape == (512, 512, 3, 3)
    assert len(net.features) == 31
    assert isinstance(net.features[30], torch.nn.MaxPool2d)


def test_vgg_returns_four_relu_maps() -> None:
    net = VGG16Features(width=4)
    feats = net(torch.rand(2, 3, 32, 32))
    assert [tuple(f.shape) for f in feats] == [(2, 4, 32, 32), (2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]
    assert all(bool((f >= 0).all()) for f in feats)  # ReLU outputs
    assert net.channels() == [4, 8, 16, 32]
    # ImageNet normalisation happens inside with normalize=True
    x = torch.rand(1, 3, 16, 16)
    a = net(x)[0]
    b = net((x - net.mean) / net.std, normalize=False)[0]
    torch.testing.assert_close(a, b)


def _torchvision_like_state(tmp: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    sd = {k: torch.randn_like(v) for k, v in VGG16Features().state_dict().items()}
    # a full torchvision vgg16 file also holds the classifier; it must be ignored
    sd["classifier.0.weight"] = torch.randn(8, 4)
    sd["classifier.0.bias"] = torch.randn(8)
    sd["classifier.6.weight"] = torch.randn(3, 8)
    return sd


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_load_vgg16_weights_round_trip(tmp_path: Path, suffix: str) -> None:
    sd = _torchvision_like_state()
    path = tmp_path / f"vgg16{suffix}"
    if suffix == ".pth":
        torch.save(sd, path)
    else:
        save_file(sd, str(path))
    net = load_vgg16_weights(path)
    got = net.state_dict()
    for k in EXPECTED_KEYS:
        torch.testing.assert_close(got[k], sd[k])
    assert not any(p.requires_grad for p in net.parameters())
    assert not net.training


def test_load_vgg16_weights_accepts_truncated_features(tmp_path: Path) -> None:
    sd = {k: v for k, v in _torchvision_like_state().items() if k.startswith("features.")
          and int(k.split(".")[1]) <= 21}
    path = tmp_path / "vgg16_to_relu4_3.pth"
    torch.save(sd, path)
    net = load_vgg16_weights(path)
    torch.testing.assert_close(net.state_dict()["features.21.weight"], sd["features.21.weight"])


def test_load_vgg16_weights_rejects_bad_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pth"):
        load_vgg16_weights(junk)
    junk_st = tmp_path / "junk.safetensors"
    junk_st.write_bytes(b"\x00" * 16)
    with pytest.raises(CheckpointError):
        load_vgg16_weights(junk_st)
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match=r"features\.0\.weight"):
        load_vgg16_weights(other)
    wrong_shape = _torchvision_like_state()
    wrong_shape["features.2.weight"] = torch.zeros(64, 64, 5, 5)
    bad = tmp_path / "wrong_shape.pth"
    torch.save(wrong_shape, bad)
    with pytest.raises(CheckpointError, match="shape"):
        load_vgg16_weights(bad)
    bn = tmp_path / "vgg16_bn.pth"
    torch.save({**_torchvision_like_state(), "features.1.running_mean": torch.zeros(64)}, bn)
    with pytest.raises(CheckpointError, match="vgg16_bn"):
        load_vgg16_weights(bn)
    with pytest.raises(InputNotFoundError):
        load_vgg16_weights(tmp_path / "missing.pth")


def test_perceptual_loss_closed_form() -> None:
    a = [torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 2, 2)]
    b = [torch.ones(2, 3, 4, 4), torch.full((2, 5, 2, 2), 2.0)]
    assert float(perceptual_loss(a, a)) == 0.0
    assert float(perceptual_loss(a, b)) == pytest.approx(1.0 + 4.0)
    assert float(perceptual_loss(a, b, weights=[0.5, 0.25])) == pytest.approx(0.5 + 1.0)
