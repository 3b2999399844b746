"""Running the real ``facedyn`` entry point in-process from tests."""

from __future__ import annotations

import sys

import pytest

from facedyn.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            columns: int = 200) -> tuple[int, str, str]:
    """Run ``facedyn ARGS`` through the real entry point; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["facedyn", *args])
    monkeypatch.setenv("COLUMNS", str(columns))
    code = 0
    try:
        main()
    except SystemExit as e:
        code = int(e.code or 0)
    cap = capsys.readouterr()
    return code, cap.out, cap.err
