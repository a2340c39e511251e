"""Model factory. Every model follows the contract in DESIGN.md:
``forward_features(x) -> B×C×T'×H'×W'``, ``forward_head(features) -> logits``, ``get_classifier() -> nn.Linear``.
"""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import SaliencyTubesError
from . import resnet2p1d, resnet3d
from .inflate import inflate_state_dict
from .resnet2p1d import ResNet2p1d
from .resnet3d import ResNet3d, reference_state_dict

# Registered architectures take the ResNet3d options (width, no_max_pool, ...), which tests/test_gradcam.py
# passes to every one of them; torchvision's fixed-width video ResNets stay in .torchvision_video for now.
_MODELS: dict[str, Callable[..., nn.Module]] = {
    **{f"resnet3d_{d}": getattr(resnet3d, f"resnet3d_{d}") for d in resnet3d.LAYERS},
    **{f"resnet2p1d_{d}": getattr(resnet2p1d, f"resnet2p1d_{d}") for d in resnet3d.LAYERS},
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


__all__ = ["ResNet2p1d", "ResNet3d", "create_model", "inflate_state_dict", "list_models", "reference_state_dict"]
