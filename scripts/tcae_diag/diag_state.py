"""State of TCAE checkpoints on validation pairs: remakes the table of docs/results/tcae/diagnosis.md, section
"Experiments" (one row per run and checkpoint), with the measurements of its section "What was measured".

Each checkpoint runs in eval mode (``facedyn.load(RUN, weights=W)``) on ``--pairs`` validation pairs (0.04-1 s
apart, drawn as the trainer draws its validation pairs, spread evenly over the split's people; the same pairs
for every checkpoint and every run with the same gap range). Columns, in the document's order:

* ``L_rec / copy``: mean |tau(I_s) - I_t| over mean |I_s - I_t| over the whole crop (1: no better than copying
  the source; the training's ``val_rec_vs_floor``);
* ``same, targets' embeddings := sources'``: the same with each target's embeddings replaced by its source's
  (phi_t := phi_s, psi_t := psi_s; ``reconstruct(I_s, I_s)`` warped onto I_t): a decoder that reads motion from
  its embeddings then predicts ~no motion;
* ``|tau^A| px``, ``|tau^P| px``: mean per-pixel length of each displacement field inside the crop less 6 px per
  side, with the target's embeddings and with the source's ("same emb");
* ``alpha^A SD across pairs``: at each pixel (inside the crop) the SD of alpha^A over the pairs, averaged over the
  pixels (input dependence); ``alpha^A SD across pixels``: the SD over the pixels of alpha^A's mean over the pairs
  (spatial structure);
* ``phi / psi within-clip var``: the share of the variance of the source frames' embeddings that lies within
  clips (0: the embedding is constant within a clip, an identity code).

The CSV (``--out``) also holds the fields' lengths over the edge (``*_edge``) and the whole crop (``*_crop``), and
the mean of alpha^A.

    .venv/bin/python scripts/tcae_diag/diag_state.py RUN [RUN ...] [--weights init,all] \\
        [--data models_work/real64box] [--pairs 96] [--split val] [--out CSV]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common import (
    BORDER,
    add_pair_options,
    edge_mask,
    inner,
    print_table,
    validation_pairs,
    weights_label,
    weights_list,
    within_clip_share,
)

if TYPE_CHECKING:
    from common import Pairs

#: (CSV column, heading in diagnosis.md, format)
COLUMNS = [
    ("run", "run", ""),
    ("weights", "weights", ""),
    ("rec_vs_copy", "L_rec / copy", ".3f"),
    ("rec_vs_copy_same_emb", "same, targets' embeddings := sources'", ".3f"),
    ("tau_au_px", "\\|τ^A\\| px", ".2f"),
    ("tau_au_px_same_emb", "\\|τ^A\\| px, same emb", ".2f"),
    ("tau_pose_px", "\\|τ^P\\| px", ".2f"),
    ("tau_pose_px_same_emb", "\\|τ^P\\| px, same emb", ".2f"),
    ("alpha_au_sd_pairs", "α^A SD across pairs", ".3f"),
    ("alpha_au_sd_pixels", "α^A SD across pixels", ".3f"),
    ("phi_within_clip", "φ within-clip var", ".3f"),
    ("psi_within_clip", "ψ within-clip var", ".3f"),
]


def measure(model: Any, pairs: Pairs, border: int = BORDER, batch_size: int = 32) -> dict[str, float]:
    """The columns of :data:`COLUMNS` (and the CSV's extra ones) of one loaded TCAE model on ``pairs``."""
    import torch

    parts: dict[str, list[torch.Tensor]] = {}

    def add(key: str, value: torch.Tensor) -> None:
        parts.setdefault(key, []).append(value.double())

    for i in range(0, len(pairs), batch_size):
        s, t = pairs.source[i:i + batch_size], pairs.target[i:i + batch_size]
        H, W = s.shape[-2:]
        edge = edge_mask(H, W, border)
        add("copy", (s - t).abs().flatten(1).mean(1))
        for suffix, r in (("", model.reconstruct(s, t)), ("_same_emb", model.reconstruct(s, s))):
            add("rec" + suffix, (r["reconstruction"] - t).abs().flatten(1).mean(1))
            for key, name in (("tau_au", "tau_au_px"), ("tau_pose", "tau_pose_px")):
                length = r[key].norm(dim=1)  # (B, H, W) pixels
                add(name + suffix, inner(length, border).flatten(1).mean(1))
                add(name + suffix + "_crop", length.flatten(1).mean(1))
                if edge.any():
                    add(name + suffix + "_edge", length[:, edge].mean(1))
            if not suffix:
                add("alpha", inner(r["alpha_au"][:, 0], border))
    cat = {k: torch.cat(v) for k, v in parts.items()}
    copy = float(cat["copy"].mean())
    alpha = cat.pop("alpha")  # (N, h, w)
    out = {"rec_vs_copy": float(cat["rec"].mean()) / copy,
           "rec_vs_copy_same_emb": float(cat["rec_same_emb"].mean()) / copy}
    for k, v in cat.items():
        if k.startswith("tau_"):
            out[k] = float(v.mean())
    out["alpha_au_sd_pairs"] = float(alpha.std(0).mean()) if len(alpha) > 1 else float("nan")
    out["alpha_au_sd_pixels"] = float(alpha.mean(0).std())
    out["alpha_au_mean"] = float(alpha.mean())
    emb = model.outputs(pairs.source)
    out["phi_within_clip"] = within_clip_share(emb["au"], pairs.clip)
    out["psi_within_clip"] = within_clip_share(emb["pose"], pairs.clip)
    out["copy_l1"] = copy
    out["pairs"] = len(pairs)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Remakes the 'Experiments' table of docs/results/tcae/diagnosis.md.")
    ap.add_argument("runs", nargs="+", metavar="RUN", help="TCAE run directories")
    ap.add_argument("--weights", default="init,all",
                    help="checkpoints, comma-separated: init, best, last, step<N>, all (every kept step, then last); "
                         "default init,all")
    add_pair_options(ap)
    ap.add_argument("--border", type=int, default=BORDER, help=f"px left out per side (default {BORDER})")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=None, help="also write the table (and extra columns) to this CSV")
    a = ap.parse_args(argv)

    import pandas as pd

    import facedyn

    rows = []
    for run in a.runs:
        pairs = None
        for w in weights_list(run, a.weights):
            model = facedyn.load(run, weights=w, device=a.device)
            if model.name != "tcae":
                ap.error(f"{run}: a {model.name} run; give TCAE runs")
            if pairs is None:
                pairs = validation_pairs(model.method, a.data, a.pairs, a.split, a.pair_seed,
                                         getattr(model.cfg, "fold", None))
            rows.append({"run": Path(run).name, "weights": weights_label(run, w), **measure(model, pairs, a.border)})
    print_table(pd.DataFrame(rows), COLUMNS, a.out)


if __name__ == "__main__":
    main()
