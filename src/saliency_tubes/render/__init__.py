"""Rendering Saliency Tubes: colour maps, overlays, focus frames, 3D tube plots, pyramid pictures and MP4 writing."""

from .colormap import apply_colormap, jet_lut
from .gif import encode_gif
from .overlay import focus_frames, overlay, side_by_side, upscale
from .pyramid import plot_pyramid, render_pyramid
from .tube_plot import plot_tube, render_tube
from .video import save_png, write_mp4

__all__ = [
    "apply_colormap",
    "encode_gif",
    "focus_frames",
    "jet_lut",
    "overlay",
    "plot_pyramid",
    "plot_tube",
    "render_pyramid",
    "render_tube",
    "save_png",
    "side_by_side",
    "upscale",
    "write_mp4",
]
