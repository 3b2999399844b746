"""docs/tutorial.ipynb runs as written (executed in a fresh kernel), so it cannot rot."""

from __future__ import annotations

import os
from pathlib import Path

import nbclient
import nbformat
import pytest

import facedyn

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "tutorial.ipynb"


def test_tutorial_notebook_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the kernel imports the facedyn these tests import
    src = str(Path(facedyn.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend: figures become outputs
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()  # raises on any error
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    text = "\n".join(o.get("text", "") for o in outputs)
    assert "correlation with the truth" in text and "page:" in text
    assert "encode(aligned crop) == analyze's DR: True" in text
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 2  # the two figures
