"""The LightningModule: a video classifier whose checkpoint carries everything explain.py needs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, cast

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import AttributeDict, rank_zero_info
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from ..data.transforms import KINETICS_MEAN, KINETICS_STD, mix_clips
from ..errors import SaliencyTubesError
from ..models import create_model, stage_groups

# Architectures whose training step benchmarks/train_step.py measured faster in channels_last_3d, same loss.
CHANNELS_LAST_WINS = {"mfnet3d"}


class VideoClassifier(pl.LightningModule):
    """Cross-entropy training of a model from :func:`saliency_tubes.models.create_model`.

    Args:
        arch: architecture name (see ``saliency_tubes.models.list_models()``).
        num_classes: classifier size (linked from the data module).
        arch_kwargs: extra constructor arguments of the architecture (e.g. ``width``, ``no_max_pool``).
        class_names: class names, in label order (linked from the data module).
        clip_len, stride, input_size, mean, std: the input the model was trained on (linked from the
            data module); stored in the checkpoint so explanations use the same.
        optimizer: ``sgd`` or ``adamw``.
        lr, weight_decay, momentum: optimizer settings.
        scheduler: ``cosine`` (per step, with linear warm-up), ``step`` (×0.1 at 2/3 of training) or ``none``.
        warmup_epochs: epochs of linear warm-up for ``cosine``.
        label_smoothing: cross-entropy label smoothing.
        pretrained: a weight file to start from, in any format ``create_model`` detects (this project's checkpoints,
            3D-ResNets-PyTorch, PyTorch-MFNet, torchvision, timm 2D weights inflated to 3D); a classifier of
            another size is replaced.
        freeze_stages: freeze the first N stages of the backbone (1 = the stem; weights and BatchNorm statistics).
        backbone_lr_mult: learning rate of the backbone relative to the classifier's (PyTorch-MFNet fine-tuned
            UCF101 with 0.2).
        freeze_bn_stats: keep every BatchNorm's running statistics fixed (useful with small fine-tuning batches).
        channels_last: run convolutions in the ``channels_last_3d`` memory format; ``None`` (default) uses it where
            ``benchmarks/train_step.py`` measured a gain with the same loss (MFNet-3D's grouped convolutions).
        mixup_alpha / cutmix_alpha: Mixup / CutMix (one box through all frames) of training clips, with λ drawn
            from Beta(α, α); 0 turns each off, with both on each batch uses one of them at random.
        compile: run the model's forward through ``torch.compile`` (the weights and the checkpoint keys stay the same).
            ``benchmarks/train_step.py`` measures both against the plain model.
    """

    _forward: Callable[[torch.Tensor], torch.Tensor]  # the model, or its torch.compile wrapper (set in __init__)

    def __init__(
        self,
        arch: str = "resnet3d_10",
        num_classes: int = 400,
        arch_kwargs: dict[str, Any] | None = None,
        class_names: list[str] | None = None,
        clip_len: int = 8,
        stride: int = 2,
        input_size: int = 112,
        mean: tuple[float, float, float] = KINETICS_MEAN,
        std: tuple[float, float, float] = KINETICS_STD,
        optimizer: Literal["sgd", "adamw"] = "sgd",
        lr: float = 0.1,
        weight_decay: float = 1e-4,
        momentum: float = 0.9,
        scheduler: Literal["cosine", "step", "none"] = "cosine",
        warmup_epochs: float = 1.0,
        label_smoothing: float = 0.0,
        pretrained: str | None = None,
        freeze_stages: int = 0,
        backbone_lr_mult: float = 1.0,
        freeze_bn_stats: bool = False,
        channels_last: bool | None = None,
        compile: bool = False,
        mixup_alpha: float = 0.0,
        cutmix_alpha: float = 0.0,
    ):
        super().__init__()
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        if backbone_lr_mult < 0:
            raise ValueError(f"backbone_lr_mult must be at least 0, not {backbone_lr_mult}")
        self.save_hyperparameters()
        self.model = create_model(arch, num_classes, pretrained=pretrained, **(arch_kwargs or {}))
        if pretrained is not None:
            report: Any = self.model.pretrained_report  # what create_model found in the weight file
            rank_zero_info(f"Pretrained weights {pretrained} — {report.summary()}")
        self._frozen = self._freeze(freeze_stages)
        self._channels_last = arch in CHANNELS_LAST_WINS if channels_last is None else channels_last
        if self._channels_last:
            self.model.to(memory_format=torch.channels_last_3d)
        # kept out of the module tree, so checkpoints hold the plain model's keys
        object.__setattr__(self, "_forward", torch.compile(self.model) if compile else self.model)
        top5 = min(5, num_classes)
        self.train_acc = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_acc5 = MulticlassAccuracy(num_classes, top_k=top5, average="micro")
        # counts only (a bincount per batch); summed over ranks when read (the callback's run report)
        self.val_confusion = MulticlassConfusionMatrix(num_classes)
        self.val_loss = MeanMetric()  # weighted by clips, so it is exact across ranks of unequal size
        self.test_acc = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.test_acc5 = MulticlassAccuracy(num_classes, top_k=top5, average="micro")
        self._reset_video_sums()
        # one zero clip: Lightning's model summary runs it to show each layer's sizes and FLOPs
        self.example_input_array = torch.zeros(1, 3, clip_len, input_size, input_size)

    @property
    def _hp(self) -> AttributeDict:
        """``self.hparams``, typed as what it is (attribute access)."""
        return cast(AttributeDict, self.hparams)

    def _freeze(self, n: int) -> list[nn.Module]:
        """Stop gradients in the first ``n`` stages; returns their modules (kept in eval mode while training)."""
        if n <= 0:
            return []
        stages = stage_groups(self.model)
        if n > len(stages):
            raise ValueError(f"freeze_stages={n}, but {self._hp.arch} has {len(stages)} stages (stem included)")
        frozen = [m for stage in stages[:n] for m in stage]
        for module in frozen:
            module.requires_grad_(False)
        return frozen

    def _keep_frozen_in_eval(self) -> None:
        """Frozen stages (and with ``freeze_bn_stats`` every BatchNorm) keep their running statistics."""
        for module in self._frozen:
            module.eval()
        if self._hp.freeze_bn_stats:
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            self._keep_frozen_in_eval()
        return self

    def on_validation_epoch_start(self) -> None:
        self.val_confusion.reset()

    def on_train_epoch_start(self) -> None:
        # Lightning does not call train() when fitting starts; it restores each module's mode after validation.
        self._keep_frozen_in_eval()

    # Exact resumption: checkpoints do not hold the RNG states (Lightning 2.6 neither saves nor restores them), and
    # what a fresh process has drawn before a step differs from what the interrupted one had (DataLoader iterators
    # draw their workers' base seed, for one). So every random draw of a training step derives from the seed that
    # seed_everything set (the same again when resuming, and the one the data module seeds its items with), the rank,
    # the epoch and the batch's position in it: Mixup/CutMix from a generator of their own, the forward pass (dropout,
    # stochastic layers) under the global CPU and accelerator RNGs seeded for the step and restored afterwards.
    def on_fit_start(self) -> None:
        self._train_seed = torch.initial_seed()

    def _step_seeds(self, batch_idx: int) -> tuple[int, int]:
        """``(Mixup/CutMix seed, forward-pass seed)`` of training batch ``batch_idx`` of the current epoch."""
        seed = getattr(self, "_train_seed", None)
        if seed is None:  # training_step called outside Trainer.fit
            seed = self._train_seed = torch.initial_seed()
        key = [seed, self.global_rank, self.current_epoch, batch_idx]
        mix, forward = np.random.SeedSequence(key).generate_state(2, dtype=np.uint64)
        return int(mix) >> 1, int(forward) >> 1  # torch seeds are below 2**63

    @contextmanager
    def _seeded_rng(self, seed: int) -> Iterator[None]:
        """The global RNGs of the CPU and of this module's device seeded with ``seed``; their states are restored on
        exit."""
        device = self.device
        devices = [] if device.type == "cpu" else [device.index if device.index is not None else 0]
        with torch.random.fork_rng(devices=devices, device_type="cuda" if device.type == "cpu" else device.type):
            torch.manual_seed(seed)
            yield

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        if self._channels_last:
            clips = clips.contiguous(memory_format=torch.channels_last_3d)
        return self._forward(clips)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        hp = self._hp
        mix_seed, forward_seed = self._step_seeds(batch_idx)
        mix_rng = torch.Generator().manual_seed(mix_seed)
        clips, partner, lam = mix_clips(batch["clip"], hp.mixup_alpha, hp.cutmix_alpha, generator=mix_rng)
        with self._seeded_rng(forward_seed):
            logits = self(clips)
        loss = lam * F.cross_entropy(logits, batch["label"], label_smoothing=hp.label_smoothing)
        if lam < 1:
            loss = loss + (1 - lam) * F.cross_entropy(
                logits, batch["label"][partner], label_smoothing=hp.label_smoothing
            )
        if not torch.isfinite(loss):
            raise SaliencyTubesError(
                f"the training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}; lower "
                f"--model.lr (now {hp.lr}); checkpoints written so far are kept"
            )
        self.train_acc(logits, batch["label"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        self.log("train/lr", self.trainer.optimizers[0].param_groups[-1]["lr"], batch_size=len(logits))
        self.log("train/acc_top1", self.train_acc, on_step=False, on_epoch=True, batch_size=len(logits))
        skipped = getattr(getattr(self.trainer, "datamodule", None), "skipped", None)
        if skipped is not None:  # unreadable files met so far (each rank counts its own; the maximum is logged)
            self.log(
                "data/skipped",
                float(len(skipped)),
                on_step=False,
                on_epoch=True,
                reduce_fx="max",
                sync_dist=True,
                batch_size=len(logits),
            )
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch["clip"])
        loss = F.cross_entropy(logits, batch["label"])
        self.val_acc(logits, batch["label"])
        self.val_acc5(logits, batch["label"])
        self.val_confusion.update(logits, batch["label"])
        n = len(logits)
        self.val_loss.update(loss, weight=n)
        self.log("val/loss", self.val_loss, prog_bar=True, batch_size=n)
        self.log("val/acc_top1", self.val_acc, prog_bar=True, batch_size=n)
        self.log("val/acc_top5", self.val_acc5, batch_size=n)

    # Multi-view testing: every item is one clip × crop of video ``batch["video"]``. Each rank adds its items' softmax
    # into per-video sums (with counts and label sums) and the sums are added across ranks at the end, so the video
    # figures are exact however the ranks' shares were cut; the data module's sampler keeps a video on one rank anyway,
    # so that each clip is decoded once. Items of unreadable videos (``video`` -1) count nowhere.
    def _reset_video_sums(self) -> None:
        n = self._hp.num_classes
        self._video_probs = torch.zeros(0, n, dtype=torch.float64)
        self._video_views = torch.zeros(0, dtype=torch.long)
        self._video_labels = torch.zeros(0, dtype=torch.long)  # label × views: all views of a video share its label

    def _add_to_videos(self, videos: torch.Tensor, probs: torch.Tensor, labels: torch.Tensor) -> None:
        need = int(videos.max()) + 1
        have = len(self._video_views)
        if need > have:
            grow = max(need, 2 * have) - have
            self._video_probs = F.pad(self._video_probs, (0, 0, 0, grow))
            self._video_views = F.pad(self._video_views, (0, grow))
            self._video_labels = F.pad(self._video_labels, (0, grow))
        self._video_probs.index_add_(0, videos, probs.double())
        self._video_views.index_add_(0, videos, torch.ones_like(videos))
        self._video_labels.index_add_(0, videos, labels)

    def on_test_epoch_start(self) -> None:
        self._reset_video_sums()

    def test_step(self, batch: dict, batch_idx: int) -> None:
        keep = batch["video"] >= 0
        if not keep.any():
            return
        logits = self(batch["clip"][keep])
        labels = batch["label"][keep]
        self.test_acc(logits, labels)
        self.test_acc5(logits, labels)
        n = len(logits)
        self.log("test/clip_acc_top1", self.test_acc, batch_size=n)
        self.log("test/clip_acc_top5", self.test_acc5, batch_size=n)
        self._add_to_videos(batch["video"][keep].cpu(), logits.detach().float().softmax(-1).cpu(), labels.cpu())

    def video_accuracy(self) -> dict[str, float]:
        """Top-1/top-5 accuracy of the videos' averaged softmax, over all ranks (every rank must call it)."""
        strategy = self.trainer.strategy
        counts = cast(torch.Tensor, self.all_gather(torch.tensor(len(self._video_views), device=self.device)))
        size = int(counts.max())
        sums = [
            strategy.reduce(
                F.pad(t, (0, 0, 0, size - len(t)) if t.dim() == 2 else (0, size - len(t))).to(self.device),
                reduce_op="sum",
            )
            for t in (self._video_probs, self._video_views, self._video_labels)
        ]
        probs, views, labels = (t.cpu() for t in sums)
        seen = views > 0
        probs, views, labels = probs[seen] / views[seen, None], views[seen], labels[seen] // views[seen]
        top = probs.topk(min(5, probs.shape[1]), dim=1).indices
        hits = top == labels[:, None]
        return {
            "test/video_acc_top1": hits[:, 0].double().mean().item(),
            "test/video_acc_top5": hits.any(1).double().mean().item(),
            "test/videos": float(seen.sum()),
        }

    def on_test_epoch_end(self) -> None:
        for name, value in self.video_accuracy().items():
            self.log(name, value, sync_dist=True)  # the same on every rank: the mean is the value

    def configure_optimizers(self):
        hp = self._hp
        head = {id(p) for p in self.model.get_classifier().parameters()}
        groups = []
        for is_head, lr in ((False, hp.lr * hp.backbone_lr_mult), (True, hp.lr)):
            decay, no_decay = [], []
            for p in self.model.parameters():
                if p.requires_grad and (id(p) in head) == is_head:
                    (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on norms and biases
            groups += [
                {"params": params, "weight_decay": wd, "lr": lr}
                for params, wd in ((decay, hp.weight_decay), (no_decay, 0.0))
                if params
            ]
        if hp.optimizer == "sgd":
            opt = torch.optim.SGD(groups, lr=hp.lr, momentum=hp.momentum, nesterov=hp.momentum > 0)
        else:
            opt = torch.optim.AdamW(groups, lr=hp.lr)
        if hp.scheduler == "none":
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches))
        if hp.scheduler == "step":
            sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[int(total * 2 / 3)], gamma=0.1)
        else:
            steps_per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
            warmup = min(int(hp.warmup_epochs * steps_per_epoch), total - 1)
            cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warmup))
            if warmup > 0:
                ramp = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup)
                sched = torch.optim.lr_scheduler.SequentialLR(opt, [ramp, cosine], milestones=[warmup])
            else:
                sched = cosine
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
