"""Result tables as markdown."""

from __future__ import annotations

import pandas as pd


def to_markdown(df: pd.DataFrame) -> str:
    """A markdown table of ranking results (accuracy in %, one decimal)."""
    cols = ["method", "T", "S", "windows", "acc", "acc_before", "acc_after"]
    cols = [c for c in cols if c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df[cols].iterrows():
        cells = [f"{r[c]:.1f}" if isinstance(r[c], float) else str(r[c]) for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
