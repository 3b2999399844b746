"""The ``facedyn`` command line: parses options, calls the Python API, prints. No logic of its own.

``facedyn train <method>`` has one subcommand per registered method (:mod:`facedyn.methods`), its
options generated from the method's config dataclass, so a new method needs no edit here.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from facedyn import __version__
from facedyn.atomic import no_room, write_failed
from facedyn.errors import FacedynError, OutputError
from facedyn.helptext import Typer
from facedyn.progress import console, progress_bar, train_progress
from facedyn.tasks.downstream_config import DownstreamConfig

app = Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="facedyn: learn how faces move (Dynamic Representations, TCAE, FAb-Net).")
out = Console()
train_app = Typer(no_args_is_help=True, help="Train a registered method on a prepared dataset.")
eval_app = Typer(no_args_is_help=True, help="Evaluate representations.")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
export_app = Typer(no_args_is_help=True, help="Export a trained network to another runtime.")
app.add_typer(export_app, name="export")

_DATA = typer.Option("--data", help="Prepared dataset directory (facedyn prepare).")
_DEVICE = typer.Option(help="auto, cpu or cuda.")


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


@contextlib.contextmanager
def _warnings_to_console() -> Iterator[None]:
    """Warnings raised inside print as one ``warning:`` line each, when they happen (no file:line noise)."""
    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        out.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.showwarning = show
        yield


def _names(text: str | None) -> list[str] | None:
    return [v.strip() for v in text.split(",") if v.strip()] if text else None


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
    workers: Annotated[int, typer.Option(help="Processes working in parallel, on clips and on time segments of "
                                              "long clips (landmarks right after a cut may differ slightly from "
                                              "an uncut run: the tracker restarts there).")] = 1,
    dataset: Annotated[str, typer.Option(help="Layout of the inputs: folder, bp4d, disfa, semaine, recola, "
                                              "voxceleb, 300w, mafl, aflw, emotionet.")]
    = "folder",
    detector: Annotated[str, typer.Option(help="Face detector: hog (fast) or cnn (dlib mmod, robust).")] = "hog",
    landmarks: Annotated[Path | None, typer.Option(help="(N, 68, 2) .npy landmarks for a single input video, "
                                                        "used instead of the detector.")] = None,
    mask: Annotated[bool | None, typer.Option("--mask/--no-mask", help="Zero pixels outside the landmarks' convex "
                                              "hull (paper). Default: on for similarity, off for box.")] = None,
    fps: Annotated[float | None, typer.Option(help="Frame rate of image-sequence folders.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subject split.")] = 0,
    align: Annotated[str, typer.Option(help="similarity: each frame rotated, scaled and shifted onto the face "
                                            "template (upright, one size); box: a square 1.5x the landmarks' box, "
                                            "smoothed over 0.5 s, never rotated (keeps head roll, scale and "
                                            "shift: for TCAE, FAb-Net).")] = "similarity",
    track: Annotated[str, typer.Option(help="fit: detect every 10 frames and where the fit degrades, fit the "
                                            "68 points in the box predicted from the last frame in between "
                                            "(4-8x faster); detect: detect on every frame (stores made before "
                                            "the tracker).")] = "fit",
    shard: Annotated[str | None, typer.Option(help="K/N: prepare only the K-th of N shards of the inputs (by clip "
                                                   "id) into its own --out; join the parts with `facedyn merge`.")]
    = None,
    check_identities: Annotated[bool, typer.Option("--check-identities", help="Also check that no person is "
                                                   "filed under two subject names (decodes ~10 frames per clip; "
                                                   "without it, only when a check's descriptors are cached).")]
    = False,
) -> None:
    """Detect, align and crop faces of videos into a clip store (resumable; complete clips are skipped)."""
    from facedyn.data.prepare import PrepareOptions, parse_shard
    from facedyn.data.prepare import prepare as _prepare

    if detector not in ("hog", "cnn"):
        raise FacedynError(f"--detector must be hog or cnn, got {detector!r}")
    parts = parse_shard(shard) if shard is not None else None
    opts = PrepareOptions(size=size, mask=mask, detector=detector, fps=fps, seed=seed, align=align, track=track)
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
                               on_progress=on_progress, shard=parts, check_identities=check_identities or None)
        finally:
            if started:
                bar.stop()
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}", highlight=False, soft_wrap=True)
    table = Table(title=f"prepared into {out_dir}")
    for col in ("clip", "subject", "split", "frames", "face found", "fps", "status"):
        table.add_column(col)
    failed = [r for r in results if r.error]
    for r in results:
        frac = f"{100 * r.n_valid / r.n_frames:.1f} %" if r.n_frames else "-"
        status = ("[red]failed[/]" if r.error else "skipped (complete)" if r.skipped
                  else "[yellow]damaged: kept what decodes[/]" if r.warning else "ok")
        table.add_row(r.clip_id, r.subject, r.split or "", str(r.n_frames), frac, f"{r.fps:.2f}", status)
    out.print(table)
    for r in results:
        if r.warning:
            console.print(f"[yellow]warning:[/] {r.warning}", highlight=False, soft_wrap=True)
    _label_summary(out_dir, [r.clip_id for r in results if not r.error], dataset)
    if not check_identities and len({r.subject for r in results if not r.error}) >= 2:
        from facedyn.data.identities import cached_only

        if not cached_only(out_dir):
            out.print(f"[dim]check that no person is filed under two names: `facedyn split {out_dir} "
                      "--check-identities`[/]", highlight=False, soft_wrap=True)
    if failed:
        for r in failed:
            console.print(f"[red]error:[/] {r.error}", highlight=False, soft_wrap=True)  # one line each, however long
        raise FacedynError(f"{len(failed)} of {len(results)} clips failed (listed above); fix or remove them and "
                           "rerun: complete clips are kept")


def _label_summary(store: Path, clip_ids: list[str], dataset: str) -> None:
    """What labels the clips hold: columns and frames labelled per kind, the adapters' notes; clips without labels
    in a warning (:mod:`facedyn.data.datasets.report`)."""
    from rich.markup import escape

    from facedyn.data.datasets.report import store_report

    rep = store_report(store, clip_ids, dataset.strip().lower())
    for line in rep.lines():
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    for w in rep.warnings():
        console.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)


@app.command()
def merge(
    parts: Annotated[list[Path], typer.Argument(help="Store parts made by `facedyn prepare --shard K/N`.")],
    out_dir: Annotated[Path, typer.Option("--out", help="The new store (must not exist, or be empty).")],
) -> None:
    """Join store parts of a sharded prepare into one store (the same as one prepare run, file for file)."""
    from facedyn.data.merge import merge as _merge

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = _merge(parts, out_dir)
    for w in caught:
        console.print(f"[yellow]warning:[/] {w.message}", highlight=False, soft_wrap=True)
    out.print(f"merged {len(parts)} parts into {out_dir}: {len(index['clips'])} clips, "
              f"{len(index['subjects'])} subjects")
    _print_splits(index["splits"])


def _print_splits(splits: dict[str, list[str]]) -> None:
    for split, subs in splits.items():
        if subs:
            out.print(f"{split}: {len(subs)} subjects ({', '.join(subs)})")


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
    _print_splits(s["splits"])
    if s.get("folds"):
        out.print(f"folds: {len(s['folds'])} ({', '.join(str(len(f)) for f in s['folds'])} subjects)")


@app.command()
def split(
    dataset: Annotated[Path, typer.Argument(help="A prepared dataset directory (with --check-identities alone, also "
                                                 "a folder of videos, one folder per person).")],
    val: Annotated[str | None, typer.Option(help="Comma-separated subjects for validation.")] = None,
    test: Annotated[str | None, typer.Option(help="Comma-separated subjects for test.")] = None,
    folds: Annotated[int | None, typer.Option(help="Write K person-level folds (train with --fold i).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fold assignment.")] = 0,
    check_identities: Annotated[bool, typer.Option("--check-identities", help="First list pairs of subjects that "
                                                   "look like one person (dlib face descriptors, mean over sampled "
                                                   "frames; cached beside the store).")] = False,
    identity_threshold: Annotated[float, typer.Option(help="Descriptor distance below which two subjects count as "
                                                           "one person (pairs up to 0.45 are listed as close, to "
                                                           "look at).")] = 0.40,
    identity_frames: Annotated[int, typer.Option(help="Frames sampled per clip for the identity check.")] = 10,
    identity_top: Annotated[int, typer.Option(help="Closest pairs to list (every pair below the threshold is "
                                                   "listed too).")] = 10,
) -> None:
    """Set the store's person-level splits (--val/--test; the rest train), write K folds, or check identities."""
    from facedyn.data.splits import check_request, make_folds, set_splits

    if folds is None and val is None and test is None and not check_identities:
        raise FacedynError("give --val and/or --test subjects, --folds K, or --check-identities")
    if val is not None or test is not None or folds is not None:  # refuse bad names before the slow check
        check_request(dataset, val=_names(val), test=_names(test), folds=folds)
    if check_identities:
        _check_identities(dataset, identity_threshold, identity_frames, identity_top)
    if val is not None or test is not None:
        _print_splits(set_splits(dataset, val=_names(val), test=_names(test)))
    if folds is not None:
        for i, f in enumerate(make_folds(dataset, folds, seed=seed)):
            out.print(f"fold {i}: {', '.join(f)}")


