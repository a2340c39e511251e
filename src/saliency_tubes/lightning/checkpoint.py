"""Loading a model and its input settings from a training checkpoint or an exported ``.safetensors`` file.

Nothing here can run code from a file: Lightning checkpoints are read with ``torch.load(weights_only=True)``
(plain tensors and containers only, no extra allowed globals), safetensors files hold tensors and a JSON
header.
"""
from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..data.transforms import KINETICS_MEAN, KINETICS_STD
from ..errors import SaliencyTubesError, first_line
from ..models import create_model

SAFETENSORS_KEY = "saliency_tubes"  # the safetensors metadata entry holding the ModelInfo as JSON


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


def _read_lightning(path: Path) -> tuple[dict, ModelInfo]:
    with open(path, "rb") as fh:
        head = fh.read(1)
    if not (zipfile.is_zipfile(path) or head == b"\x80"):  # torch.save writes a zip (or, formerly, a pickle)
        raise SaliencyTubesError(f"checkpoint {path} is not a PyTorch checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SaliencyTubesError(f"checkpoint {path} cannot be loaded safely: {first_line(exc)}") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise SaliencyTubesError(f"checkpoint {path} is not a saliency-tubes training checkpoint (no state_dict/hyper_parameters)")
    state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    return state, _info_from(ckpt["hyper_parameters"], path)


def _read_safetensors(path: Path) -> tuple[dict, ModelInfo]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = (f.metadata() or {}).get(SAFETENSORS_KEY)
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise SaliencyTubesError(f"checkpoint {path} is not a readable safetensors file: {first_line(exc)}") from None
    if meta is None:
        raise SaliencyTubesError(f"checkpoint {path} has no '{SAFETENSORS_KEY}' metadata (export it with explain.py --export-safetensors)")
    return state, _info_from(json.loads(meta), path)


def read_model_info(path: str | Path) -> tuple[dict, ModelInfo]:
    """``(model state_dict, ModelInfo)`` of a training checkpoint or a ``.safetensors`` export, safely."""
    path = Path(path)
    if not path.is_file():
        raise SaliencyTubesError(f"checkpoint {path} does not exist")
    return (_read_safetensors if path.suffix == ".safetensors" else _read_lightning)(path)


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
