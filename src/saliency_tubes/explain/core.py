"""What every explanation method shares: the result type, target resolution, side-effect-free model calls,
trilinear upsampling of low-resolution maps and their min–max normalisation.

Saliency Tubes (Stergiou et al., ICIP 2019) are 3D class activation maps: ``F = forward_features(x)``
(B×C×T'×H'×W') weighted by the classifier row of the target class, ``M[b] = Σ_c W[k_b, c] · F[b, c]``
(:func:`class_activation_tubes`), upsampled trilinearly to the clip's T×H×W on the model's device and min–max
normalised per tube. The methods themselves are in :mod:`saliency_tubes.explain.methods`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Explanation:
    """Result of one batched explanation.

    ``tubes``: B×T×H×W in [0, 1] (B×K×T×H×W when several targets per clip were asked for);
    ``targets``: B (or B×K) class indices; ``logits``: B×num_classes.
    ``layers``: for multi-layer methods (``pyramid``, ``layercam``, ``gradcam_pp`` with ``layers``), per explained
    layer name, shallow → deep, that layer's own tube B×T×H_l×W_l (or B×K×T×H_l×W_l): upsampled in time to the
    tubes' T, kept at the layer's spatial grid H_l×W_l, in [0, 1] per tube (raw with ``normalize=False``);
    ``tubes`` is then the fused tube. ``None`` for single-layer methods.
    """

    tubes: torch.Tensor
    targets: torch.Tensor
    logits: torch.Tensor
    layers: dict[str, torch.Tensor] | None = None

    @property
    def probs(self) -> torch.Tensor:
        return self.logits.float().softmax(-1)


def normalize_tubes(maps: torch.Tensor, clip_negative: bool = False, eps: float = 1e-8) -> torch.Tensor:
    """Min–max normalise each map over its last three (T, H, W) dimensions; a constant map becomes zeros."""
    if clip_negative:
        maps = maps.clamp(min=0)
    flat = maps.flatten(-3)
    lo = flat.amin(-1)[..., None, None, None]
    hi = flat.amax(-1)[..., None, None, None]
    return (maps - lo) / (hi - lo).clamp(min=eps)


def _linear_weights(n_in: int, n_out: int, device, dtype) -> torch.Tensor:
    """``n_out×n_in`` matrix of 1-D linear interpolation with half-pixel centres (as ``align_corners=False``)."""
    src = ((torch.arange(n_out, device=device, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    lo = src.floor().long().clamp(max=n_in - 1)
    hi = (lo + 1).clamp(max=n_in - 1)
    frac = src - lo
    weights = torch.zeros(n_out, n_in, device=device, dtype=torch.float64)
    rows = torch.arange(n_out, device=device)
    weights.index_put_((rows, lo), 1 - frac, accumulate=True)
    weights.index_put_((rows, hi), frac, accumulate=True)
    return weights.to(dtype)


def upsample_tubes(maps: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """Trilinear upsampling (``align_corners=False``) of ``…×T'×H'×W'`` maps to ``…×T×H×W``.

    Done separably — bilinear on the T' low-resolution frames, then linear in time — which is the same
    interpolation as ``F.interpolate(mode="trilinear")`` but does the spatial work T' times instead of T times.
    """
    lead, (t, h, w) = maps.shape[:-3], maps.shape[-3:]
    big_t, big_h, big_w = size
    x = maps.reshape(-1, t, h, w).float()
    if (h, w) != (big_h, big_w):
        x = F.interpolate(x, size=(big_h, big_w), mode="bilinear", align_corners=False)
    if t != big_t:
        if t == 1:
            x = x.expand(-1, big_t, big_h, big_w)
        else:
            x = torch.einsum("Tt,nthw->nThw", _linear_weights(t, big_t, x.device, x.dtype), x)
    return x.reshape(*lead, big_t, big_h, big_w)


def class_activation_tubes(
    features: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    size: tuple[int, int, int],
    clip_negative: bool = False,
    normalize: bool = True,
) -> torch.Tensor:
    """Saliency Tubes from features (B×C×T'×H'×W'), classifier weights (K×C) and targets (B or B×K).

    Returns tubes of shape B×T×H×W (or B×K×T×H×W) in [0, 1]; with ``normalize=False`` the raw upsampled class
    activation (for stitching several clips before one normalisation).
    """
    single = targets.dim() == 1
    targets = targets.view(targets.shape[0], -1)
    maps = torch.einsum("bcthw,bkc->bkthw", features.float(), weight.float()[targets])
    tubes = upsample_tubes(maps, size)
    if normalize:
        tubes = normalize_tubes(tubes, clip_negative=clip_negative)
    elif clip_negative:
        tubes = tubes.clamp(min=0)
    return tubes[:, 0] if single else tubes


@contextlib.contextmanager
def preserved_state(model: nn.Module, grad: bool = False):
    """Run in eval mode with the RNG untouched, and without autograd unless ``grad`` (then with it, even inside
    ``torch.inference_mode``, as in Lightning's validation loop); restore every module's train/eval flag after."""
    training = [m for m in model.modules() if m.training]
    first = next(model.parameters(), None)
    devices = [first.device.index or 0] if first is not None and first.device.type == "cuda" else []
    autograd = contextlib.ExitStack()
    if grad:
        autograd.enter_context(torch.inference_mode(False))
        autograd.enter_context(torch.enable_grad())
    else:
        autograd.enter_context(torch.no_grad())
    try:
        with torch.random.fork_rng(devices=devices), autograd:
            for m in training:
                m.training = False
            yield
    finally:
        for m in training:
            m.training = True


def resolve_targets(logits: torch.Tensor, target=None, topk: int = 1) -> torch.Tensor:
    """Targets from ``target``: None (the prediction, or the top-``topk`` predictions as B×K), a class index, or a
    tensor of B indices."""
    b = logits.shape[0]
    if target is None:
        return logits.argmax(-1) if topk == 1 else logits.topk(topk, dim=-1).indices
    if isinstance(target, int):
        if not 0 <= target < logits.shape[-1]:
            raise ValueError(f"target class {target} out of range for {logits.shape[-1]} classes")
        return torch.full((b,), target, dtype=torch.long, device=logits.device)
    targets = torch.as_tensor(target, dtype=torch.long, device=logits.device)
    return targets.view(b, -1).squeeze(-1) if targets.dim() < 2 else targets
