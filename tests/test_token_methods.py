"""Tokens to tubes: the token order (time-major and space-major, prefix tokens), Grad-CAM on transformer blocks
against Captum, CAM where it is exact / approximate / refused, attention rollout against a slow loop, side-effect
freedom, and the whole-video pipeline, explain.py and --evaluate with a toy video transformer."""

import itertools
import json
import math
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam

from saliency_tubes.cli.explain import main
from saliency_tubes.config import DataConfig
from saliency_tubes.errors import BadArgument
from saliency_tubes.explain import (
    VideoExplainer,
    explain,
    get_method,
    normalize_tubes,
    upsample_tubes,
    write_explanation,
)
from saliency_tubes.explain.methods import BUILT_IN
from saliency_tubes.models.io import ModelInfo
from saliency_tubes.videoio import write_video

from helpers.models import ToyVideoNet, untouched_check
from helpers.token_models import ToyViT

GRID, SIZE = (2, 2, 3), (4, 16, 24)  # T'×H'×W' of a 4×16×24 clip with 2×8×8 tubelets: no two sizes alike
CELLS = list(itertools.product(*map(range, GRID)))
ORDERS = ["time-major", "space-major"]


def _toy(**kwargs):
    torch.manual_seed(kwargs.pop("seed", 0))
    return ToyViT(**kwargs).eval()


def _token_index(t, h, w, order, grid=GRID):
    """The token of cell (t, h, w), written out from the layout's definition (not from the code under test)."""
    gt, gh, gw = grid
    return t * gh * gw + h * gw + w if order == "time-major" else (h * gw + w) * gt + t


# Token order ------------------------------------------------------------------------------------------------------
def _one_token_model(order, prefix):
    """Only the token of a clip's one non-zero tubelet carries anything: no biases (a zero token stays zero through
    LayerNorm, attention and MLP), no attention output (no mixing), a linear head on the mean of the grid tokens."""
    model = _toy(order=order, prefix=prefix, fc_norm=False)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or name.endswith("attn.proj.weight"):
                p.zero_()
    return model


def _one_tubelet_clips():
    """One clip per cell of the grid, zero but for that cell's tubelet."""
    g = torch.Generator().manual_seed(1)
    clips = torch.zeros(len(CELLS), 3, *SIZE)
    for i, (t, h, w) in enumerate(CELLS):
        clips[i, :, 2 * t : 2 * t + 2, 8 * h : 8 * h + 8, 8 * w : 8 * w + 8] = torch.rand(3, 2, 8, 8, generator=g) + 0.5
    return clips


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("prefix", [0, 2])
@pytest.mark.parametrize(
    "method, layer", [("saliency_tubes", None), ("gradcam", None), ("gradcam", "blocks.2"), ("gradcam_pp", None)]
)
def test_the_tube_peaks_at_the_one_token_that_carries_the_evidence(order, prefix, method, layer):
    model = _one_token_model(order, prefix)
    tubes = explain(model, _one_tubelet_clips(), method=method, layer=layer).tubes
    for i, (t, h, w) in enumerate(CELLS):
        box = torch.zeros(SIZE, dtype=torch.bool)
        box[2 * t : 2 * t + 2, 8 * h : 8 * h + 8, 8 * w : 8 * w + 8] = True
        peak = tubes[i] >= tubes[i].max() - 1e-6
        outside = [tuple(int(v) for v in p) for p in (peak & ~box).nonzero()[:3]]
        assert tubes[i].max() > 0 and not outside, f"evidence in tubelet {(t, h, w)}, tube peaks at {outside}"


# Grad-CAM against Captum --------------------------------------------------------------------------------------------
def _cell_of_token(order, prefix):
    """For each grid token (in token order), the flat index of its cell in a T'×H'×W' volume."""
    index = torch.empty(len(CELLS), dtype=torch.long)
    for cell, (t, h, w) in enumerate(CELLS):
        index[_token_index(t, h, w, order)] = cell
    return index


class _Probe(torch.nn.Module):
    """What Captum explains: the block's tokens as a B×C×T'×H'×W' volume (identity)."""

    def forward(self, volume):
        return volume


