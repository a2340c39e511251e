"""The 3D / (2+1)D ResNet family, torchvision's video ResNets and 2D→3D inflation.

Big models are built on the meta device (no memory, no compute): parameter counts, FLOP counts and
state_dict layouts need only shapes. Forward passes use tiny widths and clips.
"""

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from saliency_tubes.errors import SaliencyTubesError
from saliency_tubes.models import create_model, inflate_state_dict, list_models, torchvision_video
from saliency_tubes.models.pretrained import fit_state_dict, interpret_checkpoint
from saliency_tubes.models.resnet3d import ZeroPadShortcut


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: with two threads on a busy machine, waiting for a descheduled OpenMP thread costs
    seconds per forward pass where one thread takes milliseconds. (Function scope: conftest sets 2 per test.)"""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _build(name, num_classes, **kwargs):
    if hasattr(torchvision_video, name):
        return getattr(torchvision_video, name)(num_classes, **kwargs)
    return create_model(name, num_classes, **kwargs)


def _on_meta(name, num_classes, **kwargs):
    with torch.device("meta"):
        return _build(name, num_classes, **kwargs)


# Hara et al. (CVPR 2018) / 3D-ResNets-PyTorch figures at 1×3×16×112×112, 400 classes, shortcut B.
@pytest.mark.parametrize(
    "name, params_m, gmacs",
    [
        ("resnet3d_18", 33.4, 8.3),
        ("resnet3d_34", 63.7, 12.7),
        ("resnet3d_50", 47.0, 10.1),
        ("resnet3d_101", 86.1, 13.9),
        ("resnet2p1d_18", 33.4, 8.5),
    ],
)
def test_params_and_macs_match_the_reference(name, params_m, gmacs):
    model = _on_meta(name, num_classes=400)
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, 3, 16, 112, 112, device="meta"))
    assert sum(p.numel() for p in model.parameters()) / 1e6 == pytest.approx(params_m, rel=0.01)
    assert counter.get_total_flops() / 2e9 == pytest.approx(gmacs, rel=0.01)  # FlopCounterMode: 1 MAC = 2 FLOPs


def _bn(prefix, channels):
    stats = ("weight", "bias", "running_mean", "running_var")
    return {**{f"{prefix}.{s}": (channels,) for s in stats}, f"{prefix}.num_batches_tracked": ()}


def _conv333(name, in_planes, out_planes, two_plus_one):
    """A 3×3×3 conv + BN of the reference; in resnet2p1d.py: ``{name}_s`` 1×3×3 and ``{name}_t`` 3×1×1 with
    ``mid = n_3d_parameters // n_2p1d_parameters`` channels between them."""
    i = name[-1]
    if not two_plus_one:
        return {f"{name}.weight": (out_planes, in_planes, 3, 3, 3), **_bn(f"bn{i}", out_planes)}
    mid = (in_planes * out_planes * 27) // (in_planes * 9 + 3 * out_planes)
    return {
        f"{name}_s.weight": (mid, in_planes, 1, 3, 3),
        **_bn(f"bn{i}_s", mid),
        f"{name}_t.weight": (out_planes, mid, 3, 1, 1),
        **_bn(f"bn{i}_t", out_planes),
    }


def reference_layout(depth, two_plus_one=False, n_classes=400, conv1_t_size=7):
    """Keys and shapes of 3D-ResNets-PyTorch's ``generate_model(depth)`` with its defaults (shortcut B,
    widen_factor 1, 3 input channels), written out from the rules of its models/resnet.py and resnet2p1d.py:
    stage widths 64/128/256/512; BasicBlock (conv1, conv2: 3×3×3) below depth 50, Bottleneck (conv1 1×1×1,
    conv2 3×3×3, conv3 1×1×1 to 4× the width) from 50 on; a ``downsample`` Sequential (1×1×1 conv, BN) in a
    stage's first block when its stride (2 in layers 2–4) or channel count changes; ``fc`` on 512 × expansion."""
    bottleneck = depth >= 50
    expansion = 4 if bottleneck else 1
    blocks = {10: [1, 1, 1, 1], 18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3]}[depth]
    if two_plus_one:
        mid = (3 * 64 * conv1_t_size * 49) // (3 * 49 + conv1_t_size * 64)
        layout = {"conv1_s.weight": (mid, 3, 1, 7, 7), **_bn("bn1_s", mid)}
        layout |= {"conv1_t.weight": (64, mid, conv1_t_size, 1, 1), **_bn("bn1_t", 64)}
    else:
        layout = {"conv1.weight": (64, 3, conv1_t_size, 7, 7), **_bn("bn1", 64)}
    in_planes = 64
    for stage, (planes, n) in enumerate(zip([64, 128, 256, 512], blocks, strict=False), start=1):
        for b in range(n):
            p = f"layer{stage}.{b}."
            block = {}
            if bottleneck:
                block |= {"conv1.weight": (planes, in_planes, 1, 1, 1), **_bn("bn1", planes)}
                block |= _conv333("conv2", planes, planes, two_plus_one)
                block |= {"conv3.weight": (planes * 4, planes, 1, 1, 1), **_bn("bn3", planes * 4)}
            else:
                block |= _conv333("conv1", in_planes, planes, two_plus_one) | _conv333(
                    "conv2", planes, planes, two_plus_one
                )
            if b == 0 and (stage > 1 or in_planes != planes * expansion):
                out_planes = planes * expansion
                block |= {"downsample.0.weight": (out_planes, in_planes, 1, 1, 1), **_bn("downsample.1", out_planes)}
            layout |= {p + k: v for k, v in block.items()}
            in_planes = planes * expansion
    return layout | {"fc.weight": (n_classes, 512 * expansion), "fc.bias": (n_classes,)}


