"""Loading weights from the files people have: this project's checkpoints and exports, 3D-ResNets-PyTorch and
PyTorch-MFNet releases, torchvision video weights, and timm 2D ImageNet weights (inflated to 3D).

The container is recognised from its structure, never from its name, and read without running code from it
(``torch.load(weights_only=True)`` with no extra allowed globals, or safetensors):

==========================  ============================================================================
saliency-tubes checkpoint   ``{'state_dict': {'model.…': …}, 'hyper_parameters': {...}, ...}`` (Lightning)
saliency-tubes export       ``.safetensors`` with a ``saliency_tubes`` metadata entry
3D-ResNets-PyTorch          ``{'arch', 'state_dict', 'epoch', 'optimizer', ...}`` with ``module.`` prefixes
PyTorch-MFNet               ``{'epoch', 'state_dict'}`` with ``module.`` prefixes
timm training checkpoint    ``{'arch', 'state_dict', ...}`` (also ``state_dict_ema``)
VideoMAE / DeiT-style       ``{'model': ..., 'optimizer', 'epoch', ...}`` or ``{'module': ...}``
plain state_dict            ``{name: tensor}`` (torchvision, timm, ``torch.save(model.state_dict())``), or a
                            ``.safetensors`` file without our metadata (timm / Hugging Face)
==========================  ============================================================================

The weights are then matched to the model by name. 2D convolution kernels where the model has 3D ones are
inflated (I3D style); a classifier of another size is left at its initialisation (fine-tuning to new classes);
anything else that does not fit is a one-line error naming the first offending key.
"""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..errors import SaliencyTubesError, first_line
from .inflate import inflate_kernel, inflates_to

log = logging.getLogger(__name__)

SAFETENSORS_KEY = "saliency_tubes"  # the safetensors metadata entry holding this project's ModelInfo as JSON


@dataclass
class WeightFile:
    """A weight file's tensors (prefixes stripped), what kind of file it was, and its metadata if any."""

    state: dict[str, torch.Tensor]
    format: str
    meta: dict = field(default_factory=dict)


def _strip(state: dict, prefix: str) -> dict:
    if state and all(k.startswith(prefix) for k in state):
        return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _tensors_only(state: dict, path: str | Path) -> dict[str, torch.Tensor]:
    bad = next((k for k, v in state.items() if not isinstance(v, torch.Tensor)), None)
    if bad is not None or not state:
        raise SaliencyTubesError(
            f"{path} fits no supported weight format (entry {bad!r} is not a tensor)"
            if bad
            else f"{path} holds no weights"
        )
    return state


def _read_safetensors(path: Path) -> WeightFile:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise SaliencyTubesError(f"{path} is not a readable safetensors file: {first_line(exc)}") from None
    if SAFETENSORS_KEY in meta:
        return WeightFile(state, "saliency-tubes export", json.loads(meta[SAFETENSORS_KEY]))
    return WeightFile(_strip(state, "module."), "plain state_dict (safetensors)")


