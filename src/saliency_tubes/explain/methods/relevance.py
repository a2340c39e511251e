"""Gradient-weighted attention relevance (Chefer, Gur & Wolf, "Generic Attention-model Explainability for
Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV 2021, eq. 5–6): a class-specific attention rollout,
for ViTs and for window-attention transformers (torchvision's Swin3D).

Each block's attention ``A`` (per attention window: heads×w×w) is recomputed from its attention module's input with
the module's own weights (and, for windows, its relative position bias, cyclic shift and shift mask), and the module's
output is replaced by the output computed from that ``A`` — checked equal to the module's own on the first call — so
that ``∂score/∂A`` exists. Per target and block: ``Ā = mean_heads(|∇A ⊙ A|)`` (``sign="positive"``: the positive
part, the paper's rule), and the relevance ``R = (I + Ā_L)·…·(I + Ā_1)`` (the paper's ``R ← R + Ā·R``, first block
first). Only the pooled output's row of ``R`` is needed — the mean of the rows of the tokens the head reads (those
the score depends on: a class token, or every token it averages) — so it is computed as a vector pushed back
through the blocks, last block first (``v ← v + Āᵀv``), window by window: no N×N matrix is formed, and a windowed
model costs O(N·w) per block. Where a patch merging shrinks the token grid between blocks (Swin), a merged token's
relevance is shared equally among the tokens it was merged from. The identity's share (``vᵀ·I``, moved only by
the mergings) is left out, as the paper's ``R − I``; it is carried apart from the relevance gained through
attention, never subtracted (float32 would round the small gain away).

Why ``|∇A ⊙ A|`` by default: attention a block gives against the class is evidence about the class too; on the
small ViT of ``configs/vit_tiny_synthetic.yaml`` it points better on the validation split (pointing game 0.832 vs
0.810 for the positive part; README, "Video transformers").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import BadArgument
from .base import ClipForward, ExplanationMethod, register_method
from .rollout import (
    SUPPORTED,
    attention_blocks,
    attention_input,
    attention_output,
    attention_probabilities,
    check_recomputed,
    forward_hooked,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

SIGNS = ("absolute", "positive")
WINDOWED = "torchvision's ShiftedWindowAttention3d: qkv, proj, num_heads, window_size, shift_size, B×T×H×W×C input"


@dataclass
class AttentionRead:
    """One block's attention, window by window: ``attention`` B×G×heads×w×w (in the graph), ``index`` G×w (long):
    the token each window position is, in the block's input order (``tokens``: the token count; padding positions
    point at ``tokens`` and are dropped), ``grid`` the block's token grid for a channels-last input (else ``None``)."""

    attention: torch.Tensor
    index: torch.Tensor
    tokens: int
    grid: tuple[int, int, int] | None


def _is_windowed(module: nn.Module) -> bool:
    return all(hasattr(module, a) for a in ("window_size", "shift_size", "get_relative_position_bias"))


def _read_global(module: nn.Module, x: torch.Tensor) -> tuple[AttentionRead, torch.Tensor]:
    """timm's / VideoMAE's attention over all B×N×C tokens: one window."""
    import torch

    attn, v = attention_probabilities(module, x)
    attn = attn[:, None]  # one window; the output is computed from this tensor, so gradients reach it
    n = x.shape[1]
    index = torch.arange(n, device=x.device)[None]
    return AttentionRead(attn, index, n, None), attention_output(module, x, attn[:, 0], v)


