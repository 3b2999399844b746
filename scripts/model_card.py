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

from facedyn.atomic import write_text
from facedyn.data.store import ClipDataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path, help="the shipped model's folder (a run directory)")
    ap.add_argument("--curve", type=Path, default=None, help="folder of `facedyn eval curve` (curve.csv, curve.png)")
    ap.add_argument("--note", default="", help="a paragraph reading the numbers")
    a = ap.parse_args()
    rec = json.loads((a.model / "config.json").read_text())
    cfg, data, speed = rec["config"], rec["data"], rec.get("speed", {})
    metrics = pd.read_csv(a.model / "metrics.csv")
    last = metrics.iloc[-1]
    best = metrics.loc[metrics["val_acc"].idxmax()]
    splits = data.get("splits", {})
    frames = {}
    try:
        store = ClipDataset(data["path"])
        for split, people in splits.items():
            frames[split] = sum(len(c) for c in store.clips if c.subject in set(people))
    except Exception:  # the store is not on this machine: the card says so
        frames = {}
    hours = float(last.get("elapsed_s", float("nan"))) / 3600
    lines = [
        f"# {a.model.name}: model card", "",
        f"Method `{rec['method']}`: T={cfg.get('T')}, S={cfg.get('S')}, UNet width {cfg.get('width')}, "
        f"{data.get('size')} px crops ({data.get('align')} alignment), theta={cfg.get('theta'):.4g}.", "",
        "| | |", "|---|---|",
        *(f"| {k} people | {len(v)}" + (f" ({frames[k]} frames)" if k in frames else "") + " |"
          for k, v in splits.items() if v),
        f"| windows per person (cap) | {cfg.get('per_person') or 'all'} |",
        f"| training | {int(last['step'])} steps of {cfg.get('batch_size')} windows, {hours:.2f} h"
        + (f" (budget {cfg['time_budget']})" if cfg.get("time_budget") else "") + " |",
        f"| machine | {speed.get('machine', {}).get('cpu', '?')}, {speed.get('machine', {}).get('threads', '?')} "
        f"threads; precision {speed.get('precision', 'fp32')}"
        + (" + channels_last" if speed.get("channels_last") else "") + " |",
        f"| checkpoint shipped | best validation accuracy: step {int(best['step'])}, "
        f"{100 * best['val_acc']:.2f} % (untrained {100 * metrics['val_acc'].iloc[0]:.2f} %) |",
        f"| command | `{rec.get('command', '')}` |", "",
        f"Validation people (checkpoint selection): {', '.join(splits.get('val', []))}.",
        f"Held-out people (never trained or validated on): {', '.join(splits.get('test', [])) or 'none'}.", "",
    ]
    if a.curve is not None and (a.curve / "curve.csv").is_file():
        curve = pd.read_csv(a.curve / "curve.csv")
        cols = [c for c in curve.columns if c not in ("weights",)]
        lines += ["## Learning curve on the held-out people (frame-ranking accuracy, %)", "",
                  "| " + " | ".join(["weights", *cols]) + " |", "|" + "---|" * (len(cols) + 1)]
        for _, r in curve.iterrows():
            lines.append("| " + " | ".join([str(r["weights"]), *(f"{r[c]:.2f}" if isinstance(r[c], float)
                                                                   else str(r[c]) for c in cols)]) + " |")
        lines += ["", f"Figure: `{a.curve / 'curve.png'}` (accuracy vs step, the baselines as lines).", ""]
    if a.note:
        lines += [a.note, ""]
    out = a.model / "MODEL_CARD.md"
    write_text(out, "\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
