import pytest
import torch

from saliency_tubes.errors import SaliencyTubesError
from saliency_tubes.models import create_model, list_models


@pytest.mark.parametrize("name", ["resnet3d_10", "resnet3d_18"])
def test_model_contract(name):
    model = create_model(name, num_classes=7, width=8).eval()
    x = torch.randn(2, 3, 8, 48, 64)
    features = model.forward_features(x)
    assert features.dim() == 5 and features.shape[:2] == (2, model.num_features)
    assert model.get_classifier() is model.fc and model.fc.out_features == 7
    torch.testing.assert_close(model(x), model.forward_head(features))


@pytest.mark.parametrize("shape", [(4, 32, 32), (16, 40, 56), (8, 97, 131)])
def test_any_clip_that_survives_the_strides(shape):
    model = create_model("resnet3d_10", num_classes=3, width=4, no_max_pool=True, conv1_t_size=3).eval()
    assert model(torch.randn(1, 3, *shape)).shape == (1, 3)


def test_factory_errors():
    assert {"resnet3d_10", "resnet3d_18"} <= set(list_models())
    with pytest.raises(SaliencyTubesError, match="unknown architecture"):
        create_model("resnet3d_7", 3)
    with pytest.raises(SaliencyTubesError, match="bad arguments"):
        create_model("resnet3d_10", 3, depth_multiplier=2)


def test_depths_differ():
    n10 = sum(p.numel() for p in create_model("resnet3d_10", 10, width=8).parameters())
    n18 = sum(p.numel() for p in create_model("resnet3d_18", 10, width=8).parameters())
    assert n18 > n10


def test_finer_last_stages():
    x = torch.randn(1, 3, 8, 64, 64)
    base = dict(width=4, conv1_t_size=3, no_max_pool=True, stage_t_stride=1)
    shapes = {
        (l3, l4): create_model("resnet3d_10", 3, layer3_stride=l3, last_stride=l4, **base).forward_features(x).shape[2:]
        for l3, l4 in ((2, 2), (2, 1), (1, 1))
    }
    assert shapes == {(2, 2): (8, 4, 4), (2, 1): (8, 8, 8), (1, 1): (8, 16, 16)}


@pytest.mark.parametrize("name", list_models())
def test_every_architecture_declares_its_classifier_and_stages(name):
    from saliency_tubes.models import VideoModel, data_config, stage_names
    from saliency_tubes.models.pretrained import classifier_name

    with torch.device("meta"):
        model = create_model(name, 5)
    assert isinstance(model, VideoModel)
    assert data_config(name).classifier == classifier_name(model)
    names = stage_names(model)
    assert len(names) == len(model.stage_groups()) >= 4 and all(dict(model.named_modules()).get(n) for n in names)


def test_a_model_registered_from_outside_the_package(monkeypatch):
    from torch import nn

    from saliency_tubes import models
    from saliency_tubes.config import DataConfig
    from saliency_tubes.explain import explain
    from saliency_tubes.models import data_config, register_model

    monkeypatch.setattr(models, "_MODELS", dict(models._MODELS))  # the registration ends with the test

    @register_model("outside_tiny", DataConfig(4, 1, 16, classifier="head"))
    class Tiny(nn.Module):
        def __init__(self, num_classes: int = 400):
            super().__init__()
            self.body, self.head = nn.Conv3d(3, 6, 3, padding=1), nn.Linear(6, num_classes)

        def forward_features(self, x):
            return self.body(x)

        def forward_head(self, f):
            return self.head(f.mean((2, 3, 4)))

        def forward(self, x):
            return self.forward_head(self.forward_features(x))

        def get_classifier(self):
            return self.head

        def stage_groups(self):
            return [[self.body]]

    model = create_model("outside_tiny", 3)
    assert data_config("outside_tiny").clip_len == 4
    assert explain(model, torch.randn(2, 3, 4, 16, 16)).tubes.shape == (2, 4, 16, 16)
