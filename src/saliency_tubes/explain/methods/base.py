"""The base class of explanation methods and their registry.

A method is one class with one hook, :meth:`ExplanationMethod.channel_weights` (as torch-cam's ``_get_weights``
or pytorch-grad-cam's ``get_cam_weights``): how much each channel of the explained layer counts for a target
class. The base class does the rest — capturing the layer, the gradients where the method asks for them, the
weighted sum over channels, upsampling, normalisation, and leaving the model exactly as it found it.

Adding a method is one class in one file (see ``docs/ARCHITECTURE.md``, "Adding an explanation method")::

    @register_method
    class ActivationEnergy(ExplanationMethod):
        name = "energy"

        def channel_weights(self, activations, grads, targets):
            return torch.ones(activations.shape[:2], device=activations.device)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ...errors import BadArgument

# torch is imported where it is used, not here: the registry (method names and summaries for --help and the CLI's
# choices) must load without it, so that `explain.py --help` answers at once.
if TYPE_CHECKING:
    import torch
    from torch import nn

    from ...models.contract import TokenLayout
    from ..core import Explanation


@dataclass
class ClipForward:
    """One forward pass: the explained layer's activations (B×C×T'×H'×W') and the logits, with the graph between
    them kept when the method needs gradients. For a token layer, ``captured`` is the tensor the layer returned
    (B×N×C tokens, or channels-last; the one gradients are taken against) and ``layout`` says how it was read as
    ``activations`` (:mod:`saliency_tubes.explain.tokens`); both are ``None`` for a volume."""

    activations: torch.Tensor
    logits: torch.Tensor
    captured: torch.Tensor | None = None
    layout: TokenLayout | None = None


class ExplanationMethod:
    """Turns a batch of clips into tubes for target classes.

    Class attributes a method sets: ``name`` (its registry key, the ``--method`` choice), ``gradients`` (whether
    :meth:`channel_weights` needs ∂score/∂activations: one backward pass to the layer per target), ``rectify``
    (ReLU on the low-resolution map, as Grad-CAM does), ``takes_layer`` (whether a ``layer`` other than the output
    of ``forward_features`` may be explained) and a one-line ``summary`` for ``--help``.

    ``clip_negative`` zeroes negative evidence after upsampling and before normalising, so a region with no evidence
    for the class is 0 rather than lifted by the most negative one; ``False`` is the original Saliency Tubes
    min–max over the signed map.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    gradients: ClassVar[bool] = False
    rectify: ClassVar[bool] = False
    takes_layer: ClassVar[bool] = True

    def __init__(self, model: nn.Module, layer: str | None = None, clip_negative: bool = True):
        from ...models.contract import check_contract

        check_contract(model)
        self.model: Any = model  # follows the contract (checked above): forward_features, forward_head, ...
        self.layer, self.clip_negative = layer, clip_negative
        if layer is not None:
            if not self.takes_layer:
                takers = ", ".join(n for n, m in _REGISTRY.items() if m.takes_layer)
                raise BadArgument(f"--layer applies to --method {takers}; {self.name} explains the last features")
            modules = dict(model.named_modules())
            if layer not in modules:
                shown = ", ".join(list(modules)[1:6])
                raise BadArgument(
                    f"--layer {layer!r} is not a layer of {type(model).__name__} (no layer {layer!r}; e.g. {shown}, ...)"
                )
            self._module: nn.Module | None = modules[layer]
        else:
            self._module = None

    # The hook -------------------------------------------------------------------------------------------------
    def channel_weights(
        self, activations: torch.Tensor, grads: torch.Tensor | None, targets: torch.Tensor
    ) -> torch.Tensor:
        """B×C weights of the channels of ``activations`` (B×C×T'×H'×W') for ``targets`` (B class indices);
        ``grads`` are ∂score/∂activations when the class sets ``gradients``, else ``None``."""
        raise NotImplementedError

    # Shared machinery ----------------------------------------------------------------------------------------
    def forward(self, clips: torch.Tensor) -> ClipForward:
        """The layer's activations and the logits; call inside :func:`preserved_state` (see :meth:`__call__`).
        Token outputs are read as a volume by :mod:`..tokens`. Without a ``layer`` a gradient method explains the
        output of ``forward_features`` when it is a volume, else the last of the model's ``explain_layers()`` —
        the one before it when the head reads a class token (``forward_features``' tokens have a prefix and
        ``cam_exact`` is False): the last block's patch tokens reach such a head through nothing (zero gradient)."""
        from ..tokens import LAST_FEATURES, captured_tensor, explain_layers, layout_of, to_volume

        if self._module is not None:
            watched = {self.layer or LAST_FEATURES: self._module}
        elif self.gradients:  # candidates for the default layer, used only if the features are tokens
            modules = dict(self.model.named_modules())
            watched = {name: modules[name] for name in explain_layers(self.model)[-2:]}
        else:
            watched = {}
        captured: dict[str, Any] = {}
        handles = [
            m.register_forward_hook(lambda _m, _i, out, n=n: captured.__setitem__(n, out)) for n, m in watched.items()
        ]
        try:
            if self._module is None:
                features = self.model.forward_features(clips)
                logits = self.model.forward_head(features)
            else:
                logits = self.model(clips)
        finally:
            for handle in handles:
                handle.remove()
        if self._module is not None:
            name, output = next(iter(captured.items()))
        else:
            name, output = LAST_FEATURES, features
            tokens = layout_of(self.model, LAST_FEATURES, features) if watched else None
            if tokens is not None:  # token features: explain a block instead
                names = list(watched)
                class_token = tokens.prefix and getattr(self.model, "cam_exact", True) is False
                name = names[0] if class_token and len(names) > 1 else names[-1]
                output = captured[name]
        layout = layout_of(self.model, name, output)
        raw = captured_tensor(output)
        if layout is None:
            return ClipForward(to_volume(raw, None, name, self.model), logits)
        return ClipForward(to_volume(raw, layout, name, self.model), logits, raw, layout)

    def maps(self, forward: ClipForward, targets: torch.Tensor) -> torch.Tensor:
        """Raw low-resolution maps B×K×T'×H'×W' for ``targets`` (B×K)."""
        import torch

        from ..tokens import to_volume

        activations = forward.activations.detach().float()
        explained = forward.activations if forward.captured is None else forward.captured  # in the graph
        maps = []
        for k in range(targets.shape[1]):
            grads = None
            if self.gradients:
                score = forward.logits.gather(1, targets[:, k : k + 1]).sum()
                (grads,) = torch.autograd.grad(score, explained, retain_graph=k + 1 < targets.shape[1])
                grads = to_volume(grads, forward.layout).float()  # read as the activations were
            weights = self.channel_weights(activations, grads, targets[:, k])
            m = torch.einsum("bc,bcthw->bthw", weights.float(), activations)
            maps.append(torch.relu(m) if self.rectify else m)
        return torch.stack(maps, 1)

    def tubes(self, maps: torch.Tensor, size: tuple[int, int, int], normalize: bool = True) -> torch.Tensor:
        """Maps upsampled to ``size`` (T×H×W); normalised to [0, 1] per tube, or raw (for stitching clips)."""
        from ..core import normalize_tubes, upsample_tubes

        tubes = upsample_tubes(maps, size)
        if normalize:
            return normalize_tubes(tubes, clip_negative=self.clip_negative)
        return tubes.clamp(min=0) if self.clip_negative else tubes

    def run(self, clips: torch.Tensor) -> ClipForward:
        """:meth:`forward` on ``clips``; with gradients on a copy of the input that requires them, so a graph exists
        even when every parameter is frozen. Call inside :func:`preserved_state` (see :meth:`__call__`)."""
        return self.forward(clips.detach().clone().requires_grad_(True) if self.gradients else clips)

    def __call__(
        self,
        clips: torch.Tensor,
        target: object = None,
        topk: int = 1,
        size: tuple[int, int, int] | None = None,
        normalize: bool = True,
    ) -> Explanation:
        """Tubes (B×T×H×W, or B×K×… for several targets) for ``target`` (see :func:`resolve_targets`), upsampled to
        ``size`` (default: the clip's T×H×W). The model's train/eval flags, gradients, buffers and the RNG are
        left as found."""
        from ..core import Explanation, preserved_state, resolve_targets

        with preserved_state(self.model, grad=self.gradients):
            forward = self.run(clips)
            targets = resolve_targets(forward.logits.detach(), target, topk)
            maps = self.maps(forward, targets.view(targets.shape[0], -1))
        tubes = self.tubes(maps, tuple(size or clips.shape[-3:]), normalize)  # type: ignore[arg-type]
        return Explanation(tubes[:, 0] if targets.dim() == 1 else tubes, targets, forward.logits.detach())


_REGISTRY: dict[str, type[ExplanationMethod]] = {}
M = TypeVar("M", bound=type[ExplanationMethod])


def register_method(cls: M) -> M:
    """Class decorator: make ``cls`` available by its ``name`` (``--method``, the callback, ``--evaluate``)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name")
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> list[str]:
    """Registered methods, in registration order."""
    return list(_REGISTRY)


def get_method(name: str) -> type[ExplanationMethod]:
    if name not in _REGISTRY:
        raise BadArgument(f"unknown method {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
