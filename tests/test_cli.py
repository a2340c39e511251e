"""train.py and explain.py: a few runs as a user would (new processes), the rest in process through ``main(argv)``.

Every test here needs the ``trained`` fixture (a real train.py run), hence ``slow``; the argument cases that need
no checkpoint are in test_cli_args.py.
"""

import json
import logging
import shutil

import numpy as np
import pytest
import torch

from saliency_tubes.cli.explain import main as explain_main
from saliency_tubes.cli.train import main as train_main
from saliency_tubes.data import read_frames, video_info

from helpers.cli import TINY_TRAIN, exit_code, run_script, train_error
from helpers.common import REPO, Trap
from helpers.damage import cut_in_data, zero_middle
from helpers.network import closed_port, silent_listener
from helpers.wandb_records import history

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_dataset):
    cwd = tmp_path_factory.mktemp("run")
    # as a new user: no W&B login and no WANDB_MODE, so train.py itself must choose offline mode
    proc = run_script(
        "train.py",
        "fit",
        "--config",
        str(REPO / "configs" / "default.yaml"),
        "--data.root",
        str(tiny_dataset),
        *TINY_TRAIN,
        cwd=cwd,
        unset=("WANDB_MODE", "WANDB_API_KEY"),
        env={"HOME": str(cwd)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return cwd, proc


def test_train_writes_checkpoints_and_an_offline_wandb_run(trained):
    cwd, proc = trained
    best_line = next(line for line in proc.stdout.splitlines() if line.startswith("Best checkpoint: "))
    best = cwd / best_line.split(": ", 1)[1].split(" (")[0]
    assert best.is_file() and best.parent.parent == cwd / "checkpoints"
    assert (best.parent / "last.ckpt").is_file()
    assert (
        "--data.root" not in (best.parent / "config.yaml").read_text()
        and "input_size: 32" in (best.parent / "config.yaml").read_text()
    )
    assert not (cwd / "config.yaml").exists()
    run_dir = next((cwd / "wandb").glob("offline-run-*"))
    assert best.parent.name.endswith("-" + run_dir.name.split("-")[-1])  # checkpoints/<time>-<W&B run id>/
    videos = list((run_dir / "files" / "media" / "videos" / "tubes").glob("*.mp4"))
    assert len(videos) == 4 * 2  # default num_samples × epochs
    rows = history(next(run_dir.glob("run-*.wandb")))
    assert sum("val/tube_mass_in_gt" in r for r in rows) == 2
    assert "logging offline" in proc.stderr


def _checkpoint(trained):
    return next((trained[0] / "checkpoints").glob("*/last.ckpt"))


def _explain(trained, *args, cwd=None):
    """explain.py as a new process."""
    return run_script("explain.py", "--checkpoint", str(_checkpoint(trained)), *args, cwd=cwd or trained[0])


def _explain_in_process(trained, capsys, *args) -> tuple[int, str, str]:
    """explain.py's main in this process: exit status, stdout, stderr."""
    code = exit_code(explain_main, ["--checkpoint", _checkpoint(trained), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_explain_writes_every_output_at_the_videos_resolution(trained, foreign_video, tmp_path):
    proc = _explain(trained, str(foreign_video), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / foreign_video.stem
    result = json.loads((out / "result.json").read_text())
    info = video_info(foreign_video)
    assert result["video"] == str(foreign_video.resolve())
    assert result["frames"] == list(range(0, info.num_frames, 2))  # every stride-th frame of the whole video
    assert len(result["predictions"]) == 5 and result["predictions"][0] == result["target"] | {}
    assert abs(sum(p["probability"] for p in result["predictions"]) - 1) < 0.3
    assert result["method"] == "saliency_tubes"

    saliency = np.load(out / "saliency.npy")
    assert saliency.dtype == np.float16
    assert saliency.shape == (len(result["frames"]), 97, 131)
    assert saliency.min() >= 0 and saliency.max() <= 1 and saliency.max() > 0.9

    overlay = video_info(out / "overlay.mp4")
    assert overlay.num_frames == len(result["frames"])
    assert (overlay.height, overlay.width) == (98, 132)  # H.264 4:2:0 pads odd sizes by one pixel
    original = read_frames(foreign_video, result["frames"][:3])
    drawn = read_frames(out / "overlay.mp4", [0, 1, 2])[:, :97, :131]
    assert np.abs(drawn.astype(int) - original).mean() > 10  # the heatmap is there

    focus = sorted((out / "focus").glob("*.png"))
    assert [int(p.stem) for p in focus] == result["frames"]
    from PIL import Image

    rgba = np.asarray(Image.open(focus[0]))
    assert rgba.shape == (97, 131, 4)
    np.testing.assert_allclose(rgba[..., 3] / 255.0, saliency[0].astype(float), atol=1 / 255 + 1e-3)
    assert Image.open(out / "tube.png").size[0] > 100


def test_explain_with_gradcam_pp_on_a_named_layer(trained, foreign_video, tmp_path, capsys):
    code, _, err = _explain_in_process(
        trained,
        capsys,
        foreign_video,
        "--out",
        str(tmp_path / "g"),
        "--method",
        "gradcam_pp",
        "--layer",
        "layer3",
        "--no-focus",
    )
    assert code == 0, err
    out = tmp_path / "g" / foreign_video.stem
    result = json.loads((out / "result.json").read_text())
    assert result["method"] == "gradcam_pp"
    saliency = np.load(out / "saliency.npy")
    assert saliency.shape == (len(result["frames"]), 97, 131) and saliency.max() > 0.9


def test_evaluate_writes_a_table_per_method_with_a_random_reference(trained, tiny_dataset, tmp_path):
    proc = _explain(
        trained,
        "--evaluate",
        "--data.root",
        str(tiny_dataset),
        "--max-clips",
        "6",
        "--steps",
        "4",
        "--grid",
        "4",
        "--out",
        str(tmp_path / "eval"),
    )
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    # every built-in method that applies to a 3D CNN (the attention methods are left out with a note)
    # the masks themselves are scored too, before the random map
    methods = ["saliency_tubes", "gradcam", "gradcam_pp", "layercam", "pyramid", "ground_truth", "random"]
    assert [r["method"] for r in rows] == methods
    assert "rollout skipped" in proc.stderr and "attention_relevance skipped" in proc.stderr
    for r in rows:
        assert r["clips"] == 6
        for metric in ("mass_in_gt", "lift", "pointing_game", "temporal_hit", "deletion_auc", "insertion_auc"):
            assert 0 <= r[f"{metric}_mean"] <= (100 if metric == "lift" else 1), metric
    assert rows[-1]["lift_mean"] == pytest.approx(1.0, abs=0.3)  # a random map has no lift
    truth = rows[-2]  # all its mass in the mask (but the 1e-3 ordering its ties), every frame's peak in it
    assert truth["mass_in_gt_mean"] > 0.9 and truth["pointing_game_mean"] == 1.0
    assert truth["lift_mean"] > max(r["lift_mean"] for r in rows if r is not truth)
    assert "insertion_auc_beats_random" in rows[0] and "insertion_auc_beats_random" not in rows[-1]
    header = (tmp_path / "eval" / "evaluation.csv").read_text().splitlines()[0]
    assert header.startswith("method,clips,mass_in_gt_mean")
    assert "saliency_tubes" in proc.stdout


def test_explain_topk_and_named_target(trained, foreign_video, tmp_path, capsys):
    code, _, err = _explain_in_process(
        trained, capsys, foreign_video, "--out", tmp_path / "k", "--topk", "2", "--no-focus"
    )
    assert code == 0, err
    result = json.loads((tmp_path / "k" / foreign_video.stem / "result.json").read_text())
    second = tmp_path / "k" / foreign_video.stem / result["targets"][1]["dir"]
    assert result["targets"][1]["class"] == result["predictions"][1]["class"]
    assert np.load(second / "saliency.npy").shape == np.load(second.parent / "saliency.npy").shape
    code, _, err = _explain_in_process(
        trained, capsys, foreign_video, "--out", tmp_path / "t", "--target", "shrink", "--no-focus"
    )
    assert code == 0, err
    assert json.loads((tmp_path / "t" / foreign_video.stem / "result.json").read_text())["target"]["class"] == "shrink"


def test_explain_folder_with_bad_inputs_goes_on_and_exits_1(trained, foreign_video, tiny_dataset, tmp_path):
    folder = tmp_path / "inputs"
    (folder / "nested").mkdir(parents=True)
    (folder / "nested" / "a.mp4").write_bytes((tiny_dataset / "val" / "grow" / "0000.mp4").read_bytes())
    (folder / "broken.mp4").write_text("not a video")
    (folder / "empty.mp4").write_bytes(b"")
    cut_in_data(folder / "nested" / "a.mp4", folder / "cut.mp4")  # index intact, media data cut in half
    zero_middle(folder / "nested" / "a.mp4", folder / "zeroed.mp4")  # the middle of the media data zeroed
    proc = _explain(
        trained, str(folder), str(tmp_path / "missing.mp4"), str(foreign_video), "--out", str(tmp_path / "o")
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 5, proc.stderr
    for name in ("broken.mp4", "empty.mp4", "missing.mp4", "cut.mp4", "zeroed.mp4"):
        assert sum(name in e for e in errors) == 1, (name, errors)
    assert "Traceback" not in proc.stderr and "[h264" not in proc.stderr  # our line, not FFmpeg's
    made = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert made == ["a", "index.html", foreign_video.stem]  # failed inputs leave nothing behind
    index = (tmp_path / "o" / "index.html").read_text()
    assert index.count('<div class="card"') == 2 and index.count("<tr>") == 1 + 2 + 1 + 5  # summary and failures
    assert (tmp_path / "o" / "a" / "overlay.mp4").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--checkpoint", "{bad}", "{video}", "--out", "o"], "not a PyTorch or safetensors weight file"),
        (["--checkpoint", "{evil}", "{video}", "--out", "o"], "cannot be loaded safely"),
        (["--checkpoint", "{missing}", "{video}", "--out", "o"], "does not exist"),
        (["{video}", "--out", "o"], "--checkpoint"),
        (["--checkpoint", "{ckpt}", "{video}", "--out", "o", "--target", "jump"], "nor a class of this model"),
        (["--checkpoint", "{ckpt}", "{video}", "--out", "o", "--topk", "0"], "at least 1"),
        (["--checkpoint", "{ckpt}", "{video}", "--out", "o", "--target", "99"], "nor a class of this model"),
        (["--checkpoint", "{ckpt}", "{video}", "--out", "{bad}/sub"], "cannot write --out results"),
        (
            ["--checkpoint", "{ckpt}", "{video}", "--out", "o", "--method", "gradcam", "--layer", "nope"],
            "is not a layer",
        ),
    ],
)
def test_explain_bad_checkpoint_or_arguments_exit_2_with_one_line(
    trained, foreign_video, tmp_path, monkeypatch, capsys, args, message
):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.ckpt"
    bad.write_text("nope")
    ckpt = _checkpoint(trained)
    evil = tmp_path / "evil.ckpt"
    torch.save({**torch.load(ckpt, weights_only=True), "trap": Trap(tmp_path / "pwned")}, evil)
    values = {"bad": bad, "missing": tmp_path / "none.ckpt", "video": foreign_video, "ckpt": ckpt, "evil": evil}
    code = exit_code(explain_main, [a.format(**values) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert not (tmp_path / "pwned").exists()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_explain_from_a_safetensors_export(trained, foreign_video, tmp_path, capsys):
    exported = tmp_path / "model.safetensors"
    code, _, err = _explain_in_process(trained, capsys, "--export-safetensors", exported)
    assert code == 0, err
    assert exported.is_file()
    code = exit_code(explain_main, ["--checkpoint", exported, foreign_video, "--out", tmp_path / "o", "--no-focus"])
    assert code == 0, capsys.readouterr().err
    code, _, err = _explain_in_process(trained, capsys, foreign_video, "--out", tmp_path / "ref", "--no-focus")
    assert code == 0, err
    a = np.load(tmp_path / "o" / foreign_video.stem / "saliency.npy")
    b = np.load(tmp_path / "ref" / foreign_video.stem / "saliency.npy")
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("server", ["refused", "silent"])
def test_training_goes_on_when_wandb_cannot_start(tmp_path, tiny_dataset, server):
    """An online W&B that cannot be reached: a closed port, or a listener that accepts connections and never answers
    (both on loopback). The project's own start-up timeout (here --wandb_init_timeout 3; nothing from the
    environment: WANDB_INIT_TIMEOUT is removed) lets training go on with one warning, metrics to CSV, tubes on disk."""
    with silent_listener() as (port, accepted):
        if server == "refused":
            port = closed_port()
        unreachable = {"WANDB_MODE": "online", "WANDB_API_KEY": "a" * 40, "WANDB_BASE_URL": f"http://127.0.0.1:{port}"}
        proc = run_script(
            "train.py",
            "fit",
            "--config",
            str(REPO / "configs" / "default.yaml"),
            "--data.root",
            str(tiny_dataset),
            *TINY_TRAIN,
            "--wandb_init_timeout",
            "3",
            cwd=tmp_path,
            env=unreachable,
            unset=("WANDB_INIT_TIMEOUT",),
            timeout=240,
        )
        if server == "silent":
            assert accepted(), "W&B never reached the silent listener: this case tested nothing"
    assert proc.returncode == 0, proc.stderr[-3000:]
    warned = [line for line in proc.stderr.splitlines() if "logger could not start" in line]
    assert len(warned) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    debug_log = next((tmp_path / "wandb").glob("run-*/logs/debug.log")).read_text()
    assert "communicating run to backend with 3.0 second timeout" in debug_log  # ours, not W&B's 90 s
    run = next((tmp_path / "checkpoints").iterdir())
    metrics = (next(run.rglob("metrics.csv"))).read_text()
    assert "val/acc_top1" in metrics and "val/tube_mass_in_gt" in metrics
    assert len(list((run / "tubes").rglob("sample_*/overlay.mp4"))) == 4 * 2
    assert (run / "last.ckpt").is_file()


def test_resuming_a_checkpoint_with_another_class_count(trained, tmp_path, tiny_dataset, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "five"
    shutil.copytree(tiny_dataset, root)
    for split in ("train", "val"):
        shutil.rmtree(root / split / "shrink")
    assert "has 6 classes, the data has 5" in train_error(capsys, root, "--ckpt_path", _checkpoint(trained))


def test_fine_tuning_through_train_py(trained, tiny_dataset, tmp_path, monkeypatch, caplog):
    """--model.pretrained with a checkpoint of this project, frozen stem, lower backbone learning rate."""
    monkeypatch.chdir(tmp_path)
    ckpt = _checkpoint(trained)
    with caplog.at_level(logging.INFO):
        code = exit_code(
            train_main,
            [
                "fit",
                "--config",
                REPO / "configs" / "default.yaml",
                "--data.root",
                tiny_dataset,
                *TINY_TRAIN,
                "--trainer.max_epochs",
                "1",
                "--trainer.logger",
                "false",
                "--model.pretrained",
                ckpt,
                "--model.freeze_stages",
                "1",
                "--model.backbone_lr_mult",
                "0.2",
            ],
        )
    assert code == 0
    assert "saliency-tubes checkpoint: " in caplog.text and "tensors kept" in caplog.text
    tuned = torch.load(next((tmp_path / "checkpoints").glob("*/last.ckpt")), weights_only=True)["state_dict"]
    source = torch.load(ckpt, weights_only=True)["state_dict"]
    assert torch.equal(tuned["model.conv1.weight"], source["model.conv1.weight"])  # frozen stem
    assert not torch.equal(tuned["model.layer2.0.conv1.weight"], source["model.layer2.0.conv1.weight"])
