"""benchmarks/bench_soak.py on a very short stream: three "minutes" of 20 frames each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_soak.py"


@pytest.mark.slow
def test_bench_soak_short_stream() -> None:
    p = subprocess.run([sys.executable, str(SCRIPT), "--minutes", "3", "--frames-per-minute", "20"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = [line for line in p.stdout.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [r.split("|")[2].strip() for r in rows] == ["20", "40", "60"]  # frames done at each "minute"
    assert all(float(r.split("|")[4]) > 0 for r in rows)  # RSS MB
    verdict = [line for line in p.stdout.splitlines() if line.startswith("verdict: memory growth")]
    assert len(verdict) == 1 and "steadiness" in verdict[0]