def _check_identities(source: Path, threshold: float, frames: int, top: int) -> None:
    """Run the identity check with a progress bar and print its table and what to do."""
    from facedyn.data.identities import advice, check_identities

    with _warnings_to_console(), progress_bar(transient=True) as bar:
        task = bar.add_task("identities", total=None, info="clips")
        df = check_identities(source, threshold=threshold, frames_per_clip=frames,
                              progress=lambda done, total, clip: bar.update(task, completed=done, total=total,
                                                                            info=clip))
    t = df.attrs["threshold"]
    near = df[df["same_person"]]
    close = df[df["close"]]
    shown = df.head(max(int(top), len(near) + len(close)))
    stores = "leak" in df.columns
    table = Table(title=f"closest pairs of subjects in {source} (face-descriptor distance; < {t:g}: same person?)")
    for col in ("#", "subject", "subject", "distance", *(["splits"] if stores else []), "verdict"):
        table.add_column(col, justify="right" if col in ("#", "distance") else "left")
    for i, r in enumerate(shown.itertuples(index=False), 1):
        style = "bold red" if r.same_person else "yellow" if r.close else None
        verdict = "[bold red]same person?[/]" if r.same_person else "close: look" if r.close else "different"
        where = [f"{r.split_a} / {r.split_b}" + (" (leak)" if r.leak else "")] if stores else []
        table.add_row(str(i), r.subject_a, r.subject_b, f"{r.distance:.3f}", *where, verdict, style=style)
    out.print(table)
    out.print(f"{df.attrs['subjects']} subjects compared ({df.attrs['clips']} clips, up to {frames} frames each)")
    if df.attrs["no_face"]:
        console.print(f"[yellow]warning:[/] no face found in the sampled frames of {', '.join(df.attrs['no_face'])}: "
                      "not compared", highlight=False, soft_wrap=True)
    if len(near):
        out.print(f"[bold red]{len(near)} pair(s) below {t:g} may be one person:[/] {advice(source)}.",
                  highlight=False, soft_wrap=True)
    elif len(df):
        r = df.iloc[0]
        out.print(f"no pair below {t:g}: no two subjects look like one person (closest: {r.subject_a} and "
                  f"{r.subject_b}, {r.distance:.3f})", highlight=False, soft_wrap=True)
    if len(close):
        out.print(f"{len(close)} pair(s) are close (below {df.attrs['look']:g}): look at their clips; dlib's network "
                  "places some different people (often East Asian faces) this close", highlight=False,
                  soft_wrap=True)


