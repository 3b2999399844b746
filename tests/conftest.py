"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
