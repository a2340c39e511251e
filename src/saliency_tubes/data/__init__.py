"""Video reading, clip sampling, transforms, datasets and the LightningDataModule."""

from ..videoio import write_video
from .datamodule import VideoDataModule
from .datasets import VideoClipDataset, collate, scan_folder
from .layouts import LAYOUTS, LayoutOptions, Sample, index
from .sampling import clip_indices, consecutive_clips
from .synthetic import CLASSES as SYNTHETIC_CLASSES
from .synthetic import SyntheticConfig, ensure_synthetic, load_mask
from .transforms import KINETICS_MEAN, KINETICS_STD, ClipTransform, normalize, resize_short_side
from .video import (
    DecodeTimeout,
    VideoInfo,
    VideoReadError,
    find_videos,
    read_clip,
    read_frames,
    read_video_clip,
    video_info,
)

__all__ = [
    "LAYOUTS",
    "DecodeTimeout",
    "LayoutOptions",
    "Sample",
    "collate",
    "index",
    "read_video_clip",
    "SYNTHETIC_CLASSES",
    "KINETICS_MEAN",
    "KINETICS_STD",
    "ClipTransform",
    "SyntheticConfig",
    "VideoClipDataset",
    "VideoDataModule",
    "VideoInfo",
    "VideoReadError",
    "clip_indices",
    "consecutive_clips",
    "ensure_synthetic",
    "find_videos",
    "load_mask",
    "read_clip",
    "normalize",
    "read_frames",
    "resize_short_side",
    "scan_folder",
    "video_info",
    "write_video",
]
