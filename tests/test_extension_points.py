"""Adding a method and a layout is one class each, in one file (this one): explain.py and --evaluate reach them
without any other change. And the explain path stays light: --help imports no torch, explaining no Lightning."""

import json
import subprocess
import sys

import pytest
import torch

from saliency_tubes.cli.explain import main
from saliency_tubes.data.layouts import Layout, Sample, register_layout
from saliency_tubes.data.synthetic import CLASSES
from saliency_tubes.explain import ExplanationMethod, register_method

from helpers.checkpoints import tiny_checkpoint
from helpers.common import REPO


@register_method
class Energy(ExplanationMethod):
    """Every channel counts the same: where the layer is most active."""

    name = "toy_energy"
    summary = "mean activation of the layer"

    def channel_weights(self, activations, grads, targets):
        return torch.ones(activations.shape[:2], device=activations.device)


@register_layout
class ListFile(Layout):
    """``ROOT/<split>.txt``: one ``<relative path> <class>`` per line."""

    name = "toy_list"
    description = "ROOT/{train,val}.txt: '<path> <class>' per line"

    def index(self, root, split, class_names, options):
        rows = [line.split() for line in (root / f"{split}.txt").read_text().splitlines()]
        names = class_names or sorted({c for _, c in rows})
        return [Sample(root / p, names.index(c)) for p, c in rows], names


@pytest.fixture(scope="module")
def listed(tiny_dataset):
    """The tiny synthetic set's validation videos, listed in val.txt (train.txt the same) for the toy layout."""
    lines = [f"{p.relative_to(tiny_dataset)} {p.parent.name}" for p in sorted((tiny_dataset / "val").rglob("*.mp4"))]
    for split in ("train", "val"):
        (tiny_dataset / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return tiny_dataset


def _main(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    return exit_.value.code, capsys.readouterr()


def test_a_method_and_a_layout_of_one_class_each_work_through_explain_py_and_evaluate(listed, tmp_path, capsys):
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt", list(CLASSES))
    video = next((listed / "val").rglob("*.mp4"))
    code, out = _main(
        ["--checkpoint", ckpt, video, "--out", tmp_path / "o", "--method", "toy_energy", "--no-focus"], capsys
    )
    assert code == 0, out.err
    result = json.loads((tmp_path / "o" / video.stem / "result.json").read_text())
    assert result["method"] == "toy_energy"

    argv = [
        "--checkpoint",
        ckpt,
        "--evaluate",
        "--data.root",
        listed,
        "--data.layout",
        "toy_list",
        "--out",
        tmp_path / "e",
    ]
    code, out = _main([*argv, "--methods", "toy_energy", "saliency_tubes", "--steps", "2", "--max-clips", "4"], capsys)
    assert code == 0, out.err
    rows = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert [r["method"] for r in rows] == ["toy_energy", "saliency_tubes", "ground_truth", "random"]
    assert all(r["clips"] == 4 and 0 <= r["mass_in_gt_mean"] <= 1 for r in rows)  # the layout found the masks too

    code, out = _main(["--help"], capsys)
    assert code == 0 and "toy_energy" in out.out and "toy_list" in out.out


def test_a_layer_the_method_does_not_take_is_one_line(tmp_path, capsys, tiny_dataset):
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt", list(CLASSES))
    video = next((tiny_dataset / "val").rglob("*.mp4"))
    code, out = _main(["--checkpoint", ckpt, video, "--out", tmp_path / "o", "--layer", "layer3"], capsys)
    assert code == 2 and out.err.count("\n") == 1
    assert "--layer applies to --method gradcam, gradcam_pp" in out.err


def _imported(*args: str, cwd) -> tuple[set[str], subprocess.CompletedProcess]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(REPO / "explain.py"), *args], cwd=cwd, capture_output=True, text=True
    )
    modules = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    return modules, proc


@pytest.mark.slow
def test_help_imports_no_torch_and_explaining_imports_no_lightning(tmp_path, tiny_dataset):
    modules, proc = _imported("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "--method" in proc.stdout
    assert "torch" not in modules
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt", list(CLASSES))
    video = next((tiny_dataset / "val").rglob("*.mp4"))
    modules, proc = _imported("--checkpoint", str(ckpt), str(video), "--out", "o", "--no-focus", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "torch" in modules and (tmp_path / "o" / video.stem / "overlay.mp4").is_file()
    assert not {m for m in modules if m.split(".")[0] in ("pytorch_lightning", "lightning")}
