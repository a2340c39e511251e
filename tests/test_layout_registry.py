"""The layout registry: a layout defined here, in a test file, works through the data module, one epoch of training
and the data check; unknown layouts fail with one line; the validation split of any layout for --evaluate."""

import warnings

import numpy as np
import pytest
import torch

from saliency_tubes.data import KINETICS_MEAN, KINETICS_STD, VideoDataModule, validation_dataset
from saliency_tubes.data.layouts import Layout, Sample, layout_names, register_layout
from saliency_tubes.data.layouts.base import read_csv
from saliency_tubes.errors import SaliencyTubesError

from helpers.layouts import _dm, _ucf, _video

BUILT_IN = {"folder", "frames", "ucf101", "hmdb51", "kinetics", "epic_kitchens"}


@register_layout
class Toy(Layout):
    """``ROOT/{train,val}.csv`` with rows ``path,label``, the paths relative to the video folder (``clips``)."""

    name = "toy"
    description = "ROOT/{train,val}.csv (path,label), videos in ROOT/clips"
    videos = "clips"

    def index(self, root, split, class_names, options):
        rows = read_csv(root / f"{split}.csv", {"path", "label"}, "a toy dataset has train.csv and val.csv")
        names = class_names or sorted({r["label"] for r in rows})
        videos = self.videos_dir(root, options)
        return [Sample(videos / r["path"], names.index(r["label"])) for r in rows], names


def _toy(root):
    """Train: 2 videos of each class and one listed but missing; val: 1 of each."""
    rows = {
        "train": [("a0.mp4", "wave"), ("b0.mp4", "clap"), ("a1.mp4", "wave"), ("b1.mp4", "clap"), ("gone.mp4", "wave")],
        "val": [("c0.mp4", "clap"), ("c1.mp4", "wave")],
    }
    for split, listed in rows.items():
        for k, (path, _) in enumerate(listed):
            if path != "gone.mp4":
                _video(root / "clips" / path, value=30 * k)
        (root / f"{split}.csv").write_text("path,label\n" + "".join(f"{p},{label}\n" for p, label in listed))


def test_a_layout_registered_in_a_test_file_trains_for_an_epoch(tmp_path):
    import pytorch_lightning as pl

    from saliency_tubes.lightning import VideoClassifier

    _toy(tmp_path)
    dm = _dm(tmp_path, layout="toy")
    with pytest.warns(UserWarning, match=r"toy train: 1 annotated videos are missing and left out \(gone.mp4\)"):
        assert dm.class_names == ["clap", "wave"]
    pl.seed_everything(0, verbose=False)
    model = VideoClassifier(
        arch="resnet3d_10",
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        clip_len=4,
        stride=2,
        input_size=32,
        arch_kwargs={"width": 4, "conv1_t_size": 3, "no_max_pool": True},
    )
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, datamodule=dm)
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == 2  # 4 videos, batches of 2
    assert [p.name for p in dm.train_dataset.videos] == ["a0.mp4", "b0.mp4", "a1.mp4", "b1.mp4"]
    assert dm.train_dataset.labels == [1, 0, 1, 0]
    assert (dm.val_dataset.labels, dm.skipped) == ([0, 1], {})
    batch = next(iter(dm.val_dataloader()))
    assert batch["clip"].shape == (2, 3, 4, 32, 32)


