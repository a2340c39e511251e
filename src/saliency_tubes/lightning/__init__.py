"""Lightning composition: the module, the Saliency Tubes callback, checkpoints and the CLI."""

from .callback import SaliencyTubesCallback
from .checkpoint import ModelInfo, load_checkpoint
from .module import VideoClassifier
from .run_checkpoint import RunCheckpoint

__all__ = ["ModelInfo", "RunCheckpoint", "SaliencyTubesCallback", "VideoClassifier", "load_checkpoint"]
