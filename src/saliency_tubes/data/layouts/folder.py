"""``ROOT/{train,val}/<class>/<video>``, and the same with a folder of JPEG frames per video."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ...errors import SaliencyTubesError
from .base import Layout, LayoutOptions, Sample, is_frame_folder, is_video, register_layout


def scan_classes(
    root: Path, split: str, class_names: list[str] | None = None, frames: bool = False
) -> tuple[list[Sample], list[str]]:
    """``ROOT/split/<class>/<video>`` (``frames``: ``<video>`` is a folder of JPEG frames); classes are the sorted
    folder names."""
    split_dir = Path(root) / split
    what = "<video_dir>/*.jpg" if frames else "<video>"
    if not split_dir.is_dir():
        raise SaliencyTubesError(f"{split_dir} does not exist (expected ROOT/{split}/<class>/{what})")
    found = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    if class_names is None:
        class_names = found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise SaliencyTubesError(f"{split_dir} has classes not in the training split: {', '.join(unknown)}")
    is_item = is_frame_folder if frames else is_video
    samples = []
    for label, name in enumerate(class_names):
        folder = split_dir / name
        if not folder.is_dir():
            continue
        items = [p for p in sorted(folder.iterdir()) if is_item(p)]
        if not items and split == "train":
            raise SaliencyTubesError(
                f"{folder} has no videos: a class needs training videos (remove the folder or add some)"
            )
        samples += [Sample(p, label) for p in items]
    if not samples:
        raise SaliencyTubesError(f"no videos found under {split_dir}")
    return samples, class_names


@register_layout
class FolderLayout(Layout):
    name = "folder"
    description = "ROOT/{train,val}/<class>/<video> (mp4, avi, mkv, webm, mov); class names = folder names"
    frames: ClassVar[bool] = False

    def index(
        self, root: Path, split: str, class_names: list[str] | None, options: LayoutOptions
    ) -> tuple[list[Sample], list[str]]:
        return scan_classes(root, split, class_names, frames=self.frames)


@register_layout
class FramesLayout(FolderLayout):
    name = "frames"
    description = "the folder layout with a folder of JPEG frames per video (only the sampled frames are decoded)"
    frames = True
