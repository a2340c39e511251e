"""The HTML reports: the run report after a real tiny training, explain.py's index.html after a real explain.py
run, both opened from file:// in the system's headless Chromium (tests/helpers/browser.py)."""

import json
import shutil
from pathlib import Path

import pytest
import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger

from saliency_tubes.data import VideoDataModule
from saliency_tubes.lightning import RunCheckpoint, SaliencyTubesCallback, VideoClassifier
from saliency_tubes.report import build_run_report, write_explanation_index
from saliency_tubes.report.__main__ import main as report_main

from helpers.browser import check_video, load_ms, open_page, screenshot
from helpers.checkpoints import tiny_checkpoint
from helpers.cli import exit_code

EVIL = "<img src=x onerror=alert(1)>"  # a class folder name that must render as text
EPOCHS, SAMPLES = 3, 2


def _evil_dataset(tiny_dataset: Path, tmp_path: Path) -> Path:
    """The tiny synthetic set with its class ``grow`` renamed to ``EVIL`` (in train and val)."""
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    for split in ("train", "val"):
        (root / split / "grow").rename(root / split / EVIL)
    return root


@pytest.fixture(scope="module")
def trained_run(tiny_dataset, tmp_path_factory) -> Path:
    """A run folder after a real 3-epoch training of a tiny model, with the CSV logger only."""
    tmp = tmp_path_factory.mktemp("report_run")
    root = _evil_dataset(tiny_dataset, tmp)
    pl.seed_everything(0, verbose=False)
    dm = VideoDataModule(root=str(root), clip_len=4, stride=2, input_size=32, batch_size=8, num_workers=0)
    model = VideoClassifier(
        arch="resnet3d_10",
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        arch_kwargs={"width": 4, "conv1_t_size": 3, "no_max_pool": True},
        clip_len=4,
        stride=2,
        input_size=32,
        lr=0.05,
    )
    ckpt = RunCheckpoint(root=str(tmp / "checkpoints"))
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        accelerator="cpu",
        logger=CSVLogger(str(tmp), name="csv"),
        callbacks=[ckpt, SaliencyTubesCallback(num_samples=SAMPLES)],
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        num_sanity_val_steps=1,
    )
    trainer.fit(model, dm)
    return Path(ckpt.dirpath)


