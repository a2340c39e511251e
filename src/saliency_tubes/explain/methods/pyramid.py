"""Class Feature Pyramids (Stergiou, Kapidis, Kalliatakis, Chrysoulas, Veltkamp, Poppe: "Class Feature Pyramids for
Video Explanation", ICCV Workshops 2019, arXiv 1909.08611) over the stages a model declares.

The paper starts from the target's classifier weights and steps back through the network: at layer ``l`` each kept
kernel ``i`` scores every input channel ``j`` by its pooled kernel weight times the pooled input activation,
``s_ij = mean(W_l[i, j]) · mean(A_{l-1}[j])``, normalises the scores (divided by their sum, then min–max) and
keeps the channels scoring at least ``θ``; the kept channels of ``l - 1`` are the union over ``i``. A depth's class
feature tube is the sum of its kept channels' activations.

What is implemented here, for any model that declares its stages (``stage_groups``), with no architecture-specific
code (grouped, depth-wise, multi-fibre, (2+1)D convolutions and branches all go through autograd):

- depths: the explained ``layers`` (default: every declared stage after the stem, ``stage_names(model)[1:]``, e.g.
  ``layer1, layer2, layer3, layer4``), with activations ``A_d`` (B×C_d×T_d×H_d×W_d), shallow → deep;
- the signal walked back: ``s_D = y_k`` (the target's score) at the deepest depth, and ``s_d`` = the mass of depth
  ``d``'s class tube (below) for the depth under it;
- relevance of channel ``c`` at depth ``d``, voxel by voxel: ``R_d = G_d ⊙ A_d`` with ``G_d = ∂s_{d+1}/∂A_d`` (one
  backward pass through one stage); per channel ``r_d[c] = Σ_thw R_d[c]``. At the deepest depth of a global average
  pool + linear head ``r_D[c] = W[k, c] · mean(A_D[c])``, exactly the paper's first step;
- kept channels: ``S_d = {c : r_d[c] > 0 and r_d[c] ≥ θ · max_c r_d[c]}`` per sample (``threshold`` θ, default 0:
  every channel whose net contribution to the class above is positive);
- class tube of depth ``d``: ``M_d = ReLU(Σ_{c∈S_d} R_d[c])``, the kept channels' activations each weighted at its
  own voxel by how much it feeds the class evidence above — the paper's sum of kept activations, made spatially
  selective;
- walk back: ``s_d = Σ_thw M_d`` with ``G_d`` held fixed, so ``∂s_d/∂A_{d-1}`` passes the kept channels' gradients
  down *only from the voxels where depth d's class tube is positive*: the kernels kept at the depth below are those
  that feed the class's kept kernels where they carry the class, not wherever they fire;
- fused tube (ours; the paper shows the depths side by side): every ``M_d`` upsampled to the finest depth's grid,
  divided by its maximum, and combined by the voxel-wise geometric mean, so a voxel is high only where every depth
  carries the class (the deep ones class-specific but coarse, the shallow ones fine).

Departures from the paper: relevance is propagated from stage to stage by gradient × activation, not from
convolution to convolution through pooled kernel weights; it is kept per voxel, so a depth's tube weights each kept
activation by its local relevance and the walk back starts only from the voxels that carry the class (the paper's
plain sum of kept activations lights every place a kept kernel responds, e.g. identical distractors); the kept
channels of a depth are selected once against the class tube above as a whole, not per kept kernel and then
united; θ defaults to 0 (positive net relevance) instead of the paper's 0.55–0.65, since with per-voxel
weighting the spatial selection is made by the relevance, and a high θ on narrow stages keeps one or two kernels
whose responses include the distractors; the stage after the stem is a depth; and the depths are fused. Cost: the
forward pass plus one backward pass per target from the logits to the shallowest depth (one stage at a time),
without any parameter's gradient.
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
    default_from_stage = 1
    fusion = "geometric"
    threshold: ClassVar[float] = 0.0

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
            upstream = forward.logits.gather(1, targets[:, k : k + 1]).sum()  # s_D = y_k
            for d in reversed(range(len(acts))):
                (grad,) = torch.autograd.grad(
                    upstream, acts[d], retain_graph=True, allow_unused=True, materialize_grads=True
                )
                activations = acts[d].detach().float()
                weights = self.keep((grad.float() * activations).sum(_DIMS))[..., None, None, None] * grad.float()
                maps[names[d]].append(torch.relu((weights * activations).sum(1)))  # M_d
                if d:  # s_d = Σ M_d with the weights fixed, with the graph down to the depth below
                    upstream = torch.relu((weights.to(acts[d].dtype) * acts[d]).sum(1)).sum()
        return {name: torch.stack(m, 1) for name, m in maps.items()}
