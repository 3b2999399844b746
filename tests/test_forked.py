"""``facedyn.forked.in_child``: a stage of a frame stream in a forked child process gives its results in order, with
the frames it was given, runs in another process, passes errors on, and ends its child however the stream ends."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterator

import numpy as np
import pytest

from facedyn import forked

pytestmark = pytest.mark.skipif(not forked.available(), reason="in_child needs a platform that forks (Linux)")


def _frames(n: int, shape: tuple[int, ...] = (6, 5, 3)) -> Iterator[tuple[int, np.ndarray]]:
    rng = np.random.default_rng(0)
    for k in range(n):
        yield k, rng.integers(0, 256, shape, dtype=np.uint8)


def _summing(frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, int, int, int]]:
    """A stage with state: (key, pixel sum, running count, pid) per frame."""
    for count, (key, frame) in enumerate(frames, 1):
        yield key, int(frame.sum()), count, os.getpid()


def test_results_come_in_order_with_their_frames_from_another_process() -> None:
    got = list(forked.in_child(_frames(40), _summing, depth=3))
    want = list(_frames(40))
    assert [k for k, _, _ in got] == [k for k, _ in want]
    for (k, frame, result), (_, original) in zip(got, want, strict=True):
        assert np.array_equal(frame, original)
        assert result[:3] == (k, int(original.sum()), k + 1)  # the stage kept its state across frames
        assert result[3] != os.getpid()
    assert not mp.active_children()
    assert list(forked.in_child(iter([]), _summing)) == []


def test_frames_larger_than_the_first_and_of_other_shapes_pass_too() -> None:
    items = [(0, np.zeros((4, 4, 3), np.uint8)), (1, np.full((9, 7, 3), 3, np.uint8)), (2, np.ones((2, 3), np.uint8))]
    got = list(forked.in_child(iter(items), _summing, depth=2))
    assert [r[1] for _, _, r in got] == [0, 9 * 7 * 3 * 3, 6]


def test_an_error_of_the_stage_comes_out_after_the_results_before_it() -> None:
    def failing(frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[int]:
        for key, _ in frames:
            if key == 7:
                raise ValueError("no face model at frame 7")
            yield key

    got = []
    with pytest.raises(ValueError, match="no face model at frame 7"):
        for _key, _, result in forked.in_child(_frames(20), failing, depth=4):
            got.append(result)
    assert got == list(range(7)) and not mp.active_children()


def test_an_error_of_the_source_and_an_early_stop_end_the_child() -> None:
    def broken() -> Iterator[tuple[int, np.ndarray]]:
        yield from _frames(5)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(forked.in_child(broken(), _summing, depth=2))
    assert not mp.active_children()
    stream = forked.in_child(_frames(100), _summing, depth=4)
    assert [next(stream)[0] for _ in range(3)] == [0, 1, 2]
    assert mp.active_children()
    stream.close()
    assert not mp.active_children()


def test_a_child_that_dies_is_an_error_not_a_hang() -> None:
    def dying(frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[int]:
        for key, _ in frames:
            if key == 3:
                os._exit(3)
            yield key

    with pytest.raises(RuntimeError, match="died"):
        list(forked.in_child(_frames(10), dying, depth=2))
    with pytest.raises(ValueError, match="depth"):
        list(forked.in_child(_frames(1), _summing, depth=0))


def test_without_a_fork_the_stage_runs_here_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork(self: object) -> None:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(mp.context.ForkProcess, "start", no_fork)
    with pytest.warns(RuntimeWarning, match="could not start a child process"):
        got = list(forked.in_child(_frames(6), _summing, depth=2))
    want = list(_frames(6))
    assert [(k, r[:3]) for k, _, r in got] == [(k, (k, int(f.sum()), k + 1)) for k, f in want]
    assert all(r[3] == os.getpid() for _, _, r in got)
    here = list(forked.in_process(iter(want), _summing))
    assert [(k, r) for k, _, r in here] == [(k, r) for k, _, r in got]
    assert all(np.array_equal(a, b) for (_, a, _), (_, b, _) in zip(here, got, strict=True))


def test_a_stage_that_stops_early_or_fails_at_once_is_an_error_whatever_the_timing() -> None:
    def short(frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[int]:
        for key, _ in frames:
            if key == 2:
                return
            yield key

    def at_once(frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[int]:
        raise KeyError("no model")
        yield 0  # a generator

    for _ in range(5):  # the child may stop before, while or after the parent sends the next frames
        with pytest.raises(RuntimeError, match="ended before every frame's result"):
            list(forked.in_child(_frames(50), short, depth=2))
        with pytest.raises(KeyError, match="no model"):
            list(forked.in_child(_frames(50, (64, 64, 3)), at_once, depth=1))
    assert not mp.active_children()


def test_large_results_and_frames_larger_than_the_slots_do_not_block_either_side() -> None:
    def bulky(frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[bytes]:
        for key, frame in frames:
            yield bytes([key % 256]) * 300_000 + frame.tobytes()[:10]  # more than a pipe holds, every frame

    items = [(k, np.full((8, 8, 3) if k % 3 else (400, 400, 3), k, np.uint8)) for k in range(12)]
    items.insert(0, (99, np.zeros((8, 8, 3), np.uint8)))  # the slots take the first frame's size: 192 bytes
    got = list(forked.in_child(iter(items), bulky, depth=4))
    assert [k for k, _, _ in got] == [k for k, _ in items]
    assert all(len(r) == 300_010 and r[0] == k % 256 for k, _, r in got)


def test_borrowed_frames_are_read_only_views_and_give_the_same_results() -> None:
    def writable(frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[tuple[int, bool]]:
        for _, frame in frames:
            yield int(frame.sum()), bool(frame.flags.writeable)

    want = [(int(f.sum()), True) for _, f in _frames(30)]
    assert [r for *_, r in forked.in_child(_frames(30), writable, depth=4)] == want
    borrowed = [r for *_, r in forked.in_child(_frames(30), writable, depth=4, borrow=True)]
    assert borrowed == [(s, False) for s, _ in want]

    def writing(frames: Iterator[tuple[int, np.ndarray]]) -> Iterator[int]:
        for _, frame in frames:
            frame[0, 0, 0] = 1  # not the stage's to change: the parent's slot
            yield 0

    with pytest.raises(ValueError, match="read-only"):
        list(forked.in_child(_frames(5), writing, borrow=True))
    assert not mp.active_children()
