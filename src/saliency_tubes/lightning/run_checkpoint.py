"""ModelCheckpoint that writes to ``<root>/<run>/``: one folder per run, named after the start time and the
logger's run id, so runs never overwrite each other; every file is written atomically and durably."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint


class RunCheckpoint(ModelCheckpoint):
    """Keeps ``last.ckpt`` and the best checkpoints by ``monitor`` in ``<root>/<run>/``.

    Args:
        root: parent folder of the per-run folders.
        every_n_train_steps: also save ``last.ckpt`` every n optimizer steps, for resuming mid-epoch.
        Other arguments as in ``ModelCheckpoint``.
    """

    def __init__(
        self,
        root: str = "checkpoints",
        monitor: str = "val/acc_top1",
        mode: str = "max",
        save_top_k: int = 1,
        save_last: bool = True,
        filename: str = "epoch={epoch:03d}-acc={val/acc_top1:.4f}",
        every_n_epochs: int = 1,
        every_n_train_steps: int | None = None,
    ):
        super().__init__(
            monitor=monitor,
            mode=mode,
            save_top_k=save_top_k,
            save_last=save_last,
            filename=filename,
            auto_insert_metric_name=False,
            every_n_epochs=every_n_epochs,
        )
        self.root = root
        self.every_n_train_steps_for_last = every_n_train_steps
        self._last_step_of_last = -1  # the step of the latest last.ckpt written every n steps

    def run_dir(self, trainer: pl.Trainer) -> Path:
        """This run's folder, chosen on first use (rank zero's choice is broadcast by ``setup``)."""
        if self.dirpath is None:
            run = time.strftime("%Y%m%d-%H%M%S")
            version = trainer.logger.version if trainer.logger is not None else None
            if version is not None and not isinstance(version, int):
                run = f"{run}-{version}"
            self.dirpath = str(Path(self.root) / run)
        return Path(self.dirpath)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.run_dir(trainer)
        super().setup(trainer, pl_module, stage)

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        n, step = self.every_n_train_steps_for_last, trainer.global_step
        if n and step % n == 0 and step not in (self._last_global_step_saved, self._last_step_of_last):
            saved = self._last_global_step_saved
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
            # ModelCheckpoint saves nothing at a step it has saved at already: were this last.ckpt to count, an epoch
            # ending on this step would get no top-k checkpoint (so with every_n_train_steps, no best checkpoint ever)
            # and no last.ckpt after its validation.
            self._last_global_step_saved, self._last_step_of_last = saved, step

    # Lightning writes last.ckpt only when a top-k checkpoint was written at the same step, so after the best epoch
    # last.ckpt would stop following training; resuming from "last" would then lose every later epoch.
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_if_behind(trainer)

    def _save_last_if_behind(self, trainer: pl.Trainer) -> None:
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        # Write beside the target, then rename: a crash mid-write never leaves a truncated last.ckpt.
        partial = f"{filepath}.partial"
        super()._save_checkpoint(trainer, partial)
        if trainer.is_global_zero:
            replace_durably(partial, filepath)
        self._last_checkpoint_saved = filepath
        trainer.strategy.barrier("RunCheckpoint.rename")


def replace_durably(source: str | Path, target: str | Path) -> None:
    """Rename the written file ``source`` to ``target`` so that a crash of the machine (power loss, kernel panic)
    leaves either the old ``target`` or the complete new one: ``source``'s data reaches the disk before the rename
    (otherwise the rename may be persisted before the data, and ``target`` comes back empty or truncated), and the
    folder after it (so the new name itself survives)."""
    with open(source, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(source, target)
    _fsync_folder(Path(target).parent)


def _fsync_folder(folder: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):  # Windows: folders cannot be opened, NTFS journals the rename itself
        return
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_folder(trainer: pl.Trainer) -> Path:
    """Where this run's files go: the :class:`RunCheckpoint` folder, else the checkpoint or the trainer's root dir."""
    ckpt = trainer.checkpoint_callback
    if isinstance(ckpt, RunCheckpoint):
        return ckpt.run_dir(trainer)
    if isinstance(ckpt, ModelCheckpoint) and ckpt.dirpath:
        return Path(ckpt.dirpath)
    return Path(trainer.default_root_dir)
