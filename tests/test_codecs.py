"""Codecs and containers other than H.264 MP4, frame-rate metadata, display rotation, and one epoch of training
on every dataset layout, all on tiny real videos."""

import warnings
from fractions import Fraction

import numpy as np
import pytest

from saliency_tubes.data import read_clip, read_frames, video_info

from helpers.decoders import backends
from helpers.layouts import _dm, _epic, _folder, _hmdb, _jpeg_folders, _kinetics, _ucf

H, W, N = 32, 64, 8


def _content(n=N, h=H, w=W) -> np.ndarray:
    """Frame ``t`` is grey at 20 + 25·t with a white square in its top-left corner (shows the orientation)."""
    f = np.empty((n, h, w, 3), np.uint8)
    f[...] = (20 + 25 * np.arange(n))[:, None, None, None]
    f[:, :8, :8] = 255
    return f


def _write(path, codec, pix_fmt="yuv420p", rate=Fraction(25, 2), frames=None, rotation=0):
    import av

    frames = _content() if frames is None else frames
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


CODECS = [
    ("mpeg4", "avi", "yuv420p", Fraction(25, 2)),
    ("libvpx-vp9", "webm", "yuv420p", Fraction(30000, 1001)),
    ("libvpx", "mkv", "yuv420p", Fraction(25, 2)),
    ("mjpeg", "avi", "yuvj420p", Fraction(12)),
    ("libx264", "mkv", "yuv420p", Fraction(30000, 1001)),
]


@pytest.mark.parametrize("codec,ext,pix_fmt,rate", CODECS, ids=[f"{c}-{e}" for c, e, *_ in CODECS])
@pytest.mark.parametrize("backend", backends("decord", "pyav", "auto"))
def test_codecs_and_containers_decode_with_every_backend(tmp_path, codec, ext, pix_fmt, rate, backend):
    path = _write(tmp_path / f"v.{ext}", codec, pix_fmt, rate)
    info = video_info(path, backend=backend)
    assert (info.num_frames, info.height, info.width) == (N, H, W)
    assert info.fps == pytest.approx(float(rate), rel=1e-6)
    expected = _content()
    got = read_frames(path, [5, 0, 7, 5], backend=backend)
    assert got.shape == (4, H, W, 3) and got.dtype == np.uint8
    assert np.abs(got.astype(int) - expected[[5, 0, 7, 5]]).mean() < 3  # lossy, but the right frames in order
    frames, indices = read_clip(path, lambda n: np.arange(n), backend=backend)
    assert indices.tolist() == list(range(N))
    assert np.abs(frames.astype(int) - expected).mean((1, 2, 3)).max() < 3


@pytest.mark.parametrize("width", [16, 24, 48, 72])
def test_widths_decord_0_6_cannot_decode_are_read_by_auto_as_pyav_reads_them(tmp_path, width):
    """decord 0.6 cannot copy out frames 16, 24, 48 or 72 pixels wide ("The size must exactly match"); ``auto`` then
    decodes them with PyAV. Whichever decoder does it (and with or without decord), ``auto`` gives PyAV's frames."""
    frames = _content(4, 32, width)
    path = _write(tmp_path / f"w{width}.mp4", "libx264", frames=frames)
    got = read_frames(path, range(4), backend="auto")
    assert np.abs(got.astype(int) - frames).mean() < 3
    np.testing.assert_array_equal(got, read_frames(path, range(4), backend="pyav"))
    assert (video_info(path).height, video_info(path).width) == (32, width)


@pytest.mark.parametrize("rotation", [90, 180, 270])
@pytest.mark.parametrize("backend", backends("decord", "pyav"))
def test_display_rotation_gives_upright_frames(tmp_path, backend, rotation):
    """A display matrix (what phones write) survives muxing; both backends turn the frames upright (decord does
    so itself, PyAV's frames are turned by ``frame.rotation``) and ``video_info`` reports the upright size."""
    path = _write(tmp_path / "phone.mp4", "libx264", frames=_content(4), rotation=rotation)
    upright = np.rot90(_content(4), rotation // 90, axes=(1, 2))
    info = video_info(path, backend=backend)
    assert (info.height, info.width, info.rotation) == (*upright.shape[1:3], rotation)
    got = read_frames(path, [3, 1], backend=backend)
    assert got.shape == (2, *upright.shape[1:]) and np.abs(got.astype(int) - upright[[3, 1]]).mean() < 3


def _zoo(root):
    """The folder layout with good videos in other codecs and containers, a 3-frame video and an odd-sized one, and a
    zero-byte file, a truncated MP4 and a text file named .mp4, among the train videos."""
    _folder(root)
    for codec, ext, pix_fmt, rate in CODECS[:4]:
        _write(root / "train" / "jump" / f"{codec}.{ext}", codec, pix_fmt, rate)
    _write(root / "train" / "run" / "three_frames.mp4", "libx264", frames=_content(n=3))
    _write(root / "train" / "run" / "odd_97x131.mp4", "libx264", "yuv444p", frames=_content(h=97, w=131))
    good = (root / "train" / "jump" / "jump_train0.mp4").read_bytes()
    (root / "train" / "jump" / "zero.mp4").write_bytes(b"")
    (root / "train" / "run" / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (root / "train" / "run" / "text.mp4").write_text("this is not a video\n")


LAYOUTS = {
    "folder": (_folder, 4),
    "frames": (_jpeg_folders, 4),
    "ucf101": (_ucf, 4),
    "hmdb51": (_hmdb, 4),
    "kinetics": (_kinetics, 3),
    "epic_kitchens": (_epic, 3),
    "folder_with_bad_files": (_zoo, 13),
}
BAD = {"zero.mp4", "truncated.mp4", "text.mp4"}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.filterwarnings(
    "ignore:kinetics train. 1 annotated videos are missing"
)  # the builder leaves one out on purpose
def test_one_epoch_of_training_on_each_layout(tmp_path, layout):
    import pytorch_lightning as pl

    from saliency_tubes.lightning import VideoClassifier

    build, n_train = LAYOUTS[layout]
    build(tmp_path)
    bad = BAD if build is _zoo else set()
    dm = _dm(tmp_path, layout="folder" if bad else layout, batch_size=1)
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
    seen = set()

    class Seen(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.update(batch["index"].tolist())

    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        callbacks=[Seen()],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kinetics' missing videos, epic's unseen verbs, the bad files
        trainer.fit(model, datamodule=dm)
    assert trainer.fit_loop.epoch_loop.batch_progress.total.completed == n_train
    videos = dm.train_dataset.videos
    assert {videos[i].name for i in seen} == {p.name for p in videos if p.name not in bad}
    assert {p.split("/")[-1] for p in dm.skipped} == bad
