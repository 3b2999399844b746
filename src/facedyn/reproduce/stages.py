"""The stages a recipe is made of, each a call of the existing Python API with its equivalent command.

A stage writes into ``OUT`` (stores under ``OUT/data``, runs under ``OUT/runs``, results under
``OUT/results/<recipe>``) and, once finished, a marker ``OUT/.stages/<id>.json`` recording the settings
it ran with. A rerun skips every stage whose marker exists (stages that stopped part-way resume: prepare
keeps complete clips, training continues from its last checkpoint); a marker written with other settings
is refused, so one ``OUT`` never mixes presets. Recipes sharing a stage (the RECOLA DR of Fig. 3 and of
Tables 1-2) share its output when they are run into the same ``OUT``.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facedyn.atomic import write_text
from facedyn.data.datasets.folder import safe_id
from facedyn.errors import ConfigError, DatasetError, FacedynError
from facedyn.reproduce.settings import Settings

#: folder of each dataset under ``--data-root``
DATASET_DIRS: dict[str, str] = {
    "recola": "RECOLA", "semaine": "SEMAINE", "bp4d": "BP4D", "disfa": "DISFA", "voxceleb": "VoxCeleb",
    "300w": "300W", "mafl": "CelebA", "aflw": "AFLW", "emotionet": "EmotioNet",
}
MARKERS = ".stages"


@dataclass(frozen=True)
class Cost:
    """What a stage's time is proportional to, for the dry run's estimate.

    ``kind``: ``prepare`` (CPU, per source frame), ``train:<method>`` (per training image), ``infer:<family>``
    (per frame, forward only), ``rank`` (per window), ``probe`` (per frame, forward + linear models).
    ``images``: fixed number of units (training), or None when it is ``per_frame`` x the frames of ``dataset``.
    """

    kind: str
    size: int
    images: float | None = None
    dataset: str | None = None
    per_frame: float = 1.0


@dataclass
class Stage:
    """One step of a recipe: ``action()`` makes ``output``; ``command`` is the same from the shell."""

    id: str
    kind: str
    output: Path
    command: str
    action: Callable[[], Any]
    cost: Cost
    key: dict[str, Any] = field(default_factory=dict)

    def marker(self, out: Path) -> Path:
        return out / MARKERS / f"{safe_id(self.id.replace('/', '_').replace(':', '_'))}.json"

    def done(self, out: Path) -> bool:
        """True when the stage finished before with these settings.

        Raises:
            ConfigError: it finished with other settings (another preset or ``--set``).
        """
        m = self.marker(out)
        if not m.is_file():
            return False
        rec = json.loads(m.read_text())
        if rec.get("key") != json.loads(json.dumps(self.key)):
            raise ConfigError(f"{out}: stage {self.id} was run with {rec.get('key')}, this run asks for {self.key}; "
                              "use another --out for other settings")
        return True

    def run(self, out: Path) -> None:
        t = time.time()
        self.action()
        write_text(self.marker(out), json.dumps({"id": self.id, "key": self.key, "seconds": round(time.time() - t, 2),
                                                 "output": str(self.output)}, indent=1) + "\n")


def sh(*parts: Any) -> str:
    """A shell command line from its parts (paths quoted where needed)."""
    return " ".join(shlex.quote(str(p)) for p in parts if p is not None and p != "")


def _opts(values: dict[str, Any]) -> list[str]:
    out = []
    for k, v in values.items():
        flag = f"--{k.replace('_', '-')}"
        if isinstance(v, bool):
            out.append(flag if v else f"--no-{k.replace('_', '-')}")
        else:
            out += [flag, str(v)]
    return out


class Context:
    """Where a recipe reads and writes, its settings, and the stages made so far (shared ones once)."""

    def __init__(self, recipe: str, data_root: Path, out: Path, settings: Settings,
                 say: Callable[[str], None] | None = None) -> None:
        self.recipe, self.data_root, self.out, self.settings = recipe, Path(data_root), Path(out), settings
        self.say = say or (lambda s: None)
        self.stages: list[Stage] = []

    @property
    def results(self) -> Path:
        return self.out / "results" / self.recipe

    def add(self, stage: Stage) -> Stage:
        for s in self.stages:
            if s.id == stage.id:
                return s
        self.stages.append(stage)
        return stage

    def dataset_dir(self, dataset: str) -> Path:
        return self.data_root / DATASET_DIRS[dataset]

    def key(self, **extra: Any) -> dict[str, Any]:
        """What a stage's output depends on: the preset and seed plus the stage's own settings ``extra``."""
        return {"preset": self.settings.preset, "seed": self.settings.seed, **extra}


# -- stage builders -------------------------------------------------------------------------------------------

def prepare(ctx: Context, dataset: str, family: str, align: str = "similarity") -> Path:
    """Prepare ``dataset`` (its adapter) into ``OUT/data/<dataset>-<align>-<size>``; returns the store."""
    size = ctx.settings.size(family)
    store = ctx.out / "data" / f"{dataset}-{align}-{size}"
    src = ctx.dataset_dir(dataset)
    workers = int(ctx.settings.get("workers", 1))
    recipe = ctx.recipe

    def action() -> None:
        from facedyn.data.prepare import PrepareOptions
        from facedyn.data.prepare import prepare as _prepare

        if not src.is_dir():
            raise DatasetError(f"{src}: not found; the {recipe} recipe needs {DATASET_DIRS[dataset]} there "
                               "(README, 'Reproducing the papers', says what goes where)")
        res = _prepare([src], store, PrepareOptions(size=size, align=align, seed=ctx.settings.seed), workers=workers,
                       kind=dataset)
        from facedyn.data.datasets.report import store_report

        said = store_report(store, [r.clip_id for r in res if not r.error], dataset)
        for line in [*said.lines(), *(f"warning: {w}" for w in said.warnings())]:
            ctx.say(line)
        bad = [r for r in res if r.error]
        if bad:
            raise FacedynError(f"{len(bad)} of {len(res)} {dataset} clips failed to prepare (first: {bad[0].error}); "
                               f"fix or remove them and rerun: complete clips are kept")

    cmd = sh("facedyn", "prepare", src, "--dataset", dataset, "--size", size, "--align", align,
             *(("--workers", workers) if workers > 1 else ()), "--out", store)
    ctx.add(Stage(f"prepare:{store.name}", "prepare", store, cmd, action, Cost("prepare", size, dataset=dataset),
                  {"seed": ctx.settings.seed, "size": size, "align": align}))
    return store


def fera2015_split(ctx: Context, store: Path) -> Path:
    """BP4D: test = the FERA 2015 development subjects, val = the last 15 % of the training subjects (sorted).

    The FERA 2015 test partition is not part of the BP4D release; the task tables are on the development
    partition, and checkpoints are selected on training subjects held out from training.
    """
    def action() -> None:
        from facedyn.data.datasets.bp4d import FERA2015_DEVEL
        from facedyn.data.splits import set_splits
        from facedyn.data.store import ClipDataset

        subjects = ClipDataset(store).subjects
        test = [s for s in subjects if s in FERA2015_DEVEL]
        train = [s for s in subjects if s not in test]
        n_val = max(1, round(0.15 * len(train))) if len(train) > 1 else 0
        val = train[len(train) - n_val:]
        if not test or not train:
            raise DatasetError(f"{store}: needs subjects of both FERA 2015 partitions (training F001, F003, ...; "
                               f"development F002, F004, ...), found {', '.join(subjects)}")
        set_splits(store, val=val, test=test)

    ctx.add(Stage(f"split:{store.name}", "split", store, "facedyn split STORE --val <last 15 % of training "
                  "subjects> --test <FERA 2015 development subjects>".replace("STORE", str(store)), action,
                  Cost("none", 0, images=0), ctx.key()))
    return store


def train(ctx: Context, method: str, store: Path, name: str, config: dict[str, Any] | None = None) -> Path:
    """Train ``method`` on ``store`` into ``OUT/runs/<name>`` at the preset (``--resume``: continues)."""
    run = ctx.out / "runs" / name
    overrides = {**ctx.settings.budget(method), "seed": ctx.settings.seed, **(config or {})}
    preset = ctx.settings.preset

    def action() -> None:
        from facedyn.train import train as _train
        from facedyn.train.loop import Runtime
        from facedyn.train.runner import configure

        cfg = configure(method, preset, overrides=overrides, resume_from=run)
        threads = ctx.settings.get("threads")
        layout = ctx.settings.get("channels_last", "auto")
        _train(method, store, run, cfg, Runtime(device=ctx.settings.device, resume=True, channels_last=layout,
                                                threads=int(threads) if threads else None), command=cmd)

    layout = ctx.settings.get("channels_last")
    cmd = sh("facedyn", "train", method, "--data", store, "--preset", preset, *_opts(overrides),
             *(("--channels-last", layout) if layout else ()), "--out", run, "--resume")
    from facedyn.train.runner import configure

    batch = int(getattr(configure(method, preset, overrides=overrides), "batch_size", 16))
    images = overrides["epochs"] * overrides["steps_per_epoch"] * batch
    ctx.add(Stage(f"train:{name}", "train", run, cmd, action, Cost(f"train:{method}", _size_of(ctx, store),
                                                                  images=images), ctx.key(**overrides)))
    return run


def _size_of(ctx: Context, store: Path) -> int:
    return int(store.name.rsplit("-", 1)[-1])


def represent(ctx: Context, store: Path, runs: Sequence[Path], windows: Sequence[str] = ()) -> None:
    """Cache the DR-family runs' outputs (and true window DIs) beside ``store``."""
    def action() -> None:
        from facedyn.dr.representations import represent as _represent

        _represent(store, list(runs), list(windows), device=ctx.settings.device)

    cmd = sh("facedyn", "represent", "--data", store, *[x for r in runs for x in ("--run", r)],
             "--windows" if windows else None, ",".join(windows))
    names = "+".join(f"{r.parent.name}/{r.name}" for r in runs)
    ctx.add(Stage(f"represent:{store.name}:{names}", "represent", store / "representations", cmd, action,
                  Cost("infer:dr", _size_of(ctx, store), dataset=_dataset_of(store),
                       per_frame=len(runs) + len(windows)), ctx.key()))


