"""Multi-clip × multi-crop testing: the views each video yields, and video-level accuracy (averaged softmax) against
clip-level accuracy on a case whose figures are known exactly."""

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from saliency_tubes.data import VideoDataModule
from saliency_tubes.data.sampling import VideoShardSampler, clip_indices
from saliency_tubes.data.transforms import crop_offsets
from saliency_tubes.errors import SaliencyTubesError
from saliency_tubes.lightning import VideoClassifier
from saliency_tubes.videoio import write_video

ARCH = {"width": 4, "conv1_t_size": 3, "no_max_pool": True}
DARK, BRIGHT = 30, 220


class BrightnessClassifier(VideoClassifier):
    """A hand-built model over the classes ``["bright", "dark"]``: "bright" when the clip's mean normalised value is
    above 0, with logits so far apart that the softmax is one-hot, so a video's averaged softmax is its clips' vote."""

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        bright = (clips.mean(dim=(1, 2, 3, 4)) > 0).float()
        return torch.stack([bright, 1 - bright], dim=1) * 40.0


def _video(path, first_bright: bool, switch: int, frames: int = 20, size=(32, 48)):
    """``frames`` frames, the first ``switch`` of one brightness and the rest of the other."""
    values = np.where(np.arange(frames) < switch, BRIGHT if first_bright else DARK, DARK if first_bright else BRIGHT)
    write_video(path, np.broadcast_to(values[:, None, None, None], (frames, *size, 3)).astype(np.uint8), fps=10)


@pytest.fixture(scope="module")
def light_dataset(tmp_path_factory):
    """Two classes, one training video each; three validation videos of 20 frames, tested as 5 clips of 4 frames
    (frames 0-3, 4-7, 8-11, 12-15, 16-19):

    - bright/a: dark for 4 frames, then bright: 4 of 5 clips right, the video right;
    - dark/b: bright for 8 frames, then dark: 3 of 5 right, the video right;
    - bright/c: dark for 12 frames, then bright: 2 of 5 right, the video wrong.

    Clip-level top-1 9/15, video-level 2/3.
    """
    root = tmp_path_factory.mktemp("light")
    for split, name, first_bright, switch in [
        ("train", "bright", True, 20),
        ("train", "dark", False, 20),
        ("val", "bright", False, 4),
        ("val", "dark", True, 8),
        ("val", "bright", False, 12),
    ]:
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        _video(folder / f"{len(list(folder.iterdir()))}_{switch}.mp4", first_bright, switch)
    return root


def _datamodule(root, **kwargs) -> VideoDataModule:
    args = dict(
        root=str(root), clip_len=4, stride=1, input_size=32, batch_size=8, num_workers=0, test_clips=5, test_crops=3
    )
    return VideoDataModule(**{**args, **kwargs})


def test_spaced_clips_cover_the_range_and_one_clip_is_the_centre():
    starts = [clip_indices(20, 4, 1, "spaced", start=0, stop=20, slot=(k, 5))[0] for k in range(5)]
    assert starts == [0, 4, 8, 12, 16]
    assert list(clip_indices(20, 4, 2, "spaced", slot=(0, 1))) == list(clip_indices(20, 4, 2, "center"))
    assert [clip_indices(40, 4, 2, "spaced", start=10, stop=30, slot=(k, 3))[0] for k in range(3)] == [10, 16, 23]


def test_three_crops_run_along_the_long_side():
    assert crop_offsets(32, 48, 32, 3) == [(0, 0), (0, 8), (0, 16)]
    assert crop_offsets(48, 32, 32, 3) == [(0, 0), (8, 0), (16, 0)]
    assert crop_offsets(32, 48, 32, 1) == [(0, 8)]


def test_views_per_video_and_crop_contents(tmp_path):
    """Every video gives clips × crops items in order, each with its video index; the three crops of a landscape
    video are its left, centre and right."""
    root = tmp_path / "stripes"
    frames = np.zeros((20, 32, 64, 3), np.uint8)  # four 16-px stripes: 0, 80, 160, 240
    for k in range(4):
        frames[:, :, 16 * k : 16 * (k + 1)] = 80 * k
    for split in ("train", "val"):
        (root / split / "only").mkdir(parents=True)
        for i in range(2):
            write_video(root / split / "only" / f"{i}.mp4", frames, fps=10)
    dm = _datamodule(root, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), test_clips=3)
    dm.setup("test")
    ds = dm.test_dataset
    assert len(ds) == 2 * 3 * 3
    keys = [(ds[i]["video"], ds[i]["view"], ds[i]["crop"]) for i in range(len(ds))]
    assert keys == [(v, c, k) for v in range(2) for c in range(3) for k in range(3)]
    column_means = [ds[k]["clip"].mean(dim=(0, 1, 2)) * 255 for k in range(3)]  # per column of the 32-px crop
    left, centre, right = (m.numpy() for m in column_means)
    assert np.abs(left - np.repeat([0, 80], 16)).max() < 8
    assert np.abs(centre - np.repeat([80, 160], 16)).max() < 8
    assert np.abs(right - np.repeat([160, 240], 16)).max() < 8
    assert [list(ds[3 * c]["frame_indices"]) for c in range(3)] == [[0, 1, 2, 3], [8, 9, 10, 11], [16, 17, 18, 19]]


