"""Progress display shared by the CLI and the demo (rich progress bars)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

#: Where progress and messages go (stderr, so stdout stays for results).
console = Console(stderr=True)


def progress_bar(transient: bool = False) -> Progress:
    """The progress bar every long command uses."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                    console=console, transient=transient)


def _fmt(k: str, v: Any) -> str:
    return f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"


def train_progress(bar: Progress, label: str, metric: str) -> Callable[[dict[str, Any]], None]:
    """A training-progress callback for :func:`facedyn.train.train`: step bar, epoch, running loss and
    the validation value of ``metric`` (the method's selection metric)."""
    task = bar.add_task(label, total=None, info="")

    def cb(p: dict[str, Any]) -> None:
        parts = [f"epoch {p['epoch']}"]
        loss = p.get("loss", p.get("train_loss", p.get("G_loss", p.get("train_G_loss"))))
        if loss is not None:
            parts.append(_fmt("loss", loss))
        val = p.get(f"val_{metric}")
        if val is not None:
            parts.append(_fmt(f"val {metric}", val))
        bar.update(task, completed=p["step"], total=p["total_steps"], info="  ".join(parts))

    return cb
