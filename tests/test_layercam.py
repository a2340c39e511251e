"""LayerCAM and multi-layer Grad-CAM++: a loop-based reference of the formula, the fusion, side-effect freedom,
inference mode, every architecture family, and the whole-video pipeline's per-layer tubes."""

import numpy as np
import pytest
import torch

from saliency_tubes.config import DataConfig
from saliency_tubes.explain import VideoExplainer, explain, get_method, normalize_tubes, upsample_tubes
from saliency_tubes.explain.methods.base import default_layers
from saliency_tubes.models import create_model
from saliency_tubes.models.io import ModelInfo
from saliency_tubes.videoio import write_video

from helpers.models import ToyStagedNet, ToyVideoNet, captured_layers, untouched_check

SMALL = {"width": 4, "no_max_pool": True, "conv1_t_size": 3}
FAMILIES = {  # one architecture per building block
    "resnet3d_10": SMALL,  # BasicBlock
    "resnet3d_50": SMALL,  # Bottleneck
    "resnet2p1d_10": SMALL,  # (2+1)D
    "mfnet3d": {},  # grouped multi-fibre units
    "r3d_18": {},  # torchvision VideoResNet
}
LAYERS = ["stage2", "stage3", "stage4"]


def _toy():
    torch.manual_seed(3)
    return ToyStagedNet().eval()


