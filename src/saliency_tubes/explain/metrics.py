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


def lift(tubes: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mass in the mask divided by the mask's share of the clip → B (a uniform or random map scores about 1)."""
    return tube_mass_in_gt(tubes, masks) / mask_share(masks).clamp(min=1e-8)


def _disk(radius: int, device) -> torch.Tensor:
    r = torch.arange(-radius, radius + 1, device=device, dtype=torch.float32)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius**2).float()


def pointing_game(
    tubes: torch.Tensor, masks: torch.Tensor, frames: torch.Tensor | None = None, tolerance: float | None = None
) -> torch.Tensor:
    """Per clip, the share of frames whose saliency maximum lies within ``tolerance`` pixels of the mask → B.

    ``frames`` (B×T bool) chooses the frames that count (default: those where the mask is not empty);
    ``tolerance`` defaults to 1/8 of the frame's short side. A clip with no counted frame scores NaN.
    """
    b, t, h, w = tubes.shape
    radius = int(round(min(h, w) / 8 if tolerance is None else tolerance))
    m = masks.float().reshape(b * t, 1, h, w)
    if radius > 0:
        kernel = _disk(radius, m.device)[None, None]
        m = torch.nn.functional.conv2d(m, kernel, padding=radius) > 0
    near = m.reshape(b, t, h * w).bool()
    peak = tubes.reshape(b, t, h * w).argmax(-1, keepdim=True)
    hits = near.gather(-1, peak)[..., 0].float()
    counted = masks.flatten(2).any(-1) if frames is None else frames.bool()
    return (hits * counted).sum(1) / counted.sum(1).float().where(counted.any(1), torch.tensor(float("nan")))


def temporal_hit(tubes: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
    """1 where the frame with the most summed saliency is one in which the actor moves (``moving``: B×T) → B."""
    peak = tubes.flatten(2).sum(-1).argmax(-1, keepdim=True)
    return moving.bool().gather(1, peak)[:, 0].float()