# -- train <method>: one subcommand per registered method, options from its config dataclass --------------

def _common_params() -> list[inspect.Parameter]:
    P = inspect.Parameter
    kw = P.KEYWORD_ONLY
    return [
        P("ctx", kw, annotation=typer.Context),
        P("data", kw, annotation=Path, default=typer.Option(..., "--data", help=_DATA.help)),
        P("out_dir", kw, annotation=Path, default=typer.Option(..., "--out", help="Run directory (config.json, "
                                                               "checkpoints/, metrics.csv).")),
        P("preset", kw, annotation=str | None, default=typer.Option(None, help="Settings preset: cpu (the defaults) "
                                                                    "or paper.")),
        P("config_file", kw, annotation=Path | None,
          default=typer.Option(None, "--config", help="Settings from a run directory / its config.json or a JSON "
                                                      "file; options given here override them.")),
        P("grid", kw, annotation=list[str] | None,
          default=typer.Option(None, help="Sweep a setting, e.g. --grid T=3,5,7,9 --grid S=1,2: one run per "
                                          "combination under OUT/T3_S1, ...")),
        P("device", kw, annotation=str, default=typer.Option("auto", help="auto, cpu or cuda.")),
        P("workers", kw, annotation=int, default=typer.Option(0, help="DataLoader worker processes.")),
        P("threads", kw, annotation=int | None, default=typer.Option(None, help="torch CPU threads.")),
        P("channels_last", kw, annotation=str,
          default=typer.Option("auto", help="NHWC memory format: auto (measured per network and machine, as "
                                            "--precision auto), on or off.")),
        P("resume", kw, annotation=bool, default=typer.Option(False, help="Continue runs from their last checkpoint "
                                                              "(with their recorded settings).")),
    ]


def _config_command(cls: Any, params: list[inspect.Parameter], run: Any, doc: str) -> Any:
    """A command whose options are ``params`` plus one per field of ``cls.Config``; ``run(kw, explicit)``
    gets every option and, separately, the config fields given on the command line."""
    from facedyn.config import field_type, fields_of, help_of

    P = inspect.Parameter
    params = list(params)
    taken = {p.name for p in params}
    names = []
    for f in fields_of(cls.Config):
        if f.name in taken:
            raise TypeError(f"{cls.__name__}: config field {f.name!r} clashes with a command option")
        decl = f"--{f.name.replace('_', '-')}"
        tp = field_type(cls.Config, f.name)
        if tp is bool:
            decl = f"{decl}/--no-{f.name.replace('_', '-')}"
        params.append(P(f.name, P.KEYWORD_ONLY, annotation=tp,
                        default=typer.Option(f.default, decl, help=help_of(cls.Config, f.name))))
        names.append(f.name)

    def command(**kw: Any) -> None:
        ctx: typer.Context = kw.pop("ctx")
        explicit = {k: kw[k] for k in names if getattr(ctx.get_parameter_source(k), "name", "DEFAULT") != "DEFAULT"}
        run(kw, explicit)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__doc__ = doc
    return command


def _train_command(cls: Any) -> Any:
    return _config_command(cls, _common_params(), lambda kw, explicit: _run_training(cls, kw, explicit),
                           (cls.__doc__ or cls.name).strip().splitlines()[0])


def _run_training(cls: Any, kw: dict[str, Any], explicit: dict[str, Any]) -> None:
    from facedyn.train import sweep
    from facedyn.train.loop import Runtime
    from facedyn.train.runner import parse_grid

    grid = parse_grid(kw["grid"] or [], cls.Config)
    rt = Runtime(device=kw["device"], workers=kw["workers"], threads=kw["threads"], resume=kw["resume"],
                 channels_last=kw["channels_last"])
    with _warnings_to_console(), progress_bar() as bar:
        results = sweep(cls, kw["data"], kw["out_dir"], grid, preset=kw["preset"], config_file=kw["config_file"],
                        overrides=explicit, runtime=rt,
                        progress=_sweep_progress(bar, cls))
    for r in results:
        best = r.best()
        shown = "none" if best is None else f"{best:.4g}"
        steps = r.history[-1].get("step", 0) if r.history else 0
        out.print(f"{r.run}: {steps} steps, best val {cls.selection.metric} {shown}", highlight=False)
        if r.speed is not None:
            out.print(f"  precision {r.speed.precision}{' + channels_last' if r.speed.channels_last else ''}: "
                      f"{r.speed.reason}", highlight=False, soft_wrap=True)


def _sweep_progress(bar: Any, cls: Any) -> Any:
    callbacks: dict[Path, Any] = {}

    def cb(run: Path, p: dict[str, Any]) -> None:
        if run not in callbacks:
            callbacks[run] = train_progress(bar, f"{cls.name} {run.name}", cls.selection.metric)
        callbacks[run](p)

    return cb


def _add_train_commands() -> None:
    from facedyn.methods import available, get

    have = {c.name for c in train_app.registered_commands}
    for name, cls in available().items():
        if name not in have:
            train_app.command(name, help=(cls.__doc__ or name).strip().splitlines()[0])(_train_command(cls))
    if not cv_app.registered_commands:
        cv_app.command("rank", help=_CV_HELP)(_cv_rank_command(get("dr")))


# -- cv rank: person-level cross-validation of the DR, options from the DR's config ----------------------------

cv_app = Typer(no_args_is_help=True, help="Person-level cross-validation.")
app.add_typer(cv_app, name="cv")
_CV_HELP = ("Train one DR per person-level fold and rank frames on each fold's unseen people: per-fold and "
            "pooled table, 95 % bootstrap interval over people for DR − centred. Resumable per fold.")


