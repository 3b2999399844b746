"""The summary tables of the few-labels downstream benchmark (README and docs/results/downstream-tasks.md), from
the ``downstream.csv`` files that ``facedyn eval downstream`` wrote (scripts/downstream_fewlabels.sh):

* per budget of labelled people: the still image's ICC, the MDR's, their paired difference with its 95 % interval,
  and the best representation of that budget (highest ICC) with its difference to SI;
* with ``--kinds``: ICC of the named kinds per budget, a column per budget.

    .venv/bin/python scripts/downstream_summary.py docs/results/downstream/fewlabels/ds_real/downstream.csv
        [--kinds si,mdr,fabnet/linear] [--metric icc]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from facedyn.tasks.evaluation import interval_cell as _cell


def summary(df: pd.DataFrame, metric: str = "icc") -> str:
    """The per-budget SI / MDR / best-kind table of one benchmark, as markdown."""
    m = metric
    rows = ["| labelled people | draws | SI | MDR | MDR − SI (paired) | best | best − SI (paired) |",
            "|---|---|---|---|---|---|---|"]
    for budget, g in df.groupby("budget", sort=False):
        g = g.set_index("kind")
        si = g.loc["si"] if "si" in g.index else None
        mdr = g.loc["mdr"] if "mdr" in g.index else None
        best = g[m].idxmax()
        b = g.loc[best]
        rows.append("| " + " | ".join([
            f"{int(b['labelled'])}" + (" (all)" if str(budget) == "all" else ""), f"{int(b['draws'])}",
            _cell(si[m], si[f"{m}_lo"], si[f"{m}_hi"]) if si is not None else "–",
            _cell(mdr[m], mdr[f"{m}_lo"], mdr[f"{m}_hi"]) if mdr is not None else "–",
            _cell(mdr[f"{m}_vs_si"], mdr[f"{m}_vs_si_lo"], mdr[f"{m}_vs_si_hi"], signed=True)
            if mdr is not None else "–",
            f"{best} ({b[m]:.3f})",
            _cell(b[f"{m}_vs_si"], b[f"{m}_vs_si_lo"], b[f"{m}_vs_si_hi"], signed=True) if best != "si" else "–",
        ]) + " |")
    return "\n".join(rows)


def by_kind(df: pd.DataFrame, kinds: list[str], metric: str = "icc") -> str:
    """``metric`` of the named kinds (rows) per budget (columns), as markdown."""
    budgets = list(dict.fromkeys(df["budget"]))
    head = [f"{int(df.loc[df['budget'] == b, 'labelled'].iloc[0])}" for b in budgets]
    rows = ["| representation | " + " | ".join(head) + " |", "|---|" + "---|" * len(budgets)]
    for k in kinds:
        cells = []
        for b in budgets:
            r = df[(df["kind"] == k) & (df["budget"] == b)]
            cells.append(_cell(*r[[metric, f"{metric}_lo", f"{metric}_hi"]].to_numpy()[0]) if len(r) else "–")
        rows.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", type=Path, help="a downstream.csv of facedyn eval downstream")
    ap.add_argument("--kinds", default="", help="also the metric of these kinds per budget (comma-separated)")
    ap.add_argument("--metric", default="icc", choices=("icc", "mse", "f1", "auc"))
    a = ap.parse_args()
    df = pd.read_csv(a.csv, keep_default_na=True)
    df["budget"] = df["budget"].astype(str)
    print(summary(df, a.metric))
    if a.kinds:
        print()
        print(by_kind(df, [k for k in a.kinds.split(",") if k], a.metric))


if __name__ == "__main__":
    main()
