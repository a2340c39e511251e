"""Check a dataset before training: open every video of both splits, read its frame count and decode one frame
at its start, middle and end, and list the files that fail, one per line with the reason.

With the default backend (auto) every frame is decoded with PyAV, which refuses frames FFmpeg could not decode as
stored (cut off, overwritten: pixels guessed by error concealment); decord cannot tell such frames from good
ones, so a damaged file it would read is listed too. `--data.backend decord` checks what decord reads, three
frames per file (faster for long videos).

    python -m saliency_tubes.data.check --data.root ROOT [--data.layout ucf101 --data.split 2 ...]

`--help` lists the layouts.

Exit status: 0 when every file is readable, 1 when some are not (they are listed on stdout), 2 on usage errors
(a bad argument, a missing folder or annotation file).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..errors import SaliencyTubesError
from .layouts import add_layout_arguments, describe_layouts, index, layout_options
from .video import DamagedVideo, VideoReadError, read_frames, video_info


def check_file(path: Path, backend: str = "auto", timeout: float | None = None) -> str | None:
    """Why ``path`` cannot be used (``None`` when it can). ``auto`` decodes every frame with PyAV first (see the
    module's help), then reads the file as training would."""
    try:
        info = video_info(path, backend, timeout)
        if info.num_frames <= 0:
            return f"{path}: no frames"
        ends = sorted({0, info.num_frames // 2, info.num_frames - 1})
        if backend == "auto" and not path.is_dir():
            try:  # PyAV decodes sequentially: reading the last frame decodes them all
                read_frames(path, ends, "pyav", timeout)
                return None
            except DamagedVideo as exc:
                return str(exc)
            except VideoReadError:
                pass  # PyAV cannot read it at all: decord may
        read_frames(path, ends, backend, timeout)
    except VideoReadError as exc:
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m saliency_tubes.data.check",
        description=__doc__.split("\n\n")[0],
        epilog=f"layouts (--data.layout):\n{describe_layouts()}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data.root", dest="data_root", required=True, help="dataset folder")
    add_layout_arguments(parser)
    parser.add_argument("--data.backend", dest="data_backend", default="auto", choices=("auto", "decord", "pyav"))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed per file")
    args = parser.parse_args(argv)
    layout, options = layout_options(args)
    try:
        with warnings.catch_warnings(record=True) as caught:  # missing annotated videos: shown as one line each
            warnings.simplefilter("always")
            train, names = index(layout, args.data_root, "train", options=options)
            val, _ = index(layout, args.data_root, "val", names, options)
    except SaliencyTubesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    paths = list(dict.fromkeys(s.path for s in train + val))  # EPIC segments share their long videos
    every = max(1, len(paths) // 20)
    bad = 0
    for i, path in enumerate(paths, 1):
        reason = check_file(path, args.data_backend, args.timeout)
        if reason:
            bad += 1
            print(reason, flush=True)
        if i % every == 0 or i == len(paths):
            print(f"checked {i}/{len(paths)} files, {bad} unreadable", file=sys.stderr, flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