def _cv_rank_command(cls: Any) -> Any:
    P = inspect.Parameter
    kw = P.KEYWORD_ONLY
    common = [p for p in _common_params() if p.name not in ("grid", "resume")]
    common = [p.replace(default=typer.Option(..., "--out", help="Folder for fold0/, fold1/, ..., cv.md, cv.csv."))
              if p.name == "out_dir" else p for p in common]
    common += [
        P("folds", kw, annotation=int, default=typer.Option(5, help="Person-level folds (written into the store "
                                                            "when it has none; see `facedyn split --folds`).")),
        P("n_boot", kw, annotation=int, default=typer.Option(2000, help="Bootstrap replicates over people.")),
        P("max_windows", kw, annotation=int | None,
          default=typer.Option(None, help="Evaluate at most this many windows per fold (random subset).")),
    ]
    return _config_command(cls, common, _run_cv, _CV_HELP)


def _run_cv(kw: dict[str, Any], explicit: dict[str, Any]) -> None:
    from facedyn.cv import cv_rank
    from facedyn.train.loop import Runtime

    rt = Runtime(device=kw["device"], workers=kw["workers"], threads=kw["threads"], resume=True,
                 channels_last=kw["channels_last"])
    with _warnings_to_console(), progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def progress(label: str, p: dict[str, Any]) -> None:
            if label not in tasks:
                tasks[label] = train_progress(bar, label, "acc")
            tasks[label](p)

        res = cv_rank(kw["data"], kw["out_dir"], kw["folds"], kw["T"], kw["S"], preset=kw["preset"],
                      config_file=kw["config_file"], overrides=explicit, runtime=rt, seed=kw["seed"],
                      n_boot=kw["n_boot"], max_windows=kw["max_windows"], progress=progress)
    out.print(res["markdown"])
    out.print(f"wrote {', '.join(str(p) for p in res['files'])}")


# -- eval --------------------------------------------------------------------------------------------------

def _jitter_bounds(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        scale, shift, rot = (float(v) for v in text.split(","))
    except ValueError:
        raise FacedynError(f"--jitter must be SCALE,SHIFT_PX,ROTATION_DEG like 0.05,2,3, got {text!r}") from None
    return scale, shift, rot


@eval_app.command("rank")
def eval_rank(
    data: Annotated[Path, _DATA],
    runs: Annotated[list[Path] | None, typer.Option("--run", help="Trained run(s); sweep folders are expanded.")]
    = None,
    T: Annotated[int | None, typer.Option("--T", help="Window half-length (default: the run's).")] = None,
    S: Annotated[int | None, typer.Option("--S", help="Stride at 25 fps (default: the run's).")] = None,
    grid: Annotated[list[str] | None, typer.Option(help="Evaluate a grid: fig4 (T 3,5,7,9 x S 1,2,3,4) or "
                                                        "T=... and S=... (e.g. --grid T=3,5 --grid S=2).")] = None,
    methods: Annotated[str, typer.Option(help="Training-free methods, comma-separated: identity, centred, random, "
                                              "di, bdi, seq-di, ranksvm.")] = "identity,centred,random,seq-di,ranksvm",
    split: Annotated[str, typer.Option(help="test, val, train, or all (every clip, e.g. another dataset).")] = "test",
    every: Annotated[int, typer.Option(help="Use every k-th centre frame.")] = 1,
    max_windows: Annotated[int | None, typer.Option(help="Evaluate at most this many windows (random subset).")]
    = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for ranking.csv, ranking.md, figures/.")]
    = Path("ranking"),
    device: Annotated[str, _DEVICE] = "auto",
    seed: Annotated[int, typer.Option(help="Seed (random floor, subsets).")] = 0,
    jitter: Annotated[str | None, typer.Option(help="Also evaluate on windows re-aligned by random similarities: "
                                                    "SCALE,SHIFT_PX,ROTATION_DEG bounds, e.g. 0.05,2,3 (another "
                                                    "aligner's template).")] = None,
    fold: Annotated[int | None, typer.Option(help="Take --split from the store's person-level fold K (test = "
                                                  "fold K, val = K+1), as a run trained with --fold K.")] = None,
    weights: Annotated[str, typer.Option(help="The runs' checkpoint: best, last, init or step<N> (kept with "
                                              "--keep-steps).")] = "best",
) -> None:
    """Frame-ranking accuracy (dr-paper.txt §4.3): % of Eq. 2 pairs each representation ranks correctly."""
    from facedyn.eval.ranking import rank_report

    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total, info="windows")
            bar.update(tasks[label], completed=done, total=total)

        res = rank_report(data, out_dir, runs=runs or [], T=T, S=S, grid=grid or [],
                          methods=[m for m in methods.split(",") if m], split=split, every=every,
                          max_windows=max_windows, device=device, seed=seed, progress=progress,
                          jitter=_jitter_bounds(jitter), fold=fold, weights=weights)
    out.print(res["markdown"])
    out.print(f"wrote {', '.join(str(p) for p in res['files'])}")


_PERSON_NORM = typer.Option(
    "--person-norm/--no-person-norm", show_default=False,
    help="Probes: each feature minus the person's median before the linear models (OpenFace's person-specific "
         "normalisation). Default: on for au (targets relative to the person's rest), off for pose and landmarks.")


