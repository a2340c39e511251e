"""LightningCLI wiring for train.py."""
from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path

from pytorch_lightning.cli import LightningCLI

from ..data.datamodule import VideoDataModule
from .module import VideoClassifier


def wandb_login_configured() -> bool:
    """True when W&B has an API key from the environment or ~/.netrc (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def ensure_wandb_mode() -> None:
    """Without a W&B login, log offline instead of prompting; say so once."""
    if os.environ.get("WANDB_MODE") or wandb_login_configured():
        return
    os.environ["WANDB_MODE"] = "offline"
    print("W&B: no login found, logging offline to ./wandb (upload later with `wandb sync wandb/offline-run-*`)", file=sys.stderr)


class TubesCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # The model must match the data: classes and the input it is trained on.
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        for name in ("clip_len", "stride", "input_size", "mean", "std"):
            parser.link_arguments(f"data.{name}", f"model.{name}")

    def after_fit(self) -> None:
        ckpt = self.trainer.checkpoint_callback
        if ckpt is None or not self.trainer.is_global_zero:
            return
        if ckpt.best_model_path:
            score = ckpt.best_model_score
            shown = f" ({ckpt.monitor}={float(score):.4f})" if score is not None else ""
            print(f"Best checkpoint: {ckpt.best_model_path}{shown}")
        if ckpt.last_model_path:
            print(f"Last checkpoint: {ckpt.last_model_path}")


def default_config() -> Path:
    return Path.cwd() / "configs" / "default.yaml"


def main(args: list[str] | None = None) -> None:
    if args is None and len(sys.argv) == 1:
        args = ["fit", "--config", str(default_config())]
    ensure_wandb_mode()
    TubesCLI(VideoClassifier, VideoDataModule, args=args, save_config_kwargs={"overwrite": True})
