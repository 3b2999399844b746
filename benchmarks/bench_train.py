"""Training throughput of the shared loop vs the bare UNet forward+backward (same run, same size).

The ratio (loop windows/s ÷ bare images/s; one UNet pass per window) is the loop's overhead: data loading,
the Rank Loss on 2T+1 frames, accuracy bookkeeping, progress, and checkpoints.

    .venv/bin/python benchmarks/bench_train.py [--size 64] [--steps 20] [--batches 8,16,64]
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


def bare_rate(size: int, batch: int, steps: int, cfg: DRConfig) -> float:
    """Images/s of the bare UNet's forward+backward+Adam on a fixed random batch."""
    net = build_drnet(cfg, size, residual=True)
    opt = torch.optim.Adam(net.parameters(), 1e-3, betas=(0.5, 0.9))
    x = torch.rand(batch, 3, size, size)
    for _ in range(3):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    t = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batches", default="8,16,64", help="batch sizes, comma-separated")
    ap.add_argument("--T", type=int, default=5)
    ap.add_argument("--S", type=int, default=2)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-"))
    synth(tmp / "v", subjects=5, seconds=10, seed=0)
    prepare([tmp / "v"], tmp / "d", PrepareOptions(size=a.size))
    print(f"{a.size} px, T={a.T} ({2 * a.T + 1} frames per window), {a.steps} steps per measurement")
    print("| batch | bare UNet fwd+bwd+Adam img/s | loop windows/s (Rank Loss DR) | loop / bare |")
    print("|---:|---:|---:|---:|")
    for batch in (int(b) for b in a.batches.split(",")):
        cfg = DRConfig(T=a.T, S=a.S, epochs=1, steps_per_epoch=a.steps, batch_size=batch, max_val_batches=1)
        bare = bare_rate(a.size, batch, a.steps, cfg)
        hist = train("dr", tmp / "d", tmp / f"run{batch}", cfg).history
        # one UNet pass per window (its centre frame); the other 2T frames are loaded, augmented and enter the
        # Rank Loss: windows/s vs the bare network's images/s is the loop's whole overhead
        windows = a.steps * batch / float(hist[-1]["time_s"])
        print(f"| {batch} | {bare:.1f} | {windows:.1f} | {windows / bare:.2f}x |")


if __name__ == "__main__":
    main()
