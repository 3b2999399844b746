"""Put memory that is read at random, such as a model's tree leaves, on 2 MiB pages (Linux): :func:`loaded_on`.

dlib's 68-point predictor reads ~7 500 scattered 544-byte leaf vectors of its 95 MB model per face: with 4 KiB
pages nearly every read misses the TLB. Backed by transparent huge pages the same reads took 0.99 instead of
1.41 ms a face (this 2-core machine; ``benchmarks/bench_analyze_parts.py``), with the same results: only where
the bytes live changes. :func:`loaded_on` asks the kernel (``madvise``) to back the anonymous memory a block of
code allocates with huge pages and to collapse it into them now (``MADV_COLLAPSE``, Linux 6.1+; older kernels
collapse it in the background where transparent huge pages are enabled for ``madvise``). It does nothing
elsewhere, and nothing fails where the kernel says no.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["advise", "anonymous_ranges", "loaded_on"]

HUGE = 1 << 21  # 2 MiB: x86-64's and most Arm kernels' transparent huge page
_MADV_HUGEPAGE = 14
_MADV_COLLAPSE = 25


def anonymous_ranges() -> list[tuple[int, int]]:
    """``(start, end)`` addresses of this process's writable anonymous mappings (the heap included), from
    ``/proc/self/maps``; empty where it cannot be read."""
    out = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 5 or "w" not in parts[1] or (len(parts) >= 6 and parts[5] != "[heap]"):
                    continue
                a, b = parts[0].split("-")
                out.append((int(a, 16), int(b, 16)))
    except OSError:
        return []
    return out


@functools.cache
def _madvise() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None
    f = libc.madvise
    f.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    f.restype = ctypes.c_int
    return f


def advise(start: int, end: int) -> int:
    """Ask for huge pages over the whole 2 MiB pages inside ``[start, end)`` (addresses of mapped anonymous
    memory) and collapse them now where the kernel can. Returns the bytes advised (0: none, or not Linux)."""
    madvise = _madvise()
    a, b = (start + HUGE - 1) // HUGE * HUGE, end // HUGE * HUGE
    if madvise is None or b <= a:
        return 0
    if madvise(a, b - a, _MADV_HUGEPAGE) != 0:
        return 0
    madvise(a, b - a, _MADV_COLLAPSE)  # best effort: older kernels collapse in the background
    return b - a


@contextmanager
def loaded_on() -> Iterator[None]:
    """Advise huge pages (:func:`advise`) for the anonymous memory mapped or grown while the block runs."""
    before = anonymous_ranges()
    yield
    for a, b in anonymous_ranges():
        # the parts of [a, b) that were not mapped before (a grown heap: its new end)
        start = a
        for c, d in sorted(before):
            if d <= start or c >= b:
                continue
            if c > start:
                advise(start, c)
            start = max(start, d)
        if start < b:
            advise(start, b)
