"""Training checkpoints written the way Lightning writes them, without training."""

from pathlib import Path

import torch

from saliency_tubes.lightning import VideoClassifier

TINY_ARCH = {"width": 4, "conv1_t_size": 3, "no_max_pool": True, "stage_t_stride": 1}


def tiny_checkpoint(
    path: Path,
    class_names: list[str],
    clip_len: int = 4,
    stride: int = 2,
    input_size: int = 32,
    arch: str = "resnet3d_10",
    arch_kwargs: dict | None = None,
) -> Path:
    """A Lightning-style checkpoint (``state_dict`` + ``hyper_parameters``) of an untrained tiny R3D-10 (or of
    ``arch`` built with ``arch_kwargs``)."""
    torch.manual_seed(0)
    module = VideoClassifier(
        arch=arch,
        num_classes=len(class_names),
        class_names=class_names,
        arch_kwargs=TINY_ARCH if arch_kwargs is None else arch_kwargs,
        clip_len=clip_len,
        stride=stride,
        input_size=input_size,
    )
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path
