"""Run every benchmark, one after the other, then fail if any missed a target (``make bench``).

    python benchmarks/run_all.py [--quick] [--only NAME ...] [--skip NAME ...]

Each script writes ``benchmarks/out/<name>.json`` and exits 1 when it misses a target; this runs them all
(``--quick``: each with its ``--quick`` flag), prints each one's exit status and seconds, and exits 1 when any
missed a target, 2 when any failed to run. Scripts in ``benchmarks/`` that are not listed in ``JOBS`` (and not
helpers, nor run by hand) run after the listed ones, with ``--quick`` when their source mentions it. Then
``python benchmarks/readme_tables.py`` puts the new figures into README.md.

Run by hand (``BY_HAND``): ``quality.py`` scores a model it is given (``--train CONFIG`` or ``--checkpoint``) and
``pointing_diagnosis.py`` looks into one (``--checkpoint``); each README block names the command that made it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HELPERS = {"bench_results", "run_all", "readme_tables"}
BY_HAND = {"quality", "pointing_diagnosis"}  # they need a model named on the command line
# name (of its JSON file), script, extra arguments; in the order they run
JOBS: list[tuple[str, str, list[str]]] = [
    ("model_zoo", "model_zoo.py", []),
    ("tube_overhead", "tube_overhead.py", []),
    ("explain_speed", "explain_speed.py", []),
    ("train_step", "train_step.py", []),
    ("decode", "decode.py", []),
    ("decode_memory", "decode.py", ["--memory"]),
    ("callback_overhead", "callback_overhead.py", []),
    ("explain_video", "explain_video.py", []),
]


def jobs() -> list[tuple[str, str, list[str]]]:
    listed = {script for _, script, _ in JOBS}
    extra = [
        (p.stem, p.name, [])
        for p in sorted(HERE.glob("*.py"))
        if p.name not in listed and p.stem not in HELPERS | BY_HAND and not p.stem.startswith("_")
    ]
    return JOBS + extra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="each script with its --quick flag")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these (JSON names, e.g. decode_memory)")
    parser.add_argument("--skip", nargs="+", metavar="NAME", default=[], help="leave these out")
    args = parser.parse_args()
    todo = [j for j in jobs() if (not args.only or j[0] in args.only) and j[0] not in args.skip]
    unknown = set(args.only or []) - {name for name, _, _ in jobs()}
    if unknown:
        print(
            f"error: no benchmark named {', '.join(sorted(unknown))}; choose from {', '.join(n for n, _, _ in jobs())}"
        )
        return 2
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    summary = []
    start = time.perf_counter()
    for name, script, extra in todo:
        cmd = [sys.executable, str(HERE / script), *extra]
        if args.quick and "--quick" in (HERE / script).read_text():
            cmd.append("--quick")
        print(f"\n=== {name}: {' '.join(['python', f'benchmarks/{script}', *cmd[2:]])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(cmd, cwd=REPO, env=env).returncode
        summary.append((name, rc, time.perf_counter() - t0))
    total = time.perf_counter() - start
    print(f"\n{'benchmark':22s} {'result':>14s} {'seconds':>8s}")
    for name, rc, seconds in summary:
        result = {0: "targets met", 1: "TARGET MISSED"}.get(rc, f"FAILED (exit {rc})")
        print(f"{name:22s} {result:>14s} {seconds:8.0f}")
    print(f"{'total':22s} {'':>14s} {total:8.0f}")
    if any(rc not in (0, 1) for _, rc, _ in summary):
        return 2
    return 1 if any(rc == 1 for _, rc, _ in summary) else 0


if __name__ == "__main__":
    sys.exit(main())
