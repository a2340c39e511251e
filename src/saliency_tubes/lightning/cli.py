"""LightningCLI wiring for train.py."""

from __future__ import annotations

import netrc
import os
import sys
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_warn

from ..data.datamodule import VideoDataModule
from ..errors import SaliencyTubesError, first_line
from ..fs import ensure_writable_dir
from ..models.io import read_model_info
from .module import VideoClassifier
from .run_checkpoint import RunCheckpoint, run_folder


def wandb_login_configured() -> bool:
    """True when W&B has an API key from the environment or ~/.netrc (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


WANDB_INIT_TIMEOUT = 30.0  # seconds W&B may take to start a run before training goes on without it


def wandb_init_timeout(given: float | None) -> float:
    """The W&B start-up timeout: ``--wandb_init_timeout``, else the environment's ``WANDB_INIT_TIMEOUT``, else
    :data:`WANDB_INIT_TIMEOUT` (W&B's own default, 90 s, would hold training up three times as long)."""
    if given is not None:
        if given <= 0:
            raise SaliencyTubesError(f"--wandb_init_timeout {given:g}: give a positive number of seconds")
        return given
    env = os.environ.get("WANDB_INIT_TIMEOUT")
    if not env:
        return WANDB_INIT_TIMEOUT
    try:
        return float(env)
    except ValueError:
        raise SaliencyTubesError(f"WANDB_INIT_TIMEOUT={env!r} is not a number of seconds") from None


def limit_wandb_start(logger: WandbLogger, seconds: float) -> None:
    """Make ``logger``'s run give up starting after ``seconds``, unless its own ``settings`` set ``init_timeout``."""
    init = logger._wandb_init  # what WandbLogger passes to wandb.init (its kwargs)
    settings = init.get("settings")
    if settings is None:
        init["settings"] = {"init_timeout": seconds}
    elif isinstance(settings, dict):
        settings.setdefault("init_timeout", seconds)
    elif "init_timeout" not in getattr(settings, "model_fields_set", {"init_timeout"}):  # a wandb.Settings
        settings.init_timeout = seconds


def ensure_wandb_mode() -> None:
    """Without a W&B login, log offline instead of prompting; say so once."""
    if os.environ.get("WANDB_MODE") or wandb_login_configured():
        return
    os.environ["WANDB_MODE"] = "offline"
    print(
        "W&B: no login found, logging offline to ./wandb (upload later with `wandb sync wandb/offline-run-*`)",
        file=sys.stderr,
    )


class RunConfigSaver(SaveConfigCallback):
    """Saves the run's full configuration as ``config.yaml`` in its checkpoint folder (not the working directory)."""

    def __init__(self, *args, **kwargs):
        kwargs["save_to_log_dir"] = False
        super().__init__(*args, **kwargs)

    def save_config(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        folder = run_folder(trainer)
        folder.mkdir(parents=True, exist_ok=True)
        self.parser.save(
            self.config, str(folder / self.config_filename), skip_none=False, overwrite=True, multifile=self.multifile
        )


class TubesCLI(LightningCLI):
    def add_arguments_to_parser(self, parser) -> None:
        # The model must match the data: classes and the input it is trained on.
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        for name in ("clip_len", "stride", "input_size", "mean", "std"):
            parser.link_arguments(f"data.{name}", f"model.{name}")
        parser.add_argument(
            "--wandb_init_timeout",
            type=float | None,
            default=None,
            help=f"seconds W&B may take to start before training goes on without it (metrics to CSV in the run "
            f"folder); default: WANDB_INIT_TIMEOUT from the environment, else {WANDB_INIT_TIMEOUT:g}",
        )

    def _start_loggers(self) -> None:
        """Start every logger now; one that cannot start (no network, a W&B service error, ...) is replaced by a
        CSV logger in the run's folder with a single warning, so logging never stops training."""
        trainer = self.trainer
        working, failed = [], []
        timeout = wandb_init_timeout(self.config[self.subcommand].get("wandb_init_timeout"))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                limit_wandb_start(logger, timeout)
            try:
                logger.experiment  # type: ignore[attr-defined]  # noqa: B018 - every logger has one; starts the W&B run on rank zero
                working.append(logger)
            except Exception as exc:  # whatever the service raised, training must go on
                failed.append(f"{type(logger).__name__}: {first_line(exc)}")
        if not failed:
            return
        folder = run_folder(trainer)
        working.append(CSVLogger(save_dir=str(folder), name="csv_logs"))
        trainer.loggers = working
        rank_zero_warn(
            f"logger could not start ({'; '.join(failed)}); training goes on, metrics go to {folder}/csv_logs "
            "and the tubes to the run folder"
        )

    def _check_run_folder(self) -> None:
        ckpt = self.trainer.checkpoint_callback
        if isinstance(ckpt, RunCheckpoint):
            ensure_writable_dir(ckpt.run_dir(self.trainer), "checkpoints")

    def _resolve_ckpt_path(self) -> str | None:
        """``--ckpt_path last`` means the newest ``last.ckpt`` under the checkpoint root; resuming a run keeps
        writing into that run's folder."""
        ckpt_path = self.config[self.subcommand].get("ckpt_path")
        ckpt = self.trainer.checkpoint_callback
        if ckpt_path == "last" and isinstance(ckpt, RunCheckpoint):
            found = sorted(Path(ckpt.root).glob("*/last.ckpt"), key=lambda p: p.stat().st_mtime)
            if not found:
                raise SaliencyTubesError(f"--ckpt_path last: no last.ckpt under {ckpt.root}/")
            ckpt_path = str(found[-1])
            self.config[self.subcommand]["ckpt_path"] = ckpt_path
            print(f"Resuming from {ckpt_path}")
        if ckpt_path and self.subcommand == "fit" and isinstance(ckpt, RunCheckpoint) and ckpt.dirpath is None:
            folder = Path(ckpt_path).parent
            if folder.parent.resolve() == Path(ckpt.root).resolve():
                ckpt.dirpath = str(folder)
        return ckpt_path

    def _check_resumed_checkpoint(self) -> None:
        """Resuming or validating from a checkpoint of another class count is a one-line error, not a size-mismatch
        traceback from deep inside load_state_dict."""
        ckpt_path = self._resolve_ckpt_path()
        if not ckpt_path or ckpt_path in ("best", "hpc", "registry"):
            return
        if not Path(ckpt_path).is_file():
            raise SaliencyTubesError(f"--ckpt_path {ckpt_path} does not exist")
        _, info = read_model_info(ckpt_path)
        model = self.model.hparams
        if info.num_classes != model.num_classes:
            raise SaliencyTubesError(
                f"checkpoint {ckpt_path} has {info.num_classes} classes, the data has {model.num_classes}"
            )
        if info.arch != model.arch:
            raise SaliencyTubesError(f"checkpoint {ckpt_path} holds a {info.arch}, the config builds a {model.arch}")

    def before_fit(self) -> None:
        self._check_resumed_checkpoint()
        self._start_loggers()  # first: the run folder is named after the logger's run id
        self._check_run_folder()

    def before_validate(self) -> None:
        self._check_resumed_checkpoint()
        self._start_loggers()

    def before_test(self) -> None:
        self._check_resumed_checkpoint()
        self._start_loggers()

    def after_fit(self) -> None:
        ckpt = self.trainer.checkpoint_callback
        if not isinstance(ckpt, ModelCheckpoint) or not self.trainer.is_global_zero:
            return
        if ckpt.best_model_path:
            score = ckpt.best_model_score
            shown = f" ({ckpt.monitor}={float(score):.4f})" if score is not None else ""
            print(f"Best checkpoint: {ckpt.best_model_path}{shown}")
        if ckpt.last_model_path:
            print(f"Last checkpoint: {ckpt.last_model_path}")


def default_config() -> Path:
    return Path.cwd() / "configs" / "default.yaml"


def gives_config(args: list[str]) -> bool:
    """True when the arguments name a configuration file of their own (``--config FILE``, ``--config=FILE``, ``-c``)."""
    return any(a in ("-c", "--config") or a.startswith("--config=") for a in args)


def main(args: list[str] | None = None) -> None:
    """``fit``, ``validate``, ``test`` and ``predict`` start from configs/default.yaml unless a ``--config`` is given;
    no arguments at all means ``fit``. A ``--config`` replaces the default file instead of layering over it: the
    presets are complete on their own and leave out what they want at the code's default (the R3D-18 preset has no
    ``model.arch_kwargs``), which default.yaml underneath would change (to its width 8)."""
    given = sys.argv[1:] if args is None else args
    if not given:
        args = ["fit"]
    defaults = [] if gives_config(given) else [str(default_config())]
    parser_kwargs = {subcommand: {"default_config_files": defaults} for subcommand in LightningCLI.subcommands()}
    ensure_wandb_mode()
    TubesCLI(
        VideoClassifier, VideoDataModule, args=args, save_config_callback=RunConfigSaver, parser_kwargs=parser_kwargs
    )
