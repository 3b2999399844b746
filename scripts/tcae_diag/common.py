"""What the TCAE diagnosis scripts of ``scripts/tcae_diag/`` share (docs/results/tcae/diagnosis.md).

* :func:`validation_pairs`: the source/target pairs every measurement runs on: pairs of one clip
  ``min_gap_s``..``max_gap_s`` apart (0.04-1 s) selected as the trainer selects its validation pairs
  (:meth:`facedyn.tcae.model.TCAEMethod.dataset`: ``n`` of them, spread evenly over the split's people), with
  one fixed seed, so that every run and checkpoint is measured on the same pairs;
* :func:`inner`: a field or image less ``BORDER`` px per side (a displacement that samples outside the image
  gets no gradient, so the edge drifts freely; the diagnosis reports the inside of the crop);
* :func:`within_clip_share`: the share of embeddings' variance that lies within clips;
* :func:`print_table`: a markdown table (stdout) and, optionally, a CSV.

Heavy imports (torch, facedyn) happen inside the functions, so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import torch

#: the store ``make models`` builds (64 px box-aligned crops of the real footage; relative to the repository)
DEFAULT_DATA = "models_work/real64box"
#: pixels left out on each side of the crop for the "inside the crop" measurements
BORDER = 6
#: the trainer validates a run of seed s on pairs drawn with seed s + 1 (facedyn.train.runner): 1 for seed 0
PAIR_SEED = 1


@dataclass
class Pairs:
    """Source and target frames ``(N, 3, S, S)`` in [0, 1] and the clip of each pair ``(N,)``."""

    source: torch.Tensor
    target: torch.Tensor
    clip: torch.Tensor

    def __len__(self) -> int:
        return len(self.source)


def add_pair_options(ap: argparse.ArgumentParser, pairs: int = 96) -> None:
    """``--data``, ``--pairs``, ``--split``, ``--pair-seed``: which validation pairs to measure on."""
    ap.add_argument("--data", default=DEFAULT_DATA,
                    help=f"clip store the pairs come from (default: {DEFAULT_DATA}, the store `make models` builds)")
    ap.add_argument("--pairs", type=int, default=pairs, help=f"number of pairs (default {pairs})")
    ap.add_argument("--split", default="val", choices=("train", "val", "test"), help="people the pairs come from")
    ap.add_argument("--pair-seed", type=int, default=PAIR_SEED,
                    help=f"seed of the pairs' targets (default {PAIR_SEED}: the draw a seed-0 run validates on)")


def validation_pairs(method: Any, data: str | Path, n: int, split: str = "val", seed: int = PAIR_SEED,
                     fold: int | None = None) -> Pairs:
    """``n`` pairs of ``split`` drawn with ``seed`` as ``method`` (a TCAE method object: its ``min_gap_s``,
    ``max_gap_s``) draws its validation pairs: every pair of the split (:class:`facedyn.data.windows.PairDataset`,
    through :meth:`facedyn.method.Method.dataset`), then ``n`` of them evenly spaced, as
    :meth:`facedyn.tcae.model.TCAEMethod.dataset` caps them at ``val_pairs`` (for the train split too, where the
    trainer draws curriculum pairs instead). The store is opened with the run's ``fold`` when it trained on one."""
    import numpy as np
    import torch

    from facedyn.method import Method
    from facedyn.train.runner import open_store

    ds = Method.dataset(method, open_store(data, fold), split, seed=seed)
    idx = sorted({int(i) for i in np.linspace(0, len(ds) - 1, min(n, len(ds))).round()})
    items = [ds[i] for i in idx]
    return Pairs(torch.stack([it["source"] for it in items]), torch.stack([it["target"] for it in items]),
                 torch.tensor([int(it["clip"]) for it in items]))


def store_pairs(data: str | Path, n: int, split: str = "val", seed: int = PAIR_SEED, min_gap_s: float = 0.04,
                max_gap_s: float = 1.0) -> Pairs:
    """:func:`validation_pairs` of a store without a run (a TCAE method object with the default config)."""
    from facedyn.data.store import ClipDataset
    from facedyn.method import DataSpec
    from facedyn.tcae.model import TCAEConfig, TCAEMethod

    spec = DataSpec.from_dict(ClipDataset(data).spec())
    method = TCAEMethod(TCAEConfig(width=4, emb_dim=8, min_gap_s=min_gap_s, max_gap_s=max_gap_s), spec)
    return validation_pairs(method, data, n, split, seed)


def inner(x: torch.Tensor, border: int = BORDER) -> torch.Tensor:
    """``x`` ``(..., H, W)`` less ``border`` pixels on each side (all of it when that leaves nothing)."""
    H, W = x.shape[-2:]
    if border <= 0 or 2 * border >= min(H, W):
        return x
    return x[..., border:H - border, border:W - border]


def edge_mask(H: int, W: int, border: int = BORDER) -> torch.Tensor:
    """bool ``(H, W)``: the pixels :func:`inner` leaves out."""
    import torch

    m = torch.ones(H, W, dtype=torch.bool)
    if border <= 0 or 2 * border >= min(H, W):
        return ~m
    inner(m, border)[...] = False
    return m


def within_clip_share(emb: torch.Tensor, clip: torch.Tensor) -> float:
    """Share of the variance of ``emb`` ``(N, D)`` (summed over dimensions) that lies within clips: the squared
    deviations from each clip's mean over those from the overall mean. 0: constant within every clip; 1: every
    clip has the same mean."""
    e = emb.double()
    total = (e - e.mean(0)).pow(2).sum()
    within = sum((e[clip == c] - e[clip == c].mean(0)).pow(2).sum() for c in clip.unique())
    return float(within / total) if total > 0 else float("nan")


def weights_list(run: str | Path, spec: str) -> list[str]:
    """Checkpoint names of ``spec``: ``init``, ``best``, ``last``, ``step<N>`` or ``all`` (every kept step, then
    ``last``), comma-separated, in that order, duplicates dropped."""
    from facedyn.tasks.probes import probe_weights

    out: list[str] = []
    for w in (x.strip() for x in spec.split(",")):
        if w == "init":
            out.append(w)
        elif w:
            out += probe_weights(run, w)
    return list(dict.fromkeys(out))


def weights_label(run: str | Path, weights: str) -> str:
    """``init``, ``step<N>``, or ``best``/``last`` with the step it was saved at (``last (450)``)."""
    from facedyn import runs

    if weights == "init" or weights.startswith("step"):
        return weights
    step = runs.checkpoint_step(runs.resolve_run(run), weights)
    return f"{weights} ({step})" if step is not None else weights


def print_table(df: pd.DataFrame, columns: list[tuple[str, str, str]], out: str | Path | None = None) -> str:
    """Print ``df``'s ``columns`` (``(column, heading, format)``, e.g. ``("rec", "L_rec / copy", ".3f")``) as a
    markdown table; with ``out``, write all of ``df`` there as CSV. Returns the table."""
    from facedyn.reports.tables import markdown_table

    view = df[[c for c, _, _ in columns]].copy()
    for c, _, f in columns:
        view[c] = [format(v, f) if f and isinstance(v, float) else str(v) for v in view[c]]
    view.columns = [h for _, h, _ in columns]
    text = markdown_table(view, fmt=str)
    print(text, end="", flush=True)
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(out, index=False)
    return text
