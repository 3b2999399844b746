"""The eight recipes: each paper experiment as a sequence of stages, and its table beside the paper's numbers.

A recipe's ``build(ctx)`` adds its stages to the :class:`~facedyn.reproduce.stages.Context` and returns
the function that, once they have run, makes its comparison table (markdown) from their outputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facedyn.reproduce import paper
from facedyn.reproduce import stages as st
from facedyn.reproduce.settings import int_list

TableMaker = Callable[[], str]

#: display names of the ranking methods and task inputs
NAMES = {"dr": "DR (Rank Loss)", "unet_mse-seq": "UNet(MSE), Seq DI", "unet_p-seq": "UNet(P), Seq DI",
         "pix2pix-seq": "Pix2Pix, Seq DI", "ranksvm": "RankSVM (upper bound)", "seq-di": "true Seq DI",
         "centred": "centred still image", "identity": "still image", "random": "random",
         "si": "SI", "sdr": "SDR", "mdr": "MDR", "unet_mse": "UNet(MSE)", "unet_p": "UNet(P)", "pix2pix": "Pix2Pix",
         "di": "DI (true, window)", "bdi": "BDI (true, window)"}
BASELINES = ("unet_mse", "unet_p", "pix2pix")
TASK_INPUTS = ("si", "sdr", "mdr", "unet_mse", "unet_p", "pix2pix", "di", "bdi")
FABNET_CONFIGS: dict[str, dict[str, object]] = {"s1": {"n_sources": 1, "curriculum": False},
                                                "s1c": {"n_sources": 1, "curriculum": True},
                                                "s3c": {"n_sources": 3, "curriculum": True}}


@dataclass(frozen=True)
class Recipe:
    """One paper experiment: what it reproduces, the datasets it needs, and how to build its stages."""

    name: str
    title: str
    source: str
    datasets: tuple[str, ...]
    build: Callable[[st.Context], TableMaker]


def _fmt(v: float, digits: int = 3) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _md(df: pd.DataFrame) -> str:
    from facedyn.reports.tables import markdown_table

    return markdown_table(df, str)


# -- the DR family (dr-paper) -------------------------------------------------------------------------------

def _family(ctx: st.Context, recola: Path, T: int, S: int, targets: tuple[str, ...]) -> dict[str, Path]:
    """The DR and the DI-target baselines at (T, S) trained on RECOLA: ``{"dr": run, "unet_mse:di": run, ...}``."""
    runs = {"dr": st.train(ctx, "dr", recola, f"dr/T{T}_S{S}", {"T": T, "S": S})}
    feats = st.train(ctx, "vgg_features", recola, "vgg_features")
    for m in BASELINES:
        for target in targets:
            extra = {"features": str(feats)} if m == "unet_p" else {}
            runs[f"{m}:{target}"] = st.train(ctx, m, recola, f"{m}/{target}_T{T}_S{S}",
                                             {"T": T, "S": S, "target": target, **extra})
    return runs


def _ranking_table(paths: dict[str, Path]) -> pd.DataFrame:
    """Accuracy per method and (T, S) on each dataset and their average (the papers' 'average over two')."""
    parts = []
    for ds, out in paths.items():
        df = pd.read_csv(out / "ranking.csv")
        df = df[df.get("subject", pd.Series("all", index=df.index)).fillna("all") == "all"]
        parts.append(df[["method", "T", "S", "acc"]].rename(columns={"acc": ds}))
    tab = parts[0]
    for p in parts[1:]:
        tab = tab.merge(p, on=["method", "T", "S"], how="outer")
    tab["average"] = tab[list(paths)].mean(axis=1)
    return tab


def _dr_rank_recipe(ctx: st.Context, settings: list[tuple[int, int]]) -> TableMaker:
    recola = st.prepare(ctx, "recola", "dr")
    tests = {ds: st.prepare(ctx, ds, "dr") for ds in ("bp4d", "semaine")}
    runs: list[Path] = []
    for T, S in settings:
        runs += list(_family(ctx, recola, T, S, ("di", "bdi")).values())
    outs = {ds: st.rank(ctx, store, runs, ctx.results / f"rank_{ds}", settings) for ds, store in tests.items()}

    def table() -> str:
        tab = _ranking_table(outs)
        order = ["dr", "unet_mse-seq", "unet_p-seq", "pix2pix-seq", "ranksvm", "seq-di", "centred", "identity",
                 "random"]
        tab = tab[tab["method"].isin(order)].copy()
        tab["rank"] = tab["method"].map({m: i for i, m in enumerate(order)})
        tab = tab.sort_values(["S", "T", "rank"])
        rows = pd.DataFrame({
            "T": tab["T"].astype(int), "S": tab["S"].astype(int),
            "method": [NAMES.get(m, m) for m in tab["method"]],
            **{f"{ds} acc %": [_fmt(v, 1) for v in tab[ds]] for ds in outs},
            "average %": [_fmt(v, 1) for v in tab["average"]],
            "paper": [paper.RANKING_DR if m == "dr" else "–" for m in tab["method"]]})
        return "\n".join(["Frame-ranking accuracy (% of Eq. 2 pairs ranked correctly) of models trained on RECOLA, "
                          "on every clip of BP4D and SEMAINE.", "", _md(rows), "",
                          f"Paper: {paper.RANKING_SOURCE}."])

    return table


def build_fig3(ctx: st.Context) -> TableMaker:
    T, S = int(ctx.settings.get("T", 5)), int(ctx.settings.get("S", 2))
    return _dr_rank_recipe(ctx, [(T, S)])


def build_fig4(ctx: st.Context) -> TableMaker:
    Ts = int_list(ctx.settings.get("grid_T", "3,5,7,9"), "grid_T")
    Ss = int_list(ctx.settings.get("grid_S", "1,2,3,4"), "grid_S")
    return _dr_rank_recipe(ctx, [(t, s) for s in Ss for t in Ts])


def _table_inputs(ctx: st.Context, task: str, store: Path, levels: tuple[int, ...], config: dict[str, object]
                  ) -> list[Path]:
    recola = st.prepare(ctx, "recola", "dr")
    drs = [st.train(ctx, "dr", recola, f"dr/T{T}_S2", {"T": T, "S": 2}) for T in levels]
    fam = _family(ctx, recola, 5, 2, ("di",))
    st.represent(ctx, store, [*drs, *(fam[f"{m}:di"] for m in BASELINES)], windows=("di", "bdi"))
    return [st.train(ctx, task, store, f"{task}_{store.name.split('-')[0]}/{inp}", {"input": inp, **config})
            for inp in TASK_INPUTS]


def build_table1(ctx: st.Context) -> TableMaker:
    bp4d = st.fera2015_split(ctx, st.prepare(ctx, "bp4d", "dr"))
    runs = _table_inputs(ctx, "au", bp4d, (5,), {"model": "hg"})
    out = st.evaluate_task(ctx, "au", bp4d, runs, ctx.results / "au")

    def table() -> str:
        df = pd.read_csv(out / "au.csv").set_index("input")
        cols = [*paper.DR_AUS, "avg"]
        lines = []
        for metric in ("icc", "mse"):
            rows = []
            for inp in [i for i in TASK_INPUTS if i in df.index]:
                rows.append({"input": f"{NAMES[inp]} + HG-HMR", "source": "facedyn",
                             **{c: _fmt(df.loc[inp, f"{metric}_{c}"], 2) for c in cols}})
                if inp in paper.TABLE1:
                    name, vals = paper.TABLE1[inp][metric]
                    rows.append({"input": "", "source": f"paper: {name}",
                                 **{c: f"{v:.2f}" for c, v in zip(cols, vals, strict=True)}})
            lines += [f"**{metric.upper()}** ({'higher' if metric == 'icc' else 'lower'} is better)", "",
                      _md(pd.DataFrame(rows)), ""]
        return "\n".join(["AU intensity on BP4D (test: the FERA 2015 development subjects), HG-HMR on each input.",
                          "", *lines, f"Paper: {paper.TABLE1_SOURCE}. 95 % intervals: {out / 'au.md'}."])

    return table


def build_table2(ctx: st.Context) -> TableMaker:
    semaine = st.prepare(ctx, "semaine", "dr")
    vgg = ctx.settings.get("vgg_weights")
    runs = _table_inputs(ctx, "affect", semaine, (3, 5), {"vgg_weights": vgg} if vgg else {})
    out = st.evaluate_task(ctx, "affect", semaine, runs, ctx.results / "affect")

    def table() -> str:
        df = pd.read_csv(out / "affect.csv").set_index("input")
        rows = []
        for inp in [i for i in TASK_INPUTS if i in df.index]:
            rows.append({"input": f"{NAMES[inp]} + VGG", "source": "facedyn",
                         **{f"{d} {m.upper()}": _fmt(df.loc[inp, f"{m}_{d}"]) if f"{m}_{d}" in df else "–"
                            for d in ("arousal", "valence") for m in ("pcc", "mse", "ccc")}})
            if inp in paper.TABLE2:
                name, a_pcc, a_mse, v_pcc, v_mse = paper.TABLE2[inp]
                rows.append({"input": "", "source": f"paper: {name}", "arousal PCC": f"{a_pcc:.3f}",
                             "arousal MSE": f"{a_mse:.3f}", "arousal CCC": "–", "valence PCC": f"{v_pcc:.3f}",
                             "valence MSE": f"{v_mse:.3f}", "valence CCC": "–"})
        weights = ("fine-tuned from the given VGG-16 weights" if vgg
                   else "trained from scratch (no VGG-Face weights given)")
        return "\n".join([f"Valence and arousal on the SEMAINE test sessions, VGG-16 {weights}.", "",
                          _md(pd.DataFrame(rows)), "", f"Paper: {paper.TABLE2_SOURCE}. 95 % intervals: "
                          f"{out / 'affect.md'}."])

    return table


# -- TCAE and FAb-Net ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuProtocol:
    """A dataset's AU-detection protocol: which AUs, from which label columns, present at which value."""

    aus: tuple[int, ...]
    column: str  # label column of an AU, ``str.format``-ed with the AU number
    presence: float
    labels: str  # the labels, in words

    @property
    def columns(self) -> list[str]:
        return [self.column.format(a) for a in self.aus]


#: The AU-detection protocol TCAE reports (and the field uses): occurrence of 12 BP4D AUs (the release's AU_OCC
#: codes) and 8 DISFA AUs (intensity >= 2 = present), subject-exclusive 3-fold, F1 per AU and their average.
TCAE_PROTOCOL: dict[str, AuProtocol] = {
    "bp4d": AuProtocol((1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24), "AU{:02d}_occ", 1.0,
                       "occurrence codes of AUCoding/AU_OCC, present = code 1, frames of the coded segments"),
    "disfa": AuProtocol((1, 2, 4, 6, 9, 12, 25, 26), "AU{:02d}", 2.0, "intensity labels, present = intensity >= 2"),
}
TCAE_FOLDS = 3


def _fold_text(out: Path) -> str:
    path = out / "folds.json"
    if not path.is_file():
        return "–"
    folds = json.loads(path.read_text())["folds"]
    return " | ".join(", ".join(f) for f in folds)


def build_tcae(ctx: st.Context) -> TableMaker:
    vox = st.prepare(ctx, "voxceleb", "tcae", "box")
    run = st.train(ctx, "tcae", vox, "tcae")
    outs = {}
    for ds, proto in TCAE_PROTOCOL.items():
        store = st.prepare(ctx, ds, "tcae", "box")
        outs[ds] = st.probe(ctx, run, store, "au", ctx.results / f"probe_{ds}", features=("au",), folds=TCAE_FOLDS,
                            presence=proto.presence, au_columns=proto.columns)

    def table() -> str:
        lines = []
        for ds, out in outs.items():
            proto = TCAE_PROTOCOL[ds]
            df = pd.read_csv(out / "probes_au.csv")
            f1 = {f"AU{a}": f"{c} F1" for a, c in zip(proto.aus, proto.columns, strict=True)}
            rows = []
            for _, r in df.iterrows():
                name = {"trained": "TCAE AU embedding", "init": "same network at init",
                        "pixels": f"pixels ({r['features']})"}.get(r["representation"], r["representation"])
                rows.append({"representation": name,
                             **{au: _fmt(100 * float(r[c]), 1) if c in r else "–" for au, c in f1.items()},
                             "avg": _fmt(100 * float(r["mean F1"]), 1) if "mean F1" in r else "–"})
            missing = [au for au, c in f1.items() if c not in df or df[c].isna().all()]
            lines += [f"**{ds.upper()}**: F1 (%) of {len(proto.aus)} AUs; {proto.labels}; subject-exclusive "
                      f"{TCAE_FOLDS}-fold (test subjects per fold: {_fold_text(out)}), the folds' predictions "
                      "pooled; avg = mean of the AUs' F1", "", _md(pd.DataFrame(rows)), ""]
            if missing:
                lines += [f"No F1 for {', '.join(missing)}: no positive frame (or no label) among the probed test "
                          "frames; avg is over the other AUs.", ""]
        return "\n".join(["Linear AU-detection probes of TCAE's AU embedding (trained on VoxCeleb tracks), on the "
                          "TCAE paper's AU-detection protocol.", "", *lines,
                          "TCAE's published averages: not quoted, the seeds give no published numbers "
                          f"({paper.TCAE_SOURCE})."])

    return table


def _fabnet_runs(ctx: st.Context) -> dict[str, Path]:
    vox = st.prepare(ctx, "voxceleb", "fabnet", "box")
    return {v: st.train(ctx, "fabnet", vox, f"fabnet/{v}", cfg) for v, cfg in FABNET_CONFIGS.items()}


def _fabnet_probes(ctx: st.Context, dataset: str, task: str) -> dict[str, Path]:
    runs = _fabnet_runs(ctx)
    store = st.prepare(ctx, dataset, "fabnet", "box")
    return {v: st.probe(ctx, run, store, task, ctx.results / f"probe_{dataset}_{v}", test_split="test")
            for v, run in runs.items()}


def _variant_rows(outs: dict[str, Path], task: str, columns: list[str], paper_rows: dict[str, tuple[float, ...]],
                  scale: float = 1.0) -> pd.DataFrame:
    rows = []
    for v, out in outs.items():
        df = pd.read_csv(out / f"probes_{task}.csv").set_index("representation")
        rows.append({"variant": paper.FABNET_VARIANTS[v], "source": "facedyn",
                     **{c: _fmt(scale * float(df.loc["trained", c]), 2) if c in df else "–" for c in columns}})
        if v == "s1":
            base = {"init": "same network at init (s1)", "pixels": "pixels, PCA (s1)"}
            for rep, name in base.items():
                rows.append({"variant": name, "source": "facedyn",
                             **{c: _fmt(scale * float(df.loc[rep, c]), 2) if c in df else "–" for c in columns}})
        rows.append({"variant": "", "source": "paper",
                     **{c: f"{x:.2f}" for c, x in zip(columns, paper_rows[v], strict=False)}})
    return pd.DataFrame(rows)


def build_fabnet_landmarks(ctx: st.Context) -> TableMaker:
    outs = {ds: _fabnet_probes(ctx, ds, "landmarks") for ds in ("300w", "mafl")}

    def table() -> str:
        rows = []
        for v in FABNET_CONFIGS:
            r = {"variant": paper.FABNET_VARIANTS[v]}
            for ds, label in (("300w", "300-W"), ("mafl", "MAFL")):
                df = pd.read_csv(outs[ds][v] / "probes_landmarks.csv").set_index("representation")
                r[f"{label} facedyn"] = _fmt(float(df.loc["trained", "NME %"]), 2)
                r[f"{label} paper"] = f"{paper.FABNET_LANDMARKS[v][0 if ds == '300w' else 1]:.2f}"
                r[f"{label} init"] = _fmt(float(df.loc["init", "NME %"]), 2)
            rows.append(r)
        return "\n".join(["Landmark error (% of inter-ocular distance; 300-W: outer eye corners, 68 points; MAFL: eye "
                          "centres, 5 points) of linear probes on FAb-Net embeddings trained on VoxCeleb; test: the "
                          "datasets' own test splits. 'init': the same network untrained.", "", _md(pd.DataFrame(rows)),
                          "", f"Paper: {paper.FABNET_LANDMARKS_SOURCE}."])

    return table


def build_fabnet_pose(ctx: st.Context) -> TableMaker:
    outs = _fabnet_probes(ctx, "aflw", "pose")

    def table() -> str:
        cols = ["roll MAE", "pitch MAE", "yaw MAE", "mean MAE"]
        return "\n".join(["Head-pose error (degrees) of linear probes on FAb-Net embeddings, AFLW test split "
                          "(aflw_test.txt when given; else prepare's seeded split, not KEPLER's).", "",
                          _md(_variant_rows(outs, "pose", cols, paper.FABNET_POSE)), "",
                          f"Paper: {paper.FABNET_POSE_SOURCE}."])

    return table


def build_fabnet_au(ctx: st.Context) -> TableMaker:
    outs = _fabnet_probes(ctx, "emotionet", "au")

    def table() -> str:
        cols = [f"{a} AUC" for a in paper.FABNET_AUS] + ["mean AUC"]
        return "\n".join(["AU AUC (%) of linear probes on FAb-Net embeddings, EmotioNet (prepare's seeded split of "
                          "the manually annotated images; the paper's split is not in the seeds). The paper's avg. "
                          "is over its 11 AUs; facedyn's mean is over the AUs present in the test split.", "",
                          _md(_variant_rows(outs, "au", cols, paper.FABNET_AU, scale=100.0)), "",
                          f"Paper: {paper.FABNET_AU_SOURCE}."])

    return table


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("dr-fig3", "DR, UNet(MSE), UNet(P), Pix2Pix trained on RECOLA; frame ranking on SEMAINE and BP4D; "
           "RankSVM upper bound", "dr-poster Fig. 3 (one (T, S) of dr-paper Fig. 4; T=5, S=2 unless --set)",
           ("recola", "semaine", "bp4d"), build_fig3),
    Recipe("dr-fig4", "the T x S grid (T 3,5,7,9 x S 1,2,3,4) of the same", "dr-paper Fig. 4",
           ("recola", "semaine", "bp4d"), build_fig4),
    Recipe("dr-table1", "AU intensity on BP4D (FERA 2015, AUs 6,10,12,14,17): HG-HMR on SI/SDR/MDR and the "
           "DI-target baselines; ICC(3,1), MSE", "dr-paper Table 1", ("recola", "bp4d"), build_table1),
    Recipe("dr-table2", "valence/arousal on SEMAINE with VGG-16: PCC, MSE (+CCC)", "dr-paper Table 2",
           ("recola", "semaine"), build_table2),
    Recipe("tcae-au", "TCAE on VoxCeleb tracks; linear AU-detection probes on TCAE's protocol: occurrence of 12 "
           "BP4D AUs and 8 DISFA AUs (intensity >= 2), subject-exclusive 3-fold, F1 per AU and average",
           "TCAE (CVPR 2019) AU detection tables", ("voxceleb", "bp4d", "disfa"), build_tcae),
    Recipe("fabnet-landmarks", "FAb-Net on VoxCeleb (1-source / curriculum / 3-source); landmark probes on MAFL "
           "(5 pts) and 300-W (68 pts), NME by inter-ocular distance", "FAb-Net Table 1",
           ("voxceleb", "mafl", "300w"), build_fabnet_landmarks),
    Recipe("fabnet-pose", "the same embeddings; AFLW yaw/pitch/roll MAE", "FAb-Net Table 2", ("voxceleb", "aflw"),
           build_fabnet_pose),
    Recipe("fabnet-au", "the same embeddings; EmotioNet AU AUC", "FAb-Net Table 3", ("voxceleb", "emotionet"),
           build_fabnet_au),
)}
