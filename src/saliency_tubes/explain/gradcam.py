"""Grad-CAM (Selvaraju et al., 2017) and Grad-CAM++ (Chattopadhyay et al., 2018) tubes for 3D CNNs.

The layer's activations ``A`` (B×C×T'×H'×W') are weighted per channel by the gradient of the target score:
Grad-CAM by its spatio-temporal mean, Grad-CAM++ by the positive gradients weighted with the closed-form
second/third-order coefficients (exponential score). ``ReLU(Σ_c w_c·A_c)`` is then upsampled and normalised
like Saliency Tubes. Gradients are taken with ``torch.autograd.grad`` with respect to ``A`` only, so no
parameter's ``.grad`` is touched; the forward hook used for a named layer is always removed.
"""

from __future__ import annotations

import torch
from torch import nn

from .cam import Explanation, normalize_tubes, preserved_state, resolve_targets, upsample_tubes


def _layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        raise ValueError(f"no layer {name!r} in {type(model).__name__}; e.g. {', '.join(list(modules)[1:6])}, ...")
    return modules[name]


def _forward(model: nn.Module, clips: torch.Tensor, layer: str | None):
    """``(activations, logits)`` with the graph between them kept."""
    if layer is None:
        activations = model.forward_features(clips)
        return activations, model.forward_head(activations)
    captured = []
    handle = _layer(model, layer).register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        logits = model(clips)
    finally:
        handle.remove()
    return captured[-1], logits


def _channel_weights(activations: torch.Tensor, grads: torch.Tensor, plus_plus: bool) -> torch.Tensor:
    dims = (2, 3, 4)
    if not plus_plus:
        return grads.mean(dims)
    g2, g3 = grads.pow(2), grads.pow(3)
    denom = 2 * g2 + activations.sum(dims, keepdim=True) * g3
    alpha = torch.where(grads != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(g2))
    return (alpha * grads.clamp(min=0)).sum(dims)


def gradcam_tubes(
    model: nn.Module,
    clips: torch.Tensor,
    target=None,
    topk: int = 1,
    layer: str | None = None,
    plus_plus: bool = False,
    size: tuple[int, int, int] | None = None,
    normalize: bool = True,
) -> Explanation:
    """Grad-CAM (or, with ``plus_plus``, Grad-CAM++) tubes on ``layer`` (a module name; default: the output of
    ``forward_features``), upsampled to ``size`` (default: the clip's T×H×W). Targets as in
    :func:`~saliency_tubes.explain.cam.resolve_targets`."""
    with preserved_state(model, grad=True):
        x = clips.detach().clone().requires_grad_(True)  # a graph even when every parameter is frozen
        activations, logits = _forward(model, x, layer)
        targets = resolve_targets(logits.detach(), target, topk)
        per_sample = targets.view(targets.shape[0], -1)
        maps = []
        for k in range(per_sample.shape[1]):
            score = logits.gather(1, per_sample[:, k : k + 1]).sum()
            (grads,) = torch.autograd.grad(score, activations, retain_graph=k + 1 < per_sample.shape[1])
            weights = _channel_weights(activations.detach(), grads, plus_plus)
            maps.append(torch.relu(torch.einsum("bc,bcthw->bthw", weights, activations.detach())))
    cams = torch.stack(maps, 1)  # B×K×T'×H'×W'
    tubes = upsample_tubes(cams, tuple(size or clips.shape[-3:]))
    if normalize:
        tubes = normalize_tubes(tubes)
    return Explanation(tubes[:, 0] if targets.dim() == 1 else tubes, targets, logits.detach())
