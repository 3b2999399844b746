"""How far the first Adam steps move TCAE's displacements: remakes item 4 of docs/results/tcae/diagnosis.md
("What the table says": three steps from the initial network moved tau^A and tau^P by ~2 px at flow_gain 1,
lr 1e-3, and by 0.2-0.4 px at flow_gain 1/16).

For every combination of ``--flow-gain`` and ``--lr``: a TCAE method (:class:`facedyn.tcae.model.TCAEMethod`,
width 8, the default embedding size, no flips, no jitter) is built from ``--seed`` on ``--size`` px crops; a
batch of random source and target images is drawn; the network takes ``--steps`` Adam steps on its training loss
(Eq. 7 at full weights); printed is the mean per-pixel length (px) of the change of tau^A and of tau^P on that
batch (training mode, as in the steps), the measurement of
tests/tcae/test_model.py::test_default_recipe_moves_displacements_by_subpixel_steps.

    .venv/bin/python scripts/tcae_diag/step.py [--flow-gain 1,0.0625] [--lr 1e-3] [--steps 3] [--width 8]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import print_table

COLUMNS = [
    ("flow_gain", "flow_gain", "g"),
    ("lr", "lr", "g"),
    ("steps", "Adam steps", ""),
    ("tau_au_moved_px", "τ^A moved px", ".2f"),
    ("tau_pose_moved_px", "τ^P moved px", ".2f"),
]


def moved(flow_gain: float, lr: float, steps: int = 3, width: int = 8, emb_dim: int = 256, size: int = 64,
          batch: int = 8, seed: int = 0) -> tuple[float, float]:
    """Mean per-pixel length (px) of the change of tau^A and of tau^P after ``steps`` Adam steps."""
    import torch

    from facedyn.method import DataSpec
    from facedyn.tcae.model import TCAEConfig, TCAEMethod

    torch.manual_seed(seed)
    m = TCAEMethod(TCAEConfig(width=width, emb_dim=emb_dim, augment=False, jitter=0.0, flow_gain=flow_gain, lr=lr),
                   DataSpec(size=size))
    g = torch.Generator().manual_seed(seed + 1)
    src, tgt = torch.rand(batch, 3, size, size, generator=g), torch.rand(batch, 3, size, size, generator=g)

    def fields() -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            c = m.net.cycle(src, tgt)
        return c["tau_a"], c["tau_p"]

    a0, p0 = fields()
    opt = torch.optim.Adam(m.net.parameters(), lr=m.cfg.lr, betas=m.cfg.betas)
    for _ in range(steps):
        loss = m.losses({"source": src, "target": tgt})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    a1, p1 = fields()
    return float((a1 - a0).norm(dim=1).mean()), float((p1 - p0).norm(dim=1).mean())


def floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Remakes item 4 of docs/results/tcae/diagnosis.md.")
    ap.add_argument("--flow-gain", type=floats, default=[1.0, 0.0625],
                    help="displacement gains, comma-separated (default 1,0.0625: before and after the fix)")
    ap.add_argument("--lr", type=floats, default=[1e-3], help="Adam learning rates, comma-separated (default 1e-3)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--emb-dim", type=int, default=256)
    ap.add_argument("--size", type=int, default=64, help="crop size of the random images (default 64)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this CSV")
    a = ap.parse_args(argv)

    import pandas as pd

    rows = []
    for gain in a.flow_gain:
        for lr in a.lr:
            ta, tp = moved(gain, lr, a.steps, a.width, a.emb_dim, a.size, a.batch, a.seed)
            rows.append({"flow_gain": gain, "lr": lr, "steps": a.steps, "tau_au_moved_px": ta,
                         "tau_pose_moved_px": tp})
    print_table(pd.DataFrame(rows), COLUMNS, a.out)


if __name__ == "__main__":
    main()
