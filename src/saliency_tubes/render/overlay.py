"""Heatmap overlays and alpha "focus" frames drawn on the original uint8 frames."""

from __future__ import annotations

import numpy as np

from .colormap import apply_colormap


def _check(frames: np.ndarray, saliency: np.ndarray) -> None:
    if frames.shape[:-1] != saliency.shape or frames.shape[-1] != 3:
        raise ValueError(f"frames {frames.shape} and saliency {saliency.shape} do not match")


def overlay(frames: np.ndarray, saliency: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend the JET heatmap of ``saliency`` (…×H×W in [0, 1]) over uint8 ``frames`` (…×H×W×3)."""
    _check(frames, saliency)
    heat = apply_colormap(saliency).astype(np.float32)
    out = (1.0 - alpha) * frames.astype(np.float32) + alpha * heat
    return out.round().clip(0, 255).astype(np.uint8)


def focus_frames(frames: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """RGBA frames whose alpha channel is the saliency: what the network looks at stays, the rest fades."""
    _check(frames, saliency)
    alpha = (np.clip(saliency, 0.0, 1.0) * 255).round().astype(np.uint8)
    return np.concatenate([frames, alpha[..., None]], axis=-1)


def side_by_side(*videos: np.ndarray, gap: int = 2) -> np.ndarray:
    """Concatenate N×H×W×3 videos horizontally with a white gap."""
    parts = []
    for i, v in enumerate(videos):
        if i:
            parts.append(np.full((*v.shape[:2], gap, 3), 255, np.uint8))
        parts.append(v)
    return np.concatenate(parts, axis=2)


def upscale(frames: np.ndarray, min_height: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor so small clips are visible in a dashboard."""
    factor = max(1, -(-min_height // frames.shape[-3]))
    if factor == 1:
        return frames
    return frames.repeat(factor, axis=-3).repeat(factor, axis=-2)
