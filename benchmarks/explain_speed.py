"""Speed of the explanation methods, side by side in one run on the same model and clips.

    pip install -e '.[bench]'          # pytorch-grad-cam, Captum and SciPy: only this benchmark needs them
    python benchmarks/explain_speed.py [--repeats 5] [--device cpu|cuda]

Rows (ratios of medians, interleaved repeats):
1. (forward + Saliency Tubes) / forward                                   target ≤ 1.05
2. (forward + Grad-CAM) / (forward + backward to the parameters)         target ≤ 1.1
3. the original procedure (per-clip numpy loop over channels, scipy.ndimage.zoom with cubic splines, per-frame
   min–max) / ours, on the same features                                   target ≥ 50
4. pytorch-grad-cam GradCAM (5-D input) / our Grad-CAM                     target ≥ 20
5. Captum LayerGradCam + trilinear upsampling + normalisation / our Grad-CAM   target ≥ 1 (no slower)
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from saliency_tubes.explain import SaliencyTubes, class_activation_tubes, explain, normalize_tubes
from saliency_tubes.models import create_model


def _time(fn, repeats: int, device: torch.device) -> list[float]:
    out = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        out.append(time.perf_counter() - start)
    return out


def side_by_side(fns: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median seconds of each function, run in turn within each repeat (after one warm-up each)."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name] += _time(fn, 1, device)
    return {name: statistics.median(t) for name, t in times.items()}


def original_procedure(features: np.ndarray, weights: np.ndarray, targets: np.ndarray, size) -> np.ndarray:
    """The original Saliency Tubes script's steps, clip by clip: a Python loop over channels, cubic-spline zoom,
    min–max per frame."""
    from scipy.ndimage import zoom

    out = []
    for b in range(features.shape[0]):
        cam = np.zeros(features.shape[2:], dtype=np.float32)
        for c in range(features.shape[1]):
            cam += weights[targets[b], c] * features[b, c]
        cam = zoom(cam, [s / c for s, c in zip(size, cam.shape, strict=False)], order=3)
        for t in range(cam.shape[0]):
            lo, hi = cam[t].min(), cam[t].max()
            cam[t] = (cam[t] - lo) / (hi - lo + 1e-8)
        out.append(cam)
    return np.stack(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = create_model("resnet3d_18", num_classes=400).to(device).eval()
    clips = torch.randn(args.batch, 3, 16, 112, 112, device=device)
    size = tuple(clips.shape[-3:])
    print(
        f"R3D-18, {args.batch}×3×16×112×112, {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"repeats {args.repeats}"
    )

    def forward():
        with torch.no_grad():
            model(clips)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        logits = model(clips)
        logits.gather(1, logits.argmax(1, keepdim=True)).sum().backward()
        model.zero_grad(set_to_none=True)

    tubes = SaliencyTubes(model)
    t = side_by_side(
        {
            "forward": forward,
            "forward + saliency tubes": lambda: tubes(clips),
            "forward + backward": forward_backward,
            "forward + grad-cam (ours)": lambda: explain(model, clips, "gradcam"),
        },
        args.repeats,
        device,
    )

    with torch.no_grad():
        features = model.forward_features(clips)
        targets = model.forward_head(features).argmax(1)
    weight = model.get_classifier().weight.detach()
    f_np, w_np, k_np = features.cpu().numpy(), weight.cpu().numpy(), targets.cpu().numpy()
    t.update(
        side_by_side(
            {
                "original procedure": lambda: original_procedure(f_np, w_np, k_np, size),
                "ours on the same features": lambda: class_activation_tubes(features, weight, targets, size),
            },
            args.repeats,
            device,
        )
    )

    rows = [
        ("(forward + Saliency Tubes) / forward", t["forward + saliency tubes"] / t["forward"], "≤ 1.05"),
        (
            "(forward + Grad-CAM) / (forward + backward)",
            t["forward + grad-cam (ours)"] / t["forward + backward"],
            "≤ 1.1",
        ),
        ("original procedure / ours (same features)", t["original procedure"] / t["ours on the same features"], "≥ 50"),
    ]
    try:
        from captum.attr import LayerGradCam
        from pytorch_grad_cam import GradCAM
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        gradcam_lib = GradCAM(model=model, target_layers=[model.layer4])
        captum = LayerGradCam(model, model.layer4)
        k_list = targets.tolist()

        def library_gradcam():
            gradcam_lib(input_tensor=clips, targets=[ClassifierOutputTarget(k) for k in k_list])

        def captum_gradcam():
            attr = captum.attribute(clips, target=targets, relu_attributions=True)
            normalize_tubes(F.interpolate(attr, size=size, mode="trilinear", align_corners=False)[:, 0])

        t.update(
            side_by_side(
                {
                    "pytorch-grad-cam": library_gradcam,
                    "captum + upsampling": captum_gradcam,
                    "ours grad-cam": lambda: explain(model, clips, "gradcam"),
                },
                args.repeats,
                device,
            )
        )
        rows += [
            ("pytorch-grad-cam GradCAM / ours", t["pytorch-grad-cam"] / t["ours grad-cam"], "≥ 20"),
            ("Captum LayerGradCam + upsampling / ours", t["captum + upsampling"] / t["ours grad-cam"], "≥ 1"),
        ]
    except ImportError as exc:
        print(f"(skipping the library comparisons: {exc}; pip install -e '.[bench]')")

    print(f"\n{'step':34s} {'median ms':>10s}")
    for name, seconds in t.items():
        print(f"{name:34s} {seconds * 1e3:10.1f}")
    print(f"\n{'ratio':46s} {'value':>8s}  target")
    for name, value, target in rows:
        print(f"{name:46s} {value:8.2f}  {target}")


if __name__ == "__main__":
    main()