def test_run_report_files_and_rebuild(trained_run, capsys):
    rows = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(EPOCHS))
    assert all(isinstance(r["train/loss"], float) and "val/acc_top1" in r and "val/tube_mass_in_gt" in r for r in rows)
    confusion = json.loads((trained_run / "confusion.json").read_text())
    assert confusion["epoch"] == EPOCHS - 1 and EVIL in confusion["classes"]
    assert sum(map(sum, confusion["matrix"])) == 12  # the 6 classes × 2 validation videos, each counted once
    page = (trained_run / "report.html").read_text()
    assert EVIL not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "http://" not in page and "https://" not in page

    # rebuilt from the files alone, as for an interrupted run: the same page
    (trained_run / "report.html").unlink()
    assert exit_code(report_main, [trained_run]) == 0
    assert (trained_run / "report.html").read_text() == page
    assert exit_code(report_main, [trained_run / "nowhere"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: ")


@pytest.mark.slow
def test_run_report_in_chromium(trained_run):
    with open_page(trained_run / "report.html") as (page, log):
        ms = load_ms(page)
        size = (trained_run / "report.html").stat().st_size
        print(f"report.html: {size / 1024:.1f} KB, loaded in {ms:.0f} ms")
        # lazy media: on load, no video of an epoch that is not shown is fetched
        hidden = [u for u in log.requests if u.endswith(".mp4") and f"epoch_{EPOCHS - 1:03d}" not in u]
        assert hidden == []

        # one point per epoch on every curve
        for name in ("train/loss", "val/loss", "val/acc_top1", "val/tube_mass_in_gt", "val/mask_share"):
            xs = page.eval_on_selector_all(
                f'#curves g.series[data-name="{name}"] circle', "cs => cs.map(c => Number(c.dataset.x))"
            )
            assert xs == list(range(EPOCHS)), name

        # the class name is text, and nothing ran
        assert EVIL in page.inner_text("body")
        assert page.eval_on_selector_all("img", "is => is.filter(i => i.getAttribute('src') === 'x').length") == 0

        # every sample × epoch: the slider switches to it, and its video plays
        cards = page.query_selector_all(".card")
        assert len(cards) == SAMPLES
        played = 0
        for card in cards:
            slider = card.query_selector("input.slider")
            for i in range(EPOCHS):
                slider.evaluate("(s, i) => { s.value = i; s.dispatchEvent(new Event('input')); }", i)
                shown = card.query_selector_all(".epoch.on")
                assert [e.get_attribute("data-epoch") for e in shown] == [str(i)]
                assert card.query_selector(".epoch-label").inner_text() == str(i)
                state = check_video(page, shown[0].query_selector("video"))
                assert state["readyState"] >= 2 and state["duration"] > 0, state
                assert state["t1"] > state["t0"], state
                played += 1
            slider.evaluate(f"s => {{ s.value = {EPOCHS - 1}; s.dispatchEvent(new Event('input')); }}")
        assert played == SAMPLES * EPOCHS
        assert page.query_selector_all("table.cm tr")  # the confusion matrix
        shot = screenshot(page, "run_report.png")
        print(f"screenshot: {shot}")
        assert log.console_errors == [] and log.page_errors == [] and log.dialogs == []
        assert log.failed == [] and log.outside(trained_run) == []


def test_pages_escape_what_users_named(tmp_path):
    """Without a browser: names in a failed input and an empty run folder are escaped; an empty run still renders."""
    index = write_explanation_index(tmp_path, [], [(f"videos/{EVIL}.mp4", f"videos/{EVIL}.mp4: not a video")])
    text = index.read_text()
    assert EVIL not in text and text.count("&lt;img src=x onerror=alert(1)&gt;") == 2
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 0, "val/loss": 1.5}\n{"epoch": 1, "val/lo')  # cut by a crash
    assert "no tubes yet" in build_run_report(run).read_text()


@pytest.mark.slow
def test_explain_index_in_chromium(tiny_dataset, tmp_path, capsys):
    from saliency_tubes.cli.explain import main as explain_main

    classes = [EVIL, "move_down", "move_left", "move_right", "move_up", "shrink"]
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt", classes)
    folder = tmp_path / "videos"
    folder.mkdir()
    shutil.copy(tiny_dataset / "val" / "grow" / "0000.mp4", folder / "a.mp4")
    shutil.copy(tiny_dataset / "val" / "move_up" / "0000.mp4", folder / f"{EVIL}.mp4")
    (folder / "broken.mp4").write_text("not a video")
    out = tmp_path / "out"
    assert exit_code(explain_main, [folder, "--checkpoint", ckpt, "--out", out, "--no-focus"]) == 1
    capsys.readouterr()
    index = out / "index.html"
    with open_page(index) as (page, log):
        print(f"index.html: {index.stat().st_size / 1024:.1f} KB, loaded in {load_ms(page):.0f} ms")
        assert len(page.query_selector_all(".card")) == 2
        assert len(page.query_selector_all("table.summary tr")) == 1 + 2
        errors = page.query_selector_all("table.err tr td")
        assert len(errors) == 2 and "broken.mp4" in errors[0].inner_text() and errors[1].inner_text()
        assert f"{EVIL}.mp4" in page.inner_text("body")  # the file name, and the class, as text
        assert len(page.query_selector_all(".bars")) == 2
        for video in page.query_selector_all("video"):
            state = check_video(page, video)
            assert state["readyState"] >= 2 and state["duration"] > 0 and state["t1"] > state["t0"], state
        links = page.eval_on_selector_all(".card a", "as => as.map(a => a.href)")
        assert (
            sum(u.endswith("result.json") for u in links) == 2 and sum(u.endswith("saliency.npy") for u in links) == 2
        )
        print(f"screenshot: {screenshot(page, 'explain_index.png')}")
        assert log.console_errors == [] and log.page_errors == [] and log.dialogs == []
        assert log.failed == [] and log.outside(out) == []
