"""Tiny video transformers with a known token order, for the token-method tests.

``ToyViT``: a tubelet ``Conv3d`` (2×8×8) whose output is flattened time-major (index ``t·H'·W' + h·W' + w``) or
space-major (index ``(h·W' + w)·T' + t``), optional prefix tokens (register tokens, or a class token the head reads
with ``pool="cls"``), timm ``Block``s (timm's ``Attention``, or ``VideoMAEAttention`` with separate q/v biases),
then the mean of the grid tokens (or the class token), ``fc_norm`` (LayerNorm, or none) and a linear head.
"""

import torch
from timm.models.vision_transformer import Block
from torch import nn

from saliency_tubes.models.contract import TokenLayout


class VideoMAEAttention(nn.Module):
    """VideoMAE's attention: ``qkv`` without bias, ``q_bias`` and ``v_bias`` (no key bias), ``scale``, ``proj``."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads, self.scale = num_heads, (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.randn(dim) * 0.1), nn.Parameter(torch.randn(dim) * 0.1)
        self.attn_drop, self.proj = nn.Dropout(0.1), nn.Linear(dim, dim)

    def forward(self, x, attn_mask=None, is_causal=False):
        b, n, c = x.shape
        bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        q, k, v = (
            nn.functional.linear(x, self.qkv.weight, bias).reshape(b, n, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        )
        attn = self.attn_drop((q * self.scale @ k.transpose(-2, -1)).softmax(-1))
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class ScaledAttention(VideoMAEAttention):
    """Computes more than softmax(q·kᵀ)·v (its output is doubled): rollout must refuse it."""

    def forward(self, x, attn_mask=None, is_causal=False):
        return 2 * super().forward(x)


class ToyViT(nn.Module):
    def __init__(
        self,
        num_classes=5,
        dim=16,
        depth=3,
        heads=2,
        order="time-major",
        prefix=0,
        pool="mean",
        fc_norm=True,
        attention="timm",
        drop=0.0,
    ):
        super().__init__()
        self.order, self.prefix, self.pool = order, prefix, pool
        self.patch_embed = nn.Conv3d(3, dim, (2, 8, 8), stride=(2, 8, 8))
        self.prefix_tokens = nn.Parameter(torch.randn(1, prefix, dim) * 0.1) if prefix else None
        self.blocks = nn.Sequential(
            *[Block(dim, heads, mlp_ratio=2, qkv_bias=True, proj_drop=drop, attn_drop=drop) for _ in range(depth)]
        )
        for block in self.blocks:
            if attention == "videomae":
                block.attn = VideoMAEAttention(dim, heads)
            elif attention == "scaled":
                block.attn = ScaledAttention(dim, heads)
        self.fc_norm = nn.LayerNorm(dim) if fc_norm else nn.Identity()
        self.drop = nn.Dropout(drop)
        self.head = nn.Linear(dim, num_classes)
        self.cam_exact = pool == "mean" and not fc_norm
        self.cam_note = "the head reads the class token" if pool == "cls" else "a LayerNorm follows the mean pooling"
        self.grid = (1, 1, 1)

    def embed(self, x):
        v = self.patch_embed(x)  # B×C×T'×H'×W'
        self.grid = tuple(v.shape[2:])
        if self.order == "time-major":
            tokens = v.flatten(2).transpose(1, 2)
        else:
            tokens = v.permute(0, 3, 4, 2, 1).flatten(1, 3)
        if self.prefix_tokens is not None:
            tokens = torch.cat([self.prefix_tokens.expand(len(tokens), -1, -1), tokens], 1)
        return tokens

    def forward_features(self, x):
        return self.blocks(self.embed(x))

    def forward_head(self, tokens):
        pooled = tokens[:, 0] if self.pool == "cls" else tokens[:, self.prefix :].mean(1)
        return self.head(self.drop(self.fc_norm(pooled)))

    def forward(self, x):
        return self.forward_head(self.forward_features(x))

    def get_classifier(self):
        return self.head

    def stage_groups(self):
        return [[self.patch_embed], *[[b] for b in self.blocks]]

    def explain_layers(self):
        return [f"blocks.{i}" for i in range(len(self.blocks))]

    def token_layout(self, layer, output):
        t, h, w = self.grid
        if isinstance(output, torch.Tensor) and output.dim() == 3 and output.shape[1] == self.prefix + t * h * w:
            return TokenLayout(self.grid, self.order, self.prefix)
        return None
