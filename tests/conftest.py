"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _speed_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Measurements of --precision/--channels-last auto go to a cache of this test session, not the user's."""
    os.environ["FACEDYN_CACHE_DIR"] = str(tmp_path_factory.mktemp("facedyn-cache"))


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
