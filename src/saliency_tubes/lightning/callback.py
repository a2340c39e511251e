"""The Saliency Tubes callback: explanations of fixed validation clips, every epoch, in W&B and on disk."""

from __future__ import annotations

import logging

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only, rank_zero_warn

from ..data.datasets import VideoClipDataset
from ..data.video import VideoReadError
from ..errors import first_line
from ..explain import METHODS, explain, mask_share, tube_mass_in_gt
from ..explain.faithfulness import deletion_insertion
from ..render import encode_gif, overlay, plot_tube, side_by_side, upscale, write_mp4
from .run_checkpoint import run_folder

log = logging.getLogger(__name__)


def balanced_indices(labels: list[int], num_samples: int, seed: int = 0) -> list[int]:
    """Pick ``num_samples`` items, cycling through the classes so each is represented as evenly as possible."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    pools = {c: list(rng.permutation(idx)) for c, idx in sorted(by_class.items())}
    order = list(rng.permutation(sorted(pools)))
    chosen: list[int] = []
    while len(chosen) < min(num_samples, len(labels)):
        for c in order:
            if pools[c] and len(chosen) < num_samples:
                chosen.append(int(pools[c].pop()))
    return chosen


class SaliencyTubesCallback(pl.Callback):
    """At the end of every ``every_n_epochs``-th validation epoch, explain a fixed, class-balanced set of
    validation clips and log them.

    For each sample: an MP4 with the clip and its Saliency Tube overlay side by side, and a 3D tube plot;
    to W&B (when a ``WandbLogger`` is attached) as ``tubes/sample_<i>`` videos and a ``tubes/table`` table,
    and to ``<checkpoint dir>/tubes/epoch_<n>/`` on disk. With ground-truth masks it logs
    ``val/tube_mass_in_gt`` (and ``val/mask_share``, what a uniform map would score).

    Args:
        num_samples: how many validation clips to follow.
        every_n_epochs: explain every n-th validation epoch.
        fps: frame rate of the logged videos.
        display_height: videos smaller than this are upscaled (nearest neighbour) for the dashboard.
        clip_negative: clip negative evidence to zero before normalising (CAM; ``false`` = the original min–max).
        seed: choice of the samples.
        method: ``saliency_tubes`` (CAM, almost free), ``gradcam`` or ``gradcam_pp`` (one backward pass).
        layer: the layer for the gradient methods (a module name of the model; default its last conv block).
        faithfulness: also log ``val/deletion_auc`` and ``val/insertion_auc`` of the samples' tubes (2 × (steps+1)
            forward passes of the samples per epoch).
        faithfulness_steps: deletion/insertion steps.
    """

    def __init__(
        self,
        num_samples: int = 4,
        every_n_epochs: int = 1,
        fps: float = 4.0,
        display_height: int = 192,
        clip_negative: bool = True,
        seed: int = 0,
        method: str = "saliency_tubes",
        layer: str | None = None,
        faithfulness: bool = False,
        faithfulness_steps: int = 32,
    ):
        super().__init__()
        if num_samples < 1 or every_n_epochs < 1:
            raise ValueError("num_samples and every_n_epochs must be at least 1")
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        self.method, self.layer = method, layer
        self.faithfulness, self.faithfulness_steps = faithfulness, faithfulness_steps
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.fps = fps
        self.display_height = display_height
        self.clip_negative = clip_negative
        self.seed = seed
        self._samples: list[dict] | None = None
        self._indices: list[int] | None = None  # which validation videos; saved in checkpoints
        self._warned = False

    def _select(self, dataset: VideoClipDataset) -> list[dict]:
        if self._indices is None or max(self._indices, default=-1) >= len(dataset):
            self._indices = balanced_indices(dataset.labels, self.num_samples, self.seed)
        samples = []
        for i in self._indices:
            try:
                item = dataset.load(i, with_mask=True)
            except VideoReadError as exc:  # the data module reports the file; the tubes go on with the others
                rank_zero_warn(f"Saliency Tubes: skipping validation sample {dataset.videos[i]}: {first_line(exc)}")
                continue
            item["path"] = str(dataset.videos[i])
            samples.append(item)
        return samples

    def _log_tensorboard(self, logger: TensorBoardLogger, step: int, rows: list, videos: list) -> None:
        """Each sample's video as an animated GIF (what ``add_video`` writes, without needing moviepy) and its
        tube plot as an image."""
        from PIL import Image
        from tensorboard.compat.proto.summary_pb2 import Summary

        writer = logger.experiment
        for (_, i, *_rest, plot_path, _caption), video in zip(rows, videos, strict=False):
            gif = encode_gif(video, self.fps)
            image = Summary.Image(height=video.shape[1], width=video.shape[2], colorspace=3, encoded_image_string=gif)
            writer._get_file_writer().add_summary(
                Summary(value=[Summary.Value(tag=f"tubes/sample_{i}", image=image)]), step
            )
            writer.add_image(
                f"tubes/sample_{i}_tube", np.asarray(Image.open(plot_path).convert("RGB")), step, dataformats="HWC"
            )
        writer.flush()

    def state_dict(self) -> dict:
        """The chosen validation videos, so a resumed run explains the same clips as before the break."""
        return {"indices": self._indices}

    def load_state_dict(self, state_dict: dict) -> None:
        self._indices = state_dict.get("indices")
        self._samples = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        scores = self._explain_and_log(trainer, pl_module)  # rank zero only: None on the other ranks
        # Every rank takes part in these collectives (the broadcast, then the mean of equal values), so
        # none waits on a rank that skipped them.
        scores = trainer.strategy.broadcast(scores, src=0)
        for name, value in (scores or {}).items():
            pl_module.log(name, value, sync_dist=True)

    @rank_zero_only
    def _explain_and_log(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        datamodule = trainer.datamodule
        dataset = getattr(datamodule, "val_dataset", None)
        if dataset is None:
            log.warning("SaliencyTubesCallback: the data module has no val_dataset; nothing to explain")
            return None
        if self._samples is None:
            self._samples = self._select(dataset)
        samples = self._samples
        if not samples:
            return None
        model = getattr(pl_module, "model", pl_module)
        clips = torch.stack([s["clip"] for s in samples]).to(pl_module.device)
        result = explain(model, clips, method=self.method, layer=self.layer, clip_negative=self.clip_negative)
        tubes = result.tubes.cpu()
        probs = result.probs.cpu()
        names = dataset.class_names
        out_dir = run_folder(trainer) / "tubes" / f"epoch_{trainer.current_epoch:03d}"

        rows, media, videos = [], {}, []
        for i, s in enumerate(samples):
            sal = tubes[i].numpy()
            frames = s["frames"].numpy()
            pred = int(result.targets[i])
            caption = f"true {names[s['label']]} · pred {names[pred]} (p={probs[i, pred]:.2f})"
            video = upscale(side_by_side(frames, overlay(frames, sal)), self.display_height)
            video_path = write_mp4(out_dir / f"sample_{i}.mp4", video, fps=self.fps, preset="ultrafast")
            plot_path = plot_tube(
                sal,
                out_dir / f"sample_{i}_tube.png",
                title=caption,
                frame=frames[0],
                frame_indices=s["frame_indices"].tolist(),
            )
            rows.append(
                (
                    trainer.current_epoch,
                    i,
                    names[s["label"]],
                    names[pred],
                    float(probs[i, pred]),
                    video_path,
                    plot_path,
                    caption,
                )
            )
            videos.append(video)

        scores = {}
        masks = [s.get("mask") for s in samples]
        if all(m is not None for m in masks):
            masks_t = torch.stack(masks)
            scores["val/tube_mass_in_gt"] = float(tube_mass_in_gt(tubes, masks_t).mean())
            scores["val/mask_share"] = float(mask_share(masks_t).mean())
        if self.faithfulness:
            curves = deletion_insertion(model, clips, result.tubes, result.targets, steps=self.faithfulness_steps)
            scores["val/deletion_auc"] = float(curves["deletion_auc"].mean())
            scores["val/insertion_auc"] = float(curves["insertion_auc"].mean())

        for tb_logger in (lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)):
            self._log_tensorboard(tb_logger, trainer.global_step, rows, videos)

        for wandb_logger in (lg for lg in trainer.loggers if isinstance(lg, WandbLogger)):
            import wandb

            table = wandb.Table(columns=["epoch", "sample", "true", "predicted", "confidence", "video", "tube"])
            for epoch, i, true, pred, conf, video_path, plot_path, caption in rows:
                media[f"tubes/sample_{i}"] = wandb.Video(str(video_path), caption=caption, format="mp4")
                table.add_data(
                    epoch,
                    i,
                    true,
                    pred,
                    conf,
                    wandb.Video(str(video_path), caption=caption, format="mp4"),
                    wandb.Image(str(plot_path), caption=caption),
                )
            media["tubes/table"] = table
            try:
                wandb_logger.experiment.log(
                    {**media, "trainer/global_step": trainer.global_step, "epoch": trainer.current_epoch}
                )
            except Exception as exc:  # the tubes are on disk already; a logging failure must not stop training
                if not self._warned:
                    rank_zero_warn(
                        f"SaliencyTubesCallback: W&B logging failed ({exc}); tubes are still written to {out_dir.parent}"
                    )
                    self._warned = True
        return scores
