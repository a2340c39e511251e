"""The 3D tube plot: time along one axis, each frame's salient region drawn as a volume."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .colormap import jet_lut


def plot_tube(
    saliency: np.ndarray,
    path: str | Path,
    threshold: float = 0.5,
    max_side: int = 40,
    title: str | None = None,
    frame: np.ndarray | None = None,
) -> Path:
    """Write a PNG of the voxels of ``saliency`` (T×H×W in [0, 1]) above ``threshold``.

    Voxels are coloured by saliency (JET) with opacity growing with it; frames are subsampled to at most
    ``max_side`` pixels per side. ``frame`` (H×W×3 uint8), when given, is drawn as the floor at t = 0.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    t, h, w = saliency.shape
    step = max(1, -(-max(h, w) // max_side))
    s = saliency[:, ::step, ::step]
    tt, yy, xx = np.nonzero(s >= threshold)
    values = s[tt, yy, xx]
    colours = jet_lut()[(values * 255).astype(np.uint8)] / 255.0
    rgba = np.concatenate([colours, (0.15 + 0.6 * (values[:, None] - threshold) / max(1 - threshold, 1e-6))], 1)

    fig = plt.figure(figsize=(6, 4.5), dpi=100)
    ax = fig.add_subplot(projection="3d")
    if frame is not None:
        f = frame[::step, ::step] / 255.0
        gy, gx = np.mgrid[0 : f.shape[0], 0 : f.shape[1]]
        ax.plot_surface(np.zeros_like(gx, dtype=float) - 0.5, gx, gy, facecolors=f, rstride=1, cstride=1, shade=False, linewidth=0, alpha=0.6)
    ax.scatter(tt, xx, yy, c=rgba, marker="s", s=12, depthshade=False, linewidths=0)
    ax.set_xlim(-0.5, t - 0.5)
    ax.set_ylim(0, s.shape[2])
    ax.set_zlim(s.shape[1], 0)  # image rows grow downwards
    ax.set_xlabel("time (frame)")
    ax.set_ylabel("x")
    ax.set_zlabel("y")
    ax.set_box_aspect((2.0, 1.0, 1.0 * s.shape[1] / s.shape[2]))
    ax.view_init(elev=20, azim=-60)
    if title:
        ax.set_title(title, fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
