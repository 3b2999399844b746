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
    bar = progress_bar()
    task = bar.add_task("prepare", total=None, info="frames")
    started = False

    def on_progress(done: int, total: int) -> None:
        nonlocal started
        if not started:  # only once inputs are checked: a bad path prints just its one-line error
            bar.start()
            started = True
        bar.update(task, completed=done, total=total)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            results = _prepare(inputs, out_dir, opts, workers=workers, kind=dataset, landmarks=landmarks,
                               on_progress=on_progress)
        finally:
            if started:
                bar.stop()
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


train_app = typer.Typer(no_args_is_help=True, help="Train a model (DR with the Rank Loss, or a DI-target baseline).")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate representations.")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")


def _train_progress(bar: Progress, label: str):
    task = bar.add_task(label, total=None, info="")

    def cb(p: dict) -> None:
        loss = p.get("loss", p.get("train_loss"))
        acc = p.get("acc", p.get("train_acc"))
        val = p.get("val_side_acc", p.get("val_acc"))  # baselines select on their own side's pairs
        info = f"epoch {p['epoch']}"
        if loss is not None:
            info += f"  loss {loss:.4g}"
        if acc is not None:
            info += f"  acc {100 * acc:.1f}%"
        if val is not None:
            info += f"  val {100 * val:.1f}%"
        bar.update(task, completed=p["step"], total=p["total_steps"], info=info)

    return cb


def _dr_train(data: Path, out_dir: Path, method: str, target: str, T: int, S: int, preset: str, epochs: int,
              steps_per_epoch: int | None, batch_size: int | None, lr: float, width: int | None, depth: int | None,
              theta: float | None, gamma: float, epsilon: float, residual: bool, device: str, seed: int,
              resume: bool, workers: int, grid: bool, lr_schedule: str, extra: dict,
              grid_t: str = "3,5,7,9", grid_s: str = "1,2,3,4") -> None:
    import json

    from facedyn.config import PRESETS, DRConfig
    from facedyn.dr.train import train_dr
    from facedyn.train.loop import LoopConfig

    if preset not in PRESETS:
        raise FacedynError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    p = PRESETS[preset]
    extra = dict(extra)
    augment = bool(extra.pop("augment", True))
    ts, ss = _int_list(grid_t, "--grid-t"), _int_list(grid_s, "--grid-s")
    jobs = [(t, s, out_dir / f"T{t}_S{s}") for s in ss for t in ts] if grid else [(T, S, out_dir)]
    for t, s, run in jobs:
        cfg = DRConfig(method=method, target=target, T=t, S=s, size=p["size"], depth=depth or p["depth"],
                       width=width or p["width"], theta=theta, gamma=gamma, epsilon=epsilon, residual=residual,
                       augment=augment, extra=dict(extra))
        if resume and (run / "config.json").exists():
            old = json.loads((run / "config.json").read_text()).get("dr", {})
            cfg.theta = old.get("theta", cfg.theta)
        loop = LoopConfig(out=str(run), epochs=epochs, steps_per_epoch=steps_per_epoch,
                          batch_size=batch_size or p["batch_size"], lr=lr, device=device, seed=seed, resume=resume,
                          workers=workers, lr_schedule=lr_schedule)
        with progress_bar() as bar:
            hist = train_dr(data, run, cfg, loop, progress=_train_progress(bar, f"{method} T={t} S={s}"))
        key = "val_acc" if method == "dr" else "val_side_acc"
        best = max((r[key] for r in hist if isinstance(r.get(key), float)), default=float("nan"))
        out.print(f"{run}: {len(hist) - 1} epochs, best validation accuracy {100 * best:.1f} %  (theta={cfg.theta:.4g})"
                  if cfg.theta is not None else f"{run}: {len(hist) - 1} epochs, best validation {100 * best:.1f} %")


