"""Fine-tuning controls of the LightningModule, checked on a real (tiny) training run."""

import pytest
import pytorch_lightning as pl
import torch

from saliency_tubes.lightning import VideoClassifier
from saliency_tubes.models import create_model, stage_groups

from helpers.training import ARCH, tiny_classifier


def _fit(tmp_path, root, **kwargs):
    dm, model = tiny_classifier(root, scheduler="none", **kwargs)
    before = {k: v.clone() for k, v in model.model.state_dict().items()}
    pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        default_root_dir=str(tmp_path),
    ).fit(model, dm)
    after = model.model.state_dict()
    return model, {k for k in before if not torch.equal(before[k], after[k])}


def test_freeze_stages_keeps_weights_and_statistics(tmp_path, tiny_dataset):
    model, changed = _fit(tmp_path, tiny_dataset, freeze_stages=2)  # the stem and layer1
    assert not any(k.startswith(("conv1.", "bn1.", "layer1.")) for k in changed)
    assert any(k.startswith("layer1.") for k in model.model.state_dict())
    assert {"layer2.0.conv1.weight", "layer4.0.bn1.running_mean", "fc.weight"} <= changed
    assert not model.model.layer1.training and model.model.layer2.training  # frozen BN stays in eval mode
    frozen = [p for m in (model.model.conv1, model.model.layer1) for p in m.parameters()]
    assert frozen and not any(p.requires_grad for p in frozen)


def test_frozen_bn_statistics(tmp_path, tiny_dataset):
    _, changed = _fit(tmp_path, tiny_dataset, freeze_bn_stats=True)
    assert not any(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
    assert "layer2.0.bn1.weight" in changed  # BN affine parameters still learn


def test_backbone_lr_multiplier(tmp_path, tiny_dataset):
    model, changed = _fit(tmp_path, tiny_dataset, backbone_lr_mult=0.0, freeze_bn_stats=True)
    assert changed == {"fc.weight", "fc.bias"}  # a zero multiplier trains the classifier only
    lrs = {g["lr"] for g in model.trainer.optimizers[0].param_groups}
    assert lrs == {0.0, 0.05}
    model = VideoClassifier(
        arch="resnet3d_10", num_classes=3, arch_kwargs=ARCH, lr=0.1, scheduler="none", backbone_lr_mult=0.2
    )
    groups = model.configure_optimizers().param_groups
    head = {id(p) for p in model.model.fc.parameters()}
    for g in groups:
        assert g["lr"] == pytest.approx(0.1 if id(g["params"][0]) in head else 0.02)


def test_fine_tuning_from_a_checkpoint_with_other_classes(tmp_path, tiny_dataset):
    source = create_model("resnet3d_10", 7, **ARCH)
    torch.save(
        {"epoch": 1, "arch": "resnet-10", "state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}},
        tmp_path / "hara.pth",
    )
    model, _ = _fit(tmp_path, tiny_dataset, pretrained=str(tmp_path / "hara.pth"), freeze_stages=5)
    report = model.model.pretrained_report
    assert report.replaced == ["fc.weight", "fc.bias"] and not report.missing
    for key, value in source.state_dict().items():
        if not key.startswith("fc."):
            torch.testing.assert_close(model.model.state_dict()[key], value, rtol=0, atol=0, msg=key)


def test_bad_fine_tuning_settings():
    with pytest.raises(ValueError, match="has 5 stages"):
        VideoClassifier(arch="resnet3d_10", num_classes=3, arch_kwargs=ARCH, freeze_stages=6)
    with pytest.raises(ValueError, match="backbone_lr_mult"):
        VideoClassifier(arch="resnet3d_10", num_classes=3, arch_kwargs=ARCH, backbone_lr_mult=-1)


@pytest.mark.parametrize(
    "arch, kwargs",
    [("resnet3d_10", ARCH), ("resnet2p1d_10", ARCH), ("resnet3d_50", ARCH), ("r3d_18", {}), ("mfnet3d", {})],
)
def test_every_architecture_names_five_stages_covering_the_backbone(arch, kwargs):
    model = create_model(arch, 3, **kwargs)
    stages = stage_groups(model)
    assert len(stages) == 5
    in_stages = {id(p) for stage in stages for m in stage for p in m.parameters()}
    head = {id(p) for p in model.get_classifier().parameters()}
    assert in_stages | head == {id(p) for p in model.parameters()} and not in_stages & head


def test_channels_last_where_it_was_measured_faster_same_outputs():
    torch.manual_seed(0)
    auto = VideoClassifier(arch="mfnet3d", num_classes=3).eval()
    plain = VideoClassifier(arch="mfnet3d", num_classes=3, channels_last=False).eval()
    plain.load_state_dict(auto.state_dict())
    assert auto.model.conv1.conv.weight.is_contiguous(memory_format=torch.channels_last_3d)
    assert not VideoClassifier(arch="resnet3d_10", num_classes=3, arch_kwargs=ARCH)._channels_last
    clips = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(auto(clips), plain(clips), atol=1e-4, rtol=1e-4)


def test_mixup_and_cutmix_of_clips():
    from saliency_tubes.data.transforms import mix_clips

    clips = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1, 1).expand(4, 3, 4, 8, 8).clone()
    same, partner, lam = mix_clips(clips)
    assert same is clips and lam == 1.0 and partner.tolist() == [3, 2, 1, 0]
    g = torch.Generator().manual_seed(0)
    mixed, partner, lam = mix_clips(clips, mixup_alpha=0.4, generator=g)
    assert 0 < lam < 1
    torch.testing.assert_close(mixed, lam * clips + (1 - lam) * clips[partner])
    mixed, partner, lam = mix_clips(clips, cutmix_alpha=1.0, generator=torch.Generator().manual_seed(3))
    pasted = (mixed != clips)[:, 0]  # B×T×H×W: where a clip got its partner's pixels
    assert pasted[0].any() and (pasted[0] == pasted[0, :1]).all()  # the same box in every frame: a tube
    assert abs((1 - pasted[0, 0].float().mean().item()) - lam) < 1e-6  # λ is the share of pixels kept


def test_training_with_mixup_and_cutmix(tmp_path, tiny_dataset):
    _, changed = _fit(tmp_path, tiny_dataset, mixup_alpha=0.2, cutmix_alpha=1.0)
    assert "layer2.0.conv1.weight" in changed


@pytest.mark.parametrize("extra", [{}, {"arch": "mfnet3d", "arch_kwargs": None}])
def test_model_summary_shows_the_input_size_and_flops(extra):
    """A zero clip of the configured size runs through the model summary (also in channels_last_3d)."""
    from pytorch_lightning.utilities.model_summary import ModelSummary

    model = VideoClassifier(**{"num_classes": 3, "arch_kwargs": ARCH, "clip_len": 4, "input_size": 32, **extra})
    summary = ModelSummary(model, max_depth=1)
    assert summary.in_sizes[0] == [1, 3, 4, 32, 32]
    assert summary.out_sizes[0] == [1, 3]
    assert summary.total_flops > 1e6
