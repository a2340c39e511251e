"""PyAV seeks to the keyframe before the first wanted frame instead of decoding from frame 0, and gives exactly the
frames a decode from the start gives: H.264 at GOP 12 and 250, with B-frames (x264's default) and without, a stream
that does not start at 0, variable frame rate, a Matroska file with a dropped frame, and a rotated phone video."""

from fractions import Fraction

import av
import numpy as np
import pytest

from saliency_tubes.data import read_clip, read_frames
from saliency_tubes.data import video as video_module
from saliency_tubes.data.video import VideoStream, _PyAVFrames

N, H, W = 600, 32, 64


def _barcode(t: int) -> np.ndarray:
    """Frame ``t`` shows ``t`` in binary (10 blocks of 16×10, white = 1) and a grey strip of ``7·t mod 256``."""
    f = np.full((H, W, 3), 60, np.uint8)
    for bit in range(10):
        if (t >> bit) & 1:
            r, c = divmod(bit, 5)
            f[r * 16 : (r + 1) * 16, c * 12 : c * 12 + 10] = 230
    f[:, 60:] = (7 * t) % 256
    return f


def _read_barcode(frame: np.ndarray) -> int:
    return sum(1 << b for b in range(10) if frame[(b // 5) * 16 + 8, (b % 5) * 12 + 5].mean() > 145)


def _write(path, gop=12, bframes=True, pts_of=None, rotation=0, n=N):
    """H.264 with a keyframe every ``gop`` frames exactly and x264's default B-frames (``bframes=False``: none);
    ``pts_of(t)`` sets timestamps in ms."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        x264 = f"keyint={gop}:min-keyint={gop}:scenecut=0" + ("" if bframes else ":bframes=0")
        stream.options = {"crf": "18", "preset": "veryfast", "threads": "1", "mbtree": "0", "x264-params": x264}
        if rotation:
            stream.set_display_rotation(rotation)
        if pts_of is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for t in range(n):
            frame = av.VideoFrame.from_ndarray(_barcode(t), format="rgb24")
            if pts_of is not None:
                frame.pts, frame.time_base = pts_of(t), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


VIDEOS = {
    "gop12_bframes": dict(gop=12),
    "gop12_no_bframes": dict(gop=12, bframes=False),
    "gop250_bframes": dict(gop=250),
    "gop250_no_bframes": dict(gop=250, bframes=False),
    "starts_at_2s": dict(gop=12, pts_of=lambda t: 2000 + 40 * t),
    "variable_rate": dict(gop=12, pts_of=lambda t: 40 * t + 20 * (t // 3)),
    "rotated_90": dict(gop=12, rotation=90),
}
CLIPS = {"start": range(0, 32, 2), "middle": range(292, 308), "end": range(568, 600, 2)}


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("seek")
    made = {name: _write(root / f"{name}.mp4", **kwargs) for name, kwargs in VIDEOS.items()}
    # Matroska stores no frame count; frame 300 is dropped (a 80 ms gap), so index != (pts - start) / 40 ms after it
    made["mkv_dropped_frame"] = _write(root / "dropped.mkv", gop=12, pts_of=lambda t: 40 * t + 40 * (t > 300))
    for name in ("gop12_bframes", "gop12_no_bframes", "gop250_bframes", "gop250_no_bframes"):  # as named
        with av.open(str(made[name])) as container:
            packets = [p for p in container.demux(video=0) if p.size]
        keyframes = sorted(round(p.pts * p.time_base * 25) for p in packets if p.is_keyframe)
        assert keyframes == list(range(0, N, VIDEOS[name]["gop"])), name
        assert any(p.pts != p.dts for p in packets) == VIDEOS[name].get("bframes", True), name  # reordered
    return made


def _full_decode(path) -> np.ndarray:
    """Every frame, decoded from the start without seeking, upright."""
    with av.open(str(path)) as container:
        return np.stack(
            [np.rot90(f.to_ndarray(format="rgb24"), round(f.rotation / 90) % 4) for f in container.decode(video=0)]
        )


@pytest.fixture(scope="module")
def reference(videos):
    frames = {name: _full_decode(path) for name, path in videos.items()}
    for name, f in frames.items():  # the reference itself shows frame t at index t
        upright = f if name != "rotated_90" else np.rot90(f, -1, axes=(1, 2))
        assert len(f) == N and [_read_barcode(x) for x in upright[::37]] == list(range(0, N, 37)), name
    return frames


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("name", [*VIDEOS, "mkv_dropped_frame"])
def test_seeking_reads_the_frames_a_full_decode_gives(videos, reference, name, clip):
    path, indices = videos[name], np.array(CLIPS[clip])
    expected = reference[name][indices]
    np.testing.assert_array_equal(read_frames(path, indices, backend="pyav"), expected)
    frames, chosen = read_clip(path, lambda n: indices, backend="pyav")
    assert chosen.tolist() == indices.tolist()
    np.testing.assert_array_equal(frames, expected)
    stream = VideoStream(path, backend="pyav")
    np.testing.assert_array_equal(np.concatenate(list(stream.chunks(indices, chunk=5))), expected)


@pytest.mark.parametrize("name", ["gop12_bframes", "gop250_no_bframes", "variable_rate", "mkv_dropped_frame"])
def test_sparse_and_repeated_indices_across_the_whole_video(videos, reference, name):
    """Indices far apart: the reader seeks between them (and back to nothing already passed)."""
    indices = np.array([599, 5, 100, 101, 340, 5, 470, 471, 472, 598])
    np.testing.assert_array_equal(read_frames(videos[name], indices, backend="pyav"), reference[name][indices])
    increasing = np.unique(indices)
    chunks = list(VideoStream(videos[name], backend="pyav").chunks(increasing, chunk=3))
    np.testing.assert_array_equal(np.concatenate(chunks), reference[name][increasing])


def _decoded(path, indices, seek=True) -> tuple[int, _PyAVFrames]:
    """How many frames PyAV handed over to read ``indices``."""
    reader = _PyAVFrames(path, seek=seek)
    before = _PyAVFrames.frames_decoded
    dict(reader.frames(list(indices)))
    return _PyAVFrames.frames_decoded - before, reader


@pytest.mark.parametrize("name,gop", [("gop12_bframes", 12), ("gop250_bframes", 250), ("mkv_dropped_frame", 12)])
def test_a_clip_at_the_end_decodes_one_keyframe_interval_not_the_video(videos, name, gop):
    end = CLIPS["end"]
    without, _ = _decoded(videos[name], end, seek=False)
    with_seek, reader = _decoded(videos[name], end)
    assert without == 599  # the whole video up to the last wanted frame
    # frame 0 (its timestamp anchors the others), then from the keyframe at or before frame 568 to frame 598, plus
    # the frames a B-frame decoder outputs before the keyframe (dropped as untrusted)
    assert with_seek <= 1 + gop + len(range(568, 599)) + 3, with_seek
    assert reader.seeks == 1 and not reader.restarted
    start, _ = _decoded(videos[name], CLIPS["start"])
    assert start == 31  # a clip at the start decodes just up to its last frame


def test_a_seek_that_lands_in_the_wrong_place_falls_back_to_decoding_from_the_start(videos, reference, monkeypatch):
    """Timestamps that point past the end (as a broken index would): every landing fails, the rest is decoded
    from frame 0, and the frames are still right."""
    monkeypatch.setattr(video_module._SeekingDecoder, "_pts", lambda self, index: 10**9)
    indices = [3, 400, 401, 599]
    count, reader = _decoded(videos["gop12_bframes"], indices)
    assert reader.restarted and reader.seeks == 0
    assert count >= N
    got = read_frames(videos["gop12_bframes"], indices, backend="pyav")
    np.testing.assert_array_equal(got, reference["gop12_bframes"][indices])
