"""Dataset layouts: each index function lists a split's samples and the class names, from folders or from the
official annotation files, without opening any video (bad files are dealt with while loading).

``split`` is ``"train"`` or ``"val"``; ``class_names`` (the training split's) fixes the label order of ``"val"``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pytorch_lightning.utilities import rank_zero_warn

from ..errors import SaliencyTubesError
from .video import FRAME_EXTENSIONS, VIDEO_EXTENSIONS

LAYOUTS = ("folder", "frames", "ucf101", "hmdb51", "kinetics", "epic_kitchens")
# Where each layout looks, relative to the root, when ``annotations``/``videos`` are not given.
DEFAULT_ANNOTATIONS = {
    "ucf101": "ucfTrainTestlist",
    "hmdb51": "testTrainMulti_7030_splits",
    "kinetics": "annotations",
    "epic_kitchens": "annotations",
}
DEFAULT_VIDEOS = {"ucf101": ".", "hmdb51": ".", "kinetics": ".", "epic_kitchens": "videos"}


@dataclass(frozen=True)
class Sample:
    """One labelled video, or the segment ``[start, stop)`` seconds of a long video (read in place, never cut)."""

    path: Path
    label: int
    start: float | None = None
    stop: float | None = None


@dataclass(frozen=True)
class LayoutOptions:
    annotations: str | None = None
    videos: str | None = None
    split: int = 1
    target: str = "verb"


def index(
    layout: str,
    root: str | Path,
    split: str,
    class_names: list[str] | None = None,
    options: LayoutOptions = LayoutOptions(),
) -> tuple[list[Sample], list[str]]:
    """``(samples, class_names)`` of one split of a dataset in ``layout``."""
    if layout not in LAYOUTS:
        raise SaliencyTubesError(f"unknown data layout {layout!r} (one of {', '.join(LAYOUTS)})")
    root = Path(root)
    if not root.is_dir():
        raise SaliencyTubesError(f"dataset folder {root} does not exist")
    if layout in ("folder", "frames"):
        return scan_classes(root, split, class_names, frames=layout == "frames")
    annotations = root / (options.annotations or DEFAULT_ANNOTATIONS[layout])
    videos = root / (options.videos or DEFAULT_VIDEOS[layout])
    if layout == "ucf101":
        samples, names = _ucf101(annotations, videos, split, options.split)
    elif layout == "hmdb51":
        samples, names = _hmdb51(annotations, videos, split, options.split)
    elif layout == "kinetics":
        samples, names = _kinetics(annotations, videos, split, class_names)
    else:
        samples, names = _epic_kitchens(annotations, videos, split, options.target)
    return _existing(samples, f"{layout} {split}"), names


def _is_video(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()


def _is_frame_folder(p: Path) -> bool:
    return p.is_dir() and any(f.suffix.lower() in FRAME_EXTENSIONS for f in p.iterdir())


def scan_classes(root: Path, split: str, class_names: list[str] | None = None, frames: bool = False):
    """``ROOT/split/<class>/<video>`` (``frames``: ``<video>`` is a folder of JPEG frames); classes are the sorted
    folder names."""
    split_dir = Path(root) / split
    what = "<video_dir>/*.jpg" if frames else "<video>"
    if not split_dir.is_dir():
        raise SaliencyTubesError(f"{split_dir} does not exist (expected ROOT/{split}/<class>/{what})")
    found = sorted(d.name for d in split_dir.iterdir() if d.is_dir())
    if class_names is None:
        class_names = found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise SaliencyTubesError(f"{split_dir} has classes not in the training split: {', '.join(unknown)}")
    is_item = _is_frame_folder if frames else _is_video
    samples = []
    for label, name in enumerate(class_names):
        folder = split_dir / name
        if not folder.is_dir():
            continue
        items = [p for p in sorted(folder.iterdir()) if is_item(p)]
        if not items and split == "train":
            raise SaliencyTubesError(
                f"{folder} has no videos: a class needs training videos (remove the folder or add some)"
            )
        samples += [Sample(p, label) for p in items]
    if not samples:
        raise SaliencyTubesError(f"no videos found under {split_dir}")
    return samples, class_names


def _existing(samples: list[Sample], what: str, shown: int = 3) -> list[Sample]:
    """Drop the samples whose video is not there, with one warning (annotation files list more videos than
    a download usually gets); none there at all is an error."""
    missing = sorted({s.path for s in samples if not s.path.exists()})
    if missing:
        gone = set(missing)
        samples = [s for s in samples if s.path not in gone]
        names = ", ".join(p.name for p in missing[:shown]) + (", …" if len(missing) > shown else "")
        if not samples:
            raise SaliencyTubesError(f"{what}: none of the {len(missing)} annotated videos exist (e.g. {missing[0]})")
        rank_zero_warn(f"{what}: {len(missing)} annotated videos are missing and left out ({names})")
    return samples


def _lines(path: Path, hint: str) -> list[list[str]]:
    if not path.is_file():
        raise SaliencyTubesError(f"{path} does not exist ({hint})")
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def _ucf101(annotations: Path, videos: Path, split: str, number: int):
    """UCF101's ``classInd.txt`` ("1 ApplyEyeMakeup") and ``trainlist0N.txt`` ("Class/v_….avi 1") or
    ``testlist0N.txt`` ("Class/v_….avi", the class from the folder name)."""
    if number not in (1, 2, 3):
        raise SaliencyTubesError(f"--data.split {number}: UCF101 has splits 1, 2 and 3")
    hint = "--data.annotations names the folder of the UCF101 split files"
    names = [name for _, name in sorted((int(i), name) for i, name in _lines(annotations / "classInd.txt", hint))]
    lookup = {name: label for label, name in enumerate(names)}
    listed = _lines(annotations / f"{'train' if split == 'train' else 'test'}list0{number}.txt", hint)
    samples = []
    for fields in listed:
        cls = fields[0].split("/")[0]
        if cls not in lookup:
            raise SaliencyTubesError(f"{fields[0]}: class {cls!r} is not in {annotations / 'classInd.txt'}")
        samples.append(Sample(videos / fields[0], lookup[cls]))
    return samples, names


def _hmdb51(annotations: Path, videos: Path, split: str, number: int):
    """HMDB51's ``<class>_test_split<N>.txt`` files, lines "<video> <0|1|2>" (1 train, 2 test, 0 unused);
    videos at ``VIDEOS/<class>/<video>``."""
    if number not in (1, 2, 3):
        raise SaliencyTubesError(f"--data.split {number}: HMDB51 has splits 1, 2 and 3")
    suffix = f"_test_split{number}.txt"
    files = sorted(annotations.glob(f"*{suffix}")) if annotations.is_dir() else []
    if not files:
        raise SaliencyTubesError(
            f"no *{suffix} files in {annotations} (--data.annotations names the folder of the HMDB51 split files)"
        )
    names = [f.name[: -len(suffix)] for f in files]
    wanted = "1" if split == "train" else "2"
    samples = [
        Sample(videos / name / video, label)
        for label, (name, file) in enumerate(zip(names, files))
        for video, use in _lines(file, "")
        if use == wanted
    ]
    return samples, names


def _read_csv(path: Path, required: set[str], hint: str) -> list[dict]:
    if not path.is_file():
        raise SaliencyTubesError(f"{path} does not exist ({hint})")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        lacking = required - set(reader.fieldnames or ())
        if lacking:
            raise SaliencyTubesError(f"{path} lacks the column(s) {', '.join(sorted(lacking))}")
        return list(reader)


def _first_existing(folder: Path, names: tuple[str, ...]) -> Path:
    return next((folder / n for n in names if (folder / n).exists()), folder / names[0])


def _kinetics(annotations: Path, videos: Path, split: str, class_names: list[str] | None):
    """Kinetics CSVs (``label,youtube_id,time_start,time_end,split``): ``train.csv`` and ``validate.csv`` (or
    ``val.csv``); videos ``<youtube_id>_<start:06d>_<end:06d>.mp4`` in ``VIDEOS/<split>/<label>/`` or flat in
    ``VIDEOS/<split>/``, the split folder being ``train`` or ``val``/``validate``."""
    names = ("train",) if split == "train" else ("validate", "val")
    table = _first_existing(annotations, tuple(f"{n}.csv" for n in names))
    rows = _read_csv(
        table,
        {"label", "youtube_id", "time_start", "time_end"},
        "--data.annotations names the folder of the Kinetics CSV files",
    )
    found = sorted({r["label"] for r in rows})
    if class_names is None:
        class_names = found
    unknown = sorted(set(found) - set(class_names))
    if unknown:
        raise SaliencyTubesError(f"{table} has classes not in the training split: {', '.join(unknown[:5])}")
    lookup = {name: label for label, name in enumerate(class_names)}
    split_dir = _first_existing(videos, ("train",) if split == "train" else ("val", "validate"))
    samples = []
    for r in rows:
        file = f"{r['youtube_id']}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}.mp4"
        in_class = split_dir / r["label"] / file
        samples.append(Sample(in_class if in_class.exists() else split_dir / file, lookup[r["label"]]))
    return samples, class_names


def _seconds(timestamp: str) -> float:
    """ "00:00:01.089" → 1.089."""
    h, m, s = timestamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _epic_video(videos: Path, participant: str, video_id: str, cache: dict[Path, dict[str, Path]]) -> Path:
    """``VIDEOS/<participant>/<video_id>.MP4`` or ``VIDEOS/<video_id>.mp4``, in any extension case."""
    for folder in (videos / participant, videos):
        if folder not in cache:
            cache[folder] = {p.stem: p for p in folder.iterdir() if _is_video(p)} if folder.is_dir() else {}
        if video_id in cache[folder]:
            return cache[folder][video_id]
    return videos / participant / f"{video_id}.MP4"


def _epic_kitchens(annotations: Path, videos: Path, split: str, target: str):
    """EPIC-KITCHENS-100 ``EPIC_100_train.csv`` / ``EPIC_100_validation.csv``: each row a segment of a long video.

    ``target`` ``verb`` or ``noun`` keeps the official class ids (names from the CSV); ``action`` numbers the
    (verb, noun) pairs seen in training; the classes always come from the training CSV. Validation segments
    of a class training never saw are left out.
    """
    if target not in ("verb", "noun", "action"):
        raise SaliencyTubesError(f"--data.target {target!r}: EPIC-KITCHENS targets are verb, noun and action")
    hint = "--data.annotations names the folder of the EPIC-KITCHENS-100 CSV files"
    required = {"participant_id", "video_id", "start_timestamp", "stop_timestamp", "verb_class", "noun_class"}
    table = annotations / f"EPIC_100_{'train' if split == 'train' else 'validation'}.csv"
    rows = _read_csv(table, required, hint)

    train_rows = rows if split == "train" else _read_csv(annotations / "EPIC_100_train.csv", required, hint)
    if not train_rows:
        raise SaliencyTubesError(f"{annotations / 'EPIC_100_train.csv'} has no segments")

    def key(r: dict):
        return (int(r["verb_class"]), int(r["noun_class"])) if target == "action" else int(r[f"{target}_class"])

    def name(r: dict) -> str:
        if target == "action":
            return f"{r.get('verb') or r['verb_class']} {r.get('noun') or r['noun_class']}"
        return r.get(target) or r[f"{target}_class"]

    named = {key(r): name(r) for r in train_rows}
    if target == "action":
        lookup = {k: label for label, k in enumerate(sorted(named))}
        class_names = [named[k] for k in sorted(named)]
    else:
        lookup = {k: k for k in named}
        class_names = [named.get(i, f"{target}_{i}") for i in range(max(named) + 1)]
    cache: dict[Path, dict[str, Path]] = {}
    samples = [
        Sample(
            _epic_video(videos, r["participant_id"], r["video_id"], cache),
            lookup[key(r)],
            _seconds(r["start_timestamp"]),
            _seconds(r["stop_timestamp"]),
        )
        for r in rows
        if key(r) in lookup
    ]
    if len(samples) < len(rows):
        rank_zero_warn(
            f"{table.name}: {len(rows) - len(samples)} segments of {target} classes not in training are left out"
        )
    return samples, class_names
