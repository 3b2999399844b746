"""``facedyn.analyze`` end to end: the threaded pipeline against the serial one (the path before), one face and four.

End to end = decode, find faces (``track="fit"``: HOG detector every 10 frames and where a fit degrades, the
68-point fit in between; ``track="detect"``: the detector on every frame), align, head pose, AU proxies, the
default model (the shipped dr-t5, 64 px) and writing the table as CSV (``arrays=False``: the DRs are computed
but, as in ``faces.csv``, not written). Clips: the first ``--frames`` frames of a one-face 512 px real clip,
and a 512 px mosaic of four real clips (one face each, 256 px tiles) made here.

Three settings, measured in the same run, interleaved (one run of each per round, ``--repeats`` rounds for one
face fit-tracked, ``--repeats-rest`` for the other rows), medians reported:

* ``serial``: ``pipeline="serial", engine="torch"``, the path before (decode, track, crop in the caller's
  thread; the networks in one worker thread with one torch thread): the baseline;
* ``threads``: ``pipeline="threads"`` (the default): decoding (with the detector on the frames the tracker is
  expected to detect) and tracking each in a thread of their own, a few frames ahead of the per-face work;
* ``threads+onnx``: the same with ``engine="onnx"`` (onnxruntime, one thread, for the networks).

Ratios are the median over rounds of each round's ratio to its own serial run. CPU ms/frame is the process's
CPU time (all threads) per frame; cores = CPU time / wall time; peak RSS is the resident memory's high-water
mark during a run above the memory before it (sampled every 20 ms). The load average (1 min, sampled at the
start of each run) counts this benchmark's own runnable threads too (1-4). Then, per thread, the CPU time per
frame of one face fit-tracked (where the time goes, serial vs threads+onnx; Linux ``/proc``).

    .venv/bin/python benchmarks/bench_analyze.py [--frames 300] [--mosaic-frames 150] [--repeats 5]
        [--repeats-rest 3]
"""

from __future__ import annotations

import argparse
import os
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

from facedyn.analysis import analyze
from facedyn.data import video as video_io

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
MOSAIC = ("talking_d10.mp4", "talking_d12.mp4", "talking_d14.mp4", "talking_d19.mp4")
#: (name, pipeline, engine); the first is the baseline
SETTINGS = [("serial", "serial", "torch"), ("threads", "threads", "torch"), ("threads+onnx", "threads", "onnx")]
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


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


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


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
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/self/task/{tid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        out[int(tid)] = (names.get(int(tid), comm), (int(fields[11]) + int(fields[12])) / _TICK)
    return out


class _Sampler:
    """While running: the peak RSS, and the last CPU time seen of every thread (threads end before the run)."""

    def __init__(self, threads: bool) -> None:
        self.peak = _rss()
        self.threads = threads
        self.cpu: dict[int, tuple[str, float]] = _thread_cpu() if threads else {}
        self.start = dict(self.cpu)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-sampler", daemon=True)

    def _update(self) -> None:
        for tid, (name, cpu) in _thread_cpu().items():  # a thread keeps the first name seen (Python's)
            self.cpu[tid] = (self.cpu[tid][0] if tid in self.cpu else name, cpu)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss())
            if self.threads:
                self._update()

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
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


def _end_to_end(clip: Path, track: str, pipeline: str, engine: str, csv: Path,
                threads: bool = False) -> dict[str, Any]:
    """One run of analyze + CSV writing: frames/s, CPU ms/frame, cores, peak RSS growth (MB), load average."""
    load = os.getloadavg()[0]
    rss0 = _rss()
    with _Sampler(threads) as s:
        t, c = time.perf_counter(), time.process_time()
        df = analyze(clip, runs=["dr-t5"], device="cpu", arrays=False, track=track, pipeline=pipeline,
                     engine=engine)
        df.to_csv(csv, index=False, float_format="%.4f")
        wall, cpu = time.perf_counter() - t, time.process_time() - c
    frames = df["frame"].nunique()
    return {"fps": frames / wall, "cpu_ms": 1000 * cpu / frames, "cores": cpu / wall, "rss": (s.peak - rss0) / 2**20,
            "load": load, "frames": frames,
            "threads": {k: 1000 * v / frames for k, v in s.per_thread().items()} if threads else {}}


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
        for k, pipeline, engine in SETTINGS:
            runs[k].append(_end_to_end(clip, track, pipeline, engine, csv, threads))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=300, help="frames of the one-face clip")
    ap.add_argument("--mosaic-frames", type=int, default=150, help="frames of the four-face mosaic")
    ap.add_argument("--repeats", type=int, default=5, help="rounds for one face, fit-tracked (the headline)")
    ap.add_argument("--repeats-rest", type=int, default=3, help="rounds for the other rows")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-analyze-"))
    one = _clip(REAL / "talking_d10.mp4", tmp / "one.mp4", a.frames)
    four = _mosaic(tmp / "four.mp4", a.mosaic_frames)
    for _, pipeline, engine in SETTINGS:  # load the models, export the ONNX graph once, warm the caches
        analyze(one, device="cpu", arrays=False, every=50, pipeline=pipeline, engine=engine)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs; model dr-t5 (64 px); networks in one worker thread "
          f"with one thread (torch or onnxruntime); load average at start {os.getloadavg()[0]:.1f}")
    print("")
    print("frames/s: median over rounds; ratio: median (range) over rounds of each run's frames/s over the serial run "
          "of its round; CPU ms/frame, cores: medians; peak RSS: the most over the runs, MB above the memory "
          "before the run; load average: median (range) at the runs' starts. Settings: serial (the path before), "
          "threads (the default), threads+onnx.")
    print("")
    print("| clip | track | frames | rounds | serial frames/s | threads | threads+onnx | ratio threads | "
          "ratio threads+onnx | CPU ms/frame serial, threads, +onnx | cores | peak RSS MB | load average |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    headline = _rounds(one, "fit", a.repeats, tmp / "out.csv", threads=True)
    print(_row("one face, talking_d10 512x512", "fit", headline), flush=True)
    rows = [("one face, talking_d10 512x512", one, "detect"), ("four faces, 2x2 mosaic 512x512", four, "fit"),
            ("four faces, 2x2 mosaic 512x512", four, "detect")]
    for name, clip, track in rows:
        print(_row(name, track, _rounds(clip, track, a.repeats_rest, tmp / "out.csv")), flush=True)
    print("")
    print("CPU ms/frame per thread, one face fit-tracked (median over rounds):")
    print("")
    print("| thread | serial | threads+onnx |")
    print("|---|---:|---:|")
    per: dict[str, dict[str, float]] = {}
    for k in ("serial", "threads+onnx"):
        names = {n for r in headline[k] for n in r["threads"]}
        per[k] = {n: statistics.median(r["threads"].get(n, 0.0) for r in headline[k]) for n in names}
    for n in sorted(set(per["serial"]) | set(per["threads+onnx"]),
                    key=lambda n: -max(per["serial"].get(n, 0.0), per["threads+onnx"].get(n, 0.0))):
        s, t = per["serial"].get(n, 0.0), per["threads+onnx"].get(n, 0.0)
        if max(s, t) >= 0.05:
            print(f"| {n} | {s:.2f} | {t:.2f} |")
    print(f"| all (process CPU) | {_med(headline['serial'], 'cpu_ms'):.2f} | "
          f"{_med(headline['threads+onnx'], 'cpu_ms'):.2f} |")
    print("")
    print(f"load average at end {os.getloadavg()[0]:.1f} (2 cores: above ~2 other work shares them)")


if __name__ == "__main__":
    main()
