"""Writing rendered frames to disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..videoio import write_video as write_mp4


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Save an H×W×3 (RGB) or H×W×4 (RGBA) uint8 image as PNG."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, compress_level=1)
    return path


__all__ = ["save_png", "write_mp4"]
