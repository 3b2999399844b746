"""Training speed of every method's network on this machine: fp32 / bf16 autocast x NCHW / NHWC.

For each registered method's network at 64 px (DR UNet, TCAE, FAb-Net with 1 and 3 sources, HG-HMR, the
affect VGG, and the AU CNN regressor), the images/s of the method's *own* training step (its losses forward
and backward for every optimiser group, on a real batch of synthetic faces: what ``--precision auto``
times, :func:`facedyn.precision.time_steps`), as ratios against fp32 NCHW measured in the same run, and
what ``auto`` picks. Then the loop's overhead: DR training windows/s of the whole loop (data, Rank Loss,
bookkeeping, checkpoints) vs the bare step, at the precision ``auto`` picks.

    .venv/bin/python benchmarks/bench_train.py [--size 64] [--batch 32] [--seconds 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from facedyn import methods
from facedyn.data.prepare import PrepareOptions, prepare
from facedyn.data.store import ClipDataset
from facedyn.data.synthetic import synth
from facedyn.method import DataSpec
from facedyn.precision import cpu_info, measure, native_bf16, pick, time_steps
from facedyn.train import train
from facedyn.train.loop import Runtime, first_batch

#: (label, method, settings) of the networks measured.
NETWORKS: list[tuple[str, str, dict[str, Any]]] = [
    ("DR UNet (T=5, width 16)", "dr", {"T": 5, "S": 2, "theta": 1.0}),
    ("DR UNet (T=5, width 32)", "dr", {"T": 5, "S": 2, "theta": 1.0, "width": 32}),
    ("TCAE", "tcae", {}),
    ("FAb-Net, 1 source", "fabnet", {"n_sources": 1}),
    ("FAb-Net, 3 sources", "fabnet", {"n_sources": 3}),
    ("HG-HMR (AU, SI)", "au", {"label_columns": "AU06,AU12"}),
    ("AU CNN regressor (SI)", "au", {"model": "cnn", "label_columns": "AU06,AU12"}),
    ("affect VGG (SI)", "affect", {}),
]
SETTINGS = [("fp32", False), ("bf16", False), ("fp32", True), ("bf16", True)]


def key(precision: str, channels_last: bool) -> str:
    return f"{precision}/{'nhwc' if channels_last else 'nchw'}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=2.0, help="at least this long per measurement")
    ap.add_argument("--loop-steps", type=int, default=30)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-"))
    synth(tmp / "v", subjects=5, seconds=8, seed=0)
    prepare([tmp / "v"], tmp / "d", PrepareOptions(size=a.size))
    store = ClipDataset(tmp / "d")
    spec = DataSpec.from_dict(store.spec())
    cpu = torch.device("cpu")
    info = cpu_info()
    print(f"CPU: {info['model']}; bf16 flags: {', '.join(info['flags']) or 'none'} (native bf16: "
          f"{'yes' if native_bf16() else 'no'}); torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{a.size} px, batch {a.batch}; each method's training step (losses forward + backward, every optimiser "
          f"group): best of 3 interleaved rounds of >= {a.seconds / 3:.2g} s per cell (as --precision auto measures); "
          "ratio vs fp32 NCHW in this run")
    print()
    print("| network | fp32 NCHW img/s | bf16 NCHW | fp32 NHWC | bf16 NHWC | auto picks |")
    print("|---|---:|---:|---:|---:|---|")
    for label, name, over in NETWORKS:
        cls = methods.get(name)
        torch.manual_seed(0)
        m = cls(cls.Config(**over), spec)
        ds = m.dataset(store, "train")
        m.setup(ds, tmp / "setup")
        batch = first_batch(ds, a.batch)
        measured = measure(m, batch, cpu, SETTINGS, use_cache=False, rounds=3, min_seconds=a.seconds / 3)
        base = measured["fp32/nchw"]
        cells = [f"{base:.1f}"] + [f"{measured[key(p, nl)]:.1f} ({measured[key(p, nl)] / base:.2f}x)"
                                   for p, nl in SETTINGS[1:]]
        prec, nhwc, _ = pick(measured, "auto", "auto", cpu)
        print(f"| {label} | {' | '.join(cells)} | {prec}{' + NHWC' if nhwc else ''} |", flush=True)

    print()
    print("Loop overhead (DR, T=5, S=2, batch 16, --precision auto, --channels-last auto): whole-loop training "
          "windows/s vs the bare training step at the same setting")
    print()
    print("| setting | bare step img/s | loop windows/s | loop / bare |")
    print("|---|---:|---:|---:|")
    cfg = {"T": 5, "S": 2, "epochs": 1, "steps_per_epoch": a.loop_steps, "batch_size": 16, "max_val_batches": 1}
    t = time.perf_counter()
    res = train("dr", tmp / "d", tmp / "loop", cfg, Runtime(device="cpu"))
    took = time.perf_counter() - t
    sp = res.speed
    assert sp is not None
    m = methods.get("dr")(res.config, spec)
    bare = time_steps(m, first_batch(m.dataset(store, "train"), 16), cpu, sp.precision, sp.channels_last,
                      min_seconds=a.seconds)
    windows = a.loop_steps * 16 / float(res.history[-1]["time_s"])
    print(f"| {sp.precision}{' + NHWC' if sp.channels_last else ''} | {bare:.1f} | {windows:.1f} | "
          f"{windows / bare:.2f}x |")
    print()
    print(f"(the loop run took {took:.1f} s in all, its choice included: {sp.reason})")


if __name__ == "__main__":
    main()
