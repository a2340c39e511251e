"""Model factory. Every model follows the contract in docs/ARCHITECTURE.md (``models.contract.VideoModel``):
``forward_features(x) -> B×C×T'×H'×W'``, ``forward_head(features) -> logits``, ``get_classifier() -> nn.Linear``,
and ``stage_groups()``: the backbone's modules from input to output (stem first), for freezing the first N.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any, Callable, cast

from torch import nn

from ..config import KINETICS_MEAN, KINETICS_STD, DataConfig
from ..errors import SaliencyTubesError
from .contract import TokenLayout, VideoModel, check_contract, stage_names
from .inflate import inflate_state_dict
from .pretrained import LoadReport, load_weights, read_weight_file
from .resnet3d import LAYERS, ResNet3d

# 3D-ResNets-PyTorch: Kinetics mean/std of its `get_mean_std` with value scale 1, 16 consecutive frames at 112 px.
HARA_INPUT = DataConfig(16, 1, 112, (0.4345, 0.4051, 0.3775), (0.2768, 0.2713, 0.2737), classifier="fc")
# torchvision video models: 16 frames at 112 px, its Kinetics-400 mean/std.
TORCHVISION_INPUT = DataConfig(16, 1, 112, KINETICS_MEAN, KINETICS_STD, classifier="fc")
# PyTorch-MFNet: 16 frames, every 2nd, 224 px; mean (124, 117, 104)/255, std 1/(0.0167·255).
MFNET_INPUT = DataConfig(
    16, 2, 224, (124 / 255, 117 / 255, 104 / 255), (1 / (0.0167 * 255),) * 3, classifier="classifier"
)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# torchvision Swin3D weights: ImageNet mean/std, 224 px crops; evaluated on 32-frame clips at 15 fps (stride 2).
SWIN3D_INPUT = DataConfig(32, 2, 224, IMAGENET_MEAN, IMAGENET_STD, classifier="head")
# torchvision MViT weights: mean 0.45, std 0.225, 224 px; 16-frame clips at 7.5 fps (stride 4).
MVIT_INPUT = DataConfig(16, 4, 224, (0.45, 0.45, 0.45), (0.225, 0.225, 0.225), classifier="head.1")
# torchvision S3D weights: its Kinetics mean/std, 224 px; evaluated on 128-frame clips at 15 fps (stride 2).
S3D_INPUT = DataConfig(128, 2, 224, KINETICS_MEAN, KINETICS_STD, classifier="classifier.1")
# VideoMAE Kinetics-400 fine-tuning: 16 frames every 4th, 224 px, ImageNet mean/std.
VIDEOMAE_INPUT = DataConfig(16, 4, 224, IMAGENET_MEAN, IMAGENET_STD, classifier="head")


def _lazy(module: str, name: str, *args) -> Callable[..., nn.Module]:
    """The constructor ``module.name`` (with leading ``args``), imported on first use (torchvision alone costs a
    second at start-up)."""

    def build(**kwargs) -> nn.Module:
        return getattr(import_module(f".{module}", __name__), name)(*args, **kwargs)

    return build


_MODELS: dict[str, tuple[Callable[..., nn.Module], DataConfig]] = {
    "mfnet3d": (_lazy("mfnet3d", "mfnet3d"), MFNET_INPUT),
    **{f"resnet3d_{d}": (_lazy("resnet3d", "resnet3d", d), HARA_INPUT) for d in LAYERS},
    **{f"resnet2p1d_{d}": (_lazy("resnet2p1d", "resnet2p1d", d), HARA_INPUT) for d in LAYERS},
    **{name: (_lazy("torchvision_video", name), TORCHVISION_INPUT) for name in ("r3d_18", "mc3_18", "r2plus1d_18")},
    **{name: (_lazy("torchvision_transformers", name), SWIN3D_INPUT) for name in ("swin3d_t", "swin3d_s", "swin3d_b")},
    **{name: (_lazy("torchvision_transformers", name), MVIT_INPUT) for name in ("mvit_v1_b", "mvit_v2_s")},
    "s3d": (_lazy("torchvision_transformers", "s3d"), S3D_INPUT),
    **{name: (_lazy("vit_video", name), VIDEOMAE_INPUT) for name in ("vit_video_s", "vit_video_b")},
}


def register_model(name: str, data: DataConfig) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make the constructor (``num_classes=…, **kwargs`` → a model following the contract) available as
    ``name``, with its data config. For models defined outside this package; the built-in ones are listed above so
    that each family's module (torchvision's, above all) is imported only when it is built."""

    def register(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _MODELS[name] = (build, data)
        return build

    return register


def list_models() -> list[str]:
    return sorted(_MODELS)


def data_config(name: str) -> DataConfig:
    """The data config of architecture ``name``: its reference input (clip length, frame stride, size, mean, std)
    and the name of its classifier."""
    _check(name)
    return _MODELS[name][1]


def _check(name: str) -> None:
    if name not in _MODELS:
        raise SaliencyTubesError(f"unknown architecture {name!r}; available: {', '.join(list_models())}")


def create_model(name: str, num_classes: int, pretrained: str | Path | None = None, **kwargs) -> nn.Module:
    """Build architecture ``name`` with a ``num_classes``-way classifier; ``kwargs`` go to its constructor.

    ``pretrained``: a weight file in any supported format (see :mod:`saliency_tubes.models.pretrained`), detected
    from its contents; a classifier of another size is replaced, 2D kernels are inflated. What was kept, replaced
    and missing is logged and left on the model as ``model.pretrained_report``.
    """
    _check(name)
    try:
        model = _MODELS[name][0](num_classes=num_classes, **kwargs)
    except TypeError as exc:
        raise SaliencyTubesError(f"bad arguments for {name}: {exc}") from None
    if pretrained is not None:
        cast(Any, model).pretrained_report = load_weights(model, pretrained)
    return model


def stage_groups(model: nn.Module) -> list[list[nn.Module]]:
    """The backbone's stages from input to output (stem first) as lists of modules."""
    if not hasattr(model, "stage_groups"):
        raise SaliencyTubesError(f"{type(model).__name__} does not name its stages, so they cannot be frozen")
    return cast(VideoModel, model).stage_groups()


def register_timm() -> list[str]:
    """Register every architecture in timm's registry, so ``timm.create_model("mfnet3d", num_classes=101,
    weights=FILE)`` builds our model (timm's optimizer and scheduler factories then apply too). There are no hub
    weights: ``pretrained=True`` is refused; pass a weight file as ``weights``. Returns the registered names."""
    from timm.models import register_model

    def entry(name: str):
        def build(pretrained: bool = False, num_classes: int = 400, weights: str | Path | None = None, **kwargs):
            if pretrained:
                raise SaliencyTubesError(
                    f"{name} has no hub weights; pass a weight file: timm.create_model({name!r}, weights=FILE)"
                )
            for timm_only in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):
                kwargs.pop(timm_only, None)
            return create_model(name, num_classes, pretrained=weights, **kwargs)

        build.__name__, build.__qualname__, build.__module__ = name, name, __name__
        return build

    exported = list(__all__)
    for name in list_models():
        register_model(entry(name))
    __all__[:] = exported  # timm appends each name to the module's __all__; they are not attributes here
    return list_models()


__all__ = [
    "DataConfig",
    "TokenLayout",
    "VideoModel",
    "check_contract",
    "LoadReport",
    "ResNet3d",
    "create_model",
    "inflate_state_dict",
    "data_config",
    "stage_names",
    "list_models",
    "register_model",
    "load_weights",
    "read_weight_file",
    "register_timm",
    "stage_groups",
]
