"""The ``facedyn`` command line: parses options, calls the Python API, prints. No logic of its own."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from facedyn import __version__
from facedyn.errors import FacedynError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="facedyn: learn how faces move (Dynamic Representations, TCAE, FAb-Net).")
console = Console(stderr=True)
out = Console()


def progress_bar(transient: bool = False) -> Progress:
    """The progress bar every long command uses."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                    console=console, transient=transient)


def _version(value: bool) -> None:
    if value:
        out.print(f"facedyn {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """facedyn: learn how faces move."""


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder to write the synthetic videos into.")],
    subjects: Annotated[int, typer.Option(help="Number of synthetic people (one clip each).")] = 4,
    seconds: Annotated[float, typer.Option(help="Length of each clip in seconds.")] = 10.0,
    fps: Annotated[float, typer.Option(help="Frame rate.")] = 25.0,
    size: Annotated[int, typer.Option(help="Frame width and height in pixels.")] = 160,
    seed: Annotated[int, typer.Option(help="Random seed (identities, expressions, motion, noise).")] = 0,
) -> None:
    """Draw synthetic face videos with ground-truth AUs, pose, valence/arousal and landmarks."""
    from facedyn.data.synthetic import synth as _synth

    if subjects < 1 or seconds <= 0 or fps <= 0:
        raise FacedynError("--subjects, --seconds and --fps must be positive")
    with progress_bar() as bar:
        task = bar.add_task("synth", total=subjects, info="")
        paths = _synth(out_dir, subjects=subjects, seconds=seconds, fps=fps, seed=seed, size=size,
                       progress=lambda n: bar.advance(task, n))
    out.print(f"wrote {len(paths)} synthetic clips to {out_dir}")


@app.command()
def prepare(
    inputs: Annotated[list[Path], typer.Argument(help="Video files, folders of videos, image-sequence folders.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Dataset directory to create or complete.")],
    size: Annotated[int, typer.Option(help="Aligned crop size in pixels (paper: 224; CPU default 64).")] = 64,
    workers: Annotated[int, typer.Option(help="Clips processed in parallel.")] = 1,
    dataset: Annotated[str, typer.Option(help="Layout of the inputs: folder, bp4d, disfa, semaine, recola.")]
    = "folder",
    detector: Annotated[str, typer.Option(help="Face detector: hog (fast) or cnn (dlib mmod, robust).")] = "hog",
    landmarks: Annotated[Path | None, typer.Option(help="(N, 68, 2) .npy landmarks for a single input video, "
                                                        "used instead of the detector.")] = None,
    mask: Annotated[bool, typer.Option(help="Zero pixels outside the landmarks' convex hull (paper).")] = True,
    fps: Annotated[float | None, typer.Option(help="Frame rate of image-sequence folders.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subject split.")] = 0,
) -> None:
    """Detect, align and crop faces of videos into a clip store (resumable; complete clips are skipped)."""
    from facedyn.data.prepare import PrepareOptions
    from facedyn.data.prepare import prepare as _prepare

    if detector not in ("hog", "cnn"):
        raise FacedynError(f"--detector must be hog or cnn, got {detector!r}")
    opts = PrepareOptions(size=size, mask=mask, detector=detector, fps=fps, seed=seed)
    with progress_bar() as bar, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = bar.add_task("prepare", total=None, info="frames")

        def on_progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        results = _prepare(inputs, out_dir, opts, workers=workers, kind=dataset, landmarks=landmarks,
                           on_progress=on_progress)
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}")
    table = Table(title=f"prepared into {out_dir}")
    for col in ("clip", "subject", "split", "frames", "face found", "fps", "status"):
        table.add_column(col)
    failed = [r for r in results if r.error]
    for r in results:
        frac = f"{100 * r.n_valid / r.n_frames:.1f} %" if r.n_frames else "-"
        status = "[red]failed[/]" if r.error else ("skipped (complete)" if r.skipped else "ok")
        table.add_row(r.clip_id, r.subject, r.split or "", str(r.n_frames), frac, f"{r.fps:.2f}", status)
    out.print(table)
    if failed:
        for r in failed:
            console.print(f"[red]error:[/] {r.error}")
        raise FacedynError(f"{len(failed)} of {len(results)} clips failed (listed above); fix or remove them and "
                           "rerun: complete clips are kept")


@app.command()
def info(
    dataset: Annotated[Path, typer.Argument(help="A prepared dataset directory.")],
) -> None:
    """Summarise a prepared dataset: clips, frames, valid fraction, fps, labels, subjects, splits."""
    from facedyn.data.summary import summarize

    s = summarize(dataset)
    table = Table(title=f"{dataset}")
    for col in ("clip", "subject", "split", "frames", "valid", "fps", "labels"):
        table.add_column(col)
    for c in s["clips"]:
        table.add_row(c["clip"], c["subject"], c["split"], str(c["frames"]), f"{100 * c['valid']:.1f} %",
                      f"{c['fps']:.2f}", str(len(c["labels"])))
    out.print(table)
    out.print(f"clips: {s['n_clips']}   frames: {s['n_frames']}   valid: {100 * s['valid']:.1f} %   "
              f"size: {s['size']} px")
    out.print(f"labels: {', '.join(s['labels']) or 'none'}")
    for split, subs in s["splits"].items():
        out.print(f"{split}: {len(subs)} subjects ({', '.join(subs)})")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for everything the demo makes.")] = Path("demo_out"),
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """The main job on embedded (synthetic) data: synth → prepare → info."""
    from facedyn.demo import run_demo

    run_demo(out_dir, seed=seed, console=out)


def main() -> None:
    """Console entry point: user mistakes print one line and exit 2, without a traceback."""
    try:
        app()
    except FacedynError as e:
        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/] (partial outputs were removed; rerun to resume)")
        sys.exit(130)


if __name__ == "__main__":
    main()
