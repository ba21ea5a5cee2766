"""Verification report (``smile-ref verify``): theory predictions vs simulation.

:mod:`.registry` holds the check registry and the row type (with the verdict definitions),
:mod:`.checks` the checks (one module per group), :mod:`.report` the runner that writes the report.
"""
from .registry import ReportRow, check, compare, exact, known_limitation, measure
from .report import provenance, registered_checks, run_report, select_checks

__all__ = ["ReportRow", "check", "compare", "exact", "measure", "known_limitation",
           "registered_checks", "select_checks", "provenance", "run_report"]
