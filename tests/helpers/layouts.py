"""Builders of tiny datasets in every built-in layout, from tiny real videos, and the data module the tests use."""

import numpy as np
from PIL import Image

from saliency_tubes.data import VideoDataModule
from saliency_tubes.videoio import write_video


def _frames(n: int, value: int = 0, size: int = 32) -> np.ndarray:
    """``n`` frames whose red channel encodes the frame number (10·t) and green the video (``value``)."""
    f = np.zeros((n, size, size, 3), np.uint8)
    f[..., 0] = (10 * np.arange(n))[:, None, None]
    f[..., 1] = value
    return f


def _video(path, n=12, value=0, fps=10.0):
    return write_video(path, _frames(n, value), fps=fps, preset="ultrafast")


def _dm(root, **kw):
    args = dict(clip_len=4, stride=2, input_size=32, batch_size=2, num_workers=0)
    return VideoDataModule(root=str(root), **{**args, **kw})


def _folder(root):
    for split, n in (("train", 2), ("val", 1)):
        for cls in ("jump", "run"):
            for k in range(n):
                _video(root / split / cls / f"{cls}_{split}{k}.mp4")


def _jpeg_folders(root):
    for split, n in (("train", 2), ("val", 1)):
        for cls in ("jump", "run"):
            for k in range(n):
                folder = root / split / cls / f"{cls}_{split}{k}"
                folder.mkdir(parents=True)
                for t, frame in enumerate(_frames(10)):
                    Image.fromarray(frame).save(folder / f"img_{t:05d}.jpg", quality=95)


def _ucf(root):
    classes = ["ApplyEyeMakeup", "Basketball"]
    ann = root / "ucfTrainTestlist"
    ann.mkdir(parents=True)
    (ann / "classInd.txt").write_text("".join(f"{i} {c}\n" for i, c in enumerate(classes, 1)))
    train, test = [], []
    for label, c in enumerate(classes, 1):
        for g in (8, 9, 1):
            rel = f"{c}/v_{c}_g{g:02d}_c01.avi"
            _video(root / rel, value=40 * label)
            (test if g == 1 else train).append(rel)
    (ann / "trainlist01.txt").write_text("".join(f"{r} {classes.index(r.split('/')[0]) + 1}\n" for r in train))
    (ann / "testlist01.txt").write_text("".join(f"{r}\n" for r in test))
    return classes


def _hmdb(root):
    ann = root / "testTrainMulti_7030_splits"
    ann.mkdir()
    for label, cls in enumerate(["brush_hair", "cartwheel"]):
        lines = []
        for k, use in enumerate((1, 1, 2, 0)):
            name = f"{cls}_clip{k}.avi"
            _video(root / cls / name, value=40 * label)
            lines.append(f"{name} {use} \n")
        (ann / f"{cls}_test_split1.txt").write_text("".join(lines))


def _kinetics(root):
    """Train: 3 videos (and 1 annotated but missing), val: 2 (and 1 missing)."""
    ann = root / "annotations"
    ann.mkdir()
    head = "label,youtube_id,time_start,time_end,split\n"
    train = [
        ("abseiling", "aaa", 10),
        ("abseiling", "bbb", 0),
        ("air drumming", "ccc", 5),
        ("air drumming", "gone1", 3),
    ]
    val = [("abseiling", "ddd", 20), ("air drumming", "eee", 7), ("air drumming", "gone2", 1)]
    for split, rows, nested in (("train", train, True), ("validate", val, False)):
        (ann / f"{split}.csv").write_text(head + "".join(f"{lab},{y},{s},{s + 10},{split}\n" for lab, y, s in rows))
        for label, y, s in rows:
            if not y.startswith("gone"):
                folder = root / split / label if nested else root / split
                _video(folder / f"{y}_{s:06d}_{s + 10:06d}.mp4")


EPIC_HEAD = (
    "narration_id,participant_id,video_id,narration_timestamp,start_timestamp,stop_timestamp,start_frame,"
    "stop_frame,narration,verb,verb_class,noun,noun_class,all_nouns,all_noun_classes\n"
)


def _epic(root):
    """Two long videos (40 frames at 10 fps; one nested with an upper-case .MP4, one flat) and their segments."""
    _video(root / "videos" / "P01" / "P01_01.MP4", n=40, value=10)
    _video(root / "videos" / "P02_01.mp4", n=40, value=20)
    ann = root / "annotations"
    ann.mkdir()

    def row(i, video, start, stop, verb, vc, noun, nc):
        ts = [f"00:00:{s:06.3f}" for s in (start, stop)]
        return (
            f"{video}_{i},{video[:3]},{video},{ts[0]},{ts[0]},{ts[1]},0,0,{verb} {noun},{verb},{vc},{noun},{nc},[],[]\n"
        )

    train = [
        row(0, "P01_01", 0.5, 1.5, "take", 0, "plate", 2),
        row(1, "P01_01", 2.0, 3.9, "open", 3, "door", 5),
        row(2, "P02_01", 1.0, 1.3, "take", 0, "door", 5),
    ]  # 3 frames: looped inside the segment
    val = [
        row(3, "P02_01", 0.0, 2.0, "open", 3, "plate", 2),
        row(4, "P02_01", 1.0, 3.0, "open", 3, "door", 5),
        row(5, "P02_01", 0.0, 1.0, "wash", 7, "pan", 9),
    ]  # a verb training never saw
    (ann / "EPIC_100_train.csv").write_text(EPIC_HEAD + "".join(train))
    (ann / "EPIC_100_validation.csv").write_text(EPIC_HEAD + "".join(val))
