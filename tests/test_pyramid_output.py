"""What the writer makes of a multi-layer explanation: pyramid.npz (each depth at its own resolution), pyramid.png
(one row per depth, shallow → deep, the fused tube last) and result.json's list of files; read back from disk."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from saliency_tubes.config import DataConfig
from saliency_tubes.explain import VideoExplainer, write_explanation
from saliency_tubes.explain.output import PYRAMID_KEYS
from saliency_tubes.models import create_model
from saliency_tubes.models.io import ModelInfo
from saliency_tubes.render.pyramid import evenly_spaced, render_pyramid
from saliency_tubes.report import write_explanation_index
from saliency_tubes.videoio import write_video

DATA = DataConfig(clip_len=4, stride=2, input_size=32)
GAP, CELL_H = 3, 96  # render_pyramid's layout


@pytest.fixture(scope="module")
def explained(tmp_path_factory):
    """A real video (H.264) through the real pipeline, top-2 targets: tubes 2×16×32×64 over 40×80 frames."""
    rng = np.random.default_rng(0)
    frames = (rng.random((31, 40, 80, 3)) * 60).astype(np.uint8)
    for t in range(31):
        frames[t, 12:28, 2 * t : 2 * t + 16] = 230
    video = write_video(tmp_path_factory.mktemp("v") / "moving.mp4", frames, fps=10)
    torch.manual_seed(0)
    model = create_model("resnet3d_10", 3, width=4, conv1_t_size=3, no_max_pool=True, stage_t_stride=1).eval()
    return VideoExplainer(model, ModelInfo("resnet3d_10", 3, ["a", "b", "c"], DATA)).explain(video, topk=2)


def _halves(k: int, n: int, h: int, w: int, hot: str) -> np.ndarray:
    """K×N×h×w maps that are 1 on the ``hot`` (left or right) half and 0 on the other."""
    a = np.zeros((k, n, h, w), np.float32)
    if hot == "left":
        a[..., : w // 2] = 1
    else:
        a[..., w // 2 :] = 1
    return a


def _with_layers(e, layers):
    e.layers = layers
    return e


def _cells(image: np.ndarray, rows: int, count: int, aspect: float) -> list[list[np.ndarray]]:
    """The rows × count cells of a pyramid image, located from its size (cell height and gap are fixed)."""
    cell_w = max(8, round(CELL_H * aspect))
    top = image.shape[0] - rows * (CELL_H + GAP) - GAP
    label_w = image.shape[1] - count * (cell_w + GAP) - GAP
    return [
        [
            image[
                top + r * (CELL_H + GAP) : top + r * (CELL_H + GAP) + CELL_H,
                label_w + GAP + c * (cell_w + GAP) : label_w + GAP + c * (cell_w + GAP) + cell_w,
            ]
            for c in range(count)
        ]
        for r in range(rows)
    ]


def test_a_multi_layer_explanation_writes_its_pyramid_per_target(explained, tmp_path):
    e = explained
    k, n = len(e.targets), len(e.frame_indices)
    layers = {
        "layer2": _halves(k, n, 16, 32, "left"),  # shallow: fine grid, hot on the left
        "layer3": _halves(k, n, 8, 16, "right"),
        "layer4": np.linspace(0, 1, k * n * 4 * 8, dtype=np.float32).reshape(k, n, 4, 8),  # deep: coarse
    }
    result = write_explanation(_with_layers(e, layers), tmp_path / "out", focus=False)

    dirs = [tmp_path / "out" / t["dir"] for t in result["targets"]]
    assert len(dirs) == 2
    for j, d in enumerate(dirs):
        with np.load(d / "pyramid.npz") as npz:
            assert set(npz.files) == {*layers, *PYRAMID_KEYS}
            assert list(npz["layers"]) == ["layer2", "layer3", "layer4"]  # shallow → deep
            np.testing.assert_array_equal(npz["frame_indices"], e.frame_indices)
            assert int(npz["target"]) == e.targets[j] and str(npz["target_class"]) == e.class_names[e.targets[j]]
            for name, a in layers.items():
                assert npz[name].shape == a.shape[1:] and npz[name].dtype == np.float16
                np.testing.assert_allclose(npz[name], a[j], atol=1e-3)  # float16
    assert result["pyramid"]["layers"] == [
        {"name": "layer2", "grid": [16, 32]},
        {"name": "layer3", "grid": [8, 16]},
        {"name": "layer4", "grid": [4, 8]},
    ]
    shown = result["pyramid"]["frames"]
    assert shown == [int(e.frame_indices[p]) for p in evenly_spaced(n, 6)] and shown[0] == 0 and shown[-1] == 30

    # result.json lists what was written, and every file it lists is there
    assert "pyramid.png" in result["files"] and "pyramid.npz" in result["files"]
    assert f"{result['targets'][1]['dir']}/pyramid.png" in result["files"]
    assert all((tmp_path / "out" / f).exists() for f in result["files"])
    assert json.loads((tmp_path / "out" / "result.json").read_text()) == result

    # pyramid.png: 3 depths + the fused tube, 6 frames; the left-hot layer is red on the left, the right-hot one on
    # the right (JET: 1 is dark red, 0 dark blue), so the rows are the depths in order
    image = np.asarray(Image.open(dirs[0] / "pyramid.png").convert("RGB"))
    cells = _cells(image, rows=4, count=6, aspect=80 / 40)
    half = cells[0][0].shape[1] // 2
    for c in range(6):
        left, right = (cells[0][c][:, : half - 4], cells[0][c][:, half + 4 :])
        assert left[..., 0].mean() > right[..., 0].mean() + 30 and right[..., 2].mean() > left[..., 2].mean() + 30
        left, right = (cells[1][c][:, : half - 4], cells[1][c][:, half + 4 :])
        assert right[..., 0].mean() > left[..., 0].mean() + 30
    # the fused row is the tube itself: where it is highest the cell is reddest
    fused = e.tubes[0, evenly_spaced(n, 6)].float()
    cell = torch.from_numpy(cells[3][2].astype(np.float32))[..., 0]
    big = F.interpolate(fused[2][None, None], size=cell.shape, mode="bilinear", align_corners=False)[0, 0]
    hot, cold = big >= big.quantile(0.9), big <= big.quantile(0.1)
    assert big.max() - big.min() > 0.3 and cell[hot].mean() > cell[cold].mean() + 30


def test_without_layers_there_is_no_pyramid(explained, tmp_path):
    result = write_explanation(_with_layers(explained, None), tmp_path / "out", focus=False)
    assert not list((tmp_path / "out").rglob("pyramid.*")) and "pyramid" not in result
    assert result["files"][:3] == ["saliency.npy", "overlay.mp4", "tube.png"]


def test_a_layer_of_the_wrong_shape_fails_before_anything_is_written(explained, tmp_path):
    n = len(explained.frame_indices)
    bad = {"layer3": np.zeros((2, n - 1, 8, 16), np.float32)}
    with pytest.raises(ValueError, match="layer 'layer3': expected 2×16×H×W"):
        write_explanation(_with_layers(explained, bad), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_explanation_index_shows_the_pyramid(explained, tmp_path):
    n = len(explained.frame_indices)
    e = _with_layers(explained, {"layer3": np.zeros((2, n, 8, 16), np.float32)})
    write_explanation(e, tmp_path / "out" / "moving", focus=False)
    page = write_explanation_index(tmp_path / "out", [("moving.mp4", tmp_path / "out" / "moving")], [])
    assert 'src="moving/pyramid.png"' in page.read_text()


def test_render_pyramid_labels_every_row_and_rejects_mismatched_rows():
    frames = np.zeros((3, 20, 20, 3), np.uint8)
    rows = [("a\n2×2 grid", np.ones((3, 2, 2))), ("fused tube\n20×20", np.zeros((3, 20, 20)))]
    image = render_pyramid(frames, rows, [0, 5, 9], title="t")
    assert image.shape == (22 + 16 + 2 * (CELL_H + GAP) + GAP, image.shape[1], 3)
    with pytest.raises(ValueError, match="row 'b' has 2 maps for 3 frames"):
        render_pyramid(frames, [("b", np.ones((2, 2, 2)))])
