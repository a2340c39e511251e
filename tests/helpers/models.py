"""Small models for the explanation tests."""

import torch
from torch import nn


class ToyVideoNet(nn.Module):
    """A toy model following the contract: conv → features, global average pool → linear."""

    def __init__(self, channels=5, classes=4):
        super().__init__()
        self.conv = nn.Conv3d(3, channels, 3, stride=(1, 2, 2), padding=1)
        self.bn = nn.BatchNorm3d(channels)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(channels, classes)

    def forward_features(self, x):
        return torch.relu(self.bn(self.conv(x)))

    def forward_head(self, f):
        return self.fc(self.drop(f.mean((2, 3, 4))))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self):
        return self.fc


class ToyStagedNet(nn.Module):
    """A toy model that declares its stages (``stage_groups``), for the multi-layer methods: a stem and four
    stages (a plain conv, a grouped strided conv, a residual unit), global average pool → linear."""

    def __init__(self, classes=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv3d(3, 4, 3, stride=(1, 2, 2), padding=1), nn.ReLU())
        self.stage1 = nn.Sequential(nn.Conv3d(4, 6, 3, padding=1), nn.BatchNorm3d(6), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv3d(6, 6, 3, stride=(1, 2, 2), padding=1, groups=2), nn.ReLU())
        self.stage3 = nn.Sequential(nn.Conv3d(6, 8, 3, stride=2, padding=1), nn.BatchNorm3d(8), nn.ReLU())
        self.stage4 = nn.Conv3d(8, 8, 3, padding=1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8, classes)

    def forward_features(self, x):
        h = self.stage3(self.stage2(self.stage1(self.stem(x))))
        return torch.relu(h + self.stage4(h))

    def forward_head(self, f):
        return self.fc(self.drop(f.mean((2, 3, 4))))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self):
        return self.fc

    def stage_groups(self):
        return [[self.stem], [self.stage1], [self.stage2], [self.stage3], [self.stage4]]
