"""One self-contained HTML page per analysed video (``facedyn infer VIDEO --html``, ``facedyn.view(df)``).

The page shows, for the table :func:`facedyn.analyze` returns (or ``faces.csv`` of ``facedyn infer``):

* a summary per face (:func:`facedyn.summarize`, as ``summary.csv`` of ``facedyn infer``): frames, time visible,
  mean confidence, pose range, per AU proxy the share of time active and its peak, blinks, the DR's motion;
* a frame scrubber (slider, play button, arrow keys; ``view.html#120`` opens at frame 120): the frame with
  each face's 68 landmarks, box and id drawn, and beside it each face's DR (or other image-valued output);
* per face, time series of the head pose (degrees) and of the landmark AU proxies, with a cursor at the
  current frame (click a chart to jump there);
* per face, a strip of DRs evenly spaced over the video;
* per face, a 2-D PCA map of the embedding over time (the ``<run>_k`` embedding columns when a run gives
  them, else the flattened DR, which is the DR's ``encode``), coloured by time, the current frame marked.

Everything is inline (frames as JPEG and maps as PNG in base64, charts as SVG, a few lines of JavaScript):
the page makes no network request. Frames are decoded again from the source and at most ``max_frames`` of
them (evenly spaced) are embedded, scaled to ``width`` pixels, so the file stays a few MB.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facedyn import __version__
from facedyn.atomic import write_text
from facedyn.errors import ConfigError, NoFaceError

__all__ = ["embedding_columns", "view", "write_video_page"]

_POSE = [("pose_yaw_deg", "yaw", "#d62728"), ("pose_pitch_deg", "pitch", "#1f77b4"),
         ("pose_roll_deg", "roll", "#2ca02c")]
_PROXIES = [("AU01_p", "AU01 brow in", "#9467bd"), ("AU02_p", "AU02 brow out", "#8c564b"),
            ("AU12_p", "AU12 lip corners", "#e377c2"), ("AU25_p", "AU25 lips part", "#ff7f0e"),
            ("AU26_p", "AU26 jaw", "#17becf"), ("AU45_p", "AU45 eyes shut", "#7f7f7f")]
_W, _H, _PAD, _TOP = 640, 170, 34, 34  # chart size, left margin, top of the plot area (SVG units)


def _even(n: int, k: int) -> np.ndarray:
    """At most ``k`` indices evenly spaced over ``range(n)``, first and last included."""
    return np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(int)) if n else np.zeros(0, int)


def _b64(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _encode(rgb: np.ndarray, ext: str = ".jpg") -> str:
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, 80] if ext == ".jpg" else []
    ok, buf = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise ConfigError(f"could not encode an image of shape {rgb.shape}")
    return _b64(buf.tobytes(), "image/jpeg" if ext == ".jpg" else "image/png")


def embedding_columns(table: pd.DataFrame) -> list[str]:
    """The widest block of numbered columns ``<name>_0..<name>_{D-1}`` (D >= 2) other than the landmarks
    (a run's embedding), or ``[]``."""
    blocks: dict[str, list[str]] = {}
    for c in table.columns:
        m = re.fullmatch(r"(.+)_(\d+)", str(c))
        if m and m.group(1) not in ("x", "y"):
            blocks.setdefault(m.group(1), []).append(str(c))
    best = max(blocks.values(), key=len, default=[])
    return best if len(best) >= 2 else []


def _map_columns(table: pd.DataFrame) -> list[str]:
    """Columns of image-valued outputs (arrays ``(C, H, W)``)."""
    out = []
    for c in table.columns:
        if table[c].dtype == object:
            v = next((x for x in table[c] if isinstance(x, np.ndarray)), None)
            if v is not None and v.ndim == 3:
                out.append(str(c))
    return out


def _pca2(x: np.ndarray) -> np.ndarray:
    """First two principal-component scores of the rows of ``x`` ``(N, D)`` → ``(N, 2)`` (zeros where fewer)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(0)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    z = u[:, :2] * s[:2]
    return np.pad(z, ((0, 0), (0, 2 - z.shape[1])))


def _polyline(t: np.ndarray, v: np.ndarray, t0: float, t1: float, lo: float, hi: float, color: str) -> str:
    """SVG polylines of ``v`` over ``t`` (broken where ``v`` is NaN) in the chart's coordinates."""
    sx = (_W - _PAD - 8) / max(t1 - t0, 1e-9)
    sy = (_H - 18 - _TOP) / max(hi - lo, 1e-9)
    parts, cur = [], []
    for ti, vi in zip(t, v, strict=True):
        if np.isfinite(vi):
            cur.append(f"{_PAD + (ti - t0) * sx:.1f},{_H - 18 - (vi - lo) * sy:.1f}")
        elif cur:
            parts.append(cur)
            cur = []
    if cur:
        parts.append(cur)
    return "".join(f'<polyline fill="none" stroke="{color}" stroke-width="1.4" points="{" ".join(p)}"/>'
                   for p in parts)


def _chart(rows: pd.DataFrame, series: list[tuple[str, str, str]], t0: float, t1: float, title: str) -> str:
    """One time-series chart (SVG) with a legend and a cursor line the page's script moves."""
    t = rows["timestamp"].to_numpy(float)
    cols = [c for c, _, _ in series if c in rows]
    if not cols:
        return ""
    vals = rows[cols].to_numpy(float)
    finite = vals[np.isfinite(vals)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi - lo < 1e-6:
        lo, hi = lo - 1, hi + 1
    body = [f'<text x="{_PAD}" y="12" class="ct">{html.escape(title)}</text>',
            f'<line x1="{_PAD}" x2="{_W - 8}" y1="{_H - 18}" y2="{_H - 18}" class="ax"/>',
            f'<line x1="{_PAD}" x2="{_PAD}" y1="{_TOP}" y2="{_H - 18}" class="ax"/>',
            f'<text x="2" y="{_H - 18}" class="tk">{lo:.3g}</text>'
            f'<text x="2" y="{_TOP + 6}" class="tk">{hi:.3g}</text>',
            f'<text x="{_PAD}" y="{_H - 4}" class="tk">{t0:.1f} s</text>',
            f'<text x="{_W - 40}" y="{_H - 4}" class="tk">{t1:.1f} s</text>']
    if lo < 0 < hi:
        y0 = _H - 18 - (0 - lo) * (_H - 18 - _TOP) / (hi - lo)
        body.append(f'<line x1="{_PAD}" x2="{_W - 8}" y1="{y0:.1f}" y2="{y0:.1f}" class="zero"/>')
    x = _PAD
    for c, label, color in series:
        if c in rows:
            body.append(_polyline(t, rows[c].to_numpy(float), t0, t1, lo, hi, color))
            body.append(f'<text x="{x}" y="26" class="lg" fill="{color}">■ {html.escape(label)}</text>')
            x += 5.6 * len(label) + 24
    body.append(f'<line class="cursor" x1="{_PAD}" x2="{_PAD}" y1="{_TOP}" y2="{_H - 18}"/>')
    return (f'<svg class="chart" viewBox="0 0 {_W} {_H}" data-t0="{t0}" data-t1="{t1}" data-x0="{_PAD}" '
            f'data-x1="{_W - 8}">' + "".join(body) + "</svg>")


def _pca_map(rows: pd.DataFrame, emb: np.ndarray, fid: int, label: str) -> str:
    """2-D PCA of one face's embedding over time (SVG): points coloured by time, the current one ringed."""
    z = _pca2(emb)
    size, pad = 260, 14
    lo, hi = z.min(0), z.max(0)
    span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
    p = pad + (z - lo) / span * (size - 2 * pad)
    p[:, 1] = size - p[:, 1]
    n = len(p)
    hue = 240 - 240 * np.arange(n) / max(n - 1, 1)  # blue (start) to red (end)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="hsl({h:.0f},75%,45%)"/>'
                   for h, (x, y) in zip(hue, p, strict=True))
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in p)
    pts = json.dumps({"f": rows["frame"].astype(int).tolist(), "xy": np.round(p, 1).tolist()})
    return (f'<figure class="pca"><svg viewBox="0 0 {size} {size}" class="pcasvg" data-face="{fid}">'
            f'<rect x="0" y="0" width="{size}" height="{size}" class="frame"/>'
            f'<polyline fill="none" stroke="#bbb" stroke-width="0.8" points="{path}"/>{dots}'
            f'<circle class="now" r="6" cx="-20" cy="-20"/></svg><script type="application/json" class="pcapts">'
            f"{pts}</script><figcaption>{html.escape(label)}: PC1 → right, PC2 → up; blue = start, red = end"
            "</figcaption></figure>")


