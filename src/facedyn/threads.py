"""Run a stage of a stream in a thread of its own: :func:`ahead` iterates an iterator in a worker thread, a bounded
number of items ahead of its consumer.

``facedyn.analyze`` chains such stages (decode, then face tracking, each ahead of the per-face work and the
networks): work that releases the GIL (PyAV's decoding and colour conversion, dlib's HOG detector, OpenCV,
torch and onnxruntime) then runs on one core while the other runs the next stage. Items come out in the order
the iterator gives them, an exception raised by the iterator comes out where it was raised (after the items
before it), and closing the consumer (or leaving its ``for`` loop early) stops the worker and closes the
iterator in the worker thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterable
from typing import TypeVar

__all__ = ["ahead"]

T = TypeVar("T")

#: Seconds a blocked worker or consumer waits before it looks whether the other side gave up.
_POLL_S = 0.1
_END = object()


class _Raised:
    """An exception of the worker's iterator, passed to the consumer in order."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


def ahead(items: Iterable[T], depth: int, name: str = "facedyn-ahead") -> Generator[T, None, None]:
    """The items of ``items``, produced in a worker thread (named ``name``) at most ``depth`` (>= 1) items ahead of
    the consumer: at most ``depth`` items wait besides the one being made. Nothing runs before the first
    ``next()``. Closing the returned generator (or its garbage collection) stops the worker at its next item and
    closes ``items`` (when it is a generator) in the worker thread.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        it = iter(items)
        try:
            for item in it:
                if not put(item):
                    return
            put(_END)
        except BaseException as e:  # passed on to the consumer, raised there
            put(_Raised(e))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    def consume() -> Generator[T, None, None]:
        worker = threading.Thread(target=work, name=name, daemon=True)
        worker.start()
        try:
            while True:
                try:
                    item = q.get(timeout=_POLL_S)
                except queue.Empty:
                    if not worker.is_alive() and q.empty():
                        raise RuntimeError(f"{name}: the worker thread ended without a result") from None
                    continue
                if item is _END:
                    return
                if isinstance(item, _Raised):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            stop.set()
            worker.join()

    return consume()
