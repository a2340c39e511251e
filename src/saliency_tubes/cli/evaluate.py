"""``python explain.py --evaluate``: how good are the explanations, per method, on a validation split.

For every validation clip (centre clip, as in training) and every method, with the predicted class as target:
localisation against ground-truth masks where the dataset has them (mass in the mask, its lift over the mask's
share, frame pointing game over the frames where the actor moves, temporal hit) and faithfulness (deletion and
insertion AUC), the latter also for a random map, the reference every method must beat.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import torch

from ..data.datasets import VideoClipDataset, validation_dataset
from ..data.layouts import LayoutOptions
from ..explain import explain, lift, pointing_game, temporal_hit, tube_mass_in_gt
from ..explain.faithfulness import deletion_insertion, random_tubes
from ..lightning.checkpoint import ModelInfo

LOCALISATION = ("mass_in_gt", "lift", "pointing_game", "temporal_hit")
FAITHFULNESS = ("deletion_auc", "insertion_auc")


def validation_set(
    root: str | Path, info: ModelInfo, layout: str = "folder", options: LayoutOptions | None = None
) -> VideoClipDataset:
    """The ``val`` split of the dataset at ``root`` (in ``layout``), read as the model was validated."""
    return validation_dataset(
        root,
        layout,
        options,
        class_names=info.class_names,
        clip_len=info.clip_len,
        stride=info.stride,
        input_size=info.input_size,
        mean=info.mean,
        std=info.std,
    )


def evaluate(
    model,
    info: ModelInfo,
    dataset: VideoClipDataset,
    methods: list[str],
    device: torch.device,
    steps: int = 128,
    grid: int = 16,
    baseline: str = "blur",
    batch_size: int = 8,
    max_clips: int | None = None,
    layer: str | None = None,
    on_batch=None,
) -> dict[str, dict[str, list[float]]]:
    """Per-clip metric values: ``{method or "random": {metric: [value per clip]}}``."""
    n = len(dataset) if max_clips is None else min(max_clips, len(dataset))
    values: dict[str, dict[str, list[float]]] = {m: {} for m in [*methods, "random"]}
    for start in range(0, n, batch_size):
        items = [dataset.load(i, with_mask=True) for i in range(start, min(start + batch_size, n))]
        clips = torch.stack([it["clip"] for it in items]).to(device)
        has_truth = all("mask" in it for it in items)
        masks = torch.stack([it["mask"] for it in items]).to(device) if has_truth else None
        moving = torch.stack([it["moving"] for it in items]).to(device) if has_truth else None
        maps, targets = {}, None
        for method in methods:
            result = explain(model, clips, method, layer=None if method == "saliency_tubes" else layer)
            maps[method], targets = result.tubes, result.targets
        maps["random"] = random_tubes(tuple(maps[methods[0]].shape), grid=grid, seed=start, device=device)
        for name, tubes in maps.items():
            scores = {}
            if has_truth:
                scores["mass_in_gt"] = tube_mass_in_gt(tubes, masks)
                scores["lift"] = lift(tubes, masks)
                scores["pointing_game"] = pointing_game(tubes, masks, frames=moving & masks.flatten(2).any(-1))
                scores["temporal_hit"] = temporal_hit(tubes, moving)
            faith = deletion_insertion(model, clips, tubes, targets, steps=steps, grid=grid, baseline=baseline)
            scores["deletion_auc"], scores["insertion_auc"] = faith["deletion_auc"], faith["insertion_auc"]
            for metric, v in scores.items():
                values[name].setdefault(metric, []).extend(float(x) for x in v.cpu())
        if on_batch:
            on_batch(len(items))
    return values


def summarise(values: dict[str, dict[str, list[float]]]) -> list[dict]:
    """One row per method: mean and std of each metric, and the share of clips where it beats the random map."""
    rows = []
    reference = values["random"]
    for name, metrics in values.items():
        row = {"method": name, "clips": len(next(iter(metrics.values()), []))}
        for metric, vals in metrics.items():
            finite = [v for v in vals if not math.isnan(v)]
            mean = sum(finite) / len(finite) if finite else float("nan")
            std = math.sqrt(sum((v - mean) ** 2 for v in finite) / len(finite)) if finite else float("nan")
            row[f"{metric}_mean"], row[f"{metric}_std"] = mean, std
            if name != "random" and metric in ("lift", "deletion_auc", "insertion_auc"):
                better = (lambda a, b: a < b) if metric == "deletion_auc" else (lambda a, b: a > b)
                pairs = [
                    (a, b)
                    for a, b in zip(vals, reference[metric], strict=False)
                    if not (math.isnan(a) or math.isnan(b))
                ]
                row[f"{metric}_beats_random"] = (
                    sum(better(a, b) for a, b in pairs) / len(pairs) if pairs else float("nan")
                )
        rows.append(row)
    return rows


def write_tables(rows: list[dict], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(out / "evaluation.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    (out / "evaluation.json").write_text(json.dumps(rows, indent=2))
    return out / "evaluation.csv", out / "evaluation.json"


def print_table(rows: list[dict], console) -> None:
    from rich.table import Table

    table = Table(title="Explanation quality (mean ± std; beats random = share of clips)")
    table.add_column("method", no_wrap=True)
    metrics = [m for m in (*LOCALISATION, *FAITHFULNESS) if f"{m}_mean" in rows[0]]
    for m in metrics:
        table.add_column(m.replace("_", " "), justify="right", no_wrap=True)
    for row in rows:
        cells = []
        for m in metrics:
            cell = f"{row[f'{m}_mean']:.3f} ± {row[f'{m}_std']:.3f}"
            if f"{m}_beats_random" in row:
                cell += f" ({row[f'{m}_beats_random']:.0%})"
            cells.append(cell)
        table.add_row(row["method"], *cells)
    console.print(table)
