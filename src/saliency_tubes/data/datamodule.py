"""LightningDataModule over a video dataset in one of several layouts (the built-in synthetic dataset by default)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal, cast

import pytorch_lightning as pl
import torch
from pytorch_lightning.overrides.distributed import UnrepeatedDistributedSampler
from pytorch_lightning.utilities import AttributeDict, rank_zero_warn
from torch.utils.data import DataLoader

from ..errors import SaliencyTubesError
from .datasets import MultiViewDataset, VideoClipDataset, clip_dataset, collate
from .layouts import LayoutName, LayoutOptions, Sample, index
from .sampling import ResumableSampler, VideoShardSampler
from .synthetic import SyntheticConfig, ensure_synthetic
from .transforms import KINETICS_MEAN, KINETICS_STD
from .video import video_info

DEFAULT_SYNTHETIC_ROOT = "data/synthetic"


class VideoDataModule(pl.LightningDataModule):
    """A video dataset's ``train`` and ``val`` splits, listed by ``layout``; ``test`` is multi-clip × multi-crop
    testing on the ``val`` split (none of the layouts has a third split: UCF101's and HMDB51's test lists are ``val``).

    Unreadable files (empty, truncated, not a video, too slow to decode) are skipped with one warning each
    and replaced by the next readable video; :attr:`skipped` lists them. A split with no readable video at
    all fails in :meth:`setup`.

    Args:
        root: dataset folder.
        layout: how ``root`` is organised: one of the registered layouts (:mod:`saliency_tubes.data.layouts`;
            ``python -m saliency_tubes.data.check --help`` describes each). The default, ``folder``, is
            ``ROOT/{train,val}/<class>/<video>``.
        annotations: folder of the annotation files, relative to ``root`` (default per layout).
        videos: folder of the videos, relative to ``root`` (default per layout).
        split: official split number, for the layouts that have several (UCF101, HMDB51: 1, 2 or 3).
        target: what a class is, for the layouts that have a choice (EPIC-KITCHENS: ``verb``, ``noun`` or
            ``action``, the (verb, noun) pairs seen in training).
        short_video: videos or segments shorter than a clip are looped (``loop``) or end on a repeated
            last frame (``pad``).
        decode_timeout: seconds after which one clip's decoding is given up on and the file skipped.
        synthetic: generate the built-in synthetic dataset into ``root`` if it is not there yet; ``None``
            (the default) does so only for the built-in location ``data/synthetic``, so a mistyped path to
            a real dataset is an error rather than a freshly generated synthetic set.
        clip_len: frames per clip.
        stride: distance between sampled frames.
        input_size: side of the square crop fed to the model.
        train_scale: range of the random short-side scale (relative to ``input_size``) in training.
        hflip: random horizontal flips in training (off for direction-dependent labels).
        randaugment: ``[ops, magnitude]`` of RandAugment in training (e.g. ``[2, 9]``), the same operations for
            every frame of a clip; ``null`` (default) for none.
        mean, std: normalisation, per RGB channel, of frames scaled to [0, 1].
        batch_size, num_workers: DataLoader settings.
        backend: ``auto`` (decord, falling back to PyAV), ``decord`` or ``pyav``.
        test_clips: clips per video (or segment) in testing, evenly spaced over it.
        test_crops: spatial crops per clip in testing: 3 (both ends and the centre of the long side) or 1 (centre).
    """

    def __init__(
        self,
        root: str = DEFAULT_SYNTHETIC_ROOT,
        synthetic: bool | None = None,
        clip_len: int = 8,
        stride: int = 2,
        input_size: int = 112,
        train_scale: tuple[float, float] = (1.0, 1.15),
        hflip: bool = False,
        randaugment: tuple[int, int] | None = None,
        mean: tuple[float, float, float] = KINETICS_MEAN,
        std: tuple[float, float, float] = KINETICS_STD,
        batch_size: int = 16,
        num_workers: int = 2,
        backend: Literal["auto", "decord", "pyav"] = "auto",
        layout: LayoutName = "folder",
        annotations: str | None = None,
        videos: str | None = None,
        split: int = 1,
        target: str = "verb",
        short_video: Literal["loop", "pad"] = "loop",
        decode_timeout: float = 60.0,
        test_clips: int = 10,
        test_crops: int = 3,
    ):
        super().__init__()
        self.save_hyperparameters()
        if test_clips < 1 or test_crops not in (1, 3):
            raise SaliencyTubesError(
                f"--data.test_clips {test_clips} --data.test_crops {test_crops}: at least 1 clip, and 1 or 3 crops"
            )
        self.root = Path(root)
        self._class_names: list[str] | None = None
        self._index: dict[str, tuple[list[Sample], list[str]]] = {}
        self._skipped: dict[str, str] = {}
        self.train_dataset: VideoClipDataset | None = None
        self.val_dataset: VideoClipDataset | None = None
        self.test_dataset: MultiViewDataset | None = None
        self._train_sampler: ResumableSampler | None = None
        self._resume_batches = 0
        self._resume_epoch: int | None = None

    @property
    def _hp(self) -> AttributeDict:
        """``self.hparams``, typed as what it is (attribute access)."""
        return cast(AttributeDict, self.hparams)

    def prepare_data(self) -> None:
        synthetic = self._hp.synthetic
        if synthetic is None:
            synthetic = self.root.resolve() == Path(DEFAULT_SYNTHETIC_ROOT).resolve()
        if synthetic:
            ensure_synthetic(self.root, SyntheticConfig())

    @property
    def class_names(self) -> list[str]:
        if self._class_names is None:
            self.prepare_data()  # the model needs the classes before Lightning calls prepare_data
            self._class_names = self._samples("train")[1]
        return self._class_names

    @property
    def skipped(self) -> dict[str, str]:
        """Unreadable files met so far (path → reason), in this process; ``len(skipped)`` is what to log as
        ``data/skipped``."""
        return dict(self._skipped)

    def _samples(self, split: str) -> tuple[list[Sample], list[str]]:
        if split not in self._index:
            hp = self._hp
            options = LayoutOptions(hp.annotations, hp.videos, hp.split, hp.target)
            names = None if split == "train" else self.class_names
            self._index[split] = index(hp.layout, self.root, split, names, options)
        return self._index[split]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def _dataset(self, split: str, train: bool) -> VideoClipDataset:
        hp = self._hp
        return clip_dataset(
            *self._samples(split),
            train=train,
            clip_len=hp.clip_len,
            stride=hp.stride,
            input_size=hp.input_size,
            mean=hp.mean,
            std=hp.std,
            backend=hp.backend,
            short_video=hp.short_video,
            decode_timeout=hp.decode_timeout,
            train_scale=hp.train_scale,
            hflip=hp.hflip,
            randaugment=hp.randaugment,
        )

    def setup(self, stage: str | None = None) -> None:
        if stage in (None, "fit") and self.train_dataset is None:
            self.train_dataset = self._dataset("train", train=True)
            self._probe(self.train_dataset, "train")
        if stage in (None, "fit", "validate") and self.val_dataset is None:
            self.val_dataset = self._dataset("val", train=False)
            self._warn_if_clips_outrun_videos(self._probe(self.val_dataset, "val"))
        if stage in (None, "test") and self.test_dataset is None:
            base = self._dataset("val", train=False)
            self._probe(base, "val")
            self.test_dataset = MultiViewDataset(base, self._hp.test_clips, self._hp.test_crops)

    def _probe(self, dataset: VideoClipDataset, split: str, probes: int = 8) -> list[tuple[int, Path]]:
        """``(frames, path)`` of a few videos spread over the split, probing on past those until one is readable,
        so a split where nothing can be read fails here with one line rather than in a DataLoader worker.
        The unreadable ones found are skipped from the start (the workers get a copy of ``dataset.bad``)."""
        n = len(dataset)
        picks = sorted({round(i * (n - 1) / max(probes - 1, 1)) for i in range(probes)})
        picked = set(picks)
        order = picks + [i for i in range(n) if i not in picked]
        lengths: list[tuple[int, Path]] = []
        for k, i in enumerate(order):
            if k >= len(picks) and lengths:
                break
            path = dataset.videos[i]
            try:
                info = video_info(path, self._hp.backend, self._hp.decode_timeout)
            except SaliencyTubesError as exc:
                dataset.bad[str(path)] = str(exc)
                self.note_skipped({str(path): str(exc)})
                continue
            start, stop = dataset.frame_range(i, info.num_frames, info.fps)
            lengths.append((stop - start, path))
        if not lengths:
            raise SaliencyTubesError(
                f"none of the {n} {split} videos of {self.root} can be read "
                f"(e.g. {next(iter(dataset.bad.values()))}); check them with python -m saliency_tubes.data.check"
            )
        return lengths

    def _warn_if_clips_outrun_videos(self, lengths: list[tuple[int, Path]]) -> None:
        """One warning when the clip spans more frames than the probed videos (or segments) have: they are looped
        or padded, not rejected."""
        hp = self._hp
        span = (hp.clip_len - 1) * hp.stride + 1
        if all(n < span for n, _ in lengths):
            n, path = max(lengths, key=lambda x: x[0])
            how = "looped" if hp.short_video == "loop" else "padded with their last frame"
            rank_zero_warn(
                f"clips span {span} frames (clip_len {hp.clip_len} × stride {hp.stride}) but the "
                f"videos are shorter (e.g. {path.name}: {n} frames); clips are {how}. Lower --data.clip_len or --data.stride"
            )

    def note_skipped(self, skipped: dict[str, str]) -> None:
        """Add unreadable files (path → reason) to :attr:`skipped`, with one warning for each new one."""
        for path, reason in skipped.items():
            if path not in self._skipped:
                self._skipped[path] = reason
                # every rank names the files it met (rank_zero_warn would drop the other ranks' files)
                warnings.warn(f"skipping unreadable video {reason}", UserWarning, stacklevel=2)

    def on_before_batch_transfer(self, batch, dataloader_idx: int):
        """Collect the files the batch's items skipped (found in the DataLoader workers) in the main process."""
        if isinstance(batch, dict) and "skipped" in batch:
            self.note_skipped(batch.pop("skipped"))
        return batch

    def _loader(self, dataset: VideoClipDataset | MultiViewDataset, shuffle: bool, sampler=None) -> DataLoader:
        workers = self._hp.num_workers
        trainer = self.trainer
        if sampler is None and not shuffle and trainer is not None and trainer.world_size > 1:
            # Lightning's default DistributedSampler pads the last ranks with repeats; evaluation must see
            # each video exactly once, so the ranks get disjoint, unpadded shares.
            sampler = UnrepeatedDistributedSampler(
                dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False
            )
        return DataLoader(
            dataset,
            batch_size=self._hp.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            drop_last=shuffle and len(dataset) > self._hp.batch_size,
            num_workers=workers,
            collate_fn=collate,
            persistent_workers=workers > 0,
            pin_memory=False,
        )

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        # torch's initial seed is what seed_everything set: the same again when a run is resumed
        dataset = self.train_dataset
        assert dataset is not None, "setup('fit') builds the training set"
        dataset.seed = torch.initial_seed() % 2**31
        sampler = ResumableSampler(dataset, num_replicas=world, rank=rank, seed=dataset.seed)
        self._train_sampler = sampler
        self._resume_sampler()
        return self._loader(dataset, shuffle=True, sampler=sampler)

    # The position within the training epoch travels in checkpoints, so a run resumed from a mid-epoch checkpoint
    # trains on exactly the batches the interrupted run had not reached (the sampler's order depends only on the
    # seed and the epoch, and each item's augmentation on seed, epoch and index). The epoch travels too: when
    # resuming, Lightning builds the loader's iterator before it sets the sampler's epoch and does not build it again
    # for the resumed epoch, and with workers the iterator draws its first indices from the sampler at once.
    def state_dict(self) -> dict:
        trainer = self.trainer
        if trainer is None or self._train_sampler is None:
            return {}
        done = cast(Any, trainer.fit_loop.epoch_loop.batch_progress.current).processed
        per_epoch = max(len(self._train_sampler) // self._hp.batch_size, 1)  # drop_last
        # a finished epoch: the next starts afresh
        epoch = self._train_sampler.epoch + done // per_epoch
        return {"train_batches_done": done % per_epoch, "train_epoch": epoch}

    def load_state_dict(self, state: dict) -> None:
        self._resume_batches = int(state.get("train_batches_done", 0))
        self._resume_epoch = state.get("train_epoch")
        self._resume_sampler()

    def _resume_sampler(self) -> None:
        """Start the training sampler where the checkpoint being resumed from left off (the loader may have been
        built before or after the checkpoint's state was loaded: Lightning sizes it early)."""
        sampler = self._train_sampler
        if sampler is None:
            return
        if self._resume_epoch is not None:
            sampler.set_epoch(int(self._resume_epoch))
        if self._resume_batches:
            sampler.skip(self._resume_batches * self._hp.batch_size)
        self._resume_batches, self._resume_epoch = 0, None  # once: a reloaded loader starts its epoch afresh

    def val_dataloader(self) -> DataLoader:
        assert self.val_dataset is not None, "setup('fit'/'validate') builds the validation set"
        return self._loader(self.val_dataset, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """All views of each video, in order; under DDP each rank gets whole videos (:class:`VideoShardSampler`)."""
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)
        dataset = self.test_dataset
        assert dataset is not None, "setup('test') builds the test set"
        sampler = VideoShardSampler(len(dataset.base), dataset.views, num_replicas=world, rank=rank)
        return self._loader(dataset, shuffle=False, sampler=sampler)
