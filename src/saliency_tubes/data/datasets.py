"""Datasets over folders of videos in the layout ``ROOT/<split>/<class>/<video>``."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import SaliencyTubesError
from .sampling import clip_indices
from .synthetic import load_ground_truth
from .transforms import KINETICS_MEAN, KINETICS_STD, ClipTransform, normalize
from .video import VIDEO_EXTENSIONS, read_clip


def scan_folder(root: str | Path, split: str, class_names: list[str] | None = None):
    """``(videos, labels, class_names)`` of ``root/split/<class>/*``; classes are the sorted folder names."""
    split_dir = Path(root) / split
    if not split_dir.is_dir():
        raise SaliencyTubesError(f"{split_dir} does not exist (expected ROOT/{split}/<class>/<video>)")
    found = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    if class_names is None:
        class_names = found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise SaliencyTubesError(f"{split_dir} has classes not in the training split: {', '.join(unknown)}")
    videos, labels = [], []
    for label, name in enumerate(class_names):
        folder = split_dir / name
        if not folder.is_dir():
            continue
        found_videos = [p for p in sorted(folder.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()]
        if not found_videos and split == "train":
            raise SaliencyTubesError(f"{folder} has no videos: a class needs training videos (remove the folder or add some)")
        videos += found_videos
        labels += [label] * len(found_videos)
    if not videos:
        raise SaliencyTubesError(f"no videos found under {split_dir}")
    return videos, labels, class_names


class VideoClipDataset(Dataset):
    """One clip per video per epoch.

    Each item is a dict with ``clip`` (float 3×T×H×W, normalised), ``label``, ``frame_indices`` (T),
    ``index``, and with ``keep_frames`` also ``frames`` (the uint8 T×H×W×3 frames the model saw,
    before normalisation) for rendering.
    """

    def __init__(
        self,
        videos: list[Path],
        labels: list[int],
        class_names: list[str],
        clip_len: int = 8,
        stride: int = 2,
        transform: ClipTransform | None = None,
        sampling: str = "center",
        mean=KINETICS_MEAN,
        std=KINETICS_STD,
        keep_frames: bool = False,
        backend: str = "auto",
        seed: int = 0,
    ):
        self.videos, self.labels, self.class_names = list(videos), list(labels), list(class_names)
        self.clip_len, self.stride, self.sampling = clip_len, stride, sampling
        self.transform = transform or ClipTransform()
        self.mean, self.std = tuple(mean), tuple(std)
        self.keep_frames, self.backend, self.seed = keep_frames, backend, seed

    def __len__(self) -> int:
        return len(self.videos)

    def load(self, index: int, epoch: int = 0, with_mask: bool = False) -> dict:
        """Decode, sample and transform one clip; with ``with_mask`` also the actor's ``mask`` (T×H×W) and ``moving``
        flags (T), when the dataset has them.

        The random choices (clip start, scale, crop, flip) come from a generator seeded by ``(seed, epoch,
        index)``, so an item is the same whichever worker loads it, and a resumed run sees the same data.
        """
        path = self.videos[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        frames, indices = read_clip(path, lambda n: clip_indices(n, self.clip_len, self.stride, self.sampling, rng), self.backend)
        truth = load_ground_truth(path) if with_mask else None
        mask = moving = None
        if truth is not None:
            at = np.minimum(indices, len(truth[0]) - 1)
            mask, moving = truth[0][at], torch.as_tensor(truth[1][at])
        frames, mask = self.transform(frames, mask, rng)
        item = {
            "clip": normalize(frames, self.mean, self.std),
            "label": self.labels[index],
            "frame_indices": torch.as_tensor(indices),
            "index": index,
        }
        if self.keep_frames or with_mask:
            item["frames"] = frames
        if mask is not None:
            item["mask"], item["moving"] = mask, moving
        return item

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        """``key`` is an index, or ``(index, epoch)`` as yielded by :class:`~saliency_tubes.data.sampling.ResumableSampler`."""
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        return self.load(index, epoch)
