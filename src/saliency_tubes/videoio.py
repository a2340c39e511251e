"""H.264 MP4 writing with PyAV, shared by the synthetic dataset and the renderers."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


class VideoWriter:
    """Stream uint8 ``H×W×3`` RGB frames into an H.264 MP4 (yuv420p, which needs even sizes: an odd height
    or width is padded by repeating the last row or column).

    ``preset`` is x264's speed/compression trade-off: ``ultrafast`` encodes about 4× faster than ``veryfast``
    for somewhat larger files, which suits the small videos logged every epoch.
    """

    def __init__(self, path: str | Path, fps: float = 8.0, crf: int = 18, preset: str = "veryfast"):
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._av = av
        container = av.open(str(self.path), mode="w")
        self._container: av.container.OutputContainer | None = container
        self._stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        self._stream.pix_fmt = "yuv420p"
        # mbtree=0: on CPUs with AVX-512, x264's macroblock-tree rate control reads memory it never wrote, so the same
        # frames gave different bytes (decoded pixels up to 27 apart) depending on what the process had allocated
        # before; without it (or without AVX-512) the output depends on the frames alone. threads=1: x264's output
        # also depends on its thread count, which "auto" would take from the machine's cores.
        self._stream.options = {"crf": str(crf), "preset": preset, "threads": "1", "mbtree": "0"}
        self._size: tuple[int, int] | None = None
        self.frames_written = 0

    def write(self, frames: np.ndarray) -> None:
        """Append one frame (H×W×3) or several (N×H×W×3)."""
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"expected uint8 N×H×W×3 frames, got {frames.dtype} {frames.shape}")
        if self._size is None:
            self._size = frames.shape[1:3]
            self._stream.height, self._stream.width = (s + s % 2 for s in self._size)
        elif frames.shape[1:3] != self._size:
            raise ValueError(f"frame size {frames.shape[1:3]} differs from the first frame's {self._size}")
        pad_h, pad_w = self._size[0] % 2, self._size[1] % 2
        if pad_h or pad_w:
            frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        container = self._container
        assert container is not None, "write() after close()"
        for frame in frames:
            for packet in self._stream.encode(self._av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
            self.frames_written += 1

    def close(self) -> None:
        if self._container is None:
            return
        try:
            if self._size is not None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(
    path: str | Path, frames: np.ndarray, fps: float = 8.0, crf: int = 18, preset: str = "veryfast"
) -> Path:
    """Encode uint8 ``N×H×W×3`` RGB frames as an H.264 MP4 file."""
    with VideoWriter(path, fps=fps, crf=crf, preset=preset) as writer:
        writer.write(frames)
    return writer.path
