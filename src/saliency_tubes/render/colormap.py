"""Colour maps as 256-entry uint8 lookup tables."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def jet_lut() -> np.ndarray:
    """The classic JET map (dark blue → cyan → yellow → dark red), 256×3 uint8."""
    x = np.linspace(0.0, 1.0, 256)
    r = np.clip(1.5 - np.abs(4 * x - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * x - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * x - 1), 0, 1)
    return (np.stack([r, g, b], 1) * 255).round().astype(np.uint8)


def apply_colormap(saliency: np.ndarray) -> np.ndarray:
    """Saliency in [0, 1] (any shape) → uint8 RGB of shape ``saliency.shape + (3,)``."""
    idx = (np.clip(saliency, 0.0, 1.0) * 255).round().astype(np.uint8)
    return jet_lut()[idx]
