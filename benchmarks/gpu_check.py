"""GPU path check: the DR paper preset (224 px, UNet width 64) for a few hundred steps on CUDA.

Prints, for fp32 and bf16 autocast, with and without channels_last: the bare network's forward+backward
images/s, and the shared training loop's images/s on synthetic faces (the Rank Loss on 2T+1 frames), with the
peak GPU memory of each. Ratios are against fp32 NCHW measured in the same run.

Then (unless ``--no-recipes``) it times a few steps of every kind of ``facedyn reproduce`` stage at the paper
preset on CUDA (``bench_reproduce.measure``: each method's training step at its paper widths, represent,
task inference, frame ranking, probes, prepare), writes them to ``--recipes FILE`` and prints every recipe's
estimated GPU hours from them (training stages; data-sized stages need ``--data-root``). Use the file with
``FACEDYN_THROUGHPUT=FILE facedyn reproduce RECIPE --dry-run ...``.

    .venv/bin/python benchmarks/gpu_check.py [--steps 300] [--batch 16] [--size 224]
        [--recipes benchmarks/gpu_throughput.json] [--data-root DIR] [--no-recipes]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from facedyn.data.prepare import PrepareOptions, prepare
from facedyn.data.synthetic import synth
from facedyn.dr.method import DRConfig
from facedyn.dr.model import build_drnet
from facedyn.train import train
from facedyn.train.loop import Runtime


def bare(size: int, batch: int, steps: int, bf16: bool, nhwc: bool) -> tuple[float, float]:
    """(images/s, peak GiB) of the paper-width UNet's forward+backward+Adam on random images."""
    net = build_drnet(DRConfig(**DRConfig.PRESETS["paper"]), size, residual=True).cuda()
    x = torch.rand(batch, 3, size, size, device="cuda")
    if nhwc:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    torch.cuda.reset_peak_memory_stats()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = net(x).float().square().mean()
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - t), torch.cuda.max_memory_allocated() / 2**30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--recipes", type=Path, default=Path(__file__).with_name("gpu_throughput.json"))
    ap.add_argument("--data-root", type=Path, default=None, help="datasets, to size the data-bound stages")
    ap.add_argument("--no-recipes", action="store_true")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device here; run this on a GPU machine")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, {a.size} px, batch {a.batch}, "
          f"{a.steps} steps, UNet width {DRConfig.PRESETS['paper']['width']}")
    rows = []
    for bf16 in (False, True):
        for nhwc in (False, True):
            ips, mem = bare(a.size, a.batch, a.steps, bf16, nhwc)
            rows.append(("bare fwd+bwd", "bf16" if bf16 else "fp32", nhwc, ips, mem))
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-gpu-"))
    synth(tmp / "v", subjects=6, seconds=8, seed=0, size=256)
    prepare([tmp / "v"], tmp / "d", PrepareOptions(size=a.size), workers=2)
    for bf16 in (False, True):
        for nhwc in (False, True):
            name = f"{'bf16' if bf16 else 'fp32'}_{'nhwc' if nhwc else 'nchw'}"
            torch.cuda.reset_peak_memory_stats()
            cfg = {**DRConfig.PRESETS["paper"], "epochs": 1, "steps_per_epoch": a.steps, "batch_size": a.batch,
                   "max_val_batches": 2, "precision": "bf16" if bf16 else "fp32"}
            hist = train("dr", tmp / "d", tmp / name, cfg, Runtime(device="cuda", channels_last=nhwc)).history
            ips = a.steps * a.batch / float(hist[-1]["time_s"])
            rows.append(("DR loop (Rank Loss)", "bf16" if bf16 else "fp32", nhwc, ips,
                         torch.cuda.max_memory_allocated() / 2**30))
    print("| what | precision | channels_last | img/s | vs fp32 NCHW | peak GiB |")
    print("|---|---|---|---|---|---|")
    for what, prec, nhwc, ips, mem in rows:
        base = next(r[3] for r in rows if r[0] == what and r[1] == "fp32" and not r[2])
        print(f"| {what} | {prec} | {nhwc} | {ips:.1f} | {ips / base:.2f}x | {mem:.2f} |")
    if not a.no_recipes:
        recipe_hours(a.recipes, a.size, a.data_root)


def recipe_hours(path: Path, size: int, data_root: Path | None) -> None:
    """Time every stage kind of ``facedyn reproduce`` on CUDA, write the table, print each recipe's GPU hours."""
    import json
    import os
    import re

    from bench_reproduce import measure

    from facedyn.reproduce import RECIPES, Settings, dry_run

    table = measure("cuda", size=size, steps=20, batch=16)
    path.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {path}:", json.dumps(table["rates"]))
    os.environ["FACEDYN_THROUGHPUT"] = str(path)
    root = data_root or Path(tempfile.mkdtemp(prefix="facedyn-nodata-"))
    for name in RECIPES:
        md = dry_run(name, root, Path(tempfile.mkdtemp(prefix="facedyn-plan-")), Settings(preset="paper"))
        total = re.search(r"Total still to do: (.*?)\*\*", md)
        print(f"{name}: {total.group(1) if total else '?'}")


if __name__ == "__main__":
    main()
