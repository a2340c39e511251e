"""Explanations of video models: the methods (a registry: :mod:`.methods`), the whole-video pipeline
(:mod:`.video`), the one writer of an explanation's files (:mod:`.output`) and quality metrics. Needs only a model
that follows the model contract (``saliency_tubes.models.contract``); never Lightning."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .core import Explanation

# Names are loaded from their modules on first use (PEP 562), so that the method registry and the CLI's --help do
# not pay for importing torch.
_EXPORTS = {
    **dict.fromkeys(
        [
            "Explanation",
            "class_activation_tubes",
            "normalize_tubes",
            "preserved_state",
            "resolve_targets",
            "upsample_tubes",
        ],
        ".core",
    ),
    **dict.fromkeys(["ExplanationMethod", "MethodName", "get_method", "method_names", "register_method"], ".methods"),
    "SaliencyTubes": ".methods.cam",
    **dict.fromkeys(["lift", "mask_share", "pointing_game", "temporal_hit", "tube_mass_in_gt"], ".metrics"),
    **dict.fromkeys(["TubeStitcher", "overlapping_clips"], ".stitch"),
    **dict.fromkeys(["VideoExplainer", "VideoExplanation"], ".video"),
    "write_explanation": ".output",
    **dict.fromkeys(["check_layers", "multi_layer_methods", "takes_layers"], ".multi_layer"),
}


def __getattr__(name: str) -> Any:
    if name == "METHODS":  # the built-in methods; method_names() also lists those registered later
        from .methods import BUILT_IN

        return BUILT_IN
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def explain(
    model: nn.Module,
    clips: torch.Tensor,
    method: str = "saliency_tubes",
    target: object = None,
    topk: int = 1,
    layer: str | None = None,
    size: tuple[int, int, int] | None = None,
    clip_negative: bool = True,
    normalize: bool = True,
    layers: list[str] | None = None,
) -> Explanation:
    """Tubes (B×T×H×W in [0, 1], or B×K×… for several targets), logits and targets for a batch of clips.

    ``method``: a registered method (:func:`method_names`): ``saliency_tubes`` (CAM from the classifier weights, the
    default), ``gradcam`` or ``gradcam_pp`` (on ``layer``, a module name; default the output of
    ``forward_features``), or one you registered. ``target``: None (the prediction; with ``topk`` the top-k), a
    class index, or one index (or K) per clip. ``size``: T×H×W of the tubes (default the clip's).
    ``clip_negative`` (default) zeroes negative evidence before normalising; ``normalize=False`` returns the raw
    upsampled maps, for stitching clips (see :mod:`.stitch`).

    ``layers``: the layers of a multi-layer method (``pyramid``, ``layercam``: default the output of every stage from
    the second after the stem on; ``gradcam_pp``: several layers fused instead of one); each layer's own tube is
    then in ``Explanation.layers``; a one-line error for a method that explains one layer.
    """
    from .methods import get_method

    explainer = get_method(method)(model, layer=layer, clip_negative=clip_negative, layers=layers)
    return explainer(clips, target=target, topk=topk, size=size, normalize=normalize)


__all__ = [  # noqa: F822 - provided by __getattr__
    "METHODS",
    "Explanation",
    "ExplanationMethod",
    "MethodName",
    "SaliencyTubes",
    "TubeStitcher",
    "VideoExplainer",
    "VideoExplanation",
    "check_layers",
    "class_activation_tubes",
    "explain",
    "get_method",
    "lift",
    "mask_share",
    "method_names",
    "multi_layer_methods",
    "normalize_tubes",
    "overlapping_clips",
    "pointing_game",
    "preserved_state",
    "register_method",
    "resolve_targets",
    "takes_layers",
    "temporal_hit",
    "tube_mass_in_gt",
    "upsample_tubes",
    "write_explanation",
]
