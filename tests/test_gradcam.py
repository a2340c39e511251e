"""Grad-CAM and Grad-CAM++ tubes: reference checks, side-effect freedom, inference mode, every architecture."""

import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam

from saliency_tubes.explain import METHODS, explain, normalize_tubes, upsample_tubes
from saliency_tubes.models import create_model, list_models

from helpers.models import ToyVideoNet, untouched_check

SMALL = {"width": 4, "no_max_pool": True, "conv1_t_size": 3}
# One architecture per building block (deeper depths repeat the same blocks), at a small width where it has one.
FAMILIES = {
    "resnet3d_10": SMALL,
    "resnet3d_50": SMALL,
    "resnet2p1d_10": SMALL,
    "resnet2p1d_50": SMALL,
    "r3d_18": {},
    "mc3_18": {},
    "r2plus1d_18": {},
    "mfnet3d": {},
}


def _model(name="resnet3d_10"):
    torch.manual_seed(0)
    return create_model(name, num_classes=5, **FAMILIES[name]).eval()


def test_every_architecture_family_is_covered():
    # the video transformers (and S3D, torchvision's, which runs only at ≥ 16×224²) are in test_token_methods.py
    others = {"swin3d_t", "swin3d_s", "swin3d_b", "mvit_v1_b", "mvit_v2_s", "s3d", "vit_video_s", "vit_video_b"}
    cnns = [name for name in list_models() if name not in others]
    prefixes = {name.rsplit("_", 1)[0] if name.startswith("resnet") else name for name in cnns}
    assert prefixes == {"resnet3d", "resnet2p1d", "r3d_18", "mc3_18", "r2plus1d_18", "mfnet3d"}
    assert prefixes <= {name.rsplit("_", 1)[0] if name.startswith("resnet") else name for name in FAMILIES}


@pytest.mark.parametrize(
    "layer, module", [(None, "layer4"), ("layer3", "layer3"), ("layer2.0.conv1", "layer2.0.conv1")]
)
def test_gradcam_matches_captum_layer_gradcam(layer, module):
    model = _model()
    clips = torch.randn(3, 3, 8, 32, 32)
    ours = explain(model, clips, method="gradcam", layer=layer)
    captum = LayerGradCam(model, dict(model.named_modules())[module])
    expected = []
    for b in range(3):
        attr = captum.attribute(clips[b : b + 1], target=int(ours.targets[b]), relu_attributions=True)
        expected.append(normalize_tubes(upsample_tubes(attr[:, 0].detach(), (8, 32, 32)))[0])
    torch.testing.assert_close(ours.tubes, torch.stack(expected), rtol=1e-4, atol=1e-4)


def slow_gradcam_pp(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """Grad-CAM++ written out channel by channel, voxel by voxel (one sample, C×T×H×W)."""
    c = activations.shape[0]
    cam = np.zeros(activations.shape[1:])
    for ch in range(c):
        a, g = activations[ch], grads[ch]
        total = a.sum()
        weight = 0.0
        for idx in np.ndindex(g.shape):
            g1 = g[idx]
            if g1 == 0:
                continue
            denom = 2 * g1**2 + total * g1**3
            alpha = g1**2 / denom if denom != 0 else 0.0
            weight += alpha * max(g1, 0.0)
        cam += weight * a
    return np.maximum(cam, 0)


def test_gradcam_pp_equals_direct_computation():
    torch.manual_seed(3)
    model = ToyVideoNet(channels=4, classes=3).eval()
    clips = torch.randn(2, 3, 4, 8, 8)
    ours = explain(model, clips, method="gradcam_pp")
    for b in range(2):
        x = clips[b : b + 1]
        feats = model.forward_features(x)
        score = model.forward_head(feats)[0, int(ours.targets[b])]
        (grads,) = torch.autograd.grad(score, feats)
        cam = torch.from_numpy(slow_gradcam_pp(feats[0].detach().double().numpy(), grads[0].double().numpy())).float()
        expected = normalize_tubes(upsample_tubes(cam[None], (4, 8, 8)))[0]
        torch.testing.assert_close(ours.tubes[b], expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["gradcam", "gradcam_pp"])
def test_gradient_methods_have_no_side_effects(method):
    model = create_model("resnet3d_10", 4, width=4, dropout=0.5)
    clips = torch.randn(2, 3, 4, 16, 16)
    untouched = untouched_check(model, model.layer3, model.conv1.weight, model.fc.weight)
    explain(model, clips, method=method, layer="layer3")
    untouched()


def test_works_under_inference_mode_and_with_frozen_parameters():
    model = _model()
    clips = torch.randn(2, 3, 8, 32, 32)
    reference = explain(model, clips, method="gradcam")
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.inference_mode():
        inference_clips = clips.clone()  # an inference tensor, as in Lightning's validation loop
        result = explain(model, inference_clips, method="gradcam")
    torch.testing.assert_close(result.tubes, reference.tubes)


@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_every_method_on_every_architecture(arch, method):
    model = _model(arch)
    clips = torch.randn(2, 3, 8, 32, 48)
    if method in ("rollout", "attention_relevance"):  # they need self-attention blocks: a one-line refusal on a CNN
        with pytest.raises(
            ValueError, match=f"{method} needs self-attention blocks .* {type(model).__name__} has none"
        ):
            explain(model, clips, method=method)
        return
    single = explain(model, clips, method=method)
    assert single.tubes.shape == (2, 8, 32, 48) and single.targets.shape == (2,)
    assert single.tubes.min() >= 0 and single.tubes.max() <= 1
    top = explain(model, clips, method=method, topk=3, size=(4, 16, 24))
    assert top.tubes.shape == (2, 3, 4, 16, 24) and top.targets.shape == (2, 3)
    torch.testing.assert_close(top.targets[:, 0], single.targets)
    per_sample = explain(model, clips, method=method, target=torch.tensor([1, 3]))
    assert per_sample.targets.tolist() == [1, 3]


def test_bad_method_or_layer():
    model = _model()
    clips = torch.randn(1, 3, 4, 16, 16)
    with pytest.raises(ValueError, match="unknown method"):
        explain(model, clips, method="lime")
    with pytest.raises(ValueError, match="no layer 'layer9'"):
        explain(model, clips, method="gradcam", layer="layer9")
