"""Comparison report: tables, significance tests, plots and one self-contained HTML page from
every result of a pipeline run (`build_report`)."""

from mmif.report.build import build_report
from mmif.report.config import ReportConfig

__all__ = ["ReportConfig", "build_report"]