def test_each_rank_gets_whole_videos():
    shares = [list(VideoShardSampler(5, 3, num_replicas=2, rank=r)) for r in range(2)]
    assert shares[0] == [0, 1, 2, 6, 7, 8, 12, 13, 14] and shares[1] == [3, 4, 5, 9, 10, 11]
    assert len(VideoShardSampler(5, 3, num_replicas=2, rank=1)) == 6


def test_video_accuracy_differs_from_clip_accuracy_as_constructed(light_dataset):
    dm = _datamodule(light_dataset)
    model = BrightnessClassifier(
        arch="resnet3d_10",
        num_classes=2,
        class_names=dm.class_names,
        arch_kwargs=ARCH,
        clip_len=4,
        stride=1,
        input_size=32,
    )
    assert dm.class_names == ["bright", "dark"]
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    (metrics,) = trainer.test(model, dm, verbose=False)
    assert metrics["test/clip_acc_top1"] == pytest.approx(9 / 15)
    assert metrics["test/video_acc_top1"] == pytest.approx(2 / 3)
    assert metrics["test/clip_acc_top5"] == metrics["test/video_acc_top5"] == 1.0  # two classes: top-2
    assert metrics["test/videos"] == 3


def test_trainer_test_on_the_tiny_dataset_leaves_the_resume_state_alone(tiny_dataset):
    pl.seed_everything(0, verbose=False)
    dm = _datamodule(tiny_dataset, test_clips=2, batch_size=16)
    model = VideoClassifier(
        arch="resnet3d_10",
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        arch_kwargs=ARCH,
        clip_len=4,
        stride=1,
        input_size=32,
    )
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    (metrics,) = trainer.test(model, dm, verbose=False)
    videos = len(dm.test_dataset.base)
    assert videos == 12 and len(dm.test_dataset) == videos * 2 * 3
    assert metrics["test/videos"] == videos
    assert {k for k in metrics if k.startswith("test/")} == {
        "test/clip_acc_top1",
        "test/clip_acc_top5",
        "test/video_acc_top1",
        "test/video_acc_top5",
        "test/videos",
    }
    assert all(0 <= metrics[k] <= 1 for k in metrics if "acc" in k)
    assert dm.state_dict() == {}  # testing never builds the training sampler, so checkpoints' resume state is untouched


def test_bad_test_settings_are_one_line_errors(tmp_path):
    with pytest.raises(SaliencyTubesError, match="1 or 3 crops"):
        VideoDataModule(root=str(tmp_path), test_crops=2)


@pytest.mark.slow
def test_train_py_test_under_ddp_matches_one_process(tmp_path, tiny_dataset):
    """``train.py test`` through LightningCLI, on 13 videos: two ranks (7 and 6 videos) report what one process does."""
    import shutil

    from helpers.cli import TINY_TRAIN, run_script
    from helpers.common import REPO

    root = tmp_path / "odd"
    shutil.copytree(tiny_dataset, root)
    shutil.copy(root / "val" / "grow" / "0000.mp4", root / "val" / "grow" / "0009.mp4")
    pl.seed_everything(0, verbose=False)
    dm = _datamodule(root, clip_len=4, stride=2)
    model = VideoClassifier(
        arch="resnet3d_10",
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        arch_kwargs={**ARCH, "stage_t_stride": 1},
        clip_len=4,
        stride=2,
        input_size=32,
    )
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(model, dm)
    ckpt = tmp_path / "model.ckpt"
    trainer.save_checkpoint(ckpt)
    common = [
        "test",
        "--config",
        str(REPO / "configs" / "default.yaml"),
        "--data.root",
        str(root),
        *TINY_TRAIN,
        "--data.test_clips",
        "3",
        "--ckpt_path",
        str(ckpt),
        "--trainer.logger",
        "false",
    ]
    tables = []
    for devices in (
        ["--trainer.devices", "1"],
        ["--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu"],
    ):
        proc = run_script("train.py", *common, *devices, cwd=tmp_path, env={"PYTHONPATH": str(REPO / "src")})
        assert proc.returncode == 0, proc.stderr[-3000:]
        tables.append([line for line in proc.stdout.splitlines() if "test/" in line])
    assert len(tables[0]) == 5 and tables[0] == tables[1]
    assert "13.0" in next(line for line in tables[0] if "test/videos" in line)
