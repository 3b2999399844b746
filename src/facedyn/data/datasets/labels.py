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
    try:
        sep = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",;\t ").delimiter
    except csv.Error:
        sep = ","
    pattern = r"\s+" if sep == " " else re.escape(sep)
    first_field = re.split(pattern, lines[0].strip())[0].strip().strip("'\"")
    try:
        float(first_field)
        has_header = False
    except ValueError:
        has_header = True
    try:
        df = pd.read_csv(path, sep=r"\s+" if sep == " " else sep, header=0 if has_header else None,
                         skipinitialspace=True, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise LabelFormatError(
            f"{path}: not a readable table ({type(e).__name__}); expected delimited text"
        ) from None
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


def value_files_labels(
    files: Mapping[str, Path | None],
    n: int,
    one_based: bool = False,
    unlabelled: float | Sequence[float] | None = None,
    numbers: np.ndarray | None = None,
) -> pd.DataFrame:
    """Labels from one two-column file per label (``frame,value`` rows, header optional), as
    BP4D/FERA 2015 and DISFA ship AUs.

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
        df = read_frame_csv(path, required=("frame",), names=("frame", "value"))
        others = [c for c in df.columns if c != "frame"]
        if len(others) != 1:
            raise LabelFormatError(
                f"{path}: has columns {', '.join(map(str, df.columns))}; expected two columns "
                "frame,value (e.g. frame,intensity)"
            )
        out[col] = frame_labels(df, n, one_based=one_based, unlabelled=unlabelled, numbers=numbers,
                                columns=others, source=path)[others[0]].to_numpy()
    return out


# --------------------------------------------------------------------------------------------
# Time-indexed traces


def _split_time(df: pd.DataFrame, path: Path, time_columns: Sequence[str]) -> pd.DataFrame:
    """``time`` plus the numeric columns of ``df``; string columns (instance names) are dropped."""
    lower = {str(c).lower(): c for c in df.columns}
    tcol = next((lower[t.lower()] for t in time_columns if t.lower() in lower), None)
    if tcol is None:
        raise LabelFormatError(
            f"{path}: no time column; expected one of {', '.join(time_columns)} (seconds) plus value "
            f"columns, found {', '.join(map(str, df.columns[:12]))}"
        )
    times = pd.to_numeric(df[tcol], errors="coerce").astype(np.float64)
    if times.isna().all():
        raise LabelFormatError(f"{path}: time column '{tcol}' holds no numbers; expected seconds")
    out = pd.DataFrame({"time": times.to_numpy()})
    for c in df.columns:
        if c == tcol:
            continue
        num = pd.to_numeric(df[c], errors="coerce")
        if num.notna().sum() == df[c].notna().sum():  # every non-missing entry is a number
            out[str(c)] = num.astype(np.float64).to_numpy()
    if out.shape[1] == 1:
        raise LabelFormatError(f"{path}: has a time column '{tcol}' but no numeric value column; "
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
) -> pd.DataFrame:
    """Frame labels from trace files: ``combined`` files (time + several label columns, names
    lower-cased) and ``per_label`` files (time + one value column, or several averaged, e.g.
    raters), resampled to ``timestamps`` with :func:`trace_labels`; per-label files win.

    A label given several files (one per annotator, e.g. SEMAINE's) is the mean of their resampled
    traces (NaN where none covers a frame)."""
    traces = []
    for path in combined:
        tr = read_trace(path)
        traces.append(tr.rename(columns={c: str(c).lower() for c in tr.columns}))
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