def _window_index(grid: tuple[int, ...], window: list[int], shift: list[int], device) -> torch.Tensor:
    """G×w: the token (index t·H·W + h·W + w into the unpadded grid; ``T·H·W`` for padding) at each position of each
    window, after padding the grid to whole windows and rolling it by ``-shift`` as the attention does."""
    import torch
    import torch.nn.functional as F

    t, h, w = grid
    ids = torch.arange(t * h * w, device=device).view(t, h, w)
    pads = [(-s) % k for s, k in zip(grid, window, strict=True)]
    ids = F.pad(ids, (0, pads[2], 0, pads[1], 0, pads[0]), value=t * h * w)
    ids = torch.roll(ids, shifts=[-s for s in shift], dims=(0, 1, 2))
    tp, hp, wp = ids.shape
    ids = ids.view(tp // window[0], window[0], hp // window[1], window[1], wp // window[2], window[2])
    return ids.permute(0, 2, 4, 1, 3, 5).reshape(-1, window[0] * window[1] * window[2])


def _shift_mask(grid: tuple[int, ...], window: list[int], shift: list[int], device) -> torch.Tensor:
    """G×w×w additive mask of a shifted window: -100 between positions that came from different regions of the
    padded grid (the cyclic roll brings far-apart regions into one window)."""
    import torch

    padded = [-(-s // k) * k for s, k in zip(grid, window, strict=True)]
    region = torch.zeros(padded, device=device)
    count = 0
    bounds = [((0, p - k), (p - k, p - s), (p - s, p)) for p, k, s in zip(padded, window, shift, strict=True)]
    for d0, d1 in bounds[0]:
        for h0, h1 in bounds[1]:
            for w0, w1 in bounds[2]:
                region[d0:d1, h0:h1, w0:w1] = count
                count += 1
    g = [p // k for p, k in zip(padded, window, strict=True)]
    region = region.view(g[0], window[0], g[1], window[1], g[2], window[2]).permute(0, 2, 4, 1, 3, 5)
    region = region.reshape(-1, window[0] * window[1] * window[2])
    return (region[:, :, None] != region[:, None, :]).float() * -100.0


def _read_windows(module: nn.Module, x: torch.Tensor) -> tuple[AttentionRead, torch.Tensor]:
    """torchvision's shifted 3-D window attention on a B×T×H×W×C input, recomputed window by window."""
    import torch.nn.functional as F

    m: Any = module
    b, t, h, w, c = x.shape
    grid = (t, h, w)
    window, shift = list(m.window_size), list(m.shift_size)
    for i, size in enumerate(grid):  # a window larger than the grid shrinks to it, unshifted (as the module does)
        if size <= window[i]:
            window[i], shift[i] = size, 0
    index = _window_index(grid, window, shift, x.device)
    n_windows, size = index.shape
    flat = F.pad(x.float().reshape(b, t * h * w, c), (0, 0, 0, 1))  # the padding token: zeros, as F.pad gives
    windows = flat[:, index.flatten()].view(b * n_windows, size, c)
    qkv = F.linear(windows, m.qkv.weight.float(), None if m.qkv.bias is None else m.qkv.bias.float())
    q, k, v = qkv.view(b * n_windows, size, 3, m.num_heads, c // m.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
    logits = (q * (c // m.num_heads) ** -0.5) @ k.transpose(-2, -1) + m.get_relative_position_bias(window).float()
    logits = logits.view(b, n_windows, m.num_heads, size, size)
    if sum(shift) > 0:
        logits = logits + _shift_mask(grid, window, shift, x.device)[None, :, None]
    attn = logits.softmax(-1)
    out = (attn.view(b * n_windows, m.num_heads, size, size) @ v).transpose(1, 2).reshape(b, n_windows * size, c)
    out = F.linear(out, m.proj.weight.float(), None if m.proj.bias is None else m.proj.bias.float())
    # back to the grid: every real token sits in exactly one window position
    real = index.flatten() < t * h * w
    tokens = out.new_zeros(b, t * h * w, c).index_copy(1, index.flatten()[real], out[:, real])
    return AttentionRead(attn, index, t * h * w, grid), tokens.view(b, t, h, w, c)


def _merge_back(v: torch.Tensor, parent: tuple[int, int, int], child: tuple[int, int, int]) -> torch.Tensor:
    """Relevance on a merged grid (B×T·H·W of ``parent``) shared equally among the tokens each merged token came
    from (child ``(t, h, w)`` → parent ``(t, h, w) // factor``, the factor per dimension rounded up: a Swin patch
    merging pads an odd grid)."""
    import torch

    factor = [-(-c // p) for c, p in zip(child, parent, strict=True)]
    axes = [torch.arange(c, device=v.device) // f for c, f in zip(child, factor, strict=True)]
    owner = (axes[0][:, None, None] * parent[1] + axes[1][None, :, None]) * parent[2] + axes[2][None, None, :]
    owner = owner.flatten()
    shares = torch.bincount(owner, minlength=parent[0] * parent[1] * parent[2]).clamp(min=1).to(v.dtype)
    return (v / shares)[:, owner]


@register_method
class AttentionRelevance(ExplanationMethod):
    name = "attention_relevance"
    summary = "class-specific attention relevance over a transformer's blocks (Chefer et al. 2021; ViT, Swin3D)"
    gradients = True
    takes_layer = False

    def __init__(
        self,
        model: nn.Module,
        layer: str | None = None,
        clip_negative: bool = True,
        layers: list[str] | None = None,
        sign: str = "absolute",
    ):
        super().__init__(model, layer, clip_negative, layers)
        if sign not in SIGNS:
            raise BadArgument(f"attention_relevance sign {sign!r}: choose from {', '.join(SIGNS)}")
        self.sign = sign
        self._attention = attention_blocks(model, self.name, f"{SUPPORTED}; or {WINDOWED}")
        self._checked: set[str] = set()

    def forward(self, clips: torch.Tensor) -> ClipForward:
        from ..tokens import LAST_FEATURES, layout_of

        model_name = type(self.model).__name__
        reads: list[AttentionRead] = []

        def hook(name: str):
            def replace(module: nn.Module, args: tuple, kwargs: dict, output: Any) -> torch.Tensor:
                windowed = _is_windowed(module)
                supported = WINDOWED if windowed else SUPPORTED
                x = attention_input(
                    self.name, self.model, name, (args, kwargs, output), 5 if windowed else 3, supported
                )
                read, ours = (_read_windows if windowed else _read_global)(module, x)
                if name not in self._checked:
                    check_recomputed(
                        self.name, self.model, name, module, ours, output, f"its attention·v ({supported})"
                    )
                    self._checked.add(name)
                reads.append(read)
                return ours.to(output.dtype)

            return replace

        features, logits = forward_hooked(self.model, self._attention, hook, clips)
        layout = layout_of(self.model, LAST_FEATURES, features)
        if not reads:
            raise BadArgument(f"{self.name}: no attention block of {model_name} ran in forward_features")
        last = reads[-1]
        if layout is None and last.grid is not None and tuple(features.shape[-3:]) != last.grid:
            raise BadArgument(
                f"{self.name}: {model_name}'s features ({tuple(features.shape[-3:])}) are not on its last attention "
                f"block's token grid {last.grid}"
            )
        if layout is None and last.grid is None:
            raise BadArgument(
                f"{self.name} needs a transformer whose forward_features returns tokens; {model_name} does not"
            )
        return ClipForward(features, logits, layout=layout, attention=reads)

    def maps(self, forward: ClipForward, targets: torch.Tensor) -> torch.Tensor:
        import torch

        reads: list[AttentionRead] = forward.attention or []
        maps = []
        for k in range(targets.shape[1]):
            score = forward.logits.gather(1, targets[:, k : k + 1]).sum()
            found = torch.autograd.grad(
                score,
                [forward.activations, *(r.attention for r in reads)],
                retain_graph=k + 1 < targets.shape[1],
                allow_unused=True,
                materialize_grads=True,
            )
            pooled = pooled_row(found[0], forward)
            grads = found[1:]
            # vᵀ = pooledᵀ·R splits into the identity's share (pooled, moved only by mergings) and the relevance
            # gained through attention, kept apart: their difference would lose the small part to rounding
            identity, gained = pooled, torch.zeros_like(pooled)
            for i in range(len(reads) - 1, -1, -1):
                read = reads[i]
                gained = gained + attention_step(read, grads[i], identity + gained, self.sign)
                if i and reads[i - 1].tokens != read.tokens:  # a patch merging between block i-1 and block i
                    before, after = reads[i - 1].grid, read.grid
                    if before is None or after is None:
                        raise BadArgument(f"{self.name}: the token count changes between blocks without a token grid")
                    identity, gained = _merge_back(identity, after, before), _merge_back(gained, after, before)
            maps.append(token_volume(gained, reads[0], forward, self.model))
        return torch.stack(maps, 1)


def pooled_row(reach: torch.Tensor, forward: ClipForward) -> torch.Tensor:
    """B×N: the row of the pooled output — the mean over the tokens the head reads (a class token, or all the tokens
    it averages), found as those where the score's gradient at the features (``reach``) is not zero."""
    found = reach.abs().sum(-1) if forward.layout is not None else reach.abs().flatten(2).sum(1)
    pooled = (found > 0).float()
    return pooled / pooled.sum(1, keepdim=True).clamp(min=1)


def attention_step(read: AttentionRead, grad: torch.Tensor, vector: torch.Tensor, sign: str) -> torch.Tensor:
    """One block's ``vᵀ·Ā`` for a B×N ``vector`` over its input tokens, window by window: ``Ā = mean_heads(|∇A ⊙ A|)``
    (``sign="positive"``: the positive part of ``∇A ⊙ A``) from the block's attention and its gradient ``grad``."""
    import torch

    weighted = grad.float() * read.attention.detach()
    fused = (weighted.abs() if sign == "absolute" else weighted.clamp(min=0)).mean(2)  # B×G×w×w
    inflow = torch.nn.functional.pad(vector, (0, 1))[:, read.index]  # B×G×w (0: padding)
    spread = torch.einsum("bgi,bgij->bgj", inflow, fused).flatten(1)
    keep = read.index.flatten() < read.tokens
    return torch.zeros_like(vector).index_add(1, read.index.flatten()[keep], spread[:, keep])


def token_volume(vector: torch.Tensor, read: AttentionRead, forward: ClipForward, model: nn.Module) -> torch.Tensor:
    """A B×N vector over ``read``'s input tokens as a B×T'×H'×W' volume: on the block's grid (channels-last), or
    through the model's token layout."""
    from ..tokens import LAST_FEATURES, to_volume

    if read.grid is not None:
        return vector.view(vector.shape[0], *read.grid)
    assert forward.layout is not None
    return to_volume(vector[..., None], forward.layout, LAST_FEATURES, model)[:, 0]