def _probe_hook(probe, order, prefix):
    """A forward hook that routes a block's tokens through ``probe`` as a volume and back: the same values."""
    cells = _cell_of_token(order, prefix)
    tokens_of_cell = torch.argsort(cells)

    def hook(_module, _inputs, out):
        b, _, c = out.shape
        volume = out[:, prefix:][:, tokens_of_cell].transpose(1, 2).reshape(b, c, *GRID)
        back = probe(volume).flatten(2)[:, :, cells].transpose(1, 2)
        return torch.cat([out[:, :prefix], back], 1)

    return hook


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("prefix", [0, 1])
@pytest.mark.parametrize("layer", ["blocks.1", "blocks.0.mlp"])
def test_gradcam_on_a_block_matches_captum_layer_gradcam_on_the_reshaped_tokens(order, prefix, layer):
    model = _toy(order=order, prefix=prefix, attention="videomae")
    clips = torch.randn(3, 3, *SIZE)
    ours = explain(model, clips, method="gradcam", layer=layer)
    probe = _Probe()
    handle = dict(model.named_modules())[layer].register_forward_hook(_probe_hook(probe, order, prefix))
    try:
        attr = LayerGradCam(model, probe).attribute(clips, target=ours.targets, relu_attributions=True)
    finally:
        handle.remove()
    expected = normalize_tubes(upsample_tubes(attr[:, 0].detach(), SIZE), clip_negative=True)
    assert expected.flatten(1).amax(1).min() > 0  # a real map, not zeros on both sides
    torch.testing.assert_close(ours.tubes, expected, rtol=1e-4, atol=1e-4)


# CAM: exact, approximate, refused ---------------------------------------------------------------------------------
def test_cam_on_pooled_tokens_with_a_linear_head_is_exact_and_equals_gradcam():
    model = _toy(order="space-major", fc_norm=False)
    assert model.cam_exact
    clips = torch.randn(2, 3, *SIZE)
    raw = {"size": GRID, "normalize": False, "topk": 2}  # the low-resolution maps, negative evidence clipped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cam = explain(model, clips, method="saliency_tubes", **raw)
    grad = explain(model, clips, method="gradcam", **raw)  # channel weights: the head's row / the token count
    assert cam.tubes.flatten(2).amax(-1).min() > 0
    torch.testing.assert_close(cam.tubes, grad.tubes * len(CELLS), rtol=1e-4, atol=1e-5)


def test_cam_after_a_layernorm_is_approximate_and_says_so_once():
    model = _toy(fc_norm=True)
    clips = torch.randn(2, 3, *SIZE)
    with pytest.warns(UserWarning, match="saliency_tubes on ToyViT is approximate .a LayerNorm follows"):
        first = explain(model, clips, method="saliency_tubes")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = explain(model, clips, method="saliency_tubes")
    torch.testing.assert_close(first.tubes, second.tubes)


def test_cam_on_a_class_token_model_is_a_one_line_error_and_gradcam_works():
    model = _toy(prefix=1, pool="cls")
    clips = torch.randn(2, 3, *SIZE)
    with pytest.raises(BadArgument) as error:
        explain(model, clips, method="saliency_tubes")
    message = str(error.value)
    assert "\n" not in message and "the head reads the class token" in message and "gradcam" in message
    # the last block's patch tokens reach the head through nothing: a zero map; without --layer, the block before
    assert explain(model, clips, method="gradcam", layer="blocks.2").tubes.max() == 0
    default = explain(model, clips, method="gradcam").tubes
    assert (default.flatten(1).amax(1) > 0).all()
    torch.testing.assert_close(default, explain(model, clips, method="gradcam", layer="blocks.1").tubes)


SMALL = {  # the transformers of the zoo, tiny and random: (constructor arguments, clip shape)
    "swin3d_t": ({"embed_dim": 16, "depths": (1, 1), "num_heads": (1, 2), "window_size": (2, 4, 4)}, (2, 3, 8, 32, 48)),
    "mvit_v2_s": ({"spatial_size": (64, 64), "temporal_size": 8}, (1, 3, 8, 64, 64)),
    "vit_video_s": ({"embed_dim": 48, "depth": 2, "num_heads": 3, "img_size": 32, "num_frames": 4}, (2, 3, 4, 32, 32)),
}
# what each method does on each: a map, a map with a warning (approximate CAM), or a one-line refusal
OUTCOME = {
    ("swin3d_t", "rollout"): "rollout cannot read the attention of Swin3dContract",
    ("mvit_v2_s", "attention_relevance"): "blocks.0.attn is a MultiscaleAttention, not timm's Attention",
    ("mvit_v2_s", "saliency_tubes"): "saliency_tubes .CAM. does not apply to MViTContract: MViT classifies from",
    ("mvit_v2_s", "rollout"): "blocks.0.attn is a MultiscaleAttention, not timm's Attention",
    ("vit_video_s", "saliency_tubes"): "warn",
}


