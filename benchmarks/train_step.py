"""Training-step throughput (clips/s) of MFNet-3D and R3D-18: plain, channels_last_3d and torch.compile, side by side.

    python benchmarks/train_step.py [--device cpu|cuda] [--batch 4] [--clip 8x112x112] [--steps 6] [--quick]

Every variant starts from the same weights and batch; "same loss" compares the first step's loss with the plain
model's (relative 1e-3), so a faster variant that computes something else is flagged. Steps of the variants are
interleaved, and the figure is the median step time after warm-up (compilation excluded). ``--quick``: 3 steps, without
``torch.compile`` (compiling takes minutes on 2 cores).
Writes ``benchmarks/out/train_step.json``; the one target is that every variant computes the same loss (exit
status 1 otherwise). No speed target: the script informs the per-architecture default of ``channels_last``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from bench_results import Results

from saliency_tubes.models import create_model

VARIANTS = ("plain", "channels_last_3d", "torch.compile")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model: torch.nn.Module, variant: str, clips: torch.Tensor, labels: torch.Tensor):
    model = copy.deepcopy(model).train()
    if variant == "channels_last_3d":
        model = model.to(memory_format=torch.channels_last_3d)
        clips = clips.contiguous(memory_format=torch.channels_last_3d)
    forward = torch.compile(model) if variant == "torch.compile" else model
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(clips), labels)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--clip", default="8x112x112", help="T x H x W")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per variant (after 2 warm-up steps)")
    parser.add_argument("--archs", nargs="+", default=["mfnet3d", "resnet3d_18"])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="3 timed steps, no torch.compile")
    args = parser.parse_args()
    n_steps = 3 if args.quick else args.steps
    if args.quick:
        args.variants = [v for v in args.variants if v != "torch.compile"]
    results = Results("train_step")
    rows = []
    device = torch.device(args.device)
    shape = tuple(int(x) for x in args.clip.lower().split("x"))
    print(
        f"device {device}, batch {args.batch}, clip {args.clip}, torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(f"{'architecture':<14}{'variant':<18}{'clips/s':>9}{'× plain':>9}  same loss")
    for arch in args.archs:
        torch.manual_seed(0)
        model = create_model(arch, 101).to(device)
        clips = torch.randn(args.batch, 3, *shape, device=device)
        labels = torch.randint(0, 101, (args.batch,), device=device)
        steps = {v: make_step(model, v, clips, labels) for v in args.variants}
        first = {v: step() for v, step in steps.items()}  # first loss; compiles
        for step in steps.values():
            step()
        times = {v: [] for v in steps}
        for _ in range(n_steps):
            for v, step in steps.items():
                _sync(device)
                start = time.perf_counter()
                step()
                _sync(device)
                times[v].append(time.perf_counter() - start)
        rate = {v: args.batch / statistics.median(t) for v, t in times.items()}
        base = rate.get("plain", next(iter(rate.values())))
        for v in steps:
            same = abs(first[v] - first.get("plain", first[v])) <= 1e-3 * abs(first.get("plain", first[v]))
            print(f"{arch:<14}{v:<18}{rate[v]:>9.2f}{rate[v] / base:>9.2f}  {'yes' if same else 'NO'} ({first[v]:.5f})")
            rows.append([arch, v, round(rate[v], 2), round(rate[v] / base, 2), "yes" if same else "NO"])
            results.target(
                f"{arch} {v}: first loss − plain's, relative",
                abs(first[v] / first.get("plain", first[v]) - 1),
                "<=",
                1e-3,
            )
    results.table(
        f"training steps, batch {args.batch}, clip {args.clip}, 101 classes, {device}; median of {n_steps} steps",
        ["architecture", "variant", "clips/s", "× plain", "same loss"],
        rows,
    )
    return results.write()


if __name__ == "__main__":
    sys.exit(main())
