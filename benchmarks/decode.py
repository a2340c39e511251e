"""Decoding throughput (clips/s) of decord, PyAV and the full DataLoader path, and the share of a training step spent
waiting for data.

    python benchmarks/decode.py [--quick] [--clips 12] [--steps 16]
    python benchmarks/decode.py --memory [--quick]     # peak RSS over five passes of the same 200 clips

Test files are written into a temporary folder: H.264 (x264 ``veryfast``, crf 23) at GOP 12 and 250, 320×240 and
640×360, 10 s at 25 fps (``--quick``: 4 s), a moving gradient with a little noise. Readers (the project's own, in
``saliency_tubes.data.video``) decode clips of 16 frames at stride 2 at random positions, the same positions for
each reader, interleaved clip by clip (decord, PyAV, then PyAV, decord, ...), with the process pinned to one CPU
while they run: decord is opened with one thread and PyAV's automatic thread count follows the CPUs the process
may use, so both decode on one thread. The DataLoader rows run ``VideoDataModule``'s training loader (folder
layout, random clips and crops, input 112, batch 8) over the same files, on every CPU.

The wait share is measured in a real training run: Lightning's ``Trainer.fit`` on ``configs/default.yaml``'s
model and data (its synthetic set, generated into ``data/synthetic`` if absent; its batch size and workers), no
logger or validation. The wait is the time from one ``on_train_batch_end`` to the next ``on_train_batch_start``
(fetching the next batch), the step the time between two ``on_train_batch_start`` (wait, forward, backward,
optimizer); the first two steps (workers starting) are left out. Target: wait ≤ 10% of the step time.

Writes ``benchmarks/out/decode.json`` (``--memory``: ``decode_memory.json``, target last/first peak ≤ 1.10); exit
status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
import yaml
from bench_results import Results

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


def reader_rates(path: Path, starts: list[int]) -> dict[str, float]:
    """Clips/s of the project's reader for decord and PyAV, opening the file per clip as the dataset does,
    interleaved clip by clip on one CPU (see the module's docstring)."""
    seconds = {"decord": 0.0, "pyav": 0.0}
    affinity = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(affinity)})
    try:
        for i, s in enumerate(starts):
            for backend in ("decord", "pyav") if i % 2 == 0 else ("pyav", "decord"):
                t0 = time.perf_counter()
                read_video_clip(path, lambda _n, _fps, s=s: s + STRIDE * np.arange(CLIP_LEN), backend)
                seconds[backend] += time.perf_counter() - t0
    finally:
        os.sched_setaffinity(0, affinity)
    return {k: len(starts) / v for k, v in seconds.items()}


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


class WaitTimer(pl.Callback):
    """Seconds between one training batch's end and the next one's start (the wait), and between two starts."""

    def __init__(self):
        self.waits: list[float] = []
        self.steps: list[float] = []
        self._start: float | None = None
        self._end: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        now = time.perf_counter()
        if self._start is not None and self._end is not None:
            self.waits.append(now - self._end)
            self.steps.append(now - self._start)
        self._start = now

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._end = time.perf_counter()


def data_wait_share(steps: int) -> tuple[float, float, float, str]:
    """``(wait share, median step s, median wait s, setting)`` of training the default config's model on its data
    with Lightning, the first two steps left out."""
    config = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    data, model_cfg = config["data"], config["model"]
    root = REPO / data["root"]
    ensure_synthetic(root, SyntheticConfig())
    pl.seed_everything(config.get("seed_everything", 0), verbose=False)
    dm = VideoDataModule(**{**data, "root": str(root)})
    model = VideoClassifier(
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        **{k: dm.hparams[k] for k in ("clip_len", "stride", "input_size", "mean", "std")},
        **model_cfg,
    )
    timer = WaitTimer()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(
            max_steps=steps + 3,  # steps after the first two, each measured at the start of the next
            accelerator="cpu",
            devices=1,
            precision=config["trainer"]["precision"],
            logger=False,
            callbacks=[timer],
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            default_root_dir=tmp,
        )
        trainer.fit(model, dm)
    # steps[k]: from batch k's start to batch k + 1's, the wait for the next batch included; the first two left out
    waits, totals = timer.waits[2:], timer.steps[2:]
    setting = (
        f"{model_cfg['arch']}, batch {data['batch_size']}, {data['clip_len']}×{data['input_size']}², "
        f"{data['num_workers']} workers"
    )
    return sum(waits) / sum(totals), statistics.median(totals), statistics.median(waits), setting


def speed(args, folder: Path) -> int:
    results = Results("decode")
    seconds = 4 if args.quick else 10
    clips = args.clips or (6 if args.quick else 12)
    steps = args.steps or (8 if args.quick else 16)
    t_start = time.perf_counter()
    files = make_files(folder, seconds)
    print(
        f"torch threads {torch.get_num_threads()}, cpus {os.cpu_count()}; {len(files)} files of {seconds} s at {FPS} fps "
        f"written in {time.perf_counter() - t_start:.0f} s; {clips} clips of {CLIP_LEN}×stride {STRIDE} per file and reader"
    )
    print(f"{'file':<20}{'decord':>10}{'PyAV':>10}{'decord/PyAV':>13}   (clips/s, one CPU, interleaved)")
    rows = []
    for name, path in files:
        rate = reader_rates(path, clip_starts(seconds * FPS, clips))
        d, p = rate["decord"], rate["pyav"]
        print(f"{name:<20}{d:>10.1f}{p:>10.1f}{d / p:>13.2f}")
        rows.append([name, round(d, 1), round(p, 1), round(d / p, 2)])
    results.table(
        f"clips/s, {clips} clips of {CLIP_LEN} frames at stride {STRIDE} per file, one CPU, readers interleaved",
        ["file", "decord", "PyAV", "decord / PyAV"],
        rows,
    )

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
    for w, r in rates.items():
        results.figure(f"DataLoader clips/s, {w} workers (batch 8, input 112)", r)
    results.figure("DataLoader 2 workers / 0", rates[2] / rates[0])
    share, step, wait, setting = data_wait_share(steps)
    print(
        f"default config training step ({setting}; Lightning, {steps} steps after 2): median step "
        f"{step * 1000:.0f} ms, median wait {wait * 1000:.0f} ms, waiting for data {100 * share:.1f}% of the step time"
    )
    results.figure("training step", f"default config: {setting}; Lightning fit, {steps} steps after 2")
    results.figure("median training step ms", step * 1000)
    results.figure("median data wait ms", wait * 1000)
    results.target("data wait / training step time", share, "<=", 0.10)
    print(f"total {time.perf_counter() - t_start:.0f} s")
    return results.write()


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


def memory(args, folder: Path) -> int:
    """The same 200 clips (spread over the files, both readers' default ``auto`` order) decoded five times."""
    seconds = 4 if args.quick else 10
    files = make_files(folder, seconds)
    results = Results("decode_memory")
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
    for p, peak in enumerate(peaks):
        results.figure(f"peak RSS MiB, pass {p + 1} of {len(plan)} clips", peak)
    results.target("peak RSS, last pass / first", peaks[-1] / peaks[0], "<=", 1.10)
    return results.write()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 s files, fewer clips and steps (about a minute)")
    parser.add_argument("--clips", type=int, default=0, help="clips per file and reader (default 12; --quick 6)")
    parser.add_argument("--steps", type=int, default=0, help="timed training steps (default 16; --quick 8)")
    parser.add_argument("--memory", action="store_true", help="only the memory-growth check")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        return (memory if args.memory else speed)(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
