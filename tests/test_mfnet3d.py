"""MFNet-3D: reference checkpoint layout, size and cost, model contract, adaptive input sizes.

The reference layout and the MAC count are derived here from the published architecture rules of
cypw/PyTorch-MFNet ``network/mfnet_3d.py``, independently of our model code, so these tests can fail.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from saliency_tubes.models.mfnet3d import MFNet3D, mfnet3d

# Reference rules: (stage, units, output width = num_mid, stride of the first unit); 16 groups; the
# multiplexer goes through num_mid // 4 channels; the first unit of a stage has a dense 1×1×1 conv_m2 and a
# 1×1×1 shortcut conv_w1, later units a grouped 1×3×3 conv_m2 and no conv_w1.
REFERENCE_STAGES = [
    ("conv2", 3, 96, (2, 1, 1)),
    ("conv3", 4, 192, (1, 2, 2)),
    ("conv4", 6, 384, (1, 2, 2)),
    ("conv5", 3, 768, (1, 2, 2)),
]
GROUPS = 16


def reference_convs(frames=16, size=224):
    """(module name, in channels, out channels, groups, kernel, stride, output grid) of every convolution, in order."""
    grid = (frames, size // 2, size // 2)
    convs = [("conv1", 3, 16, 1, (3, 5, 5), (1, 2, 2), grid)]
    grid = (grid[0], grid[1] // 2, grid[2] // 2)  # max-pool (1,3,3)/(1,2,2)
    num_in = 16
    for stage, units, width, stride in REFERENCE_STAGES:
        for i in range(1, units + 1):
            name, first = f"{stage}.B{i:02d}", i == 1
            stride = stride if first else (1, 1, 1)
            out_grid = tuple(math.ceil(g / s) for g, s in zip(grid, stride, strict=False))
            convs += [
                (f"{name}.conv_i1", num_in, width // 4, 1, (1, 1, 1), (1, 1, 1), grid),
                (f"{name}.conv_i2", width // 4, num_in, 1, (1, 1, 1), (1, 1, 1), grid),
                (f"{name}.conv_m1", num_in, width, GROUPS, (3, 3, 3), stride, out_grid),
                (f"{name}.conv_m2", width, width, 1, (1, 1, 1), (1, 1, 1), out_grid)
                if first
                else (f"{name}.conv_m2", width, width, GROUPS, (1, 3, 3), (1, 1, 1), out_grid),
            ]
            if first:
                convs.append((f"{name}.conv_w1", num_in, width, 1, (1, 1, 1), stride, out_grid))
            grid, num_in = out_grid, width
    return convs


def reference_state_dict(num_classes=400, num_batches_tracked=False):
    """A checkpoint's ``state_dict`` as PyTorch-MFNet saves it: DataParallel ``module.`` prefix, BN before conv."""
    stats = ["weight", "bias", "running_mean", "running_var"]

    def bn(prefix, channels):
        shapes = {f"{prefix}.{p}": (channels,) for p in stats}
        return shapes | ({f"{prefix}.num_batches_tracked": ()} if num_batches_tracked else {})

    (_, cin, cout, _, kernel, _, _), *units = reference_convs()
    shapes = {"module.conv1.conv.weight": (cout, cin, *kernel)} | bn("module.conv1.bn", cout)
    for name, cin, cout, groups, kernel, _, _ in units:  # BN_AC_CONV3D: BN and ReLU on the input, then the conv
        shapes |= bn(f"module.{name}.bn", cin) | {f"module.{name}.conv.weight": (cout, cin // groups, *kernel)}
    shapes |= bn("module.tail.bn", 768) | {
        "module.classifier.weight": (num_classes, 768),
        "module.classifier.bias": (num_classes,),
    }
    return {k: torch.randn(s) if s else torch.tensor(7) for k, s in shapes.items()}


def reference_forward(state, x):
    """Eval-mode forward of the reference, written from its rules with the functional API: conv1 is
    conv→BN→ReLU, every other conv is BN→ReLU→conv; a unit adds the multiplexer's output to its input, runs the
    fibers, and adds the input (through conv_w1 in the first unit); then tail BN→ReLU, mean, classifier."""

    def bn_relu(name, h):
        stats = [state[f"{name}.{p}"] for p in ("running_mean", "running_var", "weight", "bias")]
        return F.relu(F.batch_norm(h, *stats, training=False, eps=1e-5))

    convs = {name: (groups, kernel, stride) for name, _, _, groups, kernel, stride, _ in reference_convs()}

    def conv(name, h):
        groups, kernel, stride = convs[name]
        padding = tuple(k // 2 for k in kernel)
        return F.conv3d(h, state[f"{name}.conv.weight"], stride=stride, padding=padding, groups=groups)

    def bac(name, h):
        return conv(name, bn_relu(f"{name}.bn", h))

    h = F.max_pool3d(bn_relu("conv1.bn", conv("conv1", x)), (1, 3, 3), (1, 2, 2), (0, 1, 1))
    for stage, units, _, _ in REFERENCE_STAGES:
        for i in range(1, units + 1):
            u = f"{stage}.B{i:02d}"
            mixed = h + bac(f"{u}.conv_i2", bac(f"{u}.conv_i1", h))
            fibers = bac(f"{u}.conv_m2", bac(f"{u}.conv_m1", mixed))
            h = fibers + (bac(f"{u}.conv_w1", h) if f"{u}.conv_w1" in convs else h)
    return F.linear(bn_relu("tail.bn", h).mean((2, 3, 4)), state["classifier.weight"], state["classifier.bias"])


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    return MFNet3D(num_classes=7, dropout=0.5).eval()


@pytest.mark.parametrize("num_batches_tracked", [False, True])
def test_reference_checkpoint_loads_strictly(num_batches_tracked):
    """PyTorch 0.4.0 (the reference's) saved no num_batches_tracked; later versions do. Both must load."""
    saved = reference_state_dict(num_batches_tracked=num_batches_tracked)
    assert len([k for k in saved if k.endswith("conv.weight")]) == 1 + 4 * 16 + 4  # stem, 16 units, 4 shortcuts
    state = {k.removeprefix("module."): v for k, v in saved.items()}
    net = MFNet3D(num_classes=400)
    ours = net.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(ours[k].shape) for k in state if k in ours}
    result = net.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for key in (
        "conv2.B01.conv_w1.conv.weight",
        "conv5.B03.conv_m2.bn.running_var",
        "tail.bn.weight",
        "classifier.bias",
    ):
        torch.testing.assert_close(net.state_dict()[key], state[key])


def test_parameters_and_multiply_adds():
    with torch.device("meta"):
        net, clip = mfnet3d(400), torch.empty(1, 3, 16, 224, 224)
    params = sum(p.numel() for p in net.parameters())
    assert abs(params / 8.0e6 - 1) < 0.01, params
    bn_elements = []
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.register_forward_hook(lambda _m, _i, out: bn_elements.append(out.numel()))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net(clip)
    macs = counter.get_total_flops() // 2  # FlopCounterMode counts 2 FLOPs per multiply-add of conv/linear
    expected = (
        sum(cout * cin // groups * math.prod(k) * math.prod(g) for _, cin, cout, groups, k, _, g in reference_convs())
        + 768 * 400
    )
    assert macs == expected
    # Conv+linear give 11.045 G, 1.2% under the quoted 11.18 G; adding 2 ops per BatchNorm element (as
    # thop-style counters do, the convention under which the 3D-ResNet figures also hold) gives 11.18 G.
    assert abs(macs / 11.18e9 - 1) < 0.015, macs
    assert abs((macs + 2 * sum(bn_elements)) / 11.18e9 - 1) < 0.01


def test_contract_and_saliency_tube_equals_logit(model):
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        features, logits = model.forward_features(x), model(x)
    assert features.shape == (1, model.num_features, 2, 2, 2) and model.num_features == 768
    assert model.get_classifier() is model.classifier and isinstance(model.classifier, torch.nn.Linear)
    torch.testing.assert_close(logits, model.forward_head(features))
    w, b = model.classifier.weight, model.classifier.bias
    tubes = torch.einsum("kc,bcthw->bkthw", w, features)
    torch.testing.assert_close(tubes.mean((2, 3, 4)) + b, logits)


def test_forward_matches_the_reference_computation():
    """Strict loading checks names and shapes only; this checks the layer order that gives the weights meaning."""
    net = MFNet3D(num_classes=5).eval()
    with torch.no_grad():
        for name, tensor in net.state_dict().items():  # random BN statistics and affines: no BN is an identity
            if name.endswith(("bn.weight", "running_var")):
                tensor.uniform_(0.5, 1.5)
            elif name.endswith(("bn.bias", "running_mean")):
                tensor.normal_(0, 0.1)
        x = torch.randn(1, 3, 4, 64, 64)
        torch.testing.assert_close(net(x), reference_forward(net.state_dict(), x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("frames", [8, 32])
@pytest.mark.parametrize("size", [112, 160])
def test_adaptive_input_sizes(frames, size):
    with torch.device("meta"):
        net = MFNet3D(num_classes=5)
        features = net.forward_features(torch.empty(1, 3, frames, size, size))
        assert features.shape == (1, 768, frames // 2, math.ceil(size / 32), math.ceil(size / 32))
        assert net.forward_head(features).shape == (1, 5)


def test_batch_of_two_is_deterministic_and_independent(model):
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        first, second = model(x), model(x)
        single = model(x[1:])
    assert first.shape == (2, 7) and torch.isfinite(first).all()
    assert torch.equal(first, second)
    torch.testing.assert_close(first[1:], single)
