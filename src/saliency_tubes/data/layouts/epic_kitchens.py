"""EPIC-KITCHENS-100: labelled segments of long videos."""

from __future__ import annotations

from pathlib import Path

from lightning_utilities.core.rank_zero import rank_zero_warn  # what pytorch_lightning re-exports, without importing it

from ...errors import SaliencyTubesError
from .base import Layout, LayoutOptions, Sample, is_video, read_csv, register_layout


def _seconds(timestamp: str) -> float:
    """ "00:00:01.089" → 1.089."""
    h, m, s = timestamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def _epic_video(videos: Path, participant: str, video_id: str, cache: dict[Path, dict[str, Path]]) -> Path:
    """``VIDEOS/<participant>/<video_id>.MP4`` or ``VIDEOS/<video_id>.mp4``, in any extension case."""
    for folder in (videos / participant, videos):
        if folder not in cache:
            cache[folder] = {p.stem: p for p in folder.iterdir() if is_video(p)} if folder.is_dir() else {}
        if video_id in cache[folder]:
            return cache[folder][video_id]
    return videos / participant / f"{video_id}.MP4"


@register_layout
class EpicKitchens(Layout):
    """EPIC-KITCHENS-100 ``EPIC_100_train.csv`` / ``EPIC_100_validation.csv``: each row a segment of a long video.

    ``--data.target`` ``verb`` or ``noun`` keeps the official class ids (names from the CSV); ``action`` numbers the
    (verb, noun) pairs seen in training; the classes always come from the training CSV. Validation segments
    of a class training never saw are left out.
    """

    name = "epic_kitchens"
    description = (
        "EPIC-KITCHENS-100 ROOT/annotations/EPIC_100_{train,validation}.csv over long videos "
        "ROOT/videos/[<participant>/]<video_id>.MP4, --data.target verb|noun|action"
    )
    annotations = "annotations"
    videos = "videos"

    def index(
        self, root: Path, split: str, class_names: list[str] | None, options: LayoutOptions
    ) -> tuple[list[Sample], list[str]]:
        target = options.target
        if target not in ("verb", "noun", "action"):
            raise SaliencyTubesError(f"--data.target {target!r}: EPIC-KITCHENS targets are verb, noun and action")
        annotations, videos = self.annotations_dir(root, options), self.videos_dir(root, options)
        hint = "--data.annotations names the folder of the EPIC-KITCHENS-100 CSV files"
        required = {"participant_id", "video_id", "start_timestamp", "stop_timestamp", "verb_class", "noun_class"}
        table = annotations / f"EPIC_100_{'train' if split == 'train' else 'validation'}.csv"
        rows = read_csv(table, required, hint)

        train_rows = rows if split == "train" else read_csv(annotations / "EPIC_100_train.csv", required, hint)
        if not train_rows:
            raise SaliencyTubesError(f"{annotations / 'EPIC_100_train.csv'} has no segments")

        def key(r: dict[str, str]) -> tuple[int, ...]:
            """(verb id, noun id) or (verb or noun id,)"""
            return (int(r["verb_class"]), int(r["noun_class"])) if target == "action" else (int(r[f"{target}_class"]),)

        def name(r: dict[str, str]) -> str:
            if target == "action":
                return f"{r.get('verb') or r['verb_class']} {r.get('noun') or r['noun_class']}"
            return r.get(target) or r[f"{target}_class"]

        named = {key(r): name(r) for r in train_rows}
        if target == "action":
            lookup = {k: label for label, k in enumerate(sorted(named))}
            names = [named[k] for k in sorted(named)]
        else:  # the official ids
            lookup = {k: k[0] for k in named}
            names = [named.get((i,), f"{target}_{i}") for i in range(max(lookup.values()) + 1)]
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
        return samples, names