def _read_torch(path: Path) -> WeightFile:
    with open(path, "rb") as fh:
        head = fh.read(2)
    if not (zipfile.is_zipfile(path) or head[:1] == b"\x80"):  # torch.save writes a zip (formerly a bare pickle)
        raise SaliencyTubesError(f"{path} is not a PyTorch or safetensors weight file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise SaliencyTubesError(f"{path} cannot be loaded safely: {first_line(exc)}") from None
    return interpret_checkpoint(obj, path)


def interpret_checkpoint(obj: object, path: str | Path = "checkpoint") -> WeightFile:
    """The weights inside a loaded checkpoint object, whichever of the supported layouts it has."""
    if not isinstance(obj, dict):
        raise SaliencyTubesError(
            f"{path} fits no supported weight format (it holds a {type(obj).__name__}, not a dict)"
        )
    if isinstance(obj.get("state_dict"), dict) and isinstance(obj.get("hyper_parameters"), dict):
        state = {k[len("model.") :]: v for k, v in obj["state_dict"].items() if k.startswith("model.")}
        if not state:
            raise SaliencyTubesError(
                f"{path} is a Lightning checkpoint without 'model.' weights: not from saliency-tubes"
            )
        return WeightFile(state, "saliency-tubes checkpoint", dict(obj["hyper_parameters"]))
    for key in ("state_dict", "state_dict_ema", "model", "module"):
        if isinstance(obj.get(key), dict):
            fmt = (
                "3D-ResNets-PyTorch / timm checkpoint"
                if "arch" in obj
                else "PyTorch-MFNet checkpoint"
                if "epoch" in obj
                else f"checkpoint ('{key}')"
            )
            return WeightFile(
                _strip(_tensors_only(obj[key], path), "module."),
                fmt,
                {"arch": obj["arch"]} if isinstance(obj.get("arch"), str) else {},
            )
    return WeightFile(_strip(_tensors_only(obj, path), "module."), "plain state_dict")


def read_weight_file(path: str | Path) -> WeightFile:
    """The tensors of any supported weight file, read safely (see the module docstring for the formats)."""
    path = Path(path)
    if not path.is_file():
        raise SaliencyTubesError(f"weight file {path} does not exist")
    return (_read_safetensors if path.suffix == ".safetensors" else _read_torch)(path)


@dataclass
class LoadReport:
    """What :func:`load_weights` did, key by key."""

    format: str
    kept: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.kept)} tensors kept"]
        if self.inflated:
            parts.append(f"{len(self.inflated)} inflated from 2D")
        if self.replaced:
            parts.append(f"classifier replaced ({', '.join(self.replaced)}: new class count)")
        if self.missing:
            parts.append(
                f"{len(self.missing)} missing, left at initialisation ({', '.join(self.missing[:3])}"
                f"{', ...' if len(self.missing) > 3 else ''})"
            )
        return f"{self.format}: " + "; ".join(parts)


def classifier_name(model: nn.Module) -> str:
    """The module name of the model's final linear layer (the contract's ``get_classifier()``)."""
    head = model.get_classifier()  # type: ignore[operator]  # the contract's method, not an nn.Module attribute
    return next(name for name, module in model.named_modules() if module is head)


def fit_state_dict(model: nn.Module, weights: WeightFile, source: str = "weights") -> tuple[dict, LoadReport]:
    """A complete state_dict for ``model`` built from ``weights``, and the report of how each key was filled."""
    own = model.state_dict()
    head = classifier_name(model)
    head_keys = {f"{head}.weight", f"{head}.bias"}
    report = LoadReport(weights.format)
    unexpected = [k for k in weights.state if k not in own]
    if unexpected:
        overlap = len(weights.state) - len(unexpected)
        hint = (
            "it was saved from another architecture" if overlap else "it fits no supported layout for this architecture"
        )
        raise SaliencyTubesError(
            f"{source} does not fit {type(model).__name__}: first unknown key {unexpected[0]!r} ({hint})"
        )
    state = {}
    for key, target in own.items():
        value = weights.state.get(key)
        if value is None:
            state[key] = target
            if not key.endswith("num_batches_tracked"):
                report.missing.append(key)
        elif value.shape == target.shape:
            state[key] = value.to(target.dtype)
            report.kept.append(key)
        elif inflates_to(value, target):
            state[key] = inflate_kernel(value, target.shape[2]).to(target.dtype)
            report.inflated.append(key)
        elif key in head_keys:
            state[key] = target
            report.replaced.append(key)
        else:
            raise SaliencyTubesError(
                f"{source} does not fit {type(model).__name__}: {key!r} has shape {tuple(value.shape)}, "
                f"the model needs {tuple(target.shape)}"
            )
    if not report.kept and not report.inflated:
        raise SaliencyTubesError(f"{source} has no weights this model can use")
    if report.inflated:
        report.format = f"{report.format}, 2D inflated to 3D"
    return state, report


def load_weights(model: nn.Module, path: str | Path) -> LoadReport:
    """Load any supported weight file into ``model`` (see the module docstring) and report what happened."""
    state, report = fit_state_dict(model, read_weight_file(path), source=str(path))
    model.load_state_dict(state, strict=True)
    log.info("Loaded %s into %s — %s", path, type(model).__name__, report.summary())
    return report
