"""Gradient-weighted attention relevance (Chefer et al. 2021): against the paper's matrix form written out block by
block and head by head on toy ViTs; on torchvision's Swin3D (shifted, padded windows and a patch merging) the
attention it reads and its gradient against those of the untouched model, and its relevance against the dense
matrix form; side effects, inference mode and refusals."""

import copy
import itertools

import pytest
import torch
from torch.overrides import TorchFunctionMode

from saliency_tubes.errors import BadArgument
from saliency_tubes.explain import explain, get_method

from helpers.models import ToyVideoNet, untouched_check
from helpers.token_models import ToyViT

GRID, SIZE = (2, 2, 3), (4, 16, 24)
CELLS = list(itertools.product(*map(range, GRID)))


def _toy(seed=0, **kwargs):
    torch.manual_seed(seed)
    return ToyViT(**kwargs).eval()


def _token_index(t, h, w, order):
    gt, gh, gw = GRID
    return t * gh * gw + h * gw + w if order == "time-major" else (h * gw + w) * gt + t


def slow_relevance(model, clips, targets, sign):
    """The paper's form: ``R ← R + mean_h(|∇A ⊙ A|)·R`` from the identity, first block first, on full N×N matrices,
    with every head's attention computed one by one (float64); the pooled row of ``R − I`` as a T'×H'×W' volume."""
    m = copy.deepcopy(model).double()
    x = m.embed(clips.double())
    attentions = []
    for block in m.blocks:
        a = block.attn
        h = block.norm1(x)
        c = h.shape[-1]
        d = c // a.num_heads
        bias = a.qkv.bias
        if bias is None:
            bias = torch.cat([a.q_bias, torch.zeros_like(a.v_bias), a.v_bias])
        q, k, v = (h @ a.qkv.weight.T + bias).split(c, -1)
        heads = [
            (q[..., i * d : (i + 1) * d] @ k[..., i * d : (i + 1) * d].transpose(1, 2) * d**-0.5).softmax(-1)
            for i in range(a.num_heads)
        ]
        attn = torch.stack(heads, 1)
        attentions.append(attn)
        mixed = torch.cat([attn[:, i] @ v[..., i * d : (i + 1) * d] for i in range(a.num_heads)], -1)
        x = x + a.proj(mixed)
        x = x + block.mlp(block.norm2(x))
    logits = m.forward_head(x)
    grads = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), attentions)
    out = []
    for b in range(len(clips)):
        n = x.shape[1]
        relevance = torch.eye(n, dtype=torch.float64)
        for attn, grad in zip(attentions, grads, strict=True):
            weighted = grad[b] * attn[b].detach()
            fused = (weighted.abs() if sign == "absolute" else weighted.clamp(min=0)).mean(0)
            relevance = relevance + fused @ relevance
        relevance = relevance - torch.eye(n, dtype=torch.float64)
        row = relevance[0] if m.pool == "cls" else relevance[m.prefix :].mean(0)
        volume = torch.zeros(GRID, dtype=torch.float64)
        for t, hh, w in CELLS:
            volume[t, hh, w] = row[m.prefix + _token_index(t, hh, w, m.order)]
        out.append(volume)
    return torch.stack(out).float()


def _assert_close_at_scale(ours, expected):
    """Equal to 1e-4 of the expected map's largest entry (relevance of a random toy model is tiny in absolute
    terms: a fixed tolerance would pass anything)."""
    scale = expected.abs().max()
    assert scale > 0
    torch.testing.assert_close(ours / scale, expected / scale, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "attention, order, prefix, pool, sign",
    [
        ("timm", "time-major", 0, "mean", "absolute"),
        ("videomae", "space-major", 0, "mean", "positive"),
        ("videomae", "time-major", 1, "cls", "absolute"),
        ("timm", "space-major", 1, "cls", "positive"),
        ("timm", "time-major", 2, "mean", "absolute"),  # register tokens the head does not read
    ],
)
def test_relevance_equals_the_papers_matrix_form_written_out(attention, order, prefix, pool, sign):
    model = _toy(attention=attention, order=order, prefix=prefix, pool=pool, seed=4)
    clips = torch.randn(2, 3, *SIZE)
    method = get_method("attention_relevance")(model, sign=sign)
    result = method(clips, size=GRID, normalize=False, topk=2)
    assert result.targets.shape == (2, 2)
    for k in range(2):
        expected = slow_relevance(model, clips, result.targets[:, k], sign)
        _assert_close_at_scale(result.tubes[:, k], expected)
    assert not torch.allclose(result.tubes[:, 0], result.tubes[:, 1])  # class-specific, unlike rollout


# Swin3D: shifted windows, padding, a patch merging ------------------------------------------------------------------
def _swin():
    from saliency_tubes.models import create_model

    torch.manual_seed(0)
    # patches 2×4×4 of 8×40×56: a 4×10×14 grid, windows 2×4×4 (padded to 4×12×16, shifted in every second block),
    # merged to 4×5×7 for the second stage
    kwargs = {"embed_dim": 16, "depths": (2, 2), "num_heads": (2, 2), "window_size": (2, 4, 4)}
    return create_model("swin3d_t", 4, **kwargs).eval(), torch.randn(2, 3, 8, 40, 56)


