"""Committed files name no absolute path of the machine that made them (issue 13, item 3)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("src", "docs", "scripts", "benchmarks", "README.md", "Makefile", "pyproject.toml")
BINARY = {".png", ".jpg", ".jpeg", ".safetensors", ".onnx", ".npy", ".npz", ".pt", ".mp4", ".avi", ".gif", ".pdf"}
# home and work folders of Linux, macOS and Windows machines, and the usual scratch mounts
MACHINE_PATH = re.compile(r"(?<![\w.~])(/work/|/home/\w|/root/|/Users/\w|/scratch/|/mnt/\w|[A-Z]:\\\\Users)")


def committed_files() -> list[Path]:
    """The scanned files git tracks (every file under the scanned folders where this is not a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", *SCANNED], cwd=ROOT, capture_output=True, check=True)
        files = [ROOT / p for p in out.stdout.decode().split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        files = [p for s in SCANNED for p in ([ROOT / s] if (ROOT / s).is_file() else (ROOT / s).rglob("*"))]
    return [f for f in files if f.is_file() and f.suffix.lower() not in BINARY]


def test_no_committed_file_names_an_absolute_machine_path() -> None:
    here = {str(ROOT), str(ROOT.parent)} - {"/"}
    found = []
    for f in committed_files():
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line) or any(h in line for h in here):
                found.append(f"{f.relative_to(ROOT)}:{n}: {line.strip()[:120]}")
    assert len(committed_files()) > 100  # the scan saw the repository
    assert not found, "absolute machine paths:\n" + "\n".join(found)


def test_the_pattern_finds_machine_paths_and_spares_others() -> None:
    for bad in ("data: /work/main/models_work/real64", "see /home/alice/runs", "C:\\\\Users\\\\bob", "/root/x"):
        assert MACHINE_PATH.search(bad), bad
    for ok in ("models_work/real64", "../shared/data/real", "https://example.org/work/x", "~/.cache/facedyn",
               "facedyn.cli:main", "a/work/b"):
        assert not MACHINE_PATH.search(ok), ok
