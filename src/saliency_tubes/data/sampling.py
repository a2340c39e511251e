"""Which frames of a video make a clip: ``clip_len`` frames, ``stride`` apart."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset, DistributedSampler


def clip_indices(
    num_frames: int,
    clip_len: int,
    stride: int,
    mode: str = "center",
    rng: np.random.Generator | None = None,
    start: int = 0,
    stop: int | None = None,
    short: str = "loop",
    slot: tuple[int, int] = (0, 1),
) -> np.ndarray:
    """Frame indices of one clip inside frames ``[start, stop)`` (the whole video by default), so a labelled
    segment of a long video is read in place. ``mode`` is ``"random"`` (training), ``"center"`` (validation) or
    ``"spaced"`` (multi-clip testing: clip ``slot[0]`` of ``slot[1]`` clips whose starts are evenly spaced from the
    range's first possible start to its last, so together they cover the whole range; one clip is the centre one).

    A range shorter than the clip's span is never rejected: the clip is looped (``short="loop"``) or its
    last frame repeated (``short="pad"``).
    """
    if num_frames <= 0:
        raise ValueError("video has no frames")
    if mode not in ("random", "center", "spaced"):
        raise ValueError(f"unknown sampling mode {mode!r}")
    if short not in ("loop", "pad"):
        raise ValueError(f"unknown short-video mode {short!r} (loop|pad)")
    start = min(max(int(start), 0), num_frames - 1)
    stop = num_frames if stop is None else min(max(int(stop), start + 1), num_frames)
    length = stop - start
    span = (clip_len - 1) * stride + 1
    if length >= span:
        if mode == "random":
            offset = int((rng or np.random.default_rng()).integers(0, length - span + 1))
        elif mode == "spaced" and slot[1] > 1:
            offset = slot[0] * (length - span) // (slot[1] - 1)
        else:
            offset = (length - span) // 2
        return start + offset + stride * np.arange(clip_len)
    steps = stride * np.arange(clip_len)
    return start + (steps % length if short == "loop" else np.minimum(steps, length - 1))


def consecutive_clips(num_frames: int, clip_len: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Cover frames ``0, stride, 2·stride, … < num_frames`` with consecutive clips.

    Returns ``(frames, clips)``: the explained frame indices in order, and a ``N×clip_len`` array of
    clips whose concatenation starts with ``frames``; the last clip is padded by repeating its final
    frame, so only the first ``len(frames)`` entries of ``clips.ravel()`` are real.
    """
    frames = np.arange(0, num_frames, stride)
    n_clips = -(-len(frames) // clip_len)
    padded = np.concatenate([frames, np.full(n_clips * clip_len - len(frames), frames[-1])])
    return frames, padded.reshape(n_clips, clip_len)


class ResumableSampler(DistributedSampler):
    """Shuffled training order that is a function of ``(seed, epoch)`` only, yielding ``(index, epoch)`` keys so
    the dataset can seed each item's augmentation the same way.

    After :meth:`skip`, the next epoch's iteration leaves out its first ``n`` items: a run resumed from a
    mid-epoch checkpoint then sees exactly the items the interrupted run had not reached. Being a
    ``DistributedSampler``, it also shards across ranks (``num_replicas``/``rank``) and Lightning leaves it in place.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0, drop_last: bool = False):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=drop_last)
        self._skip = 0

    def skip(self, n: int) -> None:
        self._skip = n

    def __iter__(self):
        keys = [(int(i), self.epoch) for i in super().__iter__()][self._skip :]
        self._skip = 0
        return iter(keys)


class VideoShardSampler(DistributedSampler):
    """Test-time order over ``num_videos × views`` items (item ``v·views + k`` is view ``k`` of video ``v``): each
    rank gets whole videos (videos ``rank, rank + world, …``, all their views in order), unpadded.

    Keeping a video's views on one rank means each rank decodes each of its clips once (the crops of a clip are
    consecutive items) and no video is counted twice. Being a ``DistributedSampler``, Lightning leaves it in place.
    """

    def __init__(self, num_videos: int, views: int, num_replicas: int = 1, rank: int = 0):
        self.num_videos, self.views = num_videos, views
        self.num_replicas, self.rank, self.epoch = num_replicas, rank, 0
        self.shuffle, self.drop_last, self.seed = False, False, 0  # what Lightning reads of a DistributedSampler
        self.videos = range(rank, num_videos, num_replicas)

    def __len__(self) -> int:
        return len(self.videos) * self.views

    def __iter__(self):
        return (v * self.views + k for v in self.videos for k in range(self.views))
