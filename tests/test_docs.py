"""The documentation site (issue 31): built with ``mkdocs build --strict`` as ``make docs`` builds it, so a broken
link or anchor, a page missing from the navigation's files or a docstring reference that does not resolve fails
here; the CLI reference is what ``--help`` prints; nothing loads from a CDN; the README stays short and points
only at files that exist."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [
    "index.html", "getting-started.html", "tutorial.html",
    *(f"guide/{p}.html" for p in ("index", "data", "training", "evaluating", "analysing", "reproducing", "scale",
                                  "identity", "robustness")),
    *(f"methods/{p}.html" for p in ("index", "dr", "tcae", "fabnet", "baselines")),
    *(f"models/{p}.html" for p in ("index", "dr-t3", "dr-t5", "dr-t9", "fabnet", "tcae")),
    *(f"results/{p}.html" for p in ("index", "ranking-synthetic", "ranking-real", "downstream-tasks", "tcae-runs",
                                    "fabnet-runs")),
    "reference/api.html", "reference/cli.html",
    *(f"development/{p}.html" for p in ("index", "architecture", "extending", "testing", "shipped-models")),
]
# a script, stylesheet, image or frame fetched from another host when a page opens
EXTERNAL = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=[\"'](?:https?:)?//", re.I)


def hooks() -> object:
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "scripts" / "mkdocs_hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_site_builds_strict_with_every_page_and_nothing_from_a_cdn(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                          str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0 and "WARNING" not in res.stderr, res.stderr[-6000:]
    missing = [p for p in PAGES if not (site / p).is_file()]
    assert not missing, missing
    external = [str(p.relative_to(site)) for p in site.rglob("*.html") if EXTERNAL.search(p.read_text("utf-8"))]
    assert not external, f"pages loading from another host: {external}"
    # equations: arithmatex's spans, typeset by the site's own MathJax (fonts and autoloaded extensions beside it)
    dr = (site / "methods" / "dr.html").read_text("utf-8")
    assert dr.count('class="arithmatex"') > 10 and "assets/mathjax/tex-chtml.js" in dr
    mathjax = site / "assets" / "mathjax"
    assert (mathjax / "tex-chtml.js").stat().st_size > 500_000
    assert len(list((mathjax / "output" / "chtml" / "fonts" / "woff-v2").glob("*.woff"))) > 10
    assert (mathjax / "input" / "tex" / "extensions" / "ams.js").is_file()
    # the API reference resolved every module it names; the docstrings' Sphinx roles became code spans
    api = (site / "reference" / "api.html").read_text("utf-8")
    for obj in ("facedyn.load", "facedyn.analyze", "facedyn.train.train", "facedyn.method.Method",
                "facedyn.method.register_method", "facedyn.data.store", "facedyn.reproduce.run_recipe"):
        assert f'id="{obj}"' in api, obj
    assert ":func:" not in api and ":class:" not in api
    # the CLI reference has every command; the model cards are the shipped files; the tutorial keeps its outputs
    cli = (site / "reference" / "cli.html").read_text("utf-8")
    assert all(f"<code>{c}</code>" in cli for c in ("facedyn prepare", "facedyn train dr", "facedyn eval rank",
                                                     "facedyn cv rank", "facedyn reproduce"))
    assert "Usage: facedyn train tcae [OPTIONS]" in cli
    assert "dr-t5: model card" in (site / "models" / "dr-t5.html").read_text("utf-8")
    tutorial = (site / "tutorial.html").read_text("utf-8")
    assert tutorial.count("data:image/png;base64") >= 2 and "Load mathjax" not in tutorial


def test_cli_reference_is_what_help_prints(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import typer

    from facedyn.cli import app

    helps = hooks().command_helps()
    assert len(helps) > 25 and "facedyn train dr" in helps and "facedyn eval probe" in helps
    monkeypatch.setenv("COLUMNS", "80")  # any terminal of 80 columns or more prints the same help
    command = typer.main.get_command(app)  # the console script's command tree (facedyn.cli.main runs it)
    for path, text in helps.items():
        command.main([*path.split()[1:], "--help"], prog_name="facedyn", standalone_mode=False)
        assert capsys.readouterr().out.rstrip() == text, path


def test_readme_is_short_and_points_at_files_that_exist() -> None:
    text = README.read_text("utf-8")
    assert len(text.splitlines()) <= 150
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    assert any(link.startswith("docs/") for link in links)
    broken = [t for t in links if "://" not in t and not (ROOT / t.split("#")[0]).exists()]
    assert not broken, broken


def test_every_command_of_the_readme_is_in_the_docs() -> None:
    """The README holds nothing the site does not: each line of its code blocks is on some page."""
    readme_code = re.findall(r"```\w*\n(.*?)```", README.read_text("utf-8"), re.S)
    docs = "\n".join(p.read_text("utf-8") for p in (ROOT / "docs").rglob("*.md"))
    missing = [line for block in readme_code for line in block.splitlines() if line.strip() and line not in docs]
    assert not missing, missing
