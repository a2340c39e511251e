"""``explain.py --layers``: passed to the multi-layer methods (explaining and ``--evaluate``), a one-line error for a
method that explains one layer, with the built-in multi-layer methods (``layercam``, ``pyramid``)."""

import json

import numpy as np
import pytest

from saliency_tubes.cli.explain import main
from saliency_tubes.data.synthetic import CLASSES
from saliency_tubes.errors import BadArgument
from saliency_tubes.explain import check_layers, explain, multi_layer_methods, takes_layers

from helpers.checkpoints import tiny_checkpoint
from helpers.common import REPO


def _main(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(a) for a in argv])
    return exit_.value.code, capsys.readouterr()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("c") / "tiny.ckpt", list(CLASSES))


def _evaluate(ckpt, root, out, *extra):
    return [
        "--checkpoint",
        ckpt,
        "--evaluate",
        "--data.root",
        root,
        "--out",
        out,
        "--steps",
        "2",
        "--max-clips",
        "3",
    ] + [*extra]


def test_the_registry_says_which_methods_take_a_list_of_layers():
    assert takes_layers("layercam") and {"layercam", "pyramid"} <= set(multi_layer_methods())
    assert not takes_layers("saliency_tubes") and not takes_layers("gradcam")  # no attribute: one layer
    check_layers(["saliency_tubes", "layercam"], ["layer2"])  # one of them takes them: fine
    check_layers("gradcam", None)
    with pytest.raises(BadArgument, match="--layers applies to --method .*layercam.*; gradcam explains one layer"):
        check_layers("gradcam", ["layer3"])
    with pytest.raises(BadArgument, match="one or more module names"):
        check_layers("layercam", "layer3")  # a string, not a list


def test_layers_with_a_one_layer_method_is_one_line(ckpt, tiny_dataset, tmp_path, capsys):
    video = next((tiny_dataset / "val").rglob("*.mp4"))
    code, out = _main(["--checkpoint", ckpt, video, "--out", tmp_path / "o", "--layers", "layer3"], capsys)
    assert code == 2 and out.err.count("\n") == 1 and "Traceback" not in out.err
    assert out.err.startswith("error: --layers applies to --method ") and "layercam" in out.err
    assert "saliency_tubes explains one layer" in out.err and not (tmp_path / "o").exists()

    argv = _evaluate(ckpt, tiny_dataset, tmp_path / "e", "--methods", "saliency_tubes", "gradcam", "--layers", "layer3")
    code, out = _main(argv, capsys)
    assert code == 2 and out.err.count("\n") == 1
    assert "--layers applies to" in out.err and "saliency_tubes, gradcam explains one layer" in out.err


def test_evaluate_passes_layers_to_the_methods_that_take_them(ckpt, tiny_dataset, tmp_path, capsys):
    methods = ["--methods", "saliency_tubes", "layercam"]
    # an unknown layer reaches the method, which names it: the list was passed on
    code, out = _main(_evaluate(ckpt, tiny_dataset, tmp_path / "bad", *methods, "--layers", "layer9"), capsys)
    assert code == 2 and out.err.endswith(
        "\nerror: --layers 'layer9' is not a layer of ResNet3d (no layer 'layer9'; e.g. conv1, bn1, relu, maxpool, layer1, ...)\n"
    )
    assert "Traceback" not in out.err

    code, out = _main(_evaluate(ckpt, tiny_dataset, tmp_path / "e", *methods, "--layers", "layer1", "layer2"), capsys)
    assert code == 0, out.err
    rows = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert [r["method"] for r in rows] == ["saliency_tubes", "layercam", "ground_truth", "random"]
    assert rows[1]["clips"] == 3


def test_explain_passes_layers_on(ckpt, tiny_dataset):
    """The library call the callback and --evaluate make: layers reach the method and come back per depth."""
    import torch

    from saliency_tubes.models.io import load_model

    model, _ = load_model(ckpt, device="cpu")
    clips = torch.randn(2, 3, 4, 32, 32)
    result = explain(model, clips, "layercam", layers=["layer1", "layer3"])
    assert list(result.layers) == ["layer1", "layer3"] and result.tubes.shape == (2, 4, 32, 32)
    assert result.layers["layer1"].shape == (2, 4, 16, 16) and result.layers["layer3"].shape == (2, 4, 4, 4)
    with pytest.raises(BadArgument, match="--layers applies to"):
        explain(model, clips, "gradcam", layers=["layer3"])


def test_explain_py_writes_the_pyramid_of_the_layers_asked_for(ckpt, tiny_dataset, tmp_path, capsys):
    video = next((tiny_dataset / "val").rglob("*.mp4"))
    argv = ["--checkpoint", ckpt, video, "--out", tmp_path / "o", "--method", "pyramid", "--no-focus"]
    code, out = _main([*argv, "--layers", "layer2", "layer3", "layer4"], capsys)
    assert code == 0, out.err
    folder = tmp_path / "o" / video.stem
    with np.load(folder / "pyramid.npz") as npz:
        assert list(npz["layers"]) == ["layer2", "layer3", "layer4"]
    result = json.loads((folder / "result.json").read_text())
    assert [d["name"] for d in result["pyramid"]["layers"]] == ["layer2", "layer3", "layer4"]
    assert "pyramid.png" in result["files"] and (folder / "pyramid.png").is_file()


def test_help_lists_layers_and_the_cli_module_stays_small(capsys):
    code, out = _main(["--help"], capsys)
    assert code == 0 and "--layers LAYER [LAYER ...]" in out.out and "layercam" in out.out
    lines = (REPO / "src" / "saliency_tubes" / "cli" / "explain.py").read_text().count("\n")
    assert lines < 150, f"cli/explain.py has {lines} lines: move argument definitions to cli/explain_args.py"
