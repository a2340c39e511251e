"""Voxel deletion and insertion (Petsiuk et al., 2018; for video as in Li et al., WACV 2021).

Each frame is divided into a ``grid``×``grid`` grid; the cells of all frames are ranked by their mean saliency
and, in ``steps`` equal steps, the most salient cells are replaced by a baseline (deletion) or, starting from
the baseline, restored (insertion). The curve is the target class's probability after each step; its area
(trapezoid rule over [0, 1]) is the score: low for deletion and high for insertion mean a faithful map.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import nn

from .core import preserved_state


def blurred(clips: torch.Tensor, factor: int = 8) -> torch.Tensor:
    """A strongly blurred copy of B×C×T×H×W clips (each frame averaged over ``factor``² blocks, then smoothly
    upsampled): the default baseline, which keeps the colours but removes the detail."""
    b, c, t, h, w = clips.shape
    frames = clips.transpose(1, 2).reshape(b * t, c, h, w)
    small = F.adaptive_avg_pool2d(frames, (max(1, h // factor), max(1, w // factor)))
    smooth = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return smooth.reshape(b, t, c, h, w).transpose(1, 2)


def cell_order(tubes: torch.Tensor, grid: int = 16) -> torch.Tensor:
    """Cells (flattened T×grid×grid) of each B×T×H×W tube, most salient first → B×(T·grid²)."""
    b, t = tubes.shape[:2]
    cells = F.adaptive_avg_pool3d(tubes[:, None].float(), (t, grid, grid))[:, 0]
    return cells.reshape(b, -1).argsort(dim=1, descending=True, stable=True)


def _step_masks(order: torch.Tensor, count: int, t: int, grid: int, size: tuple[int, int]) -> torch.Tensor:
    """B×1×T×H×W boolean: the first ``count`` cells of each order, at pixel resolution."""
    b, n = order.shape
    chosen = torch.zeros(b, n, dtype=torch.bool, device=order.device)
    chosen.scatter_(1, order[:, :count], True)
    cells = chosen.reshape(b, 1, t, grid, grid).float()
    return F.interpolate(cells, size=(t, *size), mode="nearest").bool()


Baseline = Literal["blur", "zero"]  # what deleted cells become
BASELINES: tuple[str, ...] = get_args(Baseline)


def deletion_insertion(
    model: nn.Module,
    clips: torch.Tensor,
    tubes: torch.Tensor,
    targets: torch.Tensor,
    steps: int = 128,
    grid: int = 16,
    baseline: Baseline = "blur",
) -> dict[str, torch.Tensor]:
    """Deletion and insertion curves (B×(steps+1)) and their AUCs (B) of tubes (B×T×H×W) for ``targets`` (B).

    ``baseline``: ``blur`` (default) or ``zero`` (zeros in the model's input space, i.e. the normalisation mean).
    """
    if baseline not in BASELINES:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, not {baseline!r}")
    base = blurred(clips) if baseline == "blur" else torch.zeros_like(clips)
    b, _, t, h, w = clips.shape
    order = cell_order(tubes, grid)
    n_cells = order.shape[1]
    rows = torch.arange(b, device=clips.device)
    deletion, insertion = [], []
    with preserved_state(model):
        for s in range(steps + 1):
            mask = _step_masks(order, round(s * n_cells / steps), t, grid, (h, w))
            both = torch.cat([torch.where(mask, base, clips), torch.where(mask, clips, base)])
            probs = model(both).float().softmax(-1)
            deletion.append(probs[:b][rows, targets])
            insertion.append(probs[b:][rows, targets])
    curves = {"deletion_curve": torch.stack(deletion, 1), "insertion_curve": torch.stack(insertion, 1)}
    for name in ("deletion", "insertion"):
        c = curves[f"{name}_curve"]
        curves[f"{name}_auc"] = ((c[:, 1:] + c[:, :-1]) / 2).mean(1)
    return curves


def random_tubes(shape: tuple[int, ...], grid: int = 16, seed: int = 0, device=None) -> torch.Tensor:
    """A random reference map: i.i.d. uniform cell values (constant within each cell of the grid)."""
    b, t, h, w = shape
    g = torch.Generator().manual_seed(seed)
    cells = torch.rand(b, 1, t, grid, grid, generator=g)
    return F.interpolate(cells, size=(t, h, w), mode="nearest")[:, 0].to(device)
