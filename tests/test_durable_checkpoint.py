"""Checkpoints survive a crash in the middle of their write (the process killed with SIGKILL while writing
``last.ckpt``), and reach the disk before they replace the previous one (fsync of the data before the rename, of
the folder after it)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.demos.boring_classes import BoringModel

from saliency_tubes.lightning import RunCheckpoint

from helpers.cli import TINY_TRAIN
from helpers.common import REPO

HOLD_AT_STEP = 3  # inside the first epoch (6 steps of 4 clips)


@pytest.mark.slow
def test_kill_9_inside_a_checkpoint_write_leaves_the_previous_last_ckpt(tmp_path, tiny_dataset):
    cfg = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    cfg["trainer"]["logger"] = False
    callbacks = cfg["trainer"]["callbacks"]
    callbacks[0]["init_args"]["every_n_train_steps"] = 1
    writing = tmp_path / "writing"
    callbacks.append(
        {
            "class_path": "helpers.checkpoint_gate.HoldCheckpointWrite",
            "init_args": {"signal": str(writing), "at_step": HOLD_AT_STEP},
        }
    )
    config = tmp_path / "hold.yaml"
    config.write_text(yaml.safe_dump(cfg))
    args = list(TINY_TRAIN)
    args[args.index("--data.batch_size") + 1] = "4"
    args[args.index("--trainer.max_epochs") + 1] = "1"
    run = tmp_path / "run"
    run.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "WANDB_SERVICE"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "tests"), env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, str(REPO / "train.py"), "fit", "--config", str(config), "--data.root", str(tiny_dataset)]
    proc = subprocess.Popen(
        [*cmd, *args], cwd=run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 300
        while not writing.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writing.exists(), f"the checkpoint of step {HOLD_AT_STEP} was never written: {proc.poll()=}"
        proc.send_signal(signal.SIGKILL)  # the child is inside torch.save of that checkpoint, and waits there
    finally:
        proc.kill()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]

    last = next(run.glob("checkpoints/*/last.ckpt"))
    checkpoint = torch.load(last, map_location="cpu", weights_only=True)  # whole, loadable
    assert checkpoint["global_step"] == HOLD_AT_STEP - 1  # the previous one, untouched
    assert checkpoint["state_dict"].keys() >= {"model.conv1.weight", "model.fc.weight"}


class _Spy:
    """Records, in order, ``fsync`` (of which path) and ``replace`` calls under ``root``, then makes the real call."""

    def __init__(self, monkeypatch, root: Path):
        self.events: list[tuple[str, Path]] = []
        self.root = root.resolve()
        fsync, replace = os.fsync, os.replace

        def spy_fsync(fd):
            path = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if path.is_relative_to(self.root):
                self.events.append(("fsync", path))
            return fsync(fd)

        def spy_replace(src, dst, **kwargs):
            if Path(dst).resolve().is_relative_to(self.root):
                self.events.append(("replace", Path(dst).resolve()))
            return replace(src, dst, **kwargs)

        monkeypatch.setattr(os, "fsync", spy_fsync)
        monkeypatch.setattr(os, "replace", spy_replace)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="reads the path of an fd in /proc (Linux)")
def test_each_checkpoint_reaches_the_disk_before_it_replaces_the_previous_one(tmp_path, monkeypatch):
    spy = _Spy(monkeypatch, tmp_path)
    ckpt = RunCheckpoint(root=str(tmp_path), monitor="train_loss", mode="min", filename="best", every_n_train_steps=1)

    class Model(BoringModel):
        def training_step(self, batch, batch_idx):
            out = super().training_step(batch, batch_idx)
            self.log("train_loss", out["loss"])
            return out

    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        callbacks=[ckpt],
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Model())
    folder = Path(ckpt.dirpath).resolve()
    replaced = [i for i, (kind, _) in enumerate(spy.events) if kind == "replace"]
    assert {spy.events[i][1].name for i in replaced} == {"last.ckpt", "best.ckpt"}
    for i in replaced:
        target = spy.events[i][1]
        # the data of the written file just before its rename, the folder just after
        assert 0 < i < len(spy.events) - 1, spy.events
        assert spy.events[i - 1] == ("fsync", target.with_name(f"{target.name}.partial")), spy.events
        assert spy.events[i + 1] == ("fsync", folder), spy.events
    assert not list(folder.glob("*.partial"))
