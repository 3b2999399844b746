"""``make bench``: run every benchmark and write ``benchmarks/results.md`` from their output (never by hand).

Each benchmark prints ratios measured within its own run (a baseline measured in the same process), so the
figures compare like with like even on a loaded machine; absolute rates are given for context only.

    .venv/bin/python benchmarks/run_all.py [--only NAME ...] [--out benchmarks/results.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: (name, script, arguments, what it measures)
BENCHES = [
    ("prepare", "bench_prepare.py", [], "prepare frames/s: detect every frame vs fit-tracking; 1 vs 2 workers"),
    ("data", "bench_data.py", [], "decode, landmarks, align, window loader vs the UNet step it feeds"),
    ("infer", "bench_infer.py", [], "analyze faces/s, torch vs onnxruntime, 64 and 224 px"),
    ("analyze", "bench_analyze.py", [], "analyze end to end frames/s: the threads and processes pipelines (torch, "
     "onnxruntime) vs the serial path before, fit-tracking and detecting every frame, 1 and 4 faces; CPU per frame "
     "and thread"),
    ("analyze_levers", "bench_analyze_levers.py", [], "what analyze would gain from settings that change its "
     "results (a bf16 network, whole-frame scans every 60 frames) against the same baseline, and how much they "
     "change"),
    ("analyze_parts", "bench_analyze_parts.py", [], "where analyze's CPU per frame goes, stage by stage; which dlib "
     "calls two threads can overlap (the GIL); the HOG scan's cost by the scanned size and of a window around the "
     "face"),
    ("train", "bench_train.py", [], "every method's training step, fp32/bf16 x NCHW/NHWC, what --precision auto "
     "picks; the loop vs the bare step"),
    ("rank_loss", "bench_rank_loss.py", [], "the vectorised Rank Loss vs its literal loops"),
    ("soak", "bench_soak.py", [], "analyze streaming 20 minutes of looped real video: RSS and frames/s each minute, "
     "memory growth and speed steadiness"),
]


def _quiet(text: str) -> str:
    """Drop exporter chatter and warnings from a benchmark's output."""
    drop = ("[torch.onnx]", "Warning", "warnings.warn", "W11", "return cls", "torchvision is not installed")
    return "\n".join(line for line in text.splitlines() if not any(d in line for d in drop)).strip()


def _sections(text: str) -> dict[str, list[str]]:
    """The ``## name: ...`` sections of a results file, by benchmark name (their lines, up to the next one)."""
    out: dict[str, list[str]] = {}
    name = None
    for line in text.splitlines():
        if line.startswith("## "):
            name = line[3:].split(":", 1)[0].strip()
            out[name] = []
        if name is not None:
            out[name].append(line)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", default=None, help="names of the benchmarks to run (default: all)")
    ap.add_argument("--out", type=Path, default=HERE / "results.md")
    a = ap.parse_args()
    from facedyn.atomic import write_text

    chosen = [b for b in BENCHES if a.only is None or b[0] in a.only]
    kept = _sections(a.out.read_text()) if a.only is not None and a.out.is_file() else {}
    sections: dict[str, list[str]] = {}
    for name, script, args, what in chosen:
        cmd = [sys.executable, str(HERE / script), *args]
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        took = time.perf_counter() - t
        text = _quiet(p.stdout) or "(no output)"
        print(text, flush=True)
        status = "" if p.returncode == 0 else f" — FAILED (exit {p.returncode}): {_quiet(p.stderr)[-400:]}"
        sections[name] = [f"## {name}: {what}", "",
                          f"`python benchmarks/{script} {' '.join(args)}`".replace(" `", "`"),
                          f"({took:.0f} s on {dt.date.today().isoformat()}){status}", "", "```", text, "```", ""]
    lines = ["# facedyn benchmarks", "",
             f"Written by `make bench` (`benchmarks/run_all.py`): {platform.machine()}, {os.cpu_count()} CPUs, "
             f"Python {platform.python_version()}. Every ratio is measured within one run of its script; rates depend "
             "on the machine and its load. `--only NAME` reruns one section and keeps the others.", ""]
    for name, *_ in BENCHES:
        lines += sections.get(name) or kept.get(name) or []
    write_text(a.out, "\n".join(lines))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
