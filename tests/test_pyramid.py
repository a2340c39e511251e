"""Class Feature Pyramids: a loop-based reference of the walk back (per kept kernel, per channel) and of each
depth's class tube, the paper's first step from the classifier weights, the fused tube, and kept channels that
follow the class."""

import numpy as np
import torch

from saliency_tubes.explain import explain, get_method, normalize_tubes, upsample_tubes
from saliency_tubes.models import create_model

from helpers.models import ToyStagedNet, captured_layers

LAYERS = ["stage1", "stage2", "stage3", "stage4"]  # the default: every declared stage after the stem
THETA = 0.0  # ClassFeaturePyramid.threshold


def slow_keep(relevance: list[float], theta: float = THETA) -> list[int]:
    top = max([r for r in relevance if r > 0], default=0.0)
    return [c for c, r in enumerate(relevance) if r > 0 and r >= theta * top]


def slow_relevance(grad: np.ndarray, act: np.ndarray) -> list[float]:
    """Σ over voxels of gradient × activation, channel by channel, voxel by voxel."""
    out = []
    for c in range(act.shape[0]):
        total = 0.0
        for idx in np.ndindex(act.shape[1:]):
            total += grad[(c, *idx)] * act[(c, *idx)]
        out.append(total)
    return out


def slow_pyramid(model, x, target, names):
    """One sample: the kept channels and class tube of every depth. The evidence tube ``E_d`` is built voxel by voxel
    from the kept channels' gradient × activation; the walk back sums, one kept kernel of the depth above at a time,
    the gradient of that kernel's response weighted by its own gradient at the voxels where ``E`` above is positive.
    The class tube is ``E_D`` at the deepest depth; above it, voxel by voxel, the kept channels' activations weighted
    by their share of the positive relevance, times the deeper class tube upsampled and divided by its maximum."""
    x = x.clone().requires_grad_(True)
    acts, logits = captured_layers(model, x, names)
    maps, kept = {}, {}
    above_grad, above_positive = np.zeros(()), np.zeros(())
    above_tube: torch.Tensor | None = None
    for d in reversed(range(len(names))):
        a = acts[names[d]]
        if d == len(names) - 1:
            (grad,) = torch.autograd.grad(logits[0, target], a, retain_graph=True)
        else:
            grad = torch.zeros_like(a)
            above = acts[names[d + 1]]
            for i in kept[names[d + 1]]:
                weight = torch.zeros_like(above[0, i])
                for idx in np.ndindex(tuple(weight.shape)):
                    if above_positive[idx]:
                        weight[idx] = above_grad[(i, *idx)]
                (g,) = torch.autograd.grad((above[0, i] * weight).sum(), a, retain_graph=True)
                grad += g
        a_np = a[0].detach().double().numpy()
        g_np = grad[0].double().numpy()
        relevance = slow_relevance(g_np, a_np)
        kept[names[d]] = slow_keep(relevance)
        evidence = np.zeros(a_np.shape[1:])
        for idx in np.ndindex(evidence.shape):
            evidence[idx] = max(0.0, sum(g_np[(c, *idx)] * a_np[(c, *idx)] for c in kept[names[d]]))
        if above_tube is None:
            tube = evidence
        else:
            total = sum(relevance[c] for c in kept[names[d]])
            gate = upsample_tubes(above_tube[None], a_np.shape[1:])[0].clamp(min=0).double().numpy()
            tube = np.zeros(a_np.shape[1:])
            for idx in np.ndindex(tube.shape):
                features = sum(relevance[c] / total * a_np[(c, *idx)] for c in kept[names[d]])
                tube[idx] = max(0.0, features) * gate[idx] / gate.max()
        maps[names[d]] = above_tube = torch.from_numpy(tube).float()
        above_grad, above_positive = g_np, evidence > 0
    return maps, kept


def test_pyramid_equals_a_loop_over_its_formula_per_depth_and_fused():
    torch.manual_seed(3)
    model = ToyStagedNet().eval()
    clips = torch.randn(3, 3, 4, 16, 16)
    ours = explain(model, clips, method="pyramid")
    assert list(ours.layers) == LAYERS
    for b in range(3):
        maps, kept = slow_pyramid(model, clips[b : b + 1], int(ours.targets[b]), LAYERS)
        assert all(kept[n] for n in LAYERS), kept  # a real walk: channels kept at every depth
        for name in LAYERS:
            m = maps[name]
            expected = normalize_tubes(upsample_tubes(m[None], (4, *m.shape[1:])), clip_negative=True)[0]
            torch.testing.assert_close(ours.layers[name][b], expected, rtol=1e-4, atol=1e-4)
        finest = maps[LAYERS[0]]  # the fused tube: the finest depth's, which carries the deeper ones as its gate
        fused = normalize_tubes(upsample_tubes((finest / finest.max())[None], (4, 16, 16)))[0]
        torch.testing.assert_close(ours.tubes[b], fused, rtol=1e-4, atol=1e-4)


def test_the_first_step_is_the_papers_classifier_weight_times_pooled_activation():
    """On a global-average-pool + linear head, the deepest depth keeps the channels whose W[k, c] · mean(A[c]) is
    positive (at least θ of the largest), and its tube is CAM over the kept channels, ReLU(Σ_kept W[k, c] · A[c]) —
    computed here from the classifier weights alone, without autograd."""
    torch.manual_seed(1)
    model = create_model("resnet3d_10", 6, width=4, no_max_pool=True, conv1_t_size=3).eval()
    clips = torch.randn(2, 3, 4, 32, 32)
    ours = explain(model, clips, method="pyramid", layers=["layer4"])
    with torch.no_grad():
        features = model.forward_features(clips)
    weight = model.fc.weight
    for b in range(2):
        k = int(ours.targets[b])
        scores = [float(weight[k, c].detach() * features[b, c].mean()) for c in range(features.shape[1])]
        keep = slow_keep(scores)
        assert 0 < len(keep) < features.shape[1]
        tube = torch.relu(torch.einsum("c,cthw->thw", weight[k, keep].detach(), features[b, keep]))
        expected = normalize_tubes(upsample_tubes(tube[None], (4, *tube.shape[1:])), clip_negative=True)[0]
        torch.testing.assert_close(ours.layers["layer4"][b], expected, rtol=1e-4, atol=1e-4)


def test_the_kept_channels_depend_on_the_class():
    torch.manual_seed(3)
    model = ToyStagedNet().eval()
    clips = torch.randn(1, 3, 4, 16, 16)
    method = get_method("pyramid")(model)
    kept = []
    for target in range(3):
        _, per_depth = slow_pyramid(model, clips, target, LAYERS)
        kept.append(per_depth["stage4"])
        tubes = method(clips, target=target).layers["stage4"]
        assert tubes.shape == (1, 4, 2, 2)
    assert len({tuple(k) for k in kept}) > 1
