"""Kinetics (400/600/700) with its CSV annotations."""

from __future__ import annotations

from pathlib import Path

from ...errors import SaliencyTubesError
from .base import Layout, LayoutOptions, Sample, first_existing, read_csv, register_layout


@register_layout
class Kinetics(Layout):
    """Kinetics CSVs (``label,youtube_id,time_start,time_end,split``): ``train.csv`` and ``validate.csv`` (or
    ``val.csv``); videos ``<youtube_id>_<start:06d>_<end:06d>.mp4`` in ``VIDEOS/<split>/<label>/`` or flat in
    ``VIDEOS/<split>/``, the split folder being ``train`` or ``val``/``validate``."""

    name = "kinetics"
    description = (
        "ROOT/annotations/{train,validate}.csv (label,youtube_id,time_start,time_end,split), videos "
        "<youtube_id>_<start:06d>_<end:06d>.mp4 in <split>/<label>/ or flat"
    )
    annotations = "annotations"

    def index(
        self, root: Path, split: str, class_names: list[str] | None, options: LayoutOptions
    ) -> tuple[list[Sample], list[str]]:
        annotations, videos = self.annotations_dir(root, options), self.videos_dir(root, options)
        names = ("train",) if split == "train" else ("validate", "val")
        table = first_existing(annotations, tuple(f"{n}.csv" for n in names))
        rows = read_csv(
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
        split_dir = first_existing(videos, ("train",) if split == "train" else ("val", "validate"))
        samples = []
        for r in rows:
            file = f"{r['youtube_id']}_{int(float(r['time_start'])):06d}_{int(float(r['time_end'])):06d}.mp4"
            in_class = split_dir / r["label"] / file
            samples.append(Sample(in_class if in_class.exists() else split_dir / file, lookup[r["label"]]))
        return samples, class_names
