"""``--help`` pages that read in an 80-column terminal: the command line's :class:`Typer`.

Typer's rich panels give each option's help the width left after four columns (names, negative
names, type), which at 80 columns is a dozen characters: every help text became a column of single
words. :class:`Typer` prints click's plain two-column layout instead (names, then the help wrapped
to the rest of the width; long option names put their help on the next line) and wraps every text
without widows: a line holding one word of a longer text takes the last word of the line above
with it, and words are never split at hyphens (``--no-channels-last``).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

__all__ = ["Typer", "wrap_words"]

_RAW = "\b\n"  # click: a paragraph starting with this line is printed as it is (already wrapped here)


def wrap_words(text: str, width: int) -> list[str]:
    """``text`` wrapped to lines of at most ``width`` characters (where words allow), none holding a lone word.

    Paragraphs (separated by blank lines) are wrapped on their own and joined by an empty line; a
    paragraph of several words never ends in a one-word line when the line above can give it a word.
    """
    out: list[str] = []
    for par in text.split("\n\n"):
        lines = textwrap.wrap(" ".join(par.split()), max(width, 10), break_on_hyphens=False,
                              break_long_words=False)
        while len(lines) >= 2 and " " not in lines[-1]:
            head, _, moved = lines[-2].rpartition(" ")
            if not head or len(moved) + 1 + len(lines[-1]) > width:
                break
            lines[-2:] = [head, f"{moved} {lines[-1]}"]
        out += [*([""] if out else []), *lines]
    return out


class _HelpFormatter(typer._click.HelpFormatter):
    """click's formatter with :func:`wrap_words` for descriptions and option help."""

    def write_text(self, text: str) -> None:
        lines = wrap_words(text, self.width - self.current_indent)
        super().write_text(_RAW + "\n".join(lines))

    def write_dl(self, rows: Sequence[tuple[str, str]], col_max: int = 30, col_spacing: int = 2) -> None:
        rows = list(rows)
        first = min(max((len(r[0]) for r in rows), default=0), col_max) + col_spacing  # as click's write_dl
        width = max(self.width - first - 2, 10)
        super().write_dl([(a, _RAW + "\n".join(wrap_words(b, width)) if b else b) for a, b in rows],
                         col_max=col_max, col_spacing=col_spacing)


class _Context(typer.Context):
    formatter_class = _HelpFormatter


class _Command(TyperCommand):
    context_class = _Context


class _Group(TyperGroup):
    context_class = _Context


class Typer(typer.Typer):
    """``typer.Typer`` whose commands print plain help wrapped by :func:`wrap_words` (rich's panels off)."""

    def __init__(self, **kw: Any) -> None:
        kw.setdefault("cls", _Group)
        kw.setdefault("rich_markup_mode", None)
        super().__init__(**kw)

    def command(self, *args: Any, **kw: Any) -> Any:
        kw.setdefault("cls", _Command)
        return super().command(*args, **kw)
