"""A real training process killed with SIGKILL mid-epoch, resumed with --ckpt_path last, ends with the same
weights and metrics as an uninterrupted run: with every random draw of training on (Mixup, CutMix, dropout,
RandAugment, random scale and crop) and the default two DataLoader workers."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from helpers.cli import TINY_TRAIN
from helpers.common import REPO
from helpers.wandb_records import history

pytestmark = pytest.mark.slow

STEPS_PER_EPOCH = 6  # 24 training videos, batch size 4


def _config(tmp_path: Path) -> Path:
    cfg = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    cfg["trainer"]["callbacks"][0]["init_args"]["every_n_train_steps"] = 1
    cfg["trainer"]["deterministic"] = True
    assert cfg["data"]["num_workers"] == 2  # what the test runs with
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _cmd(config: Path, root: Path, *extra: str) -> list[str]:
    args = list(TINY_TRAIN)
    args[args.index("--trainer.max_epochs") + 1] = "4"
    args[args.index("--data.batch_size") + 1] = "4"
    at = args.index("--data.num_workers")
    del args[at : at + 2]  # the default (2 workers in default.yaml)
    at = args.index("--model.arch_kwargs") + 1
    args[at] = json.dumps({**json.loads(args[at]), "dropout": 0.5})
    args += ["--model.mixup_alpha", "0.4", "--model.cutmix_alpha", "1.0", "--data.randaugment", "[2, 9]"]
    return [
        sys.executable,
        str(REPO / "train.py"),
        "fit",
        "--config",
        str(config),
        "--data.root",
        str(root),
        *args,
        *extra,
    ]


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}


def _step(ckpt: Path) -> int:
    try:
        return torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"]
    except Exception:  # being replaced right now
        return -1


def test_kill_9_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_dataset):
    config = _config(tmp_path)
    ref_dir, cut_dir = tmp_path / "ref", tmp_path / "cut"
    ref_dir.mkdir()
    cut_dir.mkdir()
    ref = subprocess.run(
        _cmd(config, tiny_dataset), cwd=ref_dir, env=_env(), capture_output=True, text=True, timeout=400
    )
    assert ref.returncode == 0, ref.stderr[-3000:]

    proc = subprocess.Popen(
        _cmd(config, tiny_dataset),
        cwd=cut_dir,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        lasts = list((cut_dir / "checkpoints").glob("*/last.ckpt"))
        if lasts:
            step = _step(lasts[0])
            if step > STEPS_PER_EPOCH + 1 and step % STEPS_PER_EPOCH:  # inside the second epoch or later
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_at = step
                break
        time.sleep(0.02)
    assert killed_at is not None, "the run ended before it could be killed mid-epoch"
    assert (
        _step(next((cut_dir / "checkpoints").glob("*/last.ckpt"))) >= killed_at
    )  # last.ckpt is whole (written atomically)

    resumed = subprocess.run(
        _cmd(config, tiny_dataset, "--ckpt_path", "last"),
        cwd=cut_dir,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stdout
    runs = list((cut_dir / "checkpoints").iterdir())
    assert len(runs) == 1  # the resumed run keeps writing into its own folder

    final_ref = torch.load(next((ref_dir / "checkpoints").glob("*/last.ckpt")), weights_only=True)
    final_cut = torch.load(runs[0] / "last.ckpt", weights_only=True)
    assert final_cut["global_step"] == final_ref["global_step"] == 4 * STEPS_PER_EPOCH
    for key, value in final_ref["state_dict"].items():
        torch.testing.assert_close(final_cut["state_dict"][key], value, rtol=0, atol=0, msg=key)

    def last_val(run_dir: Path) -> dict:
        rows = [r for r in history(next(run_dir.glob("run-*.wandb"))) if "val/acc_top1" in r]
        return {k: rows[-1][k] for k in ("val/acc_top1", "val/loss", "val/tube_mass_in_gt")}

    reference = last_val(next(ref_dir.glob("wandb/offline-run-*")))
    assert last_val(sorted(cut_dir.glob("wandb/offline-run-*"))[-1]) == reference  # the resumed process's run
