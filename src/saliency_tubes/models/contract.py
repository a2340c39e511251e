"""The model contract: what the explainers, the training module and the weight loaders rely on.

See ``docs/ARCHITECTURE.md`` ("The model contract") for the full text and a worked example of adding a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, cast, runtime_checkable

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


@dataclass(frozen=True)
class TokenLayout:
    """How to read a layer's output as a B×C×T'×H'×W' volume (what a transformer's ``token_layout`` returns).

    ``grid``: T'×H'×W'. ``order``: ``"time-major"`` (token index ``t·H'·W' + h·W' + w``, as a tubelet
    ``Conv3d`` flattened) or ``"space-major"`` (index ``(h·W' + w)·T' + t``). ``prefix``: class/register tokens
    before the grid tokens (dropped). ``channels_last``: the output is a B×T'×H'×W'×C volume (torchvision's
    Swin3D); ``order`` and ``prefix`` are then unused. The conversion is :func:`saliency_tubes.explain.tokens.to_volume`.
    """

    grid: tuple[int, int, int]
    order: Literal["time-major", "space-major"] = "time-major"
    prefix: int = 0
    channels_last: bool = False

    def __post_init__(self):
        if self.order not in ("time-major", "space-major"):
            raise ValueError(f"TokenLayout order {self.order!r}: 'time-major' or 'space-major'")
        if len(self.grid) != 3 or min(self.grid) < 1 or self.prefix < 0:
            raise ValueError(f"TokenLayout grid {self.grid} / prefix {self.prefix}: three sizes ≥ 1, prefix ≥ 0")


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
