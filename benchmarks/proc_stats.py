"""Linux ``/proc`` readings the benchmarks share: this process's children, their private memory and CPU time."""

from __future__ import annotations

import os

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def children() -> list[int]:
    """Pids of this process's children (``/proc/self/task/*/children``); empty where unknown."""
    out: list[int] = []
    try:
        for tid in os.listdir("/proc/self/task"):
            with open(f"/proc/self/task/{tid}/children") as f:
                out += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return out


def private_bytes(pid: int) -> int:
    """Bytes of ``pid``'s memory not shared with another process (its private pages: for a forked child, those it
    wrote to or allocated since the fork). Reading it holds the process's memory lock for a few milliseconds."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return sum(int(line.split()[1]) * 1024 for line in f if line.startswith(("Private_Clean", "Private_Dirty")))
    except (OSError, ValueError, IndexError):
        return 0


def stat_cpu(path: str) -> float:
    """CPU seconds (user + system) in a ``/proc`` ``stat`` file: ``/proc/PID/stat`` (all of a process's threads)
    or ``/proc/PID/task/TID/stat`` (one thread). Raises OSError where it cannot be read."""
    with open(path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) of a running process ``pid``; 0 where unknown."""
    try:
        return stat_cpu(f"/proc/{pid}/stat")
    except (OSError, ValueError, IndexError):
        return 0.0
