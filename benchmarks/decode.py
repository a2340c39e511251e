"""Decoding throughput (clips/s) of decord, PyAV and the full DataLoader path, and the share of a training step spent
waiting for data.

    python benchmarks/decode.py [--quick] [--clips 12] [--steps 16]
    python benchmarks/decode.py --memory [--quick]     # peak RSS over five passes of the same 200 clips

Test files are written into a temporary folder: H.264 (x264 ``veryfast``, crf 23) at GOP 12 and 250, 320×240 and
640×360, 10 s at 25 fps (``--quick``: 4 s), a moving gradient with a little noise. Readers (the project's own, in
``saliency_tubes.data.video``) decode clips of 16 frames at stride 2 at random positions, the same positions for
each reader. The DataLoader rows run ``VideoDataModule``'s training loader (folder layout, random clips and crops,
input 112, batch 8) over the same files. The wait share trains the ``configs/default.yaml`` model on its synthetic
data (generated into ``data/synthetic`` if absent) with its data settings, timing ``next(batch)`` against the whole
step (forward, backward, optimizer); the first two steps (workers starting) are left out.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from saliency_tubes.data import VideoDataModule
from saliency_tubes.data.synthetic import SyntheticConfig, ensure_synthetic
from saliency_tubes.data.video import read_video_clip
from saliency_tubes.lightning import VideoClassifier

REPO = Path(__file__).resolve().parents[1]
CLIP_LEN, STRIDE, FPS = 16, 2, 25
SIZES = ((320, 240), (640, 360))
GOPS = (12, 250)


def write_test_video(path: Path, width: int, height: int, gop: int, seconds: float) -> Path:
    """A moving diagonal gradient with mild noise: cheap to make, and not trivially compressible."""
    import av

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:height, :width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {
            "crf": "23",
            "preset": "veryfast",
            "threads": "1",
            "keyint": str(gop),
            "min-keyint": str(gop),
            "scenecut": "0",
        }
        for t in range(int(seconds * FPS)):
            base = ((x + y + 4 * t) % 256).astype(np.uint8)
            frame = np.stack([base, np.roll(base, 40, 1), 255 - base], -1)
            frame = np.clip(frame + rng.integers(-6, 7, frame.shape), 0, 255).astype(np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def make_files(folder: Path, seconds: float) -> list[tuple[str, Path]]:
    files = []
    for width, height in SIZES:
        for gop in GOPS:
            name = f"{width}x{height} gop {gop}"
            files.append(
                (name, write_test_video(folder / f"{width}x{height}_gop{gop}.mp4", width, height, gop, seconds))
            )
    return files


def clip_starts(num_frames: int, n: int, seed: int = 0) -> list[int]:
    span = (CLIP_LEN - 1) * STRIDE + 1
    return [int(s) for s in np.random.default_rng(seed).integers(0, num_frames - span + 1, n)]


def reader_rate(path: Path, backend: str, starts: list[int]) -> float:
    """Clips/s of the project's reader for ``backend``, opening the file per clip as the dataset does."""
    t0 = time.perf_counter()
    for s in starts:
        read_video_clip(path, lambda _n, _fps, s=s: s + STRIDE * np.arange(CLIP_LEN), backend)
    return len(starts) / (time.perf_counter() - t0)


def loader_rate(folder: Path, workers: int, batches: int) -> float:
    """Clips/s of the training DataLoader, after its first batch (workers starting)."""
    dm = VideoDataModule(
        root=str(folder),
        clip_len=CLIP_LEN,
        stride=STRIDE,
        input_size=112,
        batch_size=8,
        num_workers=workers,
        hflip=True,
    )
    dm.setup("fit")
    it = iter(dm.train_dataloader())
    next(it)
    t0 = time.perf_counter()
    n = sum(len(next(it)["clip"]) for _ in range(batches))
    rate = n / (time.perf_counter() - t0)
    del it
    return rate


def data_wait_share(steps: int) -> tuple[float, float, float]:
    """``(wait share, median step s, median wait s)`` of training the default config's model on its data."""
    config = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data, model_cfg = config["data"], config["model"]
    root = REPO / data["root"]
    ensure_synthetic(root, SyntheticConfig())
    torch.manual_seed(config.get("seed_everything", 0))
    dm = VideoDataModule(**{**data, "root": str(root)})
    dm.setup("fit")
    model = VideoClassifier(
        arch=model_cfg["arch"],
        num_classes=dm.num_classes,
        arch_kwargs=model_cfg["arch_kwargs"],
        clip_len=data["clip_len"],
        stride=data["stride"],
        input_size=data["input_size"],
    ).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=model_cfg["lr"], momentum=0.9)
    waits, totals = [], []
    it = iter(dm.train_dataloader())
    while len(totals) < steps + 2:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            it = iter(dm.train_dataloader())
            continue
        t1 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch["clip"]), batch["label"]).backward()
        optimizer.step()
        waits.append(t1 - t0)
        totals.append(time.perf_counter() - t0)
    waits, totals = waits[2:], totals[2:]
    return sum(waits) / sum(totals), statistics.median(totals), statistics.median(waits)


