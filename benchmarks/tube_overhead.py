"""(forward + Saliency Tubes) / forward, measured side by side in one run on the same model and clips.

    python benchmarks/tube_overhead.py [--repeats 15] [--device cpu|cuda]

Both variants run interleaved, in eval mode without gradients; the figure is the ratio of medians.
The tubes are upsampled to the full clip (B×T×H×W) on the model's device, as the callback and
explain.py use them.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import yaml

from saliency_tubes.explain import SaliencyTubes
from saliency_tubes.models import create_model

_DEFAULT = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "default.yaml").read_text())
CASES = [
    # name, arch, arch kwargs, batch, clip shape (T, H, W)
    ("default config", _DEFAULT["model"]["arch"], _DEFAULT["model"]["arch_kwargs"], 8, (8, 64, 64)),
    ("R3D-18, 16×112×112", "resnet3d_18", {}, 4, (16, 112, 112)),
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(model, clips, repeats: int, device: torch.device) -> tuple[float, float]:
    explainer = SaliencyTubes(model)

    def forward():
        with torch.no_grad():
            return model(clips)

    def forward_and_tubes():
        return explainer(clips)

    for fn in (forward, forward_and_tubes):  # warm-up
        fn()
    plain, with_tubes = [], []
    for _ in range(repeats):
        for fn, times in ((forward, plain), (forward_and_tubes, with_tubes)):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times.append(time.perf_counter() - start)
    return statistics.median(plain), statistics.median(with_tubes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    print(f"device: {device}, torch {torch.__version__}, threads: {torch.get_num_threads()}, repeats: {args.repeats}")
    print(f"{'case':32s} {'batch':>5s} {'forward ms':>11s} {'+tubes ms':>10s} {'ratio':>6s}")
    for name, arch, kwargs, batch, shape in CASES:
        model = create_model(arch, num_classes=400 if "18" in arch else 6, **kwargs).to(device).eval()
        clips = torch.randn(batch, 3, *shape, device=device)
        fwd, tubes = measure(model, clips, args.repeats, device)
        print(f"{name:32s} {batch:5d} {fwd * 1e3:11.1f} {tubes * 1e3:10.1f} {tubes / fwd:6.3f}")
    print("target: ratio ≤ 1.05")


if __name__ == "__main__":
    main()
