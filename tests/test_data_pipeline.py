import warnings

import numpy as np
import pytest
import torch

from saliency_tubes.data import (
    ClipTransform,
    VideoDataModule,
    clip_indices,
    consecutive_clips,
    normalize,
    resize_short_side,
    scan_folder,
)
from saliency_tubes.data.datasets import VideoClipDataset
from saliency_tubes.errors import SaliencyTubesError


def test_clip_indices():
    np.testing.assert_array_equal(clip_indices(20, 4, 2, "center"), [6, 8, 10, 12])
    rng = np.random.default_rng(0)
    starts = {int(clip_indices(20, 4, 2, "random", rng)[0]) for _ in range(200)}
    assert starts == set(range(0, 14))
    np.testing.assert_array_equal(clip_indices(3, 4, 2, "center"), [0, 2, 1, 0])  # short video: looped


def test_consecutive_clips_cover_every_stride_frame_once():
    frames, clips = consecutive_clips(23, clip_len=4, stride=2)
    np.testing.assert_array_equal(frames, np.arange(0, 23, 2))
    assert clips.shape == (3, 4)
    np.testing.assert_array_equal(clips.ravel()[: len(frames)], frames)
    assert (clips.ravel()[len(frames) :] == frames[-1]).all()


def test_resize_short_side_keeps_aspect():
    x = torch.zeros(2, 3, 97, 131, dtype=torch.uint8)
    assert resize_short_side(x, 48).shape == (2, 3, 48, 65)
    assert resize_short_side(x.transpose(-1, -2), 48).shape == (2, 3, 65, 48)


def test_transform_applies_the_same_geometry_to_mask():
    frames = np.zeros((4, 40, 60, 3), np.uint8)
    mask = np.zeros((4, 40, 60), bool)
    frames[:, 10:20, 25:35] = 255
    mask[:, 10:20, 25:35] = True
    for train in (False, True):
        t = ClipTransform(32, train=train, scale=(1.0, 1.3), hflip=True)
        rng = np.random.default_rng(1)
        for _ in range(5):
            f, m = t(frames, mask, rng)
            assert f.shape == (4, 32, 32, 3) and f.dtype == torch.uint8 and m.shape == (4, 32, 32)
            bright = f[..., 0] > 127
            assert (bright == m).float().mean() > 0.97


def test_normalize_layout():
    frames = torch.full((4, 8, 8, 3), 255, dtype=torch.uint8)
    x = normalize(frames, (0.5, 0.5, 0.5), (0.5, 0.25, 0.5))
    assert x.shape == (3, 4, 8, 8)
    assert torch.allclose(x[1], torch.full((4, 8, 8), 2.0))


def test_scan_folder_errors(tmp_path, tiny_dataset):
    with pytest.raises(SaliencyTubesError, match="does not exist"):
        scan_folder(tmp_path, "train")
    videos, labels, names = scan_folder(tiny_dataset, "val")
    assert names == sorted(names) and len(videos) == 12 and sorted(set(labels)) == list(range(6))
    with pytest.raises(SaliencyTubesError, match="not in the training split"):
        scan_folder(tiny_dataset, "val", class_names=names[:3])


def test_dataset_items_keep_frames_indices_and_masks(tiny_dataset):
    videos, labels, names = scan_folder(tiny_dataset, "val")
    ds = VideoClipDataset(videos, labels, names, clip_len=4, stride=2, transform=ClipTransform(32), keep_frames=True)
    item = ds[0]
    assert item["clip"].shape == (3, 4, 32, 32) and item["clip"].dtype == torch.float32
    assert item["frames"].shape == (4, 32, 32, 3) and item["frames"].dtype == torch.uint8
    np.testing.assert_array_equal(item["frame_indices"], [2, 4, 6, 8])  # centre clip of 12 frames
    with_mask = ds.load(0, with_mask=True)
    assert with_mask["mask"].shape == (4, 32, 32) and with_mask["mask"].any()


def test_datamodule_loaders(tiny_dataset):
    dm = VideoDataModule(root=str(tiny_dataset), clip_len=4, stride=2, input_size=32, batch_size=5, num_workers=0)
    assert dm.num_classes == 6 and dm.class_names[0] == "grow"
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["clip"].shape == (5, 3, 4, 32, 32) and batch["label"].shape == (5,)
    assert sum(len(b["label"]) for b in dm.val_dataloader()) == 12


def test_clips_longer_than_the_videos_are_looped_with_one_warning(tiny_dataset):
    dm = VideoDataModule(root=str(tiny_dataset), clip_len=40, stride=2, input_size=32, batch_size=4, num_workers=0)
    with pytest.warns(UserWarning, match="clips are looped") as record:
        dm.setup("validate")
    assert len([w for w in record if "clips are looped" in str(w.message)]) == 1
    assert dm.val_dataset[0]["clip"].shape == (3, 40, 32, 32)
    dm = VideoDataModule(root=str(tiny_dataset), clip_len=4, stride=2, input_size=32, batch_size=4, num_workers=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dm.setup("validate")


def test_randaugment_draws_once_per_clip_and_from_the_item_generator():
    from saliency_tubes.data.transforms import ClipTransform

    frame = np.random.default_rng(0).integers(0, 256, (1, 40, 48, 3), dtype=np.uint8)
    frames = np.repeat(frame, 6, axis=0)  # a still clip
    plain = ClipTransform(32, train=True, scale=(1.0, 1.0))
    augmented = ClipTransform(32, train=True, scale=(1.0, 1.0), randaugment=(2, 9))
    outs = [augmented(frames, rng=np.random.default_rng(seed))[0] for seed in range(6)]
    for out in outs:
        assert (out == out[:1]).all()  # the same operations on every frame
    torch.testing.assert_close(augmented(frames, rng=np.random.default_rng(3))[0], outs[3])  # reproducible
    base = [plain(frames, rng=np.random.default_rng(seed))[0] for seed in range(6)]
    assert any(not torch.equal(a, b) for a, b in zip(outs, base, strict=False))


def test_randaugment_from_the_data_module(tiny_dataset):
    dm = VideoDataModule(
        root=str(tiny_dataset), clip_len=4, input_size=32, batch_size=4, num_workers=0, randaugment=(2, 9)
    )
    dm.setup("fit")
    assert dm.train_dataset.transform.randaugment == (2, 9) and dm.val_dataset.transform.train is False
    batch = next(iter(dm.train_dataloader()))
    assert batch["clip"].shape == (4, 3, 4, 32, 32) and torch.isfinite(batch["clip"]).all()
