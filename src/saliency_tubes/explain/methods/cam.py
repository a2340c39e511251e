"""Saliency Tubes (Stergiou et al., ICIP 2019): the class activation map of the last feature volume."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import ExplanationMethod, register_method

if TYPE_CHECKING:
    import torch


@register_method
class SaliencyTubes(ExplanationMethod):
    """The classifier row of the target class weights the channels of ``forward_features``: a 3D CAM that costs
    one einsum beyond the forward pass that produced the prediction. Exact for models whose head is global
    average pooling + a linear layer."""

    name = "saliency_tubes"
    summary = "CAM from the classifier weights (almost free)"
    takes_layer = False

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor | None, targets: torch.Tensor):
        return self.model.get_classifier().weight.detach().float()[targets]
