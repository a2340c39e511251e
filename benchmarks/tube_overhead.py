"""(forward + Saliency Tubes) / forward, measured side by side in one run on the same model and clips.

    python benchmarks/tube_overhead.py [--repeats 15] [--quick] [--device cpu|cuda]

Both variants run interleaved, in eval mode without gradients; the figure is the ratio of medians.
The tubes are upsampled to the full clip (B×T×H×W) on the model's device, as the callback and
explain.py use them. Writes ``benchmarks/out/tube_overhead.json``; exit status 1 when a ratio is above 1.05.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml
from bench_results import Results

from saliency_tubes.explain import SaliencyTubes
from saliency_tubes.models import create_model

_DEFAULT = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "default.yaml").read_text())
_DATA = _DEFAULT["data"]
CASES = [
    # name, arch, arch kwargs, batch, clip shape (T, H, W)
    (
        f"default config ({_DEFAULT['model']['arch']}, {_DATA['clip_len']}×{_DATA['input_size']}×{_DATA['input_size']})",
        _DEFAULT["model"]["arch"],
        _DEFAULT["model"]["arch_kwargs"],
        8,
        (_DATA["clip_len"], _DATA["input_size"], _DATA["input_size"]),
    ),
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="5 repeats")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    repeats = 5 if args.quick else args.repeats
    device = torch.device(args.device)
    results = Results("tube_overhead")
    torch.manual_seed(0)
    print(f"device: {device}, torch {torch.__version__}, threads: {torch.get_num_threads()}, repeats: {repeats}")
    print(f"{'case':32s} {'batch':>5s} {'forward ms':>11s} {'+tubes ms':>10s} {'ratio':>6s}")
    for name, arch, kwargs, batch, shape in CASES:
        model = create_model(arch, num_classes=400 if "18" in arch else 6, **kwargs).to(device).eval()
        clips = torch.randn(batch, 3, *shape, device=device)
        fwd, tubes = measure(model, clips, repeats, device)
        print(f"{name:32s} {batch:5d} {fwd * 1e3:11.1f} {tubes * 1e3:10.1f} {tubes / fwd:6.3f}")
        results.figure(f"{name}, batch {batch}: forward ms", fwd * 1e3)
        results.figure(f"{name}, batch {batch}: forward + tubes ms", tubes * 1e3)
        results.target(f"(forward + tubes) / forward, {name}", tubes / fwd, "<=", 1.05)
    return results.write()


if __name__ == "__main__":
    sys.exit(main())
