"""How much of the validation pairs' motion one global translation explains: remakes the oracle line of
docs/results/tcae/diagnosis.md, section "What was measured" (``oracle.py``: 0.72 x copy, median shift 1.1 px).

On the pairs ``diag_state.py`` measures (same store, split, count and seed), each source is shifted as a whole by
every ``(dx, dy)`` on a grid of ``--step`` px (½ px) within ``--max-shift`` px (backward warp, border pixels
repeated: :func:`facedyn.nn.warp.warp`, as TCAE warps), and the shift with the smallest mean |shifted source -
target| inside the crop less 6 px per side is kept per pair. Printed: that error over the copy error (mean
|I_s - I_t|) inside the crop, the same over the whole crop at the same shifts, and the median and mean length
of the shifts kept. ``--out`` writes one row per pair (shift, errors).

    .venv/bin/python scripts/tcae_diag/oracle.py [--data models_work/real64box] [--pairs 96] [--split val] \\
        [--max-shift 4] [--step 0.5] [--out CSV]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from common import BORDER, add_pair_options, inner, print_table, store_pairs

if TYPE_CHECKING:
    import torch

COLUMNS = [
    ("pairs", "pairs", ""),
    ("translation_vs_copy", "best global translation / copy, inside the crop", ".3f"),
    ("translation_vs_copy_crop", "same, whole crop", ".3f"),
    ("median_shift_px", "median shift px", ".2f"),
    ("mean_shift_px", "mean shift px", ".2f"),
]


def best_translations(source: torch.Tensor, target: torch.Tensor, max_shift: float = 4.0, step: float = 0.5,
                      border: int = BORDER, batch_size: int = 64) -> dict[str, torch.Tensor]:
    """Per pair ``(N,)``: the best global shift ``dx``, ``dy`` (px), the mean absolute error inside the crop at
    that shift (``err``) and over the whole crop (``err_crop``), and the copy errors (``copy``, ``copy_crop``)."""
    import torch

    from facedyn.nn.warp import warp

    grid = torch.arange(-max_shift, max_shift + step / 2, step)
    out: dict[str, list[torch.Tensor]] = {}
    for i in range(0, len(source), batch_size):
        s, t = source[i:i + batch_size], target[i:i + batch_size]
        B = len(s)
        best = torch.full((B,), float("inf"))
        best_crop, bdx, bdy = torch.zeros(B), torch.zeros(B), torch.zeros(B)
        for dy in grid.tolist():
            for dx in grid.tolist():
                flow = torch.tensor([dx, dy]).view(1, 2, 1, 1).expand(B, 2, *s.shape[-2:])
                diff = (warp(s, flow) - t).abs()
                e = inner(diff, border).flatten(1).mean(1)
                better = e < best
                best = torch.where(better, e, best)
                best_crop = torch.where(better, diff.flatten(1).mean(1), best_crop)
                bdx = torch.where(better, torch.tensor(dx), bdx)
                bdy = torch.where(better, torch.tensor(dy), bdy)
        copy = (s - t).abs()
        for k, v in (("dx", bdx), ("dy", bdy), ("err", best), ("err_crop", best_crop),
                     ("copy", inner(copy, border).flatten(1).mean(1)), ("copy_crop", copy.flatten(1).mean(1))):
            out.setdefault(k, []).append(v)
    return {k: torch.cat(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Remakes the oracle figures of docs/results/tcae/diagnosis.md.")
    add_pair_options(ap)
    ap.add_argument("--min-gap-s", type=float, default=0.04, help="smallest source-target gap (TCAE's default)")
    ap.add_argument("--max-gap-s", type=float, default=1.0, help="largest source-target gap (TCAE's default)")
    ap.add_argument("--max-shift", type=float, default=4.0, help="largest shift searched, px per axis (default 4)")
    ap.add_argument("--step", type=float, default=0.5, help="search step, px (default 0.5)")
    ap.add_argument("--border", type=int, default=BORDER, help=f"px left out per side (default {BORDER})")
    ap.add_argument("--out", type=Path, default=None, help="write one row per pair to this CSV")
    a = ap.parse_args(argv)

    import pandas as pd

    pairs = store_pairs(a.data, a.pairs, a.split, a.pair_seed, a.min_gap_s, a.max_gap_s)
    r = best_translations(pairs.source, pairs.target, a.max_shift, a.step, a.border)
    shift = (r["dx"] ** 2 + r["dy"] ** 2).sqrt()
    summary = pd.DataFrame([{
        "pairs": len(pairs),
        "translation_vs_copy": float(r["err"].double().mean() / r["copy"].double().mean()),
        "translation_vs_copy_crop": float(r["err_crop"].double().mean() / r["copy_crop"].double().mean()),
        "median_shift_px": float(shift.double().quantile(0.5)),
        "mean_shift_px": float(shift.mean()),
    }])
    print_table(summary, COLUMNS)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        per_pair = pd.DataFrame({k: v.numpy() for k, v in r.items()}).assign(clip=pairs.clip.numpy(),
                                                                            shift_px=shift.numpy())
        per_pair.to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
