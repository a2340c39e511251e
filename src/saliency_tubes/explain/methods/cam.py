"""Saliency Tubes (Stergiou et al., ICIP 2019): the class activation map of the last feature volume."""

from __future__ import annotations

from typing import TYPE_CHECKING
from weakref import WeakSet

from ...errors import BadArgument
from .base import ExplanationMethod, register_method

if TYPE_CHECKING:
    import torch

    from .base import ClipForward

_WARNED: WeakSet = WeakSet()  # the models already warned about: once per model


def _warn(message: str) -> None:
    """``rank_zero_warn`` also outside Lightning (explain.py), where nothing has set the process's rank: taken from
    the environment as Lightning does on import."""
    import os

    from lightning_utilities.core.rank_zero import rank_zero_only, rank_zero_warn

    if getattr(rank_zero_only, "rank", None) is None:
        env = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
        rank_zero_only.rank = next((int(os.environ[k]) for k in env if k in os.environ), 0)  # type: ignore[attr-defined]
    rank_zero_warn(message)


@register_method
class SaliencyTubes(ExplanationMethod):
    """The classifier row of the target class weights the channels of ``forward_features``: a 3D CAM that costs
    one einsum beyond the forward pass that produced the prediction. Exact for models whose head is global
    average pooling + a linear layer (the 3D CNNs, Swin3D).

    A model that sets ``cam_exact = False`` (with a ``cam_note`` saying why) is treated by what its head reads:
    a class token (``forward_features``' tokens have a prefix, as MViT's) — CAM over the patch tokens does not
    explain the logit, so it is refused with a one-line error pointing to Grad-CAM; mean-pooled tokens followed
    by a LayerNorm (the VideoMAE-style ViT) — the map is the classifier row on the pre-norm tokens, an
    approximation (the norm's per-clip scale and centring are ignored), and a warning says so once per model.
    """

    name = "saliency_tubes"
    summary = "CAM from the classifier weights (almost free; exact for pooled volumes: CNNs, Swin3D)"
    takes_layer = False

    def forward(self, clips: torch.Tensor) -> ClipForward:
        forward = super().forward(clips)
        if not getattr(self.model, "cam_exact", True):
            model = type(self.model).__name__
            note = getattr(self.model, "cam_note", "") or "its head is not pooling + linear"
            layout = forward.layout
            if layout is not None and layout.prefix > 0 and not layout.channels_last:
                raise BadArgument(
                    f"saliency_tubes (CAM) does not apply to {model}: {note}; use --method gradcam or gradcam_pp"
                )
            if self.model not in _WARNED:
                _WARNED.add(self.model)
                _warn(
                    f"saliency_tubes on {model} is approximate ({note}): the classifier row of the target weights "
                    "the pre-norm tokens; gradcam is exact to its definition"
                )
        return forward

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor | None, targets: torch.Tensor):
        return self.model.get_classifier().weight.detach().float()[targets]