def _dataset_of(store: Path) -> str:
    return store.name.split("-", 1)[0]


def rank(ctx: Context, store: Path, runs: Sequence[Path], out: Path, settings: Sequence[tuple[int, int]]) -> Path:
    """Frame ranking on every clip of ``store`` (another dataset than the runs' training one)."""
    methods = ["identity", "centred", "random", "seq-di", "ranksvm"]
    max_windows = ctx.settings.get("max_windows")
    grid = [] if len(settings) == 1 else [f"T={','.join(str(t) for t in sorted({t for t, _ in settings}))}",
                                          f"S={','.join(str(s) for s in sorted({s for _, s in settings}))}"]

    def action() -> None:
        from facedyn.eval.ranking import rank_report

        T, S = settings[0] if len(settings) == 1 else (None, None)
        rank_report(store, out, runs=list(runs), T=T, S=S, grid=grid, methods=methods, split="all",
                    max_windows=max_windows, device=ctx.settings.device, seed=ctx.settings.seed)

    one = settings[0] if len(settings) == 1 else None
    cmd = sh("facedyn", "eval", "rank", "--data", store, *[x for r in runs for x in ("--run", r)],
             *(("--T", one[0], "--S", one[1]) if one else [x for g in grid for x in ("--grid", g)]),
             "--methods", ",".join(methods), "--split", "all",
             *(("--max-windows", max_windows) if max_windows else ()), "--out", out)
    ctx.add(Stage(f"rank:{ctx.recipe}:{store.name}", "rank", out, cmd, action,
                  Cost("rank", _size_of(ctx, store), dataset=_dataset_of(store), per_frame=len(settings)),
                  ctx.key(max_windows=max_windows)))
    return out


