"""07 the report: report.html for a run, a compare or a search, built from the JSON files they wrote, and the list
of the runs in an output directory (`tunesmith report`, `tunesmith runs`)."""

from .build import build_report, rebuild, write_report

__all__ = ["build_report", "rebuild", "write_report"]
