"""Damaged copies of a good MP4: its index (moov) moved to the front, then the media data cut or partly zeroed.

A plain MP4 written by PyAV has its moov atom at the end, so cutting it removes the index and the file fails at
open; a faststart file keeps its index when cut, so the frames it lists go missing while it still opens.
"""

from pathlib import Path

import av


def _boxes(data: bytes) -> dict[str, tuple[int, int]]:
    """Top-level MP4 boxes: name → (offset, size)."""
    boxes, at = {}, 0
    while at + 8 <= len(data):
        size, name = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8].decode("latin-1")
        boxes[name] = (at, size)
        if size < 8:
            break
        at += size
    return boxes


def faststart(src: Path, dst: Path) -> Path:
    """``src`` remuxed (no re-encoding) with the moov atom before the media data."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    boxes = _boxes(dst.read_bytes())
    assert boxes["moov"][0] < boxes["mdat"][0], "the index is not at the front"
    return dst


def _media(data: bytes) -> tuple[int, int]:
    """Where the media data (mdat's payload) starts and ends."""
    at, size = _boxes(data)["mdat"]
    return at + 8, at + size


def cut_in_data(src: Path, dst: Path, fraction: float = 0.5) -> Path:
    """A faststart copy of ``src`` cut ``fraction`` of the way into its media data: the header is intact."""
    data = faststart(src, dst).read_bytes()
    start, end = _media(data)
    dst.write_bytes(data[: start + int(fraction * (end - start))])
    return dst


def zero_middle(src: Path, dst: Path, begin: float = 0.25, end: float = 0.75) -> Path:
    """A faststart copy of ``src`` whose media data from ``begin`` to ``end`` (fractions of it) is zeroed, as in a
    pre-allocated download that never finished: size and index intact."""
    data = bytearray(faststart(src, dst).read_bytes())
    start, stop = _media(bytes(data))
    a, b = start + int(begin * (stop - start)), start + int(end * (stop - start))
    data[a:b] = bytes(b - a)
    dst.write_bytes(bytes(data))
    return dst
