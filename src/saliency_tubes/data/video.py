"""Reading frames from video files: decord first, PyAV as the fallback.

A reader is opened per call and closed afterwards, so nothing is shared across DataLoader workers. A folder
of JPEG frames (sorted by name) is read like a video, decoding only the chosen frames.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import sys
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

# PyAV before decord: decord loads its own FFmpeg 4.1 with RTLD_GLOBAL, and PyAV loaded after it cannot open its
# libvpx encoders (VP8/VP9: "avcodec_open2 returned 22").
import av
import numpy as np

from ..errors import SaliencyTubesError, first_line

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
FRAME_EXTENSIONS = (".jpg", ".jpeg")

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
    rotation: int = 0  # display rotation (degrees counter-clockwise) already applied: frames and size are upright


class VideoReadError(SaliencyTubesError):
    """A file that cannot be decoded as a video."""


class DamagedVideo(VideoReadError):
    """The file opens, but frames it lists cannot be decoded (cut short, overwritten): a clip that needs them fails,
    while clips elsewhere in the file may read correctly, so the file as a whole is not written off."""


class DecodeTimeout(VideoReadError):
    """Decoding ran past its time limit: the file is given up on, not retried with the other backend."""


@contextlib.contextmanager
def _time_limit(seconds: float | None, path: Path):
    """Raise :class:`DecodeTimeout` once ``seconds`` have passed, so a pathological file cannot stall training.

    It uses ``SIGALRM``, so it only works in a process's main thread (DataLoader workers and the main
    process both run items there) on POSIX; elsewhere there is no limit. A Python signal handler runs
    between bytecodes, so the limit interrupts PyAV's per-frame loop and whatever follows a long C call,
    but not a single C call that never returns (one decord ``get_batch``); PyAV's own I/O timeout covers
    blocking reads inside FFmpeg.
    """
    if not seconds or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise DecodeTimeout(f"{path}: decoding took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
    def info(path: Path, timeout: float | None = None) -> VideoInfo:
        vr = _decord_reader(path)
        h, w = vr[0].shape[:2] if len(vr) else (0, 0)  # decord turns frames upright but does not say by how much
        return VideoInfo(len(vr), float(vr.get_avg_fps()), h, w, _PyAVBackend.rotation(path, timeout))

    @staticmethod
    def read(
        path: Path, choose: Callable[[int, float], np.ndarray], timeout: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        vr = _decord_reader(path)  # one reader gives both the frame count and the frames
        n = len(vr)
        if n == 0:
            raise VideoReadError(f"{path}: no frames")
        indices = np.asarray(choose(n, float(vr.get_avg_fps())), dtype=np.int64)
        if indices.max(initial=0) >= n:
            raise VideoReadError(f"{path}: frame {int(indices.max())} requested, video has {n}")
        try:
            with _native_stderr_silenced():
                return vr.get_batch(indices.tolist()).asnumpy(), indices
        except Exception as exc:  # decord's own error types
            raise DamagedVideo(f"{path}: damaged: frames {_span(indices)} cannot be decoded ({_reason(exc)})") from None


class _PyAVBackend:
    name = "pyav"

    @staticmethod
    def _header(path: Path, timeout: float | None) -> VideoInfo:
        """Frame count, rate and stored (not upright) size, without decoding."""
        with av.open(str(path), timeout=timeout) as container:
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            n = stream.frames
            if n <= 0:  # not in the header: count by demuxing (cheap, no decoding)
                n = sum(1 for p in container.demux(stream) if p.size > 0)
            return VideoInfo(n, float(rate), stream.codec_context.height, stream.codec_context.width)

    @staticmethod
    def rotation(path: Path, timeout: float | None = None) -> int:
        """The display rotation of the first frame (PyAV exposes the display matrix only on frames)."""
        with av.open(str(path), timeout=timeout) as container:
            first = next(container.decode(video=0), None)
        return _quarter_turns(first.rotation) * 90 if first is not None else 0

    @classmethod
    def info(cls, path: Path, timeout: float | None = None) -> VideoInfo:
        header, rotation = cls._header(path, timeout), cls.rotation(path, timeout)
        h, w = (header.width, header.height) if rotation % 180 else (header.height, header.width)
        return VideoInfo(header.num_frames, header.fps, h, w, rotation)

    @classmethod
    def read(
        cls, path: Path, choose: Callable[[int, float], np.ndarray], timeout: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        info = cls._header(path, timeout)
        indices = np.asarray(choose(info.num_frames, info.fps), dtype=np.int64)
        wanted = sorted(set(int(i) for i in indices))
        if wanted and wanted[0] < 0:
            raise VideoReadError(f"{path}: frame {wanted[0]} requested")
        decoded = dict(_PyAVFrames(path, timeout, listed=info.num_frames).frames(wanted))
        return np.stack([decoded[int(i)] for i in indices]), indices


class _PyAVFrames:
    """Chosen frames of one video, decoded with PyAV in increasing order, upright (as decord gives them).

    A wanted frame far ahead of the decoder (more than :attr:`SEEK_GAP` frames, or more than the longest keyframe
    interval seen so far) is reached by seeking to the keyframe at or before it and decoding forward, so a clip at
    the end of an hour-long video does not decode the hour before it. After a seek a frame's index comes from its
    timestamp: ``(pts - pts of frame 0) / ticks per frame``, with frame 0 the first frame a decode from the start
    yields (streams that do not start at 0 included). That is trusted only while it holds exactly: the stream has a
    constant frame rate (FFmpeg's base rate equals its average rate), every frame has a timestamp on that grid,
    decoding starts at a keyframe at or before the wanted frame, and frames follow one another with no index
    skipped or repeated (B-frames are reordered by the decoder, so its output is in presentation order). When
    any of this fails (variable frame rate, a seek that lands late or cannot be done, a gap) the video is decoded
    from the start, counting frames, as without seeking: never a wrong frame.
    """

    SEEK_GAP = 64
    frames_decoded = 0  # frames PyAV has handed over in this process (tests and benchmarks read it)

    def __init__(self, path: Path, timeout: float | None = None, seek: bool = True, listed: int | None = None):
        self.path, self.timeout, self.seek, self.listed = path, timeout, seek, listed
        self.seeks = 0  # seeks whose landing was accepted
        self.restarted = False  # a seek could not be trusted: the rest was decoded from the start

    def frames(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """``(index, H×W×3 RGB frame)`` for each of ``indices`` (increasing, no repeats)."""
        if not indices:
            return
        with av.open(str(self.path), timeout=self.timeout) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            seeking = _SeekingDecoder(container, stream, self.path, self.timeout) if self.seek else None
            try:
                yield from self._frames(container, stream, list(indices), seeking)
            except _SeekFailed as failed:  # decode the rest from the start, counting frames
                self.restarted = True
                yield from self._sequential(failed.next_index, list(indices))

    def _frames(self, container, stream, indices: list[int], seeking) -> Iterator[tuple[int, np.ndarray]]:
        decoder = self._decode(container, stream)
        position = -1  # index of the last frame decoded
        by_pts = False  # after a seek: indices from timestamps
        for k in indices:
            may_seek = seeking is not None
            while True:
                if may_seek and position >= 0 and k - position > max(self.SEEK_GAP, seeking.longest_gop):
                    may_seek = False  # one seek per wanted frame: the landing may be further back than the gap
                    if not seeking.ready():
                        seeking = None  # timestamps cannot be trusted: decode forward
                    else:
                        decoder, position, by_pts = seeking.seek_to(k, self._decode), -1, True
                        self.seeks += 1
                try:
                    frame = next(decoder, None)
                except av.FFmpegError as exc:  # a packet cut off or overwritten
                    raise DamagedVideo(f"{self.path}: damaged at frame {position + 1}: {_reason(exc)}") from None
                if frame is None:
                    if by_pts:  # the timestamps may be wrong rather than the video short: count from the start
                        raise _SeekFailed(k)
                    listed = f" of the {self.listed} frames its header lists (cut short?)" if self.listed else ""
                    raise DamagedVideo(
                        f"{self.path}: frame {k} requested, but the video ends after {position + 1}{listed}"
                    )
                if by_pts:
                    index = seeking.index_of(frame, position, k)
                else:
                    index = position + 1
                    if seeking is not None and index == 0:
                        seeking.first_frame(frame)
                if seeking is not None and frame.key_frame:
                    seeking.keyframe(index)
                position = index
                if frame.is_corrupt:  # pixels guessed by error concealment (e.g. where the data was zeroed)
                    raise DamagedVideo(f"{self.path}: damaged at frame {index}: the decoder had to guess its pixels")
                if index == k:
                    yield k, _upright(frame)
                    break
                if index > k:  # cannot happen in a count; after a seek it means the timestamps lied
                    raise _SeekFailed(k)

    def _sequential(self, start: int, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        rest = [i for i in indices if i >= start]
        with av.open(str(self.path), timeout=self.timeout) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            yield from self._frames(container, stream, rest, None)

    @classmethod
    def _decode(cls, container, stream) -> Iterator:
        for frame in container.decode(stream):
            cls.frames_decoded += 1
            yield frame


class _SeekFailed(Exception):
    """A seek (or the timestamps after it) cannot be trusted: decode from the start instead."""

    def __init__(self, next_index: int):
        super().__init__(next_index)
        self.next_index = next_index


class _SeekingDecoder:
    """Seeks by frame index and checks that what follows is the frame the sequential decode would give.

    A frame's index is its place in presentation order. Two ways to get it from a timestamp:

    - the grid: ``(pts - pts of frame 0) / ticks per frame``, where the header shows a constant frame rate with
      no frame missing (base rate = average rate, and frame count × ticks per frame = the stream's duration: MP4
      and MOV files have both in their index);
    - the table: every packet's timestamp, read by demuxing the whole file without decoding (containers without
      a frame count such as Matroska/WebM, and variable frame rates), sorted: index = rank. It is built on the
      first seek only.
    """

    LANDING_TRIES = (0, 1, 4)  # a late landing seeks again this many keyframe intervals earlier

    def __init__(self, container: av.container.InputContainer, stream: av.VideoStream, path: Path, timeout) -> None:
        self.container, self.stream, self.path, self.timeout = container, stream, path, timeout
        self.first_pts: int | None = None
        self.ticks: Fraction | None = None  # time_base units per frame, on the grid
        self.table: dict[int, int] | None = None  # pts -> index
        self.table_pts: list[int] = []
        self.usable = True
        self.last_key = -1
        self.longest_gop = 0  # the longest keyframe interval seen, in frames
        rate, base, tb = stream.average_rate, stream.base_rate, stream.time_base
        if rate and base and tb and rate == base and stream.frames > 0 and stream.duration:
            ticks = 1 / (Fraction(rate) * Fraction(tb))
            if stream.frames * ticks == stream.duration:
                self.ticks = ticks

    def first_frame(self, frame) -> None:
        """Frame 0 of the sequential decode: timestamps count from its own."""
        self.first_pts = frame.pts
        self.usable = frame.pts is not None

    def keyframe(self, index: int) -> None:
        if self.last_key >= 0 and index > self.last_key:
            self.longest_gop = max(self.longest_gop, index - self.last_key)
        self.last_key = index

    def ready(self) -> bool:
        """Whether frames can be found by timestamp (builds the table when the grid does not apply)."""
        if not self.usable or self.first_pts is None:
            return False
        if self.ticks is None and self.table is None:
            self.usable = self._build_table()
        return self.usable

    def _build_table(self) -> bool:
        with av.open(str(self.path), timeout=self.timeout) as container:
            stream = container.streams.video[0]
            pts = [p.pts for p in container.demux(stream) if p.size > 0 and not p.is_discard]
        if not pts or any(t is None for t in pts) or len(set(pts)) != len(pts):
            return False
        self.table_pts = sorted(pts)
        if self.table_pts[0] != self.first_pts:  # the decoder drops or adds frames the packets do not show
            return False
        self.table = {t: i for i, t in enumerate(self.table_pts)}
        return True

    def _index(self, frame) -> int | None:
        if frame.pts is None:
            return None
        if self.table is not None:
            return self.table.get(frame.pts)
        assert self.first_pts is not None and self.ticks is not None
        exact = (frame.pts - self.first_pts) / self.ticks
        index = round(exact)
        return index if abs(exact - index) < Fraction(1, 4) else None

    def _pts(self, index: int) -> int:
        if self.table is not None:
            return self.table_pts[min(index, len(self.table_pts) - 1)]
        assert self.first_pts is not None and self.ticks is not None
        return self.first_pts + int(index * self.ticks)

    def seek_to(self, k: int, decode: Callable) -> Iterator:
        """A decoder whose first frame is the keyframe at or before frame ``k`` (the frames before it are dropped)."""
        for back in self.LANDING_TRIES:
            target = max(k - back * max(self.longest_gop, _PyAVFrames.SEEK_GAP), 0)
            try:
                self.container.seek(self._pts(target), stream=self.stream, backward=True, any_frame=False)
            except Exception:  # the container cannot seek
                raise _SeekFailed(k) from None
            decoder = decode(self.container, self.stream)
            for frame in decoder:  # frames before the first keyframe may lack their references: not trusted
                if frame.key_frame:
                    break
            else:
                raise _SeekFailed(k)
            index = self._index(frame)
            if index is None or index < 0:
                raise _SeekFailed(k)
            if index <= k:
                self.last_key = index
                return itertools.chain([frame], decoder)
        raise _SeekFailed(k)

    def index_of(self, frame, previous: int, wanted: int) -> int:
        """The index of a frame decoded after a seek: it must follow ``previous`` (-1: the landing keyframe)."""
        index = self._index(frame)
        if index is None or (previous >= 0 and index != previous + 1):
            raise _SeekFailed(wanted)
        return index


def _upright(frame) -> np.ndarray:
    return np.rot90(frame.to_ndarray(format="rgb24"), _quarter_turns(frame.rotation))


class _FrameFolderBackend:
    """A folder of JPEG frames; its frame rate is unknown (reported as 0)."""

    name = "frames"

    @staticmethod
    def _files(path: Path) -> list[Path]:
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS and p.is_file())
        if not files:
            raise VideoReadError(f"{path}: no JPEG frames in the folder")
        return files

    @staticmethod
    def _decode(file: Path) -> np.ndarray:
        from PIL import Image

        try:
            with Image.open(file) as image:
                return np.asarray(image.convert("RGB"))
        except Exception as exc:  # PIL raises several types for bad images
            raise VideoReadError(f"{file}: cannot decode as JPEG ({_reason(exc)})") from None

    @classmethod
    def info(cls, path: Path, timeout: float | None = None) -> VideoInfo:
        files = cls._files(path)
        h, w = cls._decode(files[0]).shape[:2]
        return VideoInfo(len(files), 0.0, h, w)

    @classmethod
    def read(
        cls, path: Path, choose: Callable[[int, float], np.ndarray], timeout: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        files = cls._files(path)
        indices = np.asarray(choose(len(files), 0.0), dtype=np.int64)
        if indices.max(initial=0) >= len(files):
            raise VideoReadError(f"{path}: frame {int(indices.max())} requested, folder has {len(files)}")
        decoded = {int(i): cls._decode(files[i]) for i in set(indices.tolist())}
        if len({f.shape for f in decoded.values()}) > 1:
            raise VideoReadError(f"{path}: frames differ in size")
        return np.stack([decoded[int(i)] for i in indices]), indices


def _span(indices: np.ndarray) -> str:
    return f"{int(indices.min())}-{int(indices.max())}" if len(indices) else "(none)"


def _quarter_turns(degrees: float) -> int:
    return round(degrees / 90) % 4


def _reason(exc: Exception) -> str:
    """The decoder's own short reason, without paths, error numbers or decord's time stamp and source line."""
    reason = getattr(exc, "strerror", None) or first_line(exc)
    return re.sub(r"^(\[[\d:]+\] \S+:\d+: )+(Error: )?", "", reason)


def _detached(exc: VideoReadError) -> VideoReadError:
    """``exc`` without its traceback and the decoder error it replaced: those hold the decoder's frames, hence its
    codec context and the threads FFmpeg runs for it. Kept alive (an exception in a reference cycle lives until the
    garbage collector runs) across the fork of a DataLoader worker, that context is freed in the worker, where it
    joins threads that were never copied into it, and the worker hangs."""
    exc.__context__ = exc.__cause__ = None
    return exc.with_traceback(None)


def _backends(backend: str):
    if backend == "pyav" or decord is None:
        return [_PyAVBackend]
    if backend == "decord":
        return [_DecordBackend]
    return [_DecordBackend, _PyAVBackend]


def _run(method: str, path: Path, backend: str, *args, timeout: float | None = None):
    if path.is_dir():
        backends = [_FrameFolderBackend]
    else:
        _check_file(path)
        backends = _backends(backend)
    errors = []
    with _time_limit(timeout, path):
        for b in backends:
            try:
                with _native_stderr_silenced():  # FFmpeg's own lines about the damage: we report it in one line
                    return getattr(b, method)(path, *args, timeout)
            except DecodeTimeout as exc:
                raise _detached(exc) from None
            except VideoReadError as exc:
                errors.append(_detached(exc))
            except Exception as exc:  # decoders raise many types; any of them means "try the next one"
                errors.append(VideoReadError(f"{path}: cannot decode as video ({_reason(exc)})"))
    raise errors[-1]


def video_info(path: str | Path, backend: str = "auto", timeout: float | None = None) -> VideoInfo:
    """Frame count, frame rate and size of a video (or frame folder), given up on after ``timeout`` seconds."""
    return _run("info", Path(path), backend, timeout=timeout)


def read_frames(
    path: str | Path, indices: Sequence[int] | np.ndarray, backend: str = "auto", timeout: float | None = None
) -> np.ndarray:
    """Decode the frames at ``indices`` (any order, repeats allowed) as uint8 ``T×H×W×3`` RGB."""
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        raise ValueError("no frame indices given")
    return _run("read", Path(path), backend, lambda _n, _fps: indices, timeout=timeout)[0]


def read_clip(
    path: str | Path, choose: Callable[[int], np.ndarray], backend: str = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, indices)``: ``choose(frame count)`` picks the indices, decoded as uint8 ``T×H×W×3`` RGB, with
    the video opened once (decord) instead of once for the count and once for the frames."""
    return _run("read", Path(path), backend, lambda n, _fps: choose(n))


