"""torchvision's Swin3D, MViT and S3D under the model contract: torchvision's state_dicts load unchanged and give
torchvision's logits; each model says how its tokens map to a T'×H'×W' grid."""

import math

import pytest
import torch
from torchvision.models.video import mvit as tv_mvit
from torchvision.models.video import s3d as tv_s3d
from torchvision.models.video import swin3d_t as tv_swin3d_t

from saliency_tubes.errors import SaliencyTubesError
from saliency_tubes.models import TokenLayout, create_model, data_config
from saliency_tubes.models.pretrained import classifier_name
from saliency_tubes.models.torchvision_transformers import MVIT_FLAGS, mvit_block_setting

from helpers.common import REPO

TRANSFORMERS = ["swin3d_t", "swin3d_s", "swin3d_b", "mvit_v1_b", "mvit_v2_s", "s3d"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _same_logits(reference, ours, clip):
    """Load the reference's (random-init) state_dict into ours strictly; both give the same logits."""
    result = ours.load_state_dict(reference.state_dict(), strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    with torch.no_grad():
        features = ours.forward_features(clip)
        torch.testing.assert_close(ours.forward_head(features), reference(clip), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours(clip), reference(clip), rtol=1e-5, atol=1e-5)
    return features


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_parameter_names_and_shapes_are_torchvisions(name):
    import torchvision.models.video as tv

    with torch.device("meta"):
        reference, ours = getattr(tv, name)(), create_model(name, 400)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}
    assert classifier_name(ours) == data_config(name).classifier
    assert isinstance(ours.get_classifier(), torch.nn.Linear)
    modules = dict(ours.named_modules())
    assert all(layer in modules for layer in ours.explain_layers())
    assert ours.cam_exact == (not name.startswith("mvit")) and ours.cam_note


def test_swin3d_t_gives_torchvisions_logits_and_an_exact_cam():
    torch.manual_seed(0)
    reference, ours = tv_swin3d_t().eval(), create_model("swin3d_t", 400).eval()
    clip = torch.randn(1, 3, 4, 64, 64)
    features = _same_logits(reference, ours, clip)
    assert features.shape == (1, 768, 2, 2, 2)
    head = ours.get_classifier()
    cam = torch.einsum("kc,bcthw->bkthw", head.weight, features)
    torch.testing.assert_close(cam.mean((2, 3, 4)) + head.bias, ours(clip), rtol=1e-5, atol=1e-5)


def test_swin3d_absolute_position_adds_the_fixed_sinusoid_to_the_patch_tokens():
    """The opt-in absolute position (Swin v1's ``ape``, here VideoMAE's fixed table): no parameter, so torchvision's
    files still load; the table is added to the patch embedding's tokens in time-major order, before the blocks."""
    from saliency_tubes.models.vit_video import sinusoid_table

    torch.manual_seed(0)
    kwargs = dict(patch_size=[4, 8, 8], window_size=[2, 8, 8], embed_dim=24, depths=[2], num_heads=[2])
    plain, placed = (
        create_model("swin3d_t", 6, **kwargs).eval(),
        create_model("swin3d_t", 6, absolute_position=True, **kwargs).eval(),
    )
    loaded = placed.load_state_dict(plain.state_dict(), strict=True)  # no parameter added
    assert not loaded.missing_keys and not loaded.unexpected_keys
    clip = torch.randn(2, 3, 8, 32, 48)  # a 2×4×6 grid: a wrong axis order or a transposed table would not match
    seen = {}
    placed.features.register_forward_pre_hook(lambda module, args: seen.setdefault("tokens", args[0]))
    with torch.no_grad():
        placed(clip)
        tokens = plain.patch_embed(clip)
    table = sinusoid_table(2 * 4 * 6, 24)[0].view(2, 4, 6, 24)
    torch.testing.assert_close(seen["tokens"], tokens + table)
    with torch.no_grad():
        assert not torch.allclose(placed(clip), plain(clip))


@pytest.mark.slow  # about 10 s: torchvision's S3D runs only at ≥ 16×224×224 (18 GMACs)
def test_s3d_gives_torchvisions_logits_both_ways_and_an_exact_cam():
    """The classifier is a Linear stored as torchvision's 1×1×1 Conv3d: either state_dict loads into the other."""
    torch.manual_seed(0)
    reference, ours = tv_s3d().eval(), create_model("s3d", 400).eval()
    clip = torch.randn(1, 3, 16, 224, 224)  # torchvision's S3D needs ≥ 2×7×7 features for its window average
    features = _same_logits(reference, ours, clip)
    assert ours.state_dict()["classifier.1.weight"].shape == (400, 1024, 1, 1, 1)
    assert ours.get_classifier().weight.shape == (400, 1024)
    torch.manual_seed(1)
    back = tv_s3d().eval()
    back.load_state_dict(ours.state_dict(), strict=True)
    head = ours.get_classifier()
    with torch.no_grad():
        torch.testing.assert_close(back(clip), ours(clip), rtol=1e-5, atol=1e-5)
        cam = torch.einsum("kc,bcthw->bkthw", head.weight, features)
        torch.testing.assert_close(cam.mean((2, 3, 4)) + head.bias, ours(clip), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("variant", ["mvit_v1_b", "mvit_v2_s"])
def test_mvit_at_a_small_size_gives_torchvisions_logits(variant):
    """torchvision's builders fix 16×224×224; its MViT class with the same block settings and flags, at 8×64×64."""
    torch.manual_seed(0)
    size = dict(spatial_size=(64, 64), temporal_size=8)
    reference = tv_mvit.MViT(block_setting=mvit_block_setting(variant), **MVIT_FLAGS[variant], **size).eval()
    ours = create_model(variant, 400, **size).eval()
    clip = torch.randn(2, 3, 8, 64, 64)
    tokens = _same_logits(reference, ours, clip)
    assert tokens.shape == (2, 1 + 4 * 2 * 2, 768)
    assert ours.token_layout("", tokens) == TokenLayout((4, 2, 2), "time-major", prefix=1)


def test_mvit_v1_interpolates_its_position_embedding_for_other_sizes():
    model = create_model("mvit_v1_b", 5, spatial_size=(64, 64), temporal_size=8).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 8, 64, 64)).shape == (1, 5)
        tokens = model.forward_features(torch.randn(1, 3, 12, 96, 64))
    assert model.token_layout("norm", tokens) == TokenLayout((6, 3, 2), "time-major", prefix=1)


