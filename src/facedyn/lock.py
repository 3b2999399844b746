"""One writer per directory: a store being prepared or merged into, a run being trained.

Two processes writing one store or run directory would remove each other's partial files (``prepare``
cleans the partial clips it finds) or interleave checkpoints. :func:`hold` takes an exclusive lock on
``DIR/.facedyn.lock`` for as long as the work lasts; a second process refuses at once, in one line
naming the holder (its pid, host, command and start time, written into the lock file).

The lock is an ``flock`` on that file, which the kernel releases when its holder exits in any way,
SIGKILL included: a lock file left behind by a process that died is stale and is taken over without
a word (its pid no longer holds the lock), so no one ever has to delete it by hand. Where the file
system does not support ``flock`` (some network file systems), the lock falls back to the recorded
pid: held while a process with that pid runs on this host.

Holding the lock, a writer may also remove what a killed writer left:
:func:`facedyn.atomic.clean_temporaries` removes the hidden temporary files of atomic writes (never read, but
they would pile up on every kill).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facedyn.errors import BusyError, OutputError

LOCK_FILE = ".facedyn.lock"
_HELD: dict[Path, int] = {}  # directories this process holds -> nesting depth (the lock is re-entrant)


def lock_path(directory: str | os.PathLike[str]) -> Path:
    """The lock file of ``directory``."""
    return Path(directory) / LOCK_FILE


def read_holder(directory: str | os.PathLike[str]) -> dict[str, object]:
    """What the lock file of ``directory`` says of its (last) holder: pid, host, command, since; {} if none."""
    try:
        return dict(json.loads(lock_path(directory).read_text() or "{}"))
    except (OSError, ValueError, TypeError):
        return {}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _describe(holder: dict[str, object]) -> str:
    if not holder:
        return "another process"
    cmd = str(holder.get("command", "")).strip()
    return (f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}" + (f", `{cmd}`" if cmd else "")
            + (f", since {holder['since']}" if holder.get("since") else ""))


def _refuse(directory: Path, what: str, holder: dict[str, object]) -> BusyError:
    return BusyError(f"{directory}: another facedyn process is writing here ({_describe(holder)}); wait for it to "
                     f"finish or stop it, or {what} into another directory")


@contextmanager
def hold(directory: str | os.PathLike[str], what: str = "write") -> Iterator[Path]:
    """Hold the exclusive lock of ``directory`` (created if missing) for the block's duration.

    ``what`` names the work in the refusal's advice ("prepare", "train"). Raises :class:`BusyError`
    when another live process holds it, :class:`OutputError` when the directory cannot be written.
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{directory}: cannot write here ({e.strerror}); choose a writable location") from None
    path = lock_path(directory)
    key = directory.resolve()
    if key in _HELD:  # already ours (a verb that calls another on the same directory)
        _HELD[key] += 1
        try:
            yield path
        finally:
            _HELD[key] -= 1
        return
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join([Path(sys.argv[0]).name,
                                                                                     *sys.argv[1:]]),
          "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        import fcntl
    except ImportError:  # no flock on this platform: pid-file lock only
        fcntl = None  # type: ignore[assignment]
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OutputError(f"{path}: cannot create the lock file ({e.strerror}); choose a writable location") \
                from None
        flocked = False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                flocked = True
            except OSError as e:
                if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    holder = read_holder(directory)
                    os.close(fd)
                    raise _refuse(directory, what, holder) from None
                # ENOLCK / EINVAL: this file system has no flock; fall back to the recorded pid
        if not flocked:
            holder = read_holder(directory)
            pid = holder.get("pid")
            if (isinstance(pid, int) and pid != os.getpid() and holder.get("host") == me["host"] and _alive(pid)):
                os.close(fd)
                raise _refuse(directory, what, holder)
        # the file may have been removed and recreated by a holder that just released it: lock the one at path
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(me) + "\n").encode())
    except OSError:
        pass  # the holder's description is a courtesy; the lock itself is held
    _HELD[key] = 1
    try:
        yield path
    finally:
        del _HELD[key]
        try:
            path.unlink(missing_ok=True)  # removed while still held, so no one locks a file about to vanish
        finally:
            os.close(fd)  # releases the flock
