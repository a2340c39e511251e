"""The input settings of a model, declared once: what clips it expects and how they are normalised.

Every architecture declares a :class:`DataConfig` (see ``saliency_tubes.models``), checkpoints store the one a
model was trained with, and the data, explanation and CLI code read it from there. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

Triple = tuple[float, float, float]

# torchvision's Kinetics-400 statistics: the default normalisation of frames scaled to [0, 1].
KINETICS_MEAN: Triple = (0.43216, 0.394666, 0.37645)
KINETICS_STD: Triple = (0.22803, 0.22145, 0.216989)


@dataclass(frozen=True)
class DataConfig:
    """What a model's clips look like, as timm's ``pretrained_cfg`` says for images.

    ``clip_len`` frames taken every ``stride``-th frame, the short side resized to ``input_size`` (square crops in
    training), normalised with ``mean``/``std`` per RGB channel of frames in [0, 1]. ``classifier`` is the module
    name of the final linear layer (``get_classifier()``), which weight files are matched against.
    """

    clip_len: int = 8
    stride: int = 2
    input_size: int = 112
    mean: Triple = KINETICS_MEAN
    std: Triple = KINETICS_STD
    classifier: str = "fc"
