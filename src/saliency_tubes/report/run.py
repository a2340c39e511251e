"""The run report, ``<run folder>/report.html``, built from the files of the run folder alone.

What it reads (the training callback writes them; any run folder with them can be rebuilt with
``python -m saliency_tubes.report RUN_DIR``):

- ``run.json``: the header (run name, model, dataset, classes, key settings);
- ``metrics.jsonl``: one JSON object per validation epoch (``epoch``, ``step`` and the epoch's scalars such as
  ``train/loss``, ``val/loss``, ``val/acc_top1``, ``val/tube_mass_in_gt``, ``val/mask_share``); a later line for
  the same epoch (a resumed run) replaces the earlier one;
- ``confusion.json``: the confusion matrix of the latest validation epoch;
- ``tubes/epoch_NNN/sample_<i>/``: what :func:`saliency_tubes.explain.write_explanation` wrote for each sample
  (``overlay.mp4``, ``tube.png``, ``result.json``, and ``pyramid.png`` where the method makes one).

The page holds no media: videos and images are relative links, loaded lazily.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from .html import Raw, esc, image, line_chart, page, rel, table, video, write_atomic

RUN_INFO = "run.json"
METRICS = "metrics.jsonl"
CONFUSION = "confusion.json"
REPORT = "report.html"
MAX_MATRIX_CLASSES = 40  # above this, the most confused pairs instead of the full matrix

CHARTS = (
    ("loss", ("train/loss", "val/loss")),
    ("accuracy", ("val/acc_top1", "val/acc_top5")),
    ("tube mass in the actor's mask", ("val/tube_mass_in_gt", "val/mask_share")),
    ("faithfulness (AUC)", ("val/deletion_auc", "val/insertion_auc")),
)


def append_metrics(run_dir: str | Path, row: dict[str, Any]) -> None:
    """Add one epoch's scalars to ``metrics.jsonl`` (non-finite values are written as null)."""
    clean = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in row.items()}
    path = Path(run_dir) / METRICS
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(clean) + "\n")


def write_run_info(run_dir: str | Path, info: dict[str, Any]) -> None:
    write_atomic(Path(run_dir) / RUN_INFO, json.dumps(info, indent=2, default=str))


def write_confusion(run_dir: str | Path, epoch: int, classes: list[str], matrix: list[list[int]]) -> None:
    write_atomic(
        Path(run_dir) / CONFUSION, json.dumps({"epoch": epoch, "classes": classes, "matrix": matrix}, default=int)
    )


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The epochs' rows of ``metrics.jsonl``, one per epoch (the last written wins), by epoch."""
    rows: dict[int, dict[str, Any]] = {}
    path = run_dir / METRICS
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                rows[int(row["epoch"])] = row
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash
    return [rows[e] for e in sorted(rows)]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _tubes(run_dir: Path) -> dict[int, dict[int, Path]]:
    """``{sample: {epoch: folder}}`` of the explained samples that were written completely."""
    found: dict[int, dict[int, Path]] = {}
    for folder in sorted((run_dir / "tubes").glob("epoch_*/sample_*")):
        e, s = re.fullmatch(r"epoch_(\d+)", folder.parent.name), re.fullmatch(r"sample_(\d+)", folder.name)
        if e and s and (folder / "result.json").is_file():
            found.setdefault(int(s[1]), {})[int(e[1])] = folder
    return found


def _header(run_dir: Path, info: dict[str, Any]) -> str:
    name = info.get("run", run_dir.name)
    rows = [
        (k, v if isinstance(v, str) else ", ".join(map(str, v)) if isinstance(v, list) else json.dumps(v, default=str))
        for k, v in info.items()
        if k != "run"
    ]
    return f"<h1>{esc(name)}</h1><p class='muted'>Saliency Tubes run report</p>" + table(("", ""), rows, "meta")


def _charts(metrics: list[dict[str, Any]]) -> str:
    charts = []
    for title, names in CHARTS:
        series = {
            n: [(float(r["epoch"]), float(r[n])) for r in metrics if isinstance(r.get(n), int | float)] for n in names
        }
        charts.append(line_chart(title, series))
    body = "".join(c for c in charts if c)
    return f"<h2>Curves</h2><div class='charts' id='curves'>{body or '<p>no epochs yet</p>'}</div>"


