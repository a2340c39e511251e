"""The VideoMAE-style ViT: public fine-tuned checkpoints' layout, loading through every entry point, the reference
computation, and the time-major token grid.

The reference layout and forward pass are written here from MCG-NJU/VideoMAE ``modeling_finetune.py``'s rules
(Conv3d tubelets; qkv without bias plus separate q/v biases, zero key bias; scale head_dim^-0.5; pre-norm blocks;
LayerNorm eps 1e-6; the 1D sinusoid table over the flattened token index; mean → fc_norm → head), with the
functional API and numpy, independently of the model code.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from saliency_tubes.models import TokenLayout, create_model, read_weight_file
from saliency_tubes.models.io import load_model

SMALL = dict(embed_dim=48, depth=2, num_heads=3, img_size=32, num_frames=4)


pytestmark = pytest.mark.usefixtures("one_thread")


def reference_state_dict(embed=48, depth=2, classes=5, mlp_ratio=4, seed=0):
    """A fine-tuned checkpoint's state_dict as VideoMAE writes it (random values)."""
    hidden = embed * mlp_ratio
    shapes = {"patch_embed.proj.weight": (embed, 3, 2, 16, 16), "patch_embed.proj.bias": (embed,)}
    for i in range(depth):
        b = f"blocks.{i}"
        shapes |= {
            f"{b}.norm1.weight": (embed,),
            f"{b}.norm1.bias": (embed,),
            f"{b}.attn.q_bias": (embed,),
            f"{b}.attn.v_bias": (embed,),
            f"{b}.attn.qkv.weight": (3 * embed, embed),
            f"{b}.attn.proj.weight": (embed, embed),
            f"{b}.attn.proj.bias": (embed,),
            f"{b}.norm2.weight": (embed,),
            f"{b}.norm2.bias": (embed,),
            f"{b}.mlp.fc1.weight": (hidden, embed),
            f"{b}.mlp.fc1.bias": (hidden,),
            f"{b}.mlp.fc2.weight": (embed, hidden),
            f"{b}.mlp.fc2.bias": (embed,),
        }
    shapes |= {
        "fc_norm.weight": (embed,),
        "fc_norm.bias": (embed,),
        "head.weight": (classes, embed),
        "head.bias": (classes,),
    }
    gen = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(s, generator=gen) * (0.2 if len(s) > 1 else 0.5)
        + (1.0 if "norm" in k and k.endswith("weight") else 0.0)
        for k, s in shapes.items()
    }