@eval_app.command("curve")
def eval_curve(
    run: Annotated[Path, typer.Option("--run", help="A run trained with --keep-steps.")],
    data: Annotated[Path, _DATA],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for curve.csv and curve.png.")] = Path("curve"),
    split: Annotated[str, typer.Option(help="DR: test, val, train, or all.")] = "test",
    max_windows: Annotated[int | None, typer.Option(help="DR: windows scored per checkpoint (the same for all).")]
    = 2000,
    group: Annotated[list[str] | None, typer.Option(help="DR: a named group of people, NAME=P1,P2,... (repeat): "
                                                         "also the accuracy over each group.")] = None,
    task: Annotated[str, typer.Option(help="Other methods: probe tasks, comma-separated (landmarks, pose, au).")]
    = "landmarks,pose,au",
    max_frames: Annotated[int | None, typer.Option(help="Other methods: frames per person for the probes.")] = 150,
    person_norm: Annotated[bool | None, _PERSON_NORM] = None,
    device: Annotated[str, _DEVICE] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the window subset / probe folds.")] = 0,
) -> None:
    """Learning curve on held-out people at every kept checkpoint.

    DR-family runs: ranking accuracy beside centred and Seq DI. Other runs (TCAE, FAb-Net): linear probes
    (landmarks NME, pose MAE/PCC, AU-proxy F1/AUC) beside the untrained network and PCA pixels.
    """
    from facedyn import runs as run_io
    from facedyn.device import resolve_device
    from facedyn.eval.curves import (
        probe_curve,
        probe_curve_table,
        ranking_curve,
        write_probe_curve,
        write_ranking_curve,
    )
    from facedyn.reports.tables import markdown_table

    say = lambda line: console.print(line, highlight=False)  # noqa: E731
    run_dir = run_io.resolve_run(run)
    record = run_io.read_record(run_dir)
    config = record.config
    fold = record.data.get("fold")
    ranks = "T" in config and "S" in config  # a DR-family run: ranking accuracy, else linear probes
    title = record.method + (f" T={config['T']} S={config['S']}" if ranks else "") \
        + (f", fold {fold}" if fold is not None else "") + f" ({Path(run).name})"
    dev = str(resolve_device(device))
    if ranks:
        groups = {}
        for spec in group or []:
            name, sep, people = spec.partition("=")
            if not sep or not name.strip() or not _names(people):
                raise FacedynError(f"--group {spec!r}: write NAME=P1,P2,... (people of the store)")
            groups[name.strip()] = _names(people) or []
        curve = ranking_curve(run_dir, data, split=split, max_windows=max_windows, seed=seed, device=dev,
                              groups=groups, progress=say)
        files = write_ranking_curve(curve, out_dir, title=title)
    else:
        curve = probe_curve(run_dir, data, tasks=_names(task) or [], max_frames_per_subject=max_frames, device=dev,
                            seed=seed, progress=say, person_norm=person_norm)
        files = write_probe_curve(curve, out_dir, title=title)
        curve = probe_curve_table(curve)
    out.print(markdown_table(curve, lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)))
    out.print(f"wrote {', '.join(str(p) for p in files)}")


@eval_app.command("metrics")
def eval_metrics(
    data: Annotated[Path, _DATA],
    run: Annotated[Path, typer.Option("--run", help="A trained run directory (any method).")],
    split: Annotated[str, typer.Option(help="test, val, train or all.")] = "test",
    weights: Annotated[str, typer.Option(help="best, last or init.")] = "best",
    device: Annotated[str, _DEVICE] = "auto",
) -> None:
    """A run's own validation metrics (whole-set) on a split of a dataset."""
    from facedyn.api import evaluate

    for k, v in evaluate(run, data, split=split, weights=weights, device=device).items():
        out.print(f"{k}\t{v:.6g}")


def _eval_task(task: str, data: Path, runs: list[Path], out_dir: Path, split: str, labels: str | None,
               n_boot: int, traces: int, device: str, seed: int) -> None:
    from facedyn.tasks.evaluation import evaluate_task

    with progress_bar() as bar:
        t = bar.add_task(f"eval {task}", total=None, info="")
        res = evaluate_task(task, data, runs, out_dir, split=split, labels=labels, n_boot=n_boot, seed=seed,
                            device=device, n_traces=traces, progress=lambda r: bar.update(t, info=r))
    out.print(res["markdown"])
    out.print(f"wrote {', '.join(str(p) for p in res['files'])}")


_TASK_RUNS = typer.Option("--run", help="Task runs, one per input (SI, SDR, MDR, ...); runs of one input on "
                                        "different --fold are pooled; folders of runs are expanded.")
_TASK_LABELS = typer.Option(help="store or proxies (AU proxies from the landmarks) instead of each run's own labels.")
_TASK_BOOT = typer.Option(help="Bootstrap replicates (over test subjects) of the 95 % intervals.")
_TASK_TRACES = typer.Option(help="Test clips in the predicted-vs-true trace plot (0: none).")
_DS = DownstreamConfig()


@eval_app.command("au")
def eval_au(
    data: Annotated[Path, _DATA],
    runs: Annotated[list[Path], _TASK_RUNS],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for au.csv, au.md, predictions.csv, figures/.")]
    = Path("eval_au"),
    split: Annotated[str, typer.Option(help="test, val, train or all.")] = "test",
    labels: Annotated[str | None, _TASK_LABELS] = None,
    n_boot: Annotated[int, _TASK_BOOT] = 1000,
    traces: Annotated[int, _TASK_TRACES] = 3,
    device: Annotated[str, _DEVICE] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """AU intensity table (dr-paper Table 1): ICC(3,1) and MSE per AU for each input, with 95 % intervals."""
    _eval_task("au", data, runs, out_dir, split, labels, n_boot, traces, device, seed)


@eval_app.command("affect")
def eval_affect(
    data: Annotated[Path, _DATA],
    runs: Annotated[list[Path], _TASK_RUNS],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for affect.csv, affect.md, predictions.csv, "
                                                         "figures/.")] = Path("eval_affect"),
    split: Annotated[str, typer.Option(help="test, val, train or all.")] = "test",
    labels: Annotated[str | None, _TASK_LABELS] = None,
    n_boot: Annotated[int, _TASK_BOOT] = 1000,
    traces: Annotated[int, _TASK_TRACES] = 3,
    device: Annotated[str, _DEVICE] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
) -> None:
    """Affect table (dr-paper Table 2): PCC, CCC and MSE of valence and arousal per input, with 95 % intervals."""
    _eval_task("affect", data, runs, out_dir, split, labels, n_boot, traces, device, seed)


