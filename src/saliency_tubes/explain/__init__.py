"""Saliency Tubes computation (CAM, Grad-CAM, Grad-CAM++) and quality metrics. Needs only a model that follows
the model contract."""

from __future__ import annotations

import torch
from torch import nn

from .cam import (
    Explanation,
    SaliencyTubes,
    class_activation_tubes,
    normalize_tubes,
    preserved_state,
    resolve_targets,
    upsample_tubes,
)
from .gradcam import gradcam_tubes
from .metrics import lift, mask_share, pointing_game, temporal_hit, tube_mass_in_gt
from .stitch import TubeStitcher, overlapping_clips

METHODS = ("saliency_tubes", "gradcam", "gradcam_pp")


def explain(
    model: nn.Module,
    clips: torch.Tensor,
    method: str = "saliency_tubes",
    target=None,
    topk: int = 1,
    layer: str | None = None,
    size: tuple[int, int, int] | None = None,
    clip_negative: bool = True,
    normalize: bool = True,
) -> Explanation:
    """Tubes (B×T×H×W in [0, 1], or B×K×… for several targets), logits and targets for a batch of clips.

    ``method``: ``saliency_tubes`` (CAM from the classifier weights, the default), ``gradcam`` or ``gradcam_pp``
    (on ``layer``, a module name; default the last conv block). ``target``: None (the prediction; with ``topk``
    the top-k), a class index, or one index (or K) per clip. ``size``: T×H×W of the tubes (default the clip's).
    ``clip_negative`` (default) zeroes negative CAM evidence before normalising, as Grad-CAM's ReLU does, so a region
    with no evidence for the class is 0 rather than lifted by the most negative one; ``False`` is the original
    Saliency Tubes min–max over the signed map.
    ``normalize=False`` returns the raw upsampled maps, for stitching clips (see :mod:`.stitch`).
    """
    if method == "saliency_tubes":
        if layer is not None:
            raise ValueError("saliency_tubes uses the last feature volume; a layer applies to gradcam/gradcam_pp")
        return SaliencyTubes(model, clip_negative=clip_negative)(
            clips, target=target, topk=topk, size=size, normalize=normalize
        )
    if method in ("gradcam", "gradcam_pp"):
        return gradcam_tubes(
            model,
            clips,
            target=target,
            topk=topk,
            layer=layer,
            plus_plus=method == "gradcam_pp",
            size=size,
            normalize=normalize,
        )
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")


__all__ = [
    "METHODS",
    "Explanation",
    "SaliencyTubes",
    "class_activation_tubes",
    "explain",
    "gradcam_tubes",
    "lift",
    "mask_share",
    "pointing_game",
    "temporal_hit",
    "TubeStitcher",
    "overlapping_clips",
    "normalize_tubes",
    "preserved_state",
    "resolve_targets",
    "tube_mass_in_gt",
    "upsample_tubes",
]