@pytest.mark.parametrize(  # MViT-V2-S keeps its full width (34.5M parameters): slow on 2 cores
    "arch", [pytest.param(a, marks=[pytest.mark.slow] if a.startswith("mvit") else []) for a in SMALL]
)
@pytest.mark.parametrize("method", ["saliency_tubes", "gradcam", "gradcam_pp", "rollout", "attention_relevance"])
def test_every_method_on_the_zoos_transformers(arch, method):
    from saliency_tubes.models import create_model

    torch.manual_seed(0)
    kwargs, shape = SMALL[arch]
    model = create_model(arch, 5, **kwargs).eval()
    clips = torch.randn(*shape)
    outcome = OUTCOME.get((arch, method))
    if outcome and outcome != "warn":
        with pytest.raises(BadArgument, match=outcome) as error:
            explain(model, clips, method=method)
        assert "\n" not in str(error.value)
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tubes = explain(model, clips, method=method).tubes
    assert [str(w.message).split(" (")[0] for w in caught] == (
        ["saliency_tubes on VideoViT is approximate"] if outcome else []
    )
    assert tubes.shape == (shape[0], *shape[2:]) and (tubes.flatten(1).amax(1) == 1).all()
    if method.startswith("grad"):  # every listed block gives a map (MViT's last: zeros, see above)
        for layer in model.explain_layers()[:: max(1, len(model.explain_layers()) - 1)]:
            assert explain(model, clips, method=method, layer=layer).tubes.shape == tubes.shape


def test_cam_of_swin3d_is_exact():
    from saliency_tubes.models import create_model

    torch.manual_seed(0)
    kwargs, shape = SMALL["swin3d_t"]
    model = create_model("swin3d_t", 5, **kwargs).eval()
    clips = torch.randn(*shape)
    grid = tuple(model.forward_features(clips).shape[2:])
    raw = {"size": grid, "normalize": False, "topk": 2}
    cam, grad = explain(model, clips, method="saliency_tubes", **raw), explain(model, clips, method="gradcam", **raw)
    torch.testing.assert_close(cam.tubes, grad.tubes * math.prod(grid), rtol=1e-4, atol=1e-5)


# Rollout against a slow loop --------------------------------------------------------------------------------------
def slow_rollout(model, clips, fusion, discard):
    """Rollout written out block by block, head by head, row by row (float64)."""
    x = model.embed(clips)
    out = []
    for b in range(len(clips)):
        rolled = None
        tokens = x[b : b + 1]
        for block in model.blocks:
            attn = block.attn
            h = block.norm1(tokens)[0].detach().double().numpy()
            n, c = h.shape
            d = c // attn.num_heads
            weight = attn.qkv.weight.detach().double().numpy()
            if attn.qkv.bias is not None:
                bias = attn.qkv.bias.detach().double().numpy()
            else:
                bias = np.concatenate([attn.q_bias.detach().double(), np.zeros(c), attn.v_bias.detach().double()])
            heads = []
            for head in range(attn.num_heads):
                q = h @ weight[head * d : (head + 1) * d].T + bias[head * d : (head + 1) * d]
                k = h @ weight[c + head * d : c + (head + 1) * d].T + bias[c + head * d : c + (head + 1) * d]
                scores = q @ k.T * d**-0.5
                e = np.exp(scores - scores.max(1, keepdims=True))
                heads.append(e / e.sum(1, keepdims=True))
            fused = heads[0].copy()
            for a in heads[1:]:
                fused = fused + a if fusion == "mean" else (np.maximum if fusion == "max" else np.minimum)(fused, a)
            if fusion == "mean":
                fused = fused / len(heads)
            flat = fused.flatten()
            flat[np.argsort(flat, kind="stable")[: int(n * n * discard)]] = 0
            fused = flat.reshape(n, n) + np.eye(n)
            for row in range(n):
                fused[row] /= fused[row].sum()
            rolled = fused if rolled is None else fused @ rolled
            tokens = block(tokens)
        relevance = rolled[0] if model.prefix else rolled.mean(0)
        volume = np.zeros(GRID)
        for t, hh, w in CELLS:
            volume[t, hh, w] = relevance[model.prefix + _token_index(t, hh, w, model.order)]
        out.append(volume)
    return torch.from_numpy(np.stack(out)).float()


