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
