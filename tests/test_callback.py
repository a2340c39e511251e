"""The Saliency Tubes callback in a real (tiny) training run, read back from what it wrote."""

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger

from saliency_tubes.data import read_frames, video_info
from saliency_tubes.lightning import RunCheckpoint, SaliencyTubesCallback
from saliency_tubes.lightning.callback import balanced_indices

from helpers.training import tiny_classifier
from helpers.wandb_records import artifact_files, history, metric_definitions


def _trainer(tmp_path, callbacks, logger=False, epochs=2):
    return pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=logger,
        callbacks=callbacks,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        num_sanity_val_steps=1,
        default_root_dir=str(tmp_path),
    )


def test_balanced_indices():
    labels = [0] * 10 + [1] * 3 + [2] * 1
    chosen = balanced_indices(labels, 6, seed=1)
    assert len(set(chosen)) == 6
    counts = [sum(labels[i] == c for i in chosen) for c in range(3)]
    assert counts == [3, 2, 1] or counts == [2, 3, 1]
    assert balanced_indices(labels, 6, seed=1) == chosen


def test_callback_logs_videos_table_and_mass_to_an_offline_wandb_run(tmp_path, tiny_dataset):
    dm, model = tiny_classifier(tiny_dataset)
    logger = WandbLogger(project="tests", save_dir=str(tmp_path), offline=True)
    ckpt = RunCheckpoint(root=str(tmp_path / "checkpoints"))
    trainer = _trainer(tmp_path, [ckpt, SaliencyTubesCallback(num_samples=3)], logger=logger)
    trainer.fit(model, dm)
    logger.experiment.finish()

    run_dir = next((tmp_path / "wandb").glob("offline-run-*"))
    videos = sorted((run_dir / "files" / "media" / "videos" / "tubes").glob("sample_*.mp4"))
    assert len(videos) == 3 * 2  # one per sample per epoch; none for the sanity check
    for v in videos:
        info = video_info(v)
        assert info.num_frames == 4 and info.width > info.height  # original | overlay, side by side
        frames = read_frames(v, range(4))
        assert frames.std() > 5

    # one incremental table: each epoch's log uploads that epoch's rows only
    tables = sorted((run_dir / "files" / "media" / "table" / "tubes").glob("table_*.table.json"))
    assert len(tables) == 2
    epochs = []
    for t in tables:
        content = json.loads(t.read_text())
        assert content["columns"] == ["epoch", "sample", "true", "predicted", "confidence", "video", "tube"]
        assert len(content["data"]) == 3
        assert all(row[2] in dm.class_names and row[3] in dm.class_names and 0 < row[4] <= 1 for row in content["data"])
        assert [row[5:] for row in content["data"]] == [["Video", "Image"]] * 3
        epochs += [row[0] for row in content["data"]]
    assert sorted(epochs) == [0, 0, 0, 1, 1, 1]

    run_file = next(run_dir.glob("run-*.wandb"))
    rows = history(run_file)
    masses = [r["val/tube_mass_in_gt"] for r in rows if "val/tube_mass_in_gt" in r]
    shares = [r["val/mask_share"] for r in rows if "val/mask_share" in r]
    assert len(masses) == 2 and all(0 <= m <= 1 for m in masses)
    assert len(shares) == 2 and all(0 < s < 0.5 for s in shares)
    table_rows = [r for r in rows if "tubes/table/_type" in r]
    assert [r["tubes/table/_type"] for r in table_rows] == ["incremental-table-file"] * 2
    assert [(r["tubes/table/increment_num"], r["tubes/table/nrows"]) for r in table_rows] == [(0, 3), (1, 6)]
    assert len(table_rows[-1]["tubes/table/previous_increments_paths"]) == 1
    assert metric_definitions(run_file)["tubes/*"] == "epoch"
    video_rows = [r for r in rows if "tubes/sample_0/_type" in r or isinstance(r.get("tubes/sample_0"), dict)]
    assert len(video_rows) == 2
    assert any("val/acc_top1" in r for r in rows) and any("train/loss" in r for r in rows)
    table_media = [p for files in artifact_files(run_file).values() for p, _ in files]
    assert sum(p.endswith(".mp4") for p in table_media) == 6 and sum(p.endswith(".png") for p in table_media) == 6

    on_disk = Path(ckpt.dirpath) / "tubes"
    assert sorted(d.name for d in on_disk.iterdir()) == ["epoch_000", "epoch_001"]
    assert len(list((on_disk / "epoch_001").glob("sample_*/tube.png"))) == 3
    assert (Path(ckpt.dirpath) / "last.ckpt").is_file()
    assert Path(ckpt.best_model_path).parent == Path(ckpt.dirpath)


