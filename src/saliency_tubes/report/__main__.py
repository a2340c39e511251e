"""``python -m saliency_tubes.report RUN_DIR``: rebuild ``RUN_DIR/report.html`` from a finished or interrupted run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .run import METRICS, build_run_report


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        print(f"error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def main(argv: list[str] | None = None) -> None:
    sys.exit(_run(argv))


def _run(argv: list[str] | None) -> int:
    parser = _Parser(prog="python -m saliency_tubes.report", description=__doc__)
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder, e.g. checkpoints/<run>")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        print(f"error: {run_dir}: no such folder", file=sys.stderr)
        return 2
    if not (run_dir / METRICS).is_file() and not (run_dir / "tubes").is_dir():
        print(f"error: {run_dir}: not a run folder (neither {METRICS} nor tubes/ in it)", file=sys.stderr)
        return 2
    try:
        path = build_run_report(run_dir)
    except OSError as exc:
        print(f"error: {run_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    main()
