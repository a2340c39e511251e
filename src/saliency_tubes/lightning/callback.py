"""The Saliency Tubes callback: explanations of fixed validation clips, every epoch, in W&B and on disk."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only, rank_zero_warn

from ..data.datasets import VideoClipDataset
from ..data.video import VideoReadError
from ..errors import first_line
from ..explain import (
    VideoExplanation,
    check_layers,
    explain,
    get_method,
    mask_share,
    tube_mass_in_gt,
    write_explanation,
)
from ..explain.faithfulness import Baseline, deletion_insertion
from ..explain.methods import MethodName, default_method
from ..report import append_metrics, build_run_report, write_confusion, write_run_info
from .loggers import LoggerAdapter, TubeMedia, adapters_for
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

    Each sample's explanation is written by :func:`~saliency_tubes.explain.write_explanation` to
    ``<run folder>/tubes/epoch_<n>/sample_<i>/`` (``overlay.mp4`` with the clip and its tube side by side,
    ``tube.png``, ``saliency.npy``, ``result.json``; with a multi-layer method such as ``pyramid`` or ``layercam``
    also ``pyramid.png`` and ``pyramid.npz``, one tube per depth), then handed to the adapter of each attached logger
    (:mod:`.loggers`: W&B videos ``tubes/sample_<i>``, pyramids ``tubes/pyramid_<i>`` and the table ``tubes/table``,
    TensorBoard GIFs and images, CSV rows). With ground-truth masks it logs
    ``val/tube_mass_in_gt`` (and ``val/mask_share``, what a uniform map would score).

    Args:
        num_samples: how many validation clips to follow.
        every_n_epochs: explain every n-th validation epoch.
        fps: frame rate of the logged videos.
        display_height: videos smaller than this are upscaled (nearest neighbour) for the dashboard.
        clip_negative: clip negative evidence to zero before normalising (CAM; ``false`` = the original min–max).
        seed: choice of the samples.
        method: a registered explanation method (default ``saliency_tubes``, or ``gradcam`` for a model on which CAM
            is not exact: ``cam_exact = False``): ``saliency_tubes`` (CAM, almost free), ``gradcam`` or
            ``gradcam_pp`` (one backward pass), the multi-layer ``pyramid`` or ``layercam``, ``rollout`` (ViTs:
            attention rollout, class-agnostic), ``attention_relevance`` (ViTs and Swin3D: class-specific,
            gradient-weighted attention relevance), ...
        layer: the layer for the gradient methods (a module name of the model; default the last feature volume,
            or for a token model the last of its ``explain_layers()``).
        layers: the layers a multi-layer method fuses, shallow to deep (module names, e.g. ``[layer2, layer3,
            layer4]``; default the method's own: the last block of every stage from the second on).
        faithfulness: also log ``val/deletion_auc`` and ``val/insertion_auc`` of the samples' tubes (2 × (steps+1)
            forward passes of the samples per epoch).
        faithfulness_steps: deletion/insertion steps.
        faithfulness_baseline: what deleted cells become: ``blur`` (the blurred clip) or ``zero`` (the
            normalisation mean).
        focus: also write the alpha "focus" PNGs of every sample.
        report: after every validation epoch, write ``<run folder>/report.html`` (:mod:`saliency_tubes.report`:
            curves, the samples × epochs grid, the confusion matrix), from ``run.json``, ``metrics.jsonl`` and
            ``confusion.json`` that the callback keeps beside it, whatever logger is attached.
    """

    def __init__(
        self,
        num_samples: int = 4,
        every_n_epochs: int = 1,
        fps: float = 4.0,
        display_height: int = 192,
        clip_negative: bool = True,
        seed: int = 0,
        method: MethodName | None = None,
        layer: str | None = None,
        layers: list[str] | None = None,
        faithfulness: bool = False,
        faithfulness_steps: int = 32,
        faithfulness_baseline: Baseline = "blur",
        focus: bool = False,
        report: bool = True,
    ):
        super().__init__()
        if num_samples < 1 or every_n_epochs < 1:
            raise ValueError("num_samples and every_n_epochs must be at least 1")
        if method is not None:
            get_method(method)  # an unknown name is a one-line error now, not at the first validation
        check_layers(method or "saliency_tubes", layers)  # and so are layers for a method that explains one
        self.method, self.layer, self.layers = method, layer, layers
        self.faithfulness, self.faithfulness_steps = faithfulness, faithfulness_steps
        self.faithfulness_baseline = faithfulness_baseline
        self.num_samples = num_samples
        self.every_n_epochs = every_n_epochs
        self.fps = fps
        self.display_height = display_height
        self.clip_negative = clip_negative
        self.seed = seed
        self.focus = focus
        self._samples: list[dict] | None = None
        self._indices: list[int] | None = None  # which validation videos; saved in checkpoints
        self._warned: set[str] = set()
        self.report = report
        self.report_seconds: list[float] = []  # time spent on the run report per validation epoch (rank zero)
        self._adapters: tuple[tuple[int, ...], list[LoggerAdapter]] | None = None
        self._loss_sum: torch.Tensor | None = None
        self._loss_count = 0
        self._epoch_scalars: dict[str, float] = {}
        self._confusion: list[list[int]] | None = None

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

    def state_dict(self) -> dict:
        """The chosen validation videos, so a resumed run explains the same clips as before the break."""
        return {"indices": self._indices}

    def load_state_dict(self, state_dict: dict) -> None:
        self._indices = state_dict.get("indices")
        self._samples = None

    # The run report's inputs: the training loss averaged over the epoch's steps (summed on the device, so no
    # step waits on a copy to the host), and the validation confusion matrix the module accumulates.
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._loss_sum, self._loss_count = None, 0

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self.report and isinstance(loss, torch.Tensor):
            loss = loss.detach().float()
            self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
            self._loss_count += 1

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        if self.report:
            self._collect_for_report(trainer, pl_module)
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        scores = self._explain_and_log(trainer, pl_module)  # rank zero only: None on the other ranks
        # Every rank takes part in these collectives (the broadcast, then the mean of equal values), so
        # none waits on a rank that skipped them.
        scores = trainer.strategy.broadcast(scores, src=0)
        for name, value in (scores or {}).items():
            pl_module.log(name, value, sync_dist=True)

    def _collect_for_report(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """On every rank (the sums are collectives): the epoch's mean training loss and the confusion matrix."""
        self._epoch_scalars, self._confusion = {}, None
        if self._loss_sum is not None:
            total = trainer.strategy.reduce(self._loss_sum.clone(), reduce_op="sum")
            count = trainer.strategy.reduce(
                torch.tensor(float(self._loss_count), device=self._loss_sum.device), reduce_op="sum"
            )
            self._epoch_scalars["train/loss"] = float(total / count)
        confusion = getattr(pl_module, "val_confusion", None)
        if confusion is not None and getattr(confusion, "update_called", False):
            self._confusion = confusion.compute().long().tolist()  # torchmetrics sums it over the ranks

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.report and not trainer.sanity_checking:
            self._write_report(trainer, pl_module)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.method is None:  # fit, validate and test alike
            self.method = default_method(getattr(pl_module, "model", pl_module))

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.report and trainer.is_global_zero:
            write_run_info(run_folder(trainer), self._run_info(trainer, pl_module))

    def _run_info(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        hp = dict(getattr(pl_module, "hparams", {}))
        datamodule = getattr(trainer, "datamodule", None)
        data = dict(getattr(datamodule, "hparams", {}))
        classes = hp.pop("class_names", None) or getattr(datamodule, "class_names", None)
        data.pop("class_names", None)
        return {
            "run": run_folder(trainer).name,
            "model": hp.pop("arch", type(pl_module).__name__),
            "dataset": str(data.pop("root", "?")),
            "classes": list(classes or []),
            "model settings": hp,
            "data settings": data,
            "trainer": {"max_epochs": trainer.max_epochs, "precision": str(trainer.precision)},
            "tubes": {"method": self.method, "layer": self.layer, "layers": self.layers, "samples": self.num_samples},
        }

    @rank_zero_only
    def _write_report(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        start = time.perf_counter()
        run_dir = run_folder(trainer)
        row: dict[str, float | int] = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for name, value in trainer.callback_metrics.items():
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                row[name] = float(value)
        row.update(self._epoch_scalars)  # the epoch's mean training loss rather than its last step
        try:
            append_metrics(run_dir, row)
            if self._confusion is not None:
                classes = list(getattr(pl_module, "hparams", {}).get("class_names") or [])
                classes = (
                    classes if len(classes) == len(self._confusion) else [str(i) for i in range(len(self._confusion))]
                )
                write_confusion(run_dir, trainer.current_epoch, classes, self._confusion)
            build_run_report(run_dir)
        except OSError as exc:  # a full disk must not stop training; the page can be rebuilt later
            if "report" not in self._warned:
                rank_zero_warn(f"SaliencyTubesCallback: could not write the run report in {run_dir}: {exc}")
                self._warned.add("report")
        self.report_seconds.append(time.perf_counter() - start)

    def _adapters_for(self, trainer: pl.Trainer) -> list[LoggerAdapter]:
        """One adapter per logger, kept for the whole run (W&B's incremental table lives in its adapter)."""
        key = tuple(id(logger) for logger in trainer.loggers)
        if self._adapters is None or self._adapters[0] != key:
            self._adapters = (key, adapters_for(trainer.loggers, self.fps))
        return self._adapters[1]

    @rank_zero_only
    def _explain_and_log(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        dataset = getattr(getattr(trainer, "datamodule", None), "val_dataset", None)
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
        assert self.method is not None, "set in setup()"
        result = explain(
            model, clips, method=self.method, layer=self.layer, clip_negative=self.clip_negative, layers=self.layers
        )
        tubes = result.tubes.cpu()
        depths = {name: t.float().cpu().numpy() for name, t in (result.layers or {}).items()}
        probs = result.probs.cpu()
        names = dataset.class_names
        epoch = trainer.current_epoch
        out_dir = run_folder(trainer) / "tubes" / f"epoch_{epoch:03d}"

        media = []
        for i, s in enumerate(samples):
            pred = int(result.targets[i])
            true = names[s["label"]]
            caption = f"true {true} · pred {names[pred]} (p={probs[i, pred]:.2f})"
            explanation = VideoExplanation(
                source=s["path"],
                frames=s["frames"].numpy(),
                frame_indices=s["frame_indices"].numpy(),
                tubes=tubes[i : i + 1],
                targets=[pred],
                probs=probs[i],
                class_names=names,
                method=self.method,
                fps=self.fps,
                extra={"epoch": epoch, "sample": i, "label": {"index": int(s["label"]), "class": true}},
                layers={name: t[i : i + 1] for name, t in depths.items()} or None,  # 1 target × T × H_d × W_d
            )
            folder = out_dir / f"sample_{i}"
            write_explanation(
                explanation,
                folder,
                focus=self.focus,
                side_by_side_video=True,
                min_height=self.display_height,
                preset="ultrafast",
                title=caption,
            )
            media.append(TubeMedia(i, epoch, true, names[pred], float(probs[i, pred]), caption, folder))

        scores = {}
        masks = [s["mask"] for s in samples if s.get("mask") is not None]
        if len(masks) == len(samples):
            masks_t = torch.stack(masks)
            scores["val/tube_mass_in_gt"] = float(tube_mass_in_gt(tubes, masks_t).mean())
            scores["val/mask_share"] = float(mask_share(masks_t).mean())
        if self.faithfulness:
            curves = deletion_insertion(
                model,
                clips,
                result.tubes,
                result.targets,
                steps=self.faithfulness_steps,
                baseline=self.faithfulness_baseline,
            )
            scores["val/deletion_auc"] = float(curves["deletion_auc"].mean())
            scores["val/insertion_auc"] = float(curves["insertion_auc"].mean())

        for adapter in self._adapters_for(trainer):
            try:
                adapter.log_media(media, trainer.global_step, epoch)
            except Exception as exc:  # the tubes are on disk already; a logging failure must not stop training
                name = type(adapter).__name__
                if name not in self._warned:
                    rank_zero_warn(
                        f"SaliencyTubesCallback: {name} failed ({first_line(exc)}); tubes are still written to {out_dir.parent}"
                    )
                    self._warned.add(name)
        return scores
