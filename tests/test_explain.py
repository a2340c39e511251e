import numpy as np
import pytest
import torch
from torch import nn

from saliency_tubes.explain import (
    SaliencyTubes,
    class_activation_tubes,
    mask_share,
    normalize_tubes,
    tube_mass_in_gt,
    upsample_tubes,
)
from saliency_tubes.models import create_model

from helpers.models import ToyVideoNet


def _linear_weights(n_in: int, n_out: int) -> np.ndarray:
    """n_out×n_in matrix of linear interpolation with half-pixel centres (align_corners=False)."""
    m = np.zeros((n_out, n_in))
    for o in range(n_out):
        src = max((o + 0.5) * n_in / n_out - 0.5, 0.0)
        i0 = min(int(np.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        frac = src - i0
        m[o, i0] += 1 - frac
        m[o, i1] += frac
    return m


def slow_tube(features: np.ndarray, weight: np.ndarray, k: int, size, clip: bool = False) -> np.ndarray:
    """The formula written out: Σ_c W[k,c]·F[c] by a loop over channels, trilinear upsampling voxel by voxel,
    (with ``clip``: negatives to zero,) then min–max normalisation."""
    c, t, h, w = features.shape
    cam = np.zeros((t, h, w))
    for ch in range(c):
        cam += weight[k, ch] * features[ch]
    T, H, W = size
    wt, wh, ww = _linear_weights(t, T), _linear_weights(h, H), _linear_weights(w, W)
    out = np.zeros(size)
    for a in range(T):
        for b in range(H):
            for d in range(W):
                acc = 0.0
                for i in np.nonzero(wt[a])[0]:
                    for j in np.nonzero(wh[b])[0]:
                        for m in np.nonzero(ww[d])[0]:
                            acc += wt[a, i] * wh[b, j] * ww[d, m] * cam[i, j, m]
                out[a, b, d] = acc
    if clip:
        out = np.maximum(out, 0)
    return (out - out.min()) / (out.max() - out.min())


def test_cam_tube_equals_direct_computation():
    torch.manual_seed(0)
    model = ToyVideoNet().eval()
    clips = torch.randn(3, 3, 4, 8, 12)
    result = SaliencyTubes(model, clip_negative=False)(clips)  # the original: min–max of the signed map
    clipped = SaliencyTubes(model)(clips)
    features = model.forward_features(clips).detach().numpy()
    weight = model.fc.weight.detach().numpy()
    assert result.tubes.shape == (3, 4, 8, 12)
    for b in range(3):
        k = int(result.targets[b])
        assert k == int(model(clips[b : b + 1]).argmax())
        np.testing.assert_allclose(result.tubes[b].numpy(), slow_tube(features[b], weight, k, (4, 8, 12)), atol=1e-5)
        np.testing.assert_allclose(
            clipped.tubes[b].numpy(), slow_tube(features[b], weight, k, (4, 8, 12), clip=True), atol=1e-5
        )


def test_given_target_and_topk():
    torch.manual_seed(1)
    model = ToyVideoNet().eval()
    clips = torch.randn(2, 3, 4, 8, 8)
    explainer = SaliencyTubes(model)
    by_class = explainer(clips, target=2)
    assert by_class.targets.tolist() == [2, 2]
    top = explainer(clips, topk=3)
    assert top.tubes.shape == (2, 3, 4, 8, 8) and top.targets.shape == (2, 3)
    torch.testing.assert_close(top.tubes[:, 0], explainer(clips).tubes)
    for b in range(2):
        k = top.targets[b].tolist().index(2) if 2 in top.targets[b].tolist() else None
        if k is not None:
            torch.testing.assert_close(top.tubes[b, k], by_class.tubes[b])
    assert top.tubes.min() >= 0 and top.tubes.max() <= 1


def test_explainer_has_no_side_effects():
    torch.manual_seed(2)
    model = create_model("resnet3d_10", 4, width=4, dropout=0.5)
    model.train()
    model.layer2.eval()  # a mixed state must come back exactly as it was
    model.fc.weight.grad = torch.ones_like(model.fc.weight)
    model.conv1.weight.requires_grad_(False)
    modes = {name: m.training for name, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = [(m._forward_hooks.copy(), m._backward_hooks.copy()) for m in model.modules()]
    clips = torch.randn(2, 3, 4, 16, 16)
    rng = torch.get_rng_state()

    SaliencyTubes(model)(clips)

    assert {name: m.training for name, m in model.named_modules()} == modes
    for k, v in model.state_dict().items():  # including BatchNorm running statistics
        torch.testing.assert_close(v, state[k], rtol=0, atol=0)
    torch.testing.assert_close(model.fc.weight.grad, torch.ones_like(model.fc.weight))
    assert model.conv1.weight.grad is None and not model.conv1.weight.requires_grad
    assert all(p.grad is None for n, p in model.named_parameters() if n != "fc.weight")
    assert torch.equal(torch.get_rng_state(), rng)
    assert [(m._forward_hooks, m._backward_hooks) for m in model.modules()] == hooks


def test_model_without_contract_is_rejected():
    with pytest.raises(TypeError, match="forward_features"):
        SaliencyTubes(nn.Linear(3, 3))


@pytest.mark.parametrize(
    "src, dst", [((1, 4, 4), (8, 32, 32)), ((3, 5, 7), (8, 16, 20)), ((4, 4, 4), (4, 4, 4)), ((2, 3, 3), (9, 11, 5))]
)
def test_separable_upsampling_is_trilinear(src, dst):
    maps = torch.randn(2, 3, *src)
    expected = torch.nn.functional.interpolate(
        maps.reshape(6, 1, *src), size=dst, mode="trilinear", align_corners=False
    )
    torch.testing.assert_close(upsample_tubes(maps, dst), expected.reshape(2, 3, *dst), rtol=1e-5, atol=1e-5)


def test_constant_map_normalises_to_zero():
    features = torch.ones(1, 2, 2, 2, 2)
    tubes = class_activation_tubes(features, torch.ones(3, 2), torch.tensor([0]), (4, 4, 4))
    assert torch.count_nonzero(tubes) == 0


def test_tube_mass_in_gt():
    masks = torch.zeros(2, 4, 8, 8, dtype=torch.bool)
    masks[:, :, 2:4, 2:6] = True
    uniform = torch.ones(2, 4, 8, 8)
    torch.testing.assert_close(tube_mass_in_gt(uniform, masks), mask_share(masks))
    torch.testing.assert_close(tube_mass_in_gt(masks.float(), masks), torch.ones(2))
    assert mask_share(masks)[0] == pytest.approx(8 / 64)


def test_overlapping_clips_cover_every_position():
    from saliency_tubes.explain import overlapping_clips

    clips = overlapping_clips(11, 4)
    assert clips[:, 0].tolist() == [0, 2, 4, 6, 7]  # hop of half a clip, the last one ending at the end
    assert set(clips.ravel().tolist()) == set(range(11))
    assert overlapping_clips(2, 4).tolist() == [[0, 1, 1, 1]]  # shorter than a clip: the last frame repeats


def test_stitching_cross_fades_clips_of_different_scale():
    from saliency_tubes.explain import TubeStitcher, overlapping_clips

    positions = overlapping_clips(12, 4)
    scales = [1.0, 1.0, 10.0, 10.0, 10.0]
    stitcher = TubeStitcher(1, 12, (2, 2))
    for pos, scale in zip(positions, scales, strict=False):
        stitcher.add(pos, torch.full((1, 4, 2, 2), scale))
    tube = stitcher.result()[0, :, 0, 0]
    np.testing.assert_allclose(tube.numpy(), [0, 0, 0, 0, 1 / 3, 2 / 3, 1, 1, 1, 1, 1, 1], atol=1e-6)
    # per-clip normalisation would instead jump from a clip's maximum to the next clip's minimum at each border


def test_stitching_one_clip_is_its_normalised_map():
    from saliency_tubes.explain import TubeStitcher, overlapping_clips

    raw = torch.randn(2, 4, 3, 3)
    stitcher = TubeStitcher(2, 4, (3, 3))
    stitcher.add(overlapping_clips(4, 4)[0], raw)
    torch.testing.assert_close(stitcher.result(), normalize_tubes(raw))
