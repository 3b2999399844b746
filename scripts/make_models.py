"""``make models``: train the shipped models on all the real footage of ../shared/data and copy them into
the package (``src/facedyn/assets/models/dr-t3``, ``dr-t5``, ``dr-t9``, ``fabnet``, ``tcae``).

Steps (each resumable): prepare every real clip (corpus + talking clips) into 64 px stores (similarity
alignment for DR, box alignment for FAb-Net and TCAE, as their papers); person-level splits with 5 validation people
for checkpoint selection, the ``--test`` people held out for learning curves, everyone else in training; one
run per model in :data:`MODELS` with the settings there; then each run's record, best weights and metrics go
to ``assets/models/<name>/`` with a new ``MODEL_CARD.md`` (``scripts/model_card.py``) and the cross-validation
table of the same settings when one was made
(``--cv DIR`` holding ``cv_T{T}/cv.md``). The log is appended to ``assets/models/make_models.log``; runs that
are complete are not retrained (rerunning with ``--cv`` only copies the tables), and a run stopped part-way
(``--time-budget``) resumes from its last checkpoint.

    .venv/bin/python scripts/make_models.py [--work DIR] [--cv DIR] [--epochs 6] [--steps 250] [--track fit]
        [--time-budget 2h] [--precision auto] [--only dr-t5,fabnet]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# paths relative to the repository root (the script works there): the runs record the store as given and the log
# names no absolute path of this machine
SHARED = Path("..") / "shared" / "data"
ASSETS = Path("src") / "facedyn" / "assets" / "models"
#: Shipped model -> (method, alignment of its store, settings besides the budget ones).
MODELS: dict[str, tuple[str, str, dict[str, object]]] = {
    "dr-t3": ("dr", "similarity", {"T": 3, "S": 1}),
    "dr-t5": ("dr", "similarity", {"T": 5, "S": 2}),
    # T=9 learns slowly from scratch; fine-tuned from the T=5 DR it reaches +3.6 points over centred in the 5-fold
    # cv (README, docs/results/cv/dr-t9-86people-init-t5) where 10 000 steps from scratch reached +1.1 on fold 0.
    # The fine-tune gains nothing on new people after ~1 000 steps (docs/results/curves/dr-t9/): 2 000 cosine steps,
    # whatever --time-budget / --epochs say; train it after dr-t5 (its record pins the dr-t5 it started from)
    "dr-t9": ("dr", "similarity", {"T": 9, "S": 4, "init_from": "dr-t5", "lr_schedule": "cosine", "epochs": 2,
                                   "steps_per_epoch": 1000}),
    # the single-source FAb-Net (fabnet-slides.txt): one source frame within 2 s of the target, no curriculum
    "fabnet": ("fabnet", "box", {"n_sources": 1, "curriculum": False, "batch_size": 32, "lr_schedule": "cosine"}),
    # TCAE with the displacement gain of docs/results/tcae/diagnosis.md (flow_gain 1/16, now its default)
    "tcae": ("tcae", "box", {"flow_gain": 0.0625}),
}


def log(msg: str, file: Path) -> None:
    line = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {msg}"
    print(line, flush=True)
    with open(file, "a") as f:
        f.write(line + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("models_work"), help="relative to the repository root")
    ap.add_argument("--cv", type=Path, default=None, help="folder with cv_T3/, cv_T5/, cv_T9/ (cv rank outputs)")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--track", default="fit", choices=("fit", "detect"),
                    help="landmarks of prepare: fit-tracking (default) or detection on every frame")
    ap.add_argument("--time-budget", default=None,
                    help="train each model for this long (90m, 2h30m) instead of --epochs; resumable across sessions")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (1 when other work shares the cores: 2 OpenMP threads then lose 4x)")
    ap.add_argument("--only", default=",".join(MODELS), help="models to train, comma-separated")
    ap.add_argument("--keep-steps", default="log", help="also keep these steps' weights (learning curves)")
    ap.add_argument("--per-person", type=int, default=None,
                    help="DR: train on at most this many windows per person (so that one long clip does not "
                         "dominate)")
    ap.add_argument("--test", default="", help="held-out people (never trained or validated on): learning curves")
    ap.add_argument("--val", default="M003,W023,dpe_s,klobuchar,talking_d12", help="validation people")
    a = ap.parse_args()
    os.chdir(ROOT)
    from facedyn import methods
    from facedyn.data.prepare import PrepareOptions, prepare
    from facedyn.data.splits import set_splits
    from facedyn.train import train
    from facedyn.train.loop import Runtime

    ASSETS.mkdir(parents=True, exist_ok=True)
    logf = ASSETS / "make_models.log"
    # appended to, not truncated: a resumed or repeated make models keeps the history of how the models came to be
    if not SHARED.is_dir():
        sys.exit(f"error: {SHARED} not found: make models needs the real footage of ../shared/data")
    inputs = [SHARED / "corpus", *sorted((SHARED / "real").glob("talking_*.mp4"))]
    only = [m for m in a.only.split(",") if m]
    unknown = sorted(set(only) - set(MODELS))
    if unknown:
        sys.exit(f"error: --only {','.join(unknown)}: the shipped models are {', '.join(MODELS)}")
    stores: dict[str, Path] = {}
    for align in dict.fromkeys(MODELS[m][1] for m in only):
        data = a.work / ("real64" if align == "similarity" else f"real64{align}")
        log(f"prepare {len(inputs)} inputs -> {data} (align={align}, track={a.track})", logf)
        res = prepare(inputs, data, PrepareOptions(size=64, track=a.track, align=align), workers=2)
        failed = [r for r in res if r.error]
        log(f"prepared {len(res) - len(failed)} clips, {sum(r.n_frames for r in res)} frames; failed: "
            f"{[r.clip_id for r in failed]}", logf)
        splits = set_splits(data, val=a.val.split(","), test=[t for t in a.test.split(",") if t])
        log(f"splits: {len(splits['train'])} train people, val {splits['val']}, test {splits['test']}", logf)
        stores[align] = data
    for name in only:
        method, align, settings = MODELS[name]
        run = a.work / "runs" / name
        t0 = time.perf_counter()
        cfg = {"epochs": a.epochs, "steps_per_epoch": a.steps, **settings, "seed": 0, "precision": a.precision,
               "keep_steps": a.keep_steps}
        if method == "dr":
            cfg["per_person"] = a.per_person
        if a.time_budget and "epochs" not in settings:  # a model with its own epochs keeps them
            cfg["time_budget"] = a.time_budget
        r = train(method, stores[align], run, cfg, Runtime(resume=True, threads=a.threads))
        budget = (f"budget {cfg['time_budget']}" if cfg.get("time_budget")
                  else f"{cfg['epochs']} epochs x {cfg['steps_per_epoch']} steps")
        speed = f"{r.speed.precision}{' + channels_last' if r.speed.channels_last else ''}" if r.speed else "?"
        key = f"val_{methods.get(method).selection.metric}"
        log(f"{name}: {method} {settings}, {budget}: {r.history[-1]['step']} steps ({speed}), best {key} "
            f"{r.best():.4f} (untrained {r.history[0][key]:.4f}), {time.perf_counter() - t0:.0f} s", logf)
        dest = ASSETS / name
        shutil.rmtree(dest, ignore_errors=True)
        (dest / "checkpoints").mkdir(parents=True)
        for f in ("config.json", "metrics.csv"):
            shutil.copy2(run / f, dest / f)
        shutil.copy2(run / "checkpoints" / "best.safetensors", dest / "checkpoints" / "best.safetensors")
        cv = a.cv / f"cv_T{settings['T']}" / "cv.md" if a.cv and "T" in settings else None
        if cv is not None and cv.is_file():
            shutil.copy2(cv, dest / "cv.md")
        log(f"{name}: copied to {dest} ({(dest / 'checkpoints' / 'best.safetensors').stat().st_size / 1e6:.1f} MB)",
            logf)
        # the card of the weights just copied (the old one went with the old weights): data, steps, machine, command;
        # its learning curve and reading come from `facedyn eval curve` and `scripts/model_card.py --curve --note`
        subprocess.run([sys.executable, str(ROOT / "scripts" / "model_card.py"), str(dest)], check=True)
        log(f"{name}: wrote {dest / 'MODEL_CARD.md'} (add its curve: facedyn eval curve, then scripts/model_card.py "
            f"{dest} --curve DIR --note @FILE)", logf)

if __name__ == "__main__":
    main()
