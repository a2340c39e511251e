"""The whole-video pipeline: each frame decoded once, each half-overlapping clip through the model once, the
prediction from those clips, and the files of the one writer."""

import json

import numpy as np
import pytest
import torch

from saliency_tubes.config import DataConfig
from saliency_tubes.data.video import VideoStream
from saliency_tubes.explain import VideoExplainer, overlapping_clips, write_explanation
from saliency_tubes.models import create_model
from saliency_tubes.models.io import ModelInfo
from saliency_tubes.videoio import write_video

DATA = DataConfig(clip_len=4, stride=2, input_size=32)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """31 frames of 40×80: a bright square moving right over noise."""
    rng = np.random.default_rng(0)
    frames = (rng.random((31, 40, 80, 3)) * 60).astype(np.uint8)
    for t in range(31):
        frames[t, 12:28, 2 * t : 2 * t + 16] = 230
    return write_video(tmp_path_factory.mktemp("v") / "moving.mp4", frames, fps=10)


@pytest.fixture()
def model():
    torch.manual_seed(0)
    return create_model("resnet3d_10", 3, width=4, conv1_t_size=3, no_max_pool=True, stage_t_stride=1).eval()


def _info():
    return ModelInfo("resnet3d_10", 3, ["a", "b", "c"], DATA)


class _Counting:
    """Counts what our own reader hands out and how many clips reach the model's first stage."""

    def __init__(self, monkeypatch, model):
        self.opened, self.decoded, self.clips = 0, [], 0
        real_init, real_chunks = VideoStream.__init__, VideoStream.chunks

        def init(stream, *args, **kwargs):
            self.opened += 1
            real_init(stream, *args, **kwargs)

        def chunks(stream, indices, chunk=32):
            for part in real_chunks(stream, indices, chunk):
                self.decoded += [len(part)]
                yield part

        monkeypatch.setattr(VideoStream, "__init__", init)
        monkeypatch.setattr(VideoStream, "chunks", chunks)
        model.layer1.register_forward_hook(lambda _m, inputs, _o: setattr(self, "clips", self.clips + len(inputs[0])))


def test_cam_decodes_each_frame_once_and_runs_each_clip_once(monkeypatch, model, video):
    count = _Counting(monkeypatch, model)
    result = VideoExplainer(model, _info(), batch_size=3).explain(video, topk=2)
    explained = np.arange(0, 31, 2)
    positions = overlapping_clips(len(explained), DATA.clip_len)
    assert count.opened == 1 and sum(count.decoded) == len(explained)  # each frame once, one reader
    assert count.clips == len(positions)  # one forward pass per half-overlapping clip, prediction included
    np.testing.assert_array_equal(result.frame_indices, explained)
    assert result.frames.shape == (16, 40, 80, 3) and result.tubes.shape == (2, 16, 32, 64)

    # the prediction is the mean softmax of exactly those clips
    from saliency_tubes.data.transforms import normalize, resize_short_side
    from saliency_tubes.data.video import read_frames

    frames = torch.from_numpy(read_frames(video, explained)).permute(0, 3, 1, 2)
    small = resize_short_side(frames, 32).permute(0, 2, 3, 1)
    clips = normalize(small[torch.from_numpy(positions)], DATA.mean, DATA.std)
    with torch.no_grad():
        expected = model(clips).softmax(-1).mean(0)
    torch.testing.assert_close(result.probs, expected, rtol=1e-4, atol=1e-5)
    assert result.targets == expected.topk(2).indices.tolist()


@pytest.mark.parametrize("given", [None, 1])
def test_gradient_methods_take_one_extra_forward_only_when_they_must_find_the_target(monkeypatch, model, video, given):
    count = _Counting(monkeypatch, model)
    result = VideoExplainer(model, _info(), method="gradcam", batch_size=4).explain(video, target=given)
    clips = len(overlapping_clips(16, DATA.clip_len))
    assert count.clips == (2 * clips if given is None else clips)
    assert result.method == "gradcam" and result.tubes.shape == (1, 16, 32, 64)
    assert given is None or result.targets == [given]
    assert result.tubes.max() == 1 and result.tubes.min() >= 0


def test_long_videos_keep_their_frames_in_a_temporary_file(monkeypatch, model, video):
    from saliency_tubes.explain import video as pipeline

    monkeypatch.setattr(pipeline, "IN_MEMORY_BYTES", 1000)
    small = VideoExplainer(model, _info()).explain(video)
    assert isinstance(small.frames, np.memmap)
    monkeypatch.undo()
    big = VideoExplainer(model, _info()).explain(video)
    assert not isinstance(big.frames, np.memmap)
    np.testing.assert_array_equal(np.asarray(small.frames), big.frames)
    torch.testing.assert_close(small.tubes, big.tubes, rtol=0, atol=0)


def test_the_writer_writes_every_file_at_the_frames_resolution(model, video, tmp_path):
    explanation = VideoExplainer(model, _info()).explain(video, topk=2)
    result = write_explanation(explanation, tmp_path / "out")
    saliency = np.load(tmp_path / "out" / "saliency.npy")
    assert saliency.shape == (16, 40, 80) and saliency.dtype == np.float16
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == result
    assert result["frames"] == list(range(0, 31, 2)) and len(result["targets"]) == 2
    second = tmp_path / "out" / result["targets"][1]["dir"]
    assert (second / "overlay.mp4").is_file() and (second / "tube.png").is_file()
    assert sorted(p.name for p in (tmp_path / "out" / "focus").iterdir())[:2] == ["000000.png", "000002.png"]
    assert result["clip_predictions"] and len(result["clips"]) == len(overlapping_clips(16, 4))


def test_a_video_decord_opens_but_cannot_decode_is_read_by_pyav_once(tmp_path):
    """decord 0.6 opens 72-pixel-wide H.264 but fails to decode it; the stream falls back to one PyAV pass. With
    decord fixed or absent the stream must still give PyAV's frames."""
    frames = np.random.default_rng(1).integers(0, 255, (9, 32, 72, 3), dtype=np.uint8)
    path = write_video(tmp_path / "w72.mp4", frames, fps=5)
    stream = VideoStream(path)
    got = np.concatenate(list(stream.chunks([0, 3, 4, 8], chunk=3)))
    assert got.shape == (4, 32, 72, 3)
    from saliency_tubes.data.video import read_frames

    np.testing.assert_array_equal(got, read_frames(path, [0, 3, 4, 8], backend="pyav"))
