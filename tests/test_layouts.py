"""Dataset layouts, clip sampling inside segments, and skipping unreadable files, on tiny real videos."""

import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from saliency_tubes.data import clip_indices
from saliency_tubes.errors import SaliencyTubesError

from helpers.common import REPO
from helpers.layouts import _dm, _epic, _folder, _hmdb, _jpeg_folders, _kinetics, _ucf, _video


def _epoch(dm, loader):
    """Every batch of one pass, with the skipped files handed to the data module as Lightning would."""
    return [dm.on_before_batch_transfer(b, 0) for b in loader]


def _labels_by_name(dm, batches, dataset):
    return {
        dataset.videos[i].stem: dm.class_names[int(label)]
        for b in batches
        for i, label in zip(b["index"].tolist(), b["label"].tolist(), strict=False)
    }


def _check_loaders(dm, expected_val):
    """Both loaders yield full clips; the val items carry the labels in ``expected_val`` (video stem → class)."""
    dm.setup("fit")
    train = _epoch(dm, dm.train_dataloader())
    assert train and all(b["clip"].shape[1:] == (3, 4, 32, 32) for b in train)
    for b in train:  # each training video sits in a folder, or has a name, of its class
        for i, label in zip(b["index"].tolist(), b["label"].tolist(), strict=False):
            assert dm.class_names[label] in str(dm.train_dataset.videos[i])
    val = _epoch(dm, dm.val_dataloader())
    assert _labels_by_name(dm, val, dm.val_dataset) == expected_val


def test_folder_layout_is_the_default(tmp_path):
    _folder(tmp_path)
    dm = _dm(tmp_path)
    assert dm.class_names == ["jump", "run"]
    _check_loaders(dm, {"jump_val0": "jump", "run_val0": "run"})


def test_frames_layout_reads_jpeg_folders(tmp_path):
    _jpeg_folders(tmp_path)
    dm = _dm(tmp_path, layout="frames")
    _check_loaders(dm, {"jump_val0": "jump", "run_val0": "run"})
    item = dm.val_dataset.load(0)
    np.testing.assert_array_equal(item["frame_indices"], [1, 3, 5, 7])  # centre clip of 10 frames


def test_ucf101_layout(tmp_path):
    classes = _ucf(tmp_path)
    dm = _dm(tmp_path, layout="ucf101")
    assert dm.class_names == classes
    _check_loaders(dm, {f"v_{c}_g01_c01": c for c in classes})
    with pytest.raises(SaliencyTubesError, match=r"trainlist02.txt does not exist") as err:
        _ = _dm(tmp_path, layout="ucf101", split=2).class_names
    assert "\n" not in str(err.value)


def test_hmdb51_layout(tmp_path):
    _hmdb(tmp_path)
    dm = _dm(tmp_path, layout="hmdb51")
    assert dm.class_names == ["brush_hair", "cartwheel"]
    _check_loaders(dm, {"brush_hair_clip2": "brush_hair", "cartwheel_clip2": "cartwheel"})
    assert len(dm.train_dataset) == 4  # use 0: in neither split
    with pytest.raises(SaliencyTubesError, match=r"no \*_test_split3.txt files"):
        _ = _dm(tmp_path, layout="hmdb51", split=3).class_names


def test_kinetics_layout_warns_about_missing_videos(tmp_path):
    _kinetics(tmp_path)
    dm = _dm(tmp_path, layout="kinetics")
    with pytest.warns(UserWarning, match=r"1 annotated videos are missing and left out \(gone1_000003_000013.mp4\)"):
        assert dm.class_names == ["abseiling", "air drumming"]
    with pytest.warns(UserWarning, match="gone2"):
        _check_loaders(dm, {"ddd_000020_000030": "abseiling", "eee_000007_000017": "air drumming"})


