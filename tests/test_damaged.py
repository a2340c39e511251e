"""Damaged videos that still open: a faststart MP4 (index at the front) cut in its media data, and one whose
middle bytes are zeroed (index and size intact). Read up to the damage, never guessed; skipped in training with
one warning each, nothing else lost; listed by the check; neither hangs nor crashes a reader."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

from saliency_tubes.data import DamagedVideo, VideoReadError, read_frames, video_info
from saliency_tubes.data.video import decord
from saliency_tubes.videoio import write_video

from helpers.common import REPO
from helpers.damage import cut_in_data, zero_middle
from helpers.layouts import _dm, _frames, _video

DAMAGED = {"cut.mp4", "zeroed.mp4", "zeroed_val.mp4"}
BACKENDS = ["auto", "pyav", pytest.param("decord", marks=pytest.mark.skipif(decord is None, reason="no decord"))]


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """The folder layout: 2 good videos per class and split (12 frames each), and the damaged copies of good ones."""
    root = tmp_path_factory.mktemp("damaged")
    for split in ("train", "val"):
        for cls in ("a", "b"):
            for k in range(2):
                _video(root / split / cls / f"{split}_{cls}{k}.mp4", value=50 * k)
    cut_in_data(root / "train" / "a" / "train_a0.mp4", root / "train" / "a" / "cut.mp4")
    zero_middle(root / "train" / "a" / "train_a1.mp4", root / "train" / "b" / "zeroed.mp4")
    zero_middle(root / "val" / "a" / "val_a0.mp4", root / "val" / "b" / "zeroed_val.mp4")
    return root


def _red(frames: np.ndarray) -> list[int]:
    return frames[:, 16, 16, 0].astype(int).tolist()


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_a_cut_file_is_read_up_to_the_cut(tmp_path, backend):
    """The header lists 24 frames; those before the cut decode as written (red = 10·t), each one after is refused
    with DamagedVideo naming it. decord cannot open such a file at all, so ``auto`` reads it with PyAV."""
    cut = cut_in_data(_video(tmp_path / "v.mp4", n=24), tmp_path / "cut.mp4")
    assert video_info(cut, backend).num_frames == 24
    readable = []
    for t in range(24):
        try:
            readable.append(_red(read_frames(cut, [t], backend))[0])
        except DamagedVideo as exc:
            assert f"frame {t} requested, but the video ends after {len(readable)} of the 24" in str(exc)
    assert 0 < len(readable) < 24
    np.testing.assert_allclose(readable, 10 * np.arange(len(readable)), atol=4)
    if decord is not None:
        with pytest.raises(VideoReadError, match="cut.mp4: cannot decode as video"):
            read_frames(cut, [0], "decord")


def _textured(path, n=12):
    """Frames with noise in blue (a large key frame to damage) and 10·t in red."""
    frames = _frames(n)
    frames[..., 2] = np.random.default_rng(0).integers(0, 256, frames.shape[1:3])[None]
    return write_video(path, frames, fps=10.0, preset="ultrafast")


def test_frames_the_decoder_had_to_guess_are_refused(tmp_path, capsys):
    """Zeroed data inside the key frame: FFmpeg conceals it, marks that frame corrupt, and every frame predicted
    from it. PyAV refuses them rather than train on invented pixels; decord has no such mark (it hands back the
    guesses without an error: see the README on damaged files), so the check decodes with PyAV and lists the file."""
    zeroed = zero_middle(_textured(tmp_path / "v" / "a" / "v.mp4"), tmp_path / "v" / "a" / "zeroed.mp4", 0.3, 0.4)
    for t in (0, 5, 11):
        with pytest.raises(DamagedVideo, match=r"zeroed.mp4: damaged at frame 0: the decoder had to guess its pixels"):
            read_frames(zeroed, [t], "pyav")
    np.testing.assert_allclose(
        _red(read_frames(tmp_path / "v" / "a" / "v.mp4", [0, 5, 11], "pyav")), [0, 50, 110], atol=8
    )

    from saliency_tubes.data.check import check_file

    for backend in ("auto", "pyav"):
        assert "zeroed.mp4: damaged at frame 0: the decoder had to guess" in str(check_file(zeroed, backend))
        assert check_file(tmp_path / "v" / "a" / "v.mp4", backend) is None


def _warned(records) -> list[str]:
    return [
        str(w.message).split(":")[0].split("/")[-1] for w in records if "skipping unreadable video" in str(w.message)
    ]


@pytest.mark.parametrize("backend, workers", [("auto", 0), ("auto", 2), ("pyav", 0), *[(b, 0) for b in BACKENDS[2:]]])
def test_damaged_files_are_skipped_with_one_warning_each(damaged, backend, workers):
    """Two epochs of both loaders: every clip of these files crosses the damage, so they are replaced by the next
    readable video (full batches, every good video used) and named once each, however often they come up."""
    dm = _dm(damaged, batch_size=6, num_workers=workers, backend=backend)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dm.setup("fit")
        train = dm.train_dataset
        good = {i for i, p in enumerate(train.videos) if p.name not in DAMAGED}
        assert len(train) == 6 and len(good) == 4
        for _ in range(2):
            batches = [dm.on_before_batch_transfer(b, 0) for b in dm.train_dataloader()]
            assert [b["clip"].shape[0] for b in batches] == [6]  # full: the damaged items replaced
            assert {i for b in batches for i in b["index"].tolist()} == good  # every good video used
            val = [dm.on_before_batch_transfer(b, 0) for b in dm.val_dataloader()]
            assert sum(len(b["label"]) for b in val) == 5
            assert all(np.isfinite(b["clip"].numpy()).all() for b in batches + val)
    assert sorted(_warned(caught)) == sorted(DAMAGED)  # once each, over both epochs
    assert {p.split("/")[-1] for p in dm.skipped} == DAMAGED


def test_a_tiny_training_epoch_over_damaged_files(damaged):
    """A real Trainer with 2 DataLoader workers: one warning per damaged file, every batch full, every good video
    trained on, and the run ends."""
    import pytorch_lightning as pl

    seen: list[list[int]] = []

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 2)

        def training_step(self, batch, _):
            seen.append(batch["index"].tolist())
            return torch.nn.functional.cross_entropy(self.fc(batch["clip"].mean((2, 3, 4))), batch["label"])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = _dm(damaged, batch_size=3, num_workers=2)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        accelerator="cpu",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(Tiny(), datamodule=dm)
    good = {i for i, p in enumerate(dm.train_dataset.videos) if p.name not in DAMAGED}
    assert [len(b) for b in seen] == [3, 3] and {i for b in seen for i in b} == good
    assert sorted(_warned(caught)) == ["cut.mp4", "zeroed.mp4", "zeroed_val.mp4"]  # zeroed_val: at setup's probe


@pytest.mark.parametrize("backend", BACKENDS)
def test_check_lists_damaged_files(damaged, backend):
    """As a user runs it: exit 1, the damaged files listed one line each, and nothing from FFmpeg on stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "saliency_tubes.data.check", "--data.root", str(damaged), "--data.backend", backend],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    listed = proc.stdout.strip().splitlines()
    assert sorted(line.split(":")[0].split("/")[-1] for line in listed) == sorted(DAMAGED), proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "checked 11/11 files, 3 unreadable", proc.stderr
    assert all(line.startswith("checked ") for line in proc.stderr.strip().splitlines()), proc.stderr


