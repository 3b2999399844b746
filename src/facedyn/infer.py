"""``facedyn infer``: a writer around :func:`facedyn.analysis.iter_faces`, streaming (never a whole video in memory).

Files in ``out``:
    ``faces.csv``           one row per face per frame: ``frame, timestamp, face_id, success,
                            x_0..x_67, y_0..y_67`` (OpenFace-style, source pixels), then every scalar or
                            vector output of the models
    ``<output>.npy``        each image-valued output (e.g. ``dr.npy``), float32 ``(R, C, H, W)``, one entry
                            per row of faces.csv (NaN on rows without a face)
    ``png/``                ``<output>_<frame>_<face_id>.png``: each image-valued output, per-image min–max
    ``summary.csv``         one row per face (:func:`facedyn.face_summary.summarize`): frames, time visible,
                            mean confidence, pose range, per AU proxy the share of time active and its peak,
                            blinks and blink rate, each image-valued output's motion energy
    ``side_by_side.mp4``    videos only: aligned face | first image-valued output, of the lowest face_id
                            in each frame (black where no face)
    ``view.html``           with ``html=True``: the page of :mod:`facedyn.reports.video_page` (frames with
                            landmarks and boxes, pose and AU proxies over time, DR strip, PCA map)
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facedyn.analysis import BASE_COLUMNS, FaceResult, iter_faces, load_models
from facedyn.atomic import NpyWriter, atomic_path
from facedyn.data import video as video_io
from facedyn.errors import InputNotFoundError, NoFaceError, OutputError
from facedyn.reports.plots import minmax_uint8


def _save_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


class _Writers:
    """faces.csv rows, one NpyWriter per image-valued output, PNGs; columns fixed by the first face."""

    def __init__(self, out: Path, csv_file: Any) -> None:
        self.out = out
        self.csv_file = csv_file
        self.writer: csv.DictWriter[str] | None = None
        self.pending: list[FaceResult] = []  # rows before the first face (frames without faces)
        self.maps: dict[str, NpyWriter] = {}
        self.rows = 0
        self.faces = 0

    def add(self, r: FaceResult) -> None:
        if self.writer is None:
            if not r.success:
                self.pending.append(r)
                return
            cols = list(BASE_COLUMNS) + [c for c in r.row(arrays=False) if c not in BASE_COLUMNS]
            self.writer = csv.DictWriter(self.csv_file, fieldnames=cols, restval="")
            self.writer.writeheader()
            for name, v in r.outputs.items():
                if v.ndim >= 2:
                    self.maps[name] = NpyWriter(self.out / f"{name}.npy", v.shape)
            pending, self.pending = self.pending, []
            for p in pending:
                self._write(p)
        self._write(r)

    def _write(self, r: FaceResult) -> None:
        assert self.writer is not None
        self.writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.row(arrays=False).items()})
        self.rows += 1
        self.faces += int(r.success)
        for name, w in self.maps.items():
            if r.success:
                w.append(r.outputs[name])
                _save_png(self.out / "png" / f"{name}_{r.frame:05d}_{r.face_id}.png", minmax_uint8(r.outputs[name]))
            else:
                w.append(np.full(w.row_shape, np.nan, np.float32))

    def close(self) -> list[str]:
        for w in self.maps.values():
            w.close()
        return [f"{name}.npy" for name in self.maps]

    def abort(self) -> None:
        for w in self.maps.values():
            w.abort()


def infer_file(runs: Sequence[str | Path], source: str | Path, out: str | Path,
               device: str = "auto", engine: str = "torch", track: str = "fit", html: bool = False,
               smooth: float = 0.0) -> dict[str, Any]:
    """Run ``runs`` on every face of ``source`` (image or video) and write the files above into ``out``.

    ``track``: ``fit`` (detect every few frames, fit the landmarks in between) or ``detect`` (every frame);
    ``html``: also write ``view.html``; ``smooth``: seconds of temporal smoothing of the pose and AU proxies
    (0: none; :func:`facedyn.analysis.iter_faces`).

    Returns ``{"frames", "faces", "files", "summary"}``: ``frames`` the frames decoded (one row or more each
    in faces.csv, whatever the container's header says), ``summary`` the DataFrame of summary.csv. NoFaceError
    when no frame has a face (nothing is left behind but the empty folder).
    """
    source = Path(source)
    if not source.exists():
        raise InputNotFoundError(f"{source}: no such image or video")
    models = load_models(runs, device, engine)
    out = Path(out)
    try:
        (out / "png").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot write output here ({e.strerror}); choose a writable --out") from None
    is_video = not (source.is_file() and source.suffix.lower() in video_io.IMAGE_EXTS)
    size = max(m.size for m in models.values())
    frames = 0
    with atomic_path(out / "faces.csv") as tmp, open(tmp, "w", newline="") as f:
        w = _Writers(out, f)
        try:
            def panels() -> Iterator[np.ndarray]:
                nonlocal frames
                for faces in iter_faces(source, models, device, track=track, smooth=smooth):  # models loaded
                    frames += 1
                    for r in faces:
                        w.add(r)
                    yield _panel(faces[0], size)

            if is_video:
                fps = video_io.probe(source).fps
                video_io.write_video(out / "side_by_side.mp4", panels(), fps=fps)
            else:
                for _ in panels():
                    pass
            if w.faces == 0:
                (out / "side_by_side.mp4").unlink(missing_ok=True)  # nothing to show: publish nothing
                raise NoFaceError(f"{source}: no face found in any frame; give footage with a visible, roughly "
                                  "frontal face")
            files = ["faces.csv", *w.close(), "png/"]
        except BaseException:
            w.abort()
            raise
    if is_video:
        files.append("side_by_side.mp4")
    import pandas as pd

    from facedyn.face_summary import summarize, write_summary

    table = pd.read_csv(out / "faces.csv")
    maps = {Path(f).stem: np.load(out / f, mmap_mode="r") for f in files if f.endswith(".npy")}
    summary = summarize(table, maps)
    write_summary(summary, out / "summary.csv")
    files.insert(1, "summary.csv")
    if html:
        from facedyn.reports.video_page import write_video_page

        write_video_page(table, source, out / "view.html", maps=maps, summary=summary)
        files.append("view.html")
    return {"frames": frames, "faces": w.faces, "files": files, "summary": summary}


def _panel(r: FaceResult, size: int) -> np.ndarray:
    """Aligned face | first image-valued output, ``(size, 2·size, 3)`` uint8 (black without a face)."""
    panel = np.zeros((size, 2 * size, 3), np.uint8)
    if not r.success:
        return panel
    face = next(iter(r.faces.values()))
    maps = [v for v in r.outputs.values() if v.ndim == 3]
    panel[: face.shape[0], : face.shape[1]] = face
    if maps:
        vis = minmax_uint8(maps[0])
        panel[: vis.shape[0], size: size + vis.shape[1]] = vis
    return panel