def evaluate_task(ctx: Context, task: str, store: Path, runs: Sequence[Path], out: Path) -> Path:
    """``facedyn eval au|affect`` of the task runs on the store's test split."""
    n_boot = int(ctx.settings.get("n_boot", 1000))

    def action() -> None:
        from facedyn.tasks.evaluation import evaluate_task as _evaluate

        _evaluate(task, store, list(runs), out, split="test", n_boot=n_boot, device=ctx.settings.device,
                  seed=ctx.settings.seed)

    cmd = sh("facedyn", "eval", task, "--data", store, *[x for r in runs for x in ("--run", r)], "--split", "test",
             "--n-boot", n_boot, "--out", out)
    ctx.add(Stage(f"eval-{task}:{ctx.recipe}", f"eval-{task}", out, cmd, action,
                  Cost("infer:task", _size_of(ctx, store), dataset=_dataset_of(store), per_frame=len(runs)),
                  ctx.key(n_boot=n_boot)))
    return out


def probe(ctx: Context, run: Path, store: Path, task: str, out: Path, features: Sequence[str] = ("encode",),
          test_split: str | None = None, folds: int | None = None, presence: float = 1.0,
          au_columns: Sequence[str] | None = None) -> Path:
    """Linear probes of a run's frozen features on ``store`` (vs its init network and PCA pixels).

    ``au_columns``: the AU label columns of a paper's protocol (``--au-columns``), present at ``presence`` or above;
    they and ``presence`` are part of the stage's key, so an ``OUT`` probed under another protocol is refused.
    """
    frames = int(ctx.settings.get("frames", 150))
    cols = list(au_columns) if au_columns else None

    def action() -> None:
        from facedyn.tasks.probes import run_probes, write_probe_report

        df = run_probes(run, store, task, features=list(features), folds=folds, max_frames_per_subject=frames,
                        device=ctx.settings.device, seed=ctx.settings.seed, test_split=test_split,
                        presence=presence, au_columns=cols)
        write_probe_report(df, out)
        write_text(out / "folds.json", json.dumps({"folding": df.attrs["folding"], "folds": df.attrs["folds"],
                                                   "targets": df.attrs["targets"]}, indent=1) + "\n")

    cmd = sh("facedyn", "eval", "probe", "--run", run, "--data", store, "--task", task,
             "--features", ",".join(features), "--max-frames", frames,
             *(("--test-split", test_split) if test_split else ()), *(("--folds", folds) if folds else ()),
             *(("--presence", f"{presence:g}") if presence != 1.0 else ()),
             *(("--au-columns", ",".join(cols)) if cols else ()), "--separation-people", 0, "--out", out)
    key = ctx.key(frames=frames, **({"au_columns": cols, "presence": presence} if cols else {}))
    ctx.add(Stage(f"probe:{ctx.recipe}:{run.name}:{store.name}:{task}", "probe", out, cmd, action,
                  Cost("probe", _size_of(ctx, store), dataset=_dataset_of(store), per_frame=3.0), key))
    return out