def _caption(result: dict[str, Any]) -> str:
    target = result.get("target") or {}
    label = result.get("label") or {}
    true = label.get("class", "?")
    pred, p = target.get("class", "?"), target.get("probability", float("nan"))
    mark = "✓" if true == pred else "✗"
    return f"{mark} true <b>{esc(true)}</b> · predicted <b>{esc(pred)}</b> (p={float(p):.2f})"


def _sample_card(run_dir: Path, sample: int, epochs: dict[int, Path]) -> str:
    order = sorted(epochs)
    first = _read_json(epochs[order[0]] / "result.json") or {}
    source = Path(str(first.get("video", "?"))).name
    cells = []
    for i, epoch in enumerate(order):
        folder = epochs[epoch]
        result = _read_json(folder / "result.json") or {}
        media = video(rel(folder / "overlay.mp4", run_dir))
        media += image(rel(folder / "tube.png", run_dir), f"tube plot, sample {sample}, epoch {epoch}")
        if (folder / "pyramid.png").is_file():
            media += image(rel(folder / "pyramid.png", run_dir), f"per-depth pyramid, sample {sample}, epoch {epoch}")
        on = " on" if i == len(order) - 1 else ""
        cells.append(
            f'<div class="epoch{on}" data-i="{i}" data-epoch="{epoch}">'
            f'<div class="cap">epoch {epoch}: {_caption(result)}</div>{media}</div>'
        )
    slider = (
        f'<label>epoch <input class="slider" type="range" min="0" max="{len(order) - 1}" value="{len(order) - 1}"> '
        f'<span class="epoch-label">{order[-1]}</span></label>'
    )
    return (
        f'<div class="card" data-sample="{sample}"><b>sample {sample}</b> '
        f'<span class="muted">{esc(source)}</span><br>{slider}{"".join(cells)}</div>'
    )


def _confusion(data: dict[str, Any] | None) -> str:
    if not data or not data.get("matrix"):
        return ""
    classes, matrix = [str(c) for c in data["classes"]], data["matrix"]
    head = f"<h2>Confusion matrix (validation, epoch {esc(data.get('epoch', '?'))}; rows true, columns predicted)</h2>"
    if len(classes) > MAX_MATRIX_CLASSES:
        pairs = sorted(
            (
                (matrix[t][p], classes[t], classes[p])
                for t in range(len(classes))
                for p in range(len(classes))
                if t != p
            ),
            reverse=True,
        )[:30]
        return head + table(("clips", "true", "predicted as"), [(n, t, p) for n, t, p in pairs if n], "cm")
    rows = []
    for t, name in enumerate(classes):
        total = sum(matrix[t]) or 1
        cells = [Raw(esc(name))]
        for n in matrix[t]:
            shade = int(255 - 160 * n / total)  # darker blue for a larger share of the true class's clips
            cells.append(Raw(f'<span style="background:rgb({shade},{shade},255);display:block">{int(n)}</span>'))
        rows.append(cells)
    return head + table(("true \\ predicted", *classes), rows, "cm")


def build_run_report(run_dir: str | Path) -> Path:
    """Write ``run_dir/report.html`` from the run folder's files (atomically); returns its path."""
    run_dir = Path(run_dir)
    info = _read_json(run_dir / RUN_INFO) or {"run": run_dir.name}
    metrics = read_metrics(run_dir)
    tubes = _tubes(run_dir)
    n_epochs = len({e for by_epoch in tubes.values() for e in by_epoch})
    grid = "".join(_sample_card(run_dir, s, tubes[s]) for s in sorted(tubes))
    body = (
        _header(run_dir, info)
        + _charts(metrics)
        + f"<h2>Saliency Tubes: {len(tubes)} samples × {n_epochs} epochs</h2>"
        + f"<div class='grid' id='tubes'>{grid or '<p>no tubes yet</p>'}</div>"
        + _confusion(_read_json(run_dir / CONFUSION))
    )
    return write_atomic(run_dir / REPORT, page(f"{info.get('run', run_dir.name)} · report", body))
