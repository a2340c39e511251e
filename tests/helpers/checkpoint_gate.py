"""A callback for tests that kill a training process *inside* a checkpoint write (loaded by train.py children
through ``--config``; the test puts ``tests/`` on their ``PYTHONPATH``)."""

import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class _Hold:
    """Pickling this (inside ``torch.save`` of a checkpoint) touches ``signal`` and then waits to be killed, for at
    most ``wait_s`` seconds; it is stored as the integer 0, so the checkpoint stays loadable with ``weights_only``."""

    def __init__(self, signal: str, wait_s: float):
        self.signal, self.wait_s = signal, wait_s

    def __reduce__(self):
        Path(self.signal).touch()
        deadline = time.monotonic() + self.wait_s
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return (int, (0,))


class HoldCheckpointWrite(Callback):
    """Pads every checkpoint with ``pad_mib`` MiB, and holds the write of the checkpoint of optimizer step
    ``at_step`` (see :class:`_Hold`)."""

    def __init__(self, signal: str, at_step: int, pad_mib: int = 16, wait_s: float = 300.0):
        self.signal, self.at_step, self.pad_mib, self.wait_s = signal, at_step, pad_mib, wait_s
        self._trainer: pl.Trainer | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def state_dict(self) -> dict:
        state: dict = {"pad": torch.ones(self.pad_mib * 2**18)}  # float32
        if self._trainer is not None and self._trainer.global_step == self.at_step:
            state["hold"] = _Hold(self.signal, self.wait_s)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        pass
