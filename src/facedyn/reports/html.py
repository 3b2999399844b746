"""One self-contained HTML page for one or more runs (``facedyn report RUN... --out report.html``).

For each run: its method and data, the full config, the training curves, the validation metrics of the
epoch-0 (untrained), best and last epochs, every figure in ``RUN/figures/`` and any markdown table the run
or a results folder holds (``ranking.md``, ``cv.md``, ...). Figures are embedded as base64 PNG, so the page
is one file that can be mailed or archived; it needs no network.
"""

from __future__ import annotations

import base64
import html
import math
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from facedyn import __version__, runs
from facedyn.atomic import write_text

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#1d1d1f;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.3rem;
margin-top:2.2rem}h3{font-size:1.05rem;margin-top:1.4rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.88rem}th,td{border:1px solid #d0d0d5;padding:.25rem .55rem;
text-align:right}th{background:#f3f3f6}td:first-child,th:first-child{text-align:left}
img{max-width:100%;border:1px solid #e2e2e6;margin:.4rem 0}.meta{color:#666;font-size:.85rem}
details{margin:.5rem 0}summary{cursor:pointer;color:#333}code{background:#f3f3f6;padding:0 .25rem}
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"><figcaption class="meta">' \
           f"{html.escape(alt)}</figcaption></figure>"


def _table(rows: list[dict[str, Any]] | pd.DataFrame) -> str:
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if df.empty:
        return ""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.4g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in df.itertuples(index=False))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _inline(text: str) -> str:
    """Inline markdown: `code` spans, **bold**; everything else escaped."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def markdown_to_html(text: str, base: Path) -> str:
    """The markdown facedyn writes (headings, bullets, pipe tables, images relative to ``base``) as HTML.

    Images are embedded (base64); a missing image becomes its alt text.
    """
    out: list[str] = []
    table: list[str] = []
    items: list[str] = []

    def flush() -> None:
        if table:
            rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table
                    if not set(line.strip()) <= set("|-: ")]
            if rows:
                out.append(_table(pd.DataFrame(rows[1:], columns=rows[0])))
            table.clear()
        if items:
            out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    for line in text.splitlines():
        st = line.strip()
        if st.startswith("|"):
            table.append(st)
            continue
        if st.startswith("- "):
            if table:
                flush()
            items.append(st[2:])
            continue
        flush()
        if not st:
            continue
        img = re.fullmatch(r"!\[([^\]]*)\]\(([^)]+)\)", st)
        if img:
            path = (base / img.group(2)).resolve()
            out.append(_img(path, img.group(1)) if path.is_file() and path.suffix == ".png"
                       else f"<p>{html.escape(img.group(1))}</p>")
        elif st.startswith("#"):
            level = min(4, len(st) - len(st.lstrip("#")) + 1)
            out.append(f"<h{level}>{_inline(st.lstrip('#').strip())}</h{level}>")
        else:
            out.append(f"<p>{_inline(st)}</p>")
    flush()
    return "\n".join(out)


def _curves(metrics: pd.DataFrame, title: str) -> str:
    from facedyn.reports.plots import plot_training

    with tempfile.TemporaryDirectory() as tmp:
        path = plot_training(metrics, Path(tmp) / "training.png", title=title)
        return _img(path, "training loss and validation metrics per epoch")


def run_section(run: Path) -> str:
    """The HTML of one run."""
    rec = runs.read_record(run)
    metrics = pd.DataFrame(runs.read_metrics(run))
    parts = [f"<h2>{html.escape(rec.method)} — <code>{html.escape(str(run))}</code></h2>",
             f'<p class="meta">facedyn {html.escape(rec.facedyn_version)}, created {html.escape(rec.created)}; '
             f"command: <code>{html.escape(rec.command)}</code></p>"]
    data = {k: v for k, v in rec.data.items() if k != "splits"}
    parts.append("<h3>Data</h3>" + _table([data]))
    for split, people in (rec.data.get("splits") or {}).items():
        if people:
            parts.append(f'<p class="meta">{html.escape(split)}: {html.escape(", ".join(people))}</p>')
    if not metrics.empty:
        val = [c for c in metrics.columns if c.startswith("val_")]
        picks = {"untrained": metrics.iloc[0], "last": metrics.iloc[-1]}
        parts.append("<h3>Training</h3>")
        parts.append(_table([{"": label, **{c: r.get(c, float("nan")) for c in ["epoch", *val]}}
                             for label, r in picks.items()]))
        parts.append(_curves(metrics, f"{rec.method} ({run.name})"))
    parts.append("<details><summary>Full config</summary>" +
                 _table([{"setting": k, "value": v} for k, v in rec.config.items()]) + "</details>")
    if rec.extra:
        parts.append(_table([{"fact": k, "value": v} for k, v in rec.extra.items()]))
    # [!.]: never the hidden temporary of a write (facedyn.atomic), half-written if its process was killed
    figs = sorted((run / runs.FIGURES).glob("[!.]*.png")) if (run / runs.FIGURES).is_dir() else []
    if figs:
        parts.append("<h3>Figures</h3>" + "".join(_img(f, f.stem.replace("_", " ")) for f in figs))
    for md in sorted(run.glob("[!.]*.md")):
        parts.append(f"<h3>{html.escape(md.stem)}</h3>" + markdown_to_html(md.read_text(), md.parent))
    return "\n".join(parts)


def results_section(folder: Path) -> str:
    """The HTML of a results folder (markdown tables and figures written by ``facedyn eval``/``cv``)."""
    parts = [f"<h2>Results — <code>{html.escape(str(folder))}</code></h2>"]
    shown: set[Path] = set()
    for md in sorted(folder.glob("[!.]*.md")):
        text = md.read_text()
        parts.append(f"<h3>{html.escape(md.stem)}</h3>" + markdown_to_html(text, md.parent))
        shown |= {(md.parent / p).resolve() for p in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)}
    for fig in sorted(folder.glob("figures/[!.]*.png")) + sorted(folder.glob("[!.]*.png")):
        if fig.resolve() not in shown:
            parts.append(_img(fig, fig.stem.replace("_", " ")))
    return "\n".join(parts)


def write_html_report(paths: Sequence[str | Path], out: str | Path, title: str = "facedyn report") -> Path:
    """Write one self-contained page for runs (directories with ``config.json``; sweep folders expanded) and
    results folders (any other directory with ``.md`` tables or figures); returns ``out``."""
    sections = []
    for p in map(Path, paths):
        if runs.names_shipped(p) or runs.is_run(p) or (p.is_dir() and any(p.glob(f"*/{runs.CONFIG_FILE}"))):
            sections += [run_section(r) for r in runs.expand_runs([p])]
        elif p.is_dir():
            sections.append(results_section(p))
        else:
            from facedyn.errors import InputNotFoundError

            raise InputNotFoundError(f"{p}: not a run directory or a results folder")
    page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>"
            f'<p class="meta">facedyn {__version__}; DRs are shown by per-image min–max to [0, 255].</p>'
            + "\n".join(sections) + "</body></html>\n")
    out = Path(out)
    write_text(out, page)
    return out
