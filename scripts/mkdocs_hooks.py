"""MkDocs hooks of the documentation site (``mkdocs.yml``: ``hooks:``): nothing is downloaded, nothing drifts.

* The CLI reference (``docs/reference/cli.md``) is generated at build time from the Typer app itself: the
  marker ``<!-- facedyn-cli -->`` becomes one section per command holding exactly what ``facedyn ... --help``
  prints in an 80-column terminal (:func:`cli_reference`), so the page cannot drift from ``--help``.
* MathJax 3 is served from the site itself: its files come from the ``django-static-mathjax`` wheel (a pip
  package with no dependencies that ships MathJax 3.2.2) and are copied to ``site/assets/mathjax/``; no page
  loads anything from a CDN (:func:`on_files`).
* The docstrings are written for Sphinx (``:func:`facedyn.api.load```); mkdocstrings renders such a role as its
  name and a code span, so :func:`on_page_content` turns each into the code span alone, linked where the
  target is documented on the same page, and drops the ``::`` that introduces a literal block.
* nbconvert's template puts a ``<script>`` loading MathJax 2 from a CDN into the rendered notebook; the tutorial
  has no math, and the site's own MathJax covers every page, so that block is removed (:func:`on_post_page`).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CLI_MARKER = "<!-- facedyn-cli -->"
HELP_WIDTH = 78  # click's help width in any terminal of 80 columns or more: min(columns, 80) - 2
MATHJAX_DEST = "assets/mathjax"
# what the pages use: the combined TeX input + CommonHTML output, its fonts, and the TeX extensions it autoloads
MATHJAX_FILES = ("tex-chtml.js", "output/chtml/fonts/woff-v2/*.woff", "input/tex/extensions/*.js")
_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj):<code>(~?)([\w.]+)</code>")
_NB_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)


def mathjax_root() -> Path:
    """The ``es5`` folder of the MathJax copy shipped by the ``django-static-mathjax`` wheel."""
    spec = importlib.util.find_spec("mathjax")  # the wheel's package; found without importing it (no Django)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("MathJax not found: pip install -e '.[dev]' (it installs django-static-mathjax)")
    root = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    if not (root / "es5" / "tex-chtml.js").is_file():
        raise RuntimeError(f"no es5/tex-chtml.js in the mathjax package at {root}")
    return root


def _commands(cmd: Any, ctx: Any) -> Iterator[tuple[Any, Any]]:
    """Every command of the click tree under ``cmd`` with its context, depth first, in the group's order."""
    yield cmd, ctx
    for name in getattr(cmd, "list_commands", lambda _: [])(ctx):
        sub = cmd.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        yield from _commands(sub, sub.context_class(sub, info_name=name, parent=ctx,
                                                    terminal_width=HELP_WIDTH))


def command_helps() -> dict[str, str]:
    """``{"facedyn eval rank": its --help text, ...}`` for every command, as the console script builds them."""
    import typer

    from facedyn import cli

    cli._add_train_commands()  # what the console entry point (facedyn.cli.main) does before running the app
    root = typer.main.get_command(cli.app)
    ctx = root.context_class(root, info_name="facedyn", terminal_width=HELP_WIDTH)
    return {c.command_path: cmd.get_help(c).rstrip() for cmd, c in _commands(root, ctx)}


def cli_reference() -> str:
    """The markdown of the CLI reference: one heading and one ``--help`` block per command."""
    parts = []
    for path, text in command_helps().items():
        depth = min(path.count(" ") + 1, 4)
        parts += [f"{'#' * (depth + 1)} `{path}`", "", "```text", text, "```", ""]
    return "\n".join(parts)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    es5 = mathjax_root() / "es5"
    for pattern in MATHJAX_FILES:
        for src in sorted(es5.glob(pattern)):
            rel = src.relative_to(es5).as_posix()
            files.append(File.generated(config, f"{MATHJAX_DEST}/{rel}", abs_src_path=str(src)))
    licence = mathjax_root() / "LICENSE"
    if licence.is_file():
        files.append(File.generated(config, f"{MATHJAX_DEST}/LICENSE", abs_src_path=str(licence)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    return markdown


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    ids = set(re.findall(r'id="([^"]+)"', html))

    def code(m: re.Match[str]) -> str:
        target = m.group(2)
        shown = target.rsplit(".", 1)[-1] if m.group(1) else target
        return f'<a href="#{target}"><code>{shown}</code></a>' if target in ids else f"<code>{shown}</code>"

    return _ROLE.sub(code, html).replace("::</p>", ":</p>")


def on_post_page(output: str, page: Any, config: Any) -> str:
    return _NB_MATHJAX.sub("", output)