@eval_app.command("downstream")
def eval_downstream(
    data: Annotated[Path, _DATA],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for downstream.csv/.md, figures/downstream.png, "
                                                         "run.json and the resumable cells/, features/.")]
    = Path("eval_downstream"),
    labels: Annotated[str, typer.Option(help="store (the clips' AU intensities) or proxies (AU proxies from the "
                                             "landmarks).")] = _DS.labels,
    label_columns: Annotated[str, typer.Option(help="Comma-separated label columns (default: every AUxx column, or "
                                                    "the six proxies).")] = _DS.label_columns,
    budgets: Annotated[str, typer.Option(help="Labelled people per training, comma-separated; all = every person "
                                              "outside the test people.")] = _DS.budgets,
    repeats: Annotated[int, typer.Option(help="Draws of labelled people for each budget below the pool's size.")]
    = _DS.repeats,
    kinds: Annotated[str, typer.Option(help="Representations, comma-separated: si, si-hg, sdr, mdr, mdr-ft "
                                            "(networks trained on the labelled frames), fabnet, tcae, dr, "
                                            "fabnet-init, tcae-init, pixels (heads on frozen features). Default: "
                                            "all but mdr-ft.", show_default=False)] = _DS.kinds,
    heads: Annotated[str, typer.Option(help="Heads on frozen features: linear (ridge), mlp.")] = _DS.heads,
    test_split: Annotated[str, typer.Option(help="Split(s) whose people are tested, comma-separated.")]
    = _DS.test_split,
    folds: Annotated[bool, typer.Option(help="Test every person-level fold of the store in turn (facedyn split "
                                             "--folds K) instead of --test-split.")] = _DS.folds,
    frames_per_person: Annotated[int, typer.Option(help="Labelled frames per person (evenly spaced).")]
    = _DS.frames_per_person,
    dr: Annotated[str, typer.Option(help="DR model(s) or runs: sdr and dr use the first, mdr stacks the image with "
                                         "each (several T: a multi-level DR).")] = _DS.dr,
    fabnet: Annotated[str, typer.Option(help="FAb-Net model or run.")] = _DS.fabnet,
    tcae: Annotated[str, typer.Option(help="TCAE model or run.")] = _DS.tcae,
    box_data: Annotated[str, typer.Option(help="The same footage prepared with box alignment: FAb-Net and TCAE "
                                               "read their crops there, as they were trained.")] = _DS.box_data,
    steps: Annotated[int, typer.Option(help="Adam steps of each trained network (si, si-hg, sdr, mdr).")]
    = _DS.steps,
    width: Annotated[int, typer.Option(help="CNN width (HG-HMR: twice this).")] = _DS.width,
    pca_dim: Annotated[int, typer.Option(help="PCA dimensions of the pixel and DR features.")] = _DS.pca_dim,
    person_norm: Annotated[bool, typer.Option(help="Heads see each feature relative to the person's median.")]
    = _DS.person_norm,
    allow_seen: Annotated[bool, typer.Option(help="Admit representations that learnt from the test people's frames "
                                                  "without labels (transductive; named in the tables).")]
    = _DS.allow_seen,
    n_boot: Annotated[int, _TASK_BOOT] = _DS.n_boot,
    seed: Annotated[int, typer.Option(help="Seed of the draws, the trainings and the bootstrap.")] = _DS.seed,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads (default: torch's).")] = None,
    device: Annotated[str, _DEVICE] = "cpu",
) -> None:
    """What each representation buys downstream: AU intensity (ICC, MSE) and presence (F1, AUC) against the number
    of labelled people, SI / SDR / MDR networks and heads on frozen FAb-Net, TCAE, DR, init networks and pixels,
    scored on the same unseen people with paired differences to SI. Resumable."""
    from facedyn import lock
    from facedyn.tasks.downstream import run_downstream

    cfg = DownstreamConfig(budgets=budgets, repeats=repeats, kinds=kinds, heads=heads, labels=labels,
                           label_columns=label_columns, test_split=test_split, folds=folds,
                           frames_per_person=frames_per_person, dr=dr, fabnet=fabnet, tcae=tcae, box_data=box_data,
                           steps=steps, width=width, pca_dim=pca_dim, person_norm=person_norm, n_boot=n_boot,
                           seed=seed, allow_seen=allow_seen)
    cfg.check()
    if threads:
        import torch

        torch.set_num_threads(threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    with lock.hold(out_dir, "eval downstream"), progress_bar() as bar:
        t = bar.add_task("eval downstream", total=None, info="")
        res = run_downstream(data, out_dir, cfg, device=device, progress=lambda r: bar.update(t, info=r))
    out.print(res["markdown"])
    out.print(f"wrote {', '.join(str(p) for p in res['files'])}")


@eval_app.command("probe")
def eval_probe(
    run: Annotated[Path, typer.Option("--run", help="A trained run directory (any method).")],
    data: Annotated[Path, _DATA],
    task: Annotated[str, typer.Option(help="au (presence F1/AUC, intensity PCC/MAE), pose (yaw, pitch, roll) or "
                                           "landmarks (NME).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for probes_<task>.md/.csv (and separation.csv, "
                                                         "figures/).")] = Path("probes"),
    features: Annotated[str, typer.Option(help="encode, or outputs of the network, comma-separated (TCAE: au,pose)."
                                          )] = "encode",
    folds: Annotated[int | None, typer.Option(help="Person-level GroupKFold K when the store has no folds "
                                                   "(default 5).")] = None,
    weights: Annotated[str, typer.Option(help="best, last, step<N> (kept with --keep-steps) or all (every kept step, "
                                              "then last), or several comma-separated: one row per checkpoint (a "
                                              "learning curve); init is always probed as the baseline.")] = "best",
    max_frames: Annotated[int, typer.Option(help="Frames per person (evenly spaced).")] = 150,
    cache: Annotated[bool, typer.Option(help="Reuse the init network's and the pixels' features and results kept "
                                             "in DATA/.cache/probes/ (same crops, folds, targets, weights, code)."
                                        )] = True,
    separation_people: Annotated[int, typer.Option(help="TCAE runs: synthetic people of the separation check "
                                                        "(4 pose and 4 AU pairs each; 0 skips it).")] = 8,
    test_split: Annotated[str | None, typer.Option(help="Evaluate the store's split of this name (a dataset's own "
                                                        "test partition, e.g. MAFL's) instead of folds.")] = None,
    presence: Annotated[float, typer.Option(help="AU labels count as present at this value or above.")] = 1.0,
    au_columns: Annotated[str | None, typer.Option(help="--task au: exactly these label columns, comma-separated "
                                                        "(e.g. BP4D occurrence AU01_occ,AU02_occ; only frames "
                                                        "with one of them known); default: every AUxx column.")
                          ] = None,
    person_norm: Annotated[bool | None, _PERSON_NORM] = None,
    device: Annotated[str, _DEVICE] = "auto",
    seed: Annotated[int, typer.Option(help="Seed (PCA).")] = 0,
) -> None:
    """Linear probes of frozen features vs the same network at init and raw pixels, on people the run never saw."""
    from facedyn.tasks.probes import probe_report

    res = probe_report(run, data, task, out_dir, features=_names(features) or ["encode"], folds=folds,
                       weights=weights, max_frames_per_subject=max_frames, device=device, seed=seed,
                       separation_people=separation_people, cache=cache, progress=lambda line: console.print(line),
                       test_split=test_split, presence=presence, person_norm=person_norm,
                       au_columns=_names(au_columns))
    out.print(res["markdown"])
    out.print(f"wrote {', '.join(str(p) for p in res['files'])}")


@eval_app.command("retrieval")
def eval_retrieval(
    run: Annotated[Path, typer.Option("--run", help="A trained run whose network has an embedding (encode).")],
    data: Annotated[Path, _DATA],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for retrieval.csv/.md/.png.")] = Path("retrieval"),
    k: Annotated[int, typer.Option(help="Neighbours per query (from other people).")] = 5,
    queries: Annotated[int, typer.Option(help="Queries of the landmark-distance score.")] = 300,
    figure_queries: Annotated[int, typer.Option(help="Queries (rows) of the figure.")] = 6,
    device: Annotated[str, _DEVICE] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the query draw.")] = 0,
) -> None:
    """Nearest neighbours from other people by a run's embedding: figure and landmark distance vs init and pixels."""
    from facedyn.fabnet.retrieval import retrieval_report

    res = retrieval_report(run, data, out_dir, k=k, n_queries=queries, n_figure=figure_queries, seed=seed,
                           device=device)
    out.print(res["markdown"])
    out.print(f"wrote {', '.join(str(p) for p in res['files'])}")


# -- infer, demo ---------------------------------------------------------------------------------------------

@app.command()
def represent(
    data: Annotated[Path, _DATA],
    runs: Annotated[list[Path] | None, typer.Option("--run", help="DR-family runs (dr, unet_mse, unet_p, pix2pix) "
                                                                   "whose outputs to cache; repeat.")] = None,
    windows: Annotated[str, typer.Option(help="Also cache true window dynamic images: di, bdi (T=5, S=2).")] = "",
    weights: Annotated[str, typer.Option(help="best, last or init.")] = "best",
    batch_size: Annotated[int, typer.Option(help="Frames per forward pass.")] = 64,
    device: Annotated[str, _DEVICE] = "auto",
) -> None:
    """Cache per-frame representations (SDR, MDR levels, baselines' outputs) beside a clip store for the tasks."""
    from facedyn.dr.representations import represent as _represent

    with progress_bar() as bar:
        tasks: dict[str, Any] = {}

        def progress(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(f"represent {label}", total=total, info="clips")
            bar.update(tasks[label], completed=done, total=total)

        sources = _represent(data, runs or [], _names(windows) or [], weights=weights, device=device,
                             batch_size=batch_size, progress=progress)
    for s in sources:
        out.print(f"{s.key}\t{s.label} (T={s.T}, S={s.S})\t{s.run or 'window'}")
    out.print(f"cached in {Path(data) / 'representations'}; train with e.g. `facedyn train au --data {data} "
              "--input mdr`")


@app.command()
def infer(
    source: Annotated[Path, typer.Argument(help="An image or a video.")],
    run: Annotated[list[str] | None, typer.Option("--run", help="Trained run directory or shipped model name "
                                                                 "(repeat for several; default: the shipped dr-t5).")]
    = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for faces.csv, summary.csv, per-output arrays, "
                                                         "PNGs, mp4.")] = Path("infer_out"),
    device: Annotated[str, _DEVICE] = "auto",
    engine: Annotated[str, typer.Option(help="torch, or onnx (onnxruntime; the run is exported once into "
                                             "RUN/onnx/).")] = "torch",
    track: Annotated[str, typer.Option(help="fit: detect every 10 frames and where a fit degrades, fit the 68 "
                                            "points in between; detect: detect on every frame.")] = "fit",
    html: Annotated[bool, typer.Option("--html", help="Also write view.html: frames with landmarks and boxes, "
                                                      "pose and AU proxies over time, DRs, a PCA map.")] = False,
    smooth: Annotated[float, typer.Option(help="Seconds: smooth each face's head pose and AU proxies over time "
                                               "(a causal exponential average; it lags by about that much). "
                                               "0: off.")] = 0.0,
) -> None:
    """Run models on every face of an image or video: faces.csv (OpenFace-style), summary.csv (one row per face),
    outputs, PNGs, mp4."""
    from facedyn.infer import infer_file

    res = infer_file(run or [], source, out_dir, device=device, engine=engine, track=track, html=html,
                     smooth=smooth)
    out.print(f"{res['faces']} faces in {res['frames']} frames; wrote {', '.join(res['files'])} in {out_dir}")


