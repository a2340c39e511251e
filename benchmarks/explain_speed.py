"""Speed of the explanation methods, side by side in one run on the same model and clips.

    pip install -e '.[bench]'          # pytorch-grad-cam, Captum and SciPy: only this benchmark needs them
    python benchmarks/explain_speed.py [--repeats 5] [--quick] [--device cpu|cuda]

R3D-18, a batch of 16×112×112 clips, eval mode. Every figure is a median over interleaved repeats (each function
runs once per repeat, in turn, after one warm-up each); ratios are ratios of those medians.

1. Saliency Tubes: (forward + tubes) / forward.                                                 target ≤ 1.05
2. Grad-CAM: (forward + our Grad-CAM) / (forward + backward to the parameters).                  target ≤ 1.1
   Multi-layer methods on their default layers, the same denominator:                              target ≤ 1.5
   - Class Feature Pyramids (layer1-4): forward with hooks, one backward pass per stage from the logits down to
     layer1 (no parameter gradients), the per-depth tubes, their fusion, upsampling and normalisation;
   - LayerCAM (layer2-4): forward with hooks, one backward pass to the three layers, the per-layer maps, fusion, upsampling
     and normalisation (both timed regions also hold the per-layer tubes of ``Explanation.layers``).
3. The original Saliency Tubes script's procedure (alexandrosstergiou/Saliency-Tubes-Visual-Explanations,
   ``heat_tubes_mfnet_pytorch.py``): per clip, the features moved to numpy as T'×H'×W'×C, a Python loop over the
   channels adding ``w[c] · features[..., c]``, ``scipy.ndimage.zoom`` (cubic splines) to the clip's size, and one
   min–max over the whole tube. Two ratios, original / ours:
   - after the forward pass (the same features for both)                                       target ≥ 50
   - the whole pipeline, the forward pass included (the same batched forward for both; the script itself ran one
     clip per forward)                                                                           target ≥ 1
4. pytorch-grad-cam ``GradCAM`` (5-D input) / our Grad-CAM, whole call                           target ≥ 20
   split into its two parts, each against ours: the forward + backward (theirs: ``loss.backward()`` through
   every parameter; ours: ``autograd.grad`` to the explained layer only), and the step after it (theirs: weights,
   CAM, ``scipy.ndimage.zoom`` and normalisation in numpy; ours: trilinear upsampling and normalisation in torch).
5. Captum ``LayerGradCam`` + trilinear upsampling + normalisation / our Grad-CAM                target ≥ 1 (no slower)
6. With ``--transformers`` (or ``--only-transformers``), torchvision's video transformers at their full width, on
   a batch of ``--tx-frames``×``--tx-size``² clips (default 16×112², the models' relative positions sized to it):
   - Swin3D-T: (forward + Saliency Tubes) / forward — the whole ``SaliencyTubes`` call (forward_features, head,
     the channels-last volume read as B×C×T'×H'×W', CAM, upsampling, normalisation) against ``model(clips)``
     under ``no_grad``                                                                          target ≤ 1.05
   - MViT-V2-S: (forward + Grad-CAM) / (forward + backward) — the whole ``explain(..., "gradcam")`` call (forward
     with the default block's ``(tokens, thw)`` captured, ``autograd.grad`` to those tokens, reshape, CAM,
     upsampling, normalisation) against a forward and a ``backward()`` of the target score to every parameter
                                                                                                 target ≤ 1.1

Writes ``benchmarks/out/explain_speed.json``; exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from bench_results import Results

from saliency_tubes.explain import (
    SaliencyTubes,
    class_activation_tubes,
    explain,
    get_method,
    normalize_tubes,
    preserved_state,
    resolve_targets,
)
from saliency_tubes.models import create_model


def _time(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def side_by_side(fns: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds of each function, run in turn within each repeat (after one warm-up each)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(_time(fn, device))
    return {name: statistics.median(t) for name, t in times.items()}


def original_procedure(features: np.ndarray, weights: np.ndarray, targets: np.ndarray, size) -> np.ndarray:
    """The original script's steps after its forward pass, clip by clip (written from its description above)."""
    from scipy.ndimage import zoom

    out = []
    for b in range(features.shape[0]):
        layer = features[b].transpose(1, 2, 3, 0)  # T'×H'×W'×C, as the script holds it
        cam = np.zeros(layer.shape[:3], dtype=np.float32)
        for c in range(layer.shape[3]):
            cam += weights[targets[b], c] * layer[:, :, :, c]
        cam = zoom(cam, [s / n for s, n in zip(size, cam.shape, strict=True)])  # order 3, scipy's default
        cam -= cam.min()  # one normalisation over the whole tube
        cam /= cam.max() - cam.min()
        out.append(cam)
    return np.stack(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repeats, batch 2")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--transformers", action="store_true", help="also item 6: Swin3D-T and MViT-V2-S")
    parser.add_argument("--only-transformers", action="store_true", help="item 6 alone")
    parser.add_argument("--tx-frames", type=int, default=16)
    parser.add_argument("--tx-size", type=int, default=112)
    args = parser.parse_args()
    repeats, batch = (3, 2) if args.quick else (args.repeats, args.batch)
    device = torch.device(args.device)
    results = Results("explain_speed_transformers" if args.only_transformers else "explain_speed")
    if args.only_transformers:
        return finish(results, transformer_rows(results, device, repeats, batch, args.tx_frames, args.tx_size))
    torch.manual_seed(0)
    model = create_model("resnet3d_18", num_classes=400).to(device).eval()
    clips = torch.randn(batch, 3, 16, 112, 112, device=device)
    size = tuple(clips.shape[-3:])
    print(
        f"R3D-18, {batch}×3×16×112×112, {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"repeats {repeats}"
    )
    results.figure("input", f"R3D-18, {batch} clips of 16×112×112, {device}")

    def forward():
        with torch.no_grad():
            model(clips)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        logits = model(clips)
        logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
        model.zero_grad(set_to_none=True)

    with torch.no_grad():
        features = model.forward_features(clips)
        targets = model.forward_head(features).argmax(1)
    weight = model.get_classifier().weight.detach()
    f_np, w_np, k_np = features.cpu().numpy(), weight.cpu().numpy(), targets.cpu().numpy()

    def original_pipeline():
        with torch.no_grad():
            feats = model.forward_features(clips)
            k = model.forward_head(feats).argmax(1)
        original_procedure(feats.cpu().numpy(), w_np, k.cpu().numpy(), size)

    tubes = SaliencyTubes(model)
    t = side_by_side(
        {
            "forward": forward,
            "forward + saliency tubes": lambda: tubes(clips),
            "forward + backward": forward_backward,
            "forward + grad-cam (ours)": lambda: explain(model, clips, "gradcam"),
            "forward + pyramid (layer1-4)": lambda: explain(model, clips, "pyramid"),
            "forward + layercam (layer2-4)": lambda: explain(model, clips, "layercam"),
            "original procedure after the forward": lambda: original_procedure(f_np, w_np, k_np, size),
            "ours after the forward": lambda: class_activation_tubes(features, weight, targets, size),
            "original procedure with the forward": original_pipeline,
        },
        repeats,
        device,
    )
    results.target("(forward + Saliency Tubes) / forward", t["forward + saliency tubes"] / t["forward"], "<=", 1.05)
    results.target(
        "(forward + Grad-CAM) / (forward + backward)",
        t["forward + grad-cam (ours)"] / t["forward + backward"],
        "<=",
        1.1,
    )
    for name, depths in (("pyramid", "layer1-4"), ("layercam", "layer2-4")):
        results.target(
            f"(forward + {name}) / (forward + backward)",
            t[f"forward + {name} ({depths})"] / t["forward + backward"],
            "<=",
            1.5,
        )
    results.target(
        "original / ours, after the forward (same features)",
        t["original procedure after the forward"] / t["ours after the forward"],
        ">=",
        50,
    )
    results.target(
        "original / ours, whole pipeline (forward included)",
        t["original procedure with the forward"] / t["forward + saliency tubes"],
        ">=",
        1,
    )

    try:
        from captum.attr import LayerGradCam
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except ImportError as exc:
        print(f"(skipping the library comparisons: {exc}; pip install -e '.[bench]')")
        results.figure("library comparisons", f"skipped: {exc}")
    else:
        lib = GradCAM(model=model, target_layers=[model.layer4])
        captum = LayerGradCam(model, model.layer4)
        lib_targets = [ClassifierOutputTarget(k) for k in targets.tolist()]

        def lib_forward_backward():  # the steps of BaseCAM.forward before compute_cam_per_layer
            outputs = lib.activations_and_grads(clips)
            model.zero_grad()
            sum(target(output) for target, output in zip(lib_targets, outputs, strict=True)).backward(retain_graph=True)

        def lib_after_backward():  # the rest of BaseCAM.forward, on the activations and gradients kept above
            lib.aggregate_multi_layers(lib.compute_cam_per_layer(clips, lib_targets, False))

        ours = get_method("gradcam")(model)
        kept: dict[str, torch.Tensor] = {}

        def ours_forward_backward():  # ExplanationMethod.__call__ up to the raw maps
            with preserved_state(model, grad=True):
                forward = ours.run(clips)
                k = resolve_targets(forward.logits.detach(), None, 1)
                kept["maps"] = ours.maps(forward, k.view(k.shape[0], -1))

        def ours_after_backward():
            ours.tubes(kept["maps"], size)

        def captum_gradcam():
            attr = captum.attribute(clips, target=targets, relu_attributions=True)
            normalize_tubes(F.interpolate(attr, size=size, mode="trilinear", align_corners=False)[:, 0])

        lib_forward_backward()  # so that the first after-backward call has gradients
        ours_forward_backward()
        t.update(
            side_by_side(
                {
                    "pytorch-grad-cam": lambda: lib(input_tensor=clips, targets=lib_targets),
                    "pytorch-grad-cam forward + backward": lib_forward_backward,
                    "pytorch-grad-cam after the backward (CAM, zoom, normalise)": lib_after_backward,
                    "captum + upsampling": captum_gradcam,
                    "ours grad-cam": lambda: explain(model, clips, "gradcam"),
                    "ours grad-cam forward + backward to the layer": ours_forward_backward,
                    "ours grad-cam after the backward (upsample, normalise)": ours_after_backward,
                },
                repeats,
                device,
            )
        )
        model.zero_grad(set_to_none=True)
        results.target(
            "pytorch-grad-cam GradCAM / ours, whole call", t["pytorch-grad-cam"] / t["ours grad-cam"], ">=", 20
        )
        results.figure(
            "pytorch-grad-cam / ours: forward + backward",
            t["pytorch-grad-cam forward + backward"] / t["ours grad-cam forward + backward to the layer"],
        )
        results.figure(
            "pytorch-grad-cam / ours: after the backward",
            t["pytorch-grad-cam after the backward (CAM, zoom, normalise)"]
            / t["ours grad-cam after the backward (upsample, normalise)"],
        )
        gap = t["pytorch-grad-cam"] - t["ours grad-cam"]
        results.figure(
            "share of the pytorch-grad-cam − ours gap in the backward",
            (t["pytorch-grad-cam forward + backward"] - t["ours grad-cam forward + backward to the layer"]) / gap,
        )
        results.target(
            "Captum LayerGradCam + upsampling / ours", t["captum + upsampling"] / t["ours grad-cam"], ">=", 1
        )
    if args.transformers:
        t.update(transformer_rows(results, device, repeats, batch, args.tx_frames, args.tx_size))

    return finish(results, t)


