"""One tube for a whole video from many clips, without seams at clip borders.

A network sees a video clip by clip, and each clip's map has its own scale, so tubes normalised clip by clip
jump at every border. Here the clips overlap by half (hop = clip_len // 2), each clip's *raw* (unnormalised)
map is weighted by a triangular window that is largest at the clip's centre and small at its ends, the
weighted maps are averaged per frame, and only then is the whole video's tube min–max normalised once. Every
frame inside the video is thus a blend of two clips whose weights cross-fade, and one scale holds for all frames.
"""

from __future__ import annotations

import numpy as np
import torch

from .core import normalize_tubes


def overlapping_clips(num_positions: int, clip_len: int) -> np.ndarray:
    """Clips over positions ``0…num_positions-1`` (the explained frames, in order), half-overlapping, the last one
    ending at the end; positions past the end (only in a video shorter than one clip) repeat the last one.
    Returns an ``N×clip_len`` array of positions."""
    hop = max(1, clip_len // 2)
    last = max(0, num_positions - clip_len)
    starts = sorted(set(list(range(0, last + 1, hop)) + [last]))
    return np.stack([np.minimum(np.arange(s, s + clip_len), num_positions - 1) for s in starts])


def clip_window(clip_len: int) -> torch.Tensor:
    """Triangular weights over a clip's frames, positive at both ends."""
    t = torch.arange(clip_len, dtype=torch.float32)
    return torch.minimum(t + 1, clip_len - t) / ((clip_len + 1) // 2)


class TubeStitcher:
    """Accumulates raw K×T×h×w clip maps at their positions; :meth:`result` gives the K×N×h×w tube in [0, 1]."""

    def __init__(self, targets: int, positions: int, size: tuple[int, int]):
        self.sum = torch.zeros(targets, positions, *size)
        self.weight = torch.zeros(positions)

    def add(self, positions: np.ndarray, maps: torch.Tensor) -> None:
        window = clip_window(len(positions))
        seen = set()
        for t, p in enumerate(positions.tolist()):
            if p in seen:  # padding repeats of the last frame count once
                continue
            seen.add(p)
            self.sum[:, p] += window[t] * maps[:, t].float().cpu()
            self.weight[p] += window[t]

    def result(self) -> torch.Tensor:
        return normalize_tubes(self.sum / self.weight.clamp(min=1e-8)[None, :, None, None])