def test_callback_changes_nothing_in_training(tmp_path, tiny_dataset):
    """Same seed, with and without the callback: identical weights, so it touched neither the model nor the RNG."""
    weights = []
    for callbacks in ([], [SaliencyTubesCallback(num_samples=2)]):
        dm, model = tiny_classifier(tiny_dataset, seed=5)
        _trainer(tmp_path / str(len(callbacks)), callbacks).fit(model, dm)
        weights.append(model.state_dict())
    assert list((tmp_path / "1").rglob("sample_0/overlay.mp4")), "the callback did run"
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=0, atol=0, msg=key)


def test_the_sample_set_travels_in_checkpoints(tmp_path, tiny_dataset):
    dm, model = tiny_classifier(tiny_dataset)
    first = SaliencyTubesCallback(num_samples=3, seed=1)
    trainer = _trainer(tmp_path, [first, RunCheckpoint(root=str(tmp_path / "c"))], epochs=1)
    trainer.fit(model, dm)
    ckpt = torch.load(next((tmp_path / "c").glob("*/last.ckpt")), weights_only=True)
    saved = next(v for k, v in ckpt["callbacks"].items() if k.startswith("SaliencyTubesCallback"))
    assert saved["indices"] == first._indices and len(saved["indices"]) == 3
    other = SaliencyTubesCallback(num_samples=3, seed=2)  # would choose differently on its own
    other.load_state_dict(saved)
    dm.setup("validate")
    assert [s["index"] for s in other._select(dm.val_dataset)] == saved["indices"]


def test_tensorboard_gets_gif_videos_and_tube_plots(tmp_path, tiny_dataset):
    import io

    from PIL import Image
    from pytorch_lightning.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dm, model = tiny_classifier(tiny_dataset)
    logger = TensorBoardLogger(save_dir=str(tmp_path), name="tb")
    _trainer(tmp_path, [SaliencyTubesCallback(num_samples=2)], logger=logger, epochs=2).fit(model, dm)
    events = EventAccumulator(logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()["images"]
    assert sorted(tags) == ["tubes/sample_0", "tubes/sample_0_tube", "tubes/sample_1", "tubes/sample_1_tube"]
    videos = events.Images("tubes/sample_1")
    assert len(videos) == 2  # one per epoch
    gif = Image.open(io.BytesIO(videos[-1].encoded_image_string))
    assert gif.format == "GIF" and gif.n_frames == 4
    assert "val/tube_mass_in_gt" in events.Tags()["scalars"]


@pytest.mark.parametrize("method", ["gradcam", "gradcam_pp"])
def test_gradient_methods_inside_lightning_validation(tmp_path, tiny_dataset, method):
    """Lightning validates under torch.inference_mode; the gradient methods must still work there."""
    dm, model = tiny_classifier(tiny_dataset)
    callback = SaliencyTubesCallback(
        num_samples=2, method=method, layer="layer3", faithfulness=True, faithfulness_steps=4
    )
    trainer = _trainer(tmp_path, [callback], epochs=1)
    metrics = trainer.validate(model, dm)[0]
    assert 0 <= metrics["val/tube_mass_in_gt"] <= 1
    assert 0 <= metrics["val/deletion_auc"] <= 1 and 0 <= metrics["val/insertion_auc"] <= 1
    assert len(list((tmp_path).rglob("sample_*/tube.png"))) == 2


def test_last_checkpoint_follows_training_after_the_best_epoch(tmp_path, tiny_dataset):
    """With lr 0 the accuracy never improves after epoch 0, so only the first epoch is 'best'; last.ckpt must
    still be the final epoch, or resuming from it would lose the later ones."""
    dm, model = tiny_classifier(tiny_dataset)
    model.hparams.lr = 0.0
    ckpt = RunCheckpoint(root=str(tmp_path / "c"))
    _trainer(tmp_path, [ckpt], epochs=3).fit(model, dm)
    folder = Path(ckpt.dirpath)
    assert [p.name for p in folder.glob("epoch=*.ckpt")] == ["epoch=000-acc=" + f"{ckpt.best_model_score:.4f}.ckpt"]
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == model.trainer.global_step
