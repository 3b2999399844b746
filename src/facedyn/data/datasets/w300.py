"""300-W (Sagonas et al. 2013) in its usual release: images with 68-point ``.pts`` files beside them.

Layout::

    root/
      lfpw/trainset/image_0001.png  + image_0001.pts
      lfpw/testset/image_0001.png   + image_0001.pts
      helen/trainset/100032540_1.jpg + 100032540_1.pts
      helen/testset/...
      afw/1051618982_1.jpg + 1051618982_1.pts
      ibug/image_003_1.jpg + image_003_1.pts

``.pts`` files hold ``version: 1``, ``n_points: 68``, ``{``, 68 lines ``x y`` and ``}``. Their
coordinates are **1-based** (Matlab convention: the top-left pixel's centre is (1, 1)); the adapter
subtracts 1. The 68 points are the clip's landmarks (no detector runs).

Split (the common protocol of the landmark literature that FAb-Net's Table 1 follows): train = LFPW
and HELEN ``trainset`` and AFW (3148 images); test = LFPW and HELEN ``testset`` (the *common* subset,
554) and iBUG (the *challenging* subset, 135), 689 in all; each clip's ``meta.json`` records its
``subset`` (``train``, ``common``, ``challenging``). Images in other folders (the 300-W challenge's
``01_Indoor``/``02_Outdoor``) are not part of that protocol and are left out. Each image is its own
subject (300-W has no identities).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facedyn.data.datasets.base import ClipSource
from facedyn.data.datasets.folder import require_root, safe_id
from facedyn.data.datasets.stills import still_source
from facedyn.data.video import IMAGE_EXTS
from facedyn.errors import DatasetError, LabelFormatError

LAYOUT = ("300-W: lfpw/trainset/image_0001.png beside image_0001.pts (also lfpw/testset, helen/trainset, "
          "helen/testset, afw, ibug), .pts with n_points: 68 and 1-based x y lines")

#: subset folder (the last folder names on the image's path) -> (split, subset)
SUBSETS: dict[tuple[str, ...], tuple[str, str]] = {
    ("lfpw", "trainset"): ("train", "train"), ("helen", "trainset"): ("train", "train"), ("afw",): ("train", "train"),
    ("lfpw", "testset"): ("test", "common"), ("helen", "testset"): ("test", "common"),
    ("ibug",): ("test", "challenging"),
}


def read_pts(path: Path) -> np.ndarray:
    """The points of a ``.pts`` file, 0-based pixels ``(n, 2)`` float32.

    Raises:
        LabelFormatError: no ``n_points`` header, no ``{ ... }`` block, or another number of points.
    """
    lines = [ln.strip() for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    header = {}
    for ln in lines:
        if ln == "{":
            break
        key, _, val = ln.partition(":")
        header[key.strip().lower()] = val.strip()
    try:
        n = int(header["n_points"])
        body = lines[lines.index("{") + 1: lines.index("}")]
        pts = np.array([[float(v) for v in ln.split()[:2]] for ln in body], dtype=np.float32)
    except (KeyError, ValueError, IndexError):
        raise LabelFormatError(f"{path}: not a .pts file; expected 'version: 1', 'n_points: 68', '{{', one "
                               "'x y' line per point and '}'") from None
    if pts.shape != (n, 2):
        raise LabelFormatError(f"{path}: says n_points: {n} but holds {len(body)} points")
    return pts - 1.0


def _subset(rel: Path) -> tuple[str, str] | None:
    parts = tuple(p.lower() for p in rel.parts[:-1])
    for key, val in SUBSETS.items():
        if parts[-len(key):] == key:
            return val
    return None


def discover(root: Path) -> list[ClipSource]:
    """300-W images with their 68 points (layout and split in the module docstring).

    Raises:
        DatasetError: no image of a known subset has its ``.pts`` beside it.
        LabelFormatError: a malformed ``.pts`` file, or one without 68 points.
    """
    root = require_root(root)
    out = []
    for img in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")):
        rel = img.relative_to(root)
        sub = _subset(rel)
        pts_file = img.with_suffix(".pts")
        if sub is None or not pts_file.is_file():
            continue
        pts = read_pts(pts_file)
        if len(pts) != 68:
            raise LabelFormatError(f"{pts_file}: has {len(pts)} points; 300-W files hold 68")
        cid = safe_id(rel.with_suffix("").as_posix())
        out.append(still_source(cid, img, sub[0], landmarks68=pts[None], subset=sub[1]))
    if not out:
        raise DatasetError(f"{root}: no 300-W image with its .pts found; expected e.g. "
                           f"{root / 'lfpw' / 'trainset' / 'image_0001.png'} beside image_0001.pts ({LAYOUT})")
    return out
