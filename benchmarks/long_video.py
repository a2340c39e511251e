"""Reading a clip near the end of a long video costs about what a clip near its start costs, with decord and with PyAV.

    python benchmarks/long_video.py [--minutes 10] [--clips 8] [--video FILE]

The test video is generated into a temporary folder (``--video`` reuses a file, and ``--keep`` keeps the generated
one): H.264 by x264 (``veryfast``, crf 23, its default B-frames, a keyframe every 250 frames exactly, no scene-cut
keyframes), 320×180 at 25 fps, 10 minutes (15 000 frames), a moving diagonal gradient with mild noise.

Each clip is 16 frames at stride 2 (a span of 31 frames). "start" clips begin at random frames in the first 10 s
(the first keyframe interval), "end" clips at random frames in the last 10 s, so both kinds have on average half a
keyframe interval to decode before their first frame; start and end clips alternate. The timed region is one
``read_video_clip`` call, the path a dataset item takes: open the file (decord indexes the whole file on open;
PyAV reads the header), seek, decode, convert to RGB, close. Figures are medians over the clips. Target: median
end / median start ≤ 2 for each backend. For comparison, PyAV without seeking (its decode from frame 0, what every
PyAV read did before) is timed on two clips of each kind; it has no target.

The decord rows also split a read into opening the reader (``decord.VideoReader``) and ``get_batch`` on the open
reader: the share of a clip's read spent opening.

Prints the figures and writes them to ``benchmarks/out/long_video.json`` (the shared format of ``bench_results``);
exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
from bench_results import Results

from saliency_tubes.data import video as video_module
from saliency_tubes.data.video import read_video_clip

WIDTH, HEIGHT, FPS, GOP = 320, 180, 25, 250
CLIP_LEN, STRIDE = 16, 2
SPAN = (CLIP_LEN - 1) * STRIDE + 1
TARGET_RATIO = 2.0


def write_long_video(path: Path, minutes: float) -> Path:
    import av

    rng = np.random.default_rng(0)
    y, x = np.mgrid[:HEIGHT, :WIDTH]
    noise = rng.integers(-6, 7, (8, HEIGHT, WIDTH, 1), dtype=np.int16)
    n = round(minutes * 60 * FPS)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {
            "crf": "23",
            "preset": "veryfast",
            "threads": "1",
            "x264-params": f"keyint={GOP}:min-keyint={GOP}:scenecut=0",
        }
        for t in range(n):
            base = ((x + y + 3 * t) % 256).astype(np.int16)[..., None] + np.array([0, 40, 80], np.int16)
            frame = np.clip(base % 256 + noise[t % len(noise)], 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def clip_starts(num_frames: int, clips: int, seed: int = 0) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    first = min(10 * FPS, num_frames - SPAN)
    start = rng.integers(0, first, clips).tolist()
    end = rng.integers(num_frames - first - SPAN + 1, num_frames - SPAN + 1, clips).tolist()
    return start, end


def clip(first: int) -> np.ndarray:
    return first + STRIDE * np.arange(CLIP_LEN)


def time_read(path: Path, first: int, backend: str) -> float:
    t0 = time.perf_counter()
    frames, _ = read_video_clip(path, lambda n, fps: clip(first), backend=backend)
    elapsed = time.perf_counter() - t0
    assert frames.shape == (CLIP_LEN, HEIGHT, WIDTH, 3)
    return elapsed


def time_pyav_without_seeking(path: Path, first: int) -> float:
    t0 = time.perf_counter()
    got = dict(video_module._PyAVFrames(path, seek=False).frames(clip(first).tolist()))
    elapsed = time.perf_counter() - t0
    assert len(got) == CLIP_LEN
    return elapsed


def decord_open_and_read(path: Path, starts: list[int]) -> dict[str, float]:
    decord = video_module.decord
    opens, batches = [], []
    for first in starts:
        t0 = time.perf_counter()
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        t1 = time.perf_counter()
        reader.get_batch(clip(first).tolist()).asnumpy()
        t2 = time.perf_counter()
        opens.append(t1 - t0)
        batches.append(t2 - t1)
        del reader
    open_s, batch_s = statistics.median(opens), statistics.median(batches)
    return {"open_s": open_s, "get_batch_s": batch_s, "open_share": open_s / (open_s + batch_s)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clips", type=int, default=12, help="clips of each kind (start, end) per backend")
    parser.add_argument("--video", type=Path, help="use this video instead of generating one")
    parser.add_argument("--keep", type=Path, help="keep the generated video at this path")
    results = Results("long_video", argv)  # its clock runs from here
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        path = args.video or args.keep or Path(tmp) / "long.mp4"
        if args.video is None:
            t0 = time.perf_counter()
            write_long_video(path, args.minutes)
            print(f"generated {path} ({path.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f} s")
        info = video_module.video_info(path, backend="pyav")
        print(f"{info.num_frames} frames, {info.width}×{info.height} at {info.fps:g} fps")
        starts, ends = clip_starts(info.num_frames, args.clips)

        backends = ["pyav"] + (["decord"] if video_module.decord is not None else [])
        figures: dict[str, dict[str, float]] = {}
        for backend in backends:
            time_read(path, starts[0], backend)  # warm the page cache and imports
            start_times, end_times = [], []
            for s, e in zip(starts, ends, strict=True):
                start_times.append(time_read(path, s, backend))
                end_times.append(time_read(path, e, backend))
            start_s, end_s = statistics.median(start_times), statistics.median(end_times)
            figures[backend] = {"start_clip_s": start_s, "end_clip_s": end_s, "end_over_start": end_s / start_s}

        start_times = [time_pyav_without_seeking(path, s) for s in starts[:2]]
        end_times = [time_pyav_without_seeking(path, e) for e in ends[:2]]
        start_s, end_s = statistics.median(start_times), statistics.median(end_times)
        figures["pyav_without_seeking"] = {
            "start_clip_s": start_s,
            "end_clip_s": end_s,
            "end_over_start": end_s / start_s,
        }
        if "decord" in backends:
            figures["decord_open"] = decord_open_and_read(path, starts[:3] + ends[:3])

    print(f"\nclip of {CLIP_LEN} frames at stride {STRIDE}; median over {args.clips} clips of each kind (s)")
    print(f"{'reader':<22}{'start':>10}{'end':>10}{'end/start':>11}")
    for name in [*backends, "pyav_without_seeking"]:
        f = figures[name]
        print(f"{name:<22}{f['start_clip_s']:>10.4f}{f['end_clip_s']:>10.4f}{f['end_over_start']:>11.2f}")
    if "decord_open" in figures:
        d = figures["decord_open"]
        print(
            f"\ndecord: opening the reader {d['open_s']:.4f} s, get_batch of one clip {d['get_batch_s']:.4f} s: "
            f"opening is {100 * d['open_share']:.0f}% of a read"
        )
    results.figure("setup", f"{args.minutes} min, {WIDTH}×{HEIGHT} at {FPS} fps, GOP {GOP}, {args.clips} clips each")
    results.table(
        "seconds per clip (median)",
        ["reader", "start", "end", "end / start"],
        [
            [n, figures[n]["start_clip_s"], figures[n]["end_clip_s"], figures[n]["end_over_start"]]
            for n in [*backends, "pyav_without_seeking"]
        ],
    )
    if "decord_open" in figures:
        d = figures["decord_open"]
        results.figure("decord: opening the reader, s", d["open_s"])
        results.figure("decord: get_batch of one clip, s", d["get_batch_s"])
        results.figure("decord: opening's share of a read", d["open_share"])
    for backend in backends:
        results.target(f"{backend}: end / start", figures[backend]["end_over_start"], "<=", TARGET_RATIO)
    return results.write()


if __name__ == "__main__":
    sys.exit(main())
