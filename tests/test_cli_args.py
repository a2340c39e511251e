"""train.py's arguments, in process: which configuration a command starts from, and one-line user errors."""

import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from saliency_tubes.cli.explain import main as explain_main
from saliency_tubes.cli.train import main as train_main

from helpers.cli import exit_code, train_error
from helpers.common import REPO

DEFAULT = yaml.safe_load((REPO / "configs" / "default.yaml").read_text())


def _printed_config(capsys, *args: str) -> dict:
    with pytest.raises(SystemExit) as exit_:
        train_main([*args, "--print_config"])
    out = capsys.readouterr().out
    assert exit_.value.code in (0, None), out
    return yaml.safe_load(out)


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict"])
def test_a_subcommand_without_config_starts_from_default_yaml(subcommand, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    config = _printed_config(capsys, subcommand, "--trainer.max_epochs", "3")
    assert config["seed_everything"] == 42
    assert config["trainer"]["max_epochs"] == 3
    assert config["trainer"]["num_sanity_val_steps"] == DEFAULT["trainer"]["num_sanity_val_steps"]
    assert {k: config["model"][k] for k in DEFAULT["model"]} == DEFAULT["model"]
    assert config["data"]["input_size"] == DEFAULT["data"]["input_size"]
    assert [c["class_path"] for c in config["trainer"]["callbacks"]] == [
        c["class_path"] for c in DEFAULT["trainer"]["callbacks"]
    ]


@pytest.mark.parametrize("form", ["--config", "--config=", "-c"])
def test_an_explicit_config_replaces_default_yaml(form, capsys, monkeypatch):
    """Not layered over it: default.yaml's arch_kwargs (width 8, ...) would change the R3D-18 of the preset."""
    monkeypatch.chdir(REPO)
    preset = "configs/finetune_r3d18_ucf101.yaml"
    args = [form + preset] if form.endswith("=") else [form, preset]
    config = _printed_config(capsys, "fit", *args, "--trainer.max_epochs", "3")
    assert config["model"]["arch"] == "r3d_18" and config["model"]["arch_kwargs"] is None
    assert config["trainer"]["num_sanity_val_steps"] is None  # Lightning's default: not default.yaml's 1
    assert config["trainer"]["max_epochs"] == 3 and config["seed_everything"] == 42


@pytest.mark.parametrize("preset", ["finetune_mfnet_ucf101", "finetune_r3d18_ucf101", "kinetics_r3d50"])
def test_presets_parse(preset, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _printed_config(
        capsys, "fit", "--config", str(REPO / "configs" / f"{preset}.yaml"), "--model.pretrained", "w.pth"
    )
    assert config["model"]["pretrained"] == "w.pth" and config["data"]["layout"]


def test_help_lists_the_optimizer_and_scheduler_choices(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(SystemExit) as exit_:
        train_main(["fit", "--help"])
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert "--model.optimizer {sgd,adamw}" in out and "--model.scheduler {cosine,step,none}" in out


def test_train_with_a_wrong_data_root_is_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", REPO / "configs" / "default.yaml", "--data.root", tmp_path / "nope"]
    code = exit_code(train_main, [*args, "--trainer.logger", "false"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("error: ") and "nope" in err
    assert "Traceback" not in err
    assert not (tmp_path / "nope").exists()  # no synthetic data generated into a mistyped path


def test_unknown_architecture(tmp_path, tiny_dataset, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert "unknown architecture 'resnet3d_7'" in train_error(capsys, tiny_dataset, "--model.arch", "resnet3d_7")


def test_empty_class_folder(tmp_path, tiny_dataset, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset, root)
    (root / "train" / "jump").mkdir()
    assert "jump has no videos" in train_error(capsys, root)


def test_nan_loss_stops_with_one_line(tmp_path, tiny_dataset, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert "training loss became nan" in train_error(capsys, tiny_dataset, "--model.lr", "1e30")


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet3d_10", "r3d_18"])
def test_explain_a_bare_public_weight_file(arch, foreign_video, tmp_path, monkeypatch, capsys):
    """A public release (a 3D-ResNets-PyTorch container, a torchvision state_dict) explained without training."""
    from saliency_tubes.models import create_model

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    model = create_model(arch, 3).eval()
    weights = tmp_path / "release.pth"
    if arch.startswith("resnet"):
        torch.save(
            {"epoch": 200, "arch": arch, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}},
            weights,
        )
    else:
        torch.save(model.state_dict(), weights)
    (tmp_path / "classes.txt").write_text("walk\nrun\njump\n")
    out = tmp_path / "o"
    code = exit_code(
        explain_main,
        [
            "--checkpoint",
            weights,
            "--arch",
            arch,
            "--class-names",
            tmp_path / "classes.txt",
            foreign_video,
            "--out",
            out,
            "--no-focus",
            "--max-frames",
            "16",
        ],
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / foreign_video.stem / "result.json").read_text())
    assert result["clip_len"] == 16 and result["input_size"] == 112  # the architecture's reference input
    assert {p["class"] for p in result["predictions"]} == {"walk", "run", "jump"}
    saliency = np.load(out / foreign_video.stem / "saliency.npy")
    assert saliency.shape[1:] == (97, 131) and saliency.min() == 0 and saliency.max() > 0.95
    for args, message in (
        (["--arch", arch, "--num-classes", "5"], "has a 3-class classifier, not 5"),
        (["--arch", arch, "--class-names", weights], "class names"),
        ([], "give --arch"),
    ):
        capsys.readouterr()
        code = exit_code(explain_main, ["--checkpoint", weights, *args, foreign_video, "--out", out])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and message in err, err


def test_wandb_start_up_timeout_comes_from_the_project(monkeypatch, tmp_path):
    """--wandb_init_timeout, else WANDB_INIT_TIMEOUT, else 30 s; it reaches a real WandbLogger's wandb.init arguments
    unless the logger's own settings give one."""
    import wandb
    from pytorch_lightning.loggers import WandbLogger

    from saliency_tubes.errors import SaliencyTubesError
    from saliency_tubes.lightning.cli import limit_wandb_start, wandb_init_timeout

    monkeypatch.delenv("WANDB_INIT_TIMEOUT", raising=False)
    assert wandb_init_timeout(None) == 30.0 and wandb_init_timeout(3) == 3
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "7")
    assert wandb_init_timeout(None) == 7.0 and wandb_init_timeout(3) == 3
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "soon")
    with pytest.raises(SaliencyTubesError, match="WANDB_INIT_TIMEOUT='soon' is not a number of seconds"):
        wandb_init_timeout(None)
    with pytest.raises(SaliencyTubesError, match="--wandb_init_timeout 0: give a positive number"):
        wandb_init_timeout(0)

    plain = WandbLogger(save_dir=str(tmp_path))
    limit_wandb_start(plain, 4)
    assert plain._wandb_init["settings"] == {"init_timeout": 4}
    own = WandbLogger(save_dir=str(tmp_path), settings={"init_timeout": 12})
    limit_wandb_start(own, 4)
    assert own._wandb_init["settings"] == {"init_timeout": 12}
    given = WandbLogger(save_dir=str(tmp_path), settings=wandb.Settings(init_timeout=12))
    limit_wandb_start(given, 4)
    assert given._wandb_init["settings"].init_timeout == 12
    other = WandbLogger(save_dir=str(tmp_path), settings=wandb.Settings(silent=True))
    limit_wandb_start(other, 4)
    assert other._wandb_init["settings"].init_timeout == 4
