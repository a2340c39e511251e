"""UCF101 with its official split files."""

from __future__ import annotations

from pathlib import Path

from ...errors import SaliencyTubesError
from .base import Layout, LayoutOptions, Sample, read_lines, register_layout


@register_layout
class UCF101(Layout):
    """UCF101's ``classInd.txt`` ("1 ApplyEyeMakeup") and ``trainlist0N.txt`` ("Class/v_….avi 1") or
    ``testlist0N.txt`` ("Class/v_….avi", the class from the folder name)."""

    name = "ucf101"
    description = "ROOT/ucfTrainTestlist/{classInd,trainlist0N,testlist0N}.txt, --data.split 1|2|3"
    annotations = "ucfTrainTestlist"

    def index(
        self, root: Path, split: str, class_names: list[str] | None, options: LayoutOptions
    ) -> tuple[list[Sample], list[str]]:
        number = options.split
        if number not in (1, 2, 3):
            raise SaliencyTubesError(f"--data.split {number}: UCF101 has splits 1, 2 and 3")
        annotations, videos = self.annotations_dir(root, options), self.videos_dir(root, options)
        hint = "--data.annotations names the folder of the UCF101 split files"
        names = [
            name for _, name in sorted((int(i), name) for i, name in read_lines(annotations / "classInd.txt", hint))
        ]
        lookup = {name: label for label, name in enumerate(names)}
        listed = read_lines(annotations / f"{'train' if split == 'train' else 'test'}list0{number}.txt", hint)
        samples = []
        for fields in listed:
            cls = fields[0].split("/")[0]
            if cls not in lookup:
                raise SaliencyTubesError(f"{fields[0]}: class {cls!r} is not in {annotations / 'classInd.txt'}")
            samples.append(Sample(videos / fields[0], lookup[cls]))
        return samples, names
