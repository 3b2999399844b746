"""TCAE network: shapes, identity at zero displacement, gradients, the cycles' decoder inputs, curriculum."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from facedyn.errors import ConfigError
from facedyn.method import DataSpec
from facedyn.nn.warp import warp
from facedyn.tcae.curriculum import CurriculumPairs, max_gap_at
from facedyn.tcae.model import TCAEConfig, TCAEMethod, TCAENet, tcae_terms


@pytest.fixture(scope="module")
def net() -> TCAENet:
    torch.manual_seed(0)
    return TCAENet(32, width=4, emb_dim=16)


def test_shapes(net: TCAENet) -> None:
    src, tgt = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)
    assert net.encode(src).shape == (3, 16) and net(src).shape == (3, 16)
    outs = net.outputs(src)
    assert set(outs) == set(net.output_names) == {"au", "pose"}
    assert torch.equal(outs["au"], net.encode(src)) and outs["pose"].shape == (3, 16)
    c = net.cycle(src, tgt)
    for k in ("tau_a", "tau_p", "tau", "tau_a_unit"):
        assert c[k].shape == (3, 2, 32, 32)
    for k in ("out", "I_A", "I_P", "back_a", "back_p"):
        assert c[k].shape == (3, 3, 32, 32)
    assert c["alpha_a"].shape == (3, 1, 32, 32)
    assert torch.allclose(c["tau_a"], c["tau_a_unit"] * 32)
    r = net.reconstruct(src, tgt)
    assert {"source", "target", "au_changed", "pose_changed", "reconstruction", "tau_au", "tau_pose",
            "alpha_au"} <= set(r)
    # embeddings are layer-normalised: zero mean, unit variance over their dimensions
    assert torch.allclose(outs["pose"].mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(outs["pose"].var(1, unbiased=False), torch.ones(3), atol=0.05)  # (LayerNorm eps)


@pytest.mark.parametrize("stride", [1, 2])
def test_zero_displacement_is_the_identity(stride: int) -> None:
    net = TCAENet(32, width=4, emb_dim=16, flow_stride=stride)
    for dec in (net.au_decoder, net.pose_decoder):
        torch.nn.init.zeros_(dec.out.weight)
    src, tgt = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    r = net.reconstruct(src, tgt)
    assert torch.count_nonzero(r["tau"]) == 0
    for k in ("au_changed", "pose_changed", "reconstruction"):
        assert torch.allclose(r[k], src, atol=1e-5)  # (float32 rounding of the sampling grid)
    assert torch.allclose(r["alpha_au"], torch.full_like(r["alpha_au"], 0.5))
    assert torch.allclose(warp(src, torch.zeros(2, 2, 32, 32)), src, atol=1e-5)


def test_gradients_reach_both_decoders_and_the_encoder() -> None:
    torch.manual_seed(1)
    m = TCAEMethod(TCAEConfig(width=4, emb_dim=16), DataSpec(size=32))
    losses = m.losses({"source": torch.rand(4, 3, 32, 32), "target": torch.rand(4, 3, 32, 32)})
    assert {"loss", "rec", "l1_a", "cyc", "emb"} <= set(losses)
    losses["loss"].backward()
    for part in ("encoder", "au_decoder", "pose_decoder"):
        mod = getattr(m.net, part)
        grads = [p.grad for p in mod.parameters()]
        assert all(g is not None for g in grads), part
        assert all(torch.count_nonzero(g) > 0 for g in grads), part  # every layer, first ones included


def test_reverse_transforms_take_changed_then_original_embedding(net: TCAENet,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """AU cycle: D_A(phi_s^A, phi_s); pose cycle: D_P(psi_s^P, psi_s) (the notes print (psi_s psi_s^A): a typo)."""
    calls: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {"au": [], "pose": []}
    for name, dec in (("au", net.au_decoder), ("pose", net.pose_decoder)):
        orig = dec.forward

        def rec(a: torch.Tensor, b: torch.Tensor, orig=orig, name=name) -> tuple[torch.Tensor, torch.Tensor]:
            calls[name].append((a, b))
            return orig(a, b)

        monkeypatch.setattr(dec, "forward", rec)
    c = net.cycle(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    (a0, b0), (a1, b1) = calls["au"]
    assert torch.equal(a0, c["phi_s"]) and torch.equal(b0, c["phi_t"])
    assert torch.equal(a1, c["phi_sA"]) and torch.equal(b1, c["phi_s"])
    (p0, q0), (p1, q1) = calls["pose"]
    assert torch.equal(p0, c["psi_s"]) and torch.equal(q0, c["psi_t"])
    assert torch.equal(p1, c["psi_sP"]) and torch.equal(q1, c["psi_s"])


def test_terms_match_the_equations(net: TCAENet) -> None:
    src, tgt = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    c = net.cycle(src, tgt)
    t = tcae_terms(c, src, tgt)
    assert torch.allclose(t["rec"], (c["out"] - tgt).abs().sum((1, 2, 3)))
    sq = (lambda a, b: (c[a] - c[b]).pow(2).sum(1))  # noqa: E731
    assert torch.allclose(t["emb_p"], sq("phi_sP", "phi_s") + sq("psi_sP", "psi_t"))  # Eq. 6
    assert torch.allclose(t["emb_a"], sq("psi_sA", "psi_s") + sq("phi_sA", "phi_t"))  # Eq. 5


def test_bad_size_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match="power of two"):
        TCAENet(48)


def test_curriculum_schedule() -> None:
    got = [max_gap_at(e, 8, 0.2, 1.0, 0.5) for e in range(1, 9)]
    assert got == pytest.approx([0.2, 0.2 + 0.8 / 3, 0.2 + 1.6 / 3, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert max_gap_at(1, 8, 0.2, 1.0, 0.0) == 1.0
    with pytest.raises(ConfigError):
        max_gap_at(1, 8, 0.2, 1.0, 2.0)


def test_curriculum_pairs_respect_the_cap_also_in_workers(synth_store) -> None:  # type: ignore[no-untyped-def]
    ds = CurriculumPairs(synth_store, 0.04, 1.0, split="train", seed=0)
    fps = ds.clips[0].fps
    ds.set_max_gap(0.12)  # 3 frames at 25 fps
    gaps = [abs(ds.pair(i)[2] - ds.pair(i)[1]) for i in range(len(ds))]
    assert max(gaps) <= round(0.12 * fps) and min(gaps) >= 1
    ds.set_max_gap(1.0)
    assert max(abs(ds.pair(i)[2] - ds.pair(i)[1]) for i in range(len(ds))) > 3
    loader = DataLoader(ds, batch_size=len(ds), num_workers=1, persistent_workers=True)
    ds.set_max_gap(0.08)
    next(iter(loader))
    ds.set_max_gap(0.04)  # changed after the worker started: it sees the shared value
    ds.set_epoch(3)
    batch = next(iter(loader))
    assert batch["gap"].abs().max() <= 1
    assert ds.epoch == 3


def test_warmup_and_jitter() -> None:
    from facedyn.tcae.model import jitter_frames, warmup_factor

    assert [warmup_factor(s, 100, 0.5) for s in (0, 25, 50, 99)] == [0.0, 0.5, 1.0, 1.0]
    assert warmup_factor(0, 100, 0.0) == 1.0
    m = TCAEMethod(TCAEConfig(width=4, emb_dim=16, lambda1=0.5, lambda2=0.2, lambda3=0.1), DataSpec(size=32))
    m.on_step(10, 100)  # warm-up over the first 50 steps: a fifth of the weights
    assert (m.weights.lambda1, m.weights.lambda2, m.weights.lambda3) == pytest.approx((0.1, 0.04, 0.02))
    flat = torch.full((2, 3, 32, 32), 0.3)
    assert torch.allclose(jitter_frames(flat, 0.1), flat)  # a shifted constant image stays constant
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(jitter_frames(x, 0.0), x)
    y = jitter_frames(x, 0.1)
    assert y.shape == x.shape and (y - x).abs().mean() > 0.01


def test_validation_uses_the_full_weights() -> None:
    torch.manual_seed(2)
    m = TCAEMethod(TCAEConfig(width=4, emb_dim=16), DataSpec(size=32))
    batch = {"source": torch.rand(3, 3, 32, 32), "target": torch.rand(3, 3, 32, 32)}
    m.net.eval()
    with torch.no_grad():
        full = m.validation_step(batch)["loss"]
        m.on_step(0, 100)  # warm-up factor 0 during training
        assert m.weights.lambda2 == 0
        again = m.validation_step(batch)["loss"]
    assert torch.allclose(full, again) and (full > m.validation_step(batch)["rec"]).all()


def test_flow_gain_scales_the_decoded_displacement() -> None:
    torch.manual_seed(3)
    src, tgt = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    nets = {g: TCAENet(32, width=4, emb_dim=16, flow_gain=g) for g in (1.0, 0.25)}
    nets[0.25].load_state_dict(nets[1.0].state_dict())
    for n in nets.values():
        n.eval()
    with torch.no_grad():
        r1, rq = nets[1.0].reconstruct(src, tgt), nets[0.25].reconstruct(src, tgt)
    assert torch.allclose(rq["tau_au"], 0.25 * r1["tau_au"], atol=1e-6)
    assert torch.allclose(rq["tau_pose"], 0.25 * r1["tau_pose"], atol=1e-6)
    assert torch.allclose(rq["alpha_au"], r1["alpha_au"])  # the masks are not scaled


def test_default_recipe_moves_displacements_by_subpixel_steps() -> None:
    """The defaults' first Adam steps move the displacements by a fraction of a pixel, not by more than the
    ~1 px a face moves between frames (with the decoders' output in whole crop sides, flow_gain = 1, three
    steps at lr 1e-3 moved them by ~2 px: L_rec then favoured input-independent, near-zero displacements
    and clip-constant embeddings, docs/results/tcae/diagnosis.md)."""
    def moved(**kw: float) -> float:
        torch.manual_seed(0)
        m = TCAEMethod(TCAEConfig(width=8, emb_dim=32, augment=False, jitter=0.0, **kw), DataSpec(size=64))
        g = torch.Generator().manual_seed(1)
        src, tgt = torch.rand(8, 3, 64, 64, generator=g), torch.rand(8, 3, 64, 64, generator=g)

        def fields() -> torch.Tensor:
            with torch.no_grad():
                c = m.net.cycle(src, tgt)
            return torch.cat([c["tau_a"], c["tau_p"]])

        before = fields()
        opt = torch.optim.Adam(m.net.parameters(), lr=m.cfg.lr)
        for _ in range(3):
            loss = m.losses({"source": src, "target": tgt})["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
        return float((fields() - before).norm(dim=1).mean())

    assert moved() < 0.5
    assert moved(flow_gain=1.0) > 4 * moved()
