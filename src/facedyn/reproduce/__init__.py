"""``facedyn reproduce``: every experiment of the three papers as one resumable command on the real datasets.

    from facedyn.reproduce import run_recipe, dry_run, RECIPES
    print(dry_run("dr-table1", "/datasets", "repro"))      # stages, commands, GPU-hour estimate
    res = run_recipe("dr-table1", "/datasets", "repro")    # runs what is not done yet; the table beside the paper's

A recipe (:mod:`facedyn.reproduce.recipes`) is a list of stages (:mod:`facedyn.reproduce.stages`), each a call of
the existing API (prepare with the dataset's adapter, train at the preset, represent, train the task model,
evaluate or probe) with its equivalent command line; its last step writes ``OUT/results/<recipe>/table.md``:
its numbers beside the paper's (:mod:`facedyn.reproduce.paper`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from facedyn import __version__
from facedyn.atomic import write_text
from facedyn.errors import ConfigError
from facedyn.reproduce.recipes import RECIPES, Recipe, TableMaker
from facedyn.reproduce.settings import Settings
from facedyn.reproduce.stages import DATASET_DIRS, Context, Stage

__all__ = ["DATASET_DIRS", "RECIPES", "Recipe", "Settings", "dry_run", "plan", "run_recipe"]


def get_recipe(name: str) -> Recipe:
    """The recipe ``name``; ConfigError naming the known ones otherwise."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)} (facedyn reproduce --list)")
    return RECIPES[name]


def plan(recipe: str, data_root: str | Path, out: str | Path, settings: Settings | None = None,
         say: Callable[[str], None] | None = None) -> tuple[Context, TableMaker]:
    """The recipe's stages (in ``ctx.stages``, in order) and its table maker; nothing runs."""
    r = get_recipe(recipe)
    ctx = Context(r.name, Path(data_root), Path(out), settings or Settings(), say)
    return ctx, r.build(ctx)


def _header(r: Recipe, ctx: Context) -> list[str]:
    sets = ", ".join(f"{k}={v}" for k, v in sorted(ctx.settings.overrides.items())) or "none"
    return [f"# {r.name}: {r.title}", "", f"- reproduces: {r.source}",
            f"- datasets: {', '.join(f'{d} ({ctx.dataset_dir(d)})' for d in r.datasets)}",
            f"- preset: {ctx.settings.preset}; --set: {sets}; facedyn {__version__}"]


def run_recipe(recipe: str, data_root: str | Path, out: str | Path, settings: Settings | None = None,
               say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every stage not done yet, then write ``OUT/results/<recipe>/table.md``.

    Returns ``{"table": markdown, "file": path, "ran": [stage ids], "skipped": [stage ids]}``.
    """
    ctx, table = plan(recipe, data_root, out, settings, say)
    threads = ctx.settings.get("threads")
    if threads:
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(int(threads))
        with threadpool_limits(limits=int(threads)):  # BLAS of the linear probes and metrics too
            return _run(recipe, ctx, table)
    return _run(recipe, ctx, table)


def _run(recipe: str, ctx: Context, table: TableMaker) -> dict[str, Any]:
    ran, skipped = [], []
    for i, s in enumerate(ctx.stages, 1):
        if s.done(ctx.out):
            skipped.append(s.id)
            ctx.say(f"[{i}/{len(ctx.stages)}] {s.id}: done before, skipped")
            continue
        ctx.say(f"[{i}/{len(ctx.stages)}] {s.id}: {s.command}")
        s.run(ctx.out)
        ran.append(s.id)
    r = get_recipe(recipe)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    md = "\n".join([*_header(r, ctx), f"- finished: {stamp}", "", table()]) + "\n"
    path = ctx.results / "table.md"
    write_text(path, md)
    return {"table": md, "file": path, "ran": ran, "skipped": skipped}


def _hours(v: float | None) -> str:
    if v is None:
        return "?"
    return f"{v:.2g}" if v < 10 else f"{v:.0f}"


def dry_run(recipe: str, data_root: str | Path, out: str | Path, settings: Settings | None = None,
            throughput: str | Path | None = None) -> str:
    """The plan as markdown: each stage (done or to do), its command, and the time it should take."""
    from facedyn.reproduce.estimate import basis, load_throughput, stage_estimate

    ctx, _ = plan(recipe, data_root, out, settings)
    table = load_throughput(throughput)
    cache: dict[str, float | None] = {}
    rows, cmds = [], []
    total_gpu = total_cpu = 0.0
    unknown = False
    for i, s in enumerate(ctx.stages, 1):
        done = s.done(ctx.out)
        est = stage_estimate(s, ctx, table, cache)
        if not done:
            if est["gpu_h"] is None:
                unknown = True
            elif s.kind == "prepare":
                total_cpu += est["cpu_h"] or 0.0
            else:
                total_gpu += est["gpu_h"]
        units = "?" if est["units"] is None else f"{est['units']:.3g}"
        rows.append({"#": i, "stage": s.id, "status": "done" if done else "to do", "units": units,
                     "GPU h": "CPU" if s.kind == "prepare" else _hours(est["gpu_h"]),
                     "CPU h": _hours(est["cpu_h"]), "note": est["note"]})
        cmds.append(f"{i}. `{s.command}`")
    from facedyn.reports.tables import markdown_table

    r = get_recipe(recipe)
    lines = [*_header(r, ctx), f"- output: {ctx.out} (stages done before are skipped; a stage stopped part-way "
             "resumes)", "", "## Stages", "", markdown_table(pd.DataFrame(rows), str).rstrip("\n"), "",
             f"**Total still to do: ~{_hours(total_gpu)} GPU hours + ~{_hours(total_cpu)} CPU-core hours of prepare"
             + (" (plus stages whose size is unknown: '?')" if unknown else "") + ".**", "",
             f"Basis: {basis(ctx, table)} Units: training images (epochs x steps x batch) for training stages, "
             "frames (x networks) for represent/probe/eval, windows for ranking.", "",
             *label_checks(ctx), "## Equivalent commands", "", *cmds, ""]
    return "\n".join(lines)


def label_checks(ctx: Context) -> list[str]:
    """The dry run's ``## Labels`` section: prepare's label checks on every clip of each dataset the recipe needs,
    nothing prepared (:func:`facedyn.data.datasets.report.check_dataset`), and what is missing per dataset: the
    dataset, clips without labels, label files that cannot be read, columns a probe of the recipe needs."""
    from facedyn.data.datasets.report import LABELLED, check_dataset

    r = get_recipe(ctx.recipe)
    required: dict[str, list[str]] = {}
    for s in ctx.stages:
        if s.cost.dataset and s.key.get("au_columns"):
            cols = required.setdefault(s.cost.dataset, [])
            cols += [c for c in s.key["au_columns"] if c not in cols]
    out = ["## Labels", "", "Each clip's labels read as `prepare` reads them (frame counts from the video headers; "
           "nothing prepared):", ""]
    for ds in r.datasets:
        if ds not in LABELLED:
            out += [f"**{ds}** ({ctx.dataset_dir(ds)}): no labels used", ""]
            continue
        out += [*check_dataset(ds, ctx.dataset_dir(ds), required.get(ds, ())).markdown(), ""]
    return out


def stage_list(recipe: str, data_root: str | Path, out: str | Path, settings: Settings | None = None) -> list[Stage]:
    """The stages of ``recipe`` (for tests and tools)."""
    return plan(recipe, data_root, out, settings)[0].stages
