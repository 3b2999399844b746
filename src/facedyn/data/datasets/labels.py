"""Reading label files and aligning them to decoded video frames (shared by every adapter).

Two kinds of labels exist:

* **Frame-indexed** tables (BP4D / FERA 2015 AU intensities, DISFA, the generic folder's CSV):
  a ``frame`` column plus value columns. :func:`read_frame_csv` reads and validates them and
  :func:`frame_labels` maps them onto the ``N`` decoded frames by frame number (0- or 1-based,
  or by the number written in each image file's name).
* **Time-indexed** traces (SEMAINE, RECOLA, AVEC ``.arff`` gold standards): a time column in
  seconds plus value columns. :func:`read_trace` / :func:`read_arff_trace` read them and
  :func:`resample_trace` / :func:`trace_labels` resample them to the frame timestamps by linear
  interpolation, NaN outside the trace's time range.

Everything returned to the clip store is a DataFrame with ``frame`` = ``0..N-1`` (int64) and one
float64 column per label, NaN where unlabelled.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from facedyn.errors import InputNotFoundError, LabelFormatError

#: Names a trace's time column may have (compared case-insensitively), in order of preference.
TIME_COLUMNS: tuple[str, ...] = ("frameTime", "time", "timestamp", "frame_time", "time_s", "seconds")


# --------------------------------------------------------------------------------------------
# Small table helpers

_SEP_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", " ": "spaces"}


def sniff_delimiter(lines: Sequence[str], delimiters: str = ",;\t ") -> str:
    """The delimiter of a few table lines (one of ``delimiters``; a comma when it cannot tell)."""
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=delimiters).delimiter
    except csv.Error:
        return next((d for d in delimiters if d != " " and d in "".join(lines)), ",")


def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number from 1, text)`` of the non-blank lines of a text file (UTF-8, a BOM and CRLF allowed)."""
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip()]


def peek_header(path: str | Path) -> list[str]:
    """The cells of a delimited text file's header row, stripped; ``[]`` when it has none (its first field is a
    number), is an ARFF file, or cannot be read. Reads one line: for saying what a file holds before loading it."""
    path = Path(path)
    if path.suffix.lower() == ".arff":
        return []
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            first = next((ln for ln in f if ln.strip()), "")
    except OSError:
        return []
    sep = sniff_delimiter([first])
    cells = [c.strip().strip("'\"").strip() for c in (first.split() if sep == " " else first.split(sep))]
    try:
        float(cells[0])
        return []
    except (ValueError, IndexError):
        return [c for c in cells if c]


