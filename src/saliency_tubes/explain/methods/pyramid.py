"""Class Feature Pyramids (Stergiou, Kapidis, Kalliatakis, Chrysoulas, Veltkamp, Poppe: "Class Feature Pyramids for
Video Explanation", ICCV Workshops 2019, arXiv 1909.08611) over the stages a model declares.

The paper starts from the target's classifier weights and steps back through the network: at layer ``l`` each kept
kernel ``i`` scores every input channel ``j`` by its pooled kernel weight times the pooled input activation,
``s_ij = mean(W_l[i, j]) · mean(A_{l-1}[j])``, normalises the scores (divided by their sum, then min–max) and
keeps the channels scoring at least ``θ``; the kept channels of ``l - 1`` are the union over ``i``. A depth's class
feature tube is the sum of its kept channels' activations.

What is implemented here, for any model that declares its stages (``stage_groups``), with no architecture-specific
code (grouped, depth-wise, multi-fibre, (2+1)D convolutions and branches all go through autograd):

- depths: the explained ``layers`` (default :func:`~.base.default_layers`, e.g. ``layer2, layer3, layer4``), with
  activations ``A_d`` (B×C_d×T_d×H_d×W_d), shallow → deep;
- deepest depth ``D``: the relevance of channel ``c`` is ``r_D[c] = Σ_thw (∂y_k/∂A_D ⊙ A_D)[c]``; for the usual
  head (global average pooling + linear) this is exactly ``W[k, c] · mean(A_D[c])``, the paper's first step;
- step back: with ``S_{d+1}`` the kept channels of depth ``d + 1`` and
  ``s_{d+1} = Σ_{i∈S_{d+1}} σ_i · mean(A_{d+1}[i])`` (the mean of that depth's class tube ``M_{d+1}``, below), ``r_d[j] = Σ_thw (∂s_{d+1}/∂A_d ⊙ A_d)[j]``: one backward pass through
  one stage. For one convolution without a non-linearity this is ``Σ_i Σ_offsets W[i, j, ·] · mean(A_d[j])`` (up to
  padding), the paper's score with the kernel summed instead of averaged; across a whole stage (blocks, residual
  paths, BN and ReLU) it is its first-order generalisation;
- kept channels: ``S_d = {c : r_d[c] > 0 and r_d[c] ≥ θ · max_c r_d[c]}`` (``threshold`` θ = 0.6 by default, in
  the range the paper used, 0.55–0.65), per sample;
- class tube of depth ``d``: ``M_d = Σ_{c∈S_d} σ_c · A_d[c]`` with ``σ_c = -1`` where the channel's mean
  activation is negative, else ``+1``: on a rectified output, as in the paper's networks, every ``σ_c`` is ``+1``
  and this is the paper's sum of the kept channels' activations; a channel kept for its negative response (a
  pre-activation output, e.g. MFNet's units or a residual branch before its ReLU: positive relevance with a negative
  mean activation means a negative gradient) counts with its sign flipped, so that it adds evidence;
- fused tube (ours; the paper shows the depths side by side): every ``M_d`` upsampled to the finest depth's grid,
  its negative part zeroed, divided by its maximum, and combined by the voxel-wise geometric mean, so a voxel is
  high only where the class's kernels respond at every depth (the deep ones class-specific but coarse, the shallow
  ones fine).

Departures from the paper: relevance is propagated from stage to stage by gradient × activation, not from
convolution to convolution through pooled kernel weights; the kept channels of a depth are selected once against
the kept set of the next depth as a whole (the sum of their means), not per kept kernel and then united; negative
relevance is never kept (the paper's min–max would keep the least negative score's neighbours); kept channels
count with the sign of their mean activation; and the depths are fused. Cost: the forward pass plus one backward
pass per target from the logits to the shallowest depth, without any parameter's gradient.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from .base import ClipForward, ExplanationMethod, register_method

if TYPE_CHECKING:
    import torch

_DIMS = (2, 3, 4)


@register_method
class ClassFeaturePyramid(ExplanationMethod):
    name = "pyramid"
    summary = "Class Feature Pyramids: the class's kernels traced back through the stages, one tube per depth, fused"
    gradients = True
    multi_layer = True
    layers_by_default = True
    token_layers = False  # the walk back goes through convolution stages
    fusion = "geometric"
    threshold: ClassVar[float] = 0.6

    def keep(self, relevance: torch.Tensor) -> torch.Tensor:
        """B×C mask (float) of the channels kept for their ``relevance`` (B×C)."""
        positive = relevance.clamp(min=0)
        top = positive.amax(1, keepdim=True)
        return ((positive >= self.threshold * top) & (positive > 0)).float()

    def maps_by_layer(self, forward: ClipForward, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch

        assert forward.layers is not None
        names, acts = list(forward.layers), list(forward.layers.values())
        maps: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        for k in range(targets.shape[1]):
            upstream = forward.logits.gather(1, targets[:, k : k + 1]).sum()
            for d in reversed(range(len(acts))):
                (grad,) = torch.autograd.grad(
                    upstream, acts[d], retain_graph=True, allow_unused=True, materialize_grads=True
                )
                activations, grad = acts[d].detach().float(), grad.float()
                mean = activations.mean(_DIMS)
                signed = self.keep((grad * activations).sum(_DIMS)) * torch.where(mean < 0, -1.0, 1.0)
                maps[names[d]].append(torch.einsum("bc,bcthw->bthw", signed, activations))
                if d:  # the mean of this depth's class tube, with the graph down to the depth below
                    upstream = (signed.to(acts[d].dtype)[..., None, None, None] * acts[d]).mean(_DIMS).sum()
        return {name: torch.stack(m, 1) for name, m in maps.items()}
