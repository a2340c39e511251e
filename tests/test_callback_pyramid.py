"""The callback with a multi-layer method in a real (tiny) training run: pyramid.png and pyramid.npz on disk, the
pyramid image in the offline W&B run beside the tube video (same step, same table row), in TensorBoard and in the
CSV logger's tubes.csv, and in the run report; read back from what was written."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
from PIL import Image
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger, WandbLogger

from saliency_tubes.errors import BadArgument
from saliency_tubes.lightning import RunCheckpoint, SaliencyTubesCallback

from helpers.training import tiny_classifier
from helpers.wandb_records import history

LAYERS = ["layer2", "layer3", "layer4"]
METHODS = ["pyramid"]  # layercam goes through the same writer and adapters (tests/test_cli_layers.py)


@pytest.mark.parametrize("method", METHODS)
def test_the_pyramid_is_logged_beside_the_tube_video(tmp_path, tiny_dataset, method):
    dm, model = tiny_classifier(tiny_dataset)
    wandb_logger = WandbLogger(project="tests", save_dir=str(tmp_path), offline=True)
    loggers = [wandb_logger, TensorBoardLogger(str(tmp_path), name="tb"), CSVLogger(str(tmp_path), name="csv")]
    ckpt = RunCheckpoint(root=str(tmp_path / "checkpoints"))
    callback = SaliencyTubesCallback(num_samples=2, method=method, layers=LAYERS)
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=loggers,
        callbacks=[ckpt, callback],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
    )
    trainer.fit(model, dm)
    wandb_logger.experiment.finish()

    # on disk: each sample's pyramid of the layers asked for
    run = Path(ckpt.dirpath)
    samples = sorted((run / "tubes" / "epoch_000").glob("sample_*"))
    assert len(samples) == 2
    for folder in samples:
        with np.load(folder / "pyramid.npz") as npz:
            assert list(npz["layers"]) == LAYERS and npz["layer2"].shape[0] == 4  # 4 frames
        result = json.loads((folder / "result.json").read_text())
        assert [d["name"] for d in result["pyramid"]["layers"]] == LAYERS and result["method"] == method

    # W&B: the image, the same pixels as pyramid.png, in the same history row as the video, and in the table row
    wandb_dir = next((tmp_path / "wandb").glob("offline-run-*"))
    media = wandb_dir / "files" / "media"
    images = sorted((media / "images" / "tubes").glob("pyramid_*.png"))
    assert [p.name.split("_")[1] for p in images] == ["0", "1"]
    for image in images:
        logged = np.asarray(Image.open(image).convert("RGB"))
        written = np.asarray(Image.open(samples[int(image.name.split("_")[1])] / "pyramid.png").convert("RGB"))
        np.testing.assert_array_equal(logged, written)
    rows = history(next(wandb_dir.glob("run-*.wandb")))
    with_video = [r for r in rows if "tubes/sample_0/_type" in r or isinstance(r.get("tubes/sample_0"), dict)]
    assert len(with_video) == 1
    assert any(k.startswith("tubes/pyramid_0") for k in with_video[0])
    assert any(k.startswith("tubes/pyramid_1") for k in with_video[0])
    table = json.loads(next((media / "table" / "tubes").glob("table_*.table.json")).read_text())
    assert table["columns"][-1] == "pyramid" and [row[5:] for row in table["data"]] == [["Video", "Image", "Image"]] * 2

    # TensorBoard: one pyramid image per sample
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(loggers[1].log_dir, size_guidance={"images": 0})
    events.Reload()
    assert {"tubes/sample_0_pyramid", "tubes/sample_1_pyramid"} <= set(events.Tags()["images"])

    # CSV: the path of each sample's pyramid
    with open(Path(loggers[2].log_dir) / "tubes.csv", newline="") as fh:
        listed = list(csv.DictReader(fh))
    assert [Path(r["pyramid"]) for r in listed] == [f / "pyramid.png" for f in samples]

    # the run report shows them
    report = (run / "report.html").read_text()
    assert report.count("pyramid.png") >= 2


def test_layers_for_a_one_layer_method_are_refused_when_the_callback_is_made():
    with pytest.raises(BadArgument, match="--layers applies to"):
        SaliencyTubesCallback(method="gradcam", layers=["layer3"])
