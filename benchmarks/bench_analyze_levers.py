"""What ``facedyn.analyze`` would gain from settings that change its results: a bf16 network, fewer full scans.

``bench_analyze.py`` measures the pipelines, which all give the serial table. This one measures two levers that
do not, against the same baseline in the same run, so the trade-off can be decided on figures:

* ``bf16``: the default model's forward passes under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (a wrapper
  around the loaded model given to ``analyze``; fast only on a CPU with native bf16, AMX or AVX-512 BF16); the
  DR's mean absolute difference from the fp32 DR, relative to its mean absolute value, is printed;
* ``scans/60``: ``full_scan_every=60`` instead of the default 30 (a face that enters is found up to 2.4 s later at
  25 fps; the landmarks' mean change from the default's, in inter-ocular distances, is printed).

Settings, interleaved in each round, ratios the median over rounds of each run's frames/s over the round's ``before``
run: ``before`` (``pipeline="serial", engine="torch", full_scan_every=None``, the model loaded by each call:
bench_analyze's baseline),
``processes+onnx`` (the fastest setting with the serial table), ``processes+bf16``, ``processes+onnx, scans/60``,
``processes+bf16, scans/60``. Clip: the 448 frames of talking_d10 (one face, 512 px), fit-tracked; end to end as in
bench_analyze (decode to CSV).

    .venv/bin/python benchmarks/bench_analyze_levers.py [--frames 448] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_analyze import REAL, _clip

from facedyn.analysis import analyze, load_models
from facedyn.precision import cpu_info


class _Bf16:
    """A loaded torch model (``FaceModel``) whose forward passes run under bf16 autocast; outputs in fp32."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    def outputs(self, images: Any, aligned: bool | None = None) -> dict[str, torch.Tensor]:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.model.outputs(images, aligned=aligned)
        return {k: v.float() for k, v in out.items()}


def _rate(clip: Path, csv: Path, runs: Any, settings: dict[str, Any]) -> float:
    t = time.perf_counter()
    df = analyze(clip, runs=runs, device="cpu", arrays=False, **settings)
    df.to_csv(csv, index=False, float_format="%.4f")
    return df["frame"].nunique() / (time.perf_counter() - t)


def _landmarks(df: Any) -> np.ndarray:
    return np.stack([df[[f"x_{i}" for i in range(68)]].to_numpy(), df[[f"y_{i}" for i in range(68)]].to_numpy()], -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=448, help="frames of the one-face clip (448: all of it)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="facedyn-bench-levers-"))
    clip = _clip(REAL / "talking_d10.mp4", tmp / "one.mp4", a.frames)
    fp32 = load_models(["dr-t5"], "cpu", "torch")
    bf16 = {name: _Bf16(m) for name, m in fp32.items()}
    settings: list[tuple[str, Any, dict[str, Any]]] = [
        ("before", ["dr-t5"], {"pipeline": "serial", "engine": "torch", "full_scan_every": None}),
        ("processes+onnx", ["dr-t5"], {"pipeline": "processes", "engine": "onnx"}),
        ("processes+bf16", bf16, {"pipeline": "processes"}),
        ("processes+onnx, scans/60", ["dr-t5"], {"pipeline": "processes", "engine": "onnx", "full_scan_every": 60}),
        ("processes+bf16, scans/60", bf16, {"pipeline": "processes", "full_scan_every": 60}),
    ]
    for _, runs, s in settings:  # load, export the ONNX graph once, warm the caches
        analyze(clip, runs=runs, device="cpu", arrays=False, every=50, **s)
    native = any(f in cpu_info()["flags"] for f in ("amx_bf16", "avx512_bf16", "bf16"))
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, native bf16: {'yes' if native else 'no'}; "
          f"model dr-t5 (64 px); one face, talking_d10 512x512, {a.frames} frames, fit; load average at start "
          f"{os.getloadavg()[0]:.1f}")
    print("")
    rates: dict[str, list[float]] = {name: [] for name, *_ in settings}
    for _ in range(a.repeats):
        for name, runs, s in settings:
            rates[name].append(_rate(clip, tmp / "out.csv", runs, s))
    print("| setting | same table as before | frames/s | ratio to before |")
    print("|---|---|---:|---:|")
    base = rates["before"]
    for name, *_ in settings:
        r = [x / b for x, b in zip(rates[name], base, strict=True)]
        same = "yes" if name in ("before", "processes+onnx") else "no"
        print(f"| {name} | {same} | {statistics.median(rates[name]):.1f} | {statistics.median(r):.2f}x "
              f"({min(r):.2f}-{max(r):.2f}) |")
    print("")
    ref = analyze(clip, runs=fp32, device="cpu", pipeline="processes")
    low = analyze(clip, runs=bf16, device="cpu", pipeline="processes")
    a32, a16 = np.stack(list(ref["dr"])), np.stack(list(low["dr"]))
    print(f"bf16 DR vs fp32 DR: mean |difference| / mean |DR| = {np.abs(a16 - a32).mean() / np.abs(a32).mean():.4f}")
    s60 = analyze(clip, runs=["dr-t5"], device="cpu", engine="onnx", arrays=False, pipeline="processes",
                  full_scan_every=60)
    la, lb = _landmarks(ref), _landmarks(s60)
    iod = np.linalg.norm(la[:, 36:42].mean(1) - la[:, 42:48].mean(1), axis=-1)
    moved = np.linalg.norm(lb - la, axis=-1).mean(1) / iod
    print(f"scans/60 vs the default's landmarks: {moved.mean():.4f} inter-ocular distances on average, "
          f"{moved.max():.4f} at most")
    print(f"load average at end {os.getloadavg()[0]:.1f} (2 cores: above ~2 other work shares them)")


if __name__ == "__main__":
    main()
