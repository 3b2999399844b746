"""Result tables as markdown."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd


def markdown_table(df: pd.DataFrame, fmt: Callable[[Any], str] | None = None) -> str:
    """Every column of ``df`` as a markdown table; cells through ``fmt`` (default: floats with one decimal)."""
    fmt = fmt or (lambda v: f"{v:.1f}" if isinstance(v, float) else str(v))
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def to_markdown(df: pd.DataFrame) -> str:
    """A markdown table of ranking results (accuracy in %, one decimal)."""
    cols = ["method", "T", "S", "windows", "acc", "acc_before", "acc_after"]
    return markdown_table(df[[c for c in cols if c in df.columns]])
