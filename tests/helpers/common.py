"""Paths and objects shared by the tests (the fixtures stay in conftest.py)."""

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
