"""The 3D tube plot: the clip's frames stacked along a receding time axis, each frame's salient region drawn as a
translucent JET-coloured slice, so the tube the network attends to reads as one volume through time.

Rendered directly with numpy (an oblique "cabinet" projection composited back to front) and PIL for lines
and text: a few milliseconds per plot, cheap enough to run for every sample of every epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .colormap import apply_colormap

_BACKGROUND = 255.0
_OUTLINE = (150, 150, 150)
_TEXT = (40, 40, 40)


def _downsample(a: np.ndarray, step: int) -> np.ndarray:
    """Block-average the last two (H, W) axes by ``step`` (cropping the remainder)."""
    if step == 1:
        return a
    h, w = (a.shape[-2] // step) * step, (a.shape[-1] // step) * step
    a = a[..., :h, :w]
    return a.reshape(*a.shape[:-2], h // step, step, w // step, step).mean(axis=(-3, -1))


def render_tube(
    saliency: np.ndarray,
    threshold: float = 0.3,
    frame: np.ndarray | None = None,
    title: str | None = None,
    slice_size: int = 150,
    frame_indices: list[int] | None = None,
) -> np.ndarray:
    """RGB uint8 image of the tube plot of ``saliency`` (T×H×W in [0, 1]).

    Voxels below ``threshold`` are transparent; above it opacity grows with saliency. ``frame`` (H×W×3 uint8)
    is drawn faintly as the first slice, for orientation. ``frame_indices`` label the time axis (default 0…T-1).
    """
    from PIL import Image, ImageDraw

    t, h, w = saliency.shape
    step = max(1, -(-max(h, w) // 64))  # at most 64 cells per side
    sal = _downsample(saliency.astype(np.float32), step)
    cells = max(sal.shape[1], sal.shape[2])
    zoom = max(1, slice_size // cells)
    sal = sal.repeat(zoom, 1).repeat(zoom, 2)
    sh, sw = sal.shape[1:]
    dx = max(3, min(28, (3 * sw) // max(t, 1)))  # offset of consecutive slices along the time axis
    dy = max(2, dx * 2 // 3)
    margin_l, margin_t, margin_b = 16, 30 if title else 12, 34
    width = margin_l + sw + dx * (t - 1) + 24
    height = margin_t + sh + dy * (t - 1) + margin_b
    canvas = np.full((height, width, 3), _BACKGROUND, np.float32)
    origin_x, origin_y = margin_l, margin_t + dy * (t - 1)  # top-left corner of slice 0 (the front)

    colours = apply_colormap(sal).astype(np.float32)
    alpha = np.clip((sal - threshold) / max(1.0 - threshold, 1e-6), 0.0, 1.0)
    alpha = np.where(sal >= threshold, 0.25 + 0.6 * alpha, 0.0)[..., None]
    outlines = []
    for i in reversed(range(t)):  # back to front
        x0, y0 = origin_x + dx * i, origin_y - dy * i
        region = canvas[y0 : y0 + sh, x0 : x0 + sw]
        if i == 0 and frame is not None:
            f = _downsample(frame.astype(np.float32).transpose(2, 0, 1), step).transpose(1, 2, 0)
            f = f.repeat(zoom, 0).repeat(zoom, 1)[:sh, :sw]
            region[:] = 0.6 * region + 0.4 * f
        region[:] = region * (1 - alpha[i]) + colours[i] * alpha[i]
        outlines.append((x0, y0, x0 + sw - 1, y0 + sh - 1))

    image = Image.fromarray(canvas.round().astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for box in (outlines[0], outlines[-1]):  # the last and the first slice's borders
        draw.rectangle(box, outline=_OUTLINE)
    # the time axis along the bottom-left edges of the slices, with first/last labels
    x_start, y_start = origin_x, origin_y + sh + 6
    x_end, y_end = origin_x + dx * (t - 1), y_start - dy * (t - 1)
    draw.line((x_start, y_start, x_end + 10, y_end - 10 * dy / max(dx, 1)), fill=_TEXT, width=1)
    labels = frame_indices if frame_indices is not None else list(range(t))
    draw.text((x_start, y_start + 4), f"t={labels[0]}", fill=_TEXT)
    draw.text((x_end + 14, y_end - 6 - 10 * dy / max(dx, 1)), f"t={labels[-1]}", fill=_TEXT)
    draw.text((width // 2 - 12, height - 14), "time", fill=_TEXT)
    if title:
        draw.text((margin_l, 8), title, fill=_TEXT)
    return np.asarray(image)


def plot_tube(
    saliency: np.ndarray,
    path: str | Path,
    threshold: float = 0.3,
    title: str | None = None,
    frame: np.ndarray | None = None,
    frame_indices: list[int] | None = None,
) -> Path:
    """Write :func:`render_tube` as a PNG."""
    from .video import save_png

    return save_png(render_tube(saliency, threshold, frame, title, frame_indices=frame_indices), path)
