"""MAFL (Zhang et al., TCDCN): CelebA images with five landmarks and the MAFL train/test lists.

Layout (CelebA as distributed, plus the MAFL lists)::

    root/
      Img/img_align_celeba/000001.jpg ...          (or root/img_align_celeba/)
      Anno/list_landmarks_align_celeba.txt         (or root/list_landmarks_align_celeba.txt)
      MAFL/training.txt                            one image name per line (19 000)
      MAFL/testing.txt                             one image name per line (1 000)

``aligned=False`` reads the in-the-wild images instead: ``img_celeba/`` with
``list_landmarks_celeba.txt``. The landmark file is CelebA's: a first line with the number of
images, a header line ``lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x
leftmouth_y rightmouth_x rightmouth_y``, then ``000001.jpg 69 109 106 113 77 142 73 152 108 154``
(0-based pixels; ``lefteye`` is the eye on the image's left).

Each image of the MAFL lists is one clip (``training.txt`` -> train, ``testing.txt`` -> test; images
in neither are left out). The five points are its labels ``point0_x .. point4_y`` (source pixels,
see :mod:`facedyn.data.datasets.stills`); the crop is placed by the 68-point template fitted to them.
MAFL has no identity labels here: each image is its own subject. The probes' error is the mean
point distance over the inter-ocular distance (the eye centres, points 0 and 1), as in FAb-Net's Table 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facedyn.data.datasets.base import ClipSource
from facedyn.data.datasets.folder import require_root, safe_id
from facedyn.data.datasets.stills import first_file, point_columns, require_file, still_source, template_on_points
from facedyn.errors import DatasetError, LabelFormatError

LAYOUT = ("MAFL: CelebA's Img/img_align_celeba/000001.jpg and Anno/list_landmarks_align_celeba.txt, plus "
          "MAFL/training.txt and MAFL/testing.txt (one image name per line)")


def read_celeba_landmarks(path: Path) -> dict[str, np.ndarray]:
    """CelebA's landmark file: ``{image name: (5, 2) float32}``.

    Raises:
        LabelFormatError: a row without a name and ten numbers.
    """
    out: dict[str, np.ndarray] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
        parts = line.split()
        if i < 2 and (len(parts) != 11 or not parts[1].lstrip("-").isdigit()):
            continue  # the count line and the header line
        if not parts:
            continue
        try:
            vals = np.array([float(v) for v in parts[1:11]], dtype=np.float32)
        except ValueError:
            vals = np.zeros(0, np.float32)
        if len(parts) != 11 or vals.size != 10:
            raise LabelFormatError(f"{path}: line {i + 1} is {line.strip()[:60]!r}; expected an image name and "
                                   "ten numbers (lefteye_x lefteye_y ... rightmouth_y)")
        out[parts[0]] = vals.reshape(5, 2)
    return out


def _names(path: Path) -> list[str]:
    return [ln.split()[0] for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]


def discover(root: Path, aligned: bool = True) -> list[ClipSource]:
    """MAFL images of the two lists with their five points (layout in the module docstring).

    Raises:
        DatasetError: a list, the landmark file or a listed image is missing (the message names it).
    """
    root = require_root(root)
    img_name, lm_name = (("img_align_celeba", "list_landmarks_align_celeba.txt") if aligned
                         else ("img_celeba", "list_landmarks_celeba.txt"))
    lm_file = first_file(root, [f"Anno/{lm_name}", lm_name])
    if lm_file is None:
        require_file(root / "Anno" / lm_name, "CelebA's five-point landmark file", LAYOUT)
    img_dir = next((d for d in (root / "Img" / img_name, root / img_name) if d.is_dir()), None)
    if img_dir is None:
        raise DatasetError(f"{root / 'Img' / img_name}: not found; expected the CelebA images there ({LAYOUT})")
    lists = {split: require_file(root / "MAFL" / f"{name}.txt", f"the MAFL {name} list", LAYOUT)
             for split, name in (("train", "training"), ("test", "testing"))}
    assert lm_file is not None
    points = read_celeba_landmarks(lm_file)
    out = []
    for split, path in lists.items():
        for name in _names(path):
            img = img_dir / name
            if not img.is_file():
                raise DatasetError(f"{img}: listed in {path} but not found; expected every MAFL image in {img_dir}")
            if name not in points:
                raise LabelFormatError(f"{lm_file}: has no row for {name} (listed in {path})")
            pts = points[name]
            labels = dict(zip(point_columns(5), pts.reshape(-1).tolist(), strict=True))
            out.append(still_source(safe_id(Path(name).stem), img, split, labels, template_on_points(pts)))
    return out