def read_video_clip(
    path: str | Path, choose: Callable[[int, float], np.ndarray], backend: str = "auto", timeout: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`read_clip` whose ``choose(frame count, fps)`` also gets the frame rate (0 for a frame folder), to
    turn a segment's times into frames; given up on with :class:`DecodeTimeout` after ``timeout`` seconds."""
    return _run("read", Path(path), backend, choose, timeout=timeout)


def find_videos(root: str | Path) -> list[Path]:
    """Video files under ``root`` (a file is returned as is), sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())


class VideoStream:
    """A video (or frame folder) opened once to read chosen frames in order, chunk by chunk, each frame decoded
    once: whole videos are explained in bounded memory. Opening reads only the header (frame count, frame rate).

    decord reads each chunk with one ``get_batch`` from one reader; PyAV (the fallback when decord cannot open the
    file, or ``backend="pyav"``) runs one decode over the whole request, seeking to its first frame (and across long
    gaps) rather than decoding from frame 0.
    """

    def __init__(self, path: str | Path, backend: str = "auto"):
        self.path, self.backend = Path(path), backend
        self._reader = None
        if self.path.is_dir():
            self.num_frames, self.fps = len(_FrameFolderBackend._files(self.path)), 0.0
            return
        _check_file(self.path)
        if backend != "pyav" and decord is not None:
            try:
                self._reader = _decord_reader(self.path)
            except Exception as exc:  # decord refuses this file: PyAV may read it
                if backend == "decord":
                    raise VideoReadError(f"{self.path}: cannot decode as video ({_reason(exc)})") from None
        if self._reader is not None:
            self.num_frames, self.fps = len(self._reader), float(self._reader.get_avg_fps())
            return
        try:
            header = _PyAVBackend._header(self.path, None)
        except Exception as exc:
            raise VideoReadError(f"{self.path}: cannot decode as video ({_reason(exc)})") from None
        self.num_frames, self.fps = header.num_frames, header.fps

    def chunks(self, indices: Sequence[int] | np.ndarray, chunk: int = 32) -> Iterator[np.ndarray]:
        """uint8 ``n×H×W×3`` RGB frames at ``indices`` (increasing), up to ``chunk`` frames at a time."""
        indices = np.asarray(indices, dtype=np.int64)
        if indices.size == 0 or np.any(np.diff(indices) <= 0):
            raise ValueError("VideoStream.chunks needs increasing frame indices")
        if indices[-1] >= self.num_frames:
            raise VideoReadError(f"{self.path}: frame {int(indices[-1])} requested, video has {self.num_frames}")
        parts = [indices[i : i + chunk] for i in range(0, len(indices), chunk)]
        if self.path.is_dir():
            for part in parts:
                yield read_frames(self.path, part)
        elif self._reader is not None:
            for k, part in enumerate(parts):
                try:
                    with _native_stderr_silenced():
                        batch = self._reader.get_batch(part.tolist()).asnumpy()
                except Exception as exc:
                    if k == 0 and self.backend != "decord":  # decord opens some files it cannot decode (e.g.
                        self._reader = None  # widths 16/24/48/72): PyAV reads the whole request instead
                        yield from self._pyav_chunks(indices, chunk)
                        return
                    raise VideoReadError(f"{self.path}: cannot decode as video ({_reason(exc)})") from None
                yield batch
        else:
            yield from self._pyav_chunks(indices, chunk)

    def _pyav_chunks(self, indices: np.ndarray, chunk: int) -> Iterator[np.ndarray]:
        """One PyAV decode over the whole request; it seeks to the first wanted frame (and across long gaps)."""
        batch: list[np.ndarray] = []
        frames = _PyAVFrames(self.path, listed=self.num_frames).frames(indices.tolist())
        while True:
            try:
                with _native_stderr_silenced():  # FFmpeg's own lines about damage: we report it in one line
                    item = next(frames, None)
            except VideoReadError:
                raise
            except Exception as exc:
                raise VideoReadError(f"{self.path}: cannot decode as video ({_reason(exc)})") from None
            if item is not None:
                batch.append(item[1])
            if batch and (len(batch) == chunk or item is None):
                yield np.stack(batch)
                batch = []
            if item is None:
                return
