"""The LightningModule: a video classifier whose checkpoint carries everything explain.py needs."""
from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from ..data.transforms import KINETICS_MEAN, KINETICS_STD
from ..errors import SaliencyTubesError
from ..models import create_model


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
    """

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
        optimizer: str = "sgd",
        lr: float = 0.1,
        weight_decay: float = 1e-4,
        momentum: float = 0.9,
        scheduler: str = "cosine",
        warmup_epochs: float = 1.0,
        label_smoothing: float = 0.0,
    ):
        super().__init__()
        if optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', not {optimizer!r}")
        if scheduler not in ("cosine", "step", "none"):
            raise ValueError(f"scheduler must be 'cosine', 'step' or 'none', not {scheduler!r}")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for {num_classes} classes")
        self.save_hyperparameters()
        self.model = create_model(arch, num_classes, **(arch_kwargs or {}))
        top5 = min(5, num_classes)
        self.train_acc = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_acc5 = MulticlassAccuracy(num_classes, top_k=top5, average="micro")
        self.val_loss = MeanMetric()  # weighted by clips, so it is exact across ranks of unequal size

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        return self.model(clips)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        logits = self(batch["clip"])
        loss = F.cross_entropy(logits, batch["label"], label_smoothing=self.hparams.label_smoothing)
        if not torch.isfinite(loss):
            raise SaliencyTubesError(
                f"the training loss became {loss.item()} at epoch {self.current_epoch}, step {self.global_step}; lower "
                f"--model.lr (now {self.hparams.lr}); checkpoints written so far are kept"
            )
        self.train_acc(logits, batch["label"])
        self.log("train/loss", loss, prog_bar=True, batch_size=len(logits))
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=len(logits))
        self.log("train/acc_top1", self.train_acc, on_step=False, on_epoch=True, batch_size=len(logits))
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch["clip"])
        loss = F.cross_entropy(logits, batch["label"])
        self.val_acc(logits, batch["label"])
        self.val_acc5(logits, batch["label"])
        n = len(logits)
        self.val_loss.update(loss, weight=n)
        self.log("val/loss", self.val_loss, prog_bar=True, batch_size=n)
        self.log("val/acc_top1", self.val_acc, prog_bar=True, batch_size=n)
        self.log("val/acc_top5", self.val_acc5, batch_size=n)

    def configure_optimizers(self):
        hp = self.hparams
        decay, no_decay = [], []
        for p in self.model.parameters():
            if p.requires_grad:
                (no_decay if p.ndim <= 1 else decay).append(p)  # no weight decay on norms and biases
        groups = [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
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
