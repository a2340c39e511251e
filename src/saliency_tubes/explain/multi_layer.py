"""Which registered methods explain a list of layers (``--layers``, the callback's ``layers``), answered from the
method registry without importing torch.

A method that fuses several layers (Class Feature Pyramids, LayerCAM, multi-layer Grad-CAM++) sets the class
attribute ``multi_layer = True`` and takes ``layers`` (module names, shallow → deep) in its constructor; a method
without the attribute explains one layer.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import BadArgument
from .methods import get_method, method_names


def takes_layers(method: str) -> bool:
    """Whether the registered ``method`` takes a list of layers."""
    return bool(getattr(get_method(method), "multi_layer", False))


def multi_layer_methods() -> list[str]:
    """The registered methods that take a list of layers, in registration order."""
    return [m for m in method_names() if takes_layers(m)]


def check_layers(methods: str | Sequence[str], layers: Sequence[str] | None) -> None:
    """A one-line :class:`BadArgument` unless ``layers`` is None or at least one of ``methods`` takes a list of
    layers (with several methods, as for ``--evaluate``, the others explain their own layer)."""
    if layers is None:
        return
    if isinstance(layers, str) or not all(isinstance(name, str) and name for name in layers) or not layers:
        raise BadArgument(f"--layers takes one or more module names (e.g. layer2 layer3 layer4), not {layers!r}")
    methods = [methods] if isinstance(methods, str) else list(methods)
    if not any(takes_layers(m) for m in methods):
        takers = multi_layer_methods()
        allowed = f"--method {', '.join(takers)}" if takers else "no registered method"
        raise BadArgument(f"--layers applies to {allowed}; {', '.join(methods)} explains one layer (see --layer)")