def sinusoid(n, d):
    angles = np.array([[p / np.power(10000, 2 * (j // 2) / d) for j in range(d)] for p in range(n)])
    angles[:, 0::2], angles[:, 1::2] = np.sin(angles[:, 0::2]), np.cos(angles[:, 1::2])
    return torch.tensor(angles, dtype=torch.float)[None]


def reference_forward(s, x, depth=2, heads=3):
    x = F.conv3d(x, s["patch_embed.proj.weight"], s["patch_embed.proj.bias"], stride=(2, 16, 16))
    x = x.flatten(2).transpose(1, 2)
    B, N, C = x.shape
    x = x + sinusoid(N, C)
    for i in range(depth):
        p = f"blocks.{i}."
        h = F.layer_norm(x, (C,), s[p + "norm1.weight"], s[p + "norm1.bias"], eps=1e-6)
        bias = torch.cat((s[p + "attn.q_bias"], torch.zeros(C), s[p + "attn.v_bias"]))
        qkv = F.linear(h, s[p + "attn.qkv.weight"], bias).reshape(B, N, 3, heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * (C // heads) ** -0.5, qkv[1], qkv[2]
        out = ((q @ k.transpose(-2, -1)).softmax(-1) @ v).transpose(1, 2).reshape(B, N, C)
        x = x + F.linear(out, s[p + "attn.proj.weight"], s[p + "attn.proj.bias"])
        h = F.layer_norm(x, (C,), s[p + "norm2.weight"], s[p + "norm2.bias"], eps=1e-6)
        x = x + F.linear(
            F.gelu(F.linear(h, s[p + "mlp.fc1.weight"], s[p + "mlp.fc1.bias"])),
            s[p + "mlp.fc2.weight"],
            s[p + "mlp.fc2.bias"],
        )
    pooled = F.layer_norm(x.mean(1), (C,), s["fc_norm.weight"], s["fc_norm.bias"], eps=1e-6)
    return F.linear(pooled, s["head.weight"], s["head.bias"])


def test_the_checkpoint_layout_loads_strictly_and_computes_videomaes_forward():
    state = reference_state_dict()
    model = create_model("vit_video_s", 5, **SMALL).eval()
    assert set(model.state_dict()) == set(state)  # no qkv.bias, no pos_embed (a fixed table), no extra keys
    model.load_state_dict(state, strict=True)
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference_forward(state, clip), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model.forward_head(model.forward_features(clip)), model(clip))
    assert model.get_classifier() is model.head and model.cam_exact is False and "LayerNorm" in model.cam_note


@pytest.mark.parametrize(
    "container",
    [
        lambda s: {"module": s},  # VideoMAE's released fine-tuned checkpoints
        lambda s: {"model": s, "optimizer": {"state": {}, "param_groups": []}, "epoch": 34},  # its save_model
        lambda s: {"model": {f"module.{k}": v for k, v in s.items()}},
        lambda s: s,
    ],
    ids=["module", "model", "model-module-prefix", "plain"],
)
def test_checkpoint_containers_load_through_model_pretrained(tmp_path, container):
    state = reference_state_dict()
    torch.save(container(state), tmp_path / "videomae.pth")
    assert set(read_weight_file(tmp_path / "videomae.pth").state) == set(state)
    model = create_model("vit_video_s", 5, pretrained=tmp_path / "videomae.pth", **SMALL).eval()
    report = model.pretrained_report
    assert len(report.kept) == len(state) and not report.missing and not report.replaced
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference_forward(state, clip), rtol=1e-4, atol=1e-4)


def test_a_vit_s_checkpoint_loads_as_explain_py_arch_does(tmp_path):
    """``explain.py --arch vit_video_s --checkpoint FILE``: the full-size layout, class count read from ``head``."""
    state = reference_state_dict(embed=384, depth=12, classes=7)
    torch.save({"module": state}, tmp_path / "vit_s_k400.pth")
    model, info = load_model(tmp_path / "vit_s_k400.pth", arch="vit_video_s")
    assert info.num_classes == 7 and info.data.clip_len == 16 and info.data.mean == (0.485, 0.456, 0.406)
    clip = torch.randn(1, 3, 2, 32, 48)  # any size: the position table follows the token count
    with torch.no_grad():
        torch.testing.assert_close(model(clip), reference_forward(state, clip, depth=12, heads=6), rtol=1e-4, atol=1e-4)


def test_tokens_are_time_major_on_the_grid_of_the_last_forward():
    """A clip that is non-zero in one tubelet only: with a bias-free embedding, the one token that differs from its
    position embedding is the one the layout puts at that tubelet."""
    model = create_model("vit_video_s", 3, **SMALL).eval()
    torch.nn.init.zeros_(model.patch_embed.proj.bias)
    seen = {}
    hook = model.pos_drop.register_forward_hook(lambda _m, _i, out: seen.__setitem__("tokens", out))
    clip = torch.zeros(1, 3, 6, 48, 64)  # grid 3×3×4
    clip[:, :, 4:6, 16:32, 48:64] = 1.0  # tubelet (t=2, h=1, w=3)
    with torch.no_grad():
        model(clip)
    hook.remove()
    tokens = seen["tokens"]
    layout = model.token_layout("pos_drop", tokens)
    assert layout == TokenLayout((3, 3, 4), "time-major", prefix=0)
    assert model.token_layout("blocks.1", tokens) == layout and model.token_layout("patch_embed", None) is None
    change = (tokens - sinusoid(36, 48)).norm(dim=-1)[0].reshape(layout.grid)
    assert change.flatten().argmax().item() == 2 * 12 + 1 * 4 + 3
    assert (change > 1e-5).nonzero().tolist() == [[2, 1, 3]]
    assert model.explain_layers() == ["blocks.0", "blocks.1"]
