"""Inference throughput, torch vs onnxruntime, at the CPU size (64 px, UNet width 16) and the paper's (224, 64).

Measured in one run on the same faces: (a) the DR network alone on batches of aligned faces, faces/s;
(b) ``facedyn.analyze`` end to end on a real video (decode, detect, 68 landmarks, align, network), faces/s.
Networks are untrained (speed does not depend on the weights).

    .venv/bin/python benchmarks/bench_infer.py [--video PATH] [--frames 60] [--batch 32]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch

import facedyn
from facedyn import runs
from facedyn.config import from_dict, to_dict
from facedyn.data import video as video_io
from facedyn.dr.method import DRMethod
from facedyn.export import OnnxModel, cached_onnx
from facedyn.method import DataSpec


def _untrained_dr(out: Path, size: int, width: int) -> Path:
    cfg = from_dict(DRMethod.Config, {"width": width})
    torch.manual_seed(0)
    m = DRMethod(cfg, DataSpec(size=size))
    runs.write_record(out, runs.RunRecord(method="dr", module=DRMethod.__module__, config=to_dict(cfg),
                                          data=DataSpec(size=size).to_dict()))
    runs.ensure_run_dir(out)
    runs.save_weights(out / runs.CHECKPOINTS / "best.safetensors", {"net": m.net})
    return out


def _rate(fn: object, n: int, repeats: int = 3) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
                    / "talking_d10.mp4")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-"))
    clip = tmp / "clip.mp4"
    info = video_io.probe(a.video)
    video_io.write_video(clip, (f for f, _ in islice(video_io.iter_frames(a.video), a.frames)), fps=info.fps)

    print(f"{'setting':34s} {'torch':>10s} {'onnxruntime':>12s} {'ratio':>7s}")
    for size, width in ((64, 16), (224, 64)):
        run = _untrained_dr(tmp / f"dr{size}", size, width)
        model = facedyn.load(run, device="cpu")
        ort = OnnxModel(cached_onnx(run))
        x = torch.rand(a.batch, 3, size, size)
        t_rate = _rate(lambda model=model, x=x: model.encode(x), a.batch)
        o_rate = _rate(lambda ort=ort, x=x: ort.encode(x), a.batch)
        print(f"{f'network only, {size} px, batch {a.batch}':34s} {t_rate:10.1f} {o_rate:12.1f} "
              f"{o_rate / t_rate:6.2f}x  faces/s")
        end = {}
        facedyn.analyze(clip, runs=[run], device="cpu", arrays=False, every=a.frames)  # load the face models
        for engine in ("torch", "onnx"):
            t = time.perf_counter()
            df = facedyn.analyze(clip, runs=[run], device="cpu", arrays=False, engine=engine)
            end[engine] = int(df["success"].sum()) / (time.perf_counter() - t)
        print(f"{f'analyze end to end, {size} px':34s} {end['torch']:10.1f} {end['onnx']:12.1f} "
              f"{end['onnx'] / end['torch']:6.2f}x  faces/s ({a.frames} frames of {a.video.name})")


if __name__ == "__main__":
    main()
