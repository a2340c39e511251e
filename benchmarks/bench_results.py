"""What every benchmark writes: its figures and targets as JSON, in ``benchmarks/out/<name>.json``.

    {"name", "command", "date", "commit", "machine", "load", "seconds", "figures", "tables", "targets", "passed"}

- ``figures``: name → number or text (the measurements, in the units their names say);
- ``tables``: optional ``[{"title", "columns", "rows"}]`` for figures that read best as a table;
- ``targets``: ``[{"name", "value", "op", "bound", "passed"}]``; ``passed`` is true when every target is met.

``load`` is the 1-minute load average at the start and the end of the run: on a shared machine, a load above the
CPU count means the timings were taken while other work competed for the CPUs.

A script builds a :class:`Results`, adds figures and targets, and ends with ``sys.exit(results.write())``: exit
status 1 when a target is missed, so ``make bench`` (``benchmarks/run_all.py``) can fail after running them all.
``benchmarks/readme_tables.py`` turns the files into the README's tables. ``BENCH_OUT`` overrides the folder.
"""

from __future__ import annotations

import datetime as _dt
import json
import operator
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("BENCH_OUT", REPO / "benchmarks" / "out"))
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}


def commit() -> str:
    """The checked-out commit (short), with ``+dirty`` when tracked code (src, benchmarks; not the results in
    benchmarks/out, which a run of ``make bench`` rewrites as it goes) differs from it."""
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                "src",
                "benchmarks",
                ":!benchmarks/out",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


def machine() -> str:
    """CPU model and count; the GPU if any, torch's version and threads when the script uses torch."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    text = f"{platform.system()} {platform.machine()}, {cores} × {cpu}"
    torch = sys.modules.get("torch")  # a script that did not import torch did not time it
    if torch is not None:
        if torch.cuda.is_available():
            text += f", {torch.cuda.get_device_name(0)}"
        text += f", torch {torch.__version__}, {torch.get_num_threads()} threads"
    return text


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def fmt(value: Any) -> str:
    """A figure as the README shows it: about three significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


class Results:
    """Figures and targets of one benchmark run; :meth:`write` saves them and returns the exit status."""

    def __init__(self, name: str, argv: list[str] | None = None):
        self.name = name
        self.command = shlex.join(
            ["python", os.path.relpath(sys.argv[0], REPO), *(sys.argv[1:] if argv is None else argv)]
        )
        self.date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        self.commit = commit()
        self._start = time.perf_counter()
        self._load = _load()
        self.figures: dict[str, Any] = {}
        self.tables: list[dict[str, Any]] = []
        self.targets: list[dict[str, Any]] = []

    def figure(self, name: str, value: Any) -> Any:
        self.figures[name] = round(value, 6) if isinstance(value, float) else value
        return value

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        self.tables.append({"title": title, "columns": columns, "rows": rows})

    def target(self, name: str, value: float, op: str, bound: float) -> bool:
        passed = bool(_OPS[op](value, bound))
        self.targets.append({"name": name, "value": round(float(value), 6), "op": op, "bound": bound, "passed": passed})
        return passed

    @property
    def passed(self) -> bool:
        return all(t["passed"] for t in self.targets)

    def write(self) -> int:
        """Print the targets, write ``OUT/<name>.json``; 0 when every target is met, else 1."""
        record = {
            "name": self.name,
            "command": self.command,
            "date": self.date,
            "commit": self.commit,
            "machine": machine(),
            "load": f"{self._load} → {_load()}",
            "seconds": round(time.perf_counter() - self._start, 1),
            "figures": self.figures,
            "tables": self.tables,
            "targets": self.targets,
            "passed": self.passed,
        }
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{self.name}.json"
        path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
        print(f"\n{'target':52s} {'value':>9s}  bound")
        for t in self.targets:
            mark = "pass" if t["passed"] else "MISSED"
            print(f"{t['name']:52s} {fmt(t['value']):>9s}  {t['op']} {fmt(t['bound'])}  {mark}")
        print(f"{'all targets met' if self.passed else 'TARGET MISSED'}; wrote {os.path.relpath(path, REPO)}")
        return 0 if self.passed else 1
