"""EmotioNet (Benitez-Quiroz et al. 2016): the manually AU-annotated images, as a list of image URLs + AU columns.

Layout::

    root/
      EmotioNet_*.csv | *.tsv | *.txt | *.xlsx   the manual annotation (or pass ``annotations``): one row per
                                         image, the image URL (or file name), then one column per AU
      images/<name>.jpg                  the downloaded images, named by the last part of their URL
                                         (found anywhere under root by file name)

Every published form of the annotation is read, told apart by its content (no option needed):

* **the FACS release** (``EmotioNet_FACS_aws_2020_24600.csv`` or the same table as ``.xlsx``, every sheet
  read): a header row ``URL, URL orig, 'AU 1', 'AU 2', ...``: the AU columns are found by their header name
  (``AU1``, ``AU 1``, ``'AU 1'``, ``AU01``; a bare ``1`` after a ``URL`` column; quotes and spaces ignored),
  any set of them, in any order; the image URL is the column named ``URL`` (else the first column), and
  ``URL orig`` (or ``URL_orig``, ``orig_url``) names the image where the ``URL`` one was not downloaded; other
  columns are ignored (the clip's ``label_format`` names them). URL cells may be wrapped in single quotes, as
  in that release;
* **a header naming only AUs** after the URL column (``URL,AU1,AU2,...``);
* **no header**: rows start with the image URL (and, when the second cell is a URL too, the original URL);
  the remaining cells are the AUs of ``aus`` in order (default: EmotioNet's 2017 challenge list 1, 2, 4, 5, 6,
  9, 12, 17, 20, 25, 26, 43), or AU1..AU60 when there are 60 of them (the original tab-separated image lists,
  as public loaders read them).

Cells are separated by commas, tabs or semicolons (sniffed); a UTF-8 BOM and CRLF are fine. Values: 1 present,
0 absent, **999 not coded** (-> NaN; an empty cell too). AUs never coded in the file are left out. Rows whose
image was not downloaded are left out. Labels ``AU01``, ``AU02``, ... (presence, 0/1). A file in none of these
forms fails with one line naming the file, the line (for XLSX: the sheet and row) and what was expected.
XLSX is read with openpyxl; an old binary ``.xls`` is refused in one line (save it as .xlsx or CSV).

EmotioNet publishes no identities and no labels for its test images: each image is its own subject and the
split is ``prepare``'s seeded share (FAb-Net's Table 3 split is not given in the seeds). The face is found by
the detector (EmotioNet has no boxes).
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from facedyn.data.datasets.base import ClipSource
from facedyn.data.datasets.folder import require_root, safe_id
from facedyn.data.datasets.labels import read_label_text, sniff_delimiter
from facedyn.data.datasets.stills import index_images, still_source
from facedyn.errors import DatasetError, LabelFormatError

LAYOUT = ("EmotioNet: an annotation file EmotioNet_*.csv/.tsv/.xlsx (image URL, optionally URL orig, then one "
          "0/1/999 column per AU, e.g. the FACS release's URL, URL orig, 'AU 1', ...) and the images under "
          "images/, named by their URL's last part")

AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26, 43)
#: AUs of the original image lists' 60 value columns (no header).
WIDE_AUS: tuple[int, ...] = tuple(range(1, 61))
#: Code for "not coded".
UNCODED = 999
TEXT_EXTS = (".csv", ".tsv", ".txt")
_AU_HEADER = re.compile(r"^\s*(?:AU)?\s*[_-]?\s*(\d+)\s*$", re.IGNORECASE)
_IMAGE = re.compile(r"\.(jpe?g|png|bmp|webp|gif)$", re.IGNORECASE)
_URL_NAMES = ("url", "imageurl", "image", "imagename", "filename", "file", "name", "path")


def find_annotations(root: Path) -> Path | None:
    """The annotation file under ``root``: the first ``*emotionet*`` table in root (text before XLSX), else None."""
    cands = sorted((p for p in root.iterdir() if p.is_file() and "emotionet" in p.name.lower()
                    and p.suffix.lower() in (*TEXT_EXTS, ".xlsx", ".xls")),
                   key=lambda p: (p.suffix.lower() in (".xlsx", ".xls"), p.name))
    return cands[0] if cands else None


def _clean(cell: object) -> str:
    """A cell as text: spaces and wrapping quotes removed (the FACS release writes ``'AU 1'`` and ``'http://...'``);
    XLSX numbers as numbers, an empty cell as ``""``."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        cell = int(cell)
    text = str(cell).strip()
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1].strip()
    return text.strip("'\"").strip() if text.count("'") == 1 else text


def _is_image_ref(cell: str) -> bool:
    return cell.lower().startswith(("http:", "https:", "/", "www.")) or bool(_IMAGE.search(cell))


