"""MFNet-3D (Chen et al., ECCV 2018, "Multi-Fiber Networks for Video Recognition").

Re-implements ``network/mfnet_3d.py`` of cypw/PyTorch-MFNet with the same layer order and parameter names, so
the released checkpoints load with ``load_state_dict(strict=True)`` once their ``module.`` prefix is stripped.
The one deliberate difference: pooling is adaptive (the reference asserts 16 frames and pools with a fixed
``AvgPool3d((8, 7, 7))``), so any clip that survives the strides works. The model follows the contract of
``models/__init__.py``: ``forward_features`` returns the last feature volume after the tail BN+ReLU, and
``forward_head`` average-pools it and applies the linear ``classifier``, so the Saliency Tube
Σ_c W[k,c]·F[:,c] averaged over T'×H'×W' plus bias[k] equals logit k.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

REFERENCE_CHECKPOINT = (
    "PyTorch-MFNet's train/model.py saves torch.save({'epoch': int, 'state_dict': ...}) and adds 'optimizer' "
    "when it has an optimizer state; the state_dict comes from the DataParallel/DistributedDataParallel-wrapped "
    "net, so every key starts with 'module.'. Trained with PyTorch 0.4.0, so BatchNorm entries have "
    "weight/bias/running_mean/running_var and no num_batches_tracked (BatchNorm fills that in on load)."
)
"""Layout of a reference checkpoint file, for format detection by the checkpoint loader."""

STAGE_DEPTHS = (3, 4, 6, 3)
STAGE_WIDTHS = (96, 192, 384, 768)
GROUPS = 16


class BNActConv3d(nn.Module):
    """Pre-activation block BN → ReLU → Conv3d (the reference's ``BN_AC_CONV3D``; names ``bn``, ``conv``)."""

    def __init__(self, num_in: int, num_out: int, kernel=(1, 1, 1), pad=(0, 0, 0), stride=(1, 1, 1), groups: int = 1):
        super().__init__()
        self.bn = nn.BatchNorm3d(num_in)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv3d(
            num_in, num_out, kernel_size=kernel, padding=pad, stride=stride, groups=groups, bias=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.relu(self.bn(x)))


class MFUnit(nn.Module):
    """Multi-fiber unit (the reference's ``MF_UNIT``).

    The multiplexer ``conv_i1``/``conv_i2`` (1×1×1, through num_mid/4 channels) mixes information across fibers
    and is added back to the input; ``conv_m1`` (3×3×3, grouped, strided) and ``conv_m2`` form the fibers.
    The first unit of a stage changes width/stride, so its ``conv_m2`` is a dense 1×1×1 conv and a 1×1×1
    ``conv_w1`` projects the shortcut; later units use a grouped 1×3×3 ``conv_m2`` and an identity shortcut.
    """

    def __init__(
        self, num_in: int, num_mid: int, num_out: int, groups: int, stride=(1, 1, 1), first_block: bool = False
    ):
        super().__init__()
        num_ix = num_mid // 4
        self.conv_i1 = BNActConv3d(num_in, num_ix)
        self.conv_i2 = BNActConv3d(num_ix, num_in)
        self.conv_m1 = BNActConv3d(num_in, num_mid, kernel=(3, 3, 3), pad=(1, 1, 1), stride=stride, groups=groups)
        if first_block:
            self.conv_m2 = BNActConv3d(num_mid, num_out)
            self.conv_w1: BNActConv3d | None = BNActConv3d(num_in, num_out, stride=stride)
        else:
            self.conv_m2 = BNActConv3d(num_mid, num_out, kernel=(1, 3, 3), pad=(0, 1, 1), groups=groups)
            self.conv_w1 = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_m2(self.conv_m1(x + self.conv_i2(self.conv_i1(x))))
        return h + (x if self.conv_w1 is None else self.conv_w1(x))


class MFNet3D(nn.Module):
    """MFNet-3D with 16 fibers: 8.0M parameters, 11.05 G conv/linear multiply-adds on a 16×224×224 clip (400 classes).

    Args:
        num_classes: size of the classifier.
        in_channels: input channels (3 for RGB).
        dropout: dropout before the classifier (the reference uses 0.5 only when fine-tuning).
    """

    cam_exact = True  # global average pooling into a linear classifier
    cam_note = "global average pooling into a linear classifier: the CAM of forward_features averages to the logit"

    conv2: nn.Sequential  # the four stages of MF units, set in __init__
    conv3: nn.Sequential
    conv4: nn.Sequential
    conv5: nn.Sequential

    def __init__(self, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.0):
        super().__init__()
        stem = 16
        self.conv1 = nn.Sequential(
            OrderedDict(
                [
                    (
                        "conv",
                        nn.Conv3d(
                            in_channels, stem, kernel_size=(3, 5, 5), padding=(1, 2, 2), stride=(1, 2, 2), bias=False
                        ),
                    ),
                    ("bn", nn.BatchNorm3d(stem)),
                    ("relu", nn.ReLU(inplace=True)),
                ]
            )
        )
        self.maxpool = nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))
        num_in = stem
        # conv2 halves time; conv3..conv5 halve space. num_mid equals the stage's output width.
        strides = [(2, 1, 1), (1, 2, 2), (1, 2, 2), (1, 2, 2)]
        for index, (depth, width, stride) in enumerate(zip(STAGE_DEPTHS, STAGE_WIDTHS, strides, strict=False), start=2):
            units: OrderedDict[str, nn.Module] = OrderedDict()
            for i in range(1, depth + 1):
                first = i == 1
                units[f"B{i:02d}"] = MFUnit(
                    num_in, width, width, GROUPS, stride if first else (1, 1, 1), first_block=first
                )
                num_in = width
            setattr(self, f"conv{index}", nn.Sequential(units))
        self.tail = nn.Sequential(OrderedDict([("bn", nn.BatchNorm3d(num_in)), ("relu", nn.ReLU(inplace=True))]))
        self.num_features = num_in
        self.globalpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_in, num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """As the reference's ``initializer.xavier``: Xavier-uniform convs and classifier, zero biases, BN 1/0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight, gain=1.0)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.maxpool(self.conv1(x))
        h = self.conv5(self.conv4(self.conv3(self.conv2(h))))
        return self.tail(h)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(self.globalpool(features).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.classifier

    def stage_groups(self) -> list[list[nn.Module]]:
        return [[self.conv1], [self.conv2], [self.conv3], [self.conv4], [self.conv5, self.tail]]


def mfnet3d(num_classes: int = 400, **kwargs) -> MFNet3D:
    return MFNet3D(num_classes=num_classes, **kwargs)
