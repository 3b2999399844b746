"""Atomic file output: every file facedyn publishes appears complete or not at all."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from facedyn.errors import OutputError

_UMASK = os.umask(0)
os.umask(_UMASK)


#: why a write failed for lack of room, by errno
NO_ROOM = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
           errno.EFBIG: "file-size limit reached"}
# the same causes as writers that wrap the OSError word them (safetensors' Rust I/O error, ...)
_NO_ROOM_TEXT = {"no space left": errno.ENOSPC, "os error 28": errno.ENOSPC, "disk quota": errno.EDQUOT,
                 "os error 122": errno.EDQUOT, "file too large": errno.EFBIG, "os error 27": errno.EFBIG}


def no_room(e: BaseException, written: str | os.PathLike[str] | None = None) -> str | None:
    """Why ``e`` means a write ran out of room (a full disk, a quota, ``ulimit -f``), or None.

    Some writers hide the cause (numpy reports a short write, torch's zip writer a position mismatch): with
    ``written``, the file being written, the file-size limit and the free space of its file system decide.
    """
    if isinstance(e, OSError) and e.errno in NO_ROOM:
        return NO_ROOM[e.errno]
    text = str(e).lower()
    for needle, code in _NO_ROOM_TEXT.items():
        if needle in text:
            return NO_ROOM[code]
    if written is None or (not isinstance(e, OSError | RuntimeError) and type(e).__module__ == "builtins"):
        return None
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        if soft != resource.RLIM_INFINITY and Path(written).stat().st_size >= soft:
            return NO_ROOM[errno.EFBIG]
    except (ImportError, OSError, ValueError):
        pass
    try:
        st = os.statvfs(Path(written).parent)
        if st.f_bavail * st.f_frsize < (1 << 20):
            return NO_ROOM[errno.ENOSPC]
    except OSError:
        pass
    return None


def write_failed(path: str | os.PathLike[str], cause: str) -> OutputError:
    """The one-line error of a write to ``path`` that ran out of room (``cause``: from :func:`no_room`)."""
    return OutputError(f"{path}: could not be written ({cause}); free space or choose another location and rerun "
                       "(files written before are unchanged)")


def file_mode() -> int:
    """Permissions of a normally created file (mkstemp makes 0600 files; published ones follow the umask)."""
    return 0o666 & ~_UMASK


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers pick the right format).

    When the block ends normally the file gets the usual permissions and is renamed over ``path``;
    when it raises, the temporary file is removed and ``path`` keeps what it held. A folder that cannot be
    written, and a write that runs out of room (full disk, quota, file-size limit), raise OutputError.
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
    except BaseException as e:
        cause = None if isinstance(e, OutputError | KeyboardInterrupt) else no_room(e, tmp)
        tmp.unlink(missing_ok=True)
        if cause:
            raise write_failed(path, cause) from None
        raise


#: what :func:`atomic_path` and :class:`NpyWriter` name their temporary files
#: (``tempfile.mkstemp``: a dot, the published file's stem, a dot, 8 random characters, the suffix)
_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}(\.[A-Za-z0-9]+)?")


def clean_temporaries(*directories: str | os.PathLike[str]) -> int:
    """Remove, in ``directories`` (not their subfolders), the temporary files of atomic writes whose process was
    killed (SIGKILL, power loss: nothing removed them); returns how many.

    They are never read (readers open only the published names), but would pile up on every interruption. Call
    only while holding the lock of the directory they belong to (:func:`facedyn.lock.hold`), so that no live
    writer's temporary goes.
    """
    n = 0
    for d in directories:
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if _TEMPORARY.fullmatch(e.name) and e.is_file(follow_symlinks=False):
                with suppress(OSError):
                    os.unlink(e.path)
                    n += 1
    return n


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
        try:
            self._raw.write(np.ascontiguousarray(a).tobytes())
        except OSError as e:
            cause = no_room(e, self._raw_path)
            if cause:
                self.abort()
                raise write_failed(self.path, cause) from None
            raise
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