def speed(args, folder: Path) -> None:
    seconds = 4 if args.quick else 10
    clips = args.clips or (6 if args.quick else 12)
    steps = args.steps or (8 if args.quick else 16)
    t_start = time.perf_counter()
    files = make_files(folder, seconds)
    print(
        f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}; {len(files)} files of {seconds} s at {FPS} fps "
        f"written in {time.perf_counter() - t_start:.0f} s; {clips} clips of {CLIP_LEN}×stride {STRIDE} per file and reader"
    )
    print(f"{'file':<20}{'decord':>10}{'PyAV':>10}{'decord/PyAV':>13}   (clips/s)")
    for name, path in files:
        starts = clip_starts(seconds * FPS, clips)
        d, p = reader_rate(path, "decord", starts), reader_rate(path, "pyav", starts)
        print(f"{name:<20}{d:>10.1f}{p:>10.1f}{d / p:>13.2f}")

    layout = folder / "layout"
    for i, (_, path) in enumerate(files):  # 12 training copies of each file (links): an epoch holds 6 batches
        for split, k in [("train", k) for k in range(12)] + [("val", 0)]:
            target = layout / split / f"class{i % 2}" / f"{path.stem}_{k}.mp4"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, target)
    batches = 2 if args.quick else 4
    rates = {w: loader_rate(layout, w, batches) for w in (0, 1, 2)}
    print(
        f"DataLoader (all {len(files)} files mixed, batch 8, input 112, {batches} batches after the first): "
        + ", ".join(f"{w} workers {r:.1f}" for w, r in rates.items())
        + " clips/s; "
        + f"2 workers / 0 = {rates[2] / rates[0]:.2f}"
    )
    share, step, wait = data_wait_share(steps)
    print(
        f"default config training step ({steps} steps after 2): median step {step * 1000:.0f} ms, median wait "
        f"{wait * 1000:.0f} ms, waiting for data {100 * share:.0f}% of the step time"
    )
    print(f"total {time.perf_counter() - t_start:.0f} s")


def peak_rss_mib() -> tuple[float, str]:
    """Peak resident memory since the last :func:`reset_peak`: Linux's VmHWM, else getrusage (peak of the process)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024, "VmHWM"
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "ru_maxrss"


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux ≥ 4.0), so each pass reports its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory(args, folder: Path) -> None:
    """The same 200 clips (spread over the files, both readers' default ``auto`` order) decoded five times."""
    seconds = 4 if args.quick else 10
    files = make_files(folder, seconds)
    plan = [(path, s) for k, (_, path) in enumerate(files) for s in clip_starts(seconds * FPS, 50, seed=k)]
    reset_peak()
    print(f"RSS before decoding {peak_rss_mib()[0]:.1f} MiB (Python, torch, Lightning and the readers imported)")
    peaks = []
    for p in range(5):
        reset = reset_peak()
        t0 = time.perf_counter()
        for path, s in plan:
            read_video_clip(path, lambda _n, _fps, s=s: s + STRIDE * np.arange(CLIP_LEN))
        peak, how = peak_rss_mib()
        peaks.append(peak)
        print(
            f"pass {p + 1}: {len(plan)} clips in {time.perf_counter() - t0:.1f} s, peak RSS {peak:.1f} MiB "
            f"({how}{'' if reset else ', cumulative: no reset'})"
        )
    ratio = peaks[-1] / peaks[0]
    print(f"last/first {ratio:.3f} ({'within' if ratio <= 1.10 else 'ABOVE'} the 1.10 target)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s files, fewer clips and steps (about a minute)")
    parser.add_argument("--clips", type=int, default=0, help="clips per file and reader (default 12; --quick 6)")
    parser.add_argument("--steps", type=int, default=0, help="timed training steps (default 16; --quick 8)")
    parser.add_argument("--memory", action="store_true", help="only the memory-growth check")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (memory if args.memory else speed)(args, Path(tmp))


if __name__ == "__main__":
    main()
