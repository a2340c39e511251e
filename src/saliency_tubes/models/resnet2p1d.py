"""(2+1)D ResNets (Tran et al., CVPR 2018) faithful to ``models/resnet2p1d.py`` of kenshohara/3D-ResNets-PyTorch.

Every t×k×k convolution of :mod:`.resnet3d` becomes a 1×k×k spatial convolution (``*_s``, carrying the
spatial stride) followed by BN + ReLU and a t×1×1 temporal one (``*_t``, carrying the temporal stride). The
channels in between are chosen, as in the paper and the reference, so that the pair has about as many
parameters as the 3D convolution it replaces. Everything else (stages, shortcuts, options, contract) is
:class:`.resnet3d.ResNet3d`'s.
"""

from __future__ import annotations

import torch
from torch import nn

from .resnet3d import LAYERS, ResNet3d, Stride, _triple, conv3d


def mid_planes(in_planes: int, planes: int, t: int, k: int) -> int:
    """Channels between the spatial and temporal convolutions: 3D parameters // (2+1)D parameters per channel."""
    return (in_planes * planes * t * k * k) // (in_planes * k * k + t * planes)


def _factorized(in_planes: int, planes: int, stride: int | Stride, temporal_padding: str) -> list[nn.Module]:
    """conv_s, bn_s, conv_t, bn_t replacing a 3×3×3 convolution with padding 1."""
    t, h, w = _triple(stride)
    mid = mid_planes(in_planes, planes, 3, 3)
    return [
        conv3d(in_planes, mid, (1, 3, 3), (1, h, w), (0, 1, 1)),
        nn.BatchNorm3d(mid),
        conv3d(mid, planes, (3, 1, 1), (t, 1, 1), (1, 0, 0), temporal_padding),
        nn.BatchNorm3d(planes),
    ]


class BasicBlock2p1d(nn.Module):
    expansion = 1

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int | Stride = 1,
        downsample: nn.Module | None = None,
        temporal_padding: str = "zeros",
    ):
        super().__init__()
        self.conv1_s, self.bn1_s, self.conv1_t, self.bn1_t = _factorized(in_planes, planes, stride, temporal_padding)
        self.conv2_s, self.bn2_s, self.conv2_t, self.bn2_t = _factorized(planes, planes, 1, temporal_padding)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1_s(self.conv1_s(x)))
        out = self.relu(self.bn1_t(self.conv1_t(out)))
        out = self.relu(self.bn2_s(self.conv2_s(out)))
        out = self.bn2_t(self.conv2_t(out))
        return self.relu(out + residual)


class Bottleneck2p1d(nn.Module):
    expansion = 4

    def __init__(
        self,
        in_planes: int,
        planes: int,
        stride: int | Stride = 1,
        downsample: nn.Module | None = None,
        temporal_padding: str = "zeros",
    ):
        super().__init__()
        self.conv1 = conv3d(in_planes, planes, 1)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2_s, self.bn2_s, self.conv2_t, self.bn2_t = _factorized(planes, planes, stride, temporal_padding)
        self.conv3 = conv3d(planes, planes * self.expansion, 1)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2_s(self.conv2_s(out)))
        out = self.relu(self.bn2_t(self.conv2_t(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class ResNet2p1d(ResNet3d):
    """A (2+1)D ResNet; same arguments as :class:`.resnet3d.ResNet3d`, whose defaults reproduce the reference."""

    blocks = (BasicBlock2p1d, Bottleneck2p1d)

    def _build_stem(self, in_channels: int, planes: int, t_size: int, stride: Stride, temporal_padding: str) -> None:
        # The reference sizes the stem's middle channels for 3 input channels whatever n_input_channels is.
        mid = mid_planes(3, planes, t_size, 7)
        self.conv1_s = conv3d(in_channels, mid, (1, 7, 7), (1, stride[1], stride[2]), (0, 3, 3))
        self.bn1_s = nn.BatchNorm3d(mid)
        self.conv1_t = conv3d(mid, planes, (t_size, 1, 1), (stride[0], 1, 1), (t_size // 2, 0, 0), temporal_padding)
        self.bn1_t = nn.BatchNorm3d(planes)

    def _forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1_s(self.conv1_s(x)))
        return self.relu(self.bn1_t(self.conv1_t(x)))


def resnet2p1d(depth: int, num_classes: int = 400, **kwargs) -> ResNet2p1d:
    """The reference's ``resnet2p1d.generate_model(depth)``."""
    return ResNet2p1d(LAYERS[depth], num_classes=num_classes, bottleneck=depth >= 50, **kwargs)
