"""The HTML report: one self-contained page for runs and results folders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facedyn.errors import InputNotFoundError
from facedyn.reports.html import markdown_to_html, write_html_report
from facedyn.train import train


def test_page_is_self_contained_with_config_curves_tables(synth_store: Path, tmp_path: Path) -> None:
    run = train("dr", synth_store, tmp_path / "dr", {"epochs": 2, "steps_per_epoch": 1, "batch_size": 4, "T": 2,
                                                     "S": 1, "width": 4, "depth": 2}).run
    results = tmp_path / "res"
    (results / "figures").mkdir(parents=True)
    (results / "ranking.md").write_text("# Ranking\n\n- held-out people\n\n| method | acc |\n|---|---|\n"
                                        "| dr | 81.2 |\n")
    page = write_html_report([run, results], tmp_path / "r.html").read_text()
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    assert page.count("data:image/png;base64,") >= 1  # the training curves, embedded
    assert not re.search(r'src="(?!data:)', page)  # nothing linked from outside the page
    assert "<td>81.2</td>" in page and "<li>held-out people</li>" in page and "theta" in page
    with pytest.raises(InputNotFoundError):
        write_html_report([tmp_path / "nothing"], tmp_path / "x.html")


def test_markdown_images_are_embedded_or_named(tmp_path: Path) -> None:
    import numpy as np

    from facedyn.reports.plots import plot_dr_gallery

    plot_dr_gallery([{"DR": np.random.rand(3, 8, 8)}], tmp_path / "g.png")
    html = markdown_to_html("![gallery](g.png)\n![missing](nope.png)\n**bold** `code`", tmp_path)
    assert "data:image/png;base64," in html and "<p>missing</p>" in html
    assert "<b>bold</b>" in html and "<code>code</code>" in html
