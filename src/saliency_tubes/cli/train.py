"""``python train.py``: LightningCLI; with no arguments, ``fit`` with configs/default.yaml."""

from __future__ import annotations

import sys

from ..errors import SaliencyTubesError
from ..lightning.cli import main as cli_main


def main(args: list[str] | None = None) -> None:
    try:
        cli_main(args)
    except SaliencyTubesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
