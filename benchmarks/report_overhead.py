"""What the run report costs a training epoch, and how its page loads in headless Chromium.

Trains the default config (configs/default.yaml: model, data, the callback's 4 samples; no logger, so nothing
but training and the callback runs) for ``--epochs`` epochs, then prints per epoch:

- the epoch's seconds: from the start of the training epoch to the end of its validation (``on_train_epoch_start``
  to ``on_validation_end`` of a timing callback placed after the Saliency Tubes callback), and
- the report's seconds: what ``SaliencyTubesCallback`` spends writing ``metrics.jsonl``, ``confusion.json`` and
  ``report.html`` (its ``report_seconds``: the timed region is ``_write_report``, on rank zero; the epoch's mean
  loss and the confusion matrix are gathered in a few microseconds outside it), and their ratio.

Then opens ``report.html`` from ``file://`` in the system's Chromium (playwright, no browser download): the page's
size without media, ``performance.timing`` from navigation start to the load event's end, and how many media files
the page fetched on load against how many it links (lazy loading).

    python benchmarks/report_overhead.py [--epochs 2] [--root data/synthetic]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import yaml

from saliency_tubes.data import VideoDataModule
from saliency_tubes.lightning import RunCheckpoint, SaliencyTubesCallback, VideoClassifier

REPO = Path(__file__).resolve().parents[1]


class EpochTimer(pl.Callback):
    def __init__(self):
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.seconds.append(time.perf_counter() - self._start)


def train(epochs: int, root: str, out: Path) -> tuple[Path, list[float], list[float]]:
    cfg = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())
    pl.seed_everything(cfg["seed_everything"], verbose=False)
    dm = VideoDataModule(**{**cfg["data"], "root": root, "synthetic": True})
    dm.prepare_data()
    dm.setup("fit")
    linked = {k: cfg["data"][k] for k in ("clip_len", "stride", "input_size") if k in cfg["data"]}
    model = VideoClassifier(num_classes=dm.num_classes, class_names=dm.class_names, **linked, **cfg["model"])
    tubes_args = next(c["init_args"] for c in cfg["trainer"]["callbacks"] if c["class_path"].endswith("Callback"))
    tubes, timer = SaliencyTubesCallback(**tubes_args), EpochTimer()
    trainer = pl.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        callbacks=[RunCheckpoint(root=str(out)), tubes, timer],
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
    )
    trainer.fit(model, dm)
    run_dir = next(out.iterdir())
    return run_dir, tubes.report_seconds, timer.seconds


def browse(page_path: Path) -> dict:
    from playwright.sync_api import sync_playwright

    media, requests = 0, []
    text = page_path.read_text()
    media = text.count('.mp4"') + text.count('.png"')
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        page.wait_for_timeout(500)  # let the lazy loaders of what is on screen start
        load = page.evaluate("performance.timing.loadEventEnd - performance.timing.navigationStart")
        browser.close()
    fetched = sum(u.endswith((".mp4", ".png")) for u in requests)
    return {"bytes": page_path.stat().st_size, "load_ms": load, "media_linked": media, "media_fetched": fetched}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--root", default=str(REPO / "data" / "synthetic"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir, report_s, epoch_s = train(args.epochs, args.root, Path(tmp))
        print("epoch  epoch_s  report_s  report/epoch")
        for e, (r, s) in enumerate(zip(report_s, epoch_s, strict=True)):
            print(f"{e:5d}  {s:7.2f}  {r:8.4f}  {r / s:11.3%}")
        print(f"total  {sum(epoch_s):7.2f}  {sum(report_s):8.4f}  {sum(report_s) / sum(epoch_s):11.3%}")
        if shutil.which("chromium"):
            b = browse(run_dir / "report.html")
            print(
                f"report.html: {b['bytes'] / 1024:.1f} KB without media; load event after {b['load_ms']} ms "
                f"(performance.timing); media fetched on load {b['media_fetched']} of {b['media_linked']} linked"
            )
        else:
            print("no chromium on PATH: page load not measured")


if __name__ == "__main__":
    main()
