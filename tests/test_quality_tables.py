"""The README's explanation quality tables are generated: ``benchmarks/quality.py`` turns what
``explain.py --evaluate`` wrote into ``benchmarks/out/NAME.json`` and ``benchmarks/readme_tables.py`` renders it
(every method, then the random map); a block still to be measured is marked pending."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from saliency_tubes.data.synthetic import CLASSES

from helpers.checkpoints import tiny_checkpoint
from helpers.common import REPO

BENCH = REPO / "benchmarks"


def _run(args, out: Path) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(BENCH), str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "BENCH_OUT": str(out), "PYTHONPATH": path}
    return subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True)


def _table_rows(text: str, name: str) -> list[list[str]]:
    block = text.split(f"<!-- bench:{name}")[1].split(f"<!-- /bench:{name} -->")[0]
    lines = [line for line in block.splitlines() if line.startswith("| ")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def test_a_checkpoint_scored_by_evaluate_becomes_the_readme_table(tmp_path, tiny_dataset):
    ckpt = tiny_checkpoint(tmp_path / "tiny.ckpt", list(CLASSES))
    out = tmp_path / "out"
    argv = [BENCH / "quality.py", "--name", "q", "--checkpoint", ckpt, "--data-root", tiny_dataset, "--split", "val"]
    argv += [
        "--note",
        "gradcam=layer4, 1×4×4",
        "--",
        "--methods",
        "saliency_tubes",
        "gradcam",
        "--steps",
        "2",
        "--max-clips",
        "4",
    ]
    made = _run(argv, out)
    assert made.returncode == 0, made.stderr[-2000:]
    record = json.loads((out / "q.json").read_text())
    assert {"command", "date", "commit", "machine", "checkpoint", "evaluation"} <= set(record)
    assert [r["method"] for r in record["evaluation"]] == ["saliency_tubes", "gradcam", "ground_truth", "random"]
    assert record["evaluation"][0]["clips"] == 4

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:q -->\n| hand | made |\n<!-- /bench:q -->\nrest\n")
    tables = [BENCH / "readme_tables.py", "--readme", readme]
    stale = _run([*tables, "--check"], out)
    assert stale.returncode == 1 and "out of date: q" in stale.stdout
    assert _run(tables, out).returncode == 0 and _run([*tables, "--check"], out).returncode == 0
    rows = _table_rows(readme.read_text(), "q")
    assert rows[0] == [
        "method",
        "lift",
        "pointing game",
        "temporal hit",
        "deletion AUC",
        "insertion AUC",
        "beats random: deletion / insertion",
    ]
    assert [r[0] for r in rows[1:]] == [
        "saliency_tubes",
        "gradcam (layer4, 1×4×4)",
        "ground truth (the actor's mask, a reference)",
        "random",
    ]
    first = record["evaluation"][0]
    assert rows[1][1] == f"{first['lift_mean']:.2f}" and rows[1][4] == f"{first['deletion_auc_mean']:.3f}"
    assert rows[1][6] == f"{first['deletion_auc_beats_random']:.0%} / {first['insertion_auc_beats_random']:.0%}"
    assert rows[4][6] == "–" and readme.read_text().endswith("rest\n")


def test_a_pending_block_may_lack_its_json_until_it_is_measured(tmp_path):
    out = tmp_path / "out"
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:later pending -->\n*not measured yet*\n<!-- /bench:later -->\n")
    check = _run([BENCH / "readme_tables.py", "--readme", readme, "--check"], out)
    assert check.returncode == 0 and "pending (no JSON yet, left as written): later" in check.stdout
    readme.write_text("<!-- bench:later -->\n*not measured yet*\n<!-- /bench:later -->\n")  # not marked: an error
    assert _run([BENCH / "readme_tables.py", "--readme", readme, "--check"], out).returncode == 1

    rows = [{"method": "toy", "clips": 2, "lift_mean": 3.0}, {"method": "random", "clips": 2, "lift_mean": 1.0}]
    (tmp_path / "evaluation.json").write_text(json.dumps(rows))
    argv = [BENCH / "quality.py", "--name", "later", "--from-evaluation", tmp_path / "evaluation.json"]
    made = _run([*argv, "--command", "python explain.py --evaluate ...", "--commit", "abc1234"], out)
    assert made.returncode == 0, made.stderr
    readme.write_text("<!-- bench:later pending -->\n*not measured yet*\n<!-- /bench:later -->\n")
    assert _run([BENCH / "readme_tables.py", "--readme", readme, "--check"], out).returncode == 1  # now it is due
    assert _run([BENCH / "readme_tables.py", "--readme", readme], out).returncode == 0
    text = readme.read_text()
    assert "not measured yet" not in text and "commit abc1234" in text
    assert "| toy | 3.00 | – | – | – | – | – / – |" in text and "| random | 1.00 | – | – | – | – | – |" in text


def test_a_file_that_is_not_an_evaluation_is_one_line(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps([{"method": "toy"}]))
    made = _run([BENCH / "quality.py", "--name", "x", "--from-evaluation", tmp_path / "bad.json"], tmp_path / "out")
    assert made.returncode == 1 and made.stderr.strip().startswith("error: not an evaluation.json")
    assert "Traceback" not in made.stderr and not (tmp_path / "out" / "x.json").exists()


def test_the_committed_readme_quality_tables_are_generated():
    """make lint's check, for the quality blocks: the default model's table is what its JSON gives."""
    check = _run([BENCH / "readme_tables.py", "--check"], BENCH / "out")
    assert check.returncode == 0, check.stdout
    record = json.loads((BENCH / "out" / "quality_default.json").read_text())
    rows = _table_rows((REPO / "README.md").read_text(), "quality_default")
    shown = {"ground_truth": "ground truth (the actor's mask, a reference)"}
    assert [r[0] for r in rows[1:]] == [shown.get(r["method"], r["method"]) for r in record["evaluation"]]
    assert rows[-2][0] == shown["ground_truth"] and rows[-1][0] == "random"


@pytest.mark.slow
def test_one_command_trains_and_scores(tmp_path, tiny_dataset):
    """--train: python train.py fit with a config, then --evaluate on the run's best checkpoint."""
    config = tmp_path / "tiny.yaml"
    config.write_text(
        "trainer:\n  max_epochs: 1\n  accelerator: cpu\n  logger: false\n  enable_progress_bar: false\n"
        "  callbacks:\n    - class_path: saliency_tubes.lightning.RunCheckpoint\n"
        f"      init_args:\n        root: {tmp_path / 'ckpts'}\n"
        "    - class_path: saliency_tubes.lightning.SaliencyTubesCallback\n      init_args:\n        num_samples: 1\n"
        "model:\n  arch: resnet3d_10\n  arch_kwargs: {width: 4, conv1_t_size: 3, no_max_pool: true}\n"
        f"data:\n  root: {tiny_dataset}\n  clip_len: 4\n  stride: 2\n  input_size: 32\n  batch_size: 8\n"
        "  num_workers: 0\n"
    )
    out = tmp_path / "out"
    argv = [BENCH / "quality.py", "--name", "t", "--train", config, "--checkpoints", tmp_path / "ckpts"]
    made = _run(
        [
            *argv,
            "--data-root",
            tiny_dataset,
            "--split",
            "val",
            "--",
            "--methods",
            "saliency_tubes",
            "--steps",
            "2",
            "--max-clips",
            "4",
        ],
        out,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    record = json.loads((out / "t.json").read_text())
    assert Path(record["checkpoint"]).name.startswith("epoch=000") and "--train" in record["command"]
    assert [r["method"] for r in record["evaluation"]] == ["saliency_tubes", "ground_truth", "random"]
    # the training's wall time and validation curve come from the run's own metrics.jsonl
    accuracy = float(Path(record["checkpoint"]).stem.split("acc=")[1])
    assert record["training"]["seconds"] > 0 and record["training"]["val_acc_top1"] == [round(accuracy, 3)]
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:t -->\n<!-- /bench:t -->\n")
    assert _run([BENCH / "readme_tables.py", "--readme", readme], out).returncode == 0
    assert f"val acc per epoch: {accuracy:.2f} (best {accuracy:.3f})" in readme.read_text()
