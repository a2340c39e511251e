"""``python explain.py``: Saliency Tubes of whole videos from a checkpoint; ``--evaluate`` scores the methods.

Argument parsing and calls only: the pipeline is :class:`saliency_tubes.explain.VideoExplainer`, the files are
written by :func:`saliency_tubes.explain.write_explanation` (see the README, "What explain.py writes"). torch is
imported after the arguments are parsed, so ``--help`` and argument errors answer at once.
Exit status: 0 when every input succeeded, 1 when some failed (one line each on stderr), 2 for a bad checkpoint
or bad arguments. ``OUT/index.html`` (:mod:`saliency_tubes.report`) shows every explained video and failed input.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from ..errors import SaliencyTubesError
from .explain_args import build_parser

__all__ = ["build_parser", "main", "run"]


def device(name: str):
    import torch

    try:
        return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
    except RuntimeError as exc:
        raise SaliencyTubesError(f"--device {name!r}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from ..models.io import export_safetensors, load_model

    if args.topk < 1 or args.max_frames < 1 or args.batch_size < 1:
        raise SaliencyTubesError("--topk, --max-frames and --batch-size must be at least 1")
    if not (args.export_safetensors or args.evaluate or (args.inputs and args.out)):
        raise SaliencyTubesError("give at least one INPUT and --out DIR (or --export-safetensors FILE, or --evaluate)")
    from ..explain.methods import default_method, method_names
    from ..explain.multi_layer import check_layers

    check_layers((args.methods or method_names()) if args.evaluate else args.method or "saliency_tubes", args.layers)
    on = device("cpu" if args.export_safetensors else args.device)
    model, info = load_model(args.checkpoint, args.arch, args.num_classes, args.class_names, on)
    if args.export_safetensors:
        print(f"Exported {export_safetensors(model, info, args.export_safetensors)}")
        return 0
    if args.method is None:
        args.method = default_method(model)
        if args.method != "saliency_tubes" and not args.evaluate:
            print(f"note: --method {args.method}: CAM is not exact for {info.arch} ({getattr(model, 'cam_note', '')})")
    if args.evaluate:
        from .evaluate import run_evaluation

        return run_evaluation(args, model, info, on)
    return explain_inputs(args, model, info, on)


def explain_inputs(args: argparse.Namespace, model, info, on) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..explain import VideoExplainer, write_explanation
    from ..explain.output import safe_name, unique_name
    from ..explain.video import find_inputs
    from ..fs import ensure_writable_dir
    from ..report import write_explanation_index

    target = None if args.target == "pred" else info.class_index(args.target)
    if target is not None and args.topk != 1:
        raise SaliencyTubesError("--topk needs --target pred")
    explainer = VideoExplainer(
        model,
        info,
        args.method,
        args.layer,
        not args.keep_negative,
        on,
        args.batch_size,
        args.max_frames,
        layers=args.layers,
    )
    out_root = ensure_writable_dir(args.out, "--out results")
    inputs, done, failed, taken = find_inputs(args.inputs), [], [], set[str]()
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task("Explaining videos", total=len(inputs))
        for shown, path, error in inputs:
            if path is not None:
                name = unique_name(safe_name(path.stem), taken)
                final, partial = out_root / name, out_root / f".{name}.partial"
                shutil.rmtree(partial, ignore_errors=True)
                try:  # written to a hidden folder, renamed when complete: a failure leaves nothing behind
                    result = write_explanation(
                        explainer.explain(path, target, args.topk), partial, args.alpha, focus=not args.no_focus
                    )
                    shutil.rmtree(final, ignore_errors=True)
                    done.append((shown, partial.rename(final)))
                    top = result["predictions"][0]
                    progress.console.print(
                        f"{shown}: {top['class']} (p={top['probability']:.2f}) → {final}", soft_wrap=True
                    )
                except SaliencyTubesError as exc:
                    shutil.rmtree(partial, ignore_errors=True)
                    error = str(exc)
            if error is not None:
                failed.append((shown, error))
                progress.console.print(f"error: {error}", style="red", highlight=False, soft_wrap=True)
            progress.advance(task)
    print(f"Wrote {write_explanation_index(out_root, done, failed)}")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = run(args)
    except SaliencyTubesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)
