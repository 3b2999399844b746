"""BP4D-Spontaneous: the release's AU occurrence codes and the FERA 2015 AU intensities.

Layout::

    root/
      F001_T1.mp4 | F001_T1.avi | ...      one video per sequence (subject F001..F023 / M001..M018,
                                           task T1..T8), anywhere under root (or video_dir), or
      F001/T1/0000.jpg ...                 image-sequence folders, named F001/T1 or F001_T1
      AUCoding/AU_OCC/F001_T1.csv          AU occurrence, one file per sequence (the BP4D release)
      AUCoding/AU_INT/AU06/F001_T1_AU06.csv   AU intensity, one file per sequence and AU
      ...                                  (any sub-folders; the AU folders are occ_dir / au_dir)

**Occurrence** (``occ_dir``, default the first of ``root/AUCoding/AU_OCC``, ``root/AU_OCC``,
``root/AUCoding`` that exists, else ``root``; searched recursively for ``<subject>_<task>.csv``):
as the release ships them, a header row whose cells are ``0,1,2,...,99`` (cell 0 heads the frame
column, cell k is AU k), then one row per coded frame ``frame,code,code,...`` with codes 0 = absent,
1 = present, 9 = not coded (LF or CRLF line ends). Only a segment of each task is coded (F001_T1:
frames 2440-2992). Columns ``AU01_occ, AU02_occ, ...`` (zero-padded like the intensity columns):
every AU with at least one 0/1 code in the file; 1.0 / 0.0, NaN for code 9 and for every frame
outside the coded rows. See :func:`read_occurrence`.

**Intensity** (``au_dir``, default the first of ``root/AUCoding/AU_INT``, ``root/AU_INT``,
``root/AU Intensity Codes3.0``, ``root/AU-Intensity-Codes3.0``, ``root/AUCoding`` that exists,
else ``root``; searched recursively for ``<subject>_<task>_AU<k>.csv``): rows ``frame,intensity``
(a header row is optional), intensity 0-5, **9 = unlabelled** (-> NaN). Columns ``AU06, AU10,
AU12, AU14, AU17`` (the five FERA 2015 intensity AUs; ``aus`` overrides); an AU without a file is
all NaN. When the dataset has intensity files, every labelled sequence has these columns.

**Frame alignment** (the BP4D user guide: the model data, 2-D/3-D landmarks and images, number
frames from 0; the AU coding and the preview videos from 1: "coded model frame N <-> AU coding
frame N+1"), decided per source and recorded in each clip's ``meta.json`` (``label_alignment``):

* a video: AU row ``f`` is video frame ``f`` counted from 1, i.e. decoded frame ``f - 1``;
* an image folder: AU row ``N + 1`` is the image whose file name holds the number ``N`` (BP4D's
  ``2440.jpg`` is AU row 2441); images whose names hold no increasing numbers are numbered by
  position from 0.

``one_based=False`` drops the offset for both (AU row ``f`` = decoded frame ``f`` = image ``f``).
Both label kinds follow the same rule. A sequence with neither file has no labels. ``discover``
says in one line (a warning, shown by ``facedyn prepare``) which labels it found and the rule used.

Splits (FERA 2015 BP4D partition: 21 training, 20 development subjects): training = the
odd-numbered subjects F001, F003, ..., F023, M001, M003, ..., M017; development (``"val"``) =
the even-numbered F002, ..., F022, M002, ..., M018. Source: the lists ``train_recs`` /
``devel_recs`` in T. Baltrušaitis's FERA 2015 code (github.com/TadasBaltrusaitis/FERA-2015,
``data extraction/find_BP4D.m``), whose sizes match the paper's 21/20. BP4D is 25 fps.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facedyn.data.datasets.base import ClipSource, LabelLoader
from facedyn.data.datasets.folder import iter_clips, normalize_splits, require_root
from facedyn.data.datasets.labels import frame_labels, image_numbers, read_label_text, value_files_labels
from facedyn.errors import LabelFormatError

LAYOUT = ("BP4D: sequence videos or image folders named like F001_T1 (or F001/T1), AU occurrence files "
          "AUCoding/AU_OCC/<subject>_<task>.csv (header 0,1,...,99; codes 0/1, 9 = not coded) and/or FERA 2015 "
          "AU intensity files <subject>_<task>_AU06.csv (frame,intensity; 9 = unlabelled) under AUCoding/AU_INT")

#: FERA 2015 intensity AUs.
AUS: tuple[int, ...] = (6, 10, 12, 14, 17)
#: Code for "not coded" in the intensity and occurrence files.
UNLABELLED = 9
#: Occurrence codes: absent, present (and :data:`UNLABELLED`).
OCC_CODES = (0, 1)
FPS = 25.0

FERA2015_TRAIN: tuple[str, ...] = (
    *(f"F{i:03d}" for i in range(1, 24, 2)),
    *(f"M{i:03d}" for i in range(1, 18, 2)),
)
FERA2015_DEVEL: tuple[str, ...] = (
    *(f"F{i:03d}" for i in range(2, 23, 2)),
    *(f"M{i:03d}" for i in range(2, 19, 2)),
)

_AU_DIRS = ("AUCoding/AU_INT", "AU_INT", "AU Intensity Codes3.0", "AU-Intensity-Codes3.0", "AUCoding")
_OCC_DIRS = ("AUCoding/AU_OCC", "AU_OCC", "AUCoding")
_SEQ = re.compile(r"(?:^|/)([FM]\d{3})[_/-]?(T\d+)(?=$|[_/.-])", re.IGNORECASE)
_AU_FILE = re.compile(r"^([FM]\d{3})_(T\d+)_AU(\d+)\.csv$", re.IGNORECASE)
_OCC_FILE = re.compile(r"^([FM]\d{3})_(T\d+)\.csv$", re.IGNORECASE)

#: How AU rows meet decoded frames (see the module docstring), by source kind and ``one_based``.
ALIGNMENT: dict[tuple[str, bool], str] = {
    ("video", True): "AU row f = video frame f counted from 1 (decoded frame f-1)",
    ("images", True): "AU row N+1 = image file numbered N (model data 0-based, AU coding 1-based: BP4D user guide)",
    ("video", False): "AU row f = decoded video frame f (one_based=False)",
    ("images", False): "AU row N = image file numbered N (one_based=False)",
}


def occ_column(au: int) -> str:
    """The occurrence label column of AU ``au``: ``AU01_occ``."""
    return f"AU{int(au):02d}_occ"


def fera2015_split(subject: str) -> str | None:
    """``"train"`` / ``"val"`` (FERA 2015 development) for a BP4D subject id, else None."""
    s = subject.upper()
    return "train" if s in FERA2015_TRAIN else "val" if s in FERA2015_DEVEL else None


def default_au_dir(root: Path) -> Path:
    """The AU intensity folder used when ``au_dir`` is not given (see the module docstring)."""
    return next((root / d for d in _AU_DIRS if (root / d).is_dir()), root)


def default_occ_dir(root: Path) -> Path:
    """The AU occurrence folder used when ``occ_dir`` is not given (see the module docstring)."""
    return next((root / d for d in _OCC_DIRS if (root / d).is_dir()), root)


def _cells(line: str) -> list[str]:
    cells = [c.strip().strip('"').strip() for c in line.split(",")]
    while len(cells) > 1 and cells[-1] == "":  # a trailing comma
        cells.pop()
    return cells


def _whole(cell: str) -> int | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return int(v) if np.isfinite(v) and v == round(v) else None


def read_occurrence(path: str | Path) -> pd.DataFrame:
    """Read a BP4D ``AU_OCC`` file (``F001_T1.csv``; format in the module docstring).

    Returns:
        ``frame`` (int64, the file's own frame numbers) plus ``AU%02d_occ`` float64 columns for every AU
        with at least one 0/1 code, in AU order: 1.0 present, 0.0 absent, NaN not coded (9) or empty.

    Raises:
        InputNotFoundError: no such file.
        LabelFormatError: one line naming the file, the line number and what was expected (a header row
            ``0,1,2,...,99``; rows of whole frame numbers and codes 0, 1 or 9, as many cells as the header;
            each frame once).
    """
    path = Path(path)
    text = read_label_text(path, "a BP4D AU_OCC table (header 0,1,...,99, then frame,code,... rows)")
    rows = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]
    if not rows:
        raise LabelFormatError(f"{path}: empty; expected a BP4D AU_OCC table (header 0,1,...,99, then "
                               "frame,code,... rows)")
    line0, head = rows[0]
    cells = _cells(head)
    aus = [_whole(c) for c in cells[1:]]
    first = _whole(cells[0])
    if (len(cells) < 2 or None in aus or (first is not None and first != 0)
            or any(b <= a for a, b in zip([0, *aus], aus, strict=False))):  # type: ignore[operator]
        raise LabelFormatError(f"{path}, line {line0}: expected the AU_OCC header row 0,1,2,...,99 (cell 0 heads "
                               f"the frame column, cell k is AU k), found {head.strip()[:60]!r}")
    width = len(cells)
    frames = np.empty(len(rows) - 1, np.int64)
    codes = np.full((len(rows) - 1, width - 1), np.nan)
    seen: dict[int, int] = {}
    for r, (line, text_row) in enumerate(rows[1:]):
        row = _cells(text_row)
        if len(row) != width:
            raise LabelFormatError(f"{path}, line {line}: has {len(row)} cells, the header {width}; expected "
                                   "frame,code,... with one code per AU of the header")
        f = _whole(row[0])
        if f is None:
            raise LabelFormatError(f"{path}, line {line}: frame {row[0]!r} is not a whole number; expected "
                                   "frame,code,... rows")
        if f in seen:
            raise LabelFormatError(f"{path}, line {line}: frame {f} appears again (first on line {seen[f]}); "
                                   "expected one row per frame")
        seen[f] = line
        frames[r] = f
        for k, c in enumerate(row[1:]):
            if c == "":
                continue
            v = _whole(c)
            if v not in (*OCC_CODES, UNLABELLED):
                raise LabelFormatError(f"{path}, line {line}: AU {aus[k]} has code {c!r}; expected 0 (absent), "
                                       f"1 (present) or {UNLABELLED} (not coded)")
            codes[r, k] = v
    codes[codes == UNLABELLED] = np.nan
    out = pd.DataFrame({"frame": frames})
    for k, au in enumerate(aus):
        if np.isfinite(codes[:, k]).any():
            out[occ_column(au)] = codes[:, k]  # type: ignore[arg-type]
    return out


def _frame_numbers(image_folder: Path | None, one_based: bool) -> np.ndarray | None:
    """The AU row of each decoded frame of an image folder (its file numbers, + 1 when ``one_based``); None for
    a video or a folder whose names hold no increasing numbers (then frames are numbered by position)."""
    if image_folder is None:
        return None
    numbers = image_numbers(image_folder)
    return None if numbers is None else numbers + (1 if one_based else 0)


def _labels(int_files: dict[int, Path] | None, aus: Sequence[int], occ_file: Path | None, one_based: bool,
            image_folder: Path | None) -> LabelLoader:
    def load(timestamps: np.ndarray) -> pd.DataFrame:
        n = len(timestamps)
        numbers = _frame_numbers(image_folder, one_based)
        if int_files is not None:
            out = value_files_labels({f"AU{a:02d}": int_files.get(a) for a in aus}, n, one_based=one_based,
                                     unlabelled=UNLABELLED, numbers=numbers)
        else:
            out = pd.DataFrame({"frame": np.arange(n, dtype=np.int64)})
        if occ_file is not None:
            occ = read_occurrence(occ_file)
            cols = [c for c in occ.columns if c != "frame"]
            aligned = frame_labels(occ, n, one_based=one_based, numbers=numbers, columns=cols, source=occ_file)
            for c in cols:
                out[c] = aligned[c].to_numpy()
        return out

    return load


def _index(root: Path, pattern: re.Pattern[str]) -> dict[str, list[tuple[re.Match[str], Path]]]:
    found: dict[str, list[tuple[re.Match[str], Path]]] = {}
    if root.is_dir():
        for p in sorted(root.rglob("*.[cC][sS][vV]")):
            m = pattern.match(p.name)
            if m and p.is_file():
                found.setdefault(f"{m.group(1).upper()}_{m.group(2).upper()}", []).append((m, p))
    return found


def discover(
    root: Path,
    au_dir: Path | None = None,
    video_dir: Path | None = None,
    aus: Sequence[int] = AUS,
    one_based: bool = True,
    splits: dict[str, str] | str | Path | None = None,
    fps: float = FPS,
    occ_dir: Path | None = None,
) -> list[ClipSource]:
    """BP4D sequences with their AU occurrence and intensity labels.

    Args:
        root: dataset root.
        au_dir: folder searched (recursively) for ``F001_T1_AU06.csv`` intensity files; default
            :func:`default_au_dir`.
        video_dir: folder searched for sequence videos / image folders (default ``root``).
        aus: intensity AU numbers to label (columns ``AU%02d``).
        one_based: the AU files number frames from 1 and the model data (videos' decoded frames, image file
            numbers) from 0, as the BP4D user guide states; False: both from the same origin.
        splits: ``{subject: split}`` replacing the FERA 2015 partition for those subjects.
        fps: frame rate assumed for image-sequence folders.
        occ_dir: folder searched (recursively) for ``F001_T1.csv`` occurrence files; default
            :func:`default_occ_dir`.

    Returns:
        ClipSources (clip id ``F001_T1``, subject ``F001``) sorted by clip id; a labelled one records its frame
        alignment in ``extra["label_alignment"]``.
    """
    root = require_root(root)
    au_root = require_root(au_dir) if au_dir is not None else default_au_dir(root)
    occ_root = require_root(occ_dir) if occ_dir is not None else default_occ_dir(root)
    vid_root = require_root(video_dir) if video_dir is not None else root
    override = normalize_splits(splits)
    aus = tuple(int(a) for a in aus)

    au_files = {seq: {int(m.group(3)): p for m, p in reversed(hits)} for seq, hits in _index(au_root, _AU_FILE).items()}
    occ_files = {seq: hits[0][1] for seq, hits in _index(occ_root, _OCC_FILE).items()}

    seqs: dict[str, tuple[Path, bool]] = {}
    skip = [d for d in {au_root, occ_root} if d != vid_root]
    for path, is_folder in iter_clips(vid_root, skip=skip):
        rel = path.relative_to(vid_root)
        m = _SEQ.search((rel if is_folder else rel.with_suffix("")).as_posix())
        if not m:
            continue
        seq = f"{m.group(1).upper()}_{m.group(2).upper()}"
        if seq not in seqs or (seqs[seq][1] and not is_folder):  # prefer a video over images
            seqs[seq] = (path, is_folder)

    out = []
    for seq, (path, is_folder) in sorted(seqs.items()):
        subject = seq.split("_")[0]
        files = {a: f for a, f in au_files.get(seq, {}).items() if a in aus}
        int_files = files if files or (au_files and seq in occ_files) else None
        occ = occ_files.get(seq)
        labelled = int_files is not None or occ is not None
        kind = "images" if is_folder else "video"
        out.append(ClipSource(
            clip_id=seq,
            video=path,
            subject=subject,
            labels=_labels(int_files, aus, occ, one_based, path if is_folder else None) if labelled else None,
            split=override.get(subject, fera2015_split(subject)),
            fps=float(fps) if is_folder else None,
            extra={"label_alignment": ALIGNMENT[(kind, bool(one_based))]} if labelled else {},
        ))
    if out:
        warnings.warn(_summary(out, au_files, occ_files, one_based), stacklevel=2)
    return out


def _summary(sources: list[ClipSource], au_files: dict[str, dict[int, Path]], occ_files: dict[str, Path],
             one_based: bool) -> str:
    """One line: which BP4D labels were found for how many sequences, and the frame alignment of each kind."""
    n = len(sources)
    n_int = sum(s.clip_id in au_files for s in sources)
    n_occ = sum(s.clip_id in occ_files for s in sources)
    kinds = sorted({"images" if s.video.is_dir() else "video" for s in sources if s.labels is not None}, reverse=True)
    rules = "; ".join(f"{'videos' if k == 'video' else 'image folders'}: {ALIGNMENT[(k, bool(one_based))]}"
                      for k in kinds)
    unlabelled = n - sum(s.labels is not None for s in sources)
    return (f"BP4D labels: AU occurrence (AU_OCC) for {n_occ} of {n} sequence(s), AU intensity (AU_INT) for {n_int}"
            + (f", none for {unlabelled}" if unlabelled else "") + (f"; frame alignment: {rules}" if rules else ""))
