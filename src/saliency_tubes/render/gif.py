"""Animated GIF encoding (what TensorBoard shows as a video) without moviepy."""

from __future__ import annotations

import io

import numpy as np


def encode_gif(frames: np.ndarray, fps: float) -> bytes:
    """uint8 ``N×H×W×3`` frames → the bytes of a looping animated GIF."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    buffer = io.BytesIO()
    images[0].save(
        buffer, format="GIF", save_all=True, append_images=images[1:], duration=max(int(1000 / fps), 20), loop=0
    )
    return buffer.getvalue()