def _sampled_frames(source: Path, wanted: set[int], width: int) -> dict[int, tuple[str, float]]:
    """Decoded frames ``wanted`` of ``source`` as JPEG data URLs at ``width`` px, with their scale."""
    import cv2

    from facedyn.data import video as video_io

    if source.is_file() and source.suffix.lower() in video_io.IMAGE_EXTS:
        frames: Any = [(video_io.read_image(source), 0.0)]
    else:
        frames = video_io.iter_frames(source, stop=max(wanted) + 1)
    out = {}
    for i, (frame, _) in enumerate(frames):
        if i in wanted:
            scale = min(1.0, width / frame.shape[1])
            small = cv2.resize(frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA) if scale < 1 else frame
            out[i] = (_encode(small), scale)
    return out


def _summary_table(summary: pd.DataFrame) -> str:
    """The per-face summary as an HTML table: one column per face, one row per measure."""
    def cell(c: str, v: Any) -> str:
        if c.endswith("_active"):
            return f"{100 * v:.1f} %" if np.isfinite(v) else "–"
        if isinstance(v, int | np.integer):
            return str(int(v))
        return f"{v:.3g}" if np.isfinite(v) else "–"

    rows = summary.reset_index(drop=True)
    head = "".join(f"<th>face {int(f)}</th>" for f in rows["face_id"])
    body = "".join(f"<tr><td>{html.escape(c)}</td>" + "".join(f"<td>{cell(c, rows.loc[i, c])}</td>"
                                                               for i in rows.index) + "</tr>"
                   for c in rows.columns if c != "face_id")
    return ('<h2>Summary per face</h2><p class="meta">As <code>summary.csv</code> / <code>facedyn.summarize</code>: '
            "time visible in seconds; pose range as its 5th–95th percentiles (degrees); an AU proxy is active above "
            "its presence threshold (share of the face's time); blinks are onsets of AU45 activity; "
            "<code>*_motion</code>: mean squared frame-to-frame change of the output per second.</p>"
            f'<table class="summary"><tr><th></th>{head}</tr>{body}</table>')


