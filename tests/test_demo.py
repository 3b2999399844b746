"""The demo end to end at a toy size: every stage runs and the HTML page is written."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_demo_end_to_end_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import facedyn.demo as demo

    monkeypatch.setitem(demo.AU_DEMO, "epochs", 1)
    monkeypatch.setitem(demo.AU_DEMO, "steps_per_epoch", 2)
    monkeypatch.setitem(demo.AU_DEMO, "input_norm_samples", 16)
    res = demo.run_demo(tmp_path / "demo", subjects=6, seconds=2.0, epochs=1, steps_per_epoch=3,
                        max_windows=40, device="cpu")
    assert set(res["ranking"]["method"]) >= {"dr", "centred", "random"}
    assert list(res["au"]["input"]) == ["si", "sdr", "mdr"]
    page = res["html"].read_text()
    assert res["html"] == tmp_path / "demo" / "report.html" and "<img" in page and "data:image/png;base64" in page
    assert "au_mdr" in page and res["report"].is_file()
