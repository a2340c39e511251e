"""Inflating 2D ImageNet weights into a 3D network (I3D, Carreira & Zisserman, CVPR 2017).

The 3D ResNets of :mod:`.resnet3d` name their parameters as timm's (and torchvision's) 2D ResNets do
(``conv1``, ``bn1``, ``layer1.0.conv1``, …, ``layer1.0.downsample.0/1``, ``fc``), so keys match by name: timm
``resnet18/34/50/101/152`` inflate into ``resnet3d_18/34/50/101/152``. Build the 3D model with
``temporal_padding="replicate"`` and a stem whose temporal stride is 1 for the "boring video" property: a clip of
identical frames then gives the 2D network's logits exactly (max-pooling and strides over identical frames are
harmless; zero temporal padding is not, it lets the border frames see only part of each inflated kernel).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from ..errors import SaliencyTubesError


def inflates_to(source: torch.Tensor, target: torch.Tensor) -> bool:
    """Whether ``source`` is the 2D (out, in, k, k) kernel of the 3D (out, in, t, k, k) kernel ``target``."""
    return source.dim() == 4 and target.dim() == 5 and source.shape == target.shape[:2] + target.shape[3:]


def inflate_kernel(weight_2d: torch.Tensor, time: int) -> torch.Tensor:
    """A k×k kernel repeated over ``time`` and divided by it: a clip of identical frames gives the 2D response."""
    return weight_2d.unsqueeze(2).repeat(1, 1, time, 1, 1) / time


def inflate_state_dict(
    state_2d: Mapping[str, torch.Tensor], model_3d: nn.Module, skip: Sequence[str] = ()
) -> dict[str, torch.Tensor]:
    """A state_dict for ``model_3d`` made from the 2D network's ``state_2d``.

    A k×k kernel is repeated over the 3D kernel's temporal size t and divided by t (so a constant clip gives the
    2D response); every other tensor (BN, linear) is copied. Keys of ``model_3d`` starting with a prefix in
    ``skip`` (e.g. ``("fc.",)`` for a new classifier) are left out; any other key must exist in ``state_2d`` with a
    shape that fits, else :class:`SaliencyTubesError` names it.
    """
    inflated = {}
    for key, target in model_3d.state_dict().items():
        if key.startswith(tuple(skip)):
            continue
        if key not in state_2d:
            raise SaliencyTubesError(f"cannot inflate {key}: the 2D state_dict has no such key")
        source = state_2d[key]
        if inflates_to(source, target):
            inflated[key] = inflate_kernel(source, target.shape[2])
        elif source.shape == target.shape:
            inflated[key] = source.clone()
        else:
            shapes = f"2D shape {tuple(source.shape)} does not fit 3D shape {tuple(target.shape)}"
            raise SaliencyTubesError(f"cannot inflate {key}: {shapes}")
    return inflated
