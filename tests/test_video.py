import numpy as np
import pytest

from saliency_tubes.data import VideoReadError, read_frames, video_info
from saliency_tubes.videoio import VideoWriter, write_video

from helpers.decoders import backends


def _frames(n=6, h=24, w=40):
    f = np.zeros((n, h, w, 3), np.uint8)
    for t in range(n):
        f[t, :, : 4 * (t + 1)] = 200  # frame t has a bar of width 4(t+1): frames are told apart by it
    return f


def _bar_width(frame):
    return int((frame[frame.shape[0] // 2, :, 0] > 100).sum())


@pytest.mark.parametrize("backend", backends("auto", "decord", "pyav"))
def test_any_order_and_repeats(tmp_path, backend):
    path = write_video(tmp_path / "v.mp4", _frames())
    got = read_frames(path, [5, 0, 3, 3], backend=backend)
    assert got.shape == (4, 24, 40, 3)
    assert [round(_bar_width(f) / 4) for f in got] == [6, 1, 4, 4]


def test_odd_size_is_padded_and_frame_count_kept(tmp_path):
    path = write_video(tmp_path / "odd.mp4", np.full((7, 97, 131, 3), 90, np.uint8), fps=24000 / 1001)
    info = video_info(path)
    assert (info.num_frames, info.height, info.width) == (7, 98, 132)
    assert abs(info.fps - 23.976) < 1e-3


def test_streaming_writer_rejects_size_change(tmp_path):
    with VideoWriter(tmp_path / "s.mp4") as w:
        w.write(np.zeros((2, 16, 16, 3), np.uint8))
        with pytest.raises(ValueError):
            w.write(np.zeros((16, 18, 3), np.uint8))
    assert w.frames_written == 2
    assert video_info(tmp_path / "s.mp4").num_frames == 2


@pytest.mark.parametrize("content", [b"", b"this is not a video\n", None])
def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path, content):
    path = tmp_path / "bad.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(VideoReadError) as err:
        read_frames(path, [0])
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_truncated_file_fails_cleanly(tmp_path):
    good = write_video(tmp_path / "good.mp4", _frames(20))
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    with pytest.raises(VideoReadError):
        read_frames(cut, [19])


@pytest.mark.parametrize("backend", backends("decord", "pyav"))
def test_out_of_range_frame(tmp_path, backend):
    path = write_video(tmp_path / "v.mp4", _frames())
    with pytest.raises(VideoReadError, match="requested"):
        read_frames(path, [6], backend=backend)


@pytest.mark.parametrize("backend", backends("decord", "pyav"))
def test_read_clip_chooses_indices_from_the_frame_count(tmp_path, backend):
    from saliency_tubes.data import read_clip

    path = write_video(tmp_path / "v.mp4", _frames())
    counts = []
    frames, indices = read_clip(path, lambda n: counts.append(n) or np.array([n - 1, 0]), backend=backend)
    assert counts == [6] and indices.tolist() == [5, 0]
    assert [round(_bar_width(f) / 4) for f in frames] == [6, 1]
