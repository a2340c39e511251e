"""The pyramid picture: one row per depth of a multi-layer explanation (shallow → deep, then the fused tube), each
row that depth's class tube over a few frames, drawn as a heatmap over the frame — in the spirit of the figures of
Class Feature Pyramids (Stergiou et al., ICCVW 2019).

numpy and PIL only, like the tube plot: each depth's map is upsampled for display (bilinear) from its own grid to
the cell, so a coarse layer reads as the blurred blob it is and a fine one keeps its detail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .overlay import overlay

_BACKGROUND = 255
_TEXT = (40, 40, 40)
_MUTED = (110, 110, 110)
_GAP = 3


def evenly_spaced(n: int, count: int) -> list[int]:
    """``min(count, n)`` positions spread evenly over ``0 … n-1``, first and last included."""
    if n <= 0 or count <= 0:
        return []
    return sorted({int(round(p)) for p in np.linspace(0, n - 1, min(count, n))})


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of an H×W float map (mode ``F``) or an H×W×3 uint8 image."""
    from PIL import Image

    if image.ndim == 2:
        image = image.astype(np.float32)  # mode F
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def render_pyramid(
    frames: np.ndarray,
    rows: list[tuple[str, np.ndarray]],
    frame_indices: list[int] | None = None,
    title: str | None = None,
    cell_height: int = 96,
    alpha: float = 0.5,
) -> np.ndarray:
    """RGB uint8 image: for each ``(label, maps)`` of ``rows`` (``maps``: F×h×w in [0, 1], any h×w), one row of F
    cells, the map over the matching frame of ``frames`` (F×H×W×3 uint8). ``label`` may hold two lines (name, grid);
    ``frame_indices`` head the columns."""
    from PIL import Image, ImageDraw

    count, height, width = frames.shape[:3]
    if not rows or count == 0:
        raise ValueError("a pyramid needs at least one row and one frame")
    for label, maps in rows:
        if maps.shape[0] != count:
            raise ValueError(f"row {label!r} has {maps.shape[0]} maps for {count} frames")
    cell_h = cell_height
    cell_w = max(8, round(cell_height * width / max(height, 1)))
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = 12 + max(int(measure.textlength(line)) for label, _ in rows for line in label.split("\n"))
    top = (22 if title else 4) + 16  # title, then the column heads
    out_w = label_w + count * (cell_w + _GAP) + _GAP
    out_h = top + len(rows) * (cell_h + _GAP) + _GAP
    canvas = np.full((out_h, out_w, 3), _BACKGROUND, np.uint8)
    small = np.stack([_resize(f, cell_w, cell_h) for f in np.asarray(frames)])
    for r, (_, maps) in enumerate(rows):
        heat = np.stack([_resize(np.asarray(m, np.float32), cell_w, cell_h) for m in maps]).clip(0, 1)
        drawn = overlay(small, heat, alpha)
        y = top + r * (cell_h + _GAP)
        for c in range(count):
            x = label_w + _GAP + c * (cell_w + _GAP)
            canvas[y : y + cell_h, x : x + cell_w] = drawn[c]

    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    if title:
        draw.text((6, 6), title, fill=_TEXT)
    heads = frame_indices if frame_indices is not None else list(range(count))
    for c, index in enumerate(heads):
        draw.text((label_w + _GAP + c * (cell_w + _GAP) + 2, top - 14), f"t={index}", fill=_MUTED)
    for r, (label, _) in enumerate(rows):
        lines = label.split("\n")
        y = top + r * (cell_h + _GAP) + cell_h // 2 - 7 * len(lines)
        for i, line in enumerate(lines):
            draw.text((6, y + 14 * i), line, fill=_TEXT if i == 0 else _MUTED)
    return np.asarray(image)


def plot_pyramid(
    frames: np.ndarray,
    rows: list[tuple[str, np.ndarray]],
    path: str | Path,
    frame_indices: list[int] | None = None,
    title: str | None = None,
) -> Path:
    """Write :func:`render_pyramid` as a PNG."""
    from .video import save_png

    return save_png(render_pyramid(frames, rows, frame_indices, title), path)
