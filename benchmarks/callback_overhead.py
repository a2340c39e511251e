"""Seconds spent in the Saliency Tubes callback per training epoch ÷ the epoch's seconds, at the default config.

    python benchmarks/callback_overhead.py [--epochs 6] [--quick] [--train-share 1.0]

One fit of ``configs/default.yaml``'s model, data and callback settings (4 samples every epoch, W&B offline) on its
synthetic data, CPU. The callback's own time is measured directly: a subclass of ``SaliencyTubesCallback`` records
``perf_counter`` around ``on_validation_epoch_end`` (the only hook it implements: choosing and loading the samples
once, explaining them, writing each sample's files, logging to W&B, writing ``report.html``; the report's own
seconds are the callback's ``report_seconds``, target ≤ 0.02 of the epoch). The epoch's time runs from
``on_train_epoch_start`` to ``on_train_epoch_end`` (training, validation and the callback). The first epoch (the
DataLoader workers starting, the samples loaded) is reported apart and left out of the ratio, which is
sum(callback s) / sum(epoch s) over the other epochs (target ≤ 0.03).

``--train-share`` trains on that share of the training batches per epoch (Lightning's ``limit_train_batches``);
validation and the callback's work are unchanged, so a smaller share gives a larger (upper-bound) ratio.
``--quick``: 5 epochs (4 measured) at ``--train-share 0.5``. Writes ``benchmarks/out/callback_overhead.json``; exit
status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import yaml
from bench_results import Results
from pytorch_lightning.loggers import WandbLogger

from saliency_tubes.data import VideoDataModule
from saliency_tubes.lightning import SaliencyTubesCallback, VideoClassifier

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.03
REPORT_TARGET = 0.02  # the run report alone (issue 13)


class TimedTubes(SaliencyTubesCallback):
    """The callback, with the seconds of each call of its hook recorded (sanity check excluded)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seconds: list[float] = []

    def on_validation_epoch_end(self, trainer, pl_module):
        start = time.perf_counter()
        super().on_validation_epoch_end(trainer, pl_module)
        if not trainer.sanity_checking:
            self.seconds.append(time.perf_counter() - start)


class EpochTimer(pl.Callback):
    def __init__(self):
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):  # after validation and the callback
        self.seconds.append(time.perf_counter() - self._start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs (the first is reported apart)")
    parser.add_argument("--train-share", type=float, default=1.0, help="share of the training batches per epoch")
    parser.add_argument("--quick", action="store_true", help="5 epochs at --train-share 0.5")
    args = parser.parse_args()
    epochs, share = (5, 0.5) if args.quick else (args.epochs, args.train_share)
    if epochs < 2:
        sys.exit("error: --epochs must be at least 2 (the first is left out)")
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.chdir(REPO)  # the default config's data/synthetic
    results = Results("callback_overhead")
    cfg = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    tubes_args = next(c["init_args"] for c in cfg["trainer"]["callbacks"] if c["class_path"].endswith("TubesCallback"))
    pl.seed_everything(cfg.get("seed_everything", 0), verbose=False)
    dm = VideoDataModule(**cfg["data"])
    model = VideoClassifier(
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        **{k: dm.hparams[k] for k in ("clip_len", "stride", "input_size", "mean", "std")},
        **cfg["model"],
    )
    tubes, timer = TimedTubes(**tubes_args), EpochTimer()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        logger = WandbLogger(project="benchmark", save_dir=tmp, offline=True)
        trainer = pl.Trainer(
            max_epochs=epochs,
            accelerator="cpu",
            devices=1,
            precision=cfg["trainer"]["precision"],
            logger=logger,
            callbacks=[tubes, timer],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_train_batches=share,
            default_root_dir=tmp,
        )
        trainer.fit(model, dm)
        logger.experiment.finish()
    fit_seconds = time.perf_counter() - start
    train_batches, val_batches = trainer.num_training_batches, sum(trainer.num_val_batches)
    if len(tubes.seconds) != epochs or len(timer.seconds) != epochs:
        sys.exit(f"error: {len(tubes.seconds)} callback calls and {len(timer.seconds)} epochs timed, not {epochs}")
    cb, ep = tubes.seconds[1:], timer.seconds[1:]
    ratio = sum(cb) / sum(ep)
    report = tubes.report_seconds[1:]  # writing report.html, a part of the callback's seconds
    report_ratio = sum(report) / sum(ep)
    print(
        f"default config ({cfg['model']['arch']}, batch {cfg['data']['batch_size']}, {train_batches} training and "
        f"{val_batches} validation batches per epoch, {tubes_args['num_samples']} samples), {epochs} epochs, "
        f"fit {fit_seconds:.0f} s"
    )
    print(f"{'epoch':>5} {'epoch s':>8} {'callback s':>11} {'share':>7}")
    for i, (e, c) in enumerate(zip(timer.seconds, tubes.seconds, strict=True)):
        print(f"{i:5d} {e:8.2f} {c:11.3f} {c / e:7.3f}{'   (left out)' if i == 0 else ''}")
    results.figure("setting", f"{cfg['model']['arch']} default config, {train_batches} + {val_batches} batches/epoch")
    results.figure("epochs measured (after the first)", len(ep))
    results.figure("median epoch s", statistics.median(ep))
    results.figure("median callback s per epoch", statistics.median(cb))
    results.figure("first epoch s (left out)", timer.seconds[0])
    results.figure("first epoch callback s (left out)", tubes.seconds[0])
    results.figure("median report s per epoch", statistics.median(report))
    results.target("callback s / epoch s", ratio, "<=", TARGET)
    results.target("report s / epoch s", report_ratio, "<=", REPORT_TARGET)
    return results.write()


if __name__ == "__main__":
    sys.exit(main())