def transformer_rows(results: Results, device: torch.device, repeats: int, batch: int, frames: int, side: int) -> dict:
    """Item 6 of the module docstring: Swin3D-T's CAM and MViT-V2-S's Grad-CAM against their forward passes."""
    torch.manual_seed(0)
    clips = torch.randn(batch, 3, frames, side, side, device=device)
    results.figure("transformers input", f"{batch} clips of {frames}×{side}×{side}, {device}")
    swin = create_model("swin3d_t", num_classes=400).to(device).eval()
    mvit = create_model("mvit_v2_s", 400, spatial_size=(side, side), temporal_size=frames).to(device).eval()

    def forward(model):
        with torch.no_grad():
            model(clips)

    def forward_backward(model):
        model.zero_grad(set_to_none=True)
        logits = model(clips)
        logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
        model.zero_grad(set_to_none=True)

    swin_cam = SaliencyTubes(swin)
    t = side_by_side(
        {
            "swin3d_t forward": lambda: forward(swin),
            "swin3d_t forward + saliency tubes": lambda: swin_cam(clips),
            "mvit_v2_s forward + backward": lambda: forward_backward(mvit),
            "mvit_v2_s forward + grad-cam (ours)": lambda: explain(mvit, clips, "gradcam"),
        },
        repeats,
        device,
    )
    results.target(
        "swin3d_t: (forward + Saliency Tubes) / forward",
        t["swin3d_t forward + saliency tubes"] / t["swin3d_t forward"],
        "<=",
        1.05,
    )
    results.target(
        "mvit_v2_s: (forward + Grad-CAM) / (forward + backward)",
        t["mvit_v2_s forward + grad-cam (ours)"] / t["mvit_v2_s forward + backward"],
        "<=",
        1.1,
    )
    return t


def finish(results: Results, t: dict) -> int:
    ratios = {k: results.figures.pop(k) for k in list(results.figures) if "input" not in k}
    print(f"\n{'step':62s} {'median ms':>10s}")
    for name, seconds in t.items():
        print(f"{name:62s} {seconds * 1e3:10.1f}")
        results.figure(f"{name}: ms", seconds * 1e3)
    for name, value in ratios.items():
        print(f"{name}: {value}")
        results.figure(name, value)
    return results.write()


if __name__ == "__main__":
    sys.exit(main())