@pytest.mark.parametrize(
    "attention, order, prefix, pool, fusion, discard",
    [
        ("timm", "time-major", 0, "mean", "mean", 0.0),
        ("videomae", "space-major", 0, "mean", "mean", 0.0),
        ("videomae", "time-major", 1, "cls", "max", 0.5),
        ("timm", "space-major", 1, "cls", "min", 0.3),
        ("timm", "time-major", 2, "mean", "max", 0.9),
    ],
)
def test_rollout_equals_a_slow_loop_over_blocks_and_heads(attention, order, prefix, pool, fusion, discard):
    model = _toy(attention=attention, order=order, prefix=prefix, pool=pool, seed=4)
    clips = torch.randn(2, 3, *SIZE)
    method = get_method("rollout")(model, head_fusion=fusion, discard_ratio=discard)
    result = method(clips, size=GRID, normalize=False, topk=2)
    with torch.no_grad():
        expected = slow_rollout(model, clips, fusion, discard)
    torch.testing.assert_close(result.tubes[:, 0], expected, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(result.tubes[:, 1], result.tubes[:, 0])  # class-agnostic: one map for each target
    assert result.targets.shape == (2, 2)


def test_rollout_refuses_what_it_cannot_read_in_one_line():
    clips = torch.randn(1, 3, *SIZE)
    with pytest.raises(BadArgument, match="rollout needs self-attention blocks .* ToyVideoNet has none"):
        explain(ToyVideoNet(), clips, method="rollout")
    with pytest.raises(BadArgument, match=r"blocks.0.attn \(ScaledAttention\) computes more than softmax"):
        explain(_toy(attention="scaled"), clips, method="rollout")
    with pytest.raises(BadArgument, match="head_fusion 'median'"):
        get_method("rollout")(_toy(), head_fusion="median")


def test_a_token_layer_without_a_layout_is_a_one_line_error():
    class NoLayout(ToyViT):
        token_layout = None  # tokens, but no word on their grid

    torch.manual_seed(0)
    clips = torch.randn(1, 3, *SIZE)
    with pytest.raises(BadArgument) as error:
        explain(NoLayout().eval(), clips, method="gradcam", layer="blocks.1")
    assert "\n" not in str(error.value)
    assert "--layer 'blocks.1' of NoLayout gives a 1×12×16 tensor" in str(error.value)
    assert "explainable layers: blocks.0, blocks.1, blocks.2" in str(error.value)


# Side effects -----------------------------------------------------------------------------------------------------
METHODS = ["saliency_tubes", "gradcam", "gradcam_pp", "rollout", "attention_relevance"]


@pytest.mark.parametrize("method", METHODS)
def test_token_methods_have_no_side_effects(method):
    model = _toy(attention="videomae", prefix=1, drop=0.5, fc_norm=False)
    clips = torch.randn(2, 3, *SIZE)
    untouched = untouched_check(model, model.blocks[1], model.patch_embed.weight, model.head.weight)
    explain(model, clips, method=method, layer="blocks.1" if method.startswith("grad") else None)
    untouched()


@pytest.mark.parametrize("method", METHODS)
def test_token_methods_work_under_inference_mode_with_frozen_parameters(method):
    model = _toy(attention="videomae", fc_norm=False)
    clips = torch.randn(2, 3, *SIZE)
    reference = explain(model, clips, method=method)
    for p in model.parameters():
        p.requires_grad_(False)
    with torch.inference_mode():
        result = explain(model, clips.clone(), method=method)
    torch.testing.assert_close(result.tubes, reference.tubes)


# The whole-video pipeline, explain.py and --evaluate ----------------------------------------------------------------
DATA = DataConfig(clip_len=4, stride=1, input_size=16, classifier="head")


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """14 frames of 16×40: a bright square moving right over noise."""
    rng = np.random.default_rng(0)
    frames = (rng.random((14, 16, 40, 3)) * 60).astype(np.uint8)
    for t in range(14):
        frames[t, 4:12, 2 * t : 2 * t + 8] = 230
    return write_video(tmp_path_factory.mktemp("v") / "moving.mp4", frames, fps=10)


@pytest.mark.parametrize("method", METHODS)
def test_the_video_explainer_and_the_writer_with_a_token_model(method, video, tmp_path):
    model = _toy(num_classes=3, order="space-major", fc_norm=False)
    explainer = VideoExplainer(model, ModelInfo("toy_vit", 3, ["a", "b", "c"], DATA), method=method, batch_size=2)
    explanation = explainer.explain(video, topk=2)
    assert explanation.tubes.shape == (2, 14, 16, 40) and 0 <= explanation.tubes.min() <= explanation.tubes.max() <= 1
    result = write_explanation(explanation, tmp_path / "o", focus=False)
    assert result["method"] == method and np.load(tmp_path / "o" / "saliency.npy").shape == (14, 16, 40)
    assert (tmp_path / "o" / "overlay.mp4").stat().st_size > 0


@pytest.fixture()
def registered_toy(monkeypatch, tmp_path):
    """``toy_vit`` registered as an architecture, and a bare state_dict of it (6 classes, the synthetic set's)."""
    from saliency_tubes import models
    from saliency_tubes.data.synthetic import CLASSES

    monkeypatch.setattr(models, "_MODELS", dict(models._MODELS))
    models.register_model("toy_vit", DataConfig(clip_len=4, stride=2, input_size=32, classifier="head"))(ToyViT)
    torch.manual_seed(0)
    path = tmp_path / "toy_vit.pt"
    torch.save(ToyViT(num_classes=len(CLASSES)).state_dict(), path)
    return path


def _main(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    return exit_.value.code, capsys.readouterr()


def test_explain_py_and_evaluate_with_a_token_model(registered_toy, tiny_dataset, tmp_path, capsys):
    video = next((tiny_dataset / "val").rglob("*.mp4"))
    from saliency_tubes.data.synthetic import CLASSES

    (tmp_path / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    bare = ["--checkpoint", registered_toy, "--arch", "toy_vit", "--class-names", tmp_path / "classes.txt"]
    for method in ("gradcam", "rollout"):
        code, out = _main([*bare, video, "--out", tmp_path / method, "--method", method, "--no-focus"], capsys)
        assert code == 0, out.err
        result = json.loads((tmp_path / method / video.stem / "result.json").read_text())
        assert result["method"] == method
    code, out = _main(
        [*bare, "--evaluate", "--data.root", tiny_dataset, "--out", tmp_path / "e", "--steps", "2", "--max-clips", "4"],
        capsys,
    )
    assert code == 0, out.err
    rows = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    # every default method that applies to a token model; the pyramid walks convolution stages and is left out
    built_in = [r["method"] for r in rows if r["method"] in (*BUILT_IN, "random")]  # not the tests' own methods
    assert built_in == [
        "saliency_tubes",
        "gradcam",
        "gradcam_pp",
        "layercam",
        "rollout",
        "attention_relevance",
        "random",
    ]
    assert all(r["clips"] == 4 for r in rows)


def test_evaluate_leaves_out_the_default_methods_that_do_not_apply(tmp_path, tiny_dataset, capsys):
    from saliency_tubes.cli.evaluate import evaluate
    from saliency_tubes.data.datasets import validation_dataset
    from saliency_tubes.data.synthetic import CLASSES

    dataset = validation_dataset(tiny_dataset, class_names=list(CLASSES), clip_len=4, stride=1, input_size=32)
    model = _toy(num_classes=6, prefix=1, pool="cls")
    skipped = []
    values = evaluate(
        model,
        dataset,
        ["saliency_tubes", "gradcam"],
        torch.device("cpu"),
        steps=2,
        grid=4,
        max_clips=2,
        on_skip=lambda m, why: skipped.append((m, why)),
    )
    assert list(values) == ["gradcam", "ground_truth", "random"] and skipped[0][0] == "saliency_tubes"
    with pytest.raises(BadArgument, match="does not apply to ToyViT"):
        evaluate(model, dataset, ["saliency_tubes"], torch.device("cpu"), steps=2, grid=4, max_clips=2)


def test_explain_py_without_a_method_uses_gradcam_where_cam_is_not_exact(monkeypatch, tmp_path, tiny_dataset, capsys):
    """A class-token model (as MViT) gets Grad-CAM by default, with a note saying why, instead of CAM's refusal."""
    from saliency_tubes import models

    monkeypatch.setattr(models, "_MODELS", dict(models._MODELS))
    build = partial(ToyViT, prefix=1, pool="cls")
    models.register_model("toy_cls", DataConfig(clip_len=4, stride=2, input_size=32, classifier="head"))(build)
    torch.save(build(num_classes=6).state_dict(), tmp_path / "toy_cls.pt")
    video = next((tiny_dataset / "val").rglob("*.mp4"))
    code, out = _main(["--checkpoint", tmp_path / "toy_cls.pt", "--arch", "toy_cls", video, "--out", tmp_path], capsys)
    assert code == 0, out.err
    assert "note: --method gradcam: CAM is not exact for toy_cls (the head reads the class token)" in out.out
    assert json.loads((tmp_path / video.stem / "result.json").read_text())["method"] == "gradcam"