def slow_layercam(activations: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """LayerCAM of one sample written out voxel by voxel: ReLU(Σ_c ReLU(g_c(v)) · A_c(v))."""
    c = activations.shape[0]
    cam = np.zeros(activations.shape[1:])
    for idx in np.ndindex(cam.shape):
        total = 0.0
        for ch in range(c):
            total += max(grads[(ch, *idx)], 0.0) * activations[(ch, *idx)]
        cam[idx] = max(total, 0.0)
    return cam


def reference_fusion(maps: list[torch.Tensor], how: str) -> torch.Tensor:
    """Layer maps (T'×H'×W' each) → each upsampled to the finest grid, divided by its maximum, fused."""
    grid = tuple(max(m.shape[i] for m in maps) for i in range(3))
    scaled = []
    for m in maps:
        up = upsample_tubes(m[None], grid)[0].clamp(min=0)
        scaled.append(up / max(float(up.max()), 1e-12))
    stack = torch.stack(scaled)
    if how == "geometric":  # a layer with an all-zero map says nothing and is left out
        alive = [m for m in scaled if float(m.max()) > 0]
        return torch.stack(alive).prod(0).pow(1 / len(alive)) if alive else torch.zeros_like(scaled[0])
    return stack.amax(0) if how == "max" else stack.mean(0)


def test_layercam_equals_a_loop_over_its_formula_per_layer_and_fused():
    model = _toy()
    clips = torch.randn(2, 3, 4, 16, 16)
    ours = explain(model, clips, method="layercam")
    assert list(ours.layers) == LAYERS == default_layers(model)  # the default: stages from the second on
    for b in range(2):
        x = clips[b : b + 1].clone().requires_grad_(True)
        acts, logits = captured_layers(model, x, LAYERS)
        grads = torch.autograd.grad(logits[0, int(ours.targets[b])], [acts[n] for n in LAYERS])
        maps = []
        for name, g in zip(LAYERS, grads, strict=True):
            a = acts[name][0].detach().double().numpy()
            cam = torch.from_numpy(slow_layercam(a, g[0].double().numpy())).float()
            maps.append(cam)
            expected = normalize_tubes(upsample_tubes(cam[None], (4, *cam.shape[1:])))[0]
            torch.testing.assert_close(ours.layers[name][b], expected, rtol=1e-4, atol=1e-4)
        fused = normalize_tubes(upsample_tubes(reference_fusion(maps, "geometric")[None], (4, 16, 16)))[0]
        torch.testing.assert_close(ours.tubes[b], fused, rtol=1e-4, atol=1e-4)


def test_a_layer_no_gradient_reaches_is_left_out_of_the_geometric_fusion():
    """The last block of a class-token model has an all-zero map (only the class token meets the head): it must not
    zero the fused tube, which is then the geometric mean of the other layers."""
    torch.manual_seed(0)
    method = get_method("layercam")(ToyStagedNet(), layers=["stage1", "stage2"])
    a, b = torch.rand(2, 1, 2, 4, 4), torch.rand(2, 1, 2, 4, 4)
    dead = torch.zeros(2, 1, 2, 4, 4)
    dead[1] = torch.rand(1, 2, 4, 4)  # alive for the second sample only
    fused = method.fuse({"a": a, "b": b, "dead": dead})
    unit = [m / m.flatten(-3).amax(-1)[..., None, None, None] for m in (a, b, dead[1:])]
    torch.testing.assert_close(fused[0], (unit[0][0] * unit[1][0]).sqrt())
    torch.testing.assert_close(fused[1], (unit[0][1] * unit[1][1] * unit[2][0]).pow(1 / 3))


def test_multi_layer_gradcam_pp_fuses_the_single_layer_maps_by_their_mean():
    model = _toy()
    clips = torch.randn(2, 3, 4, 16, 16)
    fused = explain(model, clips, method="gradcam_pp", layers=["stage2", "stage4"])
    raw = []
    for name in ["stage2", "stage4"]:
        size = (4, *fused.layers[name].shape[-2:])
        single = explain(model, clips, method="gradcam_pp", layer=name, size=size)
        torch.testing.assert_close(fused.layers[name], single.tubes, rtol=1e-4, atol=1e-4)
        raw.append(explain(model, clips, method="gradcam_pp", layer=name, size=size, normalize=False).tubes)
    for b in range(2):
        # the raw per-layer maps, upsampled in time only (the finest layer, stage2, is at the clip's T already)
        grid_maps = [r[b] for r in raw]
        expected = normalize_tubes(upsample_tubes(reference_fusion(grid_maps, "mean")[None], (4, 16, 16)))[0]
        torch.testing.assert_close(fused.tubes[b], expected, rtol=1e-4, atol=1e-4)
    # without layers Grad-CAM++ is the single-layer method it was
    assert explain(model, clips, method="gradcam_pp").layers is None


@pytest.mark.parametrize("method", ["layercam", "pyramid", "gradcam_pp"])
def test_multi_layer_methods_have_no_side_effects(method):
    model = create_model("resnet3d_10", 4, width=4, dropout=0.5, no_max_pool=True, conv1_t_size=3)
    clips = torch.randn(2, 3, 4, 16, 16)
    untouched = untouched_check(model, model.layer3, model.conv1.weight, model.fc.weight)
    result = explain(model, clips, method=method, layers=["layer2", "layer3", "layer4"], topk=2)
    assert result.tubes.shape == (2, 2, 4, 16, 16) and result.layers["layer2"].shape[:3] == (2, 2, 4)
    untouched()  # BN running statistics included


@pytest.mark.parametrize("method", ["layercam", "pyramid", "gradcam_pp"])
def test_multi_layer_methods_work_under_inference_mode_with_frozen_parameters(method):
    torch.manual_seed(0)
    model = create_model("resnet3d_10", 3, **SMALL).eval()
    clips = torch.randn(2, 3, 4, 16, 16)
    layers = ["layer2", "layer3", "layer4"]
    reference = explain(model, clips, method=method, layers=layers)
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.inference_mode():
        result = explain(model, clips.clone(), method=method, layers=layers)  # inference tensors, as in validation
    torch.testing.assert_close(result.tubes, reference.tubes)
    for name in layers:
        torch.testing.assert_close(result.layers[name], reference.layers[name])


@pytest.mark.parametrize("arch", FAMILIES)
@pytest.mark.parametrize("method", ["layercam", "pyramid"])
def test_multi_layer_methods_on_every_building_block(arch, method):
    torch.manual_seed(0)
    model = create_model(arch, 5, **FAMILIES[arch]).eval()
    clips = torch.randn(2, 3, 8, 32, 48)
    result = explain(model, clips, method=method)
    assert result.tubes.shape == (2, 8, 32, 48)
    depths = default_layers(model, get_method(method).default_from_stage)  # pyramid: every stage after the stem
    assert list(result.layers) == depths and len(depths) == {"layercam": 3, "pyramid": 4}[method]
    grids = []
    for tube in result.layers.values():
        assert tube.shape[:2] == (2, 8) and tube.min() >= 0 and tube.max() <= 1
        grids.append(tube.shape[-1])
    assert grids == sorted(grids, reverse=True)  # shallow → deep: finest first
    assert result.tubes.min() >= 0 and result.tubes.max() <= 1 and result.tubes.amax((1, 2, 3)).gt(0).all()
    top = explain(model, clips, method=method, topk=2, target=None)
    assert top.tubes.shape == (2, 2, 8, 32, 48) and top.layers[depths[0]].shape[:3] == (2, 2, 8)
    torch.testing.assert_close(top.tubes[:, 0], result.tubes)


def test_bad_layers_are_one_line_errors():
    model = _toy()
    clips = torch.randn(1, 3, 4, 16, 16)
    with pytest.raises(ValueError, match="--layers applies to --method"):
        explain(model, clips, method="gradcam", layers=["stage2"])
    with pytest.raises(ValueError, match="not both"):
        explain(model, clips, method="layercam", layer="stage2", layers=["stage3"])
    with pytest.raises(ValueError, match="no layer 'stage9'"):
        explain(model, clips, method="pyramid", layers=["stage2", "stage9"])
    with pytest.raises(ValueError, match="does not declare its stages"):
        explain(ToyVideoNet(), clips, method="layercam")
    # a model without stages works once the layers are named
    assert list(explain(ToyVideoNet(), clips, method="layercam", layers=["conv"]).layers) == ["conv"]


@pytest.mark.parametrize("method", ["layercam", "pyramid"])
def test_the_video_pipeline_stitches_every_layer_at_its_own_grid(tmp_path, method):
    rng = np.random.default_rng(0)
    frames = (rng.random((21, 40, 80, 3)) * 60).astype(np.uint8)
    for t in range(21):
        frames[t, 12:28, 2 * t : 2 * t + 16] = 230
    path = write_video(tmp_path / "moving.mp4", frames, fps=10)
    torch.manual_seed(0)
    model = create_model("resnet3d_10", 3, **SMALL, stage_t_stride=1).eval()
    info = ModelInfo("resnet3d_10", 3, ["a", "b", "c"], DataConfig(clip_len=4, stride=2, input_size=32))
    result = VideoExplainer(model, info, method=method, batch_size=2).explain(path, topk=2)
    n = len(result.frame_indices)
    assert result.tubes.shape == (2, n, 32, 64)
    grids = {"layer1": (16, 32), "layer2": (8, 16), "layer3": (4, 8), "layer4": (2, 4)}
    if method != "pyramid":  # the pyramid's depths default to every stage after the stem, the others' from layer2
        del grids["layer1"]
    assert list(result.layers) == list(grids)
    for name, grid in zip(result.layers, grids.values(), strict=True):
        tube = result.layers[name]
        assert isinstance(tube, np.ndarray) and tube.dtype == np.float32 and tube.shape == (2, n, *grid)
        assert tube.min() >= 0 and tube.max() == pytest.approx(1)
    named = VideoExplainer(model, info, method=method, layers=["layer3"]).explain(path, target=1)
    assert list(named.layers) == ["layer3"] and named.layers["layer3"].shape == (1, n, 4, 8)
    assert VideoExplainer(model, info, method="gradcam").explain(path).layers is None
