"""Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020) for ViTs.

Every block's attention ``A`` (B×heads×N×N) is recomputed from its attention module's input with the module's own
weights — ``softmax(q·kᵀ·scale)`` — by a forward hook that is always removed. Per block: the heads are fused
(``head_fusion``: mean, max or min), the ``discard_ratio`` smallest entries of the fused N×N matrix of each clip
are set to zero, the residual identity is added and every row renormalised to sum to 1; the blocks are rolled
out by matrix product, first block rightmost: ``R = Â_L · … · Â_1``.

The relevance of each token: with a class token (``prefix`` > 0 in the layout of ``forward_features``' tokens),
its row of ``R`` (the first prefix token's); for a mean-pooled ViT without one, the mean of ``R`` over the query
rows — the pooled output is the mean of the last tokens, so each token's share in it is the column mean. The
grid tokens' relevance becomes the T'×H'×W' map (:mod:`saliency_tubes.explain.tokens`).

Rollout is class-agnostic: every target of a clip gets the same map (the target is still reported).

Supported attention modules: children named ``attn`` of the blocks, taking B×N×C tokens, with a ``qkv``
``nn.Linear`` (3·heads·d outputs; its bias, or separate ``q_bias``/``v_bias`` with no key bias as in VideoMAE),
``num_heads``, an optional ``scale`` (default d^-½), optional ``q_norm``/``k_norm``, ``norm``, ``gate`` (timm) and
``proj`` — timm's ``Attention`` and VideoMAE's. On the first call the recomputed ``proj(A·v)`` is checked against
the module's own output, so an attention that computes anything else (relative position bias, pooling, windows,
masks) is a one-line error rather than a wrong map.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...errors import BadArgument
from .base import ClipForward, ExplanationMethod, register_method

if TYPE_CHECKING:
    import torch
    from torch import nn

FUSIONS = ("mean", "max", "min")
SUPPORTED = "timm's Attention or VideoMAE's: qkv, num_heads, proj, B×N×C tokens"


def attention_probabilities(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(softmax(q·kᵀ·scale), v)`` of an attention module for its input tokens ``x`` (B×N×C), in float32."""
    import torch
    import torch.nn.functional as F

    m: Any = module
    bias = m.qkv.bias
    q_bias, v_bias = getattr(m, "q_bias", None), getattr(m, "v_bias", None)
    if bias is None and isinstance(q_bias, torch.Tensor) and isinstance(v_bias, torch.Tensor):
        bias = torch.cat([q_bias, torch.zeros_like(v_bias), v_bias])  # VideoMAE: no key bias
    b, n, _ = x.shape
    qkv = F.linear(x.float(), m.qkv.weight.float(), None if bias is None else bias.float())
    q, k, v = qkv.reshape(b, n, 3, m.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    if isinstance(getattr(m, "q_norm", None), torch.nn.Module):
        q, k = m.q_norm(q), m.k_norm(k)
    scale = getattr(m, "scale", None) or q.shape[-1] ** -0.5
    return (q * scale @ k.transpose(-2, -1)).softmax(-1), v


def attention_output(module: nn.Module, x: torch.Tensor, attn: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """What the module returns given its attention (for the check that we read the attention it used)."""
    import torch

    m: Any = module
    out = (attn @ v).transpose(1, 2).flatten(2)
    if isinstance(getattr(m, "norm", None), torch.nn.Module):
        out = m.norm(out.to(x.dtype)).float()
    if isinstance(getattr(m, "gate", None), torch.nn.Module):
        out = out * m.gate(x).float().sigmoid()
    return torch.nn.functional.linear(out, m.proj.weight.float(), None if m.proj.bias is None else m.proj.bias.float())


def fuse_heads(attn: torch.Tensor, head_fusion: str) -> torch.Tensor:
    """B×heads×N×N → B×N×N."""
    if head_fusion == "mean":
        return attn.mean(1)
    return attn.amax(1) if head_fusion == "max" else attn.amin(1)


def rollout_step(fused: torch.Tensor, discard_ratio: float) -> torch.Tensor:
    """One block's Â: the smallest ``discard_ratio`` of the entries zeroed (per clip), identity added, rows
    renormalised."""
    import torch

    fused = fused.clone()
    b, n, _ = fused.shape
    drop = int(n * n * discard_ratio)
    if drop:
        flat = fused.view(b, -1)
        flat.scatter_(1, flat.topk(drop, -1, largest=False).indices, 0.0)
    fused = fused + torch.eye(n, device=fused.device, dtype=fused.dtype)
    return fused / fused.sum(-1, keepdim=True)


def attention_blocks(model: nn.Module, method: str, supported: str = SUPPORTED) -> list[tuple[str, nn.Module]]:
    """The model's self-attention modules (children named ``attn`` of its blocks) that attention methods can read;
    a one-line refusal otherwise."""
    from torch import nn

    model_name = type(model).__name__
    found = [(n, m) for n, m in model.named_modules() if n.rsplit(".", 1)[-1] == "attn"]
    if not found:
        raise BadArgument(f"{method} needs self-attention blocks ({supported}); {model_name} has none")
    for n, m in found:
        parts = [getattr(m, "qkv", None), getattr(m, "proj", None)]
        if not all(isinstance(p, nn.Linear) for p in parts) or not isinstance(getattr(m, "num_heads", None), int):
            raise BadArgument(
                f"{method} cannot read the attention of {model_name}: {n} is a {type(m).__name__}, not {supported}"
            )
    return found


def attention_input(method: str, model: nn.Module, name: str, call: tuple, dims: int, supported: str) -> torch.Tensor:
    """The unmasked input tensor (``dims`` dimensions) of attention module ``name``'s call ``(args, kwargs, output)``,
    as an attention method's forward hook receives it; a one-line refusal for anything else."""
    import torch

    args, kwargs, output = call
    x = args[0] if args else None
    masked = kwargs.get("attn_mask") is not None or kwargs.get("mask") is not None or kwargs.get("is_causal")
    if not isinstance(x, torch.Tensor) or x.dim() != dims or masked or not isinstance(output, torch.Tensor):
        raise BadArgument(f"{method} cannot read the attention of {type(model).__name__}: {name} ({supported})")
    return x


def check_recomputed(
    method: str, model: nn.Module, name: str, module: nn.Module, ours: torch.Tensor, output: torch.Tensor, what: str
) -> None:
    """Refuses in one line when the output recomputed from the attention a method read (``ours``) is not the module's
    own ``output``: the module computes more than ``what``."""
    import torch

    theirs = output.detach().float()
    tol = 1e-3 if output.dtype == torch.float32 else 3e-2
    if ours.shape != theirs.shape or (ours.detach() - theirs).abs().max() > tol * (theirs.abs().max() + 1e-6):
        raise BadArgument(
            f"{method} cannot read the attention of {type(model).__name__}: {name} ({type(module).__name__}) "
            f"computes more than {what}"
        )


def forward_hooked(
    model: Any, modules: list[tuple[str, nn.Module]], hook: Any, clips: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, logits)`` of ``model`` with ``hook(name)`` as a forward hook (with kwargs) on each named module,
    always removed after."""
    handles = [m.register_forward_hook(hook(n), with_kwargs=True) for n, m in modules]
    try:
        features = model.forward_features(clips)
        return features, model.forward_head(features)
    finally:
        for handle in handles:
            handle.remove()


@register_method
class AttentionRollout(ExplanationMethod):
    name = "rollout"
    summary = "attention rollout over a ViT's blocks (mean heads); class-agnostic: one map for every target"
    takes_layer = False

    def __init__(
        self,
        model: nn.Module,
        layer: str | None = None,
        clip_negative: bool = True,
        layers: list[str] | None = None,
        head_fusion: str = "mean",
        discard_ratio: float = 0.0,
    ):
        super().__init__(model, layer, clip_negative, layers)
        if head_fusion not in FUSIONS:
            raise BadArgument(f"rollout head_fusion {head_fusion!r}: choose from {', '.join(FUSIONS)}")
        if not 0 <= discard_ratio < 1:
            raise BadArgument(f"rollout discard_ratio {discard_ratio}: in [0, 1)")
        self.head_fusion, self.discard_ratio = head_fusion, discard_ratio
        self._attention = attention_blocks(model, self.name)
        self._checked: set[str] = set()

    def forward(self, clips: torch.Tensor) -> ClipForward:
        from ..tokens import LAST_FEATURES, layout_of, to_volume

        model_name = type(self.model).__name__
        rolled: list[torch.Tensor] = []

        def hook(name: str):
            def read(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
                x = attention_input(self.name, self.model, name, (args, kwargs, output), 3, SUPPORTED)
                attn, v = attention_probabilities(module, x)
                if name not in self._checked:
                    ours = attention_output(module, x, attn, v)
                    check_recomputed(
                        self.name, self.model, name, module, ours, output, f"softmax(q·kᵀ)·v ({SUPPORTED})"
                    )
                    self._checked.add(name)
                step = rollout_step(fuse_heads(attn, self.head_fusion), self.discard_ratio)
                rolled.append(step if not rolled else step @ rolled.pop())

            return read

        features, logits = forward_hooked(self.model, self._attention, hook, clips)
        layout = layout_of(self.model, LAST_FEATURES, features)
        if not rolled or layout is None or layout.channels_last:
            raise BadArgument(f"rollout needs a ViT whose forward_features returns tokens; {model_name} does not")
        rollout = rolled[0]
        relevance = rollout[:, 0] if layout.prefix else rollout.mean(1)  # class token's row, or the mean row
        return ClipForward(to_volume(relevance[..., None], layout, LAST_FEATURES, self.model), logits)

    def maps(self, forward: ClipForward, targets: torch.Tensor) -> torch.Tensor:
        """The same relevance map (B×1×T'×H'×W') for every target."""
        volume = forward.activations.detach().float()
        return volume.expand(-1, targets.shape[1], -1, -1, -1).clone()