def write_video_page(table: pd.DataFrame, source: str | Path, out: str | Path,
                     maps: Mapping[str, Sequence[np.ndarray]] | None = None, title: str | None = None,
                     max_frames: int = 240, width: int = 480, strip: int = 12, max_points: int = 2000,
                     summary: pd.DataFrame | None = None) -> Path:
    """Write the page for ``table`` (rows of :func:`facedyn.analyze` of ``source``) to ``out``; returns ``out``.

    Args:
        table: one row per face per frame (``frame, timestamp, face_id, success, x_*, y_*``, the face columns,
            outputs); image-valued outputs as array columns or given in ``maps``.
        source: the video or image the table was made from (its frames are decoded again).
        maps: image-valued outputs by name, one ``(C, H, W)`` array per row of ``table`` (e.g. the memory-mapped
            ``dr.npy`` of ``facedyn infer``); default: the table's array columns.
        max_frames: most frames embedded (evenly spaced over those analysed).
        width: width in pixels of the embedded frames.
        strip: DRs per face in the strip.
        max_points: most frames per face in the charts and the PCA map (evenly spaced; long videos).
        summary: the table's :func:`facedyn.summarize` (computed here when None).

    Raises:
        NoFaceError: no row of ``table`` has a face.
    """
    from facedyn.reports.plots import minmax_uint8

    source = Path(source)
    table = table.reset_index(drop=True)
    faces = table[table["success"] == 1]
    if faces.empty:
        raise NoFaceError(f"{source}: no face in the table; nothing to show")
    maps = dict(maps) if maps is not None else {c: list(table[c]) for c in _map_columns(table)}
    if summary is None:
        from facedyn.face_summary import summarize

        summary = summarize(table, maps)
    map_name = next(iter(maps), None)
    all_frames = np.unique(table["frame"].astype(int))
    keep = set(all_frames[_even(len(all_frames), max_frames)].tolist())
    images = _sampled_frames(source, keep, width)
    lm_cols = [f"{a}_{i}" for i in range(68) for a in ("x", "y")]
    frames_js = []
    for f in sorted(images):
        img, scale = images[f]
        rows = faces[faces["frame"] == f]
        entry = {"f": f, "t": float(table.loc[table["frame"] == f, "timestamp"].iloc[0]), "img": img,
                 "faces": []}
        for idx, r in rows.iterrows():
            face = {"id": int(r["face_id"]), "lm": np.round(r[lm_cols].to_numpy(float) * scale, 1).tolist()}
            if {"face_x", "face_w"} <= set(r.index) and np.isfinite(r["face_x"]):
                face["box"] = [round(float(r[c]) * scale, 1) for c in ("face_x", "face_y", "face_w", "face_h")]
            if map_name is not None:
                face["map"] = _encode(minmax_uint8(np.asarray(maps[map_name][idx])), ".png")
            entry["faces"].append(face)
        frames_js.append(entry)
    t0, t1 = float(table["timestamp"].min()), float(table["timestamp"].max())
    if t1 <= t0:
        t1 = t0 + 1.0
    emb_cols = embedding_columns(table)
    sections = []
    for fid in sorted(faces["face_id"].astype(int).unique()):
        every = faces[faces["face_id"] == fid].sort_values("frame")
        rows = every.iloc[_even(len(every), max_points)]  # what charts and the PCA map draw
        part = [f'<h2>Face {fid}</h2><p class="meta">{len(every)} frames with this face, '
                f"{every['timestamp'].min():.2f}–{every['timestamp'].max():.2f} s; mean confidence "
                f"{every['confidence'].mean() if 'confidence' in every else float('nan'):.2f}"
                f"{'' if len(rows) == len(every) else f'; charts show {len(rows)} evenly spaced frames'}</p>"]
        part.append(_chart(rows, _POSE, t0, t1, "head pose (degrees)"))
        ready = every[every["proxy_ready"] == 1] if "proxy_ready" in every else every
        note = "" if len(ready) == len(every) else f" (rest settled from {ready['timestamp'].min():.1f} s)" \
            if len(ready) else " (rest not settled yet)"
        part.append(_chart(rows, _PROXIES, t0, t1, f"AU proxies (tenths of the eye distance){note}"))
        if map_name is not None:
            pick = rows.index[_even(len(rows), strip)]
            cells = "".join(f'<figure><img src="{_encode(minmax_uint8(np.asarray(maps[map_name][i])), ".png")}" '
                            f'alt="{map_name} frame {int(table.loc[i, "frame"])}"><figcaption>'
                            f'{table.loc[i, "timestamp"]:.1f} s</figcaption></figure>' for i in pick)
            part.append(f'<h3>{html.escape(map_name)} strip (per-image min–max)</h3><div class="strip">{cells}</div>')
        if emb_cols:
            emb, label = rows[emb_cols].to_numpy(float), f"embedding {emb_cols[0].rsplit('_', 1)[0]}"
        elif map_name is not None:
            emb = np.stack([np.asarray(maps[map_name][i], dtype=np.float32).ravel() for i in rows.index])
            label = f"{map_name} (flattened)"
        else:
            emb = None
        if emb is not None and len(rows) >= 3:
            part.append("<h3>Embedding over time (PCA)</h3>" + _pca_map(rows, emb, fid, label))
        sections.append(f'<section class="face">{"".join(part)}</section>')
    name = title or f"facedyn — {source.name}"
    data = json.dumps({"frames": frames_js, "map": map_name}).replace("</", "<\\/")
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(name)}</title>'
            f"<style>{_CSS}</style></head><body><h1>{html.escape(name)}</h1>"
            f'<p class="meta">facedyn {__version__}; {len(table)} rows, {faces["face_id"].nunique()} face(s), '
            f"{len(all_frames)} frames analysed, {len(images)} shown. Pose: yaw &gt; 0 turns towards image right, "
            "pitch &gt; 0 raises the chin, roll &gt; 0 tilts clockwise. DRs by per-image min–max.</p>"
            '<div id="viewer"><div><canvas id="frame"></canvas><div class="controls"><button id="play">▶</button>'
            '<input id="slider" type="range" min="0" value="0"><span id="pos"></span></div></div>'
            '<div id="maps"></div></div>' + _summary_table(summary) + "".join(sections) +
            f'<script type="application/json" id="data">{data}</script><script>{_JS}</script></body></html>\n')
    out = Path(out)
    write_text(out, page)
    return out


