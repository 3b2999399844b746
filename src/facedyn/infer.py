"""``facedyn infer``: DRs of the faces in an image or a video, written as PNG, ``dr.npy`` and an mp4."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from facedyn.api import load
from facedyn.atomic import atomic_path
from facedyn.data import video as video_io
from facedyn.data.store import atomic_save_npy, atomic_write_text, ensure_writable_dir
from facedyn.errors import InputNotFoundError, NoFaceError
from facedyn.reports.plots import minmax_uint8


def _save_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    with atomic_path(path) as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def infer_file(run: str | Path, source: str | Path, out: str | Path, device: str = "auto",
               console: Any = None) -> dict[str, Any]:
    """Write the DR of each face of ``source`` (image or video) into ``out``.

    Files: ``dr.npy`` float32 ``(N, 3, H, W)`` (NaN for frames without a face), ``faces.csv``
    (frame, timestamp, success), ``png/dr_XXXXX.png`` (per-image min–max display), and for videos
    ``side_by_side.mp4`` (aligned face | DR). Returns counts and file names.
    """
    from facedyn.data.faces import FaceLandmarker, align_face

    source = Path(source)
    if not source.exists():
        raise InputNotFoundError(f"{source}: no such image or video")
    model = load(run, device=device)
    out = ensure_writable_dir(Path(out))
    lmk = FaceLandmarker()
    is_image = source.is_file() and source.suffix.lower() in video_io.IMAGE_EXTS
    frames_iter = [(video_io.read_image(source), 0.0)] if is_image else video_io.iter_frames(source)
    drs, rows, panels = [], [], []
    size = model.size
    (out / "png").mkdir(exist_ok=True)
    for i, (frame, t) in enumerate(frames_iter):
        lms = lmk(frame)
        if lms is None:
            drs.append(np.full((3, size, size), np.nan, np.float32))
            rows.append((i, t, 0))
            panels.append(np.zeros((size, 2 * size, 3), np.uint8))
            continue
        face = align_face(frame, lms, size=size, mask=model.mask).image
        d = model(face[None], aligned=True)[0].numpy()
        drs.append(d.astype(np.float32))
        rows.append((i, t, 1))
        vis = minmax_uint8(d)
        _save_png(out / "png" / f"dr_{i:05d}.png", vis)
        panels.append(np.concatenate([face, vis], axis=1))
    if not any(r[2] for r in rows):
        raise NoFaceError(f"{source}: no face found in any frame; give footage with a visible, roughly frontal face")
    atomic_save_npy(out / "dr.npy", np.stack(drs))
    table = "".join(f"{i},{t:.4f},{s}\n" for i, t, s in rows)
    atomic_write_text(out / "faces.csv", "frame,timestamp,success\n" + table)
    files = ["dr.npy", "faces.csv", "png/"]
    if not is_image:
        fps = video_io.probe(source).fps
        video_io.write_video(out / "side_by_side.mp4", panels, fps=fps)
        files.append("side_by_side.mp4")
    return {"frames": len(rows), "faces": int(sum(r[2] for r in rows)), "files": files}
