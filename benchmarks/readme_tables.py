"""Write the README's benchmark tables from ``benchmarks/out/*.json`` (or check that they are current).

    python benchmarks/readme_tables.py            # rewrite every block in README.md
    python benchmarks/readme_tables.py --check    # exit 1 when a block differs from what its JSON gives

A block is the text between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``; it becomes the command, date,
commit and machine of ``benchmarks/out/NAME.json``, then its tables, figures and targets. Nothing else in the
README is touched. Files written by ``benchmarks/bench_results.py`` carry every field; a file with only
``figures``, ``targets`` and ``passed`` is shown with what it has. A file with ``evaluation`` (the rows of
``explain.py --evaluate``'s ``evaluation.json``, as ``benchmarks/quality.py`` writes it) becomes the explanation
quality table: one row per method and the random map.

A block opened with ``<!-- bench:NAME pending -->`` may lack its JSON (a run still to be made): it is left as it is
and named as pending; once the JSON exists it is filled like any other.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from bench_results import OUT, REPO, fmt

from saliency_tubes.cli.evaluate import GROUND_TRUTH  # the masks' own row in evaluation.json

BLOCK = re.compile(r"(<!-- bench:([\w.-]+)( pending)? -->\n)(.*?)(<!-- /bench:\2 -->)", re.S)
OPS = {"<=": "≤", ">=": "≥", "<": "<", ">": ">", "==": "="}


def _cell(value: Any) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def _table(columns: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(map(str, columns)) + " |", "|" + "---|" * len(columns)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _targets(targets: Any) -> list[dict[str, Any]]:
    """Targets as a list of dicts, from a list of dicts or a dict keyed by name."""
    if isinstance(targets, dict):
        return [{"name": k, **(v if isinstance(v, dict) else {"value": v})} for k, v in targets.items()]
    return [t if isinstance(t, dict) else {"name": str(t)} for t in targets or []]


def _figures(figures: Any) -> list[list[Any]]:
    if isinstance(figures, dict):
        return [[k, v] for k, v in figures.items()]
    return [[f.get("name", "?"), f.get("value", "")] if isinstance(f, dict) else [str(f), ""] for f in figures or []]


def _mean(row: dict[str, Any], metric: str, digits: int) -> str:
    value = row.get(f"{metric}_mean")
    return "–" if not isinstance(value, (int, float)) or value != value else f"{value:.{digits}f}"


def _share(row: dict[str, Any], metric: str) -> str:
    value = row.get(f"{metric}_beats_random")
    return "–" if not isinstance(value, (int, float)) or value != value else f"{value:.0%}"


def quality_table(rows: list[dict[str, Any]], notes: dict[str, str] | None = None) -> list[str]:
    """The explanation quality table from ``evaluation.json``'s rows: every method, the ground truth (with masks),
    then the random map."""
    notes = notes or {}
    columns = ["method", "lift", "pointing game", "temporal hit", "deletion AUC", "insertion AUC"]
    columns.append("beats random: deletion / insertion")
    body = []
    for row in sorted(rows, key=lambda r: r["method"] == "random"):  # random last, the methods in their order
        method = str(row["method"])
        if method == GROUND_TRUTH and not notes.get(method):
            shown = "ground truth (the actor's mask, a reference)"
        else:
            shown = f"{method} ({notes[method]})" if notes.get(method) else method
        beats = "–" if method == "random" else f"{_share(row, 'deletion_auc')} / {_share(row, 'insertion_auc')}"
        body.append(
            [
                shown,
                _mean(row, "lift", 2),
                _mean(row, "pointing_game", 3),
                _mean(row, "temporal_hit", 3),
                _mean(row, "deletion_auc", 3),
                _mean(row, "insertion_auc", 3),
                beats,
            ]
        )
    return _table(columns, body)


def render(name: str, record: dict[str, Any]) -> str:
    head = [f"`{record.get('command', f'benchmarks/{name}')}`"]
    head += [str(record[k]) for k in ("date",) if record.get(k)]
    head += [f"commit {record['commit']}"] if record.get("commit") else []
    head += [str(record["machine"])] if record.get("machine") else []
    head += [f"load {record['load']}"] if record.get("load") else []
    head += [f"{record['seconds']:.0f} s"] if isinstance(record.get("seconds"), (int, float)) else []
    lines = [" · ".join(head), ""]
    if record.get("evaluation"):
        if record.get("checkpoint"):
            lines += [f"checkpoint `{record['checkpoint']}`", ""]
        training = record.get("training")
        if training:
            line = f"trained by the same command in {training['seconds'] / 60:.1f} min wall"
            if training["val_acc_top1"]:
                curve = " ".join(f"{a:.2f}" for a in training["val_acc_top1"])
                line += f"; val acc per epoch: {curve} (best {max(training['val_acc_top1']):.3f})"
            lines += [line, ""]
        lines += [*quality_table(record["evaluation"], record.get("notes")), ""]
    for table in record.get("tables") or []:
        lines += [f"*{table['title']}*", "", *_table(table["columns"], table["rows"]), ""]
    figures = _figures(record.get("figures"))
    if figures:
        lines += [*_table(["figure", "value"], figures), ""]
    targets = _targets(record.get("targets"))
    if targets:
        rows = []
        for t in targets:
            bound = f"{OPS.get(t.get('op', ''), t.get('op', ''))} {fmt(t['bound'])}" if "bound" in t else ""
            passed = t.get("passed")
            rows.append(
                [t.get("name", "?"), t.get("value", ""), bound, {True: "met", False: "**missed**"}.get(passed, "")]
            )
        lines += [*_table(["target", "measured", "bound", "result"], rows), ""]
    if "passed" in record and record.get("targets"):  # a diagnosis without targets claims none
        lines.append("All targets met." if record["passed"] else "**A target was missed.**")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when a block is out of date")
    parser.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = parser.parse_args()
    text = args.readme.read_text()
    missing, stale, pending = [], [], []

    def replace(match: re.Match) -> str:
        name = match.group(2)
        path = OUT / f"{name}.json"
        if not path.is_file():
            (pending if match.group(3) else missing).append(name)
            return match.group(0)
        block = render(name, json.loads(path.read_text()))
        if block != match.group(4):
            stale.append(name)
        return match.group(1) + block + match.group(5)

    new = BLOCK.sub(replace, text)
    if missing:
        print(f"error: no benchmarks/out/{{{','.join(missing)}}}.json; run the benchmark (make bench) first")
        return 1
    if pending:
        print(f"pending (no JSON yet, left as written): {', '.join(pending)}")
    if args.check:
        if stale:
            print(f"error: README tables out of date: {', '.join(stale)}; run python benchmarks/readme_tables.py")
            return 1
        print("README tables match benchmarks/out/*.json")
        return 0
    args.readme.write_text(new)
    print(f"rewrote {len(stale)} of {len(BLOCK.findall(text))} tables" + (f": {', '.join(stale)}" if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
