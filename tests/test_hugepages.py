"""``facedyn.hugepages``: asking for huge pages changes where memory lives, never what it holds, and never fails."""

from __future__ import annotations

import ctypes
import mmap
import sys

import numpy as np
import pytest

from facedyn import hugepages


def _private(size: int) -> mmap.mmap:
    """Private anonymous memory, as malloc maps it (a shared anonymous map is a file, /dev/zero, to the kernel)."""
    return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)


def _address(buf: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(buf))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/maps and madvise are Linux's")
def test_advice_keeps_the_bytes_and_covers_only_whole_huge_pages() -> None:
    size = 5 * hugepages.HUGE
    buf = _private(size)
    data = np.frombuffer(buf, np.uint8)
    data[:] = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8)
    want = data.copy()
    start = _address(buf)
    assert any(a <= start and start + size <= b for a, b in hugepages.anonymous_ranges())
    advised = hugepages.advise(start, start + size)
    assert advised % hugepages.HUGE == 0 and advised <= size
    assert advised >= 4 * hugepages.HUGE or advised == 0  # 4 whole huge pages lie inside; 0 where the kernel says no
    assert hugepages.advise(start, start + hugepages.HUGE // 2) == 0  # no whole huge page inside
    assert np.array_equal(data, want)
    del data
    buf.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="private anonymous maps as Linux makes them")
def test_memory_mapped_inside_the_block_keeps_its_bytes() -> None:
    with hugepages.loaded_on():
        buf = _private(3 * hugepages.HUGE)
        data = np.frombuffer(buf, np.uint8)
        data[::4096] = 7
    assert (data[::4096] == 7).all() and data.sum() == 7 * len(data[::4096])
    del data
    buf.close()


def test_the_predictor_on_huge_pages_gives_the_landmarks_it_gave_before() -> None:
    import dlib

    from facedyn.data.faces.detect import _shape_predictor, predictor_path

    img = np.random.default_rng(1).integers(0, 256, (120, 120, 3), dtype=np.uint8)
    rect = dlib.rectangle(20, 20, 100, 100)
    plain = dlib.shape_predictor(str(predictor_path()))  # loaded without the advice
    a = [(p.x, p.y) for p in plain(img, rect).parts()]
    b = [(p.x, p.y) for p in _shape_predictor()(img, rect).parts()]
    assert a == b and len(a) == 68
