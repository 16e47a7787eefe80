"""Evaluation metrics and the analysis report.

`write_report` builds a self-contained HTML report of a finished run (cost curve, metrics,
confusion matrix, mislabeled test images, per-layer insight, predictions on labeled
photographs) with its PNG figures beside it. It is imported on first use, because the run
loop imports `itsacat.report.metrics` and should not pay for matplotlib.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from itsacat.report.build import REPORT_FILE, write_report
    from itsacat.report.errors import ReportError

__all__ = ["REPORT_FILE", "ReportError", "write_report"]

_LAZY = {"REPORT_FILE": "itsacat.report.build", "write_report": "itsacat.report.build",
         "ReportError": "itsacat.report.errors"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(_LAZY[name]), name)
