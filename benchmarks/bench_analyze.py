"""``facedyn.analyze`` end to end, fit-tracking vs detecting on every frame, one face and four faces.

End to end = decode, find faces (``track="fit"``: HOG detector every 10 frames and where a fit degrades, the
68-point fit in between; ``track="detect"``: the detector on every frame), align, head pose, AU proxies, the
default model (the shipped dr-t5, 64 px) and writing the table as CSV (``arrays=False``: the DRs are computed
but, as in ``faces.csv``, not written). Clips: the first ``--frames`` frames of a one-face 512 px real clip,
and a 512 px mosaic of four real clips (one face each, 256 px tiles) made here. Each setting runs once per
clip after a warm-up; the ratio fit/detect is measured in the same run.

    .venv/bin/python benchmarks/bench_analyze.py [--frames 300] [--mosaic-frames 150]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import torch

import facedyn
from facedyn.data import video as video_io

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
MOSAIC = ("talking_d10.mp4", "talking_d12.mp4", "talking_d14.mp4", "talking_d19.mp4")


def _clip(src: Path, out: Path, n: int) -> Path:
    video_io.write_video(out, (f for f, _ in islice(video_io.iter_frames(src), n)), fps=video_io.probe(src).fps)
    return out


def _mosaic(out: Path, n: int, tile: int = 256) -> Path:
    """Four real clips side by side, 2 x 2 tiles of ``tile`` px: a ``2 tile`` px clip with four faces."""
    streams = [video_io.iter_frames(REAL / name) for name in MOSAIC]

    def frames() -> Iterator[np.ndarray]:
        for parts in islice(zip(*streams, strict=False), n):
            t = [cv2.resize(f, (tile, tile), interpolation=cv2.INTER_AREA) for f, _ in parts]
            yield np.vstack([np.hstack(t[:2]), np.hstack(t[2:])])

    video_io.write_video(out, frames(), fps=25)
    return out


def _end_to_end(clip: Path, track: str, csv: Path) -> tuple[float, float]:
    """(frames/s, mean faces found per frame) of analyze + CSV writing."""
    t = time.perf_counter()
    df = facedyn.analyze(clip, runs=["dr-t5"], device="cpu", arrays=False, track=track)
    df.to_csv(csv, index=False, float_format="%.4f")
    took = time.perf_counter() - t
    frames = df["frame"].nunique()
    return frames / took, float(df["success"].sum()) / frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300, help="frames of the one-face clip")
    ap.add_argument("--mosaic-frames", type=int, default=150, help="frames of the four-face mosaic")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-analyze-"))
    clips = {"one face, talking_d10 512x512": _clip(REAL / "talking_d10.mp4", tmp / "one.mp4", a.frames),
             "four faces, 2x2 mosaic 512x512": _mosaic(tmp / "four.mp4", a.mosaic_frames)}
    facedyn.analyze(clips["one face, talking_d10 512x512"], device="cpu", arrays=False, every=50)  # load models
    load0 = os.getloadavg()[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; model dr-t5 "
          f"(64 px); load average at start {load0:.1f}")
    print("")
    print("| clip | frames | faces/frame fit, detect | fit-track frames/s | detect-every-frame frames/s | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, clip in clips.items():
        fit, per_fit = _end_to_end(clip, "fit", tmp / "fit.csv")
        det, per_det = _end_to_end(clip, "detect", tmp / "detect.csv")
        n = video_io.probe(clip).n_frames
        print(f"| {name} | {n} | {per_fit:.2f}, {per_det:.2f} | {fit:.1f} | {det:.1f} | {fit / det:.2f}x |")
    print("")
    print(f"load average at end {os.getloadavg()[0]:.1f} (2 cores: above ~2 other work shares them)")


if __name__ == "__main__":
    main()