@dataclass
class _Block:
    """Rows of one table: a text file, or one XLSX sheet; ``where(n)`` names row ``n`` in messages."""

    path: Path
    sheet: str | None
    rows: list[tuple[int, list[str]]] = field(default_factory=list)

    def where(self, n: int) -> str:
        return f"{self.path}, line {n}" if self.sheet is None else f"{self.path}, sheet {self.sheet!r} row {n}"


def _blocks(path: Path) -> Iterator[_Block]:
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise LabelFormatError(f"{path}: an old binary Excel file; open it and save it as .xlsx or CSV")
    if suffix == ".xlsx":
        try:
            import openpyxl
            from openpyxl.utils.exceptions import InvalidFileException
        except ImportError:  # pragma: no cover - a pinned dependency
            raise LabelFormatError(f"{path}: reading .xlsx needs openpyxl (pip install openpyxl), or save the "
                                   "file as CSV") from None
        try:
            book = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as e:
            raise LabelFormatError(f"{path}: not a readable .xlsx workbook ({type(e).__name__}); expected "
                                   "EmotioNet's annotation table, or save it as CSV") from None
        try:
            for sheet in book.worksheets:
                block = _Block(path, sheet.title)
                for n, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                    cells = [_clean(c) for c in row]
                    if any(cells):
                        block.rows.append((n, cells))
                if block.rows:
                    yield block
        finally:
            book.close()
        return
    text = read_label_text(path, "EmotioNet's annotation table (CSV, tab-separated or .xlsx)")
    lines = text.splitlines()
    sep = sniff_delimiter([ln for ln in lines[:20] if ln.strip()], ",\t;")
    block = _Block(path, None)
    for n, cells in enumerate(csv.reader(lines, delimiter=sep), start=1):
        cleaned = [_clean(c) for c in cells]
        if any(cleaned):
            block.rows.append((n, cleaned))
    yield block


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", "", name.lower())


@dataclass
class _Layout:
    """Where a block's image name(s) and AUs are: column indices, and what it says about the form read."""

    url: int
    orig: int | None
    aus: dict[int, int]  # AU number -> column
    width: int
    form: str
    ignored: list[str] = field(default_factory=list)


def _layout(block: _Block, aus: Sequence[int]) -> tuple[_Layout, bool]:
    """The block's layout and whether its first row is a header."""
    n0, head = block.rows[0]
    named = _key(head[0]) in _URL_NAMES  # a header for sure: bare numbers after it are AU numbers
    au_cols = {i: int(m.group(1)) for i, c in enumerate(head)
               if (m := _AU_HEADER.match(c)) and (named or not c.strip().isdigit())}
    if au_cols and not _is_image_ref(head[0]):
        seen: dict[int, int] = {}
        for i, a in au_cols.items():
            if a in seen:
                raise LabelFormatError(f"{block.where(n0)}: AU {a} heads two columns ({head[seen[a]]!r} and "
                                       f"{head[i]!r}); expected one column per AU")
            seen[a] = i
        keys = [_key(c) for c in head]
        url = next((i for i, k in enumerate(keys) if k in _URL_NAMES and i not in au_cols), None)
        if url is None and 0 not in au_cols:
            url = 0
        if url is None:
            raise LabelFormatError(f"{block.where(n0)}: header {', '.join(head[:4])}...: no image URL column; expected "
                                   "the image URL column (URL), then AU columns named AU1, 'AU 2', ...")
        orig = next((i for i, k in enumerate(keys) if i not in (url, *au_cols) and "orig" in k
                     and ("url" in k or "image" in k)), None)
        ignored = [head[i] for i in range(len(head)) if i not in (url, orig, *au_cols) and head[i]]
        form = (f"header: image URL column {head[url]!r}" + (f", {head[orig]!r} where it is missing" if orig else "")
                + f", {len(au_cols)} AU columns by name")
        return _Layout(url, orig, {a: i for i, a in au_cols.items()}, len(head), form, ignored), True
    if not _is_image_ref(head[0]):
        raise LabelFormatError(f"{block.where(n0)}: starts with {', '.join(head[:4])}...; expected a header row (the "
                               "image URL column, then AU columns named AU1, 'AU 2', ...) or rows starting with the "
                               "image URL")
    n_url = 2 if len(head) > 1 and _is_image_ref(head[1]) else 1
    n_values = len(head) - n_url
    cols = tuple(int(a) for a in aus) if n_values == len(aus) else WIDE_AUS if n_values == len(WIDE_AUS) else None
    if cols is None:
        raise LabelFormatError(f"{block.where(n0)}: no header and {n_values} AU values after the URL; expected "
                               f"{len(aus)} (the AUs {', '.join(map(str, aus))}), {len(WIDE_AUS)} (AU1..AU60), or a "
                               "header row naming the AU columns")
    form = (f"no header: image URL{', original URL' if n_url == 2 else ''}, then AU"
            f"{cols[0]}..AU{cols[-1]} ({len(cols)} columns) in order")
    return _Layout(0, 1 if n_url == 2 else None, {a: n_url + k for k, a in enumerate(cols)}, len(head), form), False


