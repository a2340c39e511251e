"""A multi-layer method registered from outside the package, as a user would write one: the mean activation of each
of several layers (one tube per depth at that layer's own grid) and their average as the fused tube. Importing
this module registers it as ``toy_depths``."""

from __future__ import annotations

import torch

from saliency_tubes.errors import BadArgument
from saliency_tubes.explain import (
    Explanation,
    ExplanationMethod,
    normalize_tubes,
    preserved_state,
    register_method,
    resolve_targets,
    upsample_tubes,
)
from saliency_tubes.models.contract import stage_names


@register_method
class ToyDepths(ExplanationMethod):
    name = "toy_depths"
    summary = "mean activation of each of several layers, averaged (a test's multi-layer method)"
    multi_layer = True
    takes_layer = False

    def __init__(self, model, layer=None, clip_negative=True, layers: list[str] | None = None):
        super().__init__(model, layer=layer, clip_negative=clip_negative)
        modules = dict(model.named_modules())
        self.layers = list(layers) if layers is not None else stage_names(model)[2:]
        missing = [name for name in self.layers if name not in modules]
        if missing:
            raise BadArgument(f"--layers: {', '.join(missing)} is not a layer of {type(model).__name__}")
        self._modules = [modules[name] for name in self.layers]

    def channel_weights(self, activations, grads, targets):  # one layer, as the whole-video pipeline asks today
        return torch.ones(activations.shape[:2], device=activations.device)

    def __call__(self, clips, target=None, topk=1, size=None, normalize=True) -> Explanation:
        captured: dict[str, torch.Tensor] = {}
        hooks = [
            m.register_forward_hook(lambda _m, _i, out, name=name: captured.__setitem__(name, out))
            for name, m in zip(self.layers, self._modules, strict=True)
        ]
        try:
            with preserved_state(self.model):
                logits = self.model(clips)
        finally:
            for hook in hooks:
                hook.remove()
        targets = resolve_targets(logits, target, topk)
        t, h, w = size or clips.shape[-3:]
        depths = {name: captured[name].float().mean(1) for name in self.layers}  # B×T'×H'×W'
        layers = {name: normalize_tubes(upsample_tubes(m, (t, *m.shape[-2:]))) for name, m in depths.items()}
        fused = torch.stack([upsample_tubes(m, (t, h, w)) for m in depths.values()]).mean(0)
        fused = normalize_tubes(fused) if normalize else fused
        if targets.dim() == 2:  # the same maps for every target: the toy ignores the class
            fused = fused[:, None].expand(-1, targets.shape[1], -1, -1, -1)
            layers = {name: m[:, None].expand(-1, targets.shape[1], -1, -1, -1) for name, m in layers.items()}
        return Explanation(fused, targets, logits, layers=layers)
