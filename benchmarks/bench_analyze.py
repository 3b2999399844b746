"""``facedyn.analyze`` end to end: the pipelines of today against the serial path before them, one face and four.

End to end = decode, find faces (``track="fit"``: HOG detector every 10 frames and where a fit degrades, the
68-point fit in between; ``track="detect"``: the detector on every frame), align, head pose, AU proxies, the
default model (the shipped dr-t5, 64 px) and writing the table as CSV (``arrays=False``: the DRs are computed
but, as in ``faces.csv``, not written). Clips: the first ``--frames`` frames of a one-face 512 px real clip
(all 448 by default), and a 512 px mosaic of four real clips (one face each, 256 px tiles) made here.

Settings, measured in the same run, interleaved (one run of each per round, ``--repeats`` rounds for one face
fit-tracked, ``--repeats-rest`` for the other rows), medians reported:

* ``before``: ``pipeline="serial", engine="torch", full_scan_every=None``: the path before (decode, track, crop
  in the caller's thread, the networks in one worker thread with one torch thread, every detection a HOG scan
  of the whole frame): the baseline;
* ``threads``: decoding (with the whole-frame scans found ahead) and tracking each in a thread of their own,
  whole-frame scans every 30 frames and scans around the faces followed between (``full_scan_every=30``, the
  default); ``threads+onnx``: the same with onnxruntime (one thread) for the networks;
* ``processes``: the default (``pipeline="auto"`` on Linux): the face finding and following (scans, landmarks,
  head pose, proxies) in a child process forked for the video, decoding and the networks in threads of this one;
* ``processes+onnx``: the same with ``engine="onnx"``.

Ratios are the median over rounds of each round's ratio to its own ``before`` run. CPU ms/frame is the CPU time of
this process (all threads) and of its child per frame; cores = that CPU time / wall time; peak RSS is the resident
memory's high-water mark during a run above the memory before it (the kernel's, reset before the run), plus the
child's private memory (its pages not shared with this process) at its peak (sampled every 0.5 s: reading another
process's page map holds its memory lock). The load average (1 min, sampled at the start of each run) counts this
benchmark's own runnable threads too (1-4). Then, per thread (and the child), the CPU time per frame of one face
fit-tracked, in one more run of each (where the time goes, before vs processes+onnx; Linux ``/proc``; sampling
every 20 ms slows the pipelines a little).

    .venv/bin/python benchmarks/bench_analyze.py [--frames 448] [--mosaic-frames 150] [--repeats 5]
        [--repeats-rest 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from proc_stats import children, private_bytes, stat_cpu

from facedyn.analysis import analyze
from facedyn.data import video as video_io

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
MOSAIC = ("talking_d10.mp4", "talking_d12.mp4", "talking_d14.mp4", "talking_d19.mp4")
#: (name, analyze's settings); the first is the baseline
SETTINGS: list[tuple[str, dict[str, Any]]] = [
    ("before", {"pipeline": "serial", "engine": "torch", "full_scan_every": None}),
    ("threads", {"pipeline": "threads", "engine": "torch"}),
    ("threads+onnx", {"pipeline": "threads", "engine": "onnx"}),
    ("processes", {"pipeline": "processes", "engine": "torch"}),
    ("processes+onnx", {"pipeline": "processes", "engine": "onnx"}),
]
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


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


def _reset_peak() -> bool:
    """Reset this process's resident-memory high-water mark (``VmHWM``; Linux 4.0+); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss() -> int:
    """This process's resident-memory high-water mark (``VmHWM``) in bytes, 0 where unknown."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))
    except (OSError, StopIteration, ValueError):
        return 0


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


def _child_cpu() -> float:
    """CPU seconds of this process's children that have ended and been waited for."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds of each thread of this process, by native id, with its name (Python's, else the OS's)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[int, tuple[str, float]] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return {}
    for tid in tids:
        try:
            cpu = stat_cpu(f"/proc/self/task/{tid}/stat")
            with open(f"/proc/self/task/{tid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        out[int(tid)] = (names.get(int(tid), comm), cpu)
    return out


class _Sampler:
    """While running: the peak RSS, the child's private memory at its most and, with ``threads``, the last CPU time
    seen of every thread (threads end before the run). Without ``threads`` (the timed runs) the sampling thread
    wakes every 0.5 s only, and the peak RSS is the kernel's high-water mark, reset before the run (a thread
    waking every 20 ms takes the GIL from the pipeline's threads and costs more than it measures)."""

    def __init__(self, threads: bool) -> None:
        self.hwm = not threads and _reset_peak()
        self.peak = _rss()
        self.child_peak = 0  # the children's private memory at its most
        self.threads = threads
        self.cpu: dict[int, tuple[str, float]] = _thread_cpu() if threads else {}
        self.start = dict(self.cpu)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def _update(self) -> None:
        for tid, (name, cpu) in _thread_cpu().items():  # a thread keeps the first name seen (Python's)
            self.cpu[tid] = (self.cpu[tid][0] if tid in self.cpu else name, cpu)

    def _run(self) -> None:
        tick, wait = 0, 0.5 if self.hwm else 0.02
        while not self._stop.wait(wait):
            if not self.hwm:
                self.peak = max(self.peak, _rss())
            tick += 1
            if tick % round(0.5 / wait) == 0:  # every 0.5 s: reading a process's page map holds its memory lock
                self.child_peak = max(self.child_peak, sum(private_bytes(p) for p in children()))
            if self.threads:
                self._update()

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _peak_rss() if self.hwm else _rss())
        if self.threads:
            self._update()

    def per_thread(self) -> dict[str, float]:
        """CPU seconds per thread name over the run (threads of one kind summed: FFmpeg's decoders)."""
        out: dict[str, float] = {}
        for tid, (name, cpu) in self.cpu.items():
            if name == "bench-sampler":
                continue
            if name.startswith("ThreadPoolExecutor"):
                key = "networks (worker thread)"
            elif name == "MainThread":
                key = "MainThread (the caller's)"
            elif name.startswith("facedyn-"):
                key = name
            elif name.startswith("av:"):
                key = "FFmpeg's decoding threads"
            else:
                key = "other native threads (OpenMP, OpenCV)"
            out[key] = out.get(key, 0.0) + cpu - self.start.get(tid, (name, 0.0))[1]
        return out


