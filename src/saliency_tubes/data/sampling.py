"""Which frames of a video make a clip: ``clip_len`` frames, ``stride`` apart."""
from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset, DistributedSampler


def clip_indices(num_frames: int, clip_len: int, stride: int, mode: str = "center", rng: np.random.Generator | None = None) -> np.ndarray:
    """Frame indices of one clip. ``mode`` is ``"random"`` (training) or ``"center"`` (validation).

    Videos shorter than the clip's span are looped.
    """
    if num_frames <= 0:
        raise ValueError("video has no frames")
    span = (clip_len - 1) * stride + 1
    if num_frames >= span:
        if mode == "random":
            start = int((rng or np.random.default_rng()).integers(0, num_frames - span + 1))
        elif mode == "center":
            start = (num_frames - span) // 2
        else:
            raise ValueError(f"unknown sampling mode {mode!r}")
        return start + stride * np.arange(clip_len)
    return (stride * np.arange(clip_len)) % num_frames


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
