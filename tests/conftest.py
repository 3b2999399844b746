"""Shared pytest fixtures.

Every test runs the same on every machine and in any order (issue 13): ``--device auto`` is the CPU (no GPU is
visible to the suite unless ``FACEDYN_TEST_CUDA=1``), ``--precision auto`` and ``--channels-last auto`` choose
fp32 and NCHW without timing anything (tests of the choice fake their own timings), each test starts from the
same global random state, and the torch thread count one test sets does not leak into the next.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("FACEDYN_TEST_CUDA") != "1":
    # `auto` device must not mean a GPU on some machines (bf16 autocast, other kernels): hidden before torch
    # initialises CUDA, also from the subprocesses tests start (torchrun, scripts, the notebook's kernel)
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


@pytest.fixture(autouse=True, scope="session")
def _speed_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Measurements of --precision/--channels-last auto go to a cache of this test session, not the user's."""
    os.environ["FACEDYN_CACHE_DIR"] = str(tmp_path_factory.mktemp("facedyn-cache"))


#: images/s the pinned measurement reports for every setting: equal rates never clear precision.MARGIN, so
#: ``auto`` keeps fp32 and NCHW whatever the machine and its load
PINNED_RATE = 100.0


@pytest.fixture
def real_speed_measurement() -> None:
    """Requested by a test that times the real training steps (``precision.time_steps``): it is not pinned."""


@pytest.fixture(autouse=True)
def _pinned_speed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--precision auto`` / ``--channels-last auto`` decided by a timing would make a test's numbers (and the
    run record's ``speed``) depend on the machine, its CPU flags and its load: every candidate "measures" the
    same, so ``auto`` picks fp32 + NCHW, and the machine is never reported busy. Tests of the choice itself
    monkeypatch ``time_steps`` (and ``machine_busy``) again with their own fakes."""
    if "real_speed_measurement" in request.fixturenames:
        return
    import facedyn.precision as prec

    def time_steps(*_: Any, **__: Any) -> float:
        return PINNED_RATE

    monkeypatch.setattr(prec, "time_steps", time_steps)
    monkeypatch.setattr(prec, "machine_busy", lambda: None)


@pytest.fixture(autouse=True)
def _same_start_for_every_test() -> Iterator[None]:
    """Each test starts from the same global random state (an unseeded ``torch.rand`` in a test draws the same
    numbers whichever tests ran before it) and leaves torch's thread count as it found it (``Runtime(threads=1)``
    and ``reproduce --set threads=1`` set it process-wide; float sums, hence seeded trainings, differ with it)."""
    import numpy as np
    import torch

    threads = torch.get_num_threads()
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


def _real_data_dir() -> Path | None:
    env = os.environ.get("FACEDYN_REAL_DATA")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "real")
    for c in candidates:
        if c.is_dir() and any(c.iterdir()):
            return c
    return None


@pytest.fixture(scope="session")
def real_data() -> Path:
    """Directory of real face footage (../shared/data/real); skips the test where it is absent."""
    d = _real_data_dir()
    if d is None:
        pytest.skip("real footage not found: set FACEDYN_REAL_DATA or place shared/data/real beside the repo")
    return d


@pytest.fixture(scope="session")
def synth_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three synthetic people, 2.4 s at 25 fps, 96 px (mp4 + label and landmark sidecars)."""
    from facedyn.data.synthetic import synth

    out = tmp_path_factory.mktemp("synth")
    synth(out, subjects=3, seconds=2.4, fps=25, seed=0, size=96)
    return out


def _prepared(videos: Path, out: Path, size: int) -> Path:
    from facedyn.data.prepare import PrepareOptions, prepare

    res = prepare([videos], out, PrepareOptions(size=size))
    assert not any(r.error for r in res)
    return out


@pytest.fixture(scope="session")
def synth_store(synth_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``synth_videos`` prepared into a 32 px clip store (one person each in train, val, test)."""
    return _prepared(synth_videos, tmp_path_factory.mktemp("store") / "data", 32)


@pytest.fixture(scope="session")
def synth_store64(synth_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``synth_videos`` prepared into a 64 px clip store, the crops of the shipped models (dr-t3/t5/t9)."""
    return _prepared(synth_videos, tmp_path_factory.mktemp("store64") / "data", 64)