FUZZ = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import numpy as np
    from saliency_tubes.data import VideoReadError, read_frames
    sys.path.insert(0, "tests")
    from helpers.damage import cut_in_data, zero_middle
    from helpers.layouts import _video

    tmp, backend = Path(sys.argv[1]), sys.argv[2]
    good = _video(tmp / "good.mp4", n=24)
    files = [cut_in_data(good, tmp / f"cut{k}.mp4", k / 10) for k in range(1, 10)]
    files += [zero_middle(good, tmp / f"zero{k}.mp4", k / 10, k / 10 + 0.1) for k in range(0, 9, 2)]
    files += [zero_middle(good, tmp / "zero_wide.mp4", 0.05, 0.95)]
    read = refused = 0
    for path in files:
        for start in range(0, 24, 3):
            try:
                read_frames(path, np.arange(start, min(start + 8, 24)), backend, timeout=20)
                read += 1
            except VideoReadError:
                refused += 1
    print(f"{len(files)} files: {read} clips read, {refused} refused")
    """
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_damaged_files_neither_hang_nor_crash_a_reader(tmp_path, backend):
    """Cuts at every tenth of the data and zeroed windows across it, every clip read in a separate process: it ends
    normally (no native crash, no hang past the time limit), each read a clip or a VideoReadError."""
    proc = subprocess.run(
        [sys.executable, "-c", FUZZ, str(tmp_path), backend],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "15 files: " in proc.stdout and " refused" in proc.stdout


FORK = textwrap.dedent(
    """
    import sys
    import warnings
    from pathlib import Path
    sys.path.insert(0, "tests")
    from helpers.damage import cut_in_data
    from helpers.layouts import _dm, _video
    from saliency_tubes.data import DamagedVideo, read_frames

    warnings.simplefilter("ignore")
    root, backend, tmp = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    cut = cut_in_data(_video(tmp / "v.mp4", n=24), tmp / "cut.mp4")
    for t in range(24):  # the main process meets damage (as a probe, a check or a sanity step could) ...
        try:
            read_frames(cut, [t], backend)
        except DamagedVideo:
            pass
    dm = _dm(root, batch_size=6, num_workers=2, backend=backend)
    dm.setup("fit")
    for epoch in range(2):  # ... then forks its workers
        assert [len(b["index"]) for b in dm.train_dataloader()] == [6]
    print("done")
    """
)


@pytest.mark.parametrize("backend", ["auto", "pyav"])
def test_workers_forked_after_a_damaged_read_do_not_hang(damaged, backend, tmp_path):
    """A decoder that failed in the main process must not be freed in a forked DataLoader worker: its FFmpeg
    threads are not copied by fork, and freeing it there joins them forever. Run in its own process: a hang is a
    timeout here, not a stuck test session."""
    proc = subprocess.run(
        [sys.executable, "-c", FORK, str(damaged), backend, str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]
