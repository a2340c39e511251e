"""Two processes on CPU (DDP over gloo) through the real train.py: tubes logged once per epoch, no deadlock,
and validation metrics equal to a single process on the same checkpoint."""

import csv
import shutil
from pathlib import Path

import pytest

from helpers.cli import TINY_TRAIN, run_script
from helpers.common import REPO
from helpers.wandb_records import history

pytestmark = pytest.mark.slow

DDP = ["--trainer.devices", "2", "--trainer.strategy", "ddp", "--trainer.accelerator", "cpu"]


def _common(root: Path) -> list[str]:
    return ["--config", str(REPO / "configs" / "default.yaml"), "--data.root", str(root), *TINY_TRAIN]


def _metrics(csv_root: Path) -> dict:
    rows = list(csv.DictReader(next(csv_root.rglob("metrics.csv")).open()))
    return {k: float(v) for k, v in rows[-1].items() if k.startswith("val/") and v}


@pytest.fixture
def odd_dataset(tmp_path, tiny_dataset) -> Path:
    """The tiny dataset with 13 validation videos, so two ranks get unequal shares (a padding sampler would
    count one video twice)."""
    root = tmp_path / "odd"
    shutil.copytree(tiny_dataset, root)
    shutil.copy(root / "val" / "grow" / "0000.mp4", root / "val" / "grow" / "0009.mp4")
    shutil.copy(root / "val" / "grow" / "0000.mask.npz", root / "val" / "grow" / "0009.mask.npz")
    return root


def test_ddp_fit_logs_tubes_once_and_validates_like_one_process(tmp_path, odd_dataset):
    tiny_dataset = odd_dataset
    fit = run_script("train.py", "fit", *_common(tiny_dataset), *DDP, cwd=tmp_path, timeout=400)
    assert fit.returncode == 0, fit.stderr[-3000:]
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1  # rank zero only
    videos = list((runs[0] / "files" / "media" / "videos" / "tubes").glob("*.mp4"))
    assert len(videos) == 4 * 2  # num_samples × epochs, not × ranks
    rows = history(next(runs[0].glob("run-*.wandb")))
    assert sum("val/tube_mass_in_gt" in r for r in rows) == 2

    ckpt = next((tmp_path / "checkpoints").glob("*/last.ckpt"))
    metrics = {}
    for devices in ("1", "2"):
        out = tmp_path / f"csv{devices}"
        proc = run_script(
            "train.py",
            "validate",
            *_common(tiny_dataset),
            "--trainer.devices",
            devices,
            "--trainer.strategy",
            "ddp",
            "--trainer.accelerator",
            "cpu",
            "--trainer.logger",
            "pytorch_lightning.loggers.CSVLogger",
            "--trainer.logger.save_dir",
            str(out),
            "--ckpt_path",
            str(ckpt),
            cwd=tmp_path,
            timeout=400,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        metrics[devices] = _metrics(out)
    assert set(metrics["1"]) >= {"val/acc_top1", "val/acc_top5", "val/loss", "val/tube_mass_in_gt"}
    for key, value in metrics["1"].items():
        assert metrics["2"][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
