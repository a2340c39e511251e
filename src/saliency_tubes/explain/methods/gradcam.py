"""Grad-CAM (Selvaraju et al., 2017) and Grad-CAM++ (Chattopadhyay et al., 2018) tubes for 3D CNNs.

The layer's activations ``A`` (B×C×T'×H'×W') are weighted per channel by the gradient of the target score:
Grad-CAM by its spatio-temporal mean, Grad-CAM++ by the positive gradients weighted with the closed-form
second/third-order coefficients (exponential score). ``ReLU(Σ_c w_c·A_c)`` is then upsampled and normalised
like Saliency Tubes. Grad-CAM++ also explains several layers at once (``layers``), fusing their maps.
Gradients are taken with ``torch.autograd.grad`` with respect to ``A`` only, so no
parameter's ``.grad`` is touched; the forward hook used for a named layer is always removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import ExplanationMethod, register_method

if TYPE_CHECKING:
    import torch

_DIMS = (2, 3, 4)


@register_method
class GradCAM(ExplanationMethod):
    name = "gradcam"
    summary = "channels weighted by the mean gradient of the target score (any --layer)"
    gradients = True
    rectify = True

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor | None, targets: torch.Tensor):
        assert grads is not None
        return grads.mean(_DIMS)


@register_method
class GradCAMPlusPlus(ExplanationMethod):
    """Grad-CAM++ on one layer (``layer``, default the output of ``forward_features``) or, with ``layers``, on
    several: each layer's map as above, fused by the mean of the layers' maps, each upsampled to the finest layer's
    grid and divided by its maximum (:meth:`ExplanationMethod.fuse`)."""

    name = "gradcam_pp"
    summary = "Grad-CAM++: positive gradients with higher-order weights (any --layer, or several --layers fused)"
    gradients = True
    rectify = True
    multi_layer = True
    fusion = "mean"

    def channel_weights(self, activations: torch.Tensor, grads: torch.Tensor | None, targets: torch.Tensor):
        assert grads is not None
        g2, g3 = grads.pow(2), grads.pow(3)
        denom = 2 * g2 + activations.sum(_DIMS, keepdim=True) * g3
        safe = denom.where(denom != 0, denom.new_ones(()))
        alpha = (g2 / safe).where(grads != 0, g2.new_zeros(()))
        return (alpha * grads.clamp(min=0)).sum(_DIMS)
