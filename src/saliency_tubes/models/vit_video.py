"""A VideoMAE-style video ViT (Tong et al. 2022): tubelet embedding, fixed sinusoidal positions, timm's BEiT-style
transformer blocks, mean pooling, ``fc_norm`` and a linear ``head``.

Parameter names are those of the public MCG-NJU/VideoMAE fine-tuned checkpoints (``modeling_finetune.py``), so
those files load unchanged through ``--model.pretrained`` and ``explain.py --arch vit_video_b``:

- ``patch_embed.proj.weight/bias``: a Conv3d with kernel = stride = tubelet (2×16×16);
- ``blocks.N.norm1``, ``blocks.N.attn.qkv.weight`` (no ``qkv.bias``) with separate ``blocks.N.attn.q_bias`` and
  ``blocks.N.attn.v_bias`` (the key bias is zero), ``blocks.N.attn.proj``, ``blocks.N.norm2``,
  ``blocks.N.mlp.fc1/fc2`` (and ``blocks.N.gamma_1/gamma_2`` when built with layer scale, ``init_values``);
- ``fc_norm``, ``head``.

The position embedding is VideoMAE's fixed 1D sinusoid table over the flattened token index: no parameter, not in
the checkpoints. Tokens are time-major (the Conv3d output ``B×C×T'×H'×W'`` flattened), so token
``t·H'·W' + h·W' + w`` is tubelet ``(t, h, w)``.

``forward_features`` returns the tubelet tokens after the last block, ``B×N×C`` (before the mean and ``fc_norm``);
``forward_head`` is the mean, ``fc_norm``, dropout and ``head``. Because the LayerNorm sits between the mean and
the head, a CAM from the head's weights on the pre-norm tokens is an approximation (``cam_exact = False``).
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import torch
from timm.models.beit import Block
from torch import nn

from ..errors import SaliencyTubesError
from .contract import TokenLayout

# name: (embed_dim, depth, num_heads) of VideoMAE's vit_small/base_patch16_224
VIT_VARIANTS = {"vit_video_s": (384, 12, 6), "vit_video_b": (768, 12, 12)}


def sinusoid_table(positions: int, dim: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``1×positions×dim``: ``sin(p / 10000^(2i/dim))`` in even channels ``2i``, ``cos`` in odd ones ``2i+1``
    (the Transformer's table, as VideoMAE builds it; in float64, then float32)."""
    p = torch.arange(positions, dtype=torch.float64, device=device)[:, None]
    j = torch.arange(dim, device=device)
    angle = p / torch.pow(10000.0, (2 * (j // 2)).to(torch.float64) / dim)
    table = torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle))
    return table.float()[None]


class TubeletEmbed(nn.Module):
    """Non-overlapping tubelets → ``embed_dim`` channels: ``B×3×T×H×W`` → ``B×C×T'×H'×W'`` (a plain volume)."""

    def __init__(self, embed_dim: int, patch_size: int = 16, tubelet_size: int = 2, in_chans: int = 3):
        super().__init__()
        kernel = (tubelet_size, patch_size, patch_size)
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class VideoViT(nn.Module):
    """A ViT over tubelets; see the module docstring. ``img_size``/``num_frames`` fix the size of the precomputed
    position table only: other inputs get a table for their token count (VideoMAE's table is 1D, so a grid of
    another shape reuses positions by flattened index, as VideoMAE itself would)."""

    cam_exact = False
    cam_note = (
        "the ViT averages its tokens, then applies a LayerNorm (fc_norm) before the linear head: CAM from the head's "
        "weights on the pre-norm tokens ignores that LayerNorm's centring and scaling, so it is approximate; "
        "Grad-CAM on a block and attention rollout apply"
    )

    def __init__(
        self,
        num_classes: int = 400,
        img_size: int = 224,
        num_frames: int = 16,
        patch_size: int = 16,
        tubelet_size: int = 2,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        init_values: float | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        head_dropout: float = 0.0,
    ):
        super().__init__()
        if embed_dim % num_heads:
            raise SaliencyTubesError(f"embed_dim {embed_dim} is not a multiple of num_heads {num_heads}")
        self.num_features = self.embed_dim = embed_dim
        self.patch_embed = TubeletEmbed(embed_dim, patch_size, tubelet_size)
        grid = (num_frames // tubelet_size, img_size // patch_size, img_size // patch_size)
        self.register_buffer("pos_embed", sinusoid_table(math.prod(grid), embed_dim), persistent=False)
        self.pos_drop = nn.Dropout(drop_rate)
        norm = partial(nn.LayerNorm, eps=1e-6)
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # stochastic depth, linear in depth
        self.blocks = nn.ModuleList(
            Block(
                embed_dim,
                num_heads,
                qkv_bias=qkv_bias,
                mlp_ratio=mlp_ratio,
                proj_drop=drop_rate,
                attn_drop=attn_drop_rate,
                drop_path=rate,
                init_values=init_values or None,
                norm_layer=norm,  # type: ignore[arg-type]  # timm accepts any LayerNorm factory
            )
            for rate in rates
        )
        self.fc_norm = norm(embed_dim)
        self.fc_dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(embed_dim, num_classes)
        self._grid: tuple[int, int, int] = grid  # the last forward's token grid (token_layout of ""/blocks)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        self._grid = tuple(int(s) for s in x.shape[2:])  # type: ignore[assignment]
        x = x.flatten(2).transpose(1, 2)  # B×N×C, time-major
        pos: torch.Tensor = self.pos_embed  # type: ignore[assignment]
        if pos.shape[1] != x.shape[1]:
            pos = sinusoid_table(x.shape[1], x.shape[2], device=x.device)
        x = self.pos_drop(x + pos.to(x.dtype))
        for block in self.blocks:
            x = block(x)
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.fc_dropout(self.fc_norm(features.mean(1))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Linear:
        return self.head

    def stage_groups(self) -> list[list[nn.Module]]:
        return [[self.patch_embed], *([block] for block in self.blocks)]

    def explain_layers(self) -> list[str]:
        """Every block, ``blocks.0`` … ``blocks.{depth-1}``."""
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def token_layout(self, layer: str, output: Any) -> TokenLayout | None:
        """Tokens (``""``, ``pos_drop``, ``blocks.N`` and their sub-modules): ``B×N×C``, time-major, no class
        token, on the grid of the last forward pass. ``patch_embed``: a plain ``B×C×T'×H'×W'`` volume."""
        if layer.startswith("patch_embed"):
            return None
        if layer in ("", "pos_drop") or layer.startswith("blocks."):
            if not (isinstance(output, torch.Tensor) and output.dim() == 3):
                raise SaliencyTubesError(f"layer {layer!r} of the ViT does not output B×N×C tokens")
            if output.shape[1] != math.prod(self._grid):
                raise SaliencyTubesError(
                    f"{output.shape[1]} tokens at {layer!r} do not fit the last forward's grid {self._grid}"
                )
            return TokenLayout(self._grid, "time-major", prefix=0)
        raise SaliencyTubesError(f"layer {layer!r} of the ViT has no token grid; explain one of blocks.0 … blocks.N")


def _vit(variant: str, num_classes: int = 400, **kwargs) -> VideoViT:
    embed_dim, depth, num_heads = VIT_VARIANTS[variant]
    return VideoViT(num_classes, **{"embed_dim": embed_dim, "depth": depth, "num_heads": num_heads, **kwargs})


def vit_video_s(num_classes: int = 400, **kwargs) -> VideoViT:
    """ViT-S/16 over 2×16×16 tubelets (VideoMAE ``vit_small_patch16_224``): 384 wide, 12 blocks, 6 heads."""
    return _vit("vit_video_s", num_classes, **kwargs)


def vit_video_b(num_classes: int = 400, **kwargs) -> VideoViT:
    """ViT-B/16 over 2×16×16 tubelets (VideoMAE ``vit_base_patch16_224``): 768 wide, 12 blocks, 12 heads."""
    return _vit("vit_video_b", num_classes, **kwargs)
