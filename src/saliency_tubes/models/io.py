"""Loading a model and its settings from a training checkpoint, a ``.safetensors`` export or a bare weight file.

Nothing here can run code from a file: checkpoints are read with ``torch.load(weights_only=True)`` (plain tensors
and containers only, no extra allowed globals), safetensors files hold tensors and a JSON header. Nothing here
needs Lightning: a Lightning checkpoint is a dict with ``state_dict`` and ``hyper_parameters``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import DataConfig
from ..errors import SaliencyTubesError
from . import create_model, data_config
from .pretrained import SAFETENSORS_KEY, fit_state_dict, read_weight_file


@dataclass
class ModelInfo:
    """What a checkpoint says about its model: architecture, classes and the :class:`DataConfig` it was trained on."""

    arch: str
    num_classes: int
    class_names: list[str]
    data: DataConfig
    arch_kwargs: dict[str, Any] = field(default_factory=dict)

    def class_index(self, target: str) -> int:
        """The index of class ``target``, given by name or by index."""
        if target in self.class_names:
            return self.class_names.index(target)
        if target.isdigit() and int(target) < self.num_classes:
            return int(target)
        shown = ", ".join(self.class_names[:10]) + (", ..." if self.num_classes > 10 else "")
        raise SaliencyTubesError(f"--target {target!r} is neither 'pred' nor a class of this model ({shown})")

    def to_json(self) -> str:
        return json.dumps(asdict(self))


_INPUT_KEYS = tuple(f.name for f in fields(DataConfig) if f.name != "classifier")


def _info_from(meta: dict, path: Path) -> ModelInfo:
    """A :class:`ModelInfo` from a checkpoint's hyper-parameters (flat: ``clip_len``, ``stride``, …) or an export's
    metadata (``data``: {...}); what is missing comes from the architecture's data config."""
    try:
        arch = meta["arch"]
        num_classes = int(meta["num_classes"])
        reference = data_config(arch)
        stored = {**{k: meta[k] for k in _INPUT_KEYS if k in meta}, **dict(meta.get("data") or {})}
        for key in ("mean", "std"):
            if key in stored:
                stored[key] = tuple(float(v) for v in stored[key])
        data = DataConfig(**{**asdict(reference), **stored, "classifier": reference.classifier})
        return ModelInfo(
            arch=arch,
            num_classes=num_classes,
            class_names=list(meta.get("class_names") or [str(i) for i in range(num_classes)]),
            data=data,
            arch_kwargs=dict(meta.get("arch_kwargs") or {}),
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
    a plain state_dict, ...), with the architecture's data config. The class count is read from the file's
    classifier unless given; class names default to the class indices."""
    weights = read_weight_file(path)
    data = data_config(arch)
    stored = weights.state.get(f"{data.classifier}.weight")
    if num_classes is None:
        if stored is None or stored.dim() not in (2, 5):  # 5: a 1×1×1 Conv3d classifier (torchvision S3D)
            raise SaliencyTubesError(f"{path} has no classifier {data.classifier!r} for {arch}: give --num-classes")
        num_classes = int(stored.shape[0])
    if class_names is not None and len(class_names) != num_classes:
        raise SaliencyTubesError(f"{len(class_names)} class names for a {num_classes}-class model")
    model = create_model(arch, num_classes)
    state, report = fit_state_dict(model, weights, source=str(path))
    if report.replaced and stored is not None:
        raise SaliencyTubesError(
            f"{path} has a {stored.shape[0]}-class classifier, not {num_classes}: a model to explain "
            "needs its trained classifier"
        )
    model.load_state_dict(state)
    names = class_names or [str(i) for i in range(num_classes)]
    return model.to(device).eval(), ModelInfo(arch=arch, num_classes=num_classes, class_names=names, data=data)


def read_class_names(path: str | Path) -> list[str]:
    """Class names from a text file, one per line, in label order."""
    try:
        return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise SaliencyTubesError(f"--class-names {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SaliencyTubesError(f"--class-names {path} is not a text file of class names") from None


def load_model(
    checkpoint: str | Path,
    arch: str | None = None,
    num_classes: int | None = None,
    class_names: str | Path | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, ModelInfo]:
    """The model to explain: a training checkpoint (or its export), or with ``arch`` a bare weight file."""
    if arch is None:
        if num_classes is not None or class_names is not None:
            raise SaliencyTubesError("--num-classes and --class-names apply to bare weight files, given with --arch")
        return load_checkpoint(checkpoint, device)
    names = read_class_names(class_names) if class_names is not None else None
    return load_weights_file(checkpoint, arch, num_classes, names, device)


def export_safetensors(model: nn.Module, info: ModelInfo, out: str | Path) -> Path:
    """Write the model's weights and its :class:`ModelInfo` (as JSON metadata) to a ``.safetensors`` file."""
    from safetensors.torch import save_file

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    partial = out.with_name(out.name + ".partial")
    save_file(state, str(partial), metadata={SAFETENSORS_KEY: info.to_json()})
    partial.replace(out)
    return out
