"""Reports of a question: plots (matplotlib, Agg) and report.md / index.html (pandas tables).

`from reports import write_report` is lazy, so importing the package does not load matplotlib.
"""
from typing import Any

__all__ = ["write_report"]


def __getattr__(name: str) -> Any:
    if name == "write_report":
        from reports.report import write_report
        return write_report
    raise AttributeError(f"module 'reports' has no attribute {name!r}")
