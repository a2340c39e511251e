"""The one writer of an explanation's files, used by ``explain.py``, the training callback and the reports.

For each target, in its folder (the first target in ``out_dir``, the k-th in ``out_dir/target_<k>_<class>/``):

- ``saliency.npy``: float16 ``frames × height × width`` in [0, 1], at the frames' own resolution;
- ``overlay.mp4``: the heatmap over the frames (with ``side_by_side``, the frames beside it), H.264;
- ``focus/``: RGBA PNGs whose alpha is the saliency, named by frame index (``focus=False`` skips them);
- ``tube.png``: the 3D tube plot;
- for a multi-layer explanation (``explanation.layers``: pyramid, layercam, …) also ``pyramid.npz``, each depth's
  tube at its own resolution (float16 ``frames × H_d × W_d`` under the layer's name) with ``layers`` (the names,
  shallow → deep), ``frame_indices``, ``target`` and ``target_class``; and ``pyramid.png``, one row per depth
  (shallow → deep, the fused tube last) over a few evenly spaced frames (:func:`~saliency_tubes.render.render_pyramid`);

and ``out_dir/result.json``: source, explained frame indices, top-5 predictions, target(s), method, the files
written (``files``, relative to ``out_dir``), the depths drawn (``pyramid``) and the explanation's ``extra`` fields.
Frames are processed a chunk at a time, so long videos stay in bounded memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..render import focus_frames, overlay, plot_pyramid, plot_tube, save_png, side_by_side, upscale
from ..render.pyramid import evenly_spaced
from ..videoio import VideoWriter
from .video import VideoExplanation

CHUNK = 32  # frames resized, written and drawn at a time
PLOT_STEPS = 64  # at most this many time steps in the tube plot
PYRAMID_FRAMES = 6  # columns of pyramid.png
PYRAMID_KEYS = ("layers", "frame_indices", "target", "target_class")  # pyramid.npz's keys besides the layer names


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
    per_depth = layer_tubes(e) if e.layers else None  # checked before anything is written
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

    files = ["saliency.npy", "overlay.mp4", *(["focus/"] if focus else []), "tube.png"]
    pyramid = None
    if per_depth:
        pyramid = _write_pyramid(e, per_depth, dirs, title)
        files += ["pyramid.npz", "pyramid.png"]
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
        "files": [str((d / f).relative_to(out_dir)) + ("/" if f.endswith("/") else "") for d in dirs for f in files],
        **({"pyramid": pyramid} if pyramid else {}),
        **e.extra,
    }
    (out_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result


def layer_tubes(explanation: VideoExplanation) -> list[dict[str, np.ndarray]]:
    """``explanation.layers`` per target: ``{layer: float32 frames × H_d × W_d}`` for each of its K targets (a layer's
    array is K×N×H_d×W_d, or N×H_d×W_d for one target)."""
    e = explanation
    n, per_target = len(e.frame_indices), [dict[str, np.ndarray]() for _ in e.targets]
    for name, value in (e.layers or {}).items():
        a = value.detach().float().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, np.float32)
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4 or a.shape[0] != len(e.targets) or a.shape[1] != n:
            raise ValueError(
                f"layer {name!r}: expected {len(e.targets)}×{n}×H×W (targets × frames), got {'×'.join(map(str, a.shape))}"
            )
        for maps, tube in zip(per_target, a, strict=True):
            maps[name] = tube
    return per_target


def _write_pyramid(
    e: VideoExplanation, per_target: list[dict[str, np.ndarray]], dirs: list[Path], title: str | None
) -> dict:
    """``pyramid.npz`` and ``pyramid.png`` in each target's folder; returns what ``result.json`` says of them."""
    names = list(e.layers or {})
    clash = sorted(set(names) & set(PYRAMID_KEYS))
    if clash:
        raise ValueError(f"layer name(s) {', '.join(clash)} clash with pyramid.npz's own keys")
    positions = evenly_spaced(len(e.frame_indices), PYRAMID_FRAMES)
    frames = np.asarray(e.frames[positions])
    shown = [int(e.frame_indices[p]) for p in positions]
    name = Path(e.source).name
    for d, k, tube, maps in zip(dirs, e.targets, e.tubes, per_target, strict=True):
        arrays: dict[str, Any] = {layer: a.astype(np.float16) for layer, a in maps.items()}
        arrays.update(
            layers=np.array(names),
            frame_indices=np.asarray(e.frame_indices, np.int64),
            target=np.int64(k),
            target_class=np.array(e.class_names[k]),
        )
        np.savez_compressed(d / "pyramid.npz", **arrays)
        rows = [(f"{layer}\n{a.shape[1]}x{a.shape[2]} grid", a[positions]) for layer, a in maps.items()]
        fused = tube[positions].float().cpu().numpy()
        rows.append((f"fused tube\n{fused.shape[1]}x{fused.shape[2]}", fused))
        heading = title or f"{name} · {e.class_names[k]} (p={float(e.probs[k]):.2f})"
        plot_pyramid(frames, rows, d / "pyramid.png", frame_indices=shown, title=f"{heading} · {e.method} by depth")
    layers = [{"name": layer, "grid": list(a.shape[1:])} for layer, a in per_target[0].items()]
    return {"layers": layers, "frames": shown}
