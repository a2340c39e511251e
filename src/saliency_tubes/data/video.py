"""Reading frames from video files: decord first, PyAV as the fallback.

A reader is opened per call and closed afterwards, so nothing is shared across DataLoader workers.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import SaliencyTubesError, first_line

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")

try:  # decord has no wheels for some platforms (e.g. ARM); PyAV covers them.
    import decord

    decord.bridge.set_bridge("native")
except ImportError:  # pragma: no cover - depends on the platform
    decord = None


@dataclass(frozen=True)
class VideoInfo:
    num_frames: int
    fps: float
    height: int
    width: int


class VideoReadError(SaliencyTubesError):
    """A file that cannot be decoded as a video."""


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VideoReadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise VideoReadError(f"{path}: empty file")


@contextlib.contextmanager
def _native_stderr_silenced():
    """decord (and the FFmpeg inside it) print their own errors straight to file descriptor 2; a bad file
    must come out as one clear line from us instead, so those are dropped while decord works."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, ValueError, OSError):  # no real stderr (e.g. captured): nothing to silence
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(devnull)
        os.close(saved)


def _decord_reader(path: Path):
    with _native_stderr_silenced():
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)


class _DecordBackend:
    name = "decord"

    @staticmethod
    def info(path: Path) -> VideoInfo:
        vr = _decord_reader(path)
        h, w = vr[0].shape[:2] if len(vr) else (0, 0)
        return VideoInfo(len(vr), float(vr.get_avg_fps()), h, w)

    @staticmethod
    def read(path: Path, choose: Callable[[int], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        vr = _decord_reader(path)  # one reader gives both the frame count and the frames
        n = len(vr)
        if n == 0:
            raise VideoReadError(f"{path}: no frames")
        indices = np.asarray(choose(n), dtype=np.int64)
        if indices.max(initial=0) >= n:
            raise VideoReadError(f"{path}: frame {int(indices.max())} requested, video has {n}")
        with _native_stderr_silenced():
            return vr.get_batch(indices.tolist()).asnumpy(), indices


class _PyAVBackend:
    name = "pyav"

    @staticmethod
    def info(path: Path) -> VideoInfo:
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            n = stream.frames
            if n <= 0:  # not in the header: count by demuxing (cheap, no decoding)
                n = sum(1 for p in container.demux(stream) if p.size > 0)
            return VideoInfo(n, float(rate), stream.codec_context.height, stream.codec_context.width)

    @classmethod
    def read(cls, path: Path, choose: Callable[[int], np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        import av

        indices = np.asarray(choose(cls.info(path).num_frames), dtype=np.int64)
        wanted = set(int(i) for i in indices)
        last = max(wanted, default=-1)
        decoded: dict[int, np.ndarray] = {}
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for i, frame in enumerate(container.decode(stream)):
                if i in wanted:
                    decoded[i] = frame.to_ndarray(format="rgb24")
                if i >= last:
                    break
        missing = wanted - decoded.keys()
        if missing:
            raise VideoReadError(f"{path}: frame {min(missing)} requested, video has {len(decoded) and max(decoded) + 1}")
        return np.stack([decoded[int(i)] for i in indices]), indices


def _reason(exc: Exception) -> str:
    """The decoder's own short reason, without paths and error numbers."""
    return getattr(exc, "strerror", None) or first_line(exc)


def _backends(backend: str):
    if backend == "pyav" or decord is None:
        return [_PyAVBackend]
    if backend == "decord":
        return [_DecordBackend]
    return [_DecordBackend, _PyAVBackend]


def _run(method: str, path: Path, backend: str, *args):
    _check_file(path)
    errors = []
    for b in _backends(backend):
        try:
            return getattr(b, method)(path, *args)
        except VideoReadError as exc:
            errors.append(exc)
        except Exception as exc:  # decoders raise many types; any of them means "try the next one"
            errors.append(VideoReadError(f"{path}: cannot decode as video ({_reason(exc)})"))
    raise errors[-1]


def video_info(path: str | Path, backend: str = "auto") -> VideoInfo:
    """Frame count, frame rate and size of a video."""
    return _run("info", Path(path), backend)


def read_frames(path: str | Path, indices: Sequence[int] | np.ndarray, backend: str = "auto") -> np.ndarray:
    """Decode the frames at ``indices`` (any order, repeats allowed) as uint8 ``T×H×W×3`` RGB."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        raise ValueError("no frame indices given")
    return _run("read", Path(path), backend, lambda _n: indices)[0]


def read_clip(path: str | Path, choose: Callable[[int], np.ndarray], backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """``(frames, indices)``: ``choose(frame count)`` picks the indices, decoded as uint8 ``T×H×W×3`` RGB, with
    the video opened once (decord) instead of once for the count and once for the frames."""
    return _run("read", Path(path), backend, choose)


def find_videos(root: str | Path) -> list[Path]:
    """Video files under ``root`` (a file is returned as is), sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
