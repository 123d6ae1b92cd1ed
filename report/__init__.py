"""Comparison report: tables, significance tests, plots and one self-contained HTML page from
every result of a pipeline run (`build_report`).

`build_report` is imported on first use: the task stages import `detection.ap` (the study's
one AP definition) and must not pay for matplotlib and pandas on the way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from report.build import build_report
    from report.config import ReportConfig

__all__ = ["ReportConfig", "build_report"]


def __getattr__(name: str) -> Any:
    if name == "build_report":
        from report.build import build_report

        return build_report
    if name == "ReportConfig":
        from report.config import ReportConfig

        return ReportConfig
    raise AttributeError(f"module 'report' has no attribute {name!r}")
