"""Explanation quality of one model as a README table: ``benchmarks/out/NAME.json`` from ``explain.py --evaluate``.

    # train with a config, then score its best checkpoint (one command: the standard-stride benchmark)
    python benchmarks/quality.py --name quality_standard_r3d10 --train configs/standard_r3d10.yaml \\
        --data-root data/synthetic --split test -- --steps 16 --max-clips 60 --baseline zero
    # score a checkpoint you have
    python benchmarks/quality.py --name quality_default --checkpoint checkpoints/<run>/epoch=011-acc=1.0000.ckpt \\
        --data-root data/synthetic --split test -- --steps 32 --baseline zero
    # take an evaluation.json that --evaluate already wrote, saying how it was made
    python benchmarks/quality.py --name quality_default --from-evaluation evaluation-test/evaluation.json \\
        --command "python explain.py --evaluate ..." --date "2026-11-29 23:44 UTC" --commit ead4f90

Everything after ``--`` goes to ``explain.py --evaluate`` (``--methods``, ``--layers``, ``--steps``, ...). The JSON
holds ``evaluation`` (the rows of ``evaluation.json``: every method and the random map), the command, date, commit,
machine and checkpoint; ``--note METHOD=TEXT`` adds a note to a method's row (e.g. its layer and grid).
``benchmarks/readme_tables.py`` then renders the block ``<!-- bench:NAME -->`` of the README.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_results import OUT, REPO, commit, machine


def _run(command: list[str]) -> None:
    print("$", shlex.join(command), flush=True)
    if subprocess.run(command, cwd=REPO).returncode:
        sys.exit(f"error: {shlex.join(command[:3])} ... failed")


def train(config: str, extra: list[str], root: Path) -> tuple[Path, dict]:
    """Train with ``config``: the best checkpoint of the run folder it created under ``root``, and the training's
    wall time and validation accuracy per epoch (from the run's ``metrics.jsonl``)."""
    before = set(root.iterdir()) if root.is_dir() else set()
    start = time.perf_counter()
    _run([sys.executable, "train.py", "fit", "--config", config, *extra])
    seconds = round(time.perf_counter() - start, 1)
    runs = sorted(set(root.iterdir()) - before) if root.is_dir() else []
    best = sorted(p for run in runs for p in run.glob("epoch=*.ckpt"))
    if not best:
        sys.exit(f"error: training wrote no epoch=*.ckpt under {root}")
    from saliency_tubes.report.run import read_metrics  # written by the config's SaliencyTubesCallback

    curve = [round(float(row["val/acc_top1"]), 3) for row in read_metrics(best[-1].parent) if "val/acc_top1" in row]
    return best[-1], {"seconds": seconds, "val_acc_top1": curve}


def main(argv: list[str] | None = None) -> int:
    script = ["python", os.path.relpath(sys.argv[0], REPO)] if argv is None else ["python", "benchmarks/quality.py"]
    argv = sys.argv[1:] if argv is None else argv
    ours, evaluate_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True, help="benchmarks/out/NAME.json, the README block bench:NAME")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--train", metavar="CONFIG", help="train with this config first (python train.py fit)")
    source.add_argument("--checkpoint", help="score this checkpoint")
    source.add_argument("--from-evaluation", metavar="JSON", help="take this evaluation.json of --evaluate")
    p.add_argument("--train-args", default="", help="more arguments for train.py, one string")
    p.add_argument("--checkpoints", default="checkpoints", help="where the config's RunCheckpoint puts run folders")
    p.add_argument("--data-root", default="data/synthetic")
    p.add_argument("--split", default="test", help="--data.split_name (default test: the held-out split)")
    p.add_argument("--command", help="with --from-evaluation: the command that wrote it")
    p.add_argument("--date", help="with --from-evaluation: when it was written (default: the file's time)")
    p.add_argument("--commit", help="with --from-evaluation: the commit it ran on")
    p.add_argument("--note", action="append", default=[], metavar="METHOD=TEXT", help="a note for a method's row")
    args = p.parse_args(ours)
    notes = dict(n.split("=", 1) for n in args.note if "=" in n)
    start = time.perf_counter()
    record: dict = {"name": args.name}

    if args.from_evaluation:
        path = Path(args.from_evaluation)
        if not path.is_file():
            sys.exit(f"error: {path}: no such file")
        mtime = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.timezone.utc)
        record.update(
            command=args.command or f"explain.py --evaluate (converted from {path})",
            date=args.date or mtime.strftime("%Y-%m-%d %H:%M UTC"),
            commit=args.commit or "unknown",
            converted_with=shlex.join([*script, *argv]),
        )
        rows = json.loads(path.read_text())
    else:
        training = None
        if args.train:
            checkpoint, training = train(args.train, shlex.split(args.train_args), REPO / args.checkpoints)
        else:
            checkpoint = Path(args.checkpoint)
        with tempfile.TemporaryDirectory() as out:
            command = [sys.executable, "explain.py", "--evaluate", "--checkpoint", str(checkpoint)]
            command += ["--data.root", args.data_root, "--data.split_name", args.split, "--out", out, *evaluate_args]
            _run(command)
            rows = json.loads((Path(out) / "evaluation.json").read_text())
        record.update(
            command=shlex.join([*script, *argv]),
            date=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            commit=commit(),
            machine=machine(),
            seconds=round(time.perf_counter() - start, 1),
            checkpoint=os.path.relpath(checkpoint, REPO) if checkpoint.is_absolute() else str(checkpoint),
        )
        if training:
            record["training"] = training
    if not isinstance(rows, list) or not any(r.get("method") == "random" for r in rows):
        sys.exit("error: not an evaluation.json of explain.py --evaluate (no 'random' row)")
    record.update(notes=notes, evaluation=rows)
    OUT.mkdir(parents=True, exist_ok=True)
    target = OUT / f"{args.name}.json"
    target.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {os.path.relpath(target, REPO)}; python benchmarks/readme_tables.py updates the README")
    return 0


if __name__ == "__main__":
    sys.exit(main())