@pytest.mark.slow  # about 15 s: 64 GMACs twice
def test_mvit_v2_s_gives_torchvisions_logits_at_its_reference_size():
    torch.manual_seed(0)
    reference, ours = tv_mvit.mvit_v2_s().eval(), create_model("mvit_v2_s", 400).eval()
    _same_logits(reference, ours, torch.randn(1, 3, 16, 224, 224))


def test_token_layouts_of_swin3d_and_mvit_blocks():
    swin = create_model("swin3d_t", 3, embed_dim=16, depths=(1, 1), num_heads=(1, 2), window_size=(2, 4, 4)).eval()
    mvit = create_model("mvit_v2_s", 3, spatial_size=(64, 64), temporal_size=8).eval()
    outputs = {}

    def keep(name):
        return lambda _m, _i, out: outputs.__setitem__(name, out)

    hooks = [swin.get_submodule(n).register_forward_hook(keep(f"swin:{n}")) for n in swin.explain_layers()]
    hooks += [mvit.get_submodule(n).register_forward_hook(keep(f"mvit:{n}")) for n in ("blocks.0", "blocks.15")]
    with torch.no_grad():
        swin(torch.randn(1, 3, 8, 32, 48))
        mvit(torch.randn(1, 3, 8, 64, 64))
    for h in hooks:
        h.remove()
    assert swin.explain_layers() == ["features.0.0", "features.2.0"]
    assert swin.token_layout("features.0.0", outputs["swin:features.0.0"]) == TokenLayout(
        (4, 8, 12), channels_last=True
    )
    assert swin.token_layout("features.2.0", outputs["swin:features.2.0"]) == TokenLayout((4, 4, 6), channels_last=True)
    assert swin.token_layout("", swin.forward_features(torch.randn(1, 3, 8, 32, 48))) is None
    assert mvit.explain_layers() == [f"blocks.{i}" for i in range(16)]
    tokens, thw = outputs["mvit:blocks.0"]
    assert thw == (4, 16, 16) and tokens.shape[1] == 1 + math.prod(thw)
    assert mvit.token_layout("blocks.0", outputs["mvit:blocks.0"]) == TokenLayout((4, 16, 16), "time-major", 1)
    assert mvit.token_layout("blocks.15", outputs["mvit:blocks.15"]) == TokenLayout((4, 2, 2), "time-major", 1)
    with pytest.raises(SaliencyTubesError, match="no token grid"):
        mvit.token_layout("head", torch.zeros(1, 3))


@pytest.mark.parametrize("name", ["s3d", "swin3d_t"])
def test_a_torchvision_file_loads_as_explain_py_arch_does(tmp_path, name):
    """``explain.py --arch NAME --checkpoint <torchvision state_dict>``: the class count is read from the file's
    classifier (S3D's is a 1×1×1 Conv3d weight), every tensor is kept."""
    import torchvision.models.video as tv

    from saliency_tubes.models.io import load_model

    torch.manual_seed(0)
    reference = getattr(tv, name)(num_classes=9)
    torch.save(reference.state_dict(), tmp_path / f"{name}.pth")
    model, info = load_model(tmp_path / f"{name}.pth", arch=name)
    assert info.num_classes == 9 and info.data == data_config(name)
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


@pytest.mark.parametrize("name", ["swin3d_tiny_synthetic", "vit_tiny_synthetic", "mvit_tiny_synthetic"])
def test_the_small_yaml_configs_build_train_and_explain(name):
    """The CPU-sized transformers of configs/: built from the YAML's arch_kwargs, one training step, a tube."""
    import yaml

    from saliency_tubes.explain import explain
    from saliency_tubes.explain.methods import default_method

    config = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    model = create_model(config["model"]["arch"], 6, **config["model"]["arch_kwargs"])
    data = config["data"]
    clips = torch.randn(2, 3, data["clip_len"], data["input_size"], data["input_size"])
    torch.nn.functional.cross_entropy(model(clips), torch.tensor([0, 1])).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    result = explain(model, clips, default_method(model))
    assert result.tubes.shape == (2, data["clip_len"], data["input_size"], data["input_size"])
    assert sum(p.numel() for p in model.parameters()) < 2_000_000  # small enough for CPU training


def test_mvit_blocks_from_yaml_name_every_field():
    with pytest.raises(SaliencyTubesError, match=r"blocks\[0\] needs exactly the fields"):
        create_model("mvit_v2_s", 6, blocks=[{"num_heads": 1, "input_channels": 32}])
