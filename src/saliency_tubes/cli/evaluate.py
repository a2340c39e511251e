"""``python explain.py --evaluate``: how good are the explanations, per method, on a validation split.

``--data.split_name`` chooses the split (default ``val``): figures meant to judge a model belong on a split that
neither trained it nor chose its checkpoint, such as the synthetic set's ``test``.

For every clip (centre clip, as in training) and every method, with the predicted class as target:
localisation against ground-truth masks where the dataset has them (mass in the mask, its lift over the mask's
share, frame pointing game over the frames where the actor moves, temporal hit) and faithfulness (deletion and
insertion AUC), the latter also for a random map, the reference every method must beat. Where the dataset has
masks, the ground truth itself is scored as a map too (``ground_truth``: the actor's mask, its ties — the cells it
covers equally, and all the rest — in the random map's order): what a map that ranks exactly the actor first reaches
on deletion and insertion with this model, so a method's shortfall there can be told from the model's or the
measure's.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BadArgument, SaliencyTubesError
from ..explain.methods import method_names

if TYPE_CHECKING:
    import torch

    from ..data.datasets import VideoClipDataset
    from ..explain.faithfulness import Baseline
    from ..models.io import ModelInfo

GROUND_TRUTH = "ground_truth"  # the row of the masks themselves, scored as a map (where the dataset has them)
LOCALISATION = ("mass_in_gt", "lift", "pointing_game", "temporal_hit")
FAITHFULNESS = ("deletion_auc", "insertion_auc")


def add_arguments(group: argparse._ArgumentGroup, methods: list[str]) -> None:
    """``--evaluate`` and its options (the dataset options are those of ``python -m saliency_tubes.data.check``)."""
    from ..data.layouts import add_layout_arguments

    group.add_argument("--evaluate", action="store_true", help="score the methods on the validation split")
    group.add_argument("--data.root", dest="data_root", help="dataset folder (with masks: localisation too)")
    add_layout_arguments(group)
    group.add_argument(
        "--data.split_name",
        dest="data_split_name",
        default="val",
        metavar="NAME",
        help="split to score (default val; the synthetic set's held-out split is test). The folder layouts read "
        "ROOT/NAME/; the others have one evaluation split, read for any NAME but train",
    )
    group.add_argument(
        "--methods",
        nargs="+",
        choices=methods,
        help="methods to score (default: every method that applies to the model)",
    )
    group.add_argument("--steps", type=int, default=128, help="deletion/insertion steps")
    group.add_argument("--grid", type=int, default=16, help="cells per frame side for deletion/insertion")
    group.add_argument(
        "--baseline", choices=("blur", "zero"), default="blur", help="what deleted cells become"
    )  # = faithfulness.Baseline
    group.add_argument("--max-clips", type=int, help="score only the first N validation clips")


def validation_set(args: argparse.Namespace, info: ModelInfo) -> VideoClipDataset:
    """The ``--data.split_name`` split (default ``val``) of ``--data.root`` in ``--data.layout``, centre clips as the
    model was trained on."""
    from ..data.datasets import validation_dataset
    from ..data.layouts import layout_options

    layout, options = layout_options(args)
    d = info.data
    return validation_dataset(
        args.data_root,
        layout,
        options,
        class_names=info.class_names,
        clip_len=d.clip_len,
        stride=d.stride,
        input_size=d.input_size,
        mean=d.mean,
        std=d.std,
        split=args.data_split_name,
    )


def run_evaluation(args: argparse.Namespace, model: torch.nn.Module, info: ModelInfo, device: torch.device) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from ..fs import ensure_writable_dir

    if not args.data_root:
        raise SaliencyTubesError("--evaluate needs --data.root DIR")
    if args.steps < 1 or args.grid < 1:
        raise SaliencyTubesError("--steps and --grid must be at least 1")
    out = ensure_writable_dir(args.out or "evaluation", "the evaluation tables")
    dataset = validation_set(args, info)
    n = len(dataset) if args.max_clips is None else min(args.max_clips, len(dataset))
    with Progress(console=Console(stderr=True)) as progress:
        task = progress.add_task("Scoring explanations", total=n)
        values = evaluate(
            model,
            dataset,
            args.methods or method_names(),
            device,
            steps=args.steps,
            grid=args.grid,
            baseline=args.baseline,
            batch_size=args.batch_size,
            max_clips=args.max_clips,
            layer=args.layer,
            layers=args.layers,
            on_batch=lambda k: progress.advance(task, k),
            on_skip=None if args.methods else lambda m, why: progress.console.print(f"{m} skipped: {why}"),
        )
    rows = summarise(values)
    console = Console()
    print_table(rows, console if console.is_terminal else Console(width=200))  # files and pipes: no wrapping
    csv_path, json_path = write_tables(rows, out)
    from ..report import write_evaluation_page

    print(f"Wrote {csv_path}, {json_path} and {write_evaluation_page(rows, out, (*LOCALISATION, *FAITHFULNESS))}")
    return 0


def evaluate(
    model,
    dataset: VideoClipDataset,
    methods: list[str],
    device: torch.device,
    steps: int = 128,
    grid: int = 16,
    baseline: Baseline = "blur",
    batch_size: int = 8,
    max_clips: int | None = None,
    layer: str | None = None,
    on_batch=None,
    on_skip=None,
    layers: list[str] | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Per-clip metric values: ``{method, "ground_truth" (where the clips have masks) or "random": {metric: [value
    per clip]}}``. ``layer`` applies to the methods that take one, ``layers`` to those that take a list of layers
    (the others explain their own). With ``on_skip`` (the default list of methods), a method that does not apply
    to the model (rollout on a CNN, CAM on a class-token model: a :class:`BadArgument` on the first batch) is left
    out and ``on_skip(method, reason)`` called; without it, that error is raised."""
    import torch

    from ..explain import explain, get_method, lift, pointing_game, takes_layers, temporal_hit, tube_mass_in_gt
    from ..explain.faithfulness import deletion_insertion, random_tubes

    n = len(dataset) if max_clips is None else min(max_clips, len(dataset))
    methods = list(methods)
    values: dict[str, dict[str, list[float]]] = {m: {} for m in [*methods, GROUND_TRUTH, "random"]}
    for start in range(0, n, batch_size):
        items = [dataset.load(i, with_mask=True) for i in range(start, min(start + batch_size, n))]
        clips = torch.stack([it["clip"] for it in items]).to(device)
        has_truth = all("mask" in it for it in items)
        masks = torch.stack([it["mask"] for it in items]).to(device) if has_truth else None
        moving = torch.stack([it["moving"] for it in items]).to(device) if has_truth else None
        maps: dict[str, torch.Tensor] = {}
        for method in list(methods):
            many = layers if takes_layers(method) else None
            one = layer if get_method(method).takes_layer and many is None else None
            try:
                result = explain(model, clips, method, layer=one, layers=many)
            except BadArgument as exc:
                if on_skip is None or start:
                    raise
                on_skip(method, str(exc))
                methods.remove(method)
                del values[method]
                continue
            maps[method], targets = result.tubes, result.targets
        if not methods:
            raise SaliencyTubesError("none of the methods applies to this model")
        maps["random"] = random_tubes(tuple(maps[methods[0]].shape), grid=grid, seed=start, device=device)
        if masks is not None:  # the reference a perfect localiser reaches; 1e-3 orders its ties without moving it
            maps[GROUND_TRUTH] = masks.float() + 1e-3 * maps["random"]
        else:  # its faithfulness kept clip by clip in step with the random map's, which it is compared with
            for metric in FAITHFULNESS:
                values[GROUND_TRUTH].setdefault(metric, []).extend([math.nan] * len(items))
        for name, tubes in maps.items():
            scores = {}
            if masks is not None and moving is not None:
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
    if all(math.isnan(v) for vals in values[GROUND_TRUTH].values() for v in vals):
        del values[GROUND_TRUTH]  # no clip has a mask
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
