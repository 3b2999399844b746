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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Subset

from facedyn.api import FaceModel, load
from facedyn.data.store import ClipDataset
from facedyn.data.windows import WindowDataset
from facedyn.dr.augment import jitter_windows
from facedyn.dr.dynamic_image import dynamic_image
from facedyn.dr.rank_loss import before_centre, centred, pair_deltas
from facedyn.dr.ranksvm import ranksvm_dr_batch
from facedyn.errors import ConfigError
from facedyn.reports.tables import to_markdown

FREE_METHODS = ("identity", "centred", "random", "di", "bdi", "seq-di", "ranksvm")
#: The (T, S) grid of dr-paper.txt Fig. 4 (``--grid fig4``).
FIG4_GRID: dict[str, list[int]] = {"T": [3, 5, 7, 9], "S": [1, 2, 3, 4]}


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


def _ok(d: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    return pair_deltas(d, window) > 0


def window_setting(model: FaceModel) -> tuple[int, int] | None:
    """The (T, S) a run was trained at, None for a method without a window."""
    T, S = getattr(model.cfg, "T", None), getattr(model.cfg, "S", None)
    return (int(T), int(S)) if T is not None and S is not None else None


def load_ranking_models(runs: Sequence[str | Path], device: torch.device | str = "cpu", weights: str = "best"
                        ) -> list[tuple[Path, FaceModel]]:
    """Each run loaded (``weights``: best, last, init or step<N>); ConfigError for a run without a DR output."""
    out = []
    for r in runs:
        model = load(r, weights=weights, device=device)
        if "dr" not in model.net.output_names:
            raise ConfigError(f"{r}: a {model.name!r} run has no DR output; frame ranking evaluates DR-family runs")
        out.append((Path(r), model))
    return out


def evaluate_ranking(
    data: str | Path,
    T: int,
    S: int,
    methods: Sequence[str] = ("identity", "centred", "random", "seq-di", "ranksvm"),
    runs: Sequence[str | Path] = (),
    loaded: Sequence[tuple[Path, FaceModel]] | None = None,
    split: str | None = "test",
    every: int = 1,
    max_windows: int | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    per_subject: bool = False,
    jitter: tuple[float, float, float] | None = None,
    fold: int | None = None,
) -> pd.DataFrame:
    """Ranking accuracy (%) of each method on the windows of ``data`` (one row per method).

    ``runs`` are run directories (or ``loaded``: already loaded ``(path, model)`` pairs, see
    :func:`load_ranking_models`); those trained at another (T, S) are ignored. DI-target baselines are
    paired by method into ``<method>-seq`` when both a ``di`` and a ``bdi`` run exist.
    ``split=None`` evaluates every clip of the dataset (e.g. another dataset than the training one);
    ``fold`` takes the split from the store's person-level fold. ``per_subject`` adds one row per method
    and person (column ``subject``; the pooled rows have ``subject == "all"``). ``jitter`` = (scale,
    shift px, rotation degrees): each window is re-aligned by a random similarity within those bounds
    (the same for all its frames), as if another aligner's template had been used (:func:`jitter_windows`).
    """
    for m in methods:
        if m not in FREE_METHODS:
            raise ConfigError(f"unknown ranking method {m!r}; choose from {', '.join(FREE_METHODS)} or give --run")
    ds = ClipDataset(data, fold=fold) if fold is not None else ClipDataset(data)
    wins = WindowDataset(ds, T, S, split=split, every=every)
    subjects = [c.subject for c in wins.clips]
    rng = np.random.default_rng(seed)
    idx = np.arange(len(wins))
    if max_windows is not None and len(idx) > max_windows:
        idx = np.sort(rng.choice(idx, max_windows, replace=False))
    subset = Subset(wins, idx.tolist())
    device = torch.device(device)
    loaded = list(loaded) if loaded is not None else load_ranking_models(runs, device)

    # Runs trained at another (T, S) are skipped. A DR ranks all pairs; a DI-target model the pairs
    # on its side, and a DI and a BDI model of one method also form "<method>-seq".
    models: dict[str, FaceModel] = {}
    sided: dict[str, dict[str, FaceModel]] = {}
    for path, model in loaded:
        if window_setting(model) not in (None, (T, S)):
            continue
        side = getattr(model.net, "pair_side", "all")
        if side == "all":
            models[model.label if model.label not in models else f"{model.label}:{path.name}"] = model
        else:
            sided.setdefault(model.name, {})[side] = model

    counts: dict[tuple[str, str], Counts] = {}
    batch_subjects: list[str] = []

    class _BySubject:
        """Adds a batch's correct pairs to each of its people's counts."""

        def __init__(self, name: str) -> None:
            self.name = name

        def add(self, ok: torch.Tensor, before: torch.Tensor, use_before: bool = True, use_after: bool = True) -> None:
            for subj in set(batch_subjects):
                rows = torch.tensor([s == subj for s in batch_subjects], device=ok.device)
                counts.setdefault((self.name, subj), Counts()).add(ok[rows], before, use_before, use_after)

    def c(name: str) -> _BySubject:
        return _BySubject(name)

    before = before_centre(T).to(device)
    gen = torch.Generator().manual_seed(seed)
    jgen = torch.Generator().manual_seed(seed + 1)
    loader = DataLoader(subset, batch_size=batch_size, shuffle=False)
    done = 0
    with torch.no_grad():
        for batch in loader:
            window = batch["window"].to(device)
            if jitter is not None:
                window = jitter_windows(window, *jitter, generator=jgen)
            centre = window[:, window.shape[1] // 2]
            batch_subjects[:] = [subjects[int(ci)] for ci in batch["clip"]]
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
            for name, model in models.items():
                c(name).add(_ok(model.net(centre), window), before)
            for mname, pair in sided.items():
                outs = {side: model.net(centre) for side, model in pair.items()}
                for side, d in outs.items():
                    c(pair[side].label).add(_ok(d, window), before)
                if len(outs) == 2:
                    c(f"{mname}-seq").add(_ok(outs["before"], window), before, use_after=False)
                    c(f"{mname}-seq").add(_ok(outs["after"], window), before, use_before=False)
            done += len(window)
            if progress:
                progress(done, len(subset))
    pooled: dict[str, Counts] = {}
    for (name, _), cnt in counts.items():
        p = pooled.setdefault(name, Counts())
        p.before_ok, p.before_n = p.before_ok + cnt.before_ok, p.before_n + cnt.before_n
        p.after_ok, p.after_n = p.after_ok + cnt.after_ok, p.after_n + cnt.after_n
    rows = [{"method": name, "T": T, "S": S, "windows": len(subset), **cnt.row()} for name, cnt in pooled.items()]
    if per_subject:
        for r in rows:
            r["subject"] = "all"
        rows += [{"method": name, "T": T, "S": S, "subject": subj, "windows": np.nan, **cnt.row()}
                 for (name, subj), cnt in sorted(counts.items())]
    return pd.DataFrame(rows)


def parse_ranking_grid(specs: Sequence[str]) -> list[tuple[int, int]]:
    """``["fig4"]`` or ``["T=3,5", "S=2"]`` → the (T, S) settings, S outermost as in Fig. 4."""
    grid: dict[str, list[int]] = {}
    for spec in specs:
        if spec.strip().lower() == "fig4":
            grid.update(FIG4_GRID)
            continue
        name, sep, values = spec.partition("=")
        name = name.strip()
        try:
            vals = [int(v) for v in values.split(",") if v.strip()]
        except ValueError:
            vals = []
        if not sep or name not in ("T", "S") or not vals or min(vals) < 1:
            raise ConfigError(f"--grid {spec!r}: use fig4, or T=3,5,7,9 and S=1,2 (positive integers)")
        grid[name] = vals
    if set(grid) != {"T", "S"}:
        raise ConfigError("--grid needs both T=... and S=... (or fig4)")
    return [(t, s) for s in grid["S"] for t in grid["T"]]


def rank_report(
    data: str | Path,
    out: str | Path,
    runs: Sequence[str | Path] = (),
    T: int | None = None,
    S: int | None = None,
    grid: Sequence[str] = (),
    methods: Sequence[str] = ("identity", "centred", "random", "seq-di", "ranksvm"),
    split: str = "test",
    every: int = 1,
    max_windows: int | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    jitter: tuple[float, float, float] | None = None,
    fold: int | None = None,
    weights: str = "best",
) -> dict[str, Any]:
    """``facedyn eval rank``: evaluate every setting and write ``ranking.csv``, ``ranking.md`` and figures.

    ``weights``: the runs' checkpoint: best, last, init or step<N> (kept with ``--keep-steps``: learning curves).

    ``fold``: ``split`` is taken from the store's person-level fold K (test = fold K, val = K+1), as a run
    trained with ``--fold K`` saw it.

    With ``jitter`` (scale, shift px, rotation degrees) every setting is evaluated a second time on windows
    re-aligned by random similarities within those bounds (rows ``<method> +jitter``, see
    :func:`jitter_windows`): how much a representation loses when faces come from another aligner.

    Settings: ``grid`` (see :func:`parse_ranking_grid`), else ``T``/``S``, each defaulting to the first
    run's. A run trained at a window (T, S) that is not among the settings is not evaluated; the markdown
    says so. Figures: the accuracy-vs-T curves (Fig. 4 style) for several settings, and a gallery of
    input / DR / centred / DI / BDI when a DR run (one that ranks all pairs) was given.
    Returns ``{"table": DataFrame, "markdown": str, "files": [paths]}``.
    """
    from facedyn import runs as run_io
    from facedyn.atomic import write_text
    from facedyn.device import resolve_device
    from facedyn.reports.plots import plot_ranking_curves
    from facedyn.reports.report import dr_gallery

    dev = resolve_device(device)
    loaded = load_ranking_models(run_io.expand_runs(list(runs)), dev, weights=weights)
    if grid:
        settings = parse_ranking_grid(grid)
    else:
        own = next((window_setting(m) for _, m in loaded if window_setting(m)), None)
        T = T if T is not None else (own[0] if own else None)
        S = S if S is not None else (own[1] if own else None)
        if T is None or S is None:
            raise ConfigError("give --T and --S, or a --run to take them from, or --grid")
        settings = [(int(T), int(S))]
    out = Path(out)
    sp = None if split == "all" else split
    frames = []
    for t, s in settings:
        label = f"rank T={t} S={s}"
        cb = (lambda d, n, label=label: progress(label, d, n)) if progress else None
        frames.append(evaluate_ranking(data, t, s, methods=methods, loaded=loaded, split=sp, every=every,
                                       max_windows=max_windows, device=dev, seed=seed, progress=cb, fold=fold))
        if jitter is not None:
            jit = evaluate_ranking(data, t, s, methods=methods, loaded=loaded, split=sp, every=every,
                                   max_windows=max_windows, device=dev, seed=seed, jitter=jitter, fold=fold)
            frames.append(jit.assign(method=jit["method"] + " +jitter"))
    table = pd.concat(frames, ignore_index=True)
    md = to_markdown(table)
    windows = [(path, window_setting(m)) for path, m in loaded]
    other = [f"`{path}` (T={w[0]}, S={w[1]})" for path, w in windows if w is not None and w not in settings]
    if other:  # a DR is scored at the window it was trained for; say which runs that left out
        md += ("\nNot evaluated, trained at another window than " + ", ".join(f"T={t} S={s}" for t, s in settings)
               + ": " + ", ".join(other) + ".\n")
    files = [out / "ranking.csv", out / "ranking.md"]
    write_text(files[0], table.to_csv(index=False, float_format="%.3f"))
    write_text(files[1], md)
    if len(settings) > 1:
        files.append(plot_ranking_curves(table, out / "figures" / "ranking.png"))
    dr = next((m for _, m in loaded if getattr(m.net, "pair_side", "all") == "all"), None)
    if dr is not None and window_setting(dr) is not None:
        t, s = window_setting(dr)  # type: ignore[misc]
        files.append(dr_gallery(data, dr, t, s, out / "figures" / "dr_gallery.png", split=sp, seed=seed))
    return {"table": table, "markdown": md, "files": files}