def test_epic_kitchens_segments_are_sampled_inside_their_frame_range(tmp_path):
    _epic(tmp_path)
    dm = _dm(tmp_path, layout="epic_kitchens", batch_size=3)
    with pytest.warns(UserWarning, match="1 segments of verb classes not in training are left out"):
        dm.setup("fit")
    assert dm.class_names == ["take", "verb_1", "verb_2", "open"]  # the official verb ids
    ranges = {0: (5, 15), 1: (20, 39), 2: (10, 13)}
    for epoch in range(3):
        for i, (lo, hi) in ranges.items():
            item = dm.train_dataset[(i, epoch)]
            got = item["frame_indices"].numpy()
            assert ((got >= lo) & (got < hi)).all(), (i, got)
            assert (item["clip"].shape, item["label"]) == ((3, 4, 32, 32), [0, 3, 0][i])
    np.testing.assert_array_equal(dm.train_dataset[(2, 0)]["frame_indices"], [10, 12, 11, 10])  # looped
    np.testing.assert_array_equal(dm.val_dataset[0]["frame_indices"], [6, 8, 10, 12])  # centre of frames 0–19
    batch = next(iter(dm.val_dataloader()))
    assert batch["label"].tolist() == [3, 3]
    dm.val_dataset.keep_frames = True  # the decoded frames are the ones named: red encodes the frame number
    item = dm.val_dataset.load(1)
    np.testing.assert_allclose(item["frames"][:, 16, 16, 0].float(), 10 * item["frame_indices"].float(), atol=4)

    action = _dm(tmp_path, layout="epic_kitchens", target="action")
    assert action.class_names == ["take plate", "take door", "open door"]  # (verb, noun) pairs sorted by ids
    with pytest.warns(UserWarning, match="2 segments of action classes"):
        action.setup("validate")
    assert [action.val_dataset.labels, action.val_dataset.segments] == [[2], [(1.0, 3.0)]]
    assert _dm(tmp_path, layout="epic_kitchens", target="noun").class_names[5] == "door"


