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
- evidence of depth ``d``: ``E_d = ReLU(Σ_{c∈S_d} R_d[c])``, the kept channels' activations each weighted at its own
  voxel by how much it feeds the class evidence above;
- walk back: ``s_d = Σ_thw E_d`` with ``G_d`` held fixed, so ``∂s_d/∂A_{d-1}`` passes the kept channels' gradients
  down *only from the voxels where depth d's evidence is positive*: the kernels kept at the depth below are those
  that feed the class's kept kernels where they carry the class, not wherever they fire;
- class tube of depth ``d``: at the deepest depth ``M_D = E_D`` (CAM over the kept channels on a pooled linear
  head); above it, ``M_d = ReLU(Σ_{c∈S_d} ŵ_d[c] · A_d[c]) · M_{d+1}↑ / max M_{d+1}`` — the paper's sum of the kept
  kernels' activations, each weighted by its share of the positive relevance ``ŵ_d[c] = r_d[c] / Σ_{S_d} r_d``, and
  localised by the deeper depth's class tube (trilinearly upsampled to depth ``d``'s grid): a kept kernel counts
  where it fires *inside* the class's region one depth down, so the identical distractors the plain sum lights are
  left out, and every depth carries all the deeper ones;
- fused tube: the finest depth's class tube (the paper shows the depths side by side).

Why activations and not ``E_d`` in the shallow tubes: the fine depths' gradients saturate where the class evidence
is certain. On the standard-stride R3D-10 a ``grow`` clip's early, small disc gets 0.00–0.02 of the maximum from
LayerCAM on ``layer1`` (and from ``E_layer1``) although the model needs it (inserting the actor's mask alone keeps
the class), so tubes built from ``E_d`` ranked the late frames' background above the early frames' actor and beat a
random map on insertion in only 80% of the clips; the kept kernels do fire on that disc. Chosen on the synthetic
validation split (R3D-10 standard strides, 120 clips, zero baseline: lift 12.1 against 7.4, pointing game 0.975
against 0.927, insertion better than random in 99% of clips against 93%); the README shows the held-out figures.

Departures from the paper: relevance is propagated from stage to stage by gradient × activation, not from
convolution to convolution through pooled kernel weights, and the walk back starts only from the voxels that carry
the class; a depth's tube weights each kept kernel by its share of the relevance and is localised by the deeper
tube (the paper's plain sum of kept activations lights every place a kept kernel responds, e.g. identical
distractors); the kept channels of a depth are selected once against the evidence above as a whole, not per kept
kernel and then united; θ defaults to 0 (positive net relevance) instead of the paper's 0.55–0.65, since a high θ
on narrow stages keeps one or two kernels whose responses include the distractors; the stage after the stem is a
depth; and the finest depth is the fused tube. Cost: the forward pass plus one backward pass per target from the
logits to the shallowest depth (one stage at a time), without any parameter's gradient.
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
    fusion = "finest"  # each depth's tube carries the deeper ones as its gate
    threshold: ClassVar[float] = 0.0

    def keep(self, relevance: torch.Tensor) -> torch.Tensor:
        """B×C mask (float) of the channels kept for their ``relevance`` (B×C)."""
        positive = relevance.clamp(min=0)
        top = positive.amax(1, keepdim=True)
        return ((positive >= self.threshold * top) & (positive > 0)).float()

    def maps_by_layer(self, forward: ClipForward, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch

        from ..core import upsample_tubes

        assert forward.layers is not None
        names, acts = list(forward.layers), list(forward.layers.values())
        maps: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        for k in range(targets.shape[1]):
            upstream = forward.logits.gather(1, targets[:, k : k + 1]).sum()  # s_D = y_k
            above: torch.Tensor | None = None
            for d in reversed(range(len(acts))):
                (grad,) = torch.autograd.grad(
                    upstream, acts[d], retain_graph=True, allow_unused=True, materialize_grads=True
                )
                activations = acts[d].detach().float()
                relevance = (grad.float() * activations).sum(_DIMS)  # r_d
                kept = self.keep(relevance)
                weights = kept[..., None, None, None] * grad.float()
                if above is None:  # the deepest depth: M_D = E_D
                    tube = torch.relu((weights * activations).sum(1))
                else:  # M_d = ReLU(Σ_kept ŵ_d[c] · A_d[c]) · M_{d+1}, upsampled and divided by its maximum
                    share = kept * relevance.clamp(min=0)
                    share = share / share.sum(1, keepdim=True).clamp(min=1e-30)
                    features = torch.relu(torch.einsum("bc,bcthw->bthw", share, activations))
                    t, h, w = activations.shape[-3:]
                    gate = upsample_tubes(above[:, None], (t, h, w))[:, 0].clamp(min=0)
                    tube = features * gate / gate.flatten(1).amax(1).clamp(min=1e-30)[:, None, None, None]
                maps[names[d]].append(tube)
                above = tube
                if d:  # s_d = Σ E_d with the weights fixed, with the graph down to the depth below
                    upstream = torch.relu((weights.to(acts[d].dtype) * acts[d]).sum(1)).sum()
        return {name: torch.stack(m, 1) for name, m in maps.items()}
