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

from collections.abc import Callable
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
    layers: dict[str, torch.Tensor] | None = None
    """Multi-layer methods: every explained layer's activations read as volumes, shallow → deep (the order the
    forward pass produced them); ``activations`` is then the deepest of them."""
    sources: dict[str, tuple[torch.Tensor, TokenLayout | None]] | None = None
    """Multi-layer methods: per layer, the tensor the layer returned (what gradients are taken against) and its
    token layout (``None`` for a volume, which is then the tensor itself)."""
    attention: list[Any] | None = None
    """Attention methods: every block's attention as they read it, in the order the blocks ran."""


class ExplanationMethod:
    """Turns a batch of clips into tubes for target classes.

    Class attributes a method sets: ``name`` (its registry key, the ``--method`` choice), ``gradients`` (whether
    :meth:`channel_weights` needs ∂score/∂activations: one backward pass to the layer per target), ``rectify``
    (ReLU on the low-resolution map, as Grad-CAM does), ``takes_layer`` (whether a ``layer`` other than the output
    of ``forward_features`` may be explained) and a one-line ``summary`` for ``--help``.

    Multi-layer methods set ``multi_layer`` (they accept ``layers``, a list of module names) and, when they explain
    several layers even if none are named, ``layers_by_default`` (then ``layers=None`` means
    :func:`default_layers`: the output of every stage from the second after the stem on, e.g. ``layer2, layer3,
    layer4``). Each layer gets its own low-resolution map (:meth:`maps_by_layer`, by default :meth:`layer_map` per
    layer with the gradients of one backward pass to all of them), and :meth:`fuse` combines them into the fused map
    (``fusion``: ``"max"``, ``"mean"``, ``"geometric"`` or ``"finest"``, after upsampling every map to the finest
    layer's grid and dividing it by its maximum). ``self.layers`` is the list explained (``None``: one layer, as above).

    ``clip_negative`` zeroes negative evidence after upsampling and before normalising, so a region with no evidence
    for the class is 0 rather than lifted by the most negative one; ``False`` is the original Saliency Tubes
    min–max over the signed map.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    gradients: ClassVar[bool] = False
    rectify: ClassVar[bool] = False
    takes_layer: ClassVar[bool] = True
    multi_layer: ClassVar[bool] = False
    layers_by_default: ClassVar[bool] = False
    default_from_stage: ClassVar[int] = 2
    """With ``layers_by_default``: the first declared stage explained by default (``stage_names(model)[i:]``; 2: from
    the second stage after the stem on)."""
    fusion: ClassVar[str] = "max"
    token_layers: ClassVar[bool] = True  # False: the method needs volumes of convolution stages (the pyramid's walk)

    def __init__(
        self,
        model: nn.Module,
        layer: str | None = None,
        clip_negative: bool = True,
        layers: list[str] | None = None,
    ):
        from ...models.contract import check_contract

        check_contract(model)
        self.model: Any = model  # follows the contract (checked above): forward_features, forward_head, ...
        self.layer, self.clip_negative = layer, clip_negative
        self.layers: list[str] | None = None
        self._module: nn.Module | None = None
        self._modules: dict[str, nn.Module] = {}
        if layers is not None:
            from ..multi_layer import check_layers  # imports this package: not at module level

            check_layers(self.name, layers)  # a list of names, for a method that takes one
        if layers is not None and layer is not None:
            raise BadArgument("give --layer or --layers, not both")
        if layer is not None and not self.takes_layer:
            takers = ", ".join(n for n, m in _REGISTRY.items() if m.takes_layer)
            raise BadArgument(f"--layer applies to --method {takers}; {self.name} explains the last features")
        if self.layers_by_default and layers is None:
            layers = [layer] if layer is not None else default_layers(model, self.default_from_stage)
        if layers is not None:
            if not layers:
                raise BadArgument(f"--layers needs at least one layer for {self.name}")
            self.layers = list(dict.fromkeys(layers))
            self._modules = {name: _find_module(model, name, "--layers") for name in self.layers}
        elif layer is not None:
            self._module = _find_module(model, layer, "--layer")

    # The hook -------------------------------------------------------------------------------------------------
    def channel_weights(
        self, activations: torch.Tensor, grads: torch.Tensor | None, targets: torch.Tensor
    ) -> torch.Tensor:
        """B×C weights of the channels of ``activations`` (B×C×T'×H'×W') for ``targets`` (B class indices);
        ``grads`` are ∂score/∂activations when the class sets ``gradients``, else ``None``."""
        raise NotImplementedError

    def layer_map(self, activations: torch.Tensor, grads: torch.Tensor | None, targets: torch.Tensor) -> torch.Tensor:
        """B×T'×H'×W' map of one layer for ``targets`` (B): by default ``Σ_c w_c·A_c`` with the weights of
        :meth:`channel_weights`, rectified if the class sets ``rectify``. A method whose weights are per voxel
        (LayerCAM) overrides this instead of :meth:`channel_weights`."""
        import torch

        m = torch.einsum("bc,bcthw->bthw", self.channel_weights(activations, grads, targets).float(), activations)
        return torch.relu(m) if self.rectify else m

    # Shared machinery ----------------------------------------------------------------------------------------
    def forward(self, clips: torch.Tensor) -> ClipForward:
        """The layer's activations and the logits; call inside :func:`preserved_state` (see :meth:`__call__`).
        Token outputs are read as a volume by :mod:`..tokens`. Without a ``layer`` a gradient method explains the
        output of ``forward_features`` when it is a volume, else the last of the model's ``explain_layers()`` —
        the one before it when the head reads a class token (``forward_features``' tokens have a prefix and
        ``cam_exact`` is False): the last block's patch tokens reach such a head through nothing (zero gradient)."""
        from ..tokens import LAST_FEATURES, captured_tensor, explain_layers, layout_of, to_volume

        if self.layers is not None:
            outputs, logits = _outputs_of(self._modules, lambda: self.model(clips))
            missing = [name for name in self.layers if name not in outputs]
            if missing:
                raise BadArgument(f"layer {missing[0]!r} is not used in {type(self.model).__name__}'s forward pass")
            # dicts keep insertion order: the order the forward pass finished the layers, shallow → deep
            sources = {}
            for name, output in outputs.items():
                layout = layout_of(self.model, name, output)
                if layout is not None and not self.token_layers:
                    raise BadArgument(f"{self.name} needs convolutional layers; {name!r} returns tokens")
                sources[name] = (captured_tensor(output), layout)
            volumes = {name: to_volume(raw, layout, name, self.model) for name, (raw, layout) in sources.items()}
            return ClipForward(next(reversed(volumes.values())), logits, layers=volumes, sources=sources)
        if self._module is not None:
            watched = {self.layer or LAST_FEATURES: self._module}
        elif self.gradients:  # candidates for the default layer, used only if the features are tokens
            modules = dict(self.model.named_modules())
            watched = {name: modules[name] for name in explain_layers(self.model)[-2:]}
        else:
            watched = {}

        def run() -> tuple[torch.Tensor | None, torch.Tensor]:
            if self._module is not None:
                return None, self.model(clips)
            features = self.model.forward_features(clips)
            return features, self.model.forward_head(features)

        captured, (features, logits) = _outputs_of(watched, run)
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
        return ClipForward(to_volume(raw, layout, name, self.model), logits, None if layout is None else raw, layout)

    def maps(self, forward: ClipForward, targets: torch.Tensor) -> torch.Tensor:
        """Raw low-resolution maps B×K×T'×H'×W' for ``targets`` (B×K); for a multi-layer method the fused map, on the
        finest layer's grid (:meth:`fuse` of :meth:`maps_by_layer`)."""
        import torch

        from ..tokens import to_volume

        if self.layers is not None:
            return self.fuse(self.maps_by_layer(forward, targets))
        activations = forward.activations.detach().float()
        explained = forward.activations if forward.captured is None else forward.captured  # in the graph
        maps = []
        for k in range(targets.shape[1]):
            grads = None
            if self.gradients:
                score = forward.logits.gather(1, targets[:, k : k + 1]).sum()
                (grads,) = torch.autograd.grad(score, explained, retain_graph=k + 1 < targets.shape[1])
                grads = to_volume(grads, forward.layout).float()  # read as the activations were
            maps.append(self.layer_map(activations, grads, targets[:, k]))
        return torch.stack(maps, 1)

    def maps_by_layer(self, forward: ClipForward, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Raw maps B×K×T'_l×H'_l×W'_l of every explained layer (shallow → deep) for ``targets`` (B×K): by default
        :meth:`layer_map` on each layer, with the gradients of one backward pass per target to all the layers."""
        import torch

        from ..tokens import to_volume

        assert forward.layers is not None and forward.sources is not None, "maps_by_layer needs a multi-layer forward"
        names, acts = list(forward.layers), list(forward.layers.values())
        sources = list(forward.sources.values())
        detached = [a.detach().float() for a in acts]
        maps: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        for k in range(targets.shape[1]):
            grads: list[torch.Tensor | None] = [None] * len(acts)
            if self.gradients:
                score = forward.logits.gather(1, targets[:, k : k + 1]).sum()
                found = torch.autograd.grad(
                    score,
                    [raw for raw, _ in sources],
                    retain_graph=k + 1 < targets.shape[1],
                    allow_unused=True,
                    materialize_grads=True,
                )
                grads = [to_volume(g, layout).float() for g, (_, layout) in zip(found, sources, strict=True)]
            for name, a, g in zip(names, detached, grads, strict=True):
                maps[name].append(self.layer_map(a, g, targets[:, k]))
        return {name: torch.stack(m, 1) for name, m in maps.items()}

    def fuse(self, maps: dict[str, torch.Tensor]) -> torch.Tensor:
        """One map from the layers' maps (B×K×T'_l×H'_l×W'_l each): every map upsampled to the finest grid (the
        largest T', H' and W' among the layers), its negative part zeroed and divided by its maximum (per sample and
        target), then combined voxel by voxel according to ``fusion``: ``"max"`` (the strongest layer),
        ``"mean"``, ``"geometric"`` (the geometric mean: high only where every layer agrees), or ``"finest"`` (the
        first, shallowest layer's map alone: for a method whose finest map already carries the deeper ones, as the
        Class Feature Pyramid's gated tubes do). A layer whose map is zero everywhere for a sample and target (one no
        gradient reaches, as the last block of a class-token model: only the class token meets the head) says nothing
        and is left out of that sample's geometric mean instead of zeroing it."""
        import torch

        from ..core import upsample_tubes

        grid = tuple(max(m.shape[-3 + i] for m in maps.values()) for i in range(3))
        scaled = []
        for m in list(maps.values())[: 1 if self.fusion == "finest" else None]:
            up = upsample_tubes(m.float(), grid).clamp(min=0)  # type: ignore[arg-type]
            scaled.append(up / up.flatten(-3).amax(-1).clamp(min=1e-12)[..., None, None, None])
        stack = torch.stack(scaled)
        if self.fusion == "finest":
            return stack[0]
        if self.fusion == "max":
            return stack.amax(0)
        if self.fusion == "mean":
            return stack.mean(0)
        if self.fusion == "geometric":
            alive = (stack.flatten(-3).amax(-1) > 0)[..., None, None, None]  # L×B×K×1×1×1
            count = alive.sum(0)
            fused = torch.where(alive, stack, torch.ones_like(stack)).prod(0).pow(1 / count.clamp(min=1))
            return fused * (count > 0)
        raise ValueError(f"unknown fusion {self.fusion!r}")

    def layer_tubes(
        self, maps: dict[str, torch.Tensor], frames: int, normalize: bool = True
    ) -> dict[str, torch.Tensor]:
        """Every layer's raw maps (B×K×T'_l×H'_l×W'_l) upsampled in time to ``frames`` and kept at the layer's own
        H'_l×W'_l: normalised to [0, 1] per tube, or raw (for stitching clips), as :meth:`tubes`."""
        return {name: self.tubes(m, (frames, *m.shape[-2:]), normalize) for name, m in maps.items()}

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

        per_layer = None
        with preserved_state(self.model, grad=self.gradients):
            forward = self.run(clips)
            targets = resolve_targets(forward.logits.detach(), target, topk)
            if self.layers is not None:
                per_layer = self.maps_by_layer(forward, targets.view(targets.shape[0], -1))
                maps = self.fuse(per_layer)
            else:
                maps = self.maps(forward, targets.view(targets.shape[0], -1))
        full: tuple[int, int, int] = size or tuple(clips.shape[-3:])  # type: ignore[assignment]
        tubes = self.tubes(maps, full, normalize)
        single = targets.dim() == 1
        layers = None
        if per_layer is not None:
            layers = {n: t[:, 0] if single else t for n, t in self.layer_tubes(per_layer, full[0], normalize).items()}
        return Explanation(tubes[:, 0] if single else tubes, targets, forward.logits.detach(), layers)


def _find_module(model: nn.Module, name: str, option: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules:
        shown = ", ".join(list(modules)[1:6])
        raise BadArgument(
            f"{option} {name!r} is not a layer of {type(model).__name__} (no layer {name!r}; e.g. {shown}, ...)"
        )
    return modules[name]


R = TypeVar("R")


def _outputs_of(modules: dict[str, nn.Module], run: Callable[[], R]) -> tuple[dict[str, Any], R]:
    """``run()`` with a forward hook on each of ``modules`` keeping its output by name (in the order the forward
    pass produced them); the hooks are always removed."""
    outputs: dict[str, Any] = {}
    handles = [
        m.register_forward_hook(lambda _m, _i, out, n=n: outputs.__setitem__(n, out)) for n, m in modules.items()
    ]
    try:
        result = run()
    finally:
        for handle in handles:
            handle.remove()
    return outputs, result


def default_layers(model: nn.Module, first: int = 2) -> list[str]:
    """The layers a multi-layer method explains by default: the output of every declared stage from the ``first``
    on (``stage_names(model)[first:]``; 2, the default: from the second after the stem on, e.g. ``layer2, layer3,
    layer4`` of a ResNet, ``conv3, conv4, tail`` of MFNet; 1: every stage after the stem), or the last stage alone
    where a model declares no more stages than that."""
    from ...models.contract import stage_names

    if not callable(getattr(model, "stage_groups", None)):
        raise BadArgument(f"{type(model).__name__} does not declare its stages (stage_groups); name the --layers")
    names = stage_names(model)
    return names[first:] or names[-1:]


_REGISTRY: dict[str, type[ExplanationMethod]] = {}
M = TypeVar("M", bound=type[ExplanationMethod])


def register_method(cls: M) -> M:
    """Class decorator: make ``cls`` available by its ``name`` (``--method``, the callback, ``--evaluate``)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} needs a name")
    _REGISTRY[cls.name] = cls
    return cls


def default_method(model: Any) -> str:
    """The method used when none is named: Saliency Tubes (CAM) where it is exact — the head pools a feature volume
    into a linear layer — else Grad-CAM (a class-token head, or a LayerNorm between the pooling and the classifier:
    the model's ``cam_exact = False`` and its ``cam_note``)."""
    return "saliency_tubes" if getattr(model, "cam_exact", True) else "gradcam"


def method_names() -> list[str]:
    """Registered methods, in registration order."""
    return list(_REGISTRY)


def get_method(name: str) -> type[ExplanationMethod]:
    if name not in _REGISTRY:
        raise BadArgument(f"unknown method {name!r}; choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[name]