def test_clip_indices_respect_segment_and_short_mode():
    np.testing.assert_array_equal(clip_indices(100, 4, 2, "center", start=10, stop=20), [11, 13, 15, 17])
    np.testing.assert_array_equal(clip_indices(100, 4, 2, "center", start=10, stop=13), [10, 12, 11, 10])
    np.testing.assert_array_equal(clip_indices(100, 4, 2, "center", start=10, stop=13, short="pad"), [10, 12, 12, 12])
    np.testing.assert_array_equal(clip_indices(3, 4, 2, short="pad"), [0, 2, 2, 2])
    rng = np.random.default_rng(0)
    starts = {int(clip_indices(100, 4, 2, "random", rng, start=50, stop=60)[0]) for _ in range(200)}
    assert starts == set(range(50, 54))


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, foreign_video):
    """Good videos (one of 3 frames, one 97×131) and bad files, in the folder layout."""
    root = tmp_path_factory.mktemp("zoo")
    for split in ("train", "val"):
        for cls in ("a", "b"):
            for k in range(2):
                _video(root / split / cls / f"{split}_{cls}{k}.mp4", value=50 * k)
    _video(root / "train" / "a" / "three_frames.mp4", n=3)
    shutil.copy(foreign_video, root / "train" / "b" / "odd_97x131.mp4")
    (root / "train" / "a" / "zero.mp4").write_bytes(b"")
    good = (root / "train" / "a" / "train_a0.mp4").read_bytes()
    (root / "train" / "b" / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (root / "train" / "b" / "text.mp4").write_text("this is not a video\n")
    (root / "val" / "a" / "zero_val.mp4").write_bytes(b"")
    return root


BAD = {"zero.mp4", "truncated.mp4", "text.mp4", "zero_val.mp4"}


@pytest.mark.parametrize("workers", [0, 2])
def test_bad_files_are_skipped_with_one_warning_each(zoo, workers):
    dm = _dm(zoo, batch_size=9, num_workers=workers)
    with pytest.warns(UserWarning) as at_setup:
        dm.setup("fit")  # the probes meet the bad files first
    assert sorted(_warned(at_setup)) == sorted(BAD)
    train = dm.train_dataset
    good = {i for i, p in enumerate(train.videos) if p.name not in BAD}
    assert len(train) == 9 and len(good) == 6
    for dataset in (train, dm.val_dataset):  # forget them: the workers (when there are some) must find them again
        dataset.bad.clear()
    dm._skipped.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = _epoch(dm, dm.train_dataloader())
        assert [b["clip"].shape[0] for b in batches] == [9]  # a full batch: the bad items replaced
        assert {i for b in batches for i in b["index"].tolist()} == good  # every good clip used
        val = _epoch(dm, dm.val_dataloader())
        assert sum(len(b["label"]) for b in val) == 5
    assert sorted(_warned(caught)) == sorted(BAD)  # once each, naming the file
    assert {p.split("/")[-1] for p in dm.skipped} == BAD
    assert "empty file" in dm.skipped[str(zoo / "train" / "a" / "zero.mp4")]
    three = train.load(good_index(train, "three_frames.mp4"))
    assert three["frame_indices"].tolist() == [0, 2, 1, 0]  # looped, not rejected


def _warned(records) -> list[str]:
    """The file names the "skipping unreadable video" warnings name."""
    return [
        str(w.message).split(":")[0].split("/")[-1] for w in records if "skipping unreadable video" in str(w.message)
    ]


def test_a_hanging_decode_is_given_up_on(tmp_path):
    import time

    from saliency_tubes.data import DecodeTimeout, read_video_clip

    path = _video(tmp_path / "v.mp4")
    started = time.monotonic()
    with pytest.raises(DecodeTimeout, match="v.mp4: decoding took longer than 0.2 s"):
        read_video_clip(path, lambda n, fps: time.sleep(10), backend="pyav", timeout=0.2)
    assert time.monotonic() - started < 5


def good_index(dataset, name):
    return next(i for i, p in enumerate(dataset.videos) if p.name == name)


def test_a_split_with_nothing_readable_fails_at_setup(tmp_path):
    for cls in ("a", "b"):
        for split in ("train", "val"):
            (tmp_path / split / cls).mkdir(parents=True)
            (tmp_path / split / cls / "empty.mp4").write_bytes(b"")
            (tmp_path / split / cls / "text.avi").write_text("no video")
    dm = _dm(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SaliencyTubesError, match="none of the 4 train videos") as err:
            dm.setup("fit")
    assert "\n" not in str(err.value)


def _check(*args):
    return subprocess.run(
        [sys.executable, "-m", "saliency_tubes.data.check", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        timeout=120,
    )


def test_check_cli(zoo, tmp_path, capsys):
    bad = _check("--data.root", str(zoo))
    assert bad.returncode == 1, bad.stderr
    listed = bad.stdout.strip().splitlines()
    assert sorted(line.split(":")[0].split("/")[-1] for line in listed) == sorted(BAD)
    assert any("empty file" in line for line in listed)
    assert "checked 14/14 files, 4 unreadable" in bad.stderr

    missing = _check("--data.root", str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1

    from saliency_tubes.data.check import main  # the other outcomes in-process: each interpreter start costs seconds

    for split in ("train", "val"):
        _video(tmp_path / "good" / split / "a" / "v.mp4")
    capsys.readouterr()
    assert main(["--data.root", str(tmp_path / "good")]) == 0
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as usage:
        main(["--data.root", str(tmp_path / "good"), "--data.layout", "bogus"])
    assert usage.value.code == 2


def test_skipped_reach_the_main_process_through_a_trainer(zoo):
    """With 2 workers under a real Trainer: the data module collects the workers' skipped files."""
    import pytorch_lightning as pl

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def training_step(self, batch, _):
            assert "skipped" not in batch
            return self.fc(batch["clip"].mean((2, 3, 4))).logsumexp(1).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = _dm(zoo, batch_size=3, num_workers=2)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(Tiny(), datamodule=dm)
    assert {p.split("/")[-1] for p in dm.skipped} == BAD


def test_replacements_are_deterministic_and_short_videos_can_be_padded(zoo):
    """Which video replaces a bad one does not depend on what a process already knows (exact resume), and
    ``short_video: pad`` repeats the last frame instead of looping."""
    dm = _dm(zoo, short_video="pad")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dm.setup("fit")
    train = dm.train_dataset
    warm = [(train[(i, 3)]["index"], train[(i, 3)]["frame_indices"].tolist()) for i in range(len(train))]
    train.bad.clear()
    cold = [(train[(i, 3)]["index"], train[(i, 3)]["frame_indices"].tolist()) for i in range(len(train))]
    assert warm == cold
    assert train.load(good_index(train, "three_frames.mp4"))["frame_indices"].tolist() == [0, 2, 2, 2]
