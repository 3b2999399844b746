"""Run a stage of a frame stream in a forked child process: :func:`in_child`.

``facedyn.analyze`` spends most of its Python time finding and following faces (dlib's 68-point predictor holds
the GIL, the head pose fit and the checks are small NumPy calls), which threads cannot overlap with the rest of
the per-frame Python work. :func:`in_child` runs such a stage in a child process forked for the stream: frames go
to it through shared memory (an anonymous ``mmap`` made before the fork, one slot per frame in flight, no file
and nothing left behind), the stage's results come back through a pipe, in order. The child starts in
milliseconds because it is a fork: it shares the parent's loaded models and imported modules.

Forking a process that runs threads is safe only for code that takes no lock another thread may have held at the
fork: the stage must use NumPy, OpenCV's single-threaded calls and dlib, not torch or onnxruntime.
:func:`available` says whether the platform forks (Linux; macOS and Windows start processes otherwise, and
``analyze`` uses threads there).
"""

from __future__ import annotations

import gc
import mmap
import multiprocessing as mp
import signal
import sys
import threading
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from itertools import chain
from typing import Any, TypeVar

import numpy as np

__all__ = ["available", "in_child", "in_process"]

K = TypeVar("K")

#: Seconds the parent waits for the child to end after the stream, before it is terminated.
_JOIN_S = 5.0
#: Seconds the sending thread waits for a free slot before it looks whether the receiver gave up.
_POLL_S = 0.1


def available() -> bool:
    """Whether :func:`in_child` can run here: the platform forks by default (Linux), and this process may have
    children (a daemonic ``multiprocessing`` worker may not)."""
    return (sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods()
            and not mp.current_process().daemon)


