"""Throughput of every kind of ``facedyn reproduce`` stage on this machine: the basis of the dry run's estimate.

Measures, on synthetic faces at 64 px with each method's **paper** network widths (``--preset paper`` of every
config, batch 4; and, as ``train:<method>@cpu``, with the ``cpu`` preset's widths): training images/s of dr,
unet_mse, unet_p, pix2pix, vgg_features, au (HG-HMR), affect (VGG-16), tcae, fabnet; forward frames/s of represent
(the DR) and of a task model (eval); windows/s of frame
ranking (RankSVM, Seq DI, a DR); frames/s of probes; source frames/s of prepare (detector + 68 landmarks +
crop). Writes ``src/facedyn/reproduce/throughput.json`` (``--out`` elsewhere) and prints it.

    .venv/bin/python benchmarks/bench_reproduce.py [--steps 3] [--device cpu] [--size 64] [--out FILE]
        [--presets paper,cpu] [--update]     --update: time only the training steps and merge them into --out

On a GPU, ``benchmarks/gpu_check.py --recipes FILE`` runs the same at 224 px on CUDA; point
``FACEDYN_THROUGHPUT`` at the file and ``facedyn reproduce --dry-run`` estimates from it instead. The load
average of the machine while measuring is recorded: figures taken on a busy machine are slower than its own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from facedyn.data.prepare import PrepareOptions, prepare
from facedyn.data.synthetic import synth
from facedyn.train import train
from facedyn.train.loop import Runtime
from facedyn.train.runner import configure

METHODS = ("dr", "unet_mse", "unet_p", "pix2pix", "vgg_features", "au", "affect", "tcae", "fabnet")
BATCH = 4


def machine(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    try:
        model = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                     if ln.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {torch.get_num_threads()} torch threads"


def train_rate(method: str, data: Path, runs: Path, steps: int, device: str, extra: dict[str, Any],
               batch: int = BATCH, preset: str = "paper") -> float:
    """Training images/s of ``method`` at ``preset`` (one epoch of ``steps`` steps, validation excluded)."""
    cfg = configure(method, preset, overrides={"epochs": 1, "steps_per_epoch": steps, "batch_size": batch,
                                                 "max_val_batches": 1, "precision": "fp32", **extra})
    run = runs / (method if preset == "paper" else f"{method}@{preset}")
    hist = train(method, data, run, cfg, Runtime(device=device)).history
    return steps * batch / float(hist[-1]["time_s"])


def measure(device: str = "cpu", size: int = 64, steps: int = 3, batch: int = BATCH,
            presets: tuple[str, ...] = ("paper", "cpu"), only_train: bool = False) -> dict[str, Any]:
    """The throughput table of every stage kind (see the module docstring) on ``device`` at ``size`` px.

    Training rates at the ``paper`` preset's network widths are ``train:<method>``, at another preset's
    ``train:<method>@<preset>``; ``only_train`` skips the other stage kinds.
    """
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-repro-"))
    rates: dict[str, float] = {}
    try:
        synth(tmp / "v", subjects=5, seconds=3, seed=0, size=max(160, size + 32))
        for p in (tmp / "v").rglob("*.landmarks.npy"):
            p.unlink()  # the detector, as on real footage
        t = time.perf_counter()
        res = prepare([tmp / "v"], tmp / "d", PrepareOptions(size=size))
        rates["prepare"] = sum(r.n_frames for r in res) / (time.perf_counter() - t)
        runs = tmp / "runs"
        for preset in presets:
            tag = "" if preset == "paper" else f"@{preset}"
            for m in METHODS:
                if m == "unet_p":
                    continue  # after vgg_features
                rates[f"train:{m}{tag}"] = train_rate(m, tmp / "d", runs, steps, device, {}, batch, preset)
                if m == "vgg_features":
                    rates[f"train:unet_p{tag}"] = train_rate("unet_p", tmp / "d", runs, steps, device,
                                                             {"features": str(runs / f"vgg_features{tag}")}, batch,
                                                             preset)
        if only_train:
            return {"rates": rates, "load": load}
        from facedyn.dr.representations import represent
        from facedyn.eval.ranking import evaluate_ranking
        from facedyn.tasks.evaluation import predict_run
        from facedyn.tasks.probes import run_probes

        n = sum(r.n_frames for r in res)
        t = time.perf_counter()
        represent(tmp / "d", [runs / "dr"], device=device)
        rates["infer:dr"] = n / (time.perf_counter() - t)
        t = time.perf_counter()
        df, _ = predict_run(runs / "au", tmp / "d", split="train", device=device)
        rates["infer:task"] = len(df) / (time.perf_counter() - t)
        windows = 40
        t = time.perf_counter()
        evaluate_ranking(tmp / "d", 5, 2, methods=("centred", "seq-di", "ranksvm"), runs=[runs / "dr"], split=None,
                         max_windows=windows, device=device)
        rates["rank"] = windows / (time.perf_counter() - t)
        t = time.perf_counter()
        pr = run_probes(runs / "fabnet", tmp / "d", "pose", max_frames_per_subject=30, device=device)
        rates["probe"] = int(pr.attrs["n_frames"]) / (time.perf_counter() - t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"measured": dt.date.today().isoformat(), "machine": machine(device), "device": device, "size": size,
            "basis": f"fp32, batch {batch}, each method's paper network widths, synthetic faces, load average "
                     f"{load:.1f} when measured",
            "units": "training images/s (train:*), frames/s (prepare, infer:*, probe), windows/s (rank)",
            "rates": {k: round(v, 3) for k, v in rates.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--presets", default="paper,cpu", help="network presets whose training steps to time")
    ap.add_argument("--update", action="store_true", help="only time training at --presets and merge the rates "
                    "into the existing --out file")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "src" / "facedyn" / "reproduce"
                    / "throughput.json")
    a = ap.parse_args()
    presets = tuple(p for p in a.presets.split(",") if p)
    if a.update:
        table = json.loads(a.out.read_text())
        got = measure(a.device, int(table["size"]), a.steps, presets=presets, only_train=True)
        table["rates"].update({k: round(v, 3) for k, v in got["rates"].items() if k.startswith("train:")})
        table["basis"] += f"; {', '.join(presets)} training rates added at load average {got['load']:.1f}"
    else:
        table = measure(a.device, a.size, a.steps, presets=presets)
    a.out.write_text(json.dumps(table, indent=1) + "\n")
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
