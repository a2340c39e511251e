"""Running the entry points: as a user would (a new Python process) or in process (argument and error cases)."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from .common import REPO

# the smallest training that still exercises everything: 32 px, 4 frames, width 4, two epochs
TINY_TRAIN = [
    "--data.input_size",
    "32",
    "--data.clip_len",
    "4",
    "--data.batch_size",
    "8",
    "--data.num_workers",
    "0",
    "--model.arch_kwargs",
    '{"width": 4, "conv1_t_size": 3, "no_max_pool": true, "stage_t_stride": 1}',
    "--trainer.max_epochs",
    "2",
    "--trainer.enable_progress_bar",
    "false",
]


def run_script(
    script: str, *args: str, cwd: Path, timeout: int = 300, env: dict | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """``python REPO/script args`` in ``cwd``, output captured."""
    # A W&B service started by an in-process test would otherwise serve the child, resolving its paths
    # against the service's working directory instead of the child's.
    drop = {"WANDB_SERVICE", *unset}
    env = {**{k: v for k, v in os.environ.items() if k not in drop}, **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPO / script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def exit_code(main: Callable[[list[str]], object], args: list[str]) -> int:
    """Call an entry point's ``main(argv)`` in process; its exit status (0 when it returns)."""
    argv = sys.argv
    sys.argv = [getattr(main, "__module__", "main")]  # as when run from the command line: no arguments but `args`
    try:
        main([str(a) for a in args])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return 0


def train_error(capsys, root: Path, *extra: str) -> str:
    """train.py fit (default.yaml, TINY_TRAIN, no logger) in process, expecting a user error: exit 2, the last stderr
    line ``error: ...``, no traceback. Returns that line."""
    from saliency_tubes.cli.train import main as train_main

    args = ["fit", "--config", REPO / "configs" / "default.yaml", "--data.root", root, *TINY_TRAIN, *extra]
    code = exit_code(train_main, [*args, "--trainer.logger", "false"])
    err = capsys.readouterr().err
    assert code == 2, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: "), err[-2000:]
    return last
