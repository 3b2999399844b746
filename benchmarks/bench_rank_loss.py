"""Cost of the Rank Loss (dr-paper.txt Eq. 3), measured in one run.

(a) vectorised ``rank_loss`` vs the literal double-loop transcription ``rank_loss_loops``
    (forward + backward w.r.t. ``d``), for each T: the speed-up ratio;
(b) the loss's share of a training step: ``UNet.cpu()`` forward + backward on a batch with the
    Rank Loss vs with a trivial loss (``d.mean()``);
(c) the RankSVM upper bound (``ranksvm_dr_batch``, batched dual solver): milliseconds per window.

    .venv/bin/python benchmarks/bench_rank_loss.py [--size 64] [--batch 16] [--T 5 9] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from facedyn.dr.rank_loss import rank_loss
from facedyn.dr.ranksvm import ranksvm_dr_batch
from facedyn.nn.unet import UNet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.reference import rank_loss_loops


def best_times(fns: list[Callable[[], object]], repeats: int, warmup: int = 1) -> list[float]:
    """Fastest of ``repeats`` calls of each function (seconds), calls interleaved so that load from
    other processes hits all of them alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times, strict=True):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
    return [min(ts) for ts in times]


def walk_windows(B: int, T: int, size: int, seed: int = 0) -> torch.Tensor:
    """(B, 2T+1, 3, size, size) random-walk frames in about [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(B, 1, 3, size, size, generator=g)
    return (base + (torch.randn(B, 2 * T + 1, 3, size, size, generator=g) * 0.02).cumsum(1)).clamp(0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64, help="image side (px), multiple of 16")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--T", type=int, nargs="+", default=[5, 9], help="window half-lengths for (a)")
    ap.add_argument("--step-T", type=int, default=5, help="T for the training-step comparison (b)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--svm-windows", type=int, default=32, help="windows timed for (c); 0 skips it")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.size}px, batch {a.batch}")

    print("\n(a) Rank Loss forward+backward w.r.t. d: vectorised vs literal loops")
    print(f"{'T':>3} {'pairs':>6} {'vectorised ms':>14} {'loops ms':>10} {'ratio':>8} {'|diff|':>9}")
    for T in a.T:
        win = walk_windows(a.batch, T, a.size)
        d = torch.randn(a.batch, 3, a.size, a.size, requires_grad=True)

        def vec(win: torch.Tensor = win, d: torch.Tensor = d) -> torch.Tensor:
            loss = rank_loss(d, win, theta=1.0, gamma=1e-4)
            loss.backward()
            return loss

        def loops(win: torch.Tensor = win, d: torch.Tensor = d) -> torch.Tensor:
            loss = rank_loss_loops(d, win, theta=1.0, gamma=1e-4)
            loss.backward()
            return loss

        tv = best_times([vec], max(a.repeats, 10))[0]
        tl = best_times([loops], min(a.repeats, 2), warmup=0)[0]
        diff = abs(float(vec().detach()) - float(loops().detach()))
        print(f"{T:>3} {T * (T + 1):>6} {tv * 1e3:>14.2f} {tl * 1e3:>10.1f} {tl / tv:>7.0f}x {diff:>9.2e}")

    print(f"\n(b) UNet.cpu() forward+backward, batch {a.batch}, T={a.step_T}")
    net = UNet.cpu()
    x = torch.rand(a.batch, 3, a.size, a.size)
    win = walk_windows(a.batch, a.step_T, a.size)

    def step_plain() -> None:
        net.zero_grad()
        net(x).mean().backward()

    def step_rank() -> None:
        net.zero_grad()
        rank_loss(net(x), win, theta=1.0, gamma=1e-4).backward()

    def loss_only() -> None:
        d = torch.randn(a.batch, 3, a.size, a.size, requires_grad=True)
        rank_loss(d, win, theta=1.0, gamma=1e-4).backward()

    t_plain, t_rank, t_loss = best_times([step_plain, step_rank, loss_only], a.repeats)
    print(f"{'step':<34} {'ms':>9}")
    print(f"{'fwd+bwd, loss = d.mean()':<34} {t_plain * 1e3:>9.1f}")
    print(f"{'fwd+bwd, Rank Loss':<34} {t_rank * 1e3:>9.1f}")
    print(f"{'Rank Loss alone (fwd+bwd)':<34} {t_loss * 1e3:>9.2f}")
    print(f"Rank Loss share of the step: {100 * t_loss / t_rank:.2f} % (alone / with); "
          f"step ratio with/without {t_rank / t_plain:.3f}")

    if a.svm_windows:
        print(f"\n(c) RankSVM DR (dual, interior point) on {a.svm_windows} windows at {a.size}px")
        print(f"{'T':>3} {'pairs':>6} {'ms/window':>10}")
        for T in a.T:
            wins = walk_windows(a.svm_windows, T, a.size, seed=1)
            t = best_times([lambda wins=wins: ranksvm_dr_batch(wins)], 1, warmup=0)[0]
            print(f"{T:>3} {T * (T + 1):>6} {t / a.svm_windows * 1e3:>10.2f}")


if __name__ == "__main__":
    main()
