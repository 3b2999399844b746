"""FAb-Net's Table 1 ablation at our scale: 3 sources + curriculum (``s3c``) vs 1 source without (``s1``), per seed.

Trains (resumably) ``RUNS/s3c_seed{k}`` and ``RUNS/s1_seed{k}`` with ``facedyn train fabnet``, then probes each
run's frozen embedding with the linear probes of ``facedyn eval probe`` (landmarks NME, head pose MAE/PCC, AU
F1/AUC on the people no run saw; the network at initialisation and PCA pixels on the same folds) and writes
``RUNS/<run>_probes.csv`` per run and ``RUNS/ablation.md`` / ``ablation.csv``: the mean ± sd over seeds of each
variant, the per-seed difference s3c − s1, the init network and pixels.

    .venv/bin/python scripts/fabnet_ablation.py --data STORE --runs RUNS [--seeds 0,1,2] [--epochs 10]
        [--steps 150] [--eval-only]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

VARIANTS = {"s3c": ["--n-sources", "3", "--curriculum"], "s1": ["--n-sources", "1", "--no-curriculum"]}
METRICS = [("landmarks", "NME %"), ("pose", "mean MAE"), ("pose", "mean PCC"), ("au", "mean F1"), ("au", "mean AUC")]


def train(data: Path, run: Path, variant: str, seed: int, epochs: int, steps: int) -> None:
    cmd = [str(Path(sys.executable).parent / "facedyn"), "train", "fabnet", "--data", str(data), "--out", str(run),
           *VARIANTS[variant], "--seed", str(seed), "--epochs", str(epochs), "--steps-per-epoch", str(steps),
           "--max-val-batches", "20", "--threads", "1", "--resume"]
    subprocess.run(cmd, check=True)


def probe(data: Path, run: Path, frames: int) -> pd.DataFrame:
    """One row per (task, representation, metric) of ``METRICS`` for ``run`` (cached in ``<run>_probes.csv``)."""
    from facedyn.tasks.probes import run_probes

    out = run.parent / f"{run.name}_probes.csv"
    if out.exists():
        return pd.read_csv(out)
    rows = []
    for task in ("landmarks", "pose", "au"):
        df = run_probes(run, data, task, max_frames_per_subject=frames, device="cpu")
        for _, r in df.iterrows():
            rows += [{"run": run.name, "task": task, "representation": r["representation"], "metric": m,
                      "value": r[m]} for t, m in METRICS if t == task]
    table = pd.DataFrame(rows)
    table.to_csv(out, index=False)
    return table


def ablation_table(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd over seeds per variant and representation, per-seed s3c − s1, pixels."""
    df = df.assign(variant=df["run"].str.split("_").str[0], seed=df["run"].str.split("_").str[1])
    rows = []
    for task, metric in METRICS:
        sel = df[(df.task == task) & (df.metric == metric)]
        row: dict[str, str] = {"metric": f"{task} {metric}"}
        for var in VARIANTS:
            v = sel[(sel.variant == var) & (sel.representation == "trained")]["value"]
            row[f"{var} trained"] = f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}"
        init = sel[sel.representation == "init"].drop_duplicates("seed")["value"]
        row["init"] = f"{init.mean():.3f} ± {init.std(ddof=1):.3f}" if len(init) > 1 else f"{init.mean():.3f}"
        row["pixels"] = f"{sel[sel.representation == 'pixels']['value'].mean():.3f}"
        tr = sel[sel.representation == "trained"].pivot_table(index="seed", columns="variant", values="value")
        if set(VARIANTS) <= set(tr.columns):
            row["s3c − s1 per seed"] = ", ".join(f"{d:+.3f}" for d in (tr["s3c"] - tr["s1"]).dropna())
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--frames-per-person", type=int, default=75)
    ap.add_argument("--eval-only", action="store_true")
    a = ap.parse_args()
    from facedyn.atomic import write_text

    seeds = [int(s) for s in a.seeds.split(",")]
    runs = [a.runs / f"{v}_seed{s}" for s in seeds for v in VARIANTS]
    if not a.eval_only:
        for run in runs:
            variant, seed = run.name.split("_seed")
            train(a.data, run, variant, int(seed), a.epochs, a.steps)
    df = pd.concat([probe(a.data, r, a.frames_per_person) for r in runs if (r / "config.json").exists()])
    table = ablation_table(df)
    write_text(a.runs / "ablation.csv", table.to_csv(index=False))
    write_text(a.runs / "ablation.md", table.to_markdown(index=False) + "\n")
    print(table.to_markdown(index=False))


if __name__ == "__main__":
    main()