def _int_list(text: str, name: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise FacedynError(f"{name} must be comma-separated integers like 3,5,7,9, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise FacedynError(f"{name} needs positive integers, got {text!r}")
    return vals


_GRID_T = typer.Option("--grid-t", help="T values of --grid.")
_GRID_S = typer.Option("--grid-s", help="S values of --grid.")
_DATA = typer.Option("--data", help="Prepared dataset directory (facedyn prepare).")
_OUT = typer.Option("--out", help="Run directory (config.json, checkpoints/, metrics.csv).")


@train_app.command("dr")
def train_dr_cmd(
    data: Annotated[Path, _DATA],
    out_dir: Annotated[Path, _OUT],
    T: Annotated[int, typer.Option("--T", help="Window half-length (2T+1 frames).")] = 5,
    S: Annotated[int, typer.Option("--S", help="Stride in frames at 25 fps (scaled by clip fps).")] = 2,
    preset: Annotated[str, typer.Option(help="cpu (64 px, width 16) or paper (224 px, width 64).")] = "cpu",
    epochs: Annotated[int, typer.Option(help="Epochs (validation + checkpoint after each).")] = 8,
    steps_per_epoch: Annotated[int | None, typer.Option(help="Steps per epoch (default: one pass).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default from preset).")] = None,
    lr: Annotated[float, typer.Option(help="Adam learning rate (paper 1e-3; betas (0.5, 0.9)).")] = 1e-3,
    lr_schedule: Annotated[str, typer.Option(help="constant or cosine.")] = "constant",
    width: Annotated[int | None, typer.Option(help="UNet base width.")] = None,
    depth: Annotated[int | None, typer.Option(help="UNet levels.")] = None,
    theta: Annotated[float | None, typer.Option(help="Rank Loss margin (default: calibrated, random DR < 0.1 %).")]
    = None,
    gamma: Annotated[float, typer.Option(help="Weight of gamma*||d||^2.")] = 0.0,
    epsilon: Annotated[float, typer.Option(help="Relaxation epsilon of Eq. 3.")] = 0.0,
    residual: Annotated[bool, typer.Option(help="d = centred(I) + f(I), f zero-initialised.")] = True,
    grid: Annotated[bool, typer.Option(help="Train one model per (T, S) in {3,5,7,9} x {1,2,3,4} under OUT/T*_S*.")]
    = False,
    grid_t: Annotated[str, _GRID_T] = "3,5,7,9",
    grid_s: Annotated[str, _GRID_S] = "1,2,3,4",
    augment: Annotated[bool, typer.Option(help="Random flips and brightness/contrast of whole windows.")] = True,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the run's last checkpoint.")] = False,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
) -> None:
    """Train a DR network with the Rank Loss (dr-paper.txt Eq. 3)."""
    _dr_train(data, out_dir, "dr", "none", T, S, preset, epochs, steps_per_epoch, batch_size, lr, width, depth,
              theta, gamma, epsilon, residual, device, seed, resume, workers, grid, lr_schedule, {"augment": augment},
              grid_t, grid_s)


@train_app.command("baseline")
def train_baseline_cmd(
    data: Annotated[Path, _DATA],
    out_dir: Annotated[Path, _OUT],
    method: Annotated[str, typer.Option(help="unet_mse, unet_p (perceptual) or pix2pix.")] = "unet_mse",
    target: Annotated[str, typer.Option(help="di (forward dynamic image) or bdi (backward).")] = "di",
    T: Annotated[int, typer.Option("--T", help="Window half-length.")] = 5,
    S: Annotated[int, typer.Option("--S", help="Stride at 25 fps.")] = 2,
    preset: Annotated[str, typer.Option(help="cpu or paper.")] = "cpu",
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 8,
    steps_per_epoch: Annotated[int | None, typer.Option(help="Steps per epoch (default: one pass).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size.")] = None,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    vgg_weights: Annotated[Path | None, typer.Option(help="torchvision VGG-16 state dict for unet_p.")] = None,
    feature_steps: Annotated[int, typer.Option(help="unet_p without --vgg-weights: steps to train its own "
                                                    "feature network.")] = 300,
    grid: Annotated[bool, typer.Option(help="One model per (T, S) of the Fig. 4 grid.")] = False,
    grid_t: Annotated[str, _GRID_T] = "3,5,7,9",
    grid_s: Annotated[str, _GRID_S] = "1,2,3,4",
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from the last checkpoint.")] = False,
    workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
) -> None:
    """Train a DI/BDI-target baseline: UNet(MSE), UNet(perceptual) or Pix2Pix (dr-paper.txt §4.3)."""
    if method not in ("unet_mse", "unet_p", "pix2pix"):
        raise FacedynError(f"--method must be unet_mse, unet_p or pix2pix, got {method!r}")
    if target not in ("di", "bdi"):
        raise FacedynError(f"--target must be di or bdi, got {target!r}")
    extra: dict = {"vgg_weights": str(vgg_weights)} if vgg_weights else {}
    if method == "unet_p":
        extra["feature_steps"] = feature_steps
    _dr_train(data, out_dir, method, target, T, S, preset, epochs, steps_per_epoch, batch_size, lr, None, None,
              None, 0.0, 0.0, False, device, seed, resume, workers, grid, "constant", extra, grid_t, grid_s)


def _expand_runs(runs: list[Path]) -> list[Path]:
    """Run directories, descending one level into grid folders (OUT/T*_S*/config.json)."""
    outp: list[Path] = []
    for r in runs:
        if (r / "config.json").exists():
            outp.append(r)
        elif r.is_dir() and any(r.glob("*/config.json")):
            outp.extend(sorted(p.parent for p in r.glob("*/config.json")))
        else:
            raise FacedynError(f"{r}: not a run directory (no config.json); give a directory made by facedyn train")
    return outp


@eval_app.command("rank")
def eval_rank(
    data: Annotated[Path, _DATA],
    runs: Annotated[list[Path] | None, typer.Option("--run", help="Trained run(s); grid folders are expanded.")]
    = None,
    T: Annotated[int | None, typer.Option("--T", help="Window half-length (default: the run's).")] = None,
    S: Annotated[int | None, typer.Option("--S", help="Stride at 25 fps (default: the run's).")] = None,
    grid: Annotated[bool, typer.Option(help="Evaluate T in {3,5,7,9} x S in {1,2,3,4}.")] = False,
    grid_t: Annotated[str, _GRID_T] = "3,5,7,9",
    grid_s: Annotated[str, _GRID_S] = "1,2,3,4",
    methods: Annotated[str, typer.Option(help="Training-free methods, comma-separated: identity, centred, random, "
                                              "di, bdi, seq-di, ranksvm.")] = "identity,centred,random,seq-di,ranksvm",
    split: Annotated[str, typer.Option(help="test, val, train, or all (every clip, e.g. another dataset).")] = "test",
    every: Annotated[int, typer.Option(help="Use every k-th centre frame.")] = 1,
    max_windows: Annotated[int | None, typer.Option(help="Evaluate at most this many windows (random subset).")]
    = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for ranking.csv, ranking.md, figures/.")]
    = Path("ranking"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed (random floor, subsets).")] = 0,
) -> None:
    """Frame-ranking accuracy (dr-paper.txt §4.3): % of Eq. 2 pairs each representation ranks correctly."""
    import json

    import pandas as pd

    from facedyn.data.store import atomic_write_text, ensure_writable_dir
    from facedyn.eval.ranking import evaluate_ranking, to_markdown
    from facedyn.reports.plots import plot_ranking_curves
    from facedyn.train.loop import resolve_device

    run_list = _expand_runs(runs or [])
    if grid:
        settings = [(t, s) for s in _int_list(grid_s, "--grid-s") for t in _int_list(grid_t, "--grid-t")]
    else:
        if T is None or S is None:
            if not run_list:
                raise FacedynError("give --T and --S, or a --run to take them from, or --grid")
            rc = json.loads((run_list[0] / "config.json").read_text()).get("dr", {})
            T = rc.get("T") if T is None else T
            S = rc.get("S") if S is None else S
        settings = [(int(T), int(S))]
    dev = resolve_device(device)
    ensure_writable_dir(out_dir)
    frames = []
    with progress_bar() as bar:
        for t, s in settings:
            task = bar.add_task(f"rank T={t} S={s}", total=None, info="windows")
            df = evaluate_ranking(data, t, s, methods=[m for m in methods.split(",") if m], runs=run_list,
                                  split=None if split == "all" else split, every=every, max_windows=max_windows,
                                  device=dev, seed=seed,
                                  progress=lambda d, n, task=task: bar.update(task, completed=d, total=n))
            frames.append(df)
    res = pd.concat(frames, ignore_index=True)
    atomic_write_text(out_dir / "ranking.csv", res.to_csv(index=False, float_format="%.3f"))
    md = to_markdown(res)
    atomic_write_text(out_dir / "ranking.md", md)
    if len(settings) > 1:
        plot_ranking_curves(res, out_dir / "figures" / "ranking.png")
    dr_runs = [r for r in run_list if json.loads((r / "config.json").read_text()).get("method") == "dr"]
    if dr_runs:
        from facedyn.eval.ranking import load_run
        from facedyn.reports.report import dr_gallery

        net, rc = load_run(dr_runs[0])
        dr_gallery(data, net, rc.T, rc.S, out_dir / "figures" / "dr_gallery.png",
                   split=None if split == "all" else split, seed=seed)
    out.print(md)
    out.print(f"wrote {out_dir / 'ranking.csv'} and {out_dir / 'ranking.md'}")


@app.command()
def infer(
    run: Annotated[Path, typer.Argument(help="A trained DR run directory.")],
    source: Annotated[Path, typer.Argument(help="An image or a video.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for dr.npy, PNGs and (videos) an mp4.")]
    = Path("infer_out"),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
) -> None:
    """Compute the DR of each face in an image or video (PNG per face, dr.npy, side-by-side mp4)."""
    from facedyn.infer import infer_file

    res = infer_file(run, source, out_dir, device=device,
                     console=console)
    out.print(f"{res['faces']} of {res['frames']} frames had a face; wrote {', '.join(res['files'])} in {out_dir}")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for everything the demo makes.")] = Path("demo_out"),
    subjects: Annotated[int, typer.Option(help="Synthetic people.")] = 10,
    seconds: Annotated[float, typer.Option(help="Seconds per clip.")] = 12.0,
    epochs: Annotated[int, typer.Option(help="DR training epochs.")] = 8,
    steps_per_epoch: Annotated[int | None, typer.Option(help="Steps per epoch (default: one pass).")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """The main job on embedded synthetic data: synth → prepare → train DR → eval rank → report."""
    from facedyn.demo import run_demo

    run_demo(out_dir, seed=seed, console=out, subjects=subjects, seconds=seconds, epochs=epochs,
             steps_per_epoch=steps_per_epoch, device=device)


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
