"""Clip transforms on tensors. Geometry (scale, crop, flip) runs on uint8 frames so the same frames can
be rendered later; normalisation comes last and produces the model's float ``3×T×H×W`` input."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def resize_short_side(frames: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """Resize ``T×C×H×W`` frames so the short side is ``size``, keeping the aspect ratio."""
    h, w = frames.shape[-2:]
    scale = size / min(h, w)
    out_hw = (max(1, round(h * scale)), max(1, round(w * scale)))
    if out_hw == (h, w):
        return frames
    dtype = frames.dtype
    x = frames.float()
    if mode == "nearest":
        x = F.interpolate(x, size=out_hw, mode="nearest")
    else:
        x = F.interpolate(x, size=out_hw, mode=mode, align_corners=False, antialias=scale < 1)
    if dtype == torch.uint8:
        return x.round_().clamp_(0, 255).to(torch.uint8)
    return x.to(dtype)


def normalize(frames: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 frames ``...×T×H×W×3`` → float ``...×3×T×H×W``, scaled to [0, 1] and standardised."""
    x = frames.movedim(-1, -4).float().div_(255.0)
    shape = (3, 1, 1, 1)
    return (x - torch.tensor(mean).view(shape)) / torch.tensor(std).view(shape)


def crop_offsets(height: int, width: int, size: int, crops: int) -> list[tuple[int, int]]:
    """``(top, left)`` of the ``size``×``size`` test crops of frames whose short side is already ``size``: the centre
    (``crops=1``), or the two ends and the centre of the long side (``crops=3``, the usual three-crop testing, which
    sees the whole frame of a video up to 2:1)."""
    if crops == 1:
        return [((height - size) // 2, (width - size) // 2)]
    if crops != 3:
        raise ValueError(f"crops must be 1 or 3, not {crops}")
    if width >= height:
        return [((height - size) // 2, left) for left in (0, (width - size) // 2, width - size)]
    return [(top, (width - size) // 2) for top in (0, (height - size) // 2, height - size)]


@dataclass
class ClipTransform:
    """Scale the short side, crop a ``size``×``size`` square and optionally flip.

    Training: the short side goes to ``size × U(scale)``, then a random crop. Evaluation: the short
    side goes to ``size``, then the centre crop. ``hflip`` must stay off for data whose labels depend on
    left/right (such as the synthetic set's move_left / move_right). ``randaugment = (ops, magnitude)`` applies
    torchvision's RandAugment in training, with one draw of operations per clip so every frame gets the same.
    """

    size: int = 112
    train: bool = False
    scale: tuple[float, float] = (1.0, 1.15)
    hflip: bool = False
    randaugment: tuple[int, int] | None = None

    def __call__(
        self, frames: np.ndarray | torch.Tensor, mask: np.ndarray | None = None, rng: np.random.Generator | None = None
    ):
        """uint8 ``T×H×W×3`` frames (and an optional bool ``T×H×W`` mask) → the same, transformed.

        ``rng`` draws the training-time randomness (a fresh default generator when not given).
        """
        rng = rng if rng is not None else np.random.default_rng()
        x = torch.as_tensor(frames).permute(0, 3, 1, 2)  # T×3×H×W
        m = None if mask is None else torch.as_tensor(mask).unsqueeze(1).to(torch.uint8)
        short = self.size
        if self.train and self.scale != (1.0, 1.0):
            short = math.ceil(self.size * rng.uniform(*self.scale))
        x = resize_short_side(x, short)
        if m is not None:
            m = resize_short_side(m, short, mode="nearest")
        h, w = x.shape[-2:]
        if self.train:
            top, left = int(rng.integers(0, h - self.size + 1)), int(rng.integers(0, w - self.size + 1))
        else:
            top, left = (h - self.size) // 2, (w - self.size) // 2
        x = x[..., top : top + self.size, left : left + self.size]
        if m is not None:
            m = m[..., top : top + self.size, left : left + self.size]
        if self.train and self.hflip and rng.random() < 0.5:
            x = x.flip(-1)
            m = None if m is None else m.flip(-1)
        if self.train and self.randaugment:
            from torchvision.transforms import v2  # imported only when used: a second of start-up

            with torch.random.fork_rng(devices=[]):  # drawn from the item's generator, so resuming stays exact
                torch.manual_seed(int(rng.integers(2**63)))
                x = v2.RandAugment(num_ops=self.randaugment[0], magnitude=self.randaugment[1])(x)
        x = x.permute(0, 2, 3, 1).contiguous()
        return x, (None if m is None else m[:, 0].bool())


def mix_clips(
    clips: torch.Tensor, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup or CutMix of a batch of clips ``B×C×T×H×W`` with the batch reversed: returns ``(mixed clips, the
    partner of each clip (an index), λ)``; the loss is ``λ·CE(y) + (1 − λ)·CE(y[partner])``.

    CutMix pastes one box through all frames (a tube), so motion inside the box stays intact; λ is the kept area.
    With both alphas set, each batch uses one of the two at random.
    """
    partner = torch.arange(len(clips) - 1, -1, -1, device=clips.device)
    methods = [m for m, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    if not methods:
        return clips, partner, 1.0
    pick = methods[int(torch.randint(len(methods), (1,), generator=generator))]
    alpha = mixup_alpha if pick == "mixup" else cutmix_alpha
    lam = float(np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator))).beta(alpha, alpha))
    if pick == "mixup":
        return lam * clips + (1 - lam) * clips[partner], partner, lam
    h, w = clips.shape[-2:]
    cut_h, cut_w = round(h * math.sqrt(1 - lam)), round(w * math.sqrt(1 - lam))
    cy, cx = (int(torch.randint(n, (1,), generator=generator)) for n in (h, w))
    y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, h)
    x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, w)
    mixed = clips.clone()
    mixed[..., y0:y1, x0:x1] = clips[partner][..., y0:y1, x0:x1]
    return mixed, partner, 1 - (y1 - y0) * (x1 - x0) / (h * w)
