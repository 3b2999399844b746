"""Write ``MODEL_CARD.md`` beside a shipped model from its run record, its metrics and its learning curve.

    .venv/bin/python scripts/model_card.py src/facedyn/assets/models/dr-t5 --curve docs/results/curves/dr-t5

Everything in the card is read from files the training and evaluation wrote (``config.json``, ``metrics.csv``,
the ``curve.csv`` of ``facedyn eval curve``): data (people, frames), steps, hours, CPU and precision, the
held-out table, the curve.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from facedyn import methods
from facedyn.atomic import write_text
from facedyn.data.store import ClipDataset
from facedyn.errors import DatasetError
from facedyn.eval.curves import probe_curve_table


def _describe(method: str, cfg: dict, data: dict) -> str:
    crops = f"{data.get('size')} px crops ({data.get('align')} alignment)"
    if method == "fabnet":
        return (f"Method `fabnet`: {cfg.get('n_sources')} source frame(s) within {cfg.get('max_gap_s')} s, "
                f"curriculum {'on' if cfg.get('curriculum') else 'off'}, embedding {cfg.get('embedding_dim')}-d, "
                f"width {cfg.get('width')}, {crops}.")
    if method == "tcae":
        return (f"Method `tcae`: twin-cycle autoencoder, AU embedding phi and pose embedding psi "
                f"{cfg.get('emb_dim')}-d each, width {cfg.get('width')}, pairs {cfg.get('min_gap_s')}–"
                f"{cfg.get('max_gap_s')} s apart, lambda1..3 = {cfg.get('lambda1')}, {cfg.get('lambda2')}, "
                f"{cfg.get('lambda3')}, displacement gain {cfg.get('flow_gain')} crop side per unit, {crops}.")
    if "T" in cfg:
        return (f"Method `{method}`: T={cfg.get('T')}, S={cfg.get('S')}, UNet width {cfg.get('width')}, {crops}, "
                f"theta={cfg.get('theta'):.4g}.")
    return f"Method `{method}`, {crops}."


def _val(metric: str, v: float) -> str:
    return f"{100 * v:.2f} %" if metric == "acc" else f"{v:.4g}"


def _cell(v: object) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:.3f}" if abs(v) < 10 else f"{v:.2f}"
    return str(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="the shipped model's folder (a run directory)")
    ap.add_argument("--curve", type=Path, default=None, help="folder of `facedyn eval curve` (curve.csv, curve.png)")
    ap.add_argument("--note", default="", help="a paragraph reading the numbers (markdown; @FILE reads it from FILE)")
    a = ap.parse_args()
    rec = json.loads((a.model / "config.json").read_text())
    cfg, data, speed = rec["config"], rec["data"], rec.get("speed", {})
    metrics = pd.read_csv(a.model / "metrics.csv")
    last = metrics.iloc[-1]
    sel = methods.get(rec["method"]).selection
    key = f"val_{sel.metric}"
    scored = metrics[metrics[key].notna()]
    best = scored.loc[scored[key].idxmax() if sel.mode == "max" else scored[key].idxmin()]
    splits = data.get("splits", {})
    frames = {}
    try:
        store = ClipDataset(data["path"])
        for split, people in splits.items():
            frames[split] = sum(len(c) for c in store.clips() if c.subject in set(people))
    except (OSError, DatasetError):  # the store is not on this machine: the card leaves the frames out
        frames = {}
    hours = float(last.get("elapsed_s", float("nan"))) / 3600
    lines = [
        f"# {a.model.name}: model card", "",
        _describe(rec["method"], cfg, data), "",
        "| | |", "|---|---|",
        *(f"| {k} people | {len(v)}" + (f" ({frames[k]} frames)" if k in frames else "") + " |"
          for k, v in splits.items() if v),
        *([f"| windows per person (cap) | {cfg.get('per_person') or 'all'} |"] if "per_person" in cfg else []),
        f"| training | {int(last['step'])} steps of {cfg.get('batch_size')} samples, {hours:.2f} h"
        + (f" (budget {cfg['time_budget']})" if cfg.get("time_budget") else "") + " |",
        f"| machine | {speed.get('machine', {}).get('cpu', '?')}, {speed.get('machine', {}).get('threads', '?')} "
        f"threads; precision {speed.get('precision', 'fp32')}"
        + (" + channels_last" if speed.get("channels_last") else "") + " |",
        f"| checkpoint shipped | best validation {sel.metric} ({sel.mode}): step {int(best['step'])}, "
        f"{_val(sel.metric, best[key])} (untrained {_val(sel.metric, metrics[key].iloc[0])}) |",
        f"| command | `{rec.get('command', '')}` |",
        *(f"| resumed {r.get('at', '')} | `{r.get('command', '')}` |" for r in rec.get("resumed", [])), "",
        f"Validation people (checkpoint selection): {', '.join(splits.get('val', []))}.",
        f"Held-out people (never trained or validated on): {', '.join(splits.get('test', [])) or 'none'}.", "",
    ]
    if a.curve is not None and (a.curve / "curve.csv").is_file():
        curve = pd.read_csv(a.curve / "curve.csv")
        if "metric" in curve:  # a probe curve (TCAE, FAb-Net): one column per task metric
            curve = probe_curve_table(curve)
            title = "linear probes"
        else:
            title = "frame-ranking accuracy, %"
        cols = [c for c in curve.columns if c not in ("weights",)]
        lines += [f"## Learning curve on the held-out people ({title})", "",
                  "| " + " | ".join(["weights", *map(str, cols)]) + " |", "|" + "---|" * (len(cols) + 1)]
        for _, r in curve.iterrows():
            lines.append("| " + " | ".join([str(r["weights"]), *(_cell(r[c]) for c in cols)]) + " |")
        lines += ["", f"Figure: `{a.curve / 'curve.png'}` (metric vs step, the baselines as lines).", ""]
    note = Path(a.note[1:]).read_text() if a.note.startswith("@") else a.note
    if note:
        lines += [note.rstrip(), ""]
    out = a.model / "MODEL_CARD.md"
    write_text(out, "\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
