import os
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers is importable as `helpers`

from saliency_tubes.data.synthetic import generate  # noqa: E402

from helpers.common import TINY  # noqa: E402


@pytest.fixture(autouse=True)
def _offline_wandb(tmp_path_factory, monkeypatch):
    """Tests never talk to W&B servers, and W&B's staging area stays out of the home folder."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path_factory.getbasetemp() / "wandb-data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "wandb-cache"))
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture()
def one_thread():
    """On tiny inputs a second OpenMP thread only adds barrier waits, which stall for seconds on a busy machine:
    modules of tiny-model tests use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    """A small synthetic dataset: 6 classes × (4 train + 2 val + 1 test) videos of 12 frames at 32×32."""
    return generate(tmp_path_factory.mktemp("data") / "synthetic", TINY)


@pytest.fixture(scope="session")
def foreign_video(tmp_path_factory) -> Path:
    """A video that is not from the synthetic set: 97×131 (odd sizes: H.264 4:4:4), 23.976 fps, 30 frames."""
    import av

    n, h, w = 30, 97, 131
    rng = np.random.default_rng(7)
    path = tmp_path_factory.mktemp("foreign") / "street_scene.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(24000, 1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv444p"
        for t in range(n):
            frame = (rng.random((h, w, 3)) * 60 + 40).astype(np.uint8)
            frame[40:60, 5 + 3 * t : 25 + 3 * t] = (220, 60, 200)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path
