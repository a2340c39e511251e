"""HMDB51 with its official split files."""

from __future__ import annotations

from pathlib import Path

from ...errors import SaliencyTubesError
from .base import Layout, LayoutOptions, Sample, read_lines, register_layout


@register_layout
class HMDB51(Layout):
    """HMDB51's ``<class>_test_split<N>.txt`` files, lines "<video> <0|1|2>" (1 train, 2 test, 0 unused);
    videos at ``VIDEOS/<class>/<video>``."""

    name = "hmdb51"
    description = "ROOT/testTrainMulti_7030_splits/<class>_test_split<N>.txt (1 = train, 2 = test), --data.split 1|2|3"
    annotations = "testTrainMulti_7030_splits"

    def index(
        self, root: Path, split: str, class_names: list[str] | None, options: LayoutOptions
    ) -> tuple[list[Sample], list[str]]:
        number = options.split
        if number not in (1, 2, 3):
            raise SaliencyTubesError(f"--data.split {number}: HMDB51 has splits 1, 2 and 3")
        annotations, videos = self.annotations_dir(root, options), self.videos_dir(root, options)
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
            for label, (name, file) in enumerate(zip(names, files, strict=True))
            for video, use in read_lines(file, "")
            if use == wanted
        ]
        return samples, names
