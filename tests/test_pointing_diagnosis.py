"""benchmarks/pointing_diagnosis.py on tiny untrained models and the tiny synthetic set: its per-class table and,
for an attention model, its per-block table, read back from the JSON it writes."""

import json
import os
import subprocess
import sys

import pytest

from saliency_tubes.data.synthetic import CLASSES

from helpers.checkpoints import tiny_checkpoint
from helpers.common import REPO, copy_without_masks

TINY_VIT = {
    "img_size": 32,
    "num_frames": 4,
    "patch_size": 8,
    "tubelet_size": 2,
    "embed_dim": 24,
    "depth": 2,
    "num_heads": 2,
}


def _run(tmp_path, checkpoint, root, *extra) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENCH_OUT": str(tmp_path / "out"), "PYTHONPATH": str(REPO / "src")}
    script = [sys.executable, str(REPO / "benchmarks" / "pointing_diagnosis.py"), "--name", "d"]
    argv = [*script, "--checkpoint", str(checkpoint), "--data.root", str(root), *extra]
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True)


def _diagnose(tmp_path, checkpoint, root, *extra):
    done = _run(tmp_path, checkpoint, root, *extra)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads((tmp_path / "out" / "d.json").read_text())


def test_per_class_rows_of_a_cnn(tmp_path, tiny_dataset):
    ckpt = tiny_checkpoint(tmp_path / "cnn.ckpt", list(CLASSES))
    record = _diagnose(tmp_path, ckpt, tiny_dataset, "--method", "gradcam")
    (table,) = record["tables"]  # no attention blocks: no per-block table
    assert table["columns"][:3] == ["predicted class", "clips", "pointing game"]
    assert sum(row[1] for row in table["rows"]) == 2 * len(CLASSES)  # the val split's 12 clips
    for row in table["rows"]:
        assert row[0] in CLASSES and 0 <= row[2] <= 1 and 0 <= row[4] <= 1
        assert all(0 <= p <= 1 for p in row[5:9])  # probabilities
        assert 0 <= row[9] <= 1  # the occlusion map's pointing game
    assert "the model's 4×2×2 feature grid" in table["title"]  # the tiny R3D's last volume on a 4×32×32 clip
    assert 0 <= record["figures"]["pointing game"] <= 1


@pytest.mark.parametrize("split", ["val", "test"])
def test_each_attention_block_gets_a_pointing_game(tmp_path, tiny_dataset, split):
    ckpt = tiny_checkpoint(tmp_path / "vit.ckpt", list(CLASSES), arch="vit_video_s", arch_kwargs=TINY_VIT)
    record = _diagnose(tmp_path, ckpt, tiny_dataset, "--data.split_name", split)
    per_class, per_block = record["tables"]
    assert f"({split} split)" in per_class["title"]
    assert [row[0] for row in per_block["rows"]] == [0, 1]  # one row per block of the two
    assert all(0 <= row[1] <= 1 for row in per_block["rows"])


def test_the_occlusion_map_peaks_at_the_one_cell_that_carries_the_evidence():
    """A model whose class score reads one cell of its 2×4×4 grid only: blanking that cell is the only drop."""
    import torch

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from pointing_diagnosis import occlusion_map
    finally:
        sys.path.remove(str(REPO / "benchmarks"))

    class OneCell(torch.nn.Module):
        def forward(self, clips):  # B×3×8×32×48: cell (1, 2, 3) is frames 4-7, rows 16-23, columns 36-47
            evidence = clips[:, :, 4:8, 16:24, 36:48].mean((1, 2, 3, 4))
            return torch.stack([evidence, -evidence], 1)

    clips = torch.ones(2, 3, 8, 32, 48)
    drops = occlusion_map(OneCell(), clips, torch.tensor([0, 0]), (2, 4, 4))
    assert drops.shape == (2, 2, 4, 4)
    assert (drops.flatten(1).argmax(1) == (1 * 4 + 2) * 4 + 3).all()
    assert (drops > 0).sum() == 2  # nothing else moves the score


def test_a_split_without_masks_is_one_line(tmp_path, tiny_dataset):
    root = copy_without_masks(tiny_dataset, tmp_path / "no_masks")  # the val split the script reads by default
    ckpt = tiny_checkpoint(tmp_path / "cnn.ckpt", list(CLASSES))
    done = _run(tmp_path, ckpt, root, "--method", "gradcam")
    assert done.returncode == 1 and done.stderr.strip().endswith("has videos without masks")
    assert "Traceback" not in done.stderr
