import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict

import numpy as np

from saliency_tubes.data import SYNTHETIC_CLASSES, load_mask, read_frames, video_info
from saliency_tubes.data.synthetic import MARKER, SyntheticConfig, ensure_synthetic, generate, render_video

from helpers.common import REPO, TINY


def test_layout_masks_and_marker(tiny_dataset):
    for split, per_class in (
        ("train", TINY.train_per_class),
        ("val", TINY.val_per_class),
        ("test", TINY.test_per_class),
    ):
        assert sorted(d.name for d in (tiny_dataset / split).iterdir()) == sorted(SYNTHETIC_CLASSES)
        for cls in SYNTHETIC_CLASSES:
            videos = sorted((tiny_dataset / split / cls).glob("*.mp4"))
            assert len(videos) == per_class
            for v in videos:
                assert v.with_suffix(".mask.npz").is_file()
    assert json.loads((tiny_dataset / MARKER).read_text())["config"]["seed"] == TINY.seed


def test_decoding_round_trip(tiny_dataset):
    """What was rendered is what decord and PyAV decode (up to H.264 loss), and the mask fits the frames."""
    video = tiny_dataset / "train" / "move_right" / "0001.mp4"
    rng = np.random.default_rng([TINY.seed, 0, SYNTHETIC_CLASSES.index("move_right"), 1])
    rendered, masks, _ = render_video("move_right", rng, TINY)
    info = video_info(video)
    assert (info.num_frames, info.height, info.width) == (TINY.num_frames, TINY.size, TINY.size)
    assert info.fps == TINY.fps
    decoded = read_frames(video, np.arange(TINY.num_frames))
    assert decoded.shape == rendered.shape and decoded.dtype == np.uint8
    # H.264 smooths the per-pixel noise away; 4×4 block averages must survive the round trip.
    blocks = lambda v: v.reshape(v.shape[0], v.shape[1] // 4, 4, v.shape[2] // 4, 4, 3).mean((2, 4))  # noqa: E731
    assert np.abs(blocks(decoded.astype(float)) - blocks(rendered.astype(float))).mean() < 4
    pyav = read_frames(video, [5, 1, 5], backend="pyav")
    assert np.abs(pyav.astype(int) - decoded[[5, 1, 5]]).max() <= 2
    np.testing.assert_array_equal(load_mask(video), masks)


def test_deterministic_in_seed(tmp_path, tiny_dataset):
    cfg = SyntheticConfig(train_per_class=1, val_per_class=1, test_per_class=0, num_frames=12, size=32, seed=TINY.seed)
    again = generate(tmp_path / "again", cfg)
    for cls in SYNTHETIC_CLASSES:
        a, b = tiny_dataset / "val" / cls / "0000.mp4", again / "val" / cls / "0000.mp4"
        np.testing.assert_array_equal(load_mask(a), load_mask(b))
        np.testing.assert_array_equal(read_frames(a, range(12)), read_frames(b, range(12)))
    other = generate(
        tmp_path / "other",
        SyntheticConfig(train_per_class=1, val_per_class=1, test_per_class=0, num_frames=12, size=32, seed=99),
    )
    assert not np.array_equal(
        load_mask(other / "val" / "grow" / "0000.mp4"), load_mask(again / "val" / "grow" / "0000.mp4")
    )


def test_same_seed_gives_identical_files_in_another_process(tmp_path):
    """102 videos generated here (a process whose heap holds torch, pytest and earlier tests) and in a fresh child
    process are byte-identical and decode to identical frames: every machine trains on the same data."""
    cfg = SyntheticConfig(train_per_class=14, val_per_class=2, test_per_class=1, num_frames=12, size=32, seed=11)
    here = generate(tmp_path / "here", cfg)
    child = tmp_path / "child"
    code = (
        "import sys; from saliency_tubes.data.synthetic import SyntheticConfig, generate; "
        f"generate(sys.argv[1], SyntheticConfig(**{asdict(cfg)!r}))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, "-c", code, str(child)], env=env, check=True, timeout=120)
    videos = sorted(p.relative_to(here) for p in here.rglob("*.mp4"))
    assert len(videos) == 102 and videos == sorted(p.relative_to(child) for p in child.rglob("*.mp4"))
    differing = [str(v) for v in videos if (here / v).read_bytes() != (child / v).read_bytes()]
    assert not differing, f"{len(differing)} of {len(videos)} videos differ between processes: {differing[:5]}"
    for v in videos:
        frames = range(cfg.num_frames)
        np.testing.assert_array_equal(
            read_frames(here / v, frames, backend="pyav"), read_frames(child / v, frames, backend="pyav")
        )
        np.testing.assert_array_equal(load_mask(here / v), load_mask(child / v))


def test_classes_are_defined_by_motion():
    """The actor's mask moves (or changes size) the way its class says, and all discs share one colour."""
    cfg = SyntheticConfig(num_frames=20, size=64, partial_motion_share=0.0)
    for cls in SYNTHETIC_CLASSES:
        frames, masks, moving = render_video(cls, np.random.default_rng(5), cfg)
        assert moving.all()
        ys, xs = [], []
        for m in masks[[0, -1]]:
            yy, xx = np.nonzero(m)
            ys.append(yy.mean())
            xs.append(xx.mean())
        area0, area1 = masks[0].sum(), masks[-1].sum()
        expected = {
            "move_right": xs[1] - xs[0] > 15,
            "move_left": xs[0] - xs[1] > 15,
            "move_down": ys[1] - ys[0] > 15,
            "move_up": ys[0] - ys[1] > 15,
            "grow": area1 > 2 * area0,
            "shrink": area0 > 2 * area1,
        }
        assert expected[cls], cls


def test_partial_motion_keeps_actor_still_outside_its_interval():
    cfg = SyntheticConfig(num_frames=20, size=64, partial_motion_share=1.0)
    frames, masks, moving = render_video("move_right", np.random.default_rng(1), cfg)
    assert 0 < moving.sum() < len(moving)
    still = np.nonzero(~moving)[0]
    first_moving = np.nonzero(moving)[0][0]
    for t in still[still < first_moving]:
        np.testing.assert_array_equal(masks[t], masks[0])


def test_ensure_reuses_and_refuses_foreign_folders(tmp_path, caplog, capsys):
    cfg = SyntheticConfig(train_per_class=1, val_per_class=1, test_per_class=0, num_frames=12, size=32)
    with caplog.at_level(logging.INFO):
        root = ensure_synthetic(tmp_path / "s", cfg)
    said = [r.getMessage() for r in caplog.records if r.name.startswith("pytorch_lightning")]  # rank_zero_info
    assert said[0].startswith("Generating the synthetic dataset (12 videos)") and "ready" in said[1]
    assert capsys.readouterr().out == ""  # the library logs, it does not print
    stamp = (root / "train" / "grow" / "0000.mp4").stat().st_mtime_ns
    ensure_synthetic(root, cfg, verbose=False)
    assert (root / "train" / "grow" / "0000.mp4").stat().st_mtime_ns == stamp
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("do not delete")
    import pytest

    from saliency_tubes.errors import SaliencyTubesError

    with pytest.raises(SaliencyTubesError, match="refusing"):
        ensure_synthetic(foreign, cfg, verbose=False)
    assert (foreign / "precious.txt").read_text() == "do not delete"


def test_test_split_is_held_out_and_added_to_a_dataset_written_before_it(tmp_path, tiny_dataset, caplog):
    """``test/`` has its own videos (none of train's or val's), and adding it changes no other split; a dataset whose
    marker predates the test split gets it added, not silently reused without it nor rewritten whole."""
    from saliency_tubes.data import VideoDataModule

    frames = lambda p: read_frames(p, range(TINY.num_frames))  # noqa: E731
    test_video = tiny_dataset / "test" / "grow" / "0000.mp4"
    for split in ("train", "val"):
        assert not np.array_equal(frames(test_video), frames(tiny_dataset / split / "grow" / "0000.mp4"))
    dm = VideoDataModule(root=str(tiny_dataset), clip_len=4, input_size=32, num_workers=0)
    dm.setup("fit")
    used = {*dm.train_dataset.videos, *dm.val_dataset.videos}
    assert used and not any(p.parent.parent.name == "test" for p in used)  # training never reads test/

    old = SyntheticConfig(**{**asdict(TINY), "test_per_class": 0})
    root = generate(tmp_path / "old", old)
    marker = json.loads((root / MARKER).read_text())
    del marker["config"]["test_per_class"]  # as written before the test split existed
    (root / MARKER).write_text(json.dumps(marker))
    assert not (root / "test").exists()
    stamp = (root / "train" / "grow" / "0000.mp4").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        ensure_synthetic(root, TINY)
    assert any("Adding the held-out test split (6 videos)" in r.getMessage() for r in caplog.records)
    assert (root / "train" / "grow" / "0000.mp4").stat().st_mtime_ns == stamp  # train/ and val/ kept
    for cls in SYNTHETIC_CLASSES:  # the same test videos as a fresh generation
        assert (root / "test" / cls / "0000.mp4").read_bytes() == (
            tiny_dataset / "test" / cls / "0000.mp4"
        ).read_bytes()
        np.testing.assert_array_equal(
            load_mask(root / "test" / cls / "0000.mp4"), load_mask(tiny_dataset / "test" / cls / "0000.mp4")
        )
    assert json.loads((root / MARKER).read_text())["config"] == asdict(TINY)
    assert ensure_synthetic(root, TINY) == root and (root / "train" / "grow" / "0000.mp4").stat().st_mtime_ns == stamp
