"""The one writer of an explanation's files, used by ``explain.py``, the training callback and the reports.

For each target, in its folder (the first target in ``out_dir``, the k-th in ``out_dir/target_<k>_<class>/``):

- ``saliency.npy``: float16 ``frames × height × width`` in [0, 1], at the frames' own resolution;
- ``overlay.mp4``: the heatmap over the frames (with ``side_by_side``, the frames beside it), H.264;
- ``focus/``: RGBA PNGs whose alpha is the saliency, named by frame index (``focus=False`` skips them);
- ``tube.png``: the 3D tube plot;

and ``out_dir/result.json``: source, explained frame indices, top-5 predictions, target(s), method and the
explanation's ``extra`` fields. Frames are processed a chunk at a time, so long videos stay in bounded memory.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..render import focus_frames, overlay, plot_tube, save_png, side_by_side, upscale
from ..videoio import VideoWriter
from .video import VideoExplanation

CHUNK = 32  # frames resized, written and drawn at a time
PLOT_STEPS = 64  # at most this many time steps in the tube plot


def safe_name(name: str) -> str:
    """``name`` with every character that is not safe in a file name replaced by ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name-2``, ``name-3``, … if taken already; the name returned is added to ``taken``."""
    unique, i = name, 2
    while unique in taken:
        unique, i = f"{name}-{i}", i + 1
    taken.add(unique)
    return unique


def write_explanation(
    explanation: VideoExplanation,
    out_dir: str | Path,
    alpha: float = 0.5,
    focus: bool = True,
    side_by_side_video: bool = False,
    min_height: int = 0,
    preset: str = "veryfast",
    title: str | None = None,
) -> dict:
    """Write ``explanation``'s files into ``out_dir`` (see the module docstring); returns what ``result.json``
    holds. ``min_height`` upscales small frames (nearest neighbour) in ``overlay.mp4`` for dashboards; ``title``
    replaces the tube plot's default title (``<source name> · <class> (p=…)``)."""
    e = explanation
    out_dir = Path(out_dir)
    n, (h, w) = len(e.frame_indices), e.frames.shape[1:3]
    dirs = [out_dir] + [out_dir / f"target_{r}_{safe_name(e.class_names[k])}" for r, k in enumerate(e.targets[1:], 2)]
    saliency, writers = [], []
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        saliency.append(np.lib.format.open_memmap(d / "saliency.npy", mode="w+", dtype=np.float16, shape=(n, h, w)))
        writers.append(VideoWriter(d / "overlay.mp4", fps=e.fps, preset=preset))
    try:
        for row in range(0, n, CHUNK):
            frames = np.asarray(e.frames[row : row + CHUNK])
            low = e.tubes[:, row : row + len(frames)].float()
            full = low
            if tuple(low.shape[-2:]) != (h, w):
                full = F.interpolate(
                    low.reshape(-1, 1, *low.shape[-2:]), size=(h, w), mode="bilinear", align_corners=False
                )
            full_np = full.clamp_(0, 1).reshape(len(e.targets), len(frames), h, w).cpu().numpy()
            for d, store, writer, sal in zip(dirs, saliency, writers, full_np, strict=True):
                store[row : row + len(frames)] = sal.astype(np.float16)
                drawn = overlay(frames, sal, alpha)
                if side_by_side_video:
                    drawn = side_by_side(frames, drawn)
                writer.write(upscale(drawn, min_height) if min_height else drawn)
                if focus:
                    for i, rgba in enumerate(focus_frames(frames, sal)):
                        save_png(rgba, d / "focus" / f"{int(e.frame_indices[row + i]):06d}.png")
    finally:
        for writer in writers:
            writer.close()
        for store in saliency:
            store.flush()

    # The plot from the tube at its own (model input) resolution, over the first frame resized to it.
    step = max(1, -(-n // PLOT_STEPS))
    size = tuple(e.tubes.shape[-2:])
    first = torch.from_numpy(np.asarray(e.frames[:1])).permute(0, 3, 1, 2).float()
    first = F.interpolate(first, size=size, mode="bilinear", align_corners=False, antialias=True)
    first_np = first[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    name = Path(e.source).name
    for d, k, tube in zip(dirs, e.targets, e.tubes, strict=True):
        plot_title = title or f"{name} · {e.class_names[k]} (p={float(e.probs[k]):.2f})"
        plot_tube(
            tube[::step].float().cpu().numpy(),
            d / "tube.png",
            title=plot_title,
            frame=first_np,
            frame_indices=[int(i) for i in e.frame_indices[::step]],
        )

    result = {
        "video": e.source,
        "frames": [int(i) for i in e.frame_indices],
        "height": int(h),
        "width": int(w),
        "predictions": e.predictions(),
        "target": e.describe(e.targets[0]),
        "targets": [
            {**e.describe(k), "dir": str(d.relative_to(out_dir)) or "."} for k, d in zip(e.targets, dirs, strict=True)
        ],
        "method": e.method,
        **e.extra,
    }
    (out_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result
