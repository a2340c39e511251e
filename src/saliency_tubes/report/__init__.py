"""Self-contained HTML reports: the run report (``<run>/report.html``, rebuilt with
``python -m saliency_tubes.report RUN_DIR``), ``explain.py``'s ``OUT/index.html`` and ``--evaluate``'s
``evaluation.html``. Pages fetch nothing from the network: styles and script are inline, charts are inline SVG, and
videos and images are relative links loaded lazily. No Lightning or torch here: the callback and the CLIs call in.
"""

from .explanations import write_evaluation_page, write_explanation_index
from .run import append_metrics, build_run_report, write_confusion, write_run_info

__all__ = [
    "append_metrics",
    "build_run_report",
    "write_confusion",
    "write_evaluation_page",
    "write_explanation_index",
    "write_run_info",
]
