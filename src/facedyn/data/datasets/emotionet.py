"""EmotioNet (Benitez-Quiroz et al. 2016): the manually AU-annotated images, as a list of image URLs + AU columns.

Layout::

    root/
      EmotioNet_*.csv | *.tsv | *.txt    the manual annotation (or pass ``annotations``): one row per image,
                                         first column the image URL (or file name), then one column per AU
      images/<name>.jpg                  the downloaded images, named by the last part of their URL
                                         (found anywhere under root by file name)

The annotation may have a header row naming the AUs (``AU1``, ``AU 1``, ``1``...); without one, the
columns are the AUs of ``aus`` in order (default: EmotioNet's 2017 challenge list 1, 2, 4, 5, 6, 9,
12, 17, 20, 25, 26, 43). Values: 1 present, 0 absent, **999 not coded** (-> NaN). Rows whose image
was not downloaded are left out. Labels ``AU01``, ``AU02``, ... (presence, 0/1).

EmotioNet publishes no identities and no labels for its test images: each image is its own subject
and the split is ``prepare``'s seeded share (FAb-Net's Table 3 split is not given in the seeds). The
face is found by the detector (EmotioNet has no boxes).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

from facedyn.data.datasets.base import ClipSource
from facedyn.data.datasets.folder import require_root, safe_id
from facedyn.data.datasets.stills import index_images, still_source
from facedyn.errors import DatasetError, LabelFormatError

LAYOUT = ("EmotioNet: an annotation file EmotioNet_*.csv (image URL, then one 0/1/999 column per AU) and the "
          "images under images/, named by their URL's last part")

AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26, 43)
#: Code for "not coded".
UNCODED = 999
_AU_HEADER = re.compile(r"^\s*(?:AU)?\s*(\d+)\s*$", re.IGNORECASE)
_IMAGE = re.compile(r"\.(jpe?g|png|bmp|webp)$", re.IGNORECASE)


def find_annotations(root: Path) -> Path | None:
    """The annotation file under ``root``: the first ``*emotionet*`` table in root, else None."""
    cands = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".txt")
                   and "emotionet" in p.name.lower())
    return cands[0] if cands else None


def _value(text: str, path: Path, row: int) -> float:
    try:
        v = float(text)
    except ValueError:
        raise LabelFormatError(f"{path}: row {row} has {text!r} in an AU column; expected 1, 0 or 999") from None
    if v == UNCODED:
        return float("nan")
    if v not in (0.0, 1.0):
        raise LabelFormatError(f"{path}: row {row} has {text!r} in an AU column; expected 1, 0 or 999")
    return v


def read_annotations(path: Path, aus: Sequence[int] = AUS) -> list[tuple[str, dict[str, float]]]:
    """``(image name, {AU%02d: 1/0/NaN})`` per row of an EmotioNet annotation file.

    Raises:
        LabelFormatError: a header naming no AU, a row of another width, or a value other than 0/1/999.
    """
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        sep = csv.Sniffer().sniff(text[:4096], delimiters=",\t;").delimiter
    except csv.Error:
        sep = "\t" if "\t" in text[:4096] else ","
    rows = [r for r in csv.reader(text.splitlines(), delimiter=sep) if r and any(c.strip() for c in r)]
    if not rows:
        raise LabelFormatError(f"{path}: empty; expected one row per image (URL, then AU columns)")
    first = rows[0][0].strip()
    if first.lower().startswith(("http:", "https:", "/")) or _IMAGE.search(first):
        cols = [f"AU{int(a):02d}" for a in aus]  # no header: the columns are ``aus`` in order
    else:
        header = [_AU_HEADER.match(c) for c in rows[0][1:]]
        if not header or any(h is None for h in header):
            raise LabelFormatError(f"{path}: header {', '.join(rows[0][:4])}...: expected the image URL column, "
                                   "then AU columns named AU1, AU2, ... (or no header)")
        cols = [f"AU{int(h.group(1)):02d}" for h in header if h is not None]
        rows = rows[1:]
    out = []
    for i, r in enumerate(rows, start=1):
        if len(r) - 1 != len(cols):
            raise LabelFormatError(f"{path}: row {i} has {len(r) - 1} AU values, expected {len(cols)} "
                                   f"({', '.join(cols)})")
        name = Path(urlparse(r[0].strip()).path).name
        out.append((name, {c: _value(v.strip(), path, i) for c, v in zip(cols, r[1:], strict=True)}))
    return out


def discover(root: Path, annotations: Path | None = None, aus: Sequence[int] = AUS) -> list[ClipSource]:
    """EmotioNet images with their AU presence labels (layout in the module docstring).

    Raises:
        DatasetError: no annotation file, or none of its images under ``root`` (the message names one).
    """
    root = require_root(root)
    ann = Path(annotations) if annotations is not None else find_annotations(root)
    if ann is None or not ann.is_file():
        raise DatasetError(f"{ann or root / 'EmotioNet_manual.csv'}: not found; expected EmotioNet's AU annotation "
                           f"file there ({LAYOUT})")
    images = index_images(root)
    out = []
    first_missing = None
    for name, labels in read_annotations(ann, aus):
        img = images.get(name)
        if img is None:
            first_missing = first_missing or root / "images" / name
            continue
        out.append(still_source(safe_id(Path(name).stem), img, None, labels))
    if not out:
        raise DatasetError(f"{first_missing or root / 'images'}: not found; expected the images listed in {ann} "
                           f"under {root / 'images'} ({LAYOUT})")
    return out
