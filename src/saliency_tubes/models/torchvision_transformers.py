"""torchvision's video transformers (Swin3D-T/S/B, MViT-V1-B, MViT-V2-S) and S3D under the model contract.

The networks are torchvision's own classes with torchvision's own blocks, so a torchvision Kinetics-400
state_dict loads unchanged (same names, same shapes) and gives the same logits; the subclasses only split
``forward`` into ``forward_features`` and ``forward_head`` and say how their tokens map to a ``T'×H'×W'`` grid
(``token_layout``, see ``models.contract.TokenLayout``).

What CAM (the ``saliency_tubes`` method) means for each:

- Swin3D averages its normalised, channels-last feature volume into a linear head: ``forward_features`` returns
  that volume permuted to ``B×C×T'×H'×W'`` and CAM with ``get_classifier()`` is exact.
- MViT classifies from a class token: the head never sees the grid tokens, so CAM from its weights does not apply
  (``cam_exact = False``); Grad-CAM on a block's patch tokens, reshaped with that block's ``thw``, does.
- S3D averages its last volume (torchvision's 2×7×7 window average, then the mean) into a 1×1×1 convolution that
  is a linear classifier: CAM is exact.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video import mvit as tv_mvit
from torchvision.models.video.mvit import MSBlockConfig, MViT
from torchvision.models.video.s3d import S3D
from torchvision.models.video.swin_transformer import SwinTransformer3d

from ..errors import SaliencyTubesError
from .contract import TokenLayout

# ----------------------------------------------------------------------------------------------------- Swin3D

# torchvision's swin3d_t/s/b (Liu et al. 2022): embed_dim, depths, num_heads; patch 2×4×4, window 8×7×7.
SWIN3D_VARIANTS: dict[str, tuple[int, tuple[int, ...], tuple[int, ...]]] = {
    "swin3d_t": (96, (2, 2, 6, 2), (3, 6, 12, 24)),
    "swin3d_s": (96, (2, 2, 18, 2), (3, 6, 12, 24)),
    "swin3d_b": (128, (2, 2, 18, 2), (4, 8, 16, 32)),
}


class Swin3dContract(SwinTransformer3d):
    """torchvision's ``SwinTransformer3d``; ``forward_features`` ends with the final LayerNorm and the permute to
    ``B×C×T'×H'×W'``, ``forward_head`` is the average pool and the linear head.

    ``absolute_position=True`` adds a fixed sinusoid table (VideoMAE's, over the time-major token index) to the patch
    embedding's tokens before the first block: the absolute position embedding of Swin v1 (``ape``), fixed rather
    than learned, so there is no new parameter and torchvision's files load either way. Off by default, as in
    torchvision (its pretrained weights were trained without it). What it did on the small synthetic config (not
    enough to keep it there): the header of ``configs/swin3d_tiny_synthetic.yaml``.
    """

    cam_exact = True
    cam_note = (
        "Swin3D averages its normalised feature volume into a linear head: the CAM of forward_features "
        "(channels-last tokens permuted to B×C×T'×H'×W') averages to the logit exactly"
    )

    def __init__(
        self,
        num_classes: int = 400,
        patch_size: tuple[int, int, int] | list[int] = (2, 4, 4),
        embed_dim: int = 96,
        depths: tuple[int, ...] | list[int] = (2, 2, 6, 2),
        num_heads: tuple[int, ...] | list[int] = (3, 6, 12, 24),
        window_size: tuple[int, int, int] | list[int] = (8, 7, 7),
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        stochastic_depth_prob: float = 0.1,
        absolute_position: bool = False,
    ):
        if len(depths) != len(num_heads):
            raise SaliencyTubesError(f"Swin3D: {len(depths)} depths but {len(num_heads)} num_heads")
        super().__init__(
            patch_size=list(patch_size),
            embed_dim=embed_dim,
            depths=list(depths),
            num_heads=list(num_heads),
            window_size=list(window_size),
            mlp_ratio=mlp_ratio,
            dropout=dropout,
            attention_dropout=attention_dropout,
            stochastic_depth_prob=stochastic_depth_prob,
            num_classes=num_classes,
        )
        self.absolute_position = absolute_position

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)  # B×T'×H'×W'×C
        if self.absolute_position:
            from .vit_video import sinusoid_table

            x = x + sinusoid_table(math.prod(x.shape[1:4]), x.shape[4], device=x.device).view(x.shape[1:]).to(x.dtype)
        x = self.features(self.pos_drop(x))
        return self.norm(x).permute(0, 4, 1, 2, 3)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.avgpool(features), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.head

    def _stages(self) -> list[nn.Sequential]:
        return [m for i, m in enumerate(self.features) if i % 2 == 0]  # features: stage, merge, stage, ...

    def stage_groups(self) -> list[list[nn.Module]]:
        groups: list[list[nn.Module]] = [[self.patch_embed]]
        for i, module in enumerate(self.features):
            if i % 2 == 0:
                groups.append(([self.features[i - 1]] if i else []) + [module])
        return groups

    def explain_layers(self) -> list[str]:
        """Every Swin block (``features.<stage>.<block>``, stages at even indices of ``features``)."""
        return [f"features.{2 * s}.{b}" for s, stage in enumerate(self._stages()) for b in range(len(stage))]

    def token_layout(self, layer: str, output: Any) -> TokenLayout | None:
        """Everything between the patch embedding and the final norm is channels-last ``B×T'×H'×W'×C``; the
        output of ``forward_features`` (``""``) and of ``patch_embed.proj`` are plain ``B×C×T'×H'×W'`` volumes."""
        if layer in ("", "patch_embed.proj"):
            return None
        if isinstance(output, torch.Tensor) and output.dim() == 5:
            return TokenLayout(tuple(output.shape[1:4]), channels_last=True)  # type: ignore[arg-type]
        raise SaliencyTubesError(f"layer {layer!r} of Swin3D has no token grid; explain one of {self.explain_layers()}")


def _swin3d(variant: str, num_classes: int = 400, **kwargs) -> Swin3dContract:
    embed_dim, depths, num_heads = SWIN3D_VARIANTS[variant]
    return Swin3dContract(num_classes, **{"embed_dim": embed_dim, "depths": depths, "num_heads": num_heads, **kwargs})


def swin3d_t(num_classes: int = 400, **kwargs) -> Swin3dContract:
    """Swin3D-T (torchvision ``swin3d_t``); ``kwargs``: ``patch_size``, ``window_size``, ``embed_dim``, ``depths``,
    ``num_heads``, ... override the reference (small configurations for CPU training)."""
    return _swin3d("swin3d_t", num_classes, **kwargs)


def swin3d_s(num_classes: int = 400, **kwargs) -> Swin3dContract:
    """Swin3D-S (torchvision ``swin3d_s``)."""
    return _swin3d("swin3d_s", num_classes, **kwargs)


def swin3d_b(num_classes: int = 400, **kwargs) -> Swin3dContract:
    """Swin3D-B (torchvision ``swin3d_b``)."""
    return _swin3d("swin3d_b", num_classes, **kwargs)


# ------------------------------------------------------------------------------------------------------- MViT

# The flags torchvision's mvit_v1_b / mvit_v2_s pass to MViT besides the block settings.
MVIT_FLAGS: dict[str, dict[str, bool]] = {
    "mvit_v1_b": dict(residual_pool=False, residual_with_cls_embed=False, rel_pos_embed=False, proj_after_attn=False),
    "mvit_v2_s": dict(residual_pool=True, residual_with_cls_embed=False, rel_pos_embed=True, proj_after_attn=True),
}


def mvit_block_setting(variant: str) -> list[MSBlockConfig]:
    """The block settings of torchvision's ``variant``, read back from its modules (built on the meta device, so
    nothing is computed) instead of copied: heads, channels, and the query / key-value pooling of every block."""
    with torch.device("meta"):
        reference = getattr(tv_mvit, variant)()

    def pooling(pool: Any) -> tuple[list[int], list[int]]:
        if pool is None:
            return [], []
        conv: nn.Conv3d = pool.pool
        return [int(k) for k in conv.kernel_size], [int(s) for s in conv.stride]

    settings = []
    for block in reference.blocks:
        kernel_q, stride_q = pooling(block.attn.pool_q)
        kernel_kv, stride_kv = pooling(block.attn.pool_k)
        settings.append(
            MSBlockConfig(
                num_heads=block.attn.num_heads,
                input_channels=block.norm1.normalized_shape[0],
                output_channels=block.mlp[-2].out_features,  # MLP: Linear, GELU, Dropout, Linear, Dropout
                kernel_q=kernel_q,
                kernel_kv=kernel_kv,
                stride_q=stride_q,
                stride_kv=stride_kv,
            )
        )
    return settings


class MViTContract(MViT):
    """torchvision's ``MViT``. ``forward_features`` returns the tokens after the final LayerNorm, ``B×(1+N)×C``
    with the class token first; ``forward_head`` classifies the class token. The grid is taken from the patch
    embedding's output, so inputs of other sizes work (MViT-V2 interpolates its relative positions itself; MViT-V1's
    absolute position embedding is interpolated here); at the constructed size the computation is torchvision's."""

    cam_exact = False
    cam_note = (
        "MViT classifies from its class token: the head's weights never meet the grid tokens, so CAM from them "
        "is not defined; use gradcam on a block (its patch tokens reshaped with the block's thw)"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_features = self.head[1].in_features
        self._grid: tuple[int, int, int] | None = None  # the last forward's final token grid (token_layout(""))

    def _position(self, x: torch.Tensor, thw: tuple[int, int, int]) -> torch.Tensor:
        enc = self.pos_encoding
        if enc.spatial_pos is None or thw == (enc.temporal_size, *enc.spatial_size):
            return enc(x)
        assert enc.temporal_pos is not None and enc.class_pos is not None
        t, h, w = thw
        spatial = enc.spatial_pos.T.reshape(1, -1, *enc.spatial_size)
        spatial = F.interpolate(spatial, size=(h, w), mode="bilinear", align_corners=False).flatten(2)[0].T
        temporal = F.interpolate(enc.temporal_pos.T[None], size=t, mode="linear", align_corners=False)[0].T
        grid = (temporal[:, None, :] + spatial[None]).reshape(t * h * w, -1)
        cls = enc.class_token.expand(x.size(0), -1).unsqueeze(1)
        return torch.cat((cls, x), dim=1) + torch.cat((enc.class_pos[None], grid))[None]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x)
        thw: tuple[int, int, int] = tuple(x.shape[2:])  # type: ignore[assignment]
        x = self._position(x.flatten(2).transpose(1, 2), thw)
        for block in self.blocks:
            x, thw = block(x, thw)
        self._grid = tuple(int(s) for s in thw)  # type: ignore[assignment]
        return self.norm(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features[:, 0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.head[1]

    def stage_groups(self) -> list[list[nn.Module]]:
        """The patch embedding, then a stage per query-pooling step (a block with ``pool_skip`` starts one)."""
        groups: list[list[nn.Module]] = [[self.conv_proj, self.pos_encoding], []]
        for block in self.blocks:
            if block.pool_skip is not None and groups[-1]:
                groups.append([])
            groups[-1].append(block)
        return groups

    def explain_layers(self) -> list[str]:
        """Every block, ``blocks.0`` … ``blocks.15``; each returns ``(tokens, thw)``."""
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def token_layout(self, layer: str, output: Any) -> TokenLayout | None:
        """Blocks (and their ``(tokens, thw)`` outputs): the class token, then the grid ``thw`` in time-major order
        (a Conv3d embedding flattened; query pooling keeps that order). ``""`` (``forward_features``) and
        ``norm``: the last block's grid. ``conv_proj``: a plain volume."""
        if layer == "conv_proj":
            return None
        if isinstance(output, tuple) and len(output) == 2 and isinstance(output[1], tuple):
            return TokenLayout(tuple(int(s) for s in output[1]), "time-major", prefix=1)  # type: ignore[arg-type]
        if layer in ("", "norm") and isinstance(output, torch.Tensor) and output.dim() == 3:
            if self._grid is None or math.prod(self._grid) + 1 != output.shape[1]:
                raise SaliencyTubesError(f"MViT's token grid for {layer!r} is known only after a forward pass")
            return TokenLayout(self._grid, "time-major", prefix=1)
        raise SaliencyTubesError(f"layer {layer!r} of MViT has no token grid; explain one of blocks.0 … blocks.N")


def _mvit(
    variant: str,
    num_classes: int = 400,
    spatial_size: tuple[int, int] | list[int] = (224, 224),
    temporal_size: int = 16,
    dropout: float = 0.5,
    attention_dropout: float = 0.0,
    stochastic_depth_prob: float = 0.2,
    blocks: list[dict[str, Any]] | None = None,
) -> MViTContract:
    """``blocks``: the blocks' settings instead of the variant's, one mapping of ``MSBlockConfig``'s fields per block
    (``num_heads``, ``input_channels``, ``output_channels``, ``kernel_q``, ``kernel_kv``, ``stride_q``,
    ``stride_kv``) — a small MViT for CPU training from YAML (configs/mvit_tiny_synthetic.yaml)."""
    if blocks is not None:
        fields = set(MSBlockConfig.__dataclass_fields__)
        for i, block in enumerate(blocks):
            if set(block) != fields:
                raise SaliencyTubesError(f"blocks[{i}] needs exactly the fields {sorted(fields)}; got {sorted(block)}")
    setting = mvit_block_setting(variant) if blocks is None else [MSBlockConfig(**b) for b in blocks]
    return MViTContract(
        spatial_size=tuple(spatial_size),
        temporal_size=temporal_size,
        block_setting=setting,
        dropout=dropout,
        attention_dropout=attention_dropout,
        stochastic_depth_prob=stochastic_depth_prob,
        num_classes=num_classes,
        **MVIT_FLAGS[variant],
    )


def mvit_v1_b(num_classes: int = 400, **kwargs) -> MViTContract:
    """MViT-V1-B (torchvision ``mvit_v1_b``); ``spatial_size``/``temporal_size`` size its position embedding."""
    return _mvit("mvit_v1_b", num_classes, **kwargs)


def mvit_v2_s(num_classes: int = 400, **kwargs) -> MViTContract:
    """MViT-V2-S (torchvision ``mvit_v2_s``); ``spatial_size``/``temporal_size`` size its relative positions."""
    return _mvit("mvit_v2_s", num_classes, **kwargs)


# -------------------------------------------------------------------------------------------------------- S3D


class PointwiseLinear(nn.Linear):
    """A linear classifier whose weight is stored as torchvision's 1×1×1 ``Conv3d`` (``K×C×1×1×1``): torchvision
    S3D state_dicts load unchanged and ours load into torchvision's S3D, while the model has the contract's
    ``nn.Linear`` (``weight`` ``K×C``, what CAM and the weight loaders use)."""

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        weight = destination[prefix + "weight"]
        destination[prefix + "weight"] = weight.view(*weight.shape, 1, 1, 1)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "weight"
        if key in state_dict and state_dict[key].dim() == 5:
            state_dict[key] = state_dict[key].flatten(1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class S3DContract(S3D):
    """torchvision's ``S3D``; ``classifier.1`` is a :class:`PointwiseLinear` (same state_dict as the Conv3d)."""

    cam_exact = True
    cam_note = (
        "S3D averages its last volume into a linear (1×1×1 convolution) classifier: CAM is exact. At the reference "
        "16×224² the average is the plain mean of the 2×7×7 grid; on longer clips torchvision's 2×7×7 window "
        "average weights the first and last time steps by half"
    )

    def __init__(self, num_classes: int = 400, dropout: float = 0.2):
        super().__init__(num_classes=num_classes, dropout=dropout)
        self.classifier[1] = PointwiseLinear(1024, num_classes)
        self.num_features = 1024

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """torchvision's head (2×7×7 average with stride 1, then the mean of what is left) with the 1×1×1
        convolution applied after the mean (they commute); grids smaller than the window are averaged whole."""
        kernel = self.avgpool.kernel_size
        if all(s >= k for s, k in zip(features.shape[2:], kernel, strict=True)):  # type: ignore[arg-type]
            features = self.avgpool(features)
        return self.classifier[1](self.classifier[0](features.mean((2, 3, 4))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.classifier[1]

    def stage_groups(self) -> list[list[nn.Module]]:
        """The first separable convolution, the second (with the max-pool and 1×1×1 convolution before it), then
        the inception blocks after each max-pool (Mixed 3, 4, 5)."""
        f = list(self.features)
        return [f[0:1], f[1:4], f[4:7], f[7:13], f[13:16]]

    def explain_layers(self) -> list[str]:
        """The end of each stage: ``features.0``, ``.3``, ``.6`` (Mixed 3c), ``.12`` (Mixed 4f), ``.15`` (Mixed 5c)."""
        return [f"features.{i}" for i in (0, 3, 6, 12, 15)]

    def token_layout(self, layer: str, output: Any) -> TokenLayout | None:
        return None  # a CNN: every layer is a plain B×C×T'×H'×W' volume


def s3d(num_classes: int = 400, **kwargs) -> S3DContract:
    """S3D (torchvision ``s3d``, Xie et al. 2018)."""
    return S3DContract(num_classes, **kwargs)


BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "swin3d_t": swin3d_t,
    "swin3d_s": swin3d_s,
    "swin3d_b": swin3d_b,
    "mvit_v1_b": mvit_v1_b,
    "mvit_v2_s": mvit_v2_s,
    "s3d": s3d,
}
