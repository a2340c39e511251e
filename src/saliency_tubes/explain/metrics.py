"""Quality measures of Saliency Tubes against ground truth."""
from __future__ import annotations

import torch


def tube_mass_in_gt(tubes: torch.Tensor, masks: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Share of each tube's total saliency that lies inside the ground-truth mask (B×T×H×W each) → B.

    A map spread uniformly scores the share of the clip that the mask covers (see :func:`mask_share`).
    """
    tubes = tubes.float().flatten(1)
    masks = masks.to(tubes.dtype).flatten(1)
    return (tubes * masks).sum(1) / tubes.sum(1).clamp(min=eps)


def mask_share(masks: torch.Tensor) -> torch.Tensor:
    """Share of each clip's voxels covered by its mask → B."""
    return masks.float().flatten(1).mean(1)
