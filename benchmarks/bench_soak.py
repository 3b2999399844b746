"""Soak: ``facedyn`` analysis of a long video (20 minutes at 25 fps by default), memory and speed minute by minute.

The video is a real one-face clip (``talking_d12.mp4``, 512 px, 25 fps, 7.3 s) looped into one long file written
once to a temporary folder (its packets copied loop after loop with shifted timestamps, no re-encoding; a
source at another frame rate than ``--fps`` is re-encoded at ``--fps``), so the run decodes a real file as users
do. Without the real footage, a synthetic face clip (:func:`facedyn.data.synthetic.synth`) is looped instead.

The analysis is :func:`facedyn.analysis.iter_faces`, the stream ``facedyn.analyze`` is built on (``analyze``
itself gathers the whole video into one DataFrame), with the default model (the shipped dr-t5) and
``track="fit"``; each face's row (``arrays=False``, as ``analyze`` makes it) is written to a CSV as it comes, so
nothing accumulates here. Every "minute" (``--fps`` x 60 frames) it records the wall time, the resident memory
(VmRSS) and the private memory of the child process that follows the faces (``pipeline="processes"``, the default
on Linux), the frames/s of that minute and its CPU time per frame (this process and the child); the verdict
compares, within this run, the last minute with the second (the first holds the start-up): memory growth (this
process and the child) < 50 MB, and speed >= 90 % of the second minute's, speed counted in frames per CPU second
(wall frames/s is printed too, but on a shared machine it also measures the neighbours' load: the load average is
in the table).

    .venv/bin/python benchmarks/bench_soak.py [--minutes 20] [--fps 25] [--video PATH] [--threads 1]
        [--frames-per-minute N]   # N frames count as a "minute" (default fps x 60; for quick checks)
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch
from proc_stats import children, cpu_seconds, private_bytes

from facedyn.analysis import BASE_COLUMNS, iter_faces, load_models
from facedyn.data import video as video_io

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
CLIP = "talking_d12.mp4"
#: Verdict thresholds: RSS growth from the second minute to the last, and last / second minute frames/s.
MAX_GROWTH_MB = 50.0
MIN_SPEED_RATIO = 0.90


def rss_mb() -> float:
    """Resident memory of this process in MB (VmRSS; psutil where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import psutil  # not a dependency: only where /proc is absent

    return psutil.Process().memory_info().rss / 2**20


def _default_source(tmp: Path, fps: float) -> tuple[Path, str]:
    real = Path(os.environ.get("FACEDYN_REAL_DATA") or REAL) / CLIP
    if real.is_file():
        return real, f"real clip {CLIP}"
    from facedyn.data.synthetic import synth

    mp4 = synth(tmp / "synth", subjects=1, seconds=4, fps=fps, seed=0)[0]
    return mp4, "synthetic clip (facedyn.data.synthetic, 4 s; real footage not found)"


def _loop_copy(src: Path, out: Path, n: int) -> int:
    """Write ``src``'s video packets loop after loop (timestamps shifted by the clip's span) until at least ``n``
    frames; returns the loops written."""
    with av.open(str(src)) as c:
        s = c.streams.video[0]
        packets = [p for p in c.demux(s) if p.pts is not None]
        tb = s.time_base
        per = len(packets)
        dur = packets[0].duration or round(1 / (s.average_rate * tb))
        span = max(p.pts for p in packets) - min(p.pts for p in packets) + dur
        loops = math.ceil(n / per)
        with av.open(str(out), "w") as o:
            t = o.add_stream_from_template(s)
            for k in range(loops):
                for p in packets:
                    q = av.Packet(bytes(p))
                    q.pts, q.dts, q.duration = p.pts + k * span, p.dts + k * span, p.duration
                    q.is_keyframe = p.is_keyframe
                    q.time_base = tb
                    q.stream = t
                    o.mux(q)
    return loops


def _loop_encode(src: Path, out: Path, n: int, fps: float) -> int:
    """Decode ``src`` loop after loop and encode ``n`` frames at ``fps`` (sources at another frame rate)."""
    loops = 0

    def frames() -> Iterator[np.ndarray]:
        nonlocal loops
        while True:
            loops += 1
            for f, _ in video_io.iter_frames(src):
                yield f

    video_io.write_video(out, islice(frames(), n), fps=fps)
    return loops


def _verdict(table: list[dict[str, float]]) -> str:
    if len(table) < 2:
        return "verdict: n/a (needs at least 2 minutes: the first holds the start-up)"
    second, last = table[1], table[-1]
    growth = last["rss"] + last["child"] - second["rss"] - second["child"]
    # speed as frames per CPU second of this process: wall frames/s also measures whatever else the machine runs
    speed = second["cpu_ms"] / last["cpu_ms"]
    wall = last["fps"] / second["fps"]
    ok_mem, ok_speed = growth < MAX_GROWTH_MB, speed >= MIN_SPEED_RATIO
    return (f"verdict: memory growth after warm-up (RSS and child minute {last['minute']:.0f} - minute 2) "
            f"{growth:+.1f} MB "
            f"(< {MAX_GROWTH_MB:.0f} MB: {'PASS' if ok_mem else 'FAIL'}); speed steadiness (frames per CPU second, "
            f"minute {last['minute']:.0f} / minute 2) {speed:.2f} (>= {MIN_SPEED_RATIO:.2f}: "
            f"{'PASS' if ok_speed else 'FAIL'}; wall frames/s {wall:.2f}, load-dependent); "
            f"{'PASS' if ok_mem and ok_speed else 'FAIL'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20, help="minutes of video to analyse")
    ap.add_argument("--fps", type=float, default=25, help="frame rate of the long video")
    ap.add_argument("--video", type=Path, default=None, help="clip to loop (default: real talking_d12 or synthetic)")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads of the main thread")
    ap.add_argument("--frames-per-minute", type=int, default=None,
                    help="frames that count as one minute (default fps x 60; smaller for a quick check)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cv2.setNumThreads(a.threads)
    per_minute = a.frames_per_minute or round(a.fps * 60)
    n = max(1, round(a.minutes * per_minute))
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-soak-"))
    try:
        _run(a, tmp, per_minute, n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(a: argparse.Namespace, tmp: Path, per_minute: int, n: int) -> None:
    src, what = (a.video, str(a.video.name)) if a.video else _default_source(tmp, a.fps)
    info = video_io.probe(src)
    long = tmp / "soak.mp4"
    t = time.perf_counter()
    extra = 256  # frames past the last one analysed: the pipeline's stages are still running at the last reading
    if abs(info.fps - a.fps) < 0.01:
        loops = _loop_copy(src, long, n + extra)
        how = "packets copied"
    else:
        loops = _loop_encode(src, long, n + extra, a.fps)
        how = f"re-encoded from {info.fps:.2f} fps"
    made = time.perf_counter() - t
    size_mb = long.stat().st_size / 2**20
    models = load_models((), "cpu")
    malloc = " ".join(f"{k}={v}" for k, v in sorted(os.environ.items()) if k.startswith("MALLOC_")) or "glibc defaults"
    print(f"source: {what}, {info.width}x{info.height}, {info.fps:.2f} fps, {info.n_frames} frames; looped {loops}x "
          f"into one {size_mb:.0f} MB mp4 ({how}, {made:.1f} s); analysed: {n} frames = {n / per_minute:.2f} "
          f"\"minutes\" of {per_minute} frames")
    print(f"iter_faces (the stream under facedyn.analyze), models {', '.join(models)}, track fit, device cpu, rows "
          f"written to CSV as they come; torch {torch.__version__}, {a.threads} main + 1 network thread(s), "
          f"{os.cpu_count()} CPUs; load average at start {os.getloadavg()[0]:.1f}; RSS after loading models "
          f"{rss_mb():.0f} MB; malloc: {malloc}")
    print("")
    print("| minute | frames done | wall s | RSS MB | child MB | frames/s this minute | CPU ms/frame | load avg |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    table: list[dict[str, float]] = []
    frames = faces = 0
    pending: list[dict[str, Any]] = []
    writer: csv.DictWriter[str] | None = None
    with open(tmp / "faces.csv", "w", newline="") as f:
        t0 = t_prev = time.perf_counter()
        c_prev = time.process_time()
        child_prev = 0.0
        stream = iter_faces(long, models, "cpu", track="fit")
        try:
            for found in stream:
                for r in found:
                    row = {k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.row(arrays=False).items()}
                    if writer is None and r.success:  # columns fixed by the first face, as facedyn infer does
                        writer = csv.DictWriter(f, fieldnames=[*BASE_COLUMNS, *(c for c in row if c not in
                                                                                 BASE_COLUMNS)], restval="")
                        writer.writeheader()
                        writer.writerows(pending)
                        pending = []
                    if writer is None:
                        pending.append(row)
                    else:
                        writer.writerow(row)
                    faces += int(r.success)
                frames += 1
                if frames % per_minute == 0:
                    now, cpu = time.perf_counter(), time.process_time()
                    kids = children()  # the processes pipeline's child: its private memory and its CPU time
                    child_cpu = sum(cpu_seconds(p) for p in kids)
                    m = {"minute": frames / per_minute, "frames": frames, "wall": now - t0, "rss": rss_mb(),
                         "child": sum(private_bytes(p) for p in kids) / 2**20, "fps": per_minute / (now - t_prev),
                         "cpu_ms": 1000 * (cpu - c_prev + child_cpu - child_prev) / per_minute}
                    table.append(m)
                    print(f"| {m['minute']:.0f} | {frames} | {m['wall']:.1f} | {m['rss']:.1f} | {m['child']:.1f} | "
                          f"{m['fps']:.1f} | {m['cpu_ms']:.1f} | {os.getloadavg()[0]:.1f} |", flush=True)
                    t_prev, c_prev, child_prev = now, cpu, child_cpu
                if frames >= n:
                    break
        finally:
            stream.close()
        wall = time.perf_counter() - t0
    print("")
    print(f"{frames} frames in {wall:.1f} s wall ({frames / wall:.1f} frames/s overall); faces found on "
          f"{faces}/{frames} frames; CSV {(tmp / 'faces.csv').stat().st_size / 2**20:.0f} MB; load average at end "
          f"{os.getloadavg()[0]:.1f} (2 cores: above ~2 other work shares them)")
    if table:
        marks = sorted({0, min(9, len(table) - 1), len(table) - 1})
        print("RSS at minutes " + ", ".join(f"{table[i]['minute']:.0f}" for i in marks) + ": "
              + ", ".join(f"{table[i]['rss']:.1f}" for i in marks) + " MB; the child's private memory "
              + ", ".join(f"{table[i]['child']:.1f}" for i in marks) + " MB")
    print(_verdict(table))


if __name__ == "__main__":
    main()
