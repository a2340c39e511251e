"""``OUT/index.html`` of ``explain.py`` (one card per explained video, a summary table, the failed inputs) and
``evaluation.html`` of ``explain.py --evaluate`` (the quality table)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .html import Raw, bar_chart, esc, fmt, image, page, rel, table, video, write_atomic

INDEX = "index.html"
EVALUATION = "evaluation.html"


def _card(out: Path, shown: str, folder: Path, result: dict[str, Any]) -> str:
    target = result.get("target") or {}
    top = [(str(p["class"]), float(p["probability"])) for p in result.get("predictions", [])]
    media = video(rel(folder / "overlay.mp4", out)) + image(rel(folder / "tube.png", out), f"tube plot of {shown}")
    if (folder / "pyramid.png").is_file():
        media += image(rel(folder / "pyramid.png", out), f"per-depth pyramid of {shown}")
    links = " · ".join(
        f'<a href="{esc(rel(folder / name, out))}">{name}</a>'
        for name in ("result.json", "saliency.npy")
        if (folder / name).is_file()
    )
    return (
        f'<div class="card" id="{esc(folder.name)}"><b>{esc(shown)}</b><br>'
        f'<span class="cap">explained: <b>{esc(target.get("class", "?"))}</b> '
        f"({esc(result.get('method', '?'))})</span>{bar_chart(top)}{media}<div>{links}</div></div>"
    )


def write_explanation_index(
    out: str | Path, done: Sequence[tuple[str, Path]], failed: Sequence[tuple[str, str]], title: str = "Explanations"
) -> Path:
    """Write ``out/index.html``: a summary table of the explained videos (``done``: the input as the user named it
    and the folder :func:`~saliency_tubes.explain.write_explanation` wrote), the ``failed`` inputs with their
    one-line errors, then one card per video. Returns the page's path."""
    out = Path(out)
    rows, cards = [], []
    for shown, folder in done:
        try:
            result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        top = (result.get("predictions") or [{}])[0]
        target = result.get("target") or {}
        link = Raw(f'<a href="#{esc(folder.name)}">{esc(shown)}</a>')
        rows.append(
            (
                link,
                str(top.get("class", "?")),
                float(top.get("probability", math.nan)),
                str(target.get("class", "?")),
                str(result.get("method", "?")),
            )
        )
        cards.append(_card(out, shown, folder, result))
    body = f"<h1>{esc(title)}</h1><p class='muted'>{len(rows)} explained, {len(failed)} failed</p>"
    body += "<h2>Summary</h2>" + table(("video", "prediction", "probability", "target", "method"), rows, "summary")
    if failed:
        body += "<h2>Failed inputs</h2>" + table(("input", "error"), failed, "err")
    body += f"<h2>Videos</h2><div class='grid'>{''.join(cards)}</div>"
    return write_atomic(out / INDEX, page(title, body))


def write_evaluation_page(rows: list[dict[str, Any]], out: str | Path, metrics: Sequence[str]) -> Path:
    """``out/evaluation.html``: per method, mean ± std of each metric (and the share of clips where it beats the
    random map)."""
    out = Path(out)
    shown = [m for m in metrics if rows and f"{m}_mean" in rows[0]]
    body_rows = []
    for row in rows:
        cells: list[object] = [str(row["method"]), int(row.get("clips", 0))]
        for m in shown:
            cell = f"{fmt(row[f'{m}_mean'])} ± {fmt(row[f'{m}_std'])}"
            beats = row.get(f"{m}_beats_random")
            if isinstance(beats, float) and not math.isnan(beats):
                cell += f" ({beats:.0%})"
            cells.append(cell)
        body_rows.append(cells)
    body = (
        "<h1>Explanation quality</h1><p class='muted'>mean ± std over the clips; in brackets, the share of clips "
        "where the method beats the random map</p>"
        + table(("method", "clips", *(m.replace("_", " ") for m in shown)), body_rows, "quality")
    )
    return write_atomic(out / EVALUATION, page("Explanation quality", body))