@export_app.command("onnx")
def export_onnx(
    run: Annotated[Path, typer.Argument(help="A trained run directory (any method).")],
    out_file: Annotated[Path, typer.Option("--out", help="The .onnx file to write.")] = Path("model.onnx"),
    weights: Annotated[str, typer.Option(help="best, last or init.")] = "best",
) -> None:
    """Export a run's network (encode and its named outputs, dynamic batch) to ONNX, with the run's record."""
    from facedyn.export import export_onnx as _export

    out.print(f"wrote {_export(run, out_file, weights=weights)}")


@app.command()
def report(
    paths: Annotated[list[Path], typer.Argument(help="Run directories (sweep folders expanded) and results folders.")],
    out_file: Annotated[Path, typer.Option("--out", help="The HTML file to write.")] = Path("report.html"),
    title: Annotated[str, typer.Option(help="Page title.")] = "facedyn report",
) -> None:
    """One self-contained HTML page (figures embedded): configs, training curves, tables, galleries."""
    from facedyn.reports.html import write_html_report

    out.print(f"wrote {write_html_report(paths, out_file, title=title).resolve()}")


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for everything the demo makes.")] = Path("demo_out"),
    subjects: Annotated[int | None, typer.Option(help="Synthetic people (default: the demo's 96, so that 19 "
                                                      "held-out people score the AU table).")] = None,
    seconds: Annotated[float | None, typer.Option(help="Seconds per clip (default: the demo's 2).")] = None,
    epochs: Annotated[int | None, typer.Option(help="DR training epochs (default: the demo's 8).")] = None,
    steps_per_epoch: Annotated[int | None, typer.Option(help="DR steps per epoch (default: the demo's 100).")]
    = None,
    device: Annotated[str, _DEVICE] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    precision: Annotated[str, typer.Option(help="auto (bf16 where this machine does it natively and it measures "
                                                "faster), fp32 or bf16: of every training.")] = "auto",
    channels_last: Annotated[str, typer.Option(help="auto (measured), on or off.")] = "auto",
) -> None:
    """The main job on embedded synthetic data: synth → prepare → train DR → eval rank → report."""
    from facedyn.demo import run_demo

    size = {k: v for k, v in {"subjects": subjects, "seconds": seconds}.items() if v is not None}
    run_demo(out_dir, seed=seed, console=out, epochs=epochs, steps_per_epoch=steps_per_epoch, device=device,
             precision=precision, channels_last=channels_last, **size)


