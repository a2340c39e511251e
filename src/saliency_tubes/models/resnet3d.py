"""3D ResNets (Hara et al., CVPR 2018) following the model contract (docs/ARCHITECTURE.md).

The architecture, its defaults and its parameter names follow ``models/resnet.py`` of
kenshohara/3D-ResNets-PyTorch, so that repository's checkpoints load with ``strict=True`` (through
:mod:`.pretrained`). ``forward_features`` returns the last residual stage's output (B×C×T'×H'×W'),
``forward_head`` pools it adaptively and applies the linear classifier ``fc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

import torch
import torch.nn.functional as F
from torch import nn

Stride = tuple[int, int, int]


class Block(Protocol):
    """What a residual block class offers the network: its channel expansion and this constructor."""

    expansion: int

    def __call__(
        self,
        in_planes: int,
        planes: int,
        stride: int | Stride = ...,
        downsample: nn.Module | None = ...,
        temporal_padding: str = ...,
    ) -> nn.Module: ...


#: Blocks per stage of each depth; depths from 50 on use the bottleneck block (as in the reference).
LAYERS = {
    10: [1, 1, 1, 1],
    18: [2, 2, 2, 2],
    34: [3, 4, 6, 3],
    50: [3, 4, 6, 3],
    101: [3, 4, 23, 3],
    152: [3, 8, 36, 3],
    200: [3, 24, 36, 3],
}
TEMPORAL_PADDINGS = ("zeros", "replicate")


def _triple(value: int | Sequence[int]) -> Stride:
    return cast(Stride, tuple(value)) if isinstance(value, Sequence) else (value, value, value)


class ReplicateTimeConv3d(nn.Conv3d):
    """A ``Conv3d`` that pads time by repeating the border frames; spatial padding stays zero.

    A kernel inflated from 2D (repeated over time and divided by its temporal size) then maps a clip of
    identical frames to the 2D output at every time step, the clip's two ends included; with zero padding the
    border frames see only part of the kernel. Parameters and their names are those of ``nn.Conv3d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Stride,
        stride: int | Stride = 1,
        *,
        padding: Stride,
        **kwargs,
    ):
        padding_hw = (0, padding[1], padding[2])
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=padding_hw, **kwargs)
        self.time_padding = padding[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.time_padding
        return super().forward(F.pad(x, (0, 0, 0, 0, p, p), mode="replicate"))


def conv3d(
    in_planes: int,
    out_planes: int,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    temporal_padding: str = "zeros",
) -> nn.Conv3d:
    """A bias-free convolution; ``temporal_padding="replicate"`` swaps in :class:`ReplicateTimeConv3d`."""
    padding = _triple(padding)
    cls = ReplicateTimeConv3d if temporal_padding == "replicate" and padding[0] else nn.Conv3d
    return cls(in_planes, out_planes, _triple(kernel_size), stride=_triple(stride), padding=padding, bias=False)


class ZeroPadShortcut(nn.Module):
    """Shortcut type "A": the strided identity with zero channels appended, free of parameters.

    The reference subsamples with ``avg_pool3d(kernel_size=1, stride)`` (the same as slicing with that step) and
    concatenates ``out.data``, which cuts the gradient through the shortcut; here the forward pass is the same
    and the gradient flows.
    """

    def __init__(self, out_planes: int, stride: Stride):
        super().__init__()
        self.out_planes, self.stride = out_planes, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, h, w = self.stride
        x = x[:, :, ::t, ::h, ::w]
        return F.pad(x, (0, 0, 0, 0, 0, 0, 0, self.out_planes - x.shape[1]))


class BasicBlock(nn.Module):
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
        self.conv1 = conv3d(in_planes, planes, 3, stride, 1, temporal_padding)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3d(planes, planes, 3, 1, 1, temporal_padding)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """1×1×1 reduce, 3×3×3 (carrying the stride, as in the reference), 1×1×1 expand to ``4 * planes``."""

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
        self.conv2 = conv3d(planes, planes, 3, stride, 1, temporal_padding)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = conv3d(planes, planes * self.expansion, 1)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


class ResNet3d(nn.Module):
    """A 3D ResNet; the defaults reproduce the reference's ``generate_model(depth)``.

    Args:
        layers: number of blocks in each of the four stages.
        num_classes: size of the classifier.
        width: channels of the first stage; later stages double it (64 in the paper).
        in_channels: input channels (3 for RGB).
        conv1_t_size / conv1_t_stride: temporal kernel size and stride of the stem convolution.
        conv1_stride: spatial stride of the stem convolution.
        no_max_pool: skip the stem's max-pool (3×3×3, stride 2 in time and space; skipping it keeps a finer
            grid for the tubes).
        stage_t_stride: temporal stride of stages 2–4 (2 as in the paper; 1 keeps every frame of the stem's
            output, for tubes that follow motion frame by frame).
        last_stride: spatial stride of stage 4 (2 as in the paper; 1 doubles the tubes' spatial resolution
            at little cost, since stage 4 works on the smallest grid).
        layer3_stride: spatial stride of stage 3 (2 as in the paper; 1 with ``last_stride: 1`` keeps stage 2's grid
            to the end, a tube cell per 4×4 pixels after a stride-2 stem without max-pool).
        dropout: dropout before the classifier.
        bottleneck: use the bottleneck block (expansion 4) instead of the basic block.
        shortcut_type: "B" (1×1×1 conv + BN where the shape changes, the reference's default) or "A"
            (parameter-free strided identity with zero-padded channels).
        widen_factor: multiplies every stage's width (the reference's ``widen_factor``).
        temporal_padding: "zeros" (the reference) or "replicate" (see :class:`ReplicateTimeConv3d`; for
            weights inflated from a 2D network).
    """

    cam_exact = True  # global average pooling into a linear classifier
    cam_note = "global average pooling into a linear classifier: the CAM of forward_features averages to the logit"

    blocks: tuple[Block, Block] = (BasicBlock, Bottleneck)
    layer1: nn.Sequential  # the four stages, set in __init__
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

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
        layer3_stride: int = 2,
        dropout: float = 0.0,
        bottleneck: bool = False,
        shortcut_type: str = "B",
        widen_factor: float = 1.0,
        temporal_padding: str = "zeros",
    ):
        super().__init__()
        if shortcut_type not in ("A", "B"):
            raise ValueError(f"shortcut_type must be 'A' or 'B', not {shortcut_type!r}")
        if temporal_padding not in TEMPORAL_PADDINGS:
            raise ValueError(f"temporal_padding must be one of {TEMPORAL_PADDINGS}, not {temporal_padding!r}")
        block = self.blocks[bottleneck]
        widths = [int(width * 2**i * widen_factor) for i in range(4)]
        self._build_stem(
            in_channels, widths[0], conv1_t_size, (conv1_t_stride, conv1_stride, conv1_stride), temporal_padding
        )
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if no_max_pool else nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        self.in_planes = widths[0]
        down = (stage_t_stride, 2, 2)
        strides = [
            (1, 1, 1),
            down,
            (stage_t_stride, layer3_stride, layer3_stride),
            (stage_t_stride, last_stride, last_stride),
        ]
        for i, (planes, blocks, stride) in enumerate(zip(widths, layers, strides, strict=False), start=1):
            setattr(self, f"layer{i}", self._make_stage(block, planes, blocks, stride, shortcut_type, temporal_padding))
        self.num_features = widths[3] * block.expansion
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        self._init_weights()

    def _build_stem(self, in_channels: int, planes: int, t_size: int, stride: Stride, temporal_padding: str) -> None:
        self.conv1 = conv3d(in_channels, planes, (t_size, 7, 7), stride, (t_size // 2, 3, 3), temporal_padding)
        self.bn1 = nn.BatchNorm3d(planes)

    def _forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))

    def _make_stage(
        self,
        block: Block,
        planes: int,
        blocks: int,
        stride: Stride,
        shortcut_type: str,
        temporal_padding: str,
    ) -> nn.Sequential:
        out_planes = planes * block.expansion
        downsample: nn.Module | None = None
        if stride != (1, 1, 1) or self.in_planes != out_planes:
            if shortcut_type == "A":
                downsample = ZeroPadShortcut(out_planes, stride)
            else:
                downsample = nn.Sequential(conv3d(self.in_planes, out_planes, 1, stride), nn.BatchNorm3d(out_planes))
        stage = [block(self.in_planes, planes, stride, downsample, temporal_padding)]
        self.in_planes = out_planes
        stage += [block(out_planes, planes, temporal_padding=temporal_padding) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self._forward_stem(x))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.avgpool(features).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.fc

    def stage_groups(self) -> list[list[nn.Module]]:
        """The stem (whatever its layers are named), then the four stages."""
        stages = [f"layer{i}" for i in range(1, 5)]
        stem = [
            m for name, m in self.named_children() if name not in (*stages, "fc") and any(True for _ in m.parameters())
        ]
        return [stem, *([getattr(self, name)] for name in stages)]


def resnet3d(depth: int, num_classes: int = 400, **kwargs) -> ResNet3d:
    """The reference's ``generate_model(depth)``: basic blocks up to depth 34, bottlenecks from 50."""
    return ResNet3d(LAYERS[depth], num_classes=num_classes, bottleneck=depth >= 50, **kwargs)
