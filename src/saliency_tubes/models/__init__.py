"""Model factory. Every model follows the contract in DESIGN.md:
``forward_features(x) -> B×C×T'×H'×W'``, ``forward_head(features) -> logits``, ``get_classifier() -> nn.Linear``.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from ..errors import SaliencyTubesError
from .resnet3d import ResNet3d, resnet3d_10, resnet3d_18

_MODELS: dict[str, Callable[..., nn.Module]] = {
    "resnet3d_10": resnet3d_10,
    "resnet3d_18": resnet3d_18,
}


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, num_classes: int, **kwargs) -> nn.Module:
    """Build architecture ``name`` with a ``num_classes``-way classifier; ``kwargs`` go to its constructor."""
    if name not in _MODELS:
        raise SaliencyTubesError(f"unknown architecture {name!r}; available: {', '.join(list_models())}")
    try:
        return _MODELS[name](num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise SaliencyTubesError(f"bad arguments for {name}: {exc}") from None


__all__ = ["ResNet3d", "create_model", "list_models"]
