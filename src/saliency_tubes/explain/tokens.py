"""Tokens to tubes, in one place: a layer's output (a B×C×T'×H'×W' volume, a B×N×C token tensor, a channels-last
B×T'×H'×W'×C volume, or a tuple such as torchvision MViT's ``(tokens, thw)``) read as a B×C×T'×H'×W' volume.

A transformer says how through the model contract (``docs/ARCHITECTURE.md``, "The model contract"):
``token_layout(layer, output) -> TokenLayout | None`` for a module name (``""``: the output of
``forward_features``) and that module's output; ``None``, or a model without ``token_layout`` (every CNN), means a
plain volume. Gradients are taken with respect to the captured tensor itself (:func:`captured_tensor`: the volume
formed after the forward pass is not in the graph) and converted the same way: the conversion only selects and
permutes entries, so the converted gradient is the gradient of the converted tensor.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import BadArgument
from ..models.contract import CONTRACT_DOC, TokenLayout

LAST_FEATURES = ""  # the name token_layout gets for the output of forward_features


def layout_of(model: Any, layer: str, output: Any) -> TokenLayout | None:
    """The model's :class:`TokenLayout` for ``output`` of module ``layer`` (``""``: ``forward_features``), or
    ``None`` for a plain volume (and for every model without ``token_layout``)."""
    describe = getattr(model, "token_layout", None)
    return describe(layer, output) if callable(describe) else None


def captured_tensor(output: Any) -> torch.Tensor:
    """The tensor of a module's output: the output itself, or the first element of a tuple (``(tokens, thw)``)."""
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if not isinstance(output, torch.Tensor):
        raise BadArgument(f"the explained layer returns a {type(output).__name__}, not a tensor")
    return output


def to_volume(x: torch.Tensor, layout: TokenLayout | None, layer: str = LAST_FEATURES, model: Any = None):
    """``x`` (the captured tensor, or its gradient) as B×C×T'×H'×W' according to ``layout`` (``None``: ``x`` is
    already a volume). Prefix tokens are dropped. The result is a view where the layout allows one."""
    where = f"--layer {layer!r}" if layer else "forward_features"
    name = type(model).__name__ if model is not None else "the model"
    if layout is None:
        if x.dim() != 5:
            raise BadArgument(
                f"{where} of {name} gives a {'×'.join(map(str, x.shape))} tensor, not a B×C×T'×H'×W' volume, and "
                f"{name} does not say how to read it as a token grid (token_layout; see {CONTRACT_DOC})"
                + _layers_hint(model)
            )
        return x
    t, h, w = layout.grid
    if layout.channels_last:
        if x.dim() != 5 or tuple(x.shape[1:4]) != (t, h, w):
            raise BadArgument(f"{where} of {name}: a {tuple(x.shape)} output is not the B×{t}×{h}×{w}×C it declares")
        return x.permute(0, 4, 1, 2, 3)
    if x.dim() != 3 or x.shape[1] != layout.prefix + t * h * w:
        raise BadArgument(
            f"{where} of {name}: a {tuple(x.shape)} output is not B×({layout.prefix} + {t}·{h}·{w})×C tokens as its "
            "token layout declares"
        )
    b, c = x.shape[0], x.shape[2]
    grid = x[:, layout.prefix :]
    if layout.order == "time-major":  # index t·H'·W' + h·W' + w
        return grid.reshape(b, t, h, w, c).permute(0, 4, 1, 2, 3)
    return grid.reshape(b, h, w, t, c).permute(0, 4, 3, 1, 2)  # space-major: index (h·W' + w)·T' + t


def explain_layers(model: Any) -> list[str]:
    """The blocks a gradient method can explain, as the model lists them (``explain_layers()``), or ``[]``."""
    listed = getattr(model, "explain_layers", None)
    return list(listed()) if callable(listed) else []


def _layers_hint(model: Any) -> str:
    layers = explain_layers(model) if model is not None else []
    return f"; explainable layers: {', '.join(layers[:3])}{', ...' if len(layers) > 3 else ''}" if layers else ""
