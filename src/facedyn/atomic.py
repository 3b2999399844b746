"""Atomic file output: every file facedyn publishes appears complete or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facedyn.errors import OutputError

_UMASK = os.umask(0)
os.umask(_UMASK)


def file_mode() -> int:
    """Permissions of a normally created file (mkstemp makes 0600 files; published ones follow the umask)."""
    return 0o666 & ~_UMASK


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers pick the right format).

    When the block ends normally the file gets the usual permissions and is renamed over ``path``;
    when it raises, the temporary file is removed. A folder that cannot be written raises OutputError.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    except OSError as e:
        raise OutputError(f"{path.parent}: cannot write here ({e.strerror}); choose a writable location") from None
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _json_default(o: object) -> object:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def write_json(path: str | os.PathLike[str], obj: object) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically (NumPy scalars/arrays and paths allowed)."""
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


class NpyWriter:
    """Append arrays of one shape and dtype to a ``.npy`` file whose length is not known in advance.

    Rows go to a temporary raw file beside ``path``; :meth:`close` writes the ``.npy`` header and copies
    the rows in chunks into ``path`` atomically, so memory stays at one chunk however many rows there
    are. Use as a context manager: on an exception nothing is published.
    """

    def __init__(self, path: str | os.PathLike[str], row_shape: tuple[int, ...], dtype: str = "float32") -> None:
        import numpy as np

        self.path = Path(path)
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.n = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".raw", dir=self.path.parent)
        except OSError as e:
            raise OutputError(f"{self.path.parent}: cannot write here ({e.strerror}); choose a writable location") \
                from None
        self._raw_path = Path(name)
        self._raw = os.fdopen(fd, "wb")

    def append(self, row: object) -> None:
        import numpy as np

        a = np.asarray(row, dtype=self.dtype)
        if a.shape != self.row_shape:
            raise ValueError(f"row must have shape {self.row_shape}, got {a.shape}")
        self._raw.write(np.ascontiguousarray(a).tobytes())
        self.n += 1

    def close(self) -> Path:
        """Publish ``path`` (shape ``(n, *row_shape)``) and remove the raw file."""
        import numpy as np

        self._raw.close()
        row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        try:
            with atomic_path(self.path) as tmp, open(tmp, "wb") as f, open(self._raw_path, "rb") as raw:
                np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                         "fortran_order": False, "shape": (self.n, *self.row_shape)})
                while chunk := raw.read(max(1, (1 << 24) // max(row_bytes, 1)) * row_bytes):
                    f.write(chunk)
        finally:
            self._raw_path.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        self._raw.close()
        self._raw_path.unlink(missing_ok=True)

    def __enter__(self) -> NpyWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
