"""Logger adapters: each hands the callback's media to one kind of Lightning logger.

The callback writes every sample's explanation to disk (:func:`saliency_tubes.explain.write_explanation`) and then
gives the list of :class:`TubeMedia` to the adapter of each attached logger. Adding a logger is one adapter class
with ``@register_adapter`` (see ``docs/ARCHITECTURE.md``, "Adding a logger").
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger


@dataclass
class TubeMedia:
    """One explained validation sample of one epoch; ``folder`` holds what ``write_explanation`` wrote."""

    sample: int
    epoch: int
    true: str
    predicted: str
    confidence: float
    caption: str
    folder: Path

    @property
    def video(self) -> Path:
        return self.folder / "overlay.mp4"

    @property
    def plot(self) -> Path:
        return self.folder / "tube.png"

    @property
    def pyramid(self) -> Path | None:
        """``pyramid.png`` (one row per depth) when the method explains several layers, else None."""
        path = self.folder / "pyramid.png"
        return path if path.is_file() else None


class LoggerAdapter:
    """Logs the callback's media to one logger of type ``logger_type``."""

    logger_type: ClassVar[type[Logger]]

    def __init__(self, logger: Any, fps: float):
        self.logger, self.fps = logger, fps

    def log_media(self, media: list[TubeMedia], step: int, epoch: int) -> None:
        raise NotImplementedError


_ADAPTERS: list[type[LoggerAdapter]] = []


def register_adapter(cls: type[LoggerAdapter]) -> type[LoggerAdapter]:
    _ADAPTERS.append(cls)
    return cls


def adapters_for(loggers: list[Logger], fps: float) -> list[LoggerAdapter]:
    """One adapter per logger that has one (the most specific registered type); other loggers get scalars only."""
    found = []
    for logger in loggers:
        matches = [a for a in _ADAPTERS if isinstance(logger, a.logger_type)]
        if matches:
            best = max(matches, key=lambda a: len(a.logger_type.__mro__))
            found.append(best(logger, fps))
    return found


@register_adapter
class WandbAdapter(LoggerAdapter):
    """Videos ``tubes/sample_<i>`` and one incremental table ``tubes/table`` (epoch, sample, true, predicted,
    confidence, video, tube plot) that grows by one row per sample and epoch (``log_mode="INCREMENTAL"``: each log
    uploads only the new rows, and the dashboard shows them as one table to group by sample and compare epochs).
    With a multi-layer method, each sample's ``pyramid.png`` is logged beside its video in the same step
    (``tubes/pyramid_<i>``) and in the same table row (column ``pyramid``). ``epoch`` is declared the step metric
    of ``tubes/*``."""

    logger_type = WandbLogger
    COLUMNS: list[str | int] = ["epoch", "sample", "true", "predicted", "confidence", "video", "tube"]

    def __init__(self, logger: Any, fps: float):
        super().__init__(logger, fps)
        self.table: Any = None

    def log_media(self, media: list[TubeMedia], step: int, epoch: int) -> None:
        import wandb

        run = self.logger.experiment
        if self.table is None:  # the method is the run's, so whether there are pyramids is known from the first log
            pyramids = any(m.pyramid is not None for m in media)
            self.table = wandb.Table(columns=self.COLUMNS + ["pyramid"] * pyramids, log_mode="INCREMENTAL")
            run.define_metric("epoch")
            run.define_metric("tubes/*", step_metric="epoch")
        logged: dict[str, Any] = {}
        for m in media:
            logged[f"tubes/sample_{m.sample}"] = wandb.Video(str(m.video), caption=m.caption, format="mp4")
            row = [
                m.epoch,
                m.sample,
                m.true,
                m.predicted,
                m.confidence,
                wandb.Video(str(m.video), caption=m.caption, format="mp4"),
                wandb.Image(str(m.plot), caption=m.caption),
            ]
            if m.pyramid is not None:
                logged[f"tubes/pyramid_{m.sample}"] = wandb.Image(str(m.pyramid), caption=m.caption)
            if "pyramid" in self.table.columns:
                row.append(wandb.Image(str(m.pyramid), caption=m.caption) if m.pyramid is not None else None)
            self.table.add_data(*row)
        logged["tubes/table"] = self.table
        run.log({**logged, "trainer/global_step": step, "epoch": epoch})


@register_adapter
class TensorBoardAdapter(LoggerAdapter):
    """Each sample's video as an animated GIF (what ``add_video`` writes, without needing moviepy), its tube plot
    as an image and, with a multi-layer method, its pyramid (``tubes/sample_<i>_pyramid``)."""

    logger_type = TensorBoardLogger

    def log_media(self, media: list[TubeMedia], step: int, epoch: int) -> None:
        from PIL import Image
        from tensorboard.compat.proto.summary_pb2 import Summary

        from ..data.video import read_frames, video_info
        from ..render import encode_gif

        writer = self.logger.experiment
        for m in media:
            video = read_frames(m.video, range(video_info(m.video).num_frames))
            gif = encode_gif(video, self.fps)
            image = Summary.Image(height=video.shape[1], width=video.shape[2], colorspace=3, encoded_image_string=gif)
            summary = Summary(value=[Summary.Value(tag=f"tubes/sample_{m.sample}", image=image)])
            writer._get_file_writer().add_summary(summary, step)  # add_image takes single images only
            plot = np.asarray(Image.open(m.plot).convert("RGB"))
            writer.add_image(f"tubes/sample_{m.sample}_tube", plot, step, dataformats="HWC")
            if m.pyramid is not None:
                pyramid = np.asarray(Image.open(m.pyramid).convert("RGB"))
                writer.add_image(f"tubes/sample_{m.sample}_pyramid", pyramid, step, dataformats="HWC")
        writer.flush()


@register_adapter
class CSVAdapter(LoggerAdapter):
    """One row per sample and epoch in ``tubes.csv`` beside the logger's ``metrics.csv``, with the paths of the
    sample's files (``pyramid``: its ``pyramid.png`` with a multi-layer method, else empty)."""

    logger_type = CSVLogger
    COLUMNS = ("epoch", "step", "sample", "true", "predicted", "confidence", "video", "tube", "saliency", "pyramid")

    def log_media(self, media: list[TubeMedia], step: int, epoch: int) -> None:
        path = Path(self.logger.log_dir) / "tubes.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        # a file begun before the pyramid column existed keeps its columns (a resumed run appends to it)
        if new:
            columns = len(self.COLUMNS)
        else:
            with path.open(newline="") as fh:
                columns = len(next(csv.reader(fh), self.COLUMNS))
        with path.open("a", newline="") as fh:
            writer = csv.writer(fh)
            if new:
                writer.writerow(self.COLUMNS)
            for m in media:
                row = [
                    m.epoch,
                    step,
                    m.sample,
                    m.true,
                    m.predicted,
                    f"{m.confidence:.6f}",
                    m.video,
                    m.plot,
                    m.folder / "saliency.npy",
                    m.pyramid or "",
                ]
                writer.writerow(row[:columns])
