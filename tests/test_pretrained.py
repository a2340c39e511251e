"""Weight files in every supported container load into the models; what does not fit is a one-line error."""

import pytest
import torch
from safetensors.torch import save_file

from saliency_tubes.errors import SaliencyTubesError
from saliency_tubes.models import create_model, read_weight_file
from saliency_tubes.models.inflate import inflate_kernel

SMALL = dict(width=8, conv1_t_size=3, no_max_pool=True)


def _source(num_classes=5):
    torch.manual_seed(0)
    return create_model("resnet3d_10", num_classes, **SMALL).eval()


def _same_backbone(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa if not k.startswith("fc."))


def _containers(model, tmp_path):
    """The same weights saved the ways public releases save them."""
    state = model.state_dict()
    module_prefixed = {f"module.{k}": v for k, v in state.items()}
    files = {
        "plain state_dict": {"x.pth": state},
        "3D-ResNets-PyTorch / timm checkpoint": {
            "hara.pth": {
                "epoch": 200,
                "arch": "resnet-10",
                "state_dict": module_prefixed,
                "optimizer": {"state": {}, "param_groups": []},
            }
        },
        "PyTorch-MFNet checkpoint": {"mfnet.pth": {"epoch": 30, "state_dict": module_prefixed}},
    }
    for fmt, entries in files.items():
        for name, obj in entries.items():
            torch.save(obj, tmp_path / name)
            yield fmt, tmp_path / name
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "timm.safetensors"))
    yield "plain state_dict (safetensors)", tmp_path / "timm.safetensors"


def test_every_container_loads_and_gives_the_same_logits(tmp_path):
    source = _source()
    clip = torch.randn(1, 3, 4, 32, 32)
    for fmt, path in _containers(source, tmp_path):
        assert read_weight_file(path).format == fmt
        model = create_model("resnet3d_10", 5, pretrained=path, **SMALL).eval()
        report = model.pretrained_report
        assert report.format == fmt and not report.missing and not report.replaced
        assert len(report.kept) == len(source.state_dict())
        torch.testing.assert_close(model(clip), source(clip), rtol=0, atol=0)


def test_new_class_count_replaces_only_the_classifier(tmp_path):
    source = _source(num_classes=5)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    torch.manual_seed(1)
    fresh = create_model("resnet3d_10", 3, **SMALL)
    torch.manual_seed(1)
    tuned = create_model("resnet3d_10", 3, pretrained=tmp_path / "w.pth", **SMALL)
    assert tuned.pretrained_report.replaced == ["fc.weight", "fc.bias"]
    assert _same_backbone(tuned, source)
    assert torch.equal(tuned.fc.weight, fresh.fc.weight)  # left at its initialisation
    assert "classifier replaced" in tuned.pretrained_report.summary()


def test_missing_keys_are_reported_not_hidden(tmp_path):
    state = {k: v for k, v in _source().state_dict().items() if not k.startswith("layer4.0.bn2")}
    torch.save(state, tmp_path / "w.pth")
    model = create_model("resnet3d_10", 5, pretrained=tmp_path / "w.pth", **SMALL)
    assert sorted(model.pretrained_report.missing) == [
        "layer4.0.bn2.bias",
        "layer4.0.bn2.running_mean",
        "layer4.0.bn2.running_var",
        "layer4.0.bn2.weight",
    ]


def test_2d_kernels_are_inflated(tmp_path):
    source = _source()
    state_2d = {k: (v.sum(2) if v.dim() == 5 else v) for k, v in source.state_dict().items()}
    torch.save(state_2d, tmp_path / "w2d.pth")
    model = create_model("resnet3d_10", 5, pretrained=tmp_path / "w2d.pth", **SMALL)
    assert "conv1.weight" in model.pretrained_report.inflated and "2D inflated" in model.pretrained_report.format
    torch.testing.assert_close(model.conv1.weight, inflate_kernel(state_2d["conv1.weight"], 3))
    torch.testing.assert_close(model.conv1.weight.sum(2), state_2d["conv1.weight"])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda s: {**s, "layer9.conv.weight": torch.zeros(1)}, "first unknown key 'layer9.conv.weight'"),
        (lambda s: {**s, "layer1.0.conv1.weight": torch.zeros(8, 8, 3, 3, 5)}, "'layer1.0.conv1.weight' has shape"),
        (lambda s: {"stem.0.weight": torch.zeros(1)}, "fits no supported layout"),
    ],
)
def test_weights_that_do_not_fit_name_the_first_offending_key(tmp_path, make, message):
    torch.save(make(_source().state_dict()), tmp_path / "w.pth")
    with pytest.raises(SaliencyTubesError, match=message) as err:
        create_model("resnet3d_10", 5, pretrained=tmp_path / "w.pth", **SMALL)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "obj, message",
    [
        ([1, 2, 3], "holds a list"),
        ({"epoch": 3, "lr": 0.1}, "is not a tensor"),
        ({}, "holds no weights"),
    ],
)
def test_files_that_fit_no_format(tmp_path, obj, message):
    torch.save(obj, tmp_path / "w.pth")
    with pytest.raises(SaliencyTubesError, match=message):
        read_weight_file(tmp_path / "w.pth")


