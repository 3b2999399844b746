"""Data pipeline throughput, measured in one run, as ratios against the training step it feeds.

Prints frames/s for decode (PyAV), landmarks (dlib HOG + 68-point predictor), align+mask, and
windows/s of the WindowDataset through a DataLoader, next to the windows/s of a 4-level UNet
forward+backward at the CPU default size (the loader must be >= 5x faster than that).

    .venv/bin/python benchmarks/bench_data.py [--video PATH] [--size 64] [--frames 150]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from facedyn.data import video as video_io
from facedyn.data.faces import FaceLandmarker, align_face
from facedyn.data.prepare import PrepareOptions, prepare
from facedyn.data.synthetic import synth
from facedyn.data.windows import WindowDataset
from facedyn.nn.unet import UNet


def _real_video() -> Path | None:
    p = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "talking_d10.mp4"
    return p if p.exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=None, help="real face video (default: shared talking clip or synth)")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--T", type=int, default=5)
    ap.add_argument("--S", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-"))
    vid = a.video or _real_video()
    if vid is None:
        synth(tmp / "v", subjects=1, seconds=a.frames / 25 + 1, seed=0)
        vid = next((tmp / "v").rglob("*.mp4"))

    rows: list[tuple[str, float, str]] = []
    t = time.perf_counter()
    frames = []
    for i, (f, _) in enumerate(video_io.iter_frames(vid)):
        frames.append(f)
        if i + 1 >= a.frames:
            break
    dt = time.perf_counter() - t
    rows.append(("decode (PyAV)", len(frames) / dt, f"frames/s, {frames[0].shape[1]}x{frames[0].shape[0]}"))

    lmk = FaceLandmarker()
    lmk(frames[0])  # load models
    t = time.perf_counter()
    lms = [lmk(f) for f in frames]
    dt = time.perf_counter() - t
    found = sum(m is not None for m in lms)
    rows.append(("landmarks (dlib HOG + 68)", len(frames) / dt, f"frames/s, face on {found}/{len(frames)}"))

    pairs = [(f, m) for f, m in zip(frames, lms, strict=True) if m is not None]
    t = time.perf_counter()
    for f, m in pairs:
        align_face(f, m, size=a.size, mask=True)
    dt = time.perf_counter() - t
    rows.append(("align + hull mask", len(pairs) / max(dt, 1e-9), f"frames/s, to {a.size} px"))

    vids = tmp / "s"
    synth(vids, subjects=3, seconds=12, seed=1)
    data = tmp / "d"
    prepare([vids], data, PrepareOptions(size=a.size))
    ds = WindowDataset(data, a.T, a.S, split=None)
    loader = DataLoader(ds, batch_size=a.batch, shuffle=True, num_workers=0, drop_last=True)
    n = 0
    t = time.perf_counter()
    for b in loader:
        n += len(b["window"])
        if n >= 800:
            break
    loader_ws = n / (time.perf_counter() - t)
    rows.append((f"windows (T={a.T}, S={a.S}) via DataLoader", loader_ws, "windows/s, 0 workers"))

    net = UNet(depth=4, width=16)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.rand(a.batch, 3, a.size, a.size)
    for _ in range(2):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    reps = 10
    t = time.perf_counter()
    for _ in range(reps):
        opt.zero_grad()
        net(x).square().mean().backward()
        opt.step()
    unet_ws = reps * a.batch / (time.perf_counter() - t)
    rows.append((f"UNet depth 4 width 16 fwd+bwd @{a.size}px", unet_ws, "windows/s (one centre image each)"))

    print(f"{'stage':44s} {'rate':>10s}  unit")
    for name, rate, unit in rows:
        print(f"{name:44s} {rate:10.1f}  {unit}")
    print(f"\nloader / UNet training step = {loader_ws / unet_ws:.1f}x  (needs >= 5x)")


if __name__ == "__main__":
    main()