def _value(text: str, where: str, au: int) -> float:
    if text == "":
        return float("nan")
    try:
        v = float(text)
    except ValueError:
        v = float("inf")
    if v == UNCODED:
        return float("nan")
    if v not in (0.0, 1.0):
        raise LabelFormatError(f"{where}: AU {au} has {text!r}; expected 1 (present), 0 (absent) or {UNCODED} "
                               "(not coded)")
    return v


@dataclass
class Annotations:
    """What :func:`read_annotations` read: per row ``(image name, original URL's image name or "", labels)``."""

    rows: list[tuple[str, str, dict[str, float]]]
    columns: list[str]
    form: str


def read_table(path: Path, aus: Sequence[int] = AUS) -> Annotations:
    """Read an EmotioNet annotation file in any of its published forms (module docstring).

    Raises:
        LabelFormatError: one line naming the file, the line (XLSX: sheet and row) and what was expected: a first
            row that is neither a header naming AU columns nor a row starting with the image URL, a row of another
            width, a value other than 0/1/999.
    """
    path = Path(path)
    out: list[tuple[str, str, list[float]]] = []
    order: list[int] = []
    forms: list[str] = []
    for block in _blocks(path):
        lay, header = _layout(block, aus)
        if not order:
            order = sorted(lay.aus)
        elif sorted(lay.aus) != order:
            raise LabelFormatError(f"{block.where(block.rows[0][0])}: AU columns {sorted(lay.aus)} differ from the "
                                   f"first sheet's {order}; expected the same AU columns on every sheet")
        form = lay.form + (f"; ignored columns {', '.join(lay.ignored)}" if lay.ignored else "")
        if form not in forms:
            forms.append(form)
        for n, cells in block.rows[1 if header else 0:]:
            while len(cells) > lay.width and cells[-1] == "":  # trailing empty cells
                cells = cells[:-1]
            if len(cells) != lay.width:
                raise LabelFormatError(f"{block.where(n)}: has {len(cells)} cells, the first row {lay.width}; "
                                       "expected the image URL and one value per AU column on every row")
            url = cells[lay.url]
            if not url:
                raise LabelFormatError(f"{block.where(n)}: no image URL; expected the image URL in column "
                                       f"{lay.url + 1}")
            orig = cells[lay.orig] if lay.orig is not None else ""
            name = Path(urlparse(url).path).name
            orig_name = Path(urlparse(orig).path).name if orig else ""
            out.append((name, orig_name, [_value(cells[lay.aus[a]], block.where(n), a) for a in order]))
    if not out:
        raise LabelFormatError(f"{path}: no rows; expected one row per image (URL, then AU columns)")
    values = np.array([v for _, _, v in out], dtype=np.float64).reshape(len(out), len(order))
    keep = [k for k in range(len(order)) if np.isfinite(values[:, k]).any()]
    cols = [f"AU{order[k]:02d}" for k in keep]
    rows = [(name, orig, {c: float(values[r, k]) for c, k in zip(cols, keep, strict=True)})
            for r, (name, orig, _) in enumerate(out)]
    suffix = "XLSX" if path.suffix.lower() == ".xlsx" else "text"
    never = [f"AU{order[k]:02d}" for k in range(len(order)) if k not in keep]
    return Annotations(rows, cols, f"{path.name} ({suffix}; {' / '.join(forms)}; 999 = not coded"
                       + (f"; never coded, left out: {', '.join(never)}" if never else "") + ")")


def read_annotations(path: Path, aus: Sequence[int] = AUS) -> list[tuple[str, dict[str, float]]]:
    """``(image name, {AU%02d: 1/0/NaN})`` per row of an EmotioNet annotation file (see :func:`read_table`)."""
    return [(name, labels) for name, _, labels in read_table(path, aus).rows]


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
    table = read_table(ann, aus)
    out = []
    first_missing = None
    for name, orig, labels in table.rows:
        img = images.get(name) or (images.get(orig) if orig else None)
        if img is None:
            first_missing = first_missing or root / "images" / name
            continue
        out.append(still_source(safe_id(Path(name).stem), img, None, labels, label_format=table.form))
    if not out:
        raise DatasetError(f"{first_missing or root / 'images'}: not found; expected the images listed in {ann} "
                           f"under {root / 'images'} ({LAYOUT})")
    return out
