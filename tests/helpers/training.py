"""The tiny training set-up the callback and fine-tuning tests share."""

from pathlib import Path

import pytorch_lightning as pl

from saliency_tubes.data import VideoDataModule
from saliency_tubes.lightning import VideoClassifier

ARCH = {"width": 4, "conv1_t_size": 3, "no_max_pool": True}  # a width-4 ResNet-10 with a 3-frame stem


def tiny_classifier(root: str | Path, seed: int = 0, **model_kwargs) -> tuple[VideoDataModule, VideoClassifier]:
    """A seeded data module over ``root`` (4 frames every 2nd at 32 px, batches of 8, no workers) and a width-4
    ResNet-10 classifier for it (lr 0.05; ``model_kwargs`` override or add settings)."""
    pl.seed_everything(seed, verbose=False)
    dm = VideoDataModule(root=str(root), clip_len=4, stride=2, input_size=32, batch_size=8, num_workers=0)
    settings = {"arch_kwargs": ARCH, "clip_len": 4, "stride": 2, "input_size": 32, "lr": 0.05, **model_kwargs}
    model = VideoClassifier(arch="resnet3d_10", num_classes=dm.num_classes, class_names=dm.class_names, **settings)
    return dm, model
