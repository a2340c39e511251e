"""The pieces every report page is made of: escaping, the page shell (inline CSS and script, nothing fetched),
inline SVG line and bar charts, tables, relative links and the atomic write.

Everything a user named (class, file and folder names, captions) goes through :func:`esc`; links are relative to
the page and percent-encoded, so a report folder can be copied, zipped or served and opened from ``file://``.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote

CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1400px;padding:16px;
color:#1d2330;background:#fafbfc}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:24px 0 8px;border-bottom:1px solid #dde1e8;padding-bottom:4px}
table{border-collapse:collapse;margin:4px 0}td,th{border:1px solid #dde1e8;padding:3px 7px;text-align:left;
vertical-align:top}th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.meta td:first-child{font-weight:600}.charts{display:flex;flex-wrap:wrap;gap:12px}
.chart{background:#fff;border:1px solid #dde1e8;border-radius:4px;padding:6px}
.chart text{font-size:11px;fill:#444}.grid{display:flex;flex-wrap:wrap;gap:12px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:4px;padding:8px;max-width:660px}
.card video,.card img{max-width:100%;display:block;margin:4px 0}.card video{width:100%;image-rendering:pixelated}
.bars{display:block}.cap{font-size:13px}
.epoch{display:none}.epoch.on{display:block}.err td{color:#a11}.muted{color:#667}
input[type=range]{width:260px;vertical-align:middle}.cm td{text-align:right;min-width:26px}
.cm th{font-weight:500;font-size:12px}
"""

# Epoch sliders: each card shows the epoch its slider points at. Videos only load when shown (preload="none",
# then load() once visible), so opening the page fetches no media.
SCRIPT = """
function show(card,i){card.querySelectorAll('.epoch').forEach(function(e){
 var on=e.dataset.i==String(i);e.classList.toggle('on',on);
 if(on){e.querySelectorAll('video').forEach(function(v){if(v.preload==='none'&&seen.has(card)){v.preload='auto';v.load();}});}
 else{e.querySelectorAll('video').forEach(function(v){v.pause();});}});
 var l=card.querySelector('.epoch-label');if(l){l.textContent=card.querySelector('.epoch.on').dataset.epoch;}}
var seen=new Set();
var io=new IntersectionObserver(function(es){es.forEach(function(e){if(e.isIntersecting&&!seen.has(e.target)){
 seen.add(e.target);var s=e.target.querySelector('input.slider');show(e.target,s?s.value:0);}});});
document.querySelectorAll('.card').forEach(function(c){io.observe(c);var s=c.querySelector('input.slider');
 if(s){s.addEventListener('input',function(){show(c,s.value);});}});
"""

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def esc(value: object) -> str:
    """``value`` as HTML text (quotes escaped too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def rel(path: str | Path, start: str | Path) -> str:
    """A relative, percent-encoded link from the folder ``start`` to ``path``."""
    return quote(Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix())


def page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n{body}\n<script>{SCRIPT}</script>"
        "</body></html>\n"
    )


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` beside ``path`` and rename it over ``path``: a reader never sees half a page."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
    return path


def table(header: Sequence[str], rows: Iterable[Sequence[object]], cls: str = "") -> str:
    """A table; cells are escaped, except those given as :class:`Raw`; numbers are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for c in row:
            if isinstance(c, Raw):
                cells.append(f"<td>{c}</td>")
            elif isinstance(c, float):
                cells.append(f'<td class="num">{fmt(c)}</td>')
            elif isinstance(c, int):
                cells.append(f'<td class="num">{c}</td>')
            else:
                cells.append(f"<td>{esc(c)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f'<table class="{esc(cls)}"><tr>{head}</tr>{"".join(body)}</table>'


class Raw(str):
    """Markup that :func:`table` puts in a cell as it is (built from escaped parts)."""


def fmt(x: float) -> str:
    return "–" if math.isnan(x) else f"{x:.3f}" if abs(x) < 1000 else f"{x:.4g}"


def line_chart(title: str, series: dict[str, list[tuple[float, float]]], x_label: str = "epoch") -> str:
    """An SVG chart with one polyline per series and one ``<circle>`` per point (``data-x`` its x value)."""
    series = {k: [(x, y) for x, y in v if math.isfinite(y)] for k, v in series.items()}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return ""
    w, h, left, right, top, bottom = 360, 220, 46, 10, 24, 56
    xs = [x for v in series.values() for x, _ in v]
    ys = [y for v in series.values() for _, y in v]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float) -> float:
        return left + (w - left - right) * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5)

    def py(y: float) -> float:
        return top + (h - top - bottom) * (1 - (y - y0) / (y1 - y0))

    parts = [
        f'<svg class="chart" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{esc(title)}">',
        f'<text x="{left}" y="15" style="font-weight:600;font-size:12px">{esc(title)}</text>',
        f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#999"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        y = y0 + (y1 - y0) * frac
        parts.append(f'<text x="{left - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{fmt(y)}</text>')
    ticks = sorted(set(xs))
    step = max(1, math.ceil(len(ticks) / 8))
    for x in ticks[::step]:
        label = int(x) if float(x).is_integer() else fmt(x)
        parts.append(f'<text x="{px(x):.1f}" y="{h - bottom + 14}" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="{(left + w - right) / 2}" y="{h - bottom + 28}" text-anchor="middle">{esc(x_label)}</text>')
    for k, (name, points) in enumerate(series.items()):
        colour = COLOURS[k % len(COLOURS)]
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        parts.append(f'<g class="series" data-name="{esc(name)}">')
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        for x, y in points:
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}" data-x="{x:g}">'
                f"<title>{esc(name)} {x:g}: {fmt(y)}</title></circle>"
            )
        parts.append("</g>")
        lx, ly = left + (k % 2) * 150, h - 16 + (k // 2) * 12  # legend: two per row under the axis label
        parts.append(f'<rect x="{lx}" y="{ly - 4}" width="10" height="3" fill="{colour}"/>')
        parts.append(f'<text x="{lx + 14}" y="{ly}">{esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(items: Sequence[tuple[str, float]], width: int = 320) -> str:
    """Horizontal bars of values in [0, 1] (e.g. the top-5 probabilities), labelled with escaped names."""
    row, label_w = 18, 130
    parts = [f'<svg class="bars" width="{width}" height="{row * len(items) + 4}" role="img" aria-label="top-5">']
    for i, (name, p) in enumerate(items):
        y = i * row + 2
        bar = max(0.0, min(1.0, p)) * (width - label_w - 48)
        short = name if len(name) <= 20 else name[:19] + "…"
        parts.append(
            f'<text x="{label_w - 4}" y="{y + 12}" text-anchor="end" style="font-size:11px">{esc(short)}</text>'
            f'<rect x="{label_w}" y="{y + 2}" width="{bar:.1f}" height="{row - 6}" fill="{COLOURS[0]}"/>'
            f'<text x="{label_w + bar + 4:.1f}" y="{y + 12}" style="font-size:11px">{p:.3f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def video(src: str, poster: str | None = None) -> str:
    """A lazily loaded, muted, looping video (the page's script loads it once its card is on screen)."""
    p = f' poster="{esc(poster)}"' if poster else ""
    return f'<video src="{esc(src)}" preload="none" muted loop controls playsinline{p}></video>'


def image(src: str, alt: str) -> str:
    return f'<img src="{esc(src)}" alt="{esc(alt)}" loading="lazy">'