def test_not_a_weight_file(tmp_path):
    (tmp_path / "notes.pth").write_text("hello")
    with pytest.raises(SaliencyTubesError, match="not a PyTorch or safetensors weight file"):
        create_model("resnet3d_10", 5, pretrained=tmp_path / "notes.pth")
    with pytest.raises(SaliencyTubesError, match="does not exist"):
        create_model("resnet3d_10", 5, pretrained=tmp_path / "missing.pth")


def test_models_in_timms_registry(tmp_path):
    import timm

    import saliency_tubes.models as models

    exported = list(models.__all__)
    assert "resnet3d_18" in models.register_timm() and models.__all__ == exported
    torch.save(_source(5).state_dict(), tmp_path / "w.pth")
    model = timm.create_model("resnet3d_10", num_classes=5, weights=tmp_path / "w.pth", **SMALL)
    assert model.pretrained_report.kept and model.fc.out_features == 5
    with pytest.raises(SaliencyTubesError, match="no hub weights"):
        timm.create_model("resnet3d_10", pretrained=True)


def test_public_formats_through_the_factory(tmp_path):
    """Each public release format, saved as its project saves it, found by create_model(pretrained=...) alone."""
    import timm
    import torchvision

    clip = torch.randn(1, 3, 4, 32, 32)
    # torchvision: a bare state_dict; same logits as torchvision's own model; fine-tuning to 7 classes keeps the rest
    torch.manual_seed(0)
    theirs = torchvision.models.video.r2plus1d_18(weights=None).eval()
    torch.save(theirs.state_dict(), tmp_path / "r2plus1d_18-91a641e6.pth")
    ours = create_model("r2plus1d_18", 400, pretrained=tmp_path / "r2plus1d_18-91a641e6.pth").eval()
    assert ours.pretrained_report.format == "plain state_dict" and not ours.pretrained_report.missing
    with torch.no_grad():
        torch.testing.assert_close(ours(clip), theirs(clip))
    tuned = create_model("r2plus1d_18", 7, pretrained=tmp_path / "r2plus1d_18-91a641e6.pth")
    assert tuned.pretrained_report.replaced == ["fc.weight", "fc.bias"]
    # PyTorch-MFNet: {'epoch', 'state_dict'} with 'module.' keys from DataParallel
    source = create_model("mfnet3d", 400).eval()
    torch.save(
        {"epoch": 40, "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "mfnet.pth"
    )
    mfnet = create_model("mfnet3d", 101, pretrained=tmp_path / "mfnet.pth")
    assert mfnet.pretrained_report.format == "PyTorch-MFNet checkpoint"
    assert (
        mfnet.pretrained_report.replaced == ["classifier.weight", "classifier.bias"]
        and not mfnet.pretrained_report.missing
    )
    # timm 2D ImageNet weights: inflated into a 3D ResNet-50; a boring video gives the 2D features
    model_2d = timm.create_model("resnet50", pretrained=False, num_classes=10).eval()
    torch.save(model_2d.state_dict(), tmp_path / "resnet50_a1.pth")
    model_3d = create_model(
        "resnet3d_50", 10, pretrained=tmp_path / "resnet50_a1.pth", conv1_t_size=5, temporal_padding="replicate"
    ).eval()
    report = model_3d.pretrained_report
    assert "2D inflated" in report.format and "conv1.weight" in report.inflated and not report.missing
    frame = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        torch.testing.assert_close(
            model_3d(frame.unsqueeze(2).expand(-1, -1, 4, -1, -1)), model_2d(frame), atol=1e-4, rtol=1e-4
        )
    # weights of one architecture offered to another: one line naming the first key
    with pytest.raises(SaliencyTubesError, match="first unknown key 'stem.0.weight'"):
        create_model("resnet3d_18", 400, pretrained=tmp_path / "r2plus1d_18-91a641e6.pth")
