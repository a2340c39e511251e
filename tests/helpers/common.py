"""Paths and objects shared by the tests (the fixtures stay in conftest.py)."""

import shutil
from pathlib import Path

from saliency_tubes.data.synthetic import SyntheticConfig

REPO = Path(__file__).resolve().parents[2]
TINY = SyntheticConfig(train_per_class=4, val_per_class=2, test_per_class=1, num_frames=12, size=32, seed=3)


class Trap:
    """Unpickling this creates a file: what a malicious checkpoint could do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def copy_without_masks(src: Path, dst: Path, split: str = "val", keep: int = 0) -> Path:
    """A copy of the synthetic dataset ``src`` at ``dst`` whose ``split`` keeps the masks of its first ``keep``
    videos (sorted by class, then name) only."""
    shutil.copytree(src, dst)
    for path in sorted((dst / split).rglob("*.mask.npz"))[keep:]:
        path.unlink()
    return dst