def view(table: pd.DataFrame, out: str | Path = "facedyn_view.html", source: str | Path | None = None,
         **kw: Any) -> Path:
    """Write the page of an :func:`facedyn.analyze` table: ``facedyn.analyze(video).pipe(facedyn.view, "v.html")``.

    ``source`` defaults to the video the table was made from (``table.attrs["source"]``); ``kw`` go to
    :func:`write_video_page`.
    """
    source = source if source is not None else table.attrs.get("source")
    if source is None:
        raise ConfigError("give source=VIDEO: this table does not say which video it was made from")
    return write_video_page(table, source, out, **kw)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem auto;max-width:1180px;color:#1d1d1f;
padding:0 1rem;line-height:1.4}h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.15rem;border-bottom:1px solid #ddd;
padding-bottom:.2rem;margin-top:1.6rem}h3{font-size:.95rem;margin:.8rem 0 .3rem}.meta{color:#666;font-size:.82rem}
#viewer{display:flex;gap:1rem;align-items:flex-start;position:sticky;top:0;background:#fff;padding:.4rem 0;z-index:2;
border-bottom:1px solid #eee}#frame{border:1px solid #ccc;max-width:100%}.controls{display:flex;gap:.5rem;
align-items:center;font-size:.85rem}#slider{flex:1}#maps figure{margin:0 0 .4rem 0;font-size:.75rem;color:#555}
#maps img,.strip img{width:80px;height:80px;image-rendering:pixelated;border:1px solid #ddd}
.strip{display:flex;flex-wrap:wrap;gap:4px}.strip figure{margin:0;font-size:.7rem;color:#666;text-align:center}
.chart{width:100%;max-width:820px;height:auto;display:block;cursor:pointer}.ct{font-size:11px;fill:#333}
.lg{font-size:10px}.tk{font-size:9px;fill:#888}.ax{stroke:#999}.zero{stroke:#ccc;stroke-dasharray:3 3}
.cursor{stroke:#000;stroke-width:1}.pca{display:inline-block;margin:0}.pcasvg{width:260px;height:260px}
.pca figcaption{font-size:.75rem;color:#666;max-width:260px}.frame{fill:none;stroke:#ddd}.now{fill:none;
stroke:#000;stroke-width:2}button{font-size:.9rem}.summary{border-collapse:collapse;font-size:.8rem}
.summary td,.summary th{border:1px solid #ddd;padding:.15rem .5rem;text-align:right}
.summary td:first-child{text-align:left}
"""

_JS = """
const D = JSON.parse(document.getElementById('data').textContent);
const F = D.frames, cv = document.getElementById('frame'), cx = cv.getContext('2d');
const slider = document.getElementById('slider'), pos = document.getElementById('pos');
const maps = document.getElementById('maps'), imgs = F.map(f => { const im = new Image(); im.src = f.img; return im; });
const COLORS = ['#00e5ff', '#ffea00', '#ff4081', '#76ff03', '#ff9100', '#d500f9'];
slider.max = F.length - 1;
const pcas = [...document.querySelectorAll('.pcasvg')].map(s => ({svg: s,
  pts: JSON.parse(s.parentNode.querySelector('.pcapts').textContent)}));
let cur = 0, timer = null;
function draw(k) {
  cur = k; slider.value = k; const f = F[k], im = imgs[k];
  const paint = () => {
    cv.width = im.naturalWidth; cv.height = im.naturalHeight; cx.drawImage(im, 0, 0);
    f.faces.forEach(face => {
      const c = COLORS[face.id % COLORS.length]; cx.strokeStyle = c; cx.fillStyle = c; cx.lineWidth = 2;
      if (face.box) { cx.strokeRect(face.box[0], face.box[1], face.box[2], face.box[3]);
        cx.font = 'bold 14px sans-serif'; cx.fillText('face ' + face.id, face.box[0] + 2, face.box[1] - 4); }
      for (let i = 0; i < 136; i += 2) { cx.beginPath(); cx.arc(face.lm[i], face.lm[i + 1], 1.6, 0, 6.3); cx.fill(); }
    });
  };
  if (im.complete) paint(); else im.onload = paint;
  pos.textContent = 'frame ' + f.f + ' · ' + f.t.toFixed(2) + ' s · ' + f.faces.length + ' face(s)';
  maps.replaceChildren(...f.faces.filter(x => x.map).map(x => {
    const fig = document.createElement('figure'), im = document.createElement('img');
    const cap = document.createElement('figcaption');
    im.src = x.map; cap.textContent = 'face ' + x.id + ' ' + D.map; fig.append(im, cap); return fig; }));
  document.querySelectorAll('.chart').forEach(s => {
    const t0 = +s.dataset.t0, t1 = +s.dataset.t1, x0 = +s.dataset.x0, x1 = +s.dataset.x1;
    const x = x0 + (f.t - t0) / (t1 - t0) * (x1 - x0), l = s.querySelector('.cursor');
    l.setAttribute('x1', x); l.setAttribute('x2', x);
  });
  pcas.forEach(p => { let j = -1; p.pts.f.forEach((g, i) => { if (g <= f.f) j = i; });
    const c = p.svg.querySelector('.now');
    if (j >= 0) { c.setAttribute('cx', p.pts.xy[j][0]); c.setAttribute('cy', p.pts.xy[j][1]); } });
}
slider.oninput = () => draw(+slider.value);
document.getElementById('play').onclick = e => {
  if (timer) { clearInterval(timer); timer = null; e.target.textContent = '▶'; return; }
  e.target.textContent = '❚❚'; timer = setInterval(() => draw((cur + 1) % F.length), 80);
};
document.addEventListener('keydown', e => {
  if (e.key === 'ArrowRight') draw(Math.min(cur + 1, F.length - 1));
  if (e.key === 'ArrowLeft') draw(Math.max(cur - 1, 0));
});
function nearest(key, v) {
  let best = 0;
  F.forEach((f, i) => { if (Math.abs(f[key] - v) < Math.abs(F[best][key] - v)) best = i; });
  return best;
}
document.querySelectorAll('.chart').forEach(s => s.addEventListener('click', e => {
  const r = s.getBoundingClientRect(), vb = s.viewBox.baseVal, x = (e.clientX - r.left) / r.width * vb.width;
  const d = s.dataset, t = +d.t0 + (x - +d.x0) / (+d.x1 - +d.x0) * (+d.t1 - +d.t0);
  draw(nearest('t', t));
}));
draw(nearest('f', parseInt(location.hash.slice(1)) || 0));  // view.html#120 opens at frame 120
"""
