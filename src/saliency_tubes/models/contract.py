"""The model contract: what the explainers, the training module and the weight loaders rely on.

See ``docs/ARCHITECTURE.md`` ("The model contract") for the full text and a worked example of adding a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

import torch
from torch import nn

from ..errors import SaliencyTubesError

CONTRACT_DOC = "docs/ARCHITECTURE.md#the-model-contract"


@runtime_checkable
class VideoModel(Protocol):
    """A video classifier split at its last feature volume.

    ``forward(x) == forward_head(forward_features(x))``; ``forward_features`` returns ``B×C×T'×H'×W'``, the head
    pools it and applies ``get_classifier()`` (an ``nn.Linear`` with ``C`` inputs). ``stage_groups()`` lists the
    backbone's stages from input to output (stem first) as lists of modules; their names (:func:`stage_names`)
    are the layers a gradient method can explain and the units that fine-tuning freezes.
    """

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, features: torch.Tensor) -> torch.Tensor: ...

    def get_classifier(self) -> nn.Linear: ...

    def stage_groups(self) -> list[list[nn.Module]]: ...


REQUIRED = ("forward_features", "forward_head", "get_classifier")


def check_contract(model: nn.Module) -> None:
    """A one-line :class:`TypeError` naming the first missing method of the contract."""
    for attr in REQUIRED:
        if not callable(getattr(model, attr, None)):
            raise TypeError(f"{type(model).__name__} lacks {attr}(); see the model contract in {CONTRACT_DOC}")


def stage_names(model: nn.Module) -> list[str]:
    """The module name of each stage's last module, stem first (e.g. ``conv1, layer1, …, layer4``)."""
    if not callable(getattr(model, "stage_groups", None)):
        raise SaliencyTubesError(f"{type(model).__name__} does not name its stages (see {CONTRACT_DOC})")
    names = {id(m): name for name, m in model.named_modules()}
    return [names[id(group[-1])] for group in cast(VideoModel, model).stage_groups() if group]


@dataclass(frozen=True)
class TokenLayout:
    """How a transformer layer's output maps to a ``T'×H'×W'`` grid (``VideoModel.token_layout``).

    ``grid``: ``(T', H', W')``. ``order``: ``"time-major"`` (token index ``t·H'·W' + h·W' + w``, as a Conv3d
    patch embedding flattened) or ``"space-major"`` (index ``(h·W' + w)·T' + t``). ``prefix``: class tokens before
    the grid tokens. ``channels_last``: the output is already a ``B×T'×H'×W'×C`` volume (torchvision's Swin3D);
    then ``order`` and ``prefix`` are unused.
    """

    grid: tuple[int, int, int]
    order: str = "time-major"
    prefix: int = 0
    channels_last: bool = False
