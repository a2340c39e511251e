"""Small models for the explanation tests, and what the tests of every method check on a model."""

from collections.abc import Callable

import torch
from torch import nn


class _PooledLinearHead(nn.Module):
    """The contract's head for the toy models: global average pool, dropout, ``self.fc``."""

    drop: nn.Dropout
    fc: nn.Linear

    def forward_head(self, f):
        return self.fc(self.drop(f.mean((2, 3, 4))))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self):
        return self.fc


class ToyVideoNet(_PooledLinearHead):
    """A toy model following the contract: conv → features, global average pool → linear."""

    def __init__(self, channels=5, classes=4):
        super().__init__()
        self.conv = nn.Conv3d(3, channels, 3, stride=(1, 2, 2), padding=1)
        self.bn = nn.BatchNorm3d(channels)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(channels, classes)

    def forward_features(self, x):
        return torch.relu(self.bn(self.conv(x)))


class ToyStagedNet(_PooledLinearHead):
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

    def stage_groups(self):
        return [[self.stem], [self.stage1], [self.stage2], [self.stage3], [self.stage4]]


def captured_layers(model, x, names):
    """Each named layer's output, with the graph from ``x`` (requires grad) to the logits."""
    modules, out = dict(model.named_modules()), {}
    handles = [modules[n].register_forward_hook(lambda _m, _i, o, n=n: out.__setitem__(n, o)) for n in names]
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return out, logits


def untouched_check(model, evaluated: nn.Module, frozen: torch.Tensor, graded: torch.Tensor) -> Callable[[], None]:
    """Puts ``model`` in a mixed state — training, but ``evaluated`` in eval mode, ``frozen`` not requiring grad,
    ``graded`` holding a ``.grad`` of sevens — and returns the check that an explanation left all of it, every
    buffer (BN running statistics included), the RNG and the hooks as found. Create the clips before calling it:
    the RNG state is taken here."""
    model.train()
    evaluated.eval()
    frozen.requires_grad_(False)
    graded.grad = torch.full_like(graded, 7.0)
    modes = {n: m.training for n, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()

    def check() -> None:
        assert {n: m.training for n, m in model.named_modules()} == modes
        for k, v in model.state_dict().items():
            assert torch.equal(v, state[k]), k
        assert torch.equal(graded.grad, torch.full_like(graded, 7.0))
        assert all(p.grad is None for p in model.parameters() if p is not graded)
        assert not frozen.requires_grad
        assert torch.equal(torch.get_rng_state(), rng)
        assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())

    return check
