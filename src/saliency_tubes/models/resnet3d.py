"""3D ResNets (Hara et al., CVPR 2018) following the model contract of DESIGN.md.

``forward_features`` returns the last residual stage's output (B×C×T'×H'×W'),
``forward_head`` pools it adaptively and applies the linear classifier ``fc``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _conv3x3x3(in_planes: int, out_planes: int, stride: int | tuple[int, int, int] = 1) -> nn.Conv3d:
    return nn.Conv3d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int | tuple[int, int, int] = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3x3(planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class ResNet3d(nn.Module):
    """A 3D ResNet built from ``BasicBlock`` stages.

    Args:
        layers: number of blocks in each of the four stages.
        num_classes: size of the classifier.
        width: channels of the first stage; later stages double it (64 in the paper).
        in_channels: input channels (3 for RGB).
        conv1_t_size / conv1_t_stride: temporal kernel size and stride of the stem convolution.
        conv1_stride: spatial stride of the stem convolution.
        no_max_pool: skip the stem's max-pool (keeps a finer spatial grid for the tubes).
        stage_t_stride: temporal stride of stages 2–4 (2 as in the paper; 1 keeps every frame of the stem's
            output, for tubes that follow motion frame by frame).
        last_stride: spatial stride of stage 4 (2 as in the paper; 1 doubles the tubes' spatial resolution
            at little cost, since stage 4 works on the smallest grid).
        dropout: dropout before the classifier.
    """

    def __init__(
        self,
        layers: Sequence[int],
        num_classes: int = 400,
        width: int = 64,
        in_channels: int = 3,
        conv1_t_size: int = 7,
        conv1_t_stride: int = 1,
        conv1_stride: int = 2,
        no_max_pool: bool = False,
        stage_t_stride: int = 2,
        last_stride: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        widths = [width * 2**i for i in range(4)]
        self.conv1 = nn.Conv3d(
            in_channels,
            widths[0],
            kernel_size=(conv1_t_size, 7, 7),
            stride=(conv1_t_stride, conv1_stride, conv1_stride),
            padding=(conv1_t_size // 2, 3, 3),
            bias=False,
        )
        self.bn1 = nn.BatchNorm3d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if no_max_pool else nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        self.in_planes = widths[0]
        down = (stage_t_stride, 2, 2)
        self.layer1 = self._make_stage(widths[0], layers[0], stride=(1, 1, 1))
        self.layer2 = self._make_stage(widths[1], layers[1], stride=down)
        self.layer3 = self._make_stage(widths[2], layers[2], stride=down)
        self.layer4 = self._make_stage(widths[3], layers[3], stride=(stage_t_stride, last_stride, last_stride))
        self.num_features = widths[3] * BasicBlock.expansion
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights()

    def _make_stage(self, planes: int, blocks: int, stride: tuple[int, int, int]) -> nn.Sequential:
        downsample = None
        if stride != (1, 1, 1) or self.in_planes != planes * BasicBlock.expansion:
            downsample = nn.Sequential(
                nn.Conv3d(self.in_planes, planes * BasicBlock.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(planes * BasicBlock.expansion),
            )
        stage = [BasicBlock(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes * BasicBlock.expansion
        stage += [BasicBlock(self.in_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.avgpool(features).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.fc


def resnet3d_10(num_classes: int = 400, **kwargs) -> ResNet3d:
    return ResNet3d([1, 1, 1, 1], num_classes=num_classes, **kwargs)


def resnet3d_18(num_classes: int = 400, **kwargs) -> ResNet3d:
    return ResNet3d([2, 2, 2, 2], num_classes=num_classes, **kwargs)