def test_the_data_check_knows_a_registered_layout(tmp_path, capsys):
    from saliency_tubes.data.check import main

    _toy(tmp_path)
    assert main(["--data.root", str(tmp_path), "--data.layout", "toy"]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "warning: toy train: 1 annotated videos are missing and left out (gone.mp4)" in err
    assert "checked 6/6 files, 0 unreadable" in err
    (tmp_path / "clips" / "b1.mp4").write_text("not a video")
    assert main(["--data.root", str(tmp_path), "--data.layout", "toy"]) == 1
    assert capsys.readouterr().out.startswith(str(tmp_path / "clips" / "b1.mp4"))
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "  toy: ROOT/{train,val}.csv (path,label), videos in ROOT/clips" in capsys.readouterr().out


def test_an_unknown_layout_is_one_line_naming_the_registered_ones(tmp_path):
    assert BUILT_IN | {"toy"} <= set(layout_names())
    with pytest.raises(SaliencyTubesError) as err:
        _ = _dm(tmp_path, layout="nope").class_names
    assert str(err.value) == f"unknown data layout 'nope' (one of {', '.join(layout_names())})"


def test_the_training_cli_validates_layout_and_other_choices():
    """``--data.layout`` (the layouts registered at import), ``--data.short_video`` and ``--data.backend`` are
    checked by the parser LightningCLI builds, which lists the choices in ``--help``."""
    from jsonargparse import ArgumentError
    from pytorch_lightning.cli import LightningArgumentParser

    parser = LightningArgumentParser(exit_on_error=False)
    parser.add_lightning_class_args(VideoDataModule, "data")
    assert parser.parse_args(["--data.layout", "epic_kitchens"]).data.layout == "epic_kitchens"
    for key, value in (("layout", "nope"), ("short_video", "crop"), ("backend", "opencv")):
        with pytest.raises(ArgumentError, match=f"data.{key}"):
            parser.parse_args([f"--data.{key}", value])
    usage = parser.format_help()
    assert all(name in usage.split("--data.layout {")[1].split("}")[0].split(",") for name in BUILT_IN)


def test_register_layout_needs_a_name_of_its_own_and_an_index():
    with pytest.raises(TypeError, match="needs its own name"):

        @register_layout
        class Nameless(Layout):
            def index(self, root, split, class_names, options):
                return [], []

    with pytest.raises(TypeError, match="implements index"):

        @register_layout
        class Lazy(Layout):
            name = "lazy"

    with pytest.raises(ValueError, match="'ucf101' is registered twice"):

        @register_layout
        class Impostor(Layout):
            name = "ucf101"

            def index(self, root, split, class_names, options):
                return [], []

    assert "lazy" not in layout_names()


def test_validation_dataset_reads_centre_clips_in_any_layout(tmp_path, tiny_dataset):
    from saliency_tubes.cli.evaluate import validation_set
    from saliency_tubes.cli.explain import build_parser
    from saliency_tubes.config import DataConfig
    from saliency_tubes.models.io import ModelInfo

    classes = _ucf(tmp_path)
    ds = validation_dataset(tmp_path, "ucf101", class_names=classes, clip_len=4, stride=2, input_size=32)
    assert (len(ds), ds.class_names, ds.labels) == (2, classes, [0, 1])
    for i in range(len(ds)):
        item = ds.load(i, with_mask=True)
        assert item["clip"].shape == (3, 4, 32, 32) and "mask" not in item  # no ground truth in UCF101
        np.testing.assert_array_equal(item["frame_indices"], [2, 4, 6, 8])  # the centre clip of 12 frames
        red = item["frames"][:, 16, 16, 0].float()  # the frames named: red encodes the frame number
        np.testing.assert_allclose(red, 10 * item["frame_indices"].float(), atol=4)

    info = ModelInfo(
        "x", 2, classes, DataConfig(clip_len=4, stride=2, input_size=32, mean=KINETICS_MEAN, std=KINETICS_STD)
    )
    args = build_parser().parse_args(
        ["--checkpoint", "-", "--evaluate", "--data.root", str(tmp_path), "--data.layout", "ucf101"]
    )
    assert validation_set(args, info).videos == ds.videos

    synthetic = validation_dataset(tiny_dataset, class_names=None, clip_len=4, stride=2, input_size=16)
    item = synthetic.load(0, with_mask=True)  # the synthetic set has masks: --evaluate scores localisation
    assert item["clip"].shape == (3, 4, 16, 16)
    assert item["mask"].shape == (4, 16, 16) and item["mask"].dtype == torch.bool and item["mask"].any()

    # --data.split_name: the synthetic set's held-out split, with its masks
    args = build_parser().parse_args(
        ["--checkpoint", "-", "--evaluate", "--data.root", str(tiny_dataset), "--data.split_name", "test"]
    )
    assert args.data_split_name == "test"
    names = sorted(d.name for d in (tiny_dataset / "train").iterdir())
    held_out = validation_set(args, ModelInfo("x", len(names), names, info.data))
    assert len(held_out) == 6 and {p.parent.parent.name for p in held_out.videos} == {"test"}
    assert held_out.load(0, with_mask=True)["mask"].any()