@app.command()
def reproduce(
    recipe: Annotated[str | None, typer.Argument(help="A recipe (see --list), e.g. dr-table1.")] = None,
    data_root: Annotated[Path | None, typer.Option("--data-root", help="Folder holding the datasets (RECOLA/, BP4D/, "
                                                                         "SEMAINE/, ...; see --list).")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for stores, runs, results (shared by "
                                                               "recipes; finished stages are skipped).")] = None,
    preset: Annotated[str, typer.Option(help="paper (the published scale) or cpu (64 px, short budgets).")] = "paper",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the stages, their commands and the estimated "
                                                            "GPU hours; run nothing.")] = False,
    list_recipes: Annotated[bool, typer.Option("--list", help="List the recipes and the datasets each needs.")]
    = False,
    sets: Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE overrides (repeat): size, epochs, steps, "
                                                                 "batch_size, val_batches, max_windows, frames, "
                                                                 "n_boot, T, S, grid_T, grid_S, workers, threads, "
                                                                 "precision, channels_last, vgg_weights, "
                                                                 "gpu_factor.")] = None,
    device: Annotated[str, _DEVICE] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of every stage.")] = 0,
) -> None:
    """Run one paper experiment end to end on the real datasets (resumable), or --dry-run its plan, or --list."""
    from facedyn.reproduce import DATASET_DIRS, RECIPES, Settings, run_recipe
    from facedyn.reproduce import dry_run as _dry_run
    from facedyn.reproduce.settings import parse_sets

    if list_recipes:
        table = Table(title="facedyn reproduce recipes")
        for col in ("recipe", "reproduces", "what", "datasets (folders under --data-root)"):
            table.add_column(col)
        for r in RECIPES.values():
            table.add_row(r.name, r.source, r.title, ", ".join(f"{DATASET_DIRS[d]}/" for d in r.datasets))
        out.print(table)
        return
    if recipe is None or data_root is None or out_dir is None:
        raise FacedynError("give a RECIPE, --data-root and --out (or --list to see the recipes)")
    settings = Settings(preset=preset, device=device, seed=seed, overrides=parse_sets(sets))
    if dry_run:
        out.print(_dry_run(recipe, data_root, out_dir, settings), markup=False, highlight=False, soft_wrap=True)
        return
    res = run_recipe(recipe, data_root, out_dir, settings,
                     say=lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True))
    out.print(res["table"], markup=False, highlight=False, soft_wrap=True)
    out.print(f"wrote {res['file']}")


def main() -> None:
    """Console entry point: user mistakes print one line and exit 2, without a traceback."""
    try:
        _add_train_commands()
        app()
    except FacedynError as e:
        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        console.print("[red]interrupted[/] (partial outputs were removed; rerun to resume)")
        sys.exit(130)
    except OSError as e:  # a write outside the atomic helpers that ran out of room: still one line
        cause = no_room(e)
        if cause is None:
            raise
        console.print(f"[red]error:[/] {write_failed(e.filename or 'an output file', cause)}", highlight=False,
                      soft_wrap=True)
        sys.exit(OutputError.exit_code)


if __name__ == "__main__":
    main()