def _end_to_end(clip: Path, track: str, settings: dict[str, Any], csv: Path, threads: bool = False) -> dict[str, Any]:
    """One run of analyze + CSV writing: frames/s, CPU ms/frame (this process and its child), cores, peak RSS
    growth (MB, the child's private memory included), load average."""
    load = os.getloadavg()[0]
    rss0 = _rss()
    with _Sampler(threads) as s:
        t, c, cc = time.perf_counter(), time.process_time(), _child_cpu()
        df = analyze(clip, runs=["dr-t5"], device="cpu", arrays=False, track=track, **settings)
        df.to_csv(csv, index=False, float_format="%.4f")
        wall, cpu, child = time.perf_counter() - t, time.process_time() - c, _child_cpu() - cc
    frames = df["frame"].nunique()
    per = {k: 1000 * v / frames for k, v in s.per_thread().items()} if threads else {}
    if threads and child > 0:
        per["child process (all its threads)"] = 1000 * child / frames
    return {"fps": frames / wall, "cpu_ms": 1000 * (cpu + child) / frames, "cores": (cpu + child) / wall,
            "rss": (s.peak - rss0 + s.child_peak) / 2**20, "load": load, "frames": frames, "threads": per}


def _med(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _row(name: str, track: str, runs: dict[str, list[dict[str, Any]]]) -> str:
    base = runs[SETTINGS[0][0]]

    def ratio(k: str) -> str:
        rs = [r["fps"] / b["fps"] for r, b in zip(runs[k], base, strict=True)]
        return f"{statistics.median(rs):.2f}x ({min(rs):.2f}-{max(rs):.2f})"

    loads = [r["load"] for rs in runs.values() for r in rs]
    fps = " | ".join(f"{_med(runs[k], 'fps'):.1f}" for k, *_ in SETTINGS)
    ratios = " | ".join(ratio(k) for k, *_ in SETTINGS[1:])
    cpu = ", ".join(f"{_med(runs[k], 'cpu_ms'):.1f}" for k, *_ in SETTINGS)
    cores = ", ".join(f"{_med(runs[k], 'cores'):.2f}" for k, *_ in SETTINGS)
    rss = ", ".join(f"{max(r['rss'] for r in runs[k]):.0f}" for k, *_ in SETTINGS)
    return (f"| {name} | {track} | {base[0]['frames']} | {len(base)} | {fps} | {ratios} | {cpu} | {cores} | {rss} "
            f"| {statistics.median(loads):.1f} ({min(loads):.1f}-{max(loads):.1f}) |")


def _rounds(clip: Path, track: str, repeats: int, csv: Path, threads: bool = False) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k, *_ in SETTINGS}
    for _ in range(repeats):
        for k, settings in SETTINGS:
            runs[k].append(_end_to_end(clip, track, settings, csv, threads))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=448, help="frames of the one-face clip (448: all of it)")
    ap.add_argument("--mosaic-frames", type=int, default=150, help="frames of the four-face mosaic")
    ap.add_argument("--repeats", type=int, default=5, help="rounds for one face, fit-tracked (the headline)")
    ap.add_argument("--repeats-rest", type=int, default=3, help="rounds for the other rows")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-analyze-"))
    one = _clip(REAL / "talking_d10.mp4", tmp / "one.mp4", a.frames)
    four = _mosaic(tmp / "four.mp4", a.mosaic_frames)
    for _, settings in SETTINGS:  # load the models, export the ONNX graph once, warm the caches
        analyze(one, device="cpu", arrays=False, every=50, **settings)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs; model dr-t5 (64 px); networks in one worker thread "
          f"with one thread (torch or onnxruntime); load average at start {os.getloadavg()[0]:.1f}")
    print("")
    names = [k for k, _ in SETTINGS]
    print("frames/s: median over rounds; ratio: median (range) over rounds of each run's frames/s over the before run "
          "of its round; CPU ms/frame (this process and its child), cores: medians; peak RSS: the most over the runs, "
          "MB above the memory before the run (with the child's private memory); load average: median (range) at the "
          f"runs' starts. Settings: {', '.join(names)} (the module docstring).")
    print("")
    print(f"| clip | track | frames | rounds | {names[0]} frames/s | {' | '.join(names[1:])} | "
          f"{' | '.join('ratio ' + n for n in names[1:])} | CPU ms/frame {', '.join(names)} | cores | peak RSS MB | "
          "load average |")
    print("|---|---|---:|---:|" + "---:|" * (2 * len(names) - 1) + "---:|---:|---:|---:|")
    headline = _rounds(one, "fit", a.repeats, tmp / "out.csv")
    print(_row("one face, talking_d10 512x512", "fit", headline), flush=True)
    rows = [("one face, talking_d10 512x512", one, "detect"), ("four faces, 2x2 mosaic 512x512", four, "fit"),
            ("four faces, 2x2 mosaic 512x512", four, "detect")]
    for name, clip, track in rows:
        print(_row(name, track, _rounds(clip, track, a.repeats_rest, tmp / "out.csv")), flush=True)
    print("")
    print("CPU ms/frame per thread, one face fit-tracked (one more run of each, its threads sampled every 20 ms):")
    print("")
    a_, b_ = names[0], names[-1]
    print(f"| thread | {a_} | {b_} |")
    print("|---|---:|---:|")
    sampled = {k: _end_to_end(one, "fit", dict(SETTINGS)[k], tmp / "out.csv", threads=True) for k in (a_, b_)}
    per = {k: r["threads"] for k, r in sampled.items()}
    for n in sorted(set(per[a_]) | set(per[b_]), key=lambda n: -max(per[a_].get(n, 0.0), per[b_].get(n, 0.0))):
        x, y = per[a_].get(n, 0.0), per[b_].get(n, 0.0)
        if max(x, y) >= 0.05:
            print(f"| {n} | {x:.2f} | {y:.2f} |")
    print(f"| all (process and child CPU) | {sampled[a_]['cpu_ms']:.2f} | {sampled[b_]['cpu_ms']:.2f} |")
    print("")
    print(f"load average at end {os.getloadavg()[0]:.1f} (2 cores: above ~2 other work shares them)")


if __name__ == "__main__":
    main()