def _child(conn: Any, buf: mmap.mmap, slot_bytes: int, stage: Callable[[Iterator[tuple[Any, np.ndarray]]],
                                                                         Iterator[Any]], borrow: bool) -> None:
    """The child: frames from the pipe (in shared memory), through ``stage``, results back, in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends the child
    # The objects inherited from the parent are never collected here: the garbage collector passes over them no
    # more (its passes wrote to each object's header, copying the pages the child shares with its parent).
    gc.freeze()

    def frames() -> Iterator[tuple[Any, np.ndarray]]:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):  # the parent stopped early: nothing more to do
                return
            if msg is None:
                return
            key, slot, shape, frame = msg
            if frame is None:  # the parent reuses the slot once the frame's result is back: a copy, or borrowed
                off = slot * slot_bytes
                frame = np.frombuffer(buf, np.uint8, int(np.prod(shape)), off).reshape(shape)
                if borrow:
                    frame.flags.writeable = False
                else:
                    frame = frame.copy()
            yield key, frame

    try:
        for result in stage(frames()):
            conn.send(("ok", result))
        conn.send(("end", None))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the parent is gone or stopped listening
    except BaseException as e:  # passed to the parent, raised there
        try:
            conn.send(("error", e))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception:  # not picklable
            conn.send(("error", RuntimeError(f"{type(e).__name__}: {e}")))
    finally:
        conn.close()


def in_child(items: Iterable[tuple[K, np.ndarray]],
             stage: Callable[[Iterator[tuple[K, np.ndarray]]], Iterator[Any]], depth: int = 8,
             name: str = "facedyn-child", borrow: bool = False) -> Generator[tuple[K, np.ndarray, Any], None, None]:
    """``(key, frame, result)`` for each ``(key, frame)`` of ``items``, where ``result`` is what ``stage`` gives
    for that frame, computed in a forked child process (named ``name``) at most ``depth`` frames ahead.

    ``stage`` maps an iterator of ``(key, frame)`` pairs (frames ``uint8`` arrays) to an iterator of one picklable
    result per frame, in order; it runs in the child, where it may keep state across frames (a tracker). ``items``
    is iterated in a thread of its own (named ``name``; its first item in the caller's), which sends each frame to
    the child as soon as a slot is free, while the caller takes the results as they come. Frames of the first
    frame's size or smaller pass through shared memory, larger ones through the pipe. ``borrow=True``: the stage is
    given read-only views of the shared memory instead of copies (one copy less a frame), which it must not use
    after it has given that frame's result (the slot then takes another frame). An exception raised by ``stage``
    or by ``items`` is raised here (after the results before it); a child that dies raises RuntimeError. Closing
    the generator ends the child and the thread. Nothing runs before the first ``next()``.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if not available():
        raise RuntimeError("in_child needs a platform that forks (Linux) and a non-daemonic process")

    def run() -> Generator[tuple[K, np.ndarray, Any], None, None]:
        it = iter(items)
        try:
            first = next(it, None)
        except BaseException:
            _close(it)
            raise
        if first is None:
            return
        slot_bytes = max(int(np.asarray(first[1]).nbytes), 1)
        buf = mmap.mmap(-1, depth * slot_bytes)  # anonymous, shared with the child across the fork
        ctx = mp.get_context("fork")
        here, there = ctx.Pipe(duplex=True)
        proc = ctx.Process(target=_child, args=(there, buf, slot_bytes, stage, borrow), name=name, daemon=True)
        try:
            proc.start()
        except OSError as e:  # no memory or process slot for a fork: the same work, here
            warnings.warn(f"{name}: could not start a child process ({e}); running it in this process instead",
                          RuntimeWarning, stacklevel=2)
            here.close()
            there.close()
            buf.close()
            yield from in_process(chain([first], it), stage)
            return
        there.close()
        sender = _Sender(chain([first], it), here, buf, slot_bytes, depth, name)
        try:
            while True:
                kind, value = _message(here, proc)
                if kind == "ok":
                    if not sender.sent:
                        raise RuntimeError(f"{name}: the child sent more results than frames")
                    key, frame = sender.sent.popleft()
                    sender.free.release()  # the child is done with that frame's slot
                    yield key, frame, value
                elif kind == "error":
                    raise value
                else:  # "end": the stage ended (after every frame, or before: an error)
                    sender.stop.set()
                    sender.thread.join()
                    if sender.error is not None:
                        raise sender.error
                    if sender.sent or not sender.finished:
                        raise RuntimeError(f"{name}: the child ended before every frame's result")
                    return
        finally:
            sender.stop.set()
            proc.join(_JOIN_S if not sender.sent and not sender.thread.is_alive() else 0.1)
            if proc.is_alive():
                proc.terminate()  # also frees the sender from a send the child no longer reads
                proc.join()
            sender.thread.join()
            here.close()
            sender.release()
            buf.close()

    return run()


class _Sender:
    """The thread that iterates :func:`in_child`'s items and sends each frame to the child once a slot is free:
    ``sent`` holds the frames sent whose results are not taken yet (oldest first), ``free`` counts the free slots
    (the receiver releases one per result), ``error`` is what the items raised (after the frames before it)."""

    def __init__(self, items: Iterator[tuple[Any, np.ndarray]], conn: Any, buf: mmap.mmap, slot_bytes: int,
                 depth: int, name: str) -> None:
        self.items, self.conn, self.slot_bytes, self.depth = items, conn, slot_bytes, depth
        self.view = np.frombuffer(buf, np.uint8)
        self.sent: deque[tuple[Any, np.ndarray]] = deque()
        self.free = threading.Semaphore(depth)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.finished = False  # every item was sent (or the items raised)
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stopped = False  # the child stopped listening (it raised, ended or died): the receiver gets why
        try:
            for n, (key, frame) in enumerate(self.items):
                while not self.free.acquire(timeout=_POLL_S):
                    if self.stop.is_set():
                        return
                if self.stop.is_set():
                    return
                a = np.ascontiguousarray(frame, np.uint8)
                slot = n % self.depth
                fits = a.nbytes <= self.slot_bytes
                if fits:
                    self.view[slot * self.slot_bytes: slot * self.slot_bytes + a.nbytes] = a.reshape(-1)
                self.sent.append((key, frame))  # before the child can answer
                if not _send(self.conn, (key, slot, a.shape, None if fits else a)):
                    stopped = True
                    return
            self.finished = True
        except BaseException as e:  # passed to the receiver, raised after the results before it
            self.error = e
            self.finished = True
        finally:
            _close(self.items)
            if not stopped and not self.stop.is_set():
                _send(self.conn, None)

    def release(self) -> None:
        del self.view  # the array's hold on the map, before it is closed


def _close(it: Any) -> None:
    close = getattr(it, "close", None)
    if close is not None:
        close()


def in_process(items: Iterable[tuple[K, np.ndarray]], stage: Callable[[Iterator[tuple[K, np.ndarray]]], Iterator[Any]]
               ) -> Generator[tuple[K, np.ndarray, Any], None, None]:
    """What :func:`in_child` gives, with ``stage`` run in this process (in the consumer's thread, frame by frame as
    ``stage`` asks for them)."""
    given: deque[tuple[K, np.ndarray]] = deque()

    def source() -> Iterator[tuple[K, np.ndarray]]:
        for item in items:
            given.append(item)
            yield item

    for result in stage(source()):
        yield (*given.popleft(), result)


def _send(conn: Any, msg: Any) -> bool:
    """Send ``msg`` to the child; False where it has stopped listening (it raised, ended or died)."""
    try:
        conn.send(msg)
        return True
    except (BrokenPipeError, ConnectionResetError):
        return False


def _message(conn: Any, proc: Any) -> tuple[str, Any]:
    try:
        return conn.recv()
    except (EOFError, OSError):
        proc.join(1.0)
        raise RuntimeError(f"{proc.name}: the child process died (exit code {proc.exitcode})") from None


def _receive(conn: Any, proc: Any) -> Any:
    """The child's next result; its exception raised here."""
    kind, value = _message(conn, proc)
    if kind == "error":
        raise value
    if kind != "ok":
        raise RuntimeError(f"{proc.name}: the child ended before every frame's result")
    return value