class _Softmaxes(TorchFunctionMode):
    """Keeps every ``F.softmax`` output (torchvision's window attention computes its attention with it)."""

    def __init__(self):
        super().__init__()
        self.outputs = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.nn.functional.softmax:
            self.outputs.append(out)
        return out


def test_swin_attention_and_its_gradient_are_torchvisions_own():
    model, clips = _swin()
    method = get_method("attention_relevance")(model)
    forward = method.run(clips)
    reads = forward.attention
    assert [r.grid for r in reads] == [(4, 10, 14)] * 2 + [(4, 5, 7)] * 2
    ours = torch.autograd.grad(forward.logits[:, 1].sum(), [r.attention for r in reads])
    untouched = copy.deepcopy(model)
    with _Softmaxes() as captured:
        logits = untouched(clips)
    theirs = torch.autograd.grad(logits[:, 1].sum(), captured.outputs)
    torch.testing.assert_close(forward.logits, logits, rtol=1e-5, atol=1e-5)
    assert len(captured.outputs) == 4
    for read, attn, g_ours, g_theirs in zip(reads, captured.outputs, ours, theirs, strict=True):
        torch.testing.assert_close(read.attention.detach().flatten(0, 1), attn.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(g_ours.flatten(0, 1), g_theirs, rtol=1e-4, atol=1e-7)
        assert g_theirs.abs().max() > 0


def _merge_matrix(parent, child):
    """Parent tokens × child tokens: each merged token's relevance shared equally among the tokens it came from."""
    m = torch.zeros(parent[0] * parent[1] * parent[2], child[0] * child[1] * child[2], dtype=torch.float64)
    for t, h, w in itertools.product(*map(range, child)):
        m[(t * parent[1] + h // 2) * parent[2] + w // 2, (t * child[1] + h) * child[2] + w] = 1
    return m / m.sum(1, keepdim=True)


def test_swin_relevance_equals_the_dense_matrix_form():
    model, clips = _swin()
    method = get_method("attention_relevance")(model)
    result = method(clips, target=2, size=(4, 10, 14), normalize=False)
    forward = method.run(clips)
    reads = forward.attention
    grads = torch.autograd.grad(forward.logits[:, 2].sum(), [r.attention for r in reads])
    for b in range(len(clips)):
        dense = []
        for read, grad in zip(reads, grads, strict=True):
            fused = (grad[b] * read.attention[b].detach()).abs().mean(1).double()  # G×w×w
            full = torch.zeros(read.tokens, read.tokens, dtype=torch.float64)
            for g, window in enumerate(read.index.tolist()):
                for i, j in itertools.product(range(len(window)), repeat=2):
                    if window[i] < read.tokens and window[j] < read.tokens:
                        full[window[i], window[j]] += fused[g, i, j]
            dense.append((full, read.grid))
        relevance = identity = torch.eye(dense[0][0].shape[0], dtype=torch.float64)
        for i, (full, grid) in enumerate(dense):
            if i and dense[i - 1][1] != grid:
                merge = _merge_matrix(grid, dense[i - 1][1])
                relevance, identity = merge @ relevance, merge @ identity
            relevance = relevance + full @ relevance
        pooled = torch.full((1, relevance.shape[0]), 1 / relevance.shape[0], dtype=torch.float64)
        expected = ((pooled @ relevance) - (pooled @ identity)).view(4, 10, 14).float()
        _assert_close_at_scale(result.tubes[b], expected)


# Side effects, inference mode, refusals ---------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["vit", "swin"])
def test_no_side_effects_and_inference_mode(which):
    if which == "vit":
        model, clips = _toy(attention="videomae", prefix=1, pool="cls", drop=0.5), torch.randn(2, 3, *SIZE)
        parts = (model.blocks[1], model.patch_embed.weight, model.head.weight)
    else:
        model, clips = _swin()
        parts = (model.features[0], model.patch_embed.proj.weight, model.head.weight)
    reference = explain(model, clips, method="attention_relevance").tubes
    untouched = untouched_check(model, *parts)
    explain(model, clips, method="attention_relevance")
    untouched()
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.inference_mode():
        result = explain(model, clips.clone(), method="attention_relevance")
    torch.testing.assert_close(result.tubes, reference)


def test_what_it_cannot_read_is_a_one_line_refusal():
    clips = torch.randn(1, 3, *SIZE)
    with pytest.raises(BadArgument, match="attention_relevance needs self-attention blocks .* ToyVideoNet has none"):
        explain(ToyVideoNet(), clips, method="attention_relevance")
    with pytest.raises(BadArgument, match=r"blocks.0.attn \(ScaledAttention\) computes more than its attention"):
        explain(_toy(attention="scaled"), clips, method="attention_relevance")
    with pytest.raises(BadArgument, match="sign 'negative'"):
        get_method("attention_relevance")(_toy(), sign="negative")
