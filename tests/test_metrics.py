"""Localisation and faithfulness metrics against direct computations."""

import math

import numpy as np
import pytest
import torch

from saliency_tubes.explain import lift, pointing_game, temporal_hit
from saliency_tubes.explain.faithfulness import blurred, deletion_insertion, random_tubes

from helpers.models import ToyVideoNet


def test_lift_of_uniform_and_perfect_maps():
    masks = torch.zeros(1, 4, 16, 16, dtype=torch.bool)
    masks[..., 4:8, 4:8] = True
    assert lift(torch.ones(1, 4, 16, 16), masks).item() == pytest.approx(1.0)
    assert lift(masks.float(), masks).item() == pytest.approx(16.0)


def test_pointing_game_with_tolerance():
    masks = torch.zeros(1, 3, 32, 32, dtype=torch.bool)
    masks[:, :, 10:12, 10:12] = True
    tubes = torch.zeros(1, 3, 32, 32)
    tubes[0, 0, 11, 11] = 1  # inside
    tubes[0, 1, 11, 14] = 1  # 3 px from the mask: inside a tolerance of 4 (32 / 8)
    tubes[0, 2, 30, 30] = 1  # far away
    assert pointing_game(tubes, masks).item() == pytest.approx(2 / 3)
    assert pointing_game(tubes, masks, tolerance=0).item() == pytest.approx(1 / 3)
    only_first = torch.tensor([[True, False, False]])
    assert pointing_game(tubes, masks, frames=only_first).item() == 1.0
    assert math.isnan(pointing_game(tubes, torch.zeros_like(masks)).item())


def test_temporal_hit():
    tubes = torch.zeros(2, 4, 8, 8)
    tubes[0, 2] = 1
    tubes[1, 0] = 1
    moving = torch.tensor([[False, True, True, False], [False, True, True, False]])
    assert temporal_hit(tubes, moving).tolist() == [1.0, 0.0]


def slow_deletion_insertion(model, clip, tube, target, steps, grid, baseline):
    """One clip, everything by loops: cell means, ranking, per-cell replacement."""
    c, t, h, w = clip.shape
    ch, cw = h // grid, w // grid
    scores = []
    for f in range(t):
        for gy in range(grid):
            for gx in range(grid):
                scores.append((float(tube[f, gy * ch : (gy + 1) * ch, gx * cw : (gx + 1) * cw].mean()), f, gy, gx))
    order = sorted(range(len(scores)), key=lambda i: -scores[i][0])  # stable for ties, like argsort(stable)
    curves = {"deletion": [], "insertion": []}
    for s in range(steps + 1):
        count = round(s * len(scores) / steps)
        deleted, inserted = clip.clone(), baseline.clone()
        for i in order[:count]:
            _, f, gy, gx = scores[i]
            ys, xs = slice(gy * ch, (gy + 1) * ch), slice(gx * cw, (gx + 1) * cw)
            deleted[:, f, ys, xs] = baseline[:, f, ys, xs]
            inserted[:, f, ys, xs] = clip[:, f, ys, xs]
        for name, x in (("deletion", deleted), ("insertion", inserted)):
            with torch.no_grad():
                curves[name].append(float(model(x[None]).softmax(-1)[0, target]))
    return {k: np.trapezoid(v, dx=1 / steps) for k, v in curves.items()}


@pytest.mark.parametrize("baseline", ["blur", "zero"])
def test_deletion_insertion_equal_a_loop_implementation(baseline):
    torch.manual_seed(0)
    model = ToyVideoNet(channels=4, classes=3).eval()
    clips = torch.randn(2, 3, 2, 16, 16)
    tubes = torch.rand(2, 2, 16, 16)
    targets = torch.tensor([0, 2])
    result = deletion_insertion(model, clips, tubes, targets, steps=8, grid=4, baseline=baseline)
    base = blurred(clips) if baseline == "blur" else torch.zeros_like(clips)
    for b in range(2):
        slow = slow_deletion_insertion(model, clips[b], tubes[b], int(targets[b]), 8, 4, base[b])
        assert result["deletion_auc"][b].item() == pytest.approx(slow["deletion"], abs=1e-5)
        assert result["insertion_auc"][b].item() == pytest.approx(slow["insertion"], abs=1e-5)
    assert result["deletion_curve"].shape == (2, 9)


def test_random_reference_is_reproducible_and_cellwise():
    a = random_tubes((2, 3, 32, 32), grid=16, seed=1)
    assert torch.equal(a, random_tubes((2, 3, 32, 32), grid=16, seed=1))
    assert torch.equal(a[..., 0::2, 0::2], a[..., 1::2, 1::2])  # constant within each 2×2 cell
