"""The clip dataset over a list of videos (or segments of them), whichever layout listed them."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ..errors import SaliencyTubesError, first_line
from .layouts import LayoutOptions, Sample, index, scan_classes
from .sampling import clip_indices
from .synthetic import load_ground_truth
from .transforms import KINETICS_MEAN, KINETICS_STD, ClipTransform, crop_offsets, normalize, resize_short_side
from .video import DamagedVideo, VideoReadError, read_video_clip


def scan_folder(root: str | Path, split: str, class_names: list[str] | None = None):
    """``(videos, labels, class_names)`` of ``root/split/<class>/*``; classes are the sorted folder names."""
    samples, class_names = scan_classes(Path(root), split, class_names)
    return [s.path for s in samples], [s.label for s in samples], class_names


def collate(items: list[dict]) -> dict:
    """``default_collate``, with the items' ``skipped`` (path → reason of the unreadable files they replaced)
    merged into one dict: DataLoader workers are separate processes, so that is how the main process learns of them."""
    skipped: dict[str, str] = {}
    for item in items:
        skipped.update(item.pop("skipped", {}))
    batch = default_collate(items)
    batch["skipped"] = skipped
    return batch


class VideoClipDataset(Dataset):
    """One clip per video (or per segment ``[start, stop)`` seconds of a long video) per epoch.

    Each item is a dict with ``clip`` (float 3×T×H×W, normalised), ``label``, ``frame_indices`` (T),
    ``index``, and with ``keep_frames`` also ``frames`` (the uint8 T×H×W×3 frames the model saw,
    before normalisation) for rendering. Videos or segments shorter than a clip are looped or padded
    (``short_video``), never rejected.

    Indexing (``dataset[key]``, what DataLoaders do) skips unreadable files: the next readable video takes the
    item's place, so batches stay full and a resumed run sees the same items, and the item's ``skipped``
    dict (path → reason) names the files it passed over. :meth:`load` raises :class:`VideoReadError` instead.
    A file that cannot be opened is passed over from then on (``bad``); a damaged one (:class:`DamagedVideo`: cut
    short, overwritten) only for the clips that need its damaged frames, so whether an item is replaced depends
    on the file and the clip alone, never on what this process (or worker) met before.
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
        segments: list[tuple[float, float] | None] | None = None,
        short_video: str = "loop",
        decode_timeout: float | None = None,
    ):
        self.videos, self.labels, self.class_names = list(videos), list(labels), list(class_names)
        self.segments = list(segments) if segments is not None else [None] * len(self.videos)
        self.clip_len, self.stride, self.sampling, self.short_video = clip_len, stride, sampling, short_video
        self.transform = transform or ClipTransform()
        self.mean, self.std = tuple(mean), tuple(std)
        self.keep_frames, self.backend, self.seed, self.decode_timeout = keep_frames, backend, seed, decode_timeout
        self.bad: dict[str, str] = {}  # path → reason, of the files this process found unreadable

    @classmethod
    def from_samples(cls, samples: list[Sample], class_names: list[str], **kwargs) -> "VideoClipDataset":
        # a layout that gives a segment's start gives its stop
        segments = [None if s.start is None else (s.start, cast(float, s.stop)) for s in samples]
        return cls([s.path for s in samples], [s.label for s in samples], class_names, segments=segments, **kwargs)

    def frame_range(self, index: int, num_frames: int, fps: float) -> tuple[int, int]:
        """Frames ``[start, stop)`` of item ``index``: its segment's times at ``fps``, or the whole video."""
        segment = self.segments[index]
        if segment is None or fps <= 0:
            return 0, num_frames
        start = min(max(round(segment[0] * fps), 0), num_frames - 1)
        return start, min(max(round(segment[1] * fps), start + 1), num_frames)

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

        def choose(n: int, fps: float) -> np.ndarray:
            start, stop = self.frame_range(index, n, fps)
            return clip_indices(n, self.clip_len, self.stride, self.sampling, rng, start, stop, self.short_video)

        frames, indices = read_video_clip(path, choose, self.backend, self.decode_timeout)
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
        skipped: dict[str, str] = {}
        for i in (index + step for step in range(len(self))):
            i %= len(self)
            path = str(self.videos[i])
            if path in self.bad:
                skipped[path] = self.bad[path]
                continue
            try:
                item = self.load(i, epoch)
                item["skipped"] = skipped
                return item
            except DamagedVideo as exc:  # this clip crosses the damage; another clip of the file may not
                skipped[path] = first_line(exc)
            except VideoReadError as exc:
                skipped[path] = self.bad[path] = first_line(exc)
        raise SaliencyTubesError(f"none of the {len(self)} videos can be read (e.g. {next(iter(skipped.values()))})")


class MultiViewDataset(Dataset):
    """Test-time views of a :class:`VideoClipDataset`'s videos (or segments): ``clips`` clips evenly spaced over each
    × ``crops`` spatial crops (1: centre; 3: ends and centre of the long side, after the short side is resized to
    the input size). Item ``v·clips·crops + c·crops + k`` is crop ``k`` of clip ``c`` of video ``v``.

    Items carry ``video`` (the video's index), ``view`` (the clip) and ``crop``, so the model can average a video's
    softmax over its views. The last decoded clip is kept, so the crops of a clip (consecutive items) decode it
    once. An unreadable video cannot be replaced by another (that one would be counted twice): its items come
    with ``video = -1`` and a blank clip, and are left out of the figures; ``skipped`` names the file. Of a damaged
    video (:class:`DamagedVideo`) only the clips that need damaged frames are left out.
    """

    def __init__(self, base: VideoClipDataset, clips: int = 10, crops: int = 3):
        if clips < 1 or crops not in (1, 3):
            raise SaliencyTubesError(f"{clips} clips × {crops} crops: test with at least one clip, and 1 or 3 crops")
        self.base, self.clips, self.crops = base, clips, crops
        self._cached: tuple[tuple[int, int], torch.Tensor, np.ndarray] | None = None

    @property
    def views(self) -> int:
        return self.clips * self.crops

    def __len__(self) -> int:
        return len(self.base) * self.views

    def _clip(self, video: int, clip: int) -> tuple[torch.Tensor, np.ndarray]:
        """Clip ``clip`` of ``video``: uint8 ``T×3×H×W`` frames with the short side at the input size, and their indices."""
        if self._cached is None or self._cached[0] != (video, clip):
            base = self.base

            def choose(n: int, fps: float) -> np.ndarray:
                start, stop = base.frame_range(video, n, fps)
                return clip_indices(
                    n, base.clip_len, base.stride, "spaced", None, start, stop, base.short_video, (clip, self.clips)
                )

            frames, indices = read_video_clip(base.videos[video], choose, base.backend, base.decode_timeout)
            x = resize_short_side(torch.as_tensor(frames).permute(0, 3, 1, 2), base.transform.size)
            self._cached = ((video, clip), x, indices)
        return self._cached[1], self._cached[2]

    def __getitem__(self, index: int) -> dict:
        video, view = divmod(index, self.views)
        clip, crop = divmod(view, self.crops)
        base, size = self.base, self.base.transform.size
        item = {"label": base.labels[video], "video": video, "view": clip, "crop": crop, "skipped": {}}
        path = str(base.videos[video])
        reason = base.bad.get(path)
        if reason is None:
            try:
                frames, indices = self._clip(video, clip)
            except DamagedVideo as exc:
                reason = first_line(exc)
            except VideoReadError as exc:
                reason = base.bad[path] = first_line(exc)
        if reason is not None:
            item["skipped"] = {path: reason}
            blank = torch.zeros(base.clip_len, size, size, 3, dtype=torch.uint8)
            return {
                **item,
                "video": -1,
                "clip": normalize(blank, base.mean, base.std),
                "frame_indices": torch.zeros(base.clip_len, dtype=torch.long),
            }
        height, width = frames.shape[-2:]
        top, left = crop_offsets(height, width, size, self.crops)[crop]
        cropped = frames[..., top : top + size, left : left + size].permute(0, 2, 3, 1)
        return {**item, "clip": normalize(cropped, base.mean, base.std), "frame_indices": torch.as_tensor(indices)}


def clip_dataset(
    samples: list[Sample],
    class_names: list[str],
    *,
    train: bool,
    clip_len: int,
    stride: int,
    input_size: int,
    mean: tuple[float, float, float] = KINETICS_MEAN,
    std: tuple[float, float, float] = KINETICS_STD,
    backend: str = "auto",
    short_video: str = "loop",
    decode_timeout: float | None = None,
    train_scale: tuple[float, float] = (1.0, 1.15),
    hflip: bool = False,
    randaugment: tuple[int, int] | None = None,
) -> VideoClipDataset:
    """The dataset a split is read with: ``train`` (a random clip, random scale and crop, ``hflip``, ``randaugment``)
    or evaluation (the centre clip, the short side scaled to ``input_size``, the centre crop)."""
    return VideoClipDataset.from_samples(
        samples,
        class_names,
        clip_len=clip_len,
        stride=stride,
        transform=ClipTransform(
            input_size,
            train=train,
            scale=(train_scale[0], train_scale[1]),
            hflip=hflip,
            randaugment=(randaugment[0], randaugment[1]) if randaugment else None,
        ),
        sampling="random" if train else "center",
        mean=mean,
        std=std,
        backend=backend,
        short_video=short_video,
        decode_timeout=decode_timeout,
    )


def validation_dataset(
    root: str | Path,
    layout: str = "folder",
    options: LayoutOptions | None = None,
    *,
    class_names: list[str] | None,
    clip_len: int,
    stride: int,
    input_size: int,
    mean: tuple[float, float, float] = KINETICS_MEAN,
    std: tuple[float, float, float] = KINETICS_STD,
    backend: str = "auto",
    short_video: str = "loop",
    decode_timeout: float | None = None,
    split: str = "val",
) -> VideoClipDataset:
    """The ``val`` split (or ``split``, e.g. the synthetic set's held-out ``test``) of the dataset at ``root`` in
    ``layout``, read as in validation: the centre clip of each video (or segment), the centre crop;
    ``dataset.load(i, with_mask=True)`` adds the ground-truth masks where the dataset has them. ``class_names``
    (a model's) fixes the label order; ``None``: the layout's own."""
    samples, names = index(layout, root, split, class_names, options)
    return clip_dataset(
        samples,
        names,
        train=False,
        clip_len=clip_len,
        stride=stride,
        input_size=input_size,
        mean=mean,
        std=std,
        backend=backend,
        short_video=short_video,
        decode_timeout=decode_timeout,
    )
