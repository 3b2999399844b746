"""Training throughput of the shared loop vs the bare UNet forward+backward (same run, same size).

The ratio (loop images/s ÷ bare images/s) is the loop's overhead: data loading, the Rank Loss on
2T+1 frames, accuracy bookkeeping, progress, and checkpoints.

    .venv/bin/python benchmarks/bench_train.py [--size 64] [--steps 40]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--T", type=int, default=5)
    ap.add_argument("--S", type=int, default=2)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-"))
    synth(tmp / "v", subjects=5, seconds=10, seed=0)
    prepare([tmp / "v"], tmp / "d", PrepareOptions(size=a.size))

    cfg = DRConfig(T=a.T, S=a.S, epochs=1, steps_per_epoch=a.steps, batch_size=a.batch, max_val_batches=1)
    net = build_drnet(cfg, a.size, residual=True)
    opt = torch.optim.Adam(net.parameters(), 1e-3, betas=(0.5, 0.9))
    x = torch.rand(a.batch, 3, a.size, a.size)
    for _ in range(3):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    t = time.perf_counter()
    for _ in range(a.steps):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    bare = a.steps * a.batch / (time.perf_counter() - t)

    t = time.perf_counter()
    hist = train("dr", tmp / "d", tmp / "run", cfg).history
    total = time.perf_counter() - t
    epoch_s = float(hist[-1]["time_s"])
    loop_ips = a.steps * a.batch / epoch_s
    print(f"bare UNet fwd+bwd+Adam      : {bare:8.1f} img/s  ({a.size}px, batch {a.batch})")
    print(f"facedyn loop (Rank Loss DR) : {loop_ips:8.1f} img/s  (T={a.T}: {2 * a.T + 1} frames per sample)")
    print(f"loop / bare                 : {loop_ips / bare:8.2f}x")
    print(f"whole call incl. theta calibration, validation, checkpoints: {total:.1f} s")


if __name__ == "__main__":
    main()
