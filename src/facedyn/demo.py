"""The main job on embedded data (``make demo`` / ``facedyn demo``)."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from facedyn.data.prepare import PrepareOptions, prepare
from facedyn.data.summary import summarize
from facedyn.data.synthetic import synth


def run_demo(out: Path, seed: int = 0, console: Console | None = None, subjects: int = 4,
             seconds: float = 10.0) -> dict:
    """synth → prepare → info; returns the dataset summary. Prints where everything is."""
    console = console or Console()
    out = Path(out)
    t0 = time.perf_counter()
    videos = out / "videos"
    console.rule("1. synthetic face videos")
    synth(videos, subjects=subjects, seconds=seconds, fps=25.0, seed=seed)
    console.print(f"videos: {videos}  ({time.perf_counter() - t0:.1f} s)")
    console.rule("2. prepare: align, crop, mask")
    data = out / "data"
    res = prepare([videos], data, PrepareOptions(size=64, seed=seed))
    bad = [r for r in res if r.error]
    if bad:
        raise RuntimeError(f"demo prepare failed: {bad[0].error}")
    console.print(f"clip store: {data}  ({time.perf_counter() - t0:.1f} s)")
    console.rule("3. dataset summary")
    s = summarize(data)
    console.print(f"clips: {s['n_clips']}  frames: {s['n_frames']}  valid: {100 * s['valid']:.1f} %  "
                  f"size: {s['size']} px")
    console.print(f"labels: {', '.join(s['labels'])}")
    for split, subs in s["splits"].items():
        console.print(f"{split}: {', '.join(subs)}")
    console.print(f"done in {time.perf_counter() - t0:.1f} s; outputs under {out.resolve()}")
    return s