@pytest.mark.parametrize(
    "name, depth, two_plus_one",
    [
        ("resnet3d_18", 18, False),
        ("resnet3d_50", 50, False),
        ("resnet2p1d_18", 18, True),
        ("resnet2p1d_50", 50, True),
    ],
)
def test_reference_checkpoint_loads_strictly(name, depth, two_plus_one):
    layout = reference_layout(depth, two_plus_one, n_classes=700)
    # what its main.py saves, with DataParallel's prefix as in the released models
    checkpoint = {
        "epoch": 200,
        "arch": f"resnet-{depth}",
        "state_dict": {f"module.{k}": torch.empty(shape, device="meta") for k, shape in layout.items()},
        "optimizer": {},
        "scheduler": None,
    }
    model = _on_meta(name, num_classes=700)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == layout
    weights = interpret_checkpoint(checkpoint)
    assert weights.format == "3D-ResNets-PyTorch / timm checkpoint"
    state, report = fit_state_dict(model, weights)
    assert not report.missing and not report.replaced and len(report.kept) == len(layout)
    result = model.load_state_dict(state, strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_reference_layout_spot_checks():
    """A few shapes worked out by hand, so the layout generator itself is checked."""
    layout = reference_layout(18, two_plus_one=True)
    assert layout["conv1_s.weight"] == (110, 3, 1, 7, 7)  # 3·64·7·49 // (3·49 + 7·64) = 65856 // 595
    assert layout["layer1.0.conv1_s.weight"] == (144, 64, 1, 3, 3)  # 64·64·27 // (64·9 + 3·64)
    assert layout["layer2.0.conv1_t.weight"] == (128, 230, 3, 1, 1)  # 64·128·27 // (64·9 + 3·128)
    assert len([k for k in reference_layout(50) if k.endswith("downsample.0.weight")]) == 4


@pytest.mark.parametrize("name", ["r3d_18", "mc3_18", "r2plus1d_18"])
def test_torchvision_weights_load_unchanged(name):
    torch.manual_seed(0)
    theirs = getattr(torchvision.models.video, name)(weights=None).eval()
    ours = _on_meta(name, num_classes=400).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    assert "stem.0.weight" in ours.state_dict() and ours.get_classifier() is ours.fc
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def _randomize_batchnorm(model):
    """timm zero-initializes the last BN of every block; random BN makes the comparison meaningful."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)


@pytest.mark.parametrize("timm_name, name", [("resnet18", "resnet3d_18"), ("resnet50", "resnet3d_50")])
def test_inflated_model_sees_a_boring_video_as_its_2d_frame(timm_name, name):
    torch.manual_seed(0)
    model_2d = timm.create_model(timm_name, pretrained=False, num_classes=10).eval()
    _randomize_batchnorm(model_2d)
    model_3d = _on_meta(name, num_classes=10, conv1_t_size=5, temporal_padding="replicate").eval()
    model_3d.load_state_dict(inflate_state_dict(model_2d.state_dict(), model_3d), strict=True, assign=True)
    frame = torch.randn(1, 3, 48, 48)
    clip = frame.unsqueeze(2).expand(-1, -1, 6, -1, -1)
    with torch.no_grad():
        expected = model_2d(frame)
        torch.testing.assert_close(model_3d(clip), expected, atol=1e-4, rtol=1e-4)
        # the reference's zero temporal padding (same parameter names) cannot: the end frames see half kernels
        zeros = _on_meta(name, num_classes=10, conv1_t_size=5).eval()
        zeros.load_state_dict(model_3d.state_dict(), strict=True, assign=True)
        assert not torch.allclose(zeros(clip), expected, atol=1e-2)


def test_inflation_errors_and_skip():
    state_2d = timm.create_model("resnet18", pretrained=False, num_classes=10).state_dict()
    with torch.device("meta"):
        model_3d = create_model("resnet3d_18", 7)
    with pytest.raises(SaliencyTubesError, match=r"^cannot inflate fc.weight: 2D shape \(10, 512\) does not fit"):
        inflate_state_dict(state_2d, model_3d)
    with pytest.raises(
        SaliencyTubesError, match=r"cannot inflate layer1.0.conv1.weight: 2D shape \(64, 64, 3, 3\) does not fit"
    ):
        inflate_state_dict(state_2d, _on_meta("resnet3d_50", num_classes=10))
    with pytest.raises(SaliencyTubesError, match="cannot inflate bn1.running_mean: the 2D state_dict has no such key"):
        inflate_state_dict({k: v for k, v in state_2d.items() if k != "bn1.running_mean"}, model_3d)
    inflated = inflate_state_dict(state_2d, model_3d, skip=("fc.",))
    assert set(model_3d.state_dict()) - set(inflated) == {"fc.weight", "fc.bias"}
    assert inflated["conv1.weight"].shape == (64, 3, 7, 7, 7)
    torch.testing.assert_close(inflated["conv1.weight"].sum(2), state_2d["conv1.weight"])


TINY = {"width": 8}
CONTRACT_CASES = [
    ("resnet3d_10", TINY),
    ("resnet3d_18", TINY),
    ("resnet3d_34", TINY),
    ("resnet3d_50", TINY),
    ("resnet3d_50", {**TINY, "shortcut_type": "A", "widen_factor": 1.5}),
    ("resnet3d_18", {**TINY, "temporal_padding": "replicate", "no_max_pool": True, "stage_t_stride": 1}),
    ("resnet2p1d_18", TINY),
    ("resnet2p1d_34", TINY),
    ("resnet2p1d_50", TINY),
    (
        "resnet2p1d_18",
        {**TINY, "shortcut_type": "A", "in_channels": 2, "temporal_padding": "replicate", "last_stride": 1},
    ),
    ("r3d_18", {"dropout": 0.5}),
    ("mc3_18", {}),
    ("r2plus1d_18", {}),
]


@pytest.mark.parametrize("name, kwargs", CONTRACT_CASES)
def test_contract_and_cam_identity(name, kwargs):
    torch.manual_seed(0)
    model = _build(name, 5, **kwargs).eval()
    x = torch.randn(1, kwargs.get("in_channels", 3), 8, 32, 32)
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
    assert features.dim() == 5 and features.shape[:2] == (1, model.num_features)
    fc = model.get_classifier()
    assert isinstance(fc, torch.nn.Linear) and fc.in_features == model.num_features and logits.shape == (1, 5)
    torch.testing.assert_close(logits, model.forward_head(features))
    for k in range(5):
        cam = (features[0] * fc.weight[k][:, None, None, None]).sum(0)
        torch.testing.assert_close(cam.mean() + fc.bias[k], logits[0, k], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["resnet3d_152", "resnet3d_200", "resnet2p1d_101", "resnet2p1d_152", "resnet2p1d_200"])
def test_deepest_models_build(name):
    model = _on_meta(name, num_classes=400)
    assert model(torch.empty(1, 3, 16, 112, 112, device="meta")).shape == (1, 400)
    assert model.num_features == 2048


@pytest.mark.parametrize("name", ["resnet3d_18", "resnet3d_50", "resnet2p1d_18"])
def test_shortcut_a_is_parameter_free(name):
    a, b = _on_meta(name, num_classes=400, shortcut_type="A"), _on_meta(name, num_classes=400)
    assert not [k for k in a.state_dict() if "downsample" in k]
    assert set(a.state_dict()) == {k for k in b.state_dict() if "downsample" not in k}
    assert create_model(name, 3, width=8, shortcut_type="A")(torch.randn(2, 3, 8, 32, 32)).shape == (2, 3)


def test_zero_pad_shortcut_matches_the_reference_formula():
    """The reference: ``avg_pool3d(x, kernel_size=1, stride)`` then zero channels concatenated."""
    x = torch.randn(2, 4, 7, 9, 11)
    expected = F.avg_pool3d(x, kernel_size=1, stride=2)
    expected = torch.cat([expected, torch.zeros(2, 4, *expected.shape[2:])], dim=1)
    x.requires_grad_(True)
    out = ZeroPadShortcut(8, (2, 2, 2))(x)
    torch.testing.assert_close(out, expected)
    out.sum().backward()  # unlike the reference's ``out.data``, the shortcut passes the gradient on
    assert x.grad[:, :, ::2, ::2, ::2].eq(1).all() and x.grad.sum() == expected.numel() / 2


def test_bad_options():
    with pytest.raises(ValueError, match="shortcut_type"):
        create_model("resnet3d_18", 3, shortcut_type="C")
    with pytest.raises(ValueError, match="temporal_padding"):
        create_model("resnet2p1d_18", 3, temporal_padding="reflect")


def test_factory_lists_every_depth():
    depths = (10, 18, 34, 50, 101, 152, 200)
    expected = {f"resnet3d_{d}" for d in depths} | {f"resnet2p1d_{d}" for d in depths}
    assert expected <= set(list_models())
