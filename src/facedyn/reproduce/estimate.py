"""The dry run's time estimate: each stage's units (training images, frames, windows) over a measured throughput.

Throughputs come from ``throughput.json`` beside this module (or the file named by ``FACEDYN_THROUGHPUT``),
written by ``benchmarks/bench_reproduce.py`` on a CPU or by ``benchmarks/gpu_check.py --write`` on a GPU.
The shipped file was measured on this project's CPU (2 cores, fp32) at 64 px with each method's *paper*
network widths; a stage at another crop size is scaled by the pixel count ((size / 64)^2, the first-order
cost of a convolution). CPU figures become GPU hours by dividing by ``gpu_factor`` (default
:data:`GPU_FACTOR`), an assumption, not a measurement: a 2-core CPU sustains ~0.1 TFLOP/s fp32 on these
convolutions, one H100 ~100-300 TFLOP/s bf16 on small networks; replace it with ``gpu_check.py --write``
figures when a GPU is at hand. ``prepare`` (face detection, landmarks, crops) runs on CPU cores and is
given in CPU-core hours, never scaled.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from facedyn.errors import ConfigError
from facedyn.reproduce.stages import Context, Stage

THROUGHPUT_FILE = Path(__file__).with_name("throughput.json")
#: assumed speed of one GPU over the measured CPU (see the module docstring)
GPU_FACTOR = 1000.0
#: videos probed per dataset to estimate its frame count (the rest extrapolated by their number)
PROBE_SAMPLE = 40


def load_throughput(path: str | Path | None = None) -> dict[str, Any]:
    """The throughput table (``FACEDYN_THROUGHPUT`` or the shipped file)."""
    p = Path(path or os.environ.get("FACEDYN_THROUGHPUT") or THROUGHPUT_FILE)
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ConfigError(f"{p}: not a readable throughput table ({type(e).__name__}); rerun "
                          "benchmarks/bench_reproduce.py") from None


def count_frames(ctx: Context, dataset: str, cache: dict[str, float | None]) -> float | None:
    """Frames of ``dataset`` under the data root (video headers of a sample, extrapolated); None when absent."""
    if dataset in cache:
        return cache[dataset]
    from facedyn.data import video
    from facedyn.data.datasets import discover
    from facedyn.errors import FacedynError

    n: float | None = None
    root = ctx.dataset_dir(dataset)
    if root.is_dir():
        try:
            sources = discover(dataset, root)
            sample = sources[:: max(1, len(sources) // PROBE_SAMPLE)][:PROBE_SAMPLE]
            counts = [1 if s.video.is_file() and s.video.suffix.lower() in video.IMAGE_EXTS
                      else video.probe(s.video).n_frames for s in sample]
            n = sum(counts) / max(1, len(counts)) * len(sources)
        except FacedynError:
            n = None
    cache[dataset] = n
    return n


def stage_estimate(stage: Stage, ctx: Context, table: dict[str, Any], cache: dict[str, float | None]
                   ) -> dict[str, Any]:
    """``units``, ``cpu_h`` (hours on the measured machine) and ``gpu_h`` of one stage (None: unknown)."""
    c = stage.cost
    if c.kind == "none":
        return {"units": 0, "cpu_h": 0.0, "gpu_h": 0.0, "note": ""}
    units = c.images
    if units is None and c.dataset is not None:
        frames = count_frames(ctx, c.dataset, cache)
        units = None if frames is None else frames * c.per_frame
        cap = ctx.settings.get("max_windows")
        if c.kind == "rank" and cap and units is not None:
            units = min(units, float(cap) * c.per_frame)
    rates = table.get("rates", {})
    rate = rates.get(f"{c.kind}@{ctx.settings.preset}", rates.get(c.kind))  # train:<m>@cpu: the cpu widths
    if units is None:
        return {"units": None, "cpu_h": None, "gpu_h": None, "note": f"no {c.dataset} under --data-root"}
    if rate is None:
        return {"units": units, "cpu_h": None, "gpu_h": None, "note": f"no throughput measured for {c.kind}"}
    on_gpu = str(table.get("device", "cpu")).startswith("cuda")
    scale = 1.0 if c.kind == "prepare" else (c.size / float(table.get("size", 64))) ** 2
    hours = units / float(rate) * scale / 3600.0
    factor = float(ctx.settings.get("gpu_factor", GPU_FACTOR))
    if c.kind == "prepare":
        return {"units": units, "cpu_h": hours, "gpu_h": 0.0, "note": "CPU-core hours (detector, landmarks, crops)"}
    return {"units": units, "cpu_h": None if on_gpu else hours, "gpu_h": hours if on_gpu else hours / factor,
            "note": ""}


def basis(ctx: Context, table: dict[str, Any]) -> str:
    """One paragraph saying where the estimate comes from."""
    factor = float(ctx.settings.get("gpu_factor", GPU_FACTOR))
    if str(table.get("device", "cpu")).startswith("cuda"):
        return (f"GPU hours from throughput measured on {table.get('machine', 'a GPU')} ({table.get('measured', '?')}) "
                f"at {table.get('size', 64)} px, scaled by pixel count to each stage's crop size.")
    return (f"Estimate, not a measurement: throughput measured on a CPU ({table.get('machine', '?')}, "
            f"{table.get('measured', '?')}, {table.get('basis', '')}) at {table.get('size', 64)} px, scaled by pixel "
            f"count to each stage's crop size, then divided by an assumed GPU speed-up of {factor:g}x (--set "
            "gpu_factor=...; benchmarks/gpu_check.sh measures the real one). prepare runs on CPU cores.")
