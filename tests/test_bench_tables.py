"""The benchmarks' JSON records and the README tables made from them (no timing: the scripts' plumbing only)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# A tiny "benchmark": two figures, one target met and one as the command line says.
SCRIPT = """
import sys
from bench_results import Results
r = Results("tiny")
r.figure("ms", 12.3456)
r.table("a table", ["a", "b"], [["x", 1.5]])
r.target("ratio", 1.02, "<=", 1.05)
r.target("speed-up", float(sys.argv[1]), ">=", 20)
sys.exit(r.write())
"""


def _run(args, out: Path, cwd: Path = REPO) -> subprocess.CompletedProcess:
    env = {**os.environ, "BENCH_OUT": str(out), "PYTHONPATH": str(REPO / "benchmarks")}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_a_missed_target_exits_1_and_the_readme_block_follows_the_json(tmp_path):
    out = tmp_path / "out"
    met = _run(["-c", SCRIPT, "25"], out)
    assert met.returncode == 0, met.stderr
    record = json.loads((out / "tiny.json").read_text())
    assert {"command", "date", "commit", "machine", "figures", "targets", "passed"} <= set(record)
    assert record["passed"] is True and record["figures"]["ms"] == 12.3456

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- bench:tiny -->\nhand-copied 309×\n<!-- /bench:tiny -->\nrest\n")
    tables = [str(REPO / "benchmarks" / "readme_tables.py"), "--readme", str(readme)]
    stale = _run([*tables, "--check"], out)
    assert stale.returncode == 1 and "out of date: tiny" in stale.stdout
    assert _run(tables, out).returncode == 0
    text = readme.read_text()
    assert "hand-copied 309×" not in text and "| ratio | 1.02 | ≤ 1.05 | met |" in text and text.endswith("rest\n")
    assert "| x | 1.50 |" in text and f"commit {record['commit']}" in text
    assert _run([*tables, "--check"], out).returncode == 0

    missed = _run(["-c", SCRIPT, "4.2"], out)
    assert missed.returncode == 1 and "TARGET MISSED" in missed.stdout
    assert json.loads((out / "tiny.json").read_text())["passed"] is False
    stale = _run([*tables, "--check"], out)  # the README still shows the run that met it
    assert stale.returncode == 1
    assert _run(tables, out).returncode == 0
    assert "| speed-up | 4.20 | ≥ 20 | **missed** |" in readme.read_text()
    assert "All targets met." not in readme.read_text() and "**A target was missed.**" in readme.read_text()

    # a diagnosis (figures, no targets) claims none
    diagnosis = (
        'from bench_results import Results\nr = Results("tiny")\nr.figure("share", 0.5)\nraise SystemExit(r.write())'
    )
    assert _run(["-c", diagnosis], out).returncode == 0
    assert _run(tables, out).returncode == 0
    text = readme.read_text()
    assert "| share | 0.5 |" in text and "targets met" not in text and "missed" not in text


def test_a_block_without_its_json_is_a_one_line_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("<!-- bench:nothing -->\n<!-- /bench:nothing -->\n")
    result = _run([str(REPO / "benchmarks" / "readme_tables.py"), "--readme", str(readme)], tmp_path / "out")
    assert result.returncode == 1 and result.stdout.startswith("error: no benchmarks/out/")
    assert "Traceback" not in result.stderr


def _required_arguments(script: Path) -> list[str]:
    """The command-line arguments a script's argparse parser cannot do without (read from its source)."""
    import ast

    required = []
    for node in ast.walk(ast.parse(script.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        flags = {k.arg: k.value for k in node.keywords}
        is_required = isinstance(flags.get("required"), ast.Constant) and flags["required"].value is True
        if node.func.attr == "add_mutually_exclusive_group" and is_required:
            required.append("one of a required group")
        if node.func.attr == "add_argument" and node.args and isinstance(node.args[0], ast.Constant):
            name = str(node.args[0].value)
            positional = not name.startswith("-") and flags.get("nargs") is None
            if is_required or positional:
                required.append(name)
    return required


def test_make_bench_runs_every_script_that_needs_no_arguments_and_leaves_the_others_to_their_commands():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import run_all
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    here = REPO / "benchmarks"
    for _, script, extra in run_all.jobs():
        assert extra or not _required_arguments(here / script), f"make bench would fail on {script}"
    assert all(_required_arguments(here / f"{name}.py") for name in run_all.BY_HAND)
    listed = {script for _, script, _ in run_all.jobs()}
    skipped = {p.name for p in here.glob("*.py")} - listed
    assert {Path(n).stem for n in skipped} == run_all.HELPERS | run_all.BY_HAND
