"""facedyn: learn how faces move.

Public API::

    import facedyn
    model = facedyn.load("runs/dr")                 # any trained run (or a shipped model's name)
    z = model.encode(faces)                         # (N, D) representation of aligned faces in [0, 1]
    df = facedyn.analyze("video.mp4", runs=["runs/dr"])   # every face of every frame → DataFrame
    facedyn.summarize(df)                           # one row per face: time visible, pose range, AUs, blinks
    df.pipe(facedyn.view, "video.html")             # frames, landmarks, pose, AU proxies, DRs in one page

    from facedyn.train import train                 # train any registered method
    train("dr", "data/synth", "runs/dr2", {"T": 5, "S": 2})
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

__all__ = ["__version__", "analyze", "evaluate", "load", "summarize", "view"]


def load(run: Any, weights: str = "best", device: Any = "auto") -> Any:
    """Load a run directory (or shipped model name) of any method: see :func:`facedyn.api.load`."""
    from facedyn.api import load as _load

    return _load(run, weights=weights, device=device)


def analyze(source: Any, runs: Any = (), device: Any = "auto", arrays: bool = True, every: int = 1,
            engine: str = "torch", track: str = "fit", smooth: float = 0.0, pipeline: str = "threads") -> Any:
    """Every face of a video or image through ``runs``, as a DataFrame: see :func:`facedyn.analysis.analyze`."""
    from facedyn.analysis import analyze as _analyze

    return _analyze(source, runs, device=device, arrays=arrays, every=every, engine=engine, track=track,
                    smooth=smooth, pipeline=pipeline)


def summarize(table: Any, maps: Any = None) -> Any:
    """One row per face of an :func:`analyze` table (frames, time visible, mean confidence, pose range, per AU
    proxy the share of time active and its peak, blinks, the DR's motion energy): see
    :func:`facedyn.face_summary.summarize`."""
    from facedyn.face_summary import summarize as _summarize

    return _summarize(table, maps=maps)


def view(table: Any, out: Any = "facedyn_view.html", source: Any = None, **kw: Any) -> Any:
    """One self-contained HTML page of an :func:`analyze` table: see :func:`facedyn.reports.video_page.view`."""
    from facedyn.reports.video_page import view as _view

    return _view(table, out, source=source, **kw)


def evaluate(run: Any, data: Any, split: str = "test", weights: str = "best", device: Any = "auto") -> Any:
    """A run's own whole-set metrics on a dataset split: see :func:`facedyn.api.evaluate`."""
    from facedyn.api import evaluate as _evaluate

    return _evaluate(run, data, split=split, weights=weights, device=device)
