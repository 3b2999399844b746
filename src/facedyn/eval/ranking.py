"""Frame-ranking evaluation (dr-paper.txt §4.3, Fig. 4).

For every valid centre frame of the evaluated clips, its ``2T + 1`` window at stride ``S`` is scored
by each method's representation ``d``: ``S_a = <d, I_a>``, and a pair of Eq. 2 is correct when
``delta_ab > 0`` (ties are wrong). Accuracy is the percentage of correct pairs, reported over all
pairs and separately for the pairs before and after the centre frame.

Methods:
    ``dr``          a Rank-Loss DR run (``facedyn train dr``)
    ``<m>-seq``     a DI-target baseline ``m`` (unet_mse, unet_p, pix2pix): the DI-trained model
                    scores the pairs before ``t``, the BDI-trained one the pairs after ("Seq DI");
                    ``<m>-di`` / ``<m>-bdi``: each model alone on all pairs
    ``seq-di``      the true DI (frames t−T..t) for the pairs before and BDI (t+T..t) after
    ``di``/``bdi``  the true DI or BDI alone, on all pairs
    ``ranksvm``     a RankSVM fitted on the window's own frames with Eq. 2 constraints (upper bound)
    ``identity``    d = I_t;  ``centred``: d = I_t minus its own per-channel mean (all pixels)
    ``random``      d with i.i.d. N(0, 1) entries (the chance floor)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset

from facedyn.config import DRConfig
from facedyn.data.store import ClipDataset
from facedyn.data.windows import WindowDataset
from facedyn.dr.dynamic_image import dynamic_image
from facedyn.dr.rank_loss import centred, eq2_pairs, pair_deltas
from facedyn.dr.ranksvm import ranksvm_dr_batch
from facedyn.errors import CheckpointError, ConfigError

FREE_METHODS = ("identity", "centred", "random", "di", "bdi", "seq-di", "ranksvm")
GRID_T = (3, 5, 7, 9)
GRID_S = (1, 2, 3, 4)


@dataclass
class Counts:
    """Correct and total pairs before / after the centre frame."""

    before_ok: int = 0
    before_n: int = 0
    after_ok: int = 0
    after_n: int = 0

    def add(self, ok: torch.Tensor, before: torch.Tensor, use_before: bool = True, use_after: bool = True) -> None:
        """``ok`` bool ``(B, P)`` correct pairs; ``before`` bool ``(P,)`` pair lies before the centre."""
        if use_before:
            self.before_ok += int(ok[:, before].sum())
            self.before_n += int(ok[:, before].numel())
        if use_after:
            self.after_ok += int(ok[:, ~before].sum())
            self.after_n += int(ok[:, ~before].numel())

    def row(self) -> dict[str, float]:
        n = self.before_n + self.after_n
        return {"acc": 100 * (self.before_ok + self.after_ok) / n if n else float("nan"),
                "acc_before": 100 * self.before_ok / self.before_n if self.before_n else float("nan"),
                "acc_after": 100 * self.after_ok / self.after_n if self.after_n else float("nan"),
                "pairs": n}


def load_run(run: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, DRConfig]:
    """A trained DR-family run directory → (network in eval mode with its best weights, config)."""
    from facedyn.dr.model import build_net
    from facedyn.train.loop import load_weights

    run = Path(run)
    cfg_file = run / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"{run}: not a run directory (no config.json); give a directory made by `facedyn train`")
    saved = json.loads(cfg_file.read_text())
    if "dr" not in saved:
        raise CheckpointError(f"{run}: is a {saved.get('method')!r} run, not a DR-family run")
    cfg = DRConfig.from_dict(saved["dr"])
    net = build_net(cfg)
    ck = run / "checkpoints" / "best.safetensors"
    if not ck.exists():
        ck = run / "checkpoints" / "last.safetensors"
    load_weights(ck, {"net": net})
    return net.to(device).eval(), cfg


def _side_mask(T: int) -> torch.Tensor:
    a, b = eq2_pairs(T)
    return (a <= T) & (b < T)


def _ok(d: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    return pair_deltas(d, window) > 0


def evaluate_ranking(
    data: str | Path,
    T: int,
    S: int,
    methods: Sequence[str] = ("identity", "centred", "random", "seq-di", "ranksvm"),
    runs: Sequence[str | Path] = (),
    split: str | None = "test",
    every: int = 1,
    max_windows: int | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Ranking accuracy (%) of each method on the windows of ``data`` (one row per method).

    ``runs`` are run directories; those whose (T, S) differ from the requested are ignored. DI-target
    baselines are paired by method into ``<method>-seq`` when both a ``di`` and a ``bdi`` run exist.
    ``split=None`` evaluates every clip of the dataset (e.g. another dataset than the training one).
    """
    for m in methods:
        if m not in FREE_METHODS:
            raise ConfigError(f"unknown ranking method {m!r}; choose from {', '.join(FREE_METHODS)} or give --run")
    ds = ClipDataset(data)
    wins = WindowDataset(ds, T, S, split=split, every=every)
    rng = np.random.default_rng(seed)
    idx = np.arange(len(wins))
    if max_windows is not None and len(idx) > max_windows:
        idx = np.sort(rng.choice(idx, max_windows, replace=False))
    subset = Subset(wins, idx.tolist())
    device = torch.device(device)

    models: dict[str, torch.nn.Module] = {}
    baselines: dict[str, dict[str, torch.nn.Module]] = {}
    for r in runs:
        net, cfg = load_run(r, device)
        if (cfg.T, cfg.S) != (T, S):
            continue
        if cfg.method == "dr":
            name = "dr" if "dr" not in models else f"dr:{Path(r).name}"
            models[name] = net
        else:
            baselines.setdefault(cfg.method, {})[cfg.target] = net

    counts: dict[str, Counts] = {}

    def c(name: str) -> Counts:
        return counts.setdefault(name, Counts())

    before = _side_mask(T)
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False)
    done = 0
    with torch.no_grad():
        for batch in loader:
            window = batch["window"].to(device)
            centre = batch["centre"].to(device)
            if any(m in ("di", "bdi", "seq-di") for m in methods):  # true DI/BDI once per batch
                di = dynamic_image(window, direction="forward")
                bdi = dynamic_image(window, direction="backward")
            for m in methods:
                if m == "identity":
                    c(m).add(_ok(centre, window), before)
                elif m == "centred":
                    c(m).add(_ok(centred(centre), window), before)
                elif m == "random":
                    d = torch.randn(centre.shape, generator=gen).to(device)
                    c(m).add(_ok(d, window), before)
                elif m == "di":
                    c(m).add(_ok(di, window), before)
                elif m == "bdi":
                    c(m).add(_ok(bdi, window), before)
                elif m == "seq-di":
                    c(m).add(_ok(di, window), before, use_after=False)
                    c(m).add(_ok(bdi, window), before, use_before=False)
                elif m == "ranksvm":
                    d = torch.as_tensor(ranksvm_dr_batch(window.cpu()), dtype=window.dtype)
                    c(m).add(_ok(d.to(device), window), before)
            for name, net in models.items():
                c(name).add(_ok(net(centre), window), before)
            for bname, pair in baselines.items():
                outs = {k: net(centre) for k, net in pair.items()}
                for k, d in outs.items():
                    c(f"{bname}-{k}").add(_ok(d, window), before)
                if "di" in outs and "bdi" in outs:
                    c(f"{bname}-seq").add(_ok(outs["di"], window), before, use_after=False)
                    c(f"{bname}-seq").add(_ok(outs["bdi"], window), before, use_before=False)
            done += len(window)
            if progress:
                progress(done, len(subset))
    rows = [{"method": name, "T": T, "S": S, "windows": len(subset), **cnt.row()} for name, cnt in counts.items()]
    return pd.DataFrame(rows)


def to_markdown(df: pd.DataFrame) -> str:
    """A markdown table of ranking results (accuracy in %, one decimal)."""
    cols = ["method", "T", "S", "windows", "acc", "acc_before", "acc_after"]
    cols = [c for c in cols if c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df[cols].iterrows():
        cells = [f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
