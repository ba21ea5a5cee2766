"""Verification report (``smile-ref verify``): theory predictions vs simulation."""
from .report import CheckResult, check, compare, exact, measure, registered_checks, run_report

__all__ = ["CheckResult", "check", "compare", "exact", "measure", "registered_checks", "run_report"]
