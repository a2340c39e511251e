"""Lightning composition: the module, the Saliency Tubes callback, its logger adapters, checkpoints and the CLI."""

from .callback import SaliencyTubesCallback
from .module import VideoClassifier
from .run_checkpoint import RunCheckpoint

__all__ = ["RunCheckpoint", "SaliencyTubesCallback", "VideoClassifier"]