def _read_text_table(path: Path, names: Sequence[str] | None) -> tuple[pd.DataFrame, bool]:
    """Read a delimited text table; returns it and whether the file had a header row.

    The delimiter (comma, semicolon, tab or spaces) is sniffed from the first lines. A file
    whose first field parses as a number has no header: its columns get ``names`` (which must
    match their count) or ``col0, col1, ...``.
    """
    if not path.is_file():
        raise InputNotFoundError(f"{path}: label file not found; check the dataset layout")
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            head = f.read(8192)
    except OSError as e:
        raise LabelFormatError(
            f"{path}: cannot be read ({e.strerror}); check the file's permissions"
        ) from None
    lines = [ln for ln in head.splitlines() if ln.strip()]
    if not lines:
        raise LabelFormatError(f"{path}: label file is empty; expected a table with a header or numeric rows")
    sep = sniff_delimiter(lines[:20], ",;\t ")
    pattern = r"\s+" if sep == " " else re.escape(sep)
    first_field = re.split(pattern, lines[0].strip())[0].strip().strip("'\"")
    try:
        float(first_field)
        has_header = False
    except ValueError:
        has_header = True
    numbered = _numbered_lines(path)

    def fields(text: str) -> int:  # quoted cells may hold the separator
        return len(text.split()) if sep == " " else len(next(csv.reader([text.strip()], delimiter=sep)))

    width = fields(numbered[0][1]) if numbered else 0
    for line, text in numbered[1:]:
        cells = fields(text)
        if cells != width:
            raise LabelFormatError(
                f"{path}, line {line}: has {cells} fields, line {numbered[0][0]} has {width}; expected every line "
                f"to have {width} fields separated by {_SEP_NAMES.get(sep, repr(sep))}"
            )
    try:
        df = pd.read_csv(path, sep=r"\s+" if sep == " " else sep, header=0 if has_header else None,
                         skipinitialspace=True, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise LabelFormatError(
            f"{path}: not a readable table ({type(e).__name__}); expected delimited text"
        ) from None
    rows = [ln for ln, _ in numbered[1 if has_header else 0:]]
    df.attrs["lines"] = rows if len(rows) == len(df) else [i + (2 if has_header else 1) for i in range(len(df))]
    if not has_header:
        if names is not None:
            if df.shape[1] != len(names):
                raise LabelFormatError(
                    f"{path}: has {df.shape[1]} columns but {len(names)} were expected "
                    f"({', '.join(names)}); check the file format"
                )
            df.columns = list(names)
        else:
            df.columns = [f"col{i}" for i in range(df.shape[1])]
    df.columns = [str(c).strip() for c in df.columns]
    return df, has_header


def read_frame_csv(
    path: str | Path,
    required: Sequence[str] = ("frame",),
    names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a frame-indexed label table and check its columns.

    Args:
        path: CSV (or other delimited text) file. Column names are stripped of spaces.
        required: columns that must be present (``frame`` always means the frame number).
        names: column names to use when the file has no header row (its first field is a
            number), e.g. ``("frame", "intensity")`` for DISFA / BP4D files.

    Returns:
        The table, with ``frame`` as int64 when it is required.

    Raises:
        LabelFormatError: missing columns (the message names the file, the missing and the
            expected columns), non-integer frame numbers, or an unreadable file.
        InputNotFoundError: the file does not exist.
    """
    path = Path(path)
    df, _ = _read_text_table(path, names)
    missing = [c for c in required if c not in df.columns]
    if missing:
        found = ", ".join(map(str, df.columns[:12])) + (", ..." if df.shape[1] > 12 else "")
        raise LabelFormatError(
            f"{path}: missing column(s) {', '.join(missing)}; expected columns "
            f"{', '.join(required)} (plus label columns), found {found or 'none'}"
        )
    if "frame" in required:
        df["frame"] = _integer_frames(df["frame"], path)
    return df


def _integer_frames(col: pd.Series, source: object) -> pd.Series:
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        i = int(np.argmax(bad))
        raise LabelFormatError(
            f"{source}: column 'frame' must hold whole frame numbers, row {i + 1} has {col.iloc[i]!r}"
        )
    return pd.Series(values.astype(np.int64), index=col.index, name=col.name)


def _numeric_columns(df: pd.DataFrame, columns: Iterable[str], source: object) -> pd.DataFrame:
    out = {}
    for c in columns:
        try:
            out[c] = pd.to_numeric(df[c], errors="raise").astype(np.float64)
        except (ValueError, TypeError):
            raise LabelFormatError(
                f"{source}: label column '{c}' is not numeric; labels must be numbers "
                "(empty or NaN where unlabelled)"
            ) from None
    return pd.DataFrame(out, index=df.index)


# --------------------------------------------------------------------------------------------
# Frame-indexed labels


def image_numbers(folder: str | Path) -> np.ndarray | None:
    """Frame numbers written in the image names of an image-sequence folder.

    ``F001/T1/2440.jpg`` -> 2440 (the last run of digits in each name), in the order
    :func:`facedyn.data.video.list_images` decodes them. None when any name has no number or
    the numbers do not increase strictly (then frames are numbered by position instead).
    """
    from facedyn.data.video import list_images

    nums = []
    for p in list_images(Path(folder)):
        m = re.findall(r"\d+", p.stem)
        if not m:
            return None
        nums.append(int(m[-1]))
    arr = np.asarray(nums, dtype=np.int64)
    if arr.size == 0 or (arr.size > 1 and np.any(np.diff(arr) <= 0)):
        return None
    return arr


def frame_labels(
    df: pd.DataFrame,
    n: int,
    one_based: bool = False,
    unlabelled: float | Sequence[float] | None = None,
    *,
    numbers: np.ndarray | None = None,
    columns: Sequence[str] | None = None,
    source: object = "labels",
) -> pd.DataFrame:
    """Align a frame-indexed label table to ``n`` decoded frames.

    Decoded frame ``i`` (0-based) takes the row whose ``frame`` equals ``numbers[i]`` when
    ``numbers`` is given (e.g. :func:`image_numbers`), else ``i + 1`` when ``one_based``, else
    ``i``. Frames without a row, and values equal to ``unlabelled`` (a code such as BP4D's 9),
    become NaN; rows for frames beyond the video are ignored.

    Args:
        df: table with an integer ``frame`` column plus label columns.
        n: number of decoded frames.
        columns: label columns to keep (default: every column but ``frame``).
        source: name used in error messages (the file).

    Returns:
        DataFrame of ``n`` rows: ``frame`` int64 ``0..n-1`` and float64 label columns.

    Raises:
        LabelFormatError: repeated frame numbers or non-numeric label values.
    """
    if "frame" not in df.columns:
        raise LabelFormatError(f"{source}: missing column frame; expected columns frame plus label columns")
    cols = [c for c in (columns if columns is not None else df.columns) if c != "frame"]
    frames = _integer_frames(df["frame"], source)
    dup = frames.duplicated()
    if dup.any():
        raise LabelFormatError(
            f"{source}: frame number {int(frames[dup].iloc[0])} appears more than once; "
            "give one row per frame"
        )
    values = _numeric_columns(df, cols, source)
    if unlabelled is not None:
        codes = [unlabelled] if np.isscalar(unlabelled) else list(unlabelled)  # type: ignore[arg-type]
        values = values.mask(values.isin(codes))
    values.index = frames.to_numpy()
    if numbers is not None:
        want = np.asarray(numbers, dtype=np.int64)[:n]
        if want.size < n:  # fewer numbered images than decoded frames: number the rest on
            start = want[-1] + 1 if want.size else 0
            want = np.concatenate([want, np.arange(start, start + n - want.size)])
    else:
        want = np.arange(n, dtype=np.int64) + (1 if one_based else 0)
    out = values.reindex(want)
    out.insert(0, "frame", np.arange(n, dtype=np.int64))
    return out.reset_index(drop=True)


#: The two line formats of a one-label file (:func:`read_value_file`).
VALUE_FORMATS = {2: "frame,value lines", 1: "one value per line (line k = frame k, from 1)"}
_CELL_SPLIT = re.compile(r"\s*[,;\t]\s*|\s+")


def _number(cell: str) -> float | None:
    try:
        v = float(cell)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def read_label_text(path: Path, expected: str) -> str:
    """The text of a label file (a UTF-8 BOM dropped); one-line errors for a missing or unreadable file, saying what
    was ``expected`` ("lines frame,value or one value per line")."""
    if not path.is_file():
        raise InputNotFoundError(f"{path}: label file not found; check the dataset layout")
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise LabelFormatError(f"{path}: cannot be read as text ({type(e).__name__}); expected {expected}") from None


def read_value_file(path: str | Path) -> pd.DataFrame:
    """Read a one-label file, as DISFA (``SN001_au12.txt``) and BP4D / FERA 2015 (``F001_T1_AU06.csv``) ship AUs.

    Two line formats, told apart by the first data line: ``frame,value`` (comma, semicolon, tab or spaces between;
    a header row such as ``frame,intensity`` is allowed), or the value alone, line ``k`` of the values being frame
    ``k`` (from 1, like the other format's numbers). A UTF-8 BOM, CRLF line ends, blank lines at the end and spaces
    around cells are accepted.

    Returns:
        ``frame`` (int64) and ``value`` (float64); ``attrs["format"]`` names the line format read.

    Raises:
        InputNotFoundError: no such file.
        LabelFormatError: one line naming the file, the line number and what was expected (every line in the
            format of the first; whole frame numbers; numbers as values).
    """
    path = Path(path)
    text = read_label_text(path, "lines frame,value or one value per line")
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    rows = [(i + 1, [c for c in _CELL_SPLIT.split(ln.strip())]) for i, ln in enumerate(lines) if ln.strip()]
    if not rows:
        raise LabelFormatError(f"{path}: empty; expected lines frame,value (e.g. 1,0) or one value per line")
    line0, head = rows[0]
    if _number(head[0]) is None:  # a header row
        if len(head) != 2:
            raise LabelFormatError(f"{path}, line {line0}: header {', '.join(head)}; expected two columns "
                                   "frame,value (e.g. frame,intensity) or no header")
        rows = rows[1:]
        if not rows:
            raise LabelFormatError(f"{path}: has a header and no data line; expected frame,value lines")
    width = len(rows[0][1])
    if width not in VALUE_FORMATS:
        raise LabelFormatError(f"{path}, line {rows[0][0]}: has {width} values; expected frame,value (e.g. 1,0) "
                               "or one value per line")
    if width == 1:  # line k of the values is frame k: a blank line between them would shift every frame after it
        first = rows[0][0]
        gap = next((ln for k, (ln, _) in enumerate(rows) if ln != first + k), None)
        if gap is not None:
            raise LabelFormatError(f"{path}, line {gap - 1}: empty; expected one value per line without gaps "
                                   "(line k = frame k)")
    frames = np.empty(len(rows), np.int64)
    values = np.empty(len(rows), np.float64)
    for k, (ln, cells) in enumerate(rows):
        if len(cells) != width:
            raise LabelFormatError(f"{path}, line {ln}: has {len(cells)} values, line {rows[0][0]} has {width}; "
                                   f"expected {VALUE_FORMATS[width]} on every line")
        v = _number(cells[-1])
        if v is None:
            raise LabelFormatError(f"{path}, line {ln}: value {cells[-1]!r} is not a number; expected "
                                   f"{VALUE_FORMATS[width]}")
        values[k] = v
        if width == 2:
            f = _number(cells[0])
            if f is None or f != round(f):
                raise LabelFormatError(f"{path}, line {ln}: frame {cells[0]!r} is not a whole number; expected "
                                       "frame,value lines")
            frames[k] = int(f)
        else:
            frames[k] = k + 1
    out = pd.DataFrame({"frame": frames, "value": values})
    out.attrs["format"] = VALUE_FORMATS[width]
    return out


def peek_value_format(path: str | Path) -> str | None:
    """The line format of a one-label file (:data:`VALUE_FORMATS`) from its first data line, without reading the
    rest; None when that line is neither (or the file cannot be read): :func:`read_value_file` then says why."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            for ln in f:
                cells = _CELL_SPLIT.split(ln.strip()) if ln.strip() else []
                if cells and _number(cells[0]) is not None:
                    return VALUE_FORMATS.get(len(cells))
    except OSError:
        return None
    return None


def value_files_labels(
    files: Mapping[str, Path | None],
    n: int,
    one_based: bool = False,
    unlabelled: float | Sequence[float] | None = None,
    numbers: np.ndarray | None = None,
) -> pd.DataFrame:
    """Labels from one file per label (``frame,value`` lines, header optional, or one value per line: see
    :func:`read_value_file`), as BP4D/FERA 2015 and DISFA ship AUs.

    Args:
        files: ``{column name: file}``; a None file gives an all-NaN column.
        n, one_based, unlabelled, numbers: as in :func:`frame_labels`.

    Returns:
        DataFrame of ``n`` rows: ``frame`` int64 ``0..n-1`` plus one float64 column per key.
    """
    out = pd.DataFrame({"frame": np.arange(n, dtype=np.int64)})
    for col, path in files.items():
        if path is None:
            out[col] = np.nan
            continue
        df = read_value_file(path)
        out[col] = frame_labels(df, n, one_based=one_based, unlabelled=unlabelled, numbers=numbers,
                                columns=["value"], source=path)["value"].to_numpy()
    return out


# --------------------------------------------------------------------------------------------
# Time-indexed traces


def _split_time(df: pd.DataFrame, path: Path, time_columns: Sequence[str]) -> pd.DataFrame:
    """``time`` plus the numeric columns of ``df``; columns with no number at all (instance names) are dropped.

    A time or value column with numbers and some other text is refused, naming the first such line (from
    ``df.attrs["lines"]`` where the reader recorded the rows' line numbers): a decimal comma or a typo never
    drops a column silently."""
    lower = {str(c).lower(): c for c in df.columns}
    tcol = next((lower[t.lower()] for t in time_columns if t.lower() in lower), None)
    where = f"{path}, line 1" if df.attrs.get("lines") else str(path)
    if tcol is None:
        raise LabelFormatError(
            f"{where}: no time column; expected one of {', '.join(time_columns)} (seconds) plus value "
            f"columns, found {', '.join(map(str, df.columns[:12]))}"
        )
    lines = df.attrs.get("lines") or [None] * len(df)

    def first_text(c: object, num: pd.Series) -> str | None:
        bad = num.isna() & df[c].notna()
        if not bad.any():
            return None
        i = int(np.argmax(bad.to_numpy()))
        at = f", line {lines[i]}" if lines[i] is not None else f", row {i + 1}"
        return f"{path}{at}: {df[c].iloc[i]!r} in column '{c}'"

    times = pd.to_numeric(df[tcol], errors="coerce").astype(np.float64)
    if (bad := first_text(tcol, times)) is not None:
        raise LabelFormatError(f"{bad} is not a number; expected the time in seconds (a decimal point, not a comma)")
    if times.isna().all():
        raise LabelFormatError(f"{path}: time column '{tcol}' holds no numbers; expected seconds")
    out = pd.DataFrame({"time": times.to_numpy()})
    for c in df.columns:
        if c == tcol or (str(c).startswith("Unnamed:") and df[c].isna().all()):  # a trailing separator's cells
            continue
        num = pd.to_numeric(df[c], errors="coerce")
        if num.notna().any() and (bad := first_text(c, num)) is not None:
            raise LabelFormatError(f"{bad} is not a number; expected a number (a decimal point, not a comma) "
                                   "or an empty cell in every value column")
        if num.notna().sum() == df[c].notna().sum():  # every non-missing entry is a number
            out[str(c)] = num.astype(np.float64).to_numpy()
    if out.shape[1] == 1:
        raise LabelFormatError(f"{where}: has a time column '{tcol}' but no numeric value column; "
                               "expected time plus one column per label")
    return out


def read_arff_trace(path: str | Path, time_columns: Sequence[str] = TIME_COLUMNS) -> pd.DataFrame:
    """Read a time-indexed trace from an ARFF file (liac-arff).

    Handles AVEC-style gold standards such as RECOLA's::

        @attribute Instance_name string
        @attribute frameTime numeric
        @attribute GoldStandard numeric

    String / nominal attributes (the instance name) are dropped; ``?`` becomes NaN.

    Returns:
        DataFrame with ``time`` (float64 seconds, the ``frameTime``/``time``/``timestamp``
        column) and one float64 column per numeric attribute, under its ARFF name.

    Raises:
        LabelFormatError: not valid ARFF, no time column or no numeric value column.
    """
    import arff

    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: label file not found; check the dataset layout")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            data = arff.load(f)
    except (arff.ArffException, ValueError, IndexError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise LabelFormatError(
            f"{path}: not a valid ARFF file ({msg}); expected @attribute lines and @data"
        ) from None
    except OSError as e:
        raise LabelFormatError(f"{path}: cannot be read ({e.strerror})") from None
    names = [str(a[0]) for a in data["attributes"]]
    numeric = [n for n, (_, kind) in zip(names, data["attributes"], strict=True)
               if isinstance(kind, str) and kind.upper() in ("NUMERIC", "REAL", "INTEGER")]
    df = pd.DataFrame(data["data"], columns=names)[numeric]
    return _split_time(df, path, time_columns)


def read_trace(path: str | Path, time_columns: Sequence[str] = TIME_COLUMNS) -> pd.DataFrame:
    """Read a time-indexed trace from ``.arff`` or delimited text (``.csv``, ``.txt``, ...).

    A text file with a header needs a time column (``frameTime``/``time``/``timestamp``...);
    one without a header is read as ``time, value[, value_1, ...]``.

    Returns:
        DataFrame with ``time`` (float64 s) plus float64 value columns.
    """
    path = Path(path)
    if path.suffix.lower() == ".arff":
        return read_arff_trace(path, time_columns)
    df, has_header = _read_text_table(path, None)
    if not has_header:
        if df.shape[1] < 2:
            raise LabelFormatError(f"{path}: has one column; expected time plus value columns")
        df.columns = ["time", "value", *[f"value_{i}" for i in range(1, df.shape[1] - 1)]]
    return _split_time(df, path, time_columns)


def collapse_values(trace: pd.DataFrame, name: str) -> pd.DataFrame:
    """``time`` plus one column ``name``: the trace's value column, or the mean of several
    (e.g. one column per rater), ignoring NaN."""
    vals = trace.drop(columns="time")
    col = vals.iloc[:, 0] if vals.shape[1] == 1 else vals.mean(axis=1, skipna=True)
    return pd.DataFrame({"time": trace["time"].to_numpy(), name: col.to_numpy(dtype=np.float64)})


def resample_trace(times: np.ndarray, values: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Linearly interpolate a trace at ``timestamps``; NaN outside its time range.

    Args:
        times: ``(M,)`` sample times in seconds, any order (sorted here; repeated times are
            averaged; rows with NaN time are dropped).
        values: ``(M,)`` or ``(M, K)`` values; NaN samples make the intervals next to them NaN.
        timestamps: ``(N,)`` frame times in seconds.

    Returns:
        ``(N,)`` or ``(N, K)`` float64.
    """
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    v = np.asarray(values, dtype=np.float64)
    squeeze = v.ndim == 1
    v = v.reshape(len(t), -1)
    ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    keep = np.isfinite(t)
    t, v = t[keep], v[keep]
    out = np.full((ts.size, v.shape[1]), np.nan)
    if t.size:
        u, inv = np.unique(t, return_inverse=True)
        if u.size < t.size:  # average repeated times
            acc = np.zeros((u.size, v.shape[1]))
            np.add.at(acc, inv, v)
            v = acc / np.bincount(inv, minlength=u.size)[:, None]
        else:
            v = v[np.argsort(t, kind="stable")]
        for k in range(v.shape[1]):
            out[:, k] = np.interp(ts, u, v[:, k], left=np.nan, right=np.nan)
    return out[:, 0] if squeeze else out


def trace_labels(
    traces: Sequence[pd.DataFrame], timestamps: np.ndarray, time_scale: float = 1.0
) -> pd.DataFrame:
    """Resample time-indexed traces to the decoded frames.

    Args:
        traces: DataFrames with ``time`` plus value columns (as :func:`read_trace` returns);
            a later trace's column replaces an earlier one of the same name.
        timestamps: ``(N,)`` frame presentation times in seconds.
        time_scale: factor turning the traces' time unit into seconds (0.001 for ms).

    Returns:
        DataFrame of ``N`` rows: ``frame`` int64 ``0..N-1`` plus one float64 column per label.
    """
    ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    cols: dict[str, np.ndarray] = {}
    for tr in traces:
        t = tr["time"].to_numpy(dtype=np.float64) * time_scale
        for c in tr.columns:
            if c != "time":
                cols[str(c)] = resample_trace(t, tr[c].to_numpy(dtype=np.float64), ts)
    out = pd.DataFrame({"frame": np.arange(ts.size, dtype=np.int64)})
    for c, v in cols.items():
        out[c] = v
    return out


def trace_files_labels(
    timestamps: np.ndarray,
    per_label: Mapping[str, Path | Sequence[Path]],
    combined: Sequence[Path] = (),
    time_scale: float = 1.0,
    require: Sequence[str] = (),
) -> pd.DataFrame:
    """Frame labels from trace files: ``combined`` files (time + several label columns, names
    lower-cased) and ``per_label`` files (time + one value column, or several averaged, e.g.
    raters), resampled to ``timestamps`` with :func:`trace_labels`; per-label files win.

    A label given several files (one per annotator, e.g. SEMAINE's) is the mean of their resampled
    traces (NaN where none covers a frame). ``require``: columns (lower-case) every combined file must
    have, else a one-line LabelFormatError naming its header line."""
    traces = []
    for path in combined:
        tr = read_trace(path)
        tr = tr.rename(columns={c: str(c).lower() for c in tr.columns})
        missing = [c for c in require if c not in tr.columns]
        if missing:
            raise LabelFormatError(
                f"{path}, line 1: no {', '.join(missing)} column; expected a header time, {', '.join(require)} "
                f"(found {', '.join(peek_header(path)) or 'no header'})"
            )
        traces.append(tr)
    several: dict[str, list[Path]] = {}
    for name, path in per_label.items():
        if isinstance(path, str | Path):
            traces.append(collapse_values(read_trace(path), name))
        else:
            several[name] = list(path)
    out = trace_labels(traces, timestamps, time_scale=time_scale)
    for name, paths in several.items():
        arr = np.vstack([trace_labels([collapse_values(read_trace(p), name)], timestamps, time_scale)[name]
                         .to_numpy() for p in paths])
        n = np.isfinite(arr).sum(0)
        out[name] = np.where(n > 0, np.nansum(arr, 0) / np.maximum(n, 1), np.nan)
    return out
