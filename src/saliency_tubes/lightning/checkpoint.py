"""Loading a model and its input settings from a checkpoint written by training."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data.transforms import KINETICS_MEAN, KINETICS_STD
from ..errors import SaliencyTubesError
from ..models import create_model


@dataclass
class ModelInfo:
    """What a checkpoint says about its model's input and output."""

    arch: str
    num_classes: int
    class_names: list[str]
    clip_len: int
    stride: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelInfo]:
    """The model (in eval mode, on ``device``) and its :class:`ModelInfo` from a Lightning checkpoint of
    :class:`~saliency_tubes.lightning.module.VideoClassifier`."""
    path = Path(path)
    if not path.is_file():
        raise SaliencyTubesError(f"checkpoint {path} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):  # torch.save writes a zip (or, formerly, a pickle)
        raise SaliencyTubesError(f"checkpoint {path} is not a PyTorch checkpoint file")
    try:
        # weights_only: a checkpoint from a stranger must not be able to run code when loaded
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SaliencyTubesError(f"checkpoint {path} cannot be loaded safely: {first[:200]}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise SaliencyTubesError(f"checkpoint {path} is not a saliency-tubes training checkpoint (no state_dict/hyper_parameters)")
    hp = ckpt["hyper_parameters"]
    try:
        num_classes = int(hp["num_classes"])
        info = ModelInfo(
            arch=hp["arch"],
            num_classes=num_classes,
            class_names=list(hp.get("class_names") or [str(i) for i in range(num_classes)]),
            clip_len=int(hp.get("clip_len", 8)),
            stride=int(hp.get("stride", 2)),
            input_size=int(hp.get("input_size", 112)),
            mean=tuple(hp.get("mean", KINETICS_MEAN)),
            std=tuple(hp.get("std", KINETICS_STD)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SaliencyTubesError(f"checkpoint {path} has incomplete hyper-parameters ({exc})") from None
    model = create_model(info.arch, info.num_classes, **(hp.get("arch_kwargs") or {}))
    state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        key = (result.missing_keys or result.unexpected_keys)[0]
        raise SaliencyTubesError(f"checkpoint {path} does not fit {info.arch}: first mismatched key {key!r}")
    return model.to(device).eval(), info
