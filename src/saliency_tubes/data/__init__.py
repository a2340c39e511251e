"""Video reading, clip sampling, transforms, dataset layouts, datasets and the LightningDataModule.

Names are loaded from their modules on first use (PEP 562): reading a video must not import Lightning, which only
the data module needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "VideoDataModule": ".datamodule",
    **dict.fromkeys(["VideoClipDataset", "collate", "scan_folder", "validation_dataset"], ".datasets"),
    **dict.fromkeys(
        [
            "LAYOUTS",
            "Layout",
            "LayoutName",
            "LayoutOptions",
            "Sample",
            "get_layout",
            "index",
            "layout_names",
            "register_layout",
        ],
        ".layouts",
    ),
    **dict.fromkeys(["clip_indices", "consecutive_clips"], ".sampling"),
    **dict.fromkeys(["SyntheticConfig", "ensure_synthetic", "load_mask"], ".synthetic"),
    **dict.fromkeys(
        ["KINETICS_MEAN", "KINETICS_STD", "ClipTransform", "normalize", "resize_short_side"], ".transforms"
    ),
    **dict.fromkeys(
        [
            "DamagedVideo",
            "DecodeTimeout",
            "VideoInfo",
            "VideoReadError",
            "VideoStream",
            "find_videos",
            "read_clip",
            "read_frames",
            "read_video_clip",
            "video_info",
        ],
        ".video",
    ),
}


def __getattr__(name: str) -> Any:
    if name == "SYNTHETIC_CLASSES":
        from .synthetic import CLASSES

        return CLASSES
    if name == "write_video":
        from ..videoio import write_video

        return write_video
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [*_EXPORTS, "SYNTHETIC_CLASSES", "write_video"]  # noqa: PLE0604
