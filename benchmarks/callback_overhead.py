"""Wall time of a training epoch with the Saliency Tubes callback (4 samples, every epoch) ÷ without it.

    python benchmarks/callback_overhead.py [--epochs 3] [--rounds 2]

Default config (synthetic dataset, R3D-10), W&B offline for both variants; the variants alternate within one
run, each round training a fresh model for ``--epochs`` epochs. The first epoch of each fit (DataLoader
workers starting) is left out; the figure is the ratio of the medians of the remaining epoch times
(training + validation + callback).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import yaml
from pytorch_lightning.loggers import WandbLogger

from saliency_tubes.data import VideoDataModule
from saliency_tubes.lightning import SaliencyTubesCallback, VideoClassifier

REPO = Path(__file__).resolve().parents[1]


class EpochTimer(pl.Callback):
    def __init__(self):
        self.times: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module):  # runs after the tubes callback (it comes first)
        if not trainer.sanity_checking:
            self.times.append(time.perf_counter() - self._start)


def fit_once(with_tubes: bool, epochs: int, workdir: Path) -> list[float]:
    cfg = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    pl.seed_everything(0, verbose=False)
    dm = VideoDataModule(**cfg["data"])
    model = VideoClassifier(
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        **{k: dm.hparams[k] for k in ("clip_len", "stride", "input_size", "mean", "std")},
        **cfg["model"],
    )
    timer = EpochTimer()
    callbacks = ([SaliencyTubesCallback(num_samples=4, every_n_epochs=1)] if with_tubes else []) + [timer]
    logger = WandbLogger(project="benchmark", save_dir=str(workdir), offline=True)
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=callbacks,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(workdir),
    )
    trainer.fit(model, dm)
    logger.experiment.finish()
    return timer.times[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.chdir(REPO)  # the default config's data/synthetic
    times = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for with_tubes in (False, True):
                times[with_tubes] += fit_once(with_tubes, args.epochs, Path(tmp) / f"{r}-{with_tubes}")
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    print(f"epoch times without: {[round(x, 2) for x in times[False]]}, with: {[round(x, 2) for x in times[True]]}")
    print(f"{'variant':24s} {'median epoch s':>15s}")
    print(f"{'without callback':24s} {without:15.2f}")
    print(f"{'with callback (4 clips)':24s} {with_:15.2f}")
    print(f"ratio: {with_ / without:.3f}   (target ≤ 1.03)")


if __name__ == "__main__":
    main()
