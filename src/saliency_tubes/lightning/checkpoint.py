"""Loading a model and its input settings from a training checkpoint or an exported ``.safetensors`` file.

Nothing here can run code from a file: Lightning checkpoints are read with ``torch.load(weights_only=True)``
(plain tensors and containers only, no extra allowed globals), safetensors files hold tensors and a JSON
header.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.transforms import KINETICS_MEAN, KINETICS_STD
from ..errors import SaliencyTubesError
from ..models import create_model, input_config
from ..models.pretrained import SAFETENSORS_KEY, classifier_name, fit_state_dict, read_weight_file


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
    arch_kwargs: dict = field(default_factory=dict)


def _info_from(hp: dict, path: Path) -> ModelInfo:
    try:
        num_classes = int(hp["num_classes"])
        return ModelInfo(
            arch=hp["arch"],
            num_classes=num_classes,
            class_names=list(hp.get("class_names") or [str(i) for i in range(num_classes)]),
            clip_len=int(hp.get("clip_len", 8)),
            stride=int(hp.get("stride", 2)),
            input_size=int(hp.get("input_size", 112)),
            mean=tuple(hp.get("mean", KINETICS_MEAN)),
            std=tuple(hp.get("std", KINETICS_STD)),
            arch_kwargs=dict(hp.get("arch_kwargs") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SaliencyTubesError(f"checkpoint {path} has incomplete hyper-parameters ({exc})") from None


def read_model_info(path: str | Path) -> tuple[dict, ModelInfo]:
    """``(model state_dict, ModelInfo)`` of a training checkpoint or a ``.safetensors`` export, safely."""
    weights = read_weight_file(path)
    if weights.format not in ("saliency-tubes checkpoint", "saliency-tubes export"):
        raise SaliencyTubesError(
            f"checkpoint {path} is a {weights.format}, not a saliency-tubes checkpoint: "
            "give --arch (and --num-classes) to use bare weights"
        )
    return weights.state, _info_from(weights.meta, Path(path))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelInfo]:
    """The model (in eval mode, on ``device``) and its :class:`ModelInfo` from a training checkpoint of
    :class:`~saliency_tubes.lightning.module.VideoClassifier` or a ``.safetensors`` export of one."""
    state, info = read_model_info(path)
    model = create_model(info.arch, info.num_classes, **info.arch_kwargs)
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        key = (result.missing_keys or result.unexpected_keys)[0]
        raise SaliencyTubesError(f"checkpoint {path} does not fit {info.arch}: first mismatched key {key!r}")
    return model.to(device).eval(), info


def load_weights_file(
    path: str | Path,
    arch: str,
    num_classes: int | None = None,
    class_names: list[str] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, ModelInfo]:
    """A model of architecture ``arch`` from a bare weight file (3D-ResNets-PyTorch, PyTorch-MFNet, torchvision,
    a plain state_dict, ...), with the architecture's reference input settings. The class count is read from the
    file's classifier unless given; class names default to the class indices."""
    weights = read_weight_file(path)
    with torch.device("meta"):  # only to learn the classifier's name: no memory, no initialisation work
        head = classifier_name(create_model(arch, 2))
    stored = weights.state.get(f"{head}.weight")
    if num_classes is None:
        if stored is None or stored.dim() != 2:
            raise SaliencyTubesError(f"{path} has no classifier {head!r} for {arch}: give --num-classes")
        num_classes = int(stored.shape[0])
    if class_names is not None and len(class_names) != num_classes:
        raise SaliencyTubesError(f"{len(class_names)} class names for a {num_classes}-class model")
    model = create_model(arch, num_classes)
    state, report = fit_state_dict(model, weights, source=str(path))
    if report.replaced:
        raise SaliencyTubesError(
            f"{path} has a {stored.shape[0]}-class classifier, not {num_classes}: a model to explain "
            "needs its trained classifier"
        )
    model.load_state_dict(state)
    cfg = input_config(arch)
    info = ModelInfo(
        arch=arch,
        num_classes=num_classes,
        class_names=class_names or [str(i) for i in range(num_classes)],
        clip_len=cfg.clip_len,
        stride=cfg.stride,
        input_size=cfg.input_size,
        mean=cfg.mean,
        std=cfg.std,
    )
    return model.to(device).eval(), info


def export_safetensors(model: nn.Module, info: ModelInfo, out: str | Path) -> Path:
    """Write the model's weights and its :class:`ModelInfo` (as JSON metadata) to a ``.safetensors`` file."""
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    partial = out.with_name(out.name + ".partial")
    save_file(state, str(partial), metadata={SAFETENSORS_KEY: json.dumps(asdict(info))})
    partial.replace(out)
    return out
