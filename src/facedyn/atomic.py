"""Atomic file output: every file facedyn publishes appears complete or not at all."""

from __future__ import annotations

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
