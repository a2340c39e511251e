"""torchvision's video ResNets (R3D-18, MC3-18, R(2+1)D-18) under the model contract (docs/ARCHITECTURE.md).

The networks are torchvision's own ``VideoResNet`` with its own blocks, so a torchvision Kinetics-400
state_dict (``stem.0.weight``, ``layer1.0.conv1.0.weight``, …, ``fc.weight``) loads unchanged and gives the same
logits; the subclass only adds the contract's methods, ``num_features`` and a (parameter-free) dropout.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.video.resnet import (
    BasicBlock,
    BasicStem,
    Conv2Plus1D,
    Conv3DNoTemporal,
    Conv3DSimple,
    R2Plus1dStem,
    VideoResNet,
)


class VideoResNetContract(VideoResNet):
    """``VideoResNet`` whose ``forward`` is split into ``forward_features`` and ``forward_head``."""

    cam_exact = True  # global average pooling into a linear classifier
    cam_note = "global average pooling into a linear classifier: the CAM of forward_features averages to the logit"

    def __init__(
        self, conv_makers: list[type[nn.Module]], stem: type[nn.Module], num_classes: int = 400, dropout: float = 0.0
    ):
        super().__init__(BasicBlock, conv_makers, [2, 2, 2, 2], stem, num_classes=num_classes)
        self.num_features = self.fc.in_features
        self.dropout = nn.Dropout(dropout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.avgpool(features).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def stage_groups(self) -> list[list[nn.Module]]:
        return [[self.stem], [self.layer1], [self.layer2], [self.layer3], [self.layer4]]


def r3d_18(num_classes: int = 400, dropout: float = 0.0) -> VideoResNetContract:
    """3×3×3 convolutions throughout (torchvision ``r3d_18``)."""
    return VideoResNetContract([Conv3DSimple] * 4, BasicStem, num_classes, dropout)


def mc3_18(num_classes: int = 400, dropout: float = 0.0) -> VideoResNetContract:
    """3D convolutions in stage 1, 2D (1×3×3) ones after it (torchvision ``mc3_18``)."""
    return VideoResNetContract([Conv3DSimple] + [Conv3DNoTemporal] * 3, BasicStem, num_classes, dropout)


def r2plus1d_18(num_classes: int = 400, dropout: float = 0.0) -> VideoResNetContract:
    """Every 3D convolution factorized into spatial + temporal (torchvision ``r2plus1d_18``)."""
    return VideoResNetContract([Conv2Plus1D] * 4, R2Plus1dStem, num_classes, dropout)
