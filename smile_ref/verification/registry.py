"""The verification report's check registry and its row type.

A *check* is a function ``func(outdir, quick) -> list[ReportRow]`` registered with :func:`check`; a
*row* (:class:`ReportRow`) states one quantity, its theoretical prediction (if there is one), an
optional labelled reference value, the measurement with its standard error, and a verdict:

``PASS``
    ``|measured - predicted| <= tolerance``.  For a statistical row the tolerance is ``z * SE`` with
    ``z`` the two-sided normal quantile at the row's failure probability ``alpha`` (Bonferroni over the
    rows of its check); for a deterministic row (``se`` is None) it is an absolute tolerance.
``FAIL``
    The measurement is not finite or lies outside the tolerance around the prediction.
``MEASURED``
    A benchmark or measurement with no theoretical prediction to compare against (``predicted`` is
    None); a ``reference`` value (the paper's number, a Monte-Carlo noise level, ...) may be shown for
    context.  No claim is made, so the row can neither pass nor fail.
``KNOWN-LIMITATION``
    The quantity has an exact value (``predicted``) that the method is documented not to reach in
    this regime (e.g. MCLMC without preconditioning in Neal's funnel).  The row quantifies the gap;
    it makes no claim and does not count as a failure.
``ERROR``
    The check raised an exception (the traceback is in the report); counted as a failure.

This module imports nothing from the report runner (:mod:`smile_ref.verification.report`) nor from
the checks (:mod:`smile_ref.verification.checks`): both import it.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

from ..diagnostics.stat_tests import z_critical

__all__ = ["VERDICTS", "REFERENCE_LABELS", "ReportRow", "RegisteredCheck", "CHECKS", "check", "compare", "exact",
           "measure", "known_limitation", "z_for"]

#: Verdict -> its definition (printed at the top of report.md).
VERDICTS = {
    "PASS": "|measured − predicted| ≤ tolerance. Statistical rows: tolerance = z·SE, z the two-sided normal "
            "quantile at the failure probability α (Bonferroni over the rows of a check); deterministic rows "
            "(no SE): an absolute tolerance.",
    "FAIL": "the measurement is not finite or lies outside the tolerance around the prediction.",
    "MEASURED": "a benchmark or measurement with no theoretical prediction to compare against; the reference "
                "column, when filled, gives context (its label says what it is). No claim, neither pass nor fail.",
    "KNOWN-LIMITATION": "the quantity has an exact value (predicted) that the method is documented not to reach "
                        "in this regime; the row quantifies the gap, makes no claim and is not a failure.",
    "ERROR": "the check raised an exception (traceback at the end of the report); counted as a failure.",
}

#: Reference label -> what the reference value is (printed under the verdict definitions).
REFERENCE_LABELS = {
    "target": "the exact value under the target distribution (what an unbiased sampler would give)",
    "MC noise level": "the value of the statistic expected from the run's own Monte-Carlo error alone, i.e. "
                      "if the sampler were unbiased (for b²: (1/d) Σ_i s_i²/Var[x_i²], s_i the batch-means SE "
                      "of Ê[x_i²])",
    "paper best": "the best value reported in Sommer et al. (2026), with 10 members and the full budget",
    "uncorrected SGLD": "the prediction for SGLD without the noise correction",
    "OU approximation": "the continuous-time Ornstein-Uhlenbeck approximation (Mandt et al. 2017, Eq. 13)",
    "T→∞ limit": "the limit of T·Var(iterate average) as T → ∞ (Mandt et al. 2017, Eq. 30-31)",
    "continuous-time limit": "the step size → 0 limit of the same sampler",
}


@dataclass
class ReportRow:
    """One row of the verification report (field meanings: module docstring).

    ``predicted`` holds only a theoretical prediction of ``measured`` (None when there is none);
    ``reference`` is any other value shown for comparison, with ``reference_label`` one of
    :data:`REFERENCE_LABELS`; ``se`` is None for deterministic rows; ``tolerance`` is the half-width
    of the PASS interval (None when the row makes no claim).
    """

    check: str
    quantity: str
    measured: float | None
    se: float | None
    predicted: float | None
    tolerance: float | None
    verdict: str
    alpha: float | None = None
    reference: float | None = None
    reference_label: str | None = None
    notes: str = ""
    plot: str | None = None

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {sorted(VERDICTS)}, got {self.verdict!r}")
        if self.reference is not None and self.reference_label not in REFERENCE_LABELS:
            raise ValueError(f"reference_label must be one of {sorted(REFERENCE_LABELS)} when a reference is "
                             f"given, got {self.reference_label!r}")

    @property
    def passed(self) -> bool | None:
        """True for PASS, False for FAIL/ERROR, None for rows without a claim."""
        return {"PASS": True, "FAIL": False, "ERROR": False}.get(self.verdict)


def _f(v) -> float | None:
    return None if v is None else float(v)


def z_for(alpha: float, n_tests: int = 1) -> float:
    """Two-sided normal quantile for family-wise failure probability ``alpha`` over ``n_tests``.

    Examples
    --------
    >>> round(z_for(0.05), 3)
    1.96
    """
    return z_critical(alpha, n_tests)


def compare(check: str, quantity: str, predicted: float, measured: float, se: float, alpha: float = 1e-3,
            n_tests: int = 1, notes: str = "", reference: float | None = None,
            reference_label: str | None = None) -> ReportRow:
    """Statistical row: PASS iff ``|measured - predicted| <= z_for(alpha, n_tests) * se``.

    Examples
    --------
    >>> compare("demo", "mean", 0.0, 0.01, 0.01).verdict
    'PASS'
    """
    tol = z_for(alpha, n_tests) * float(se)
    ok = bool(math.isfinite(measured) and abs(measured - predicted) <= tol)
    return ReportRow(check, quantity, float(measured), float(se), float(predicted), tol, "PASS" if ok else "FAIL",
                     alpha, _f(reference), reference_label, notes)


def exact(check: str, quantity: str, predicted: float, measured: float, tolerance: float, notes: str = "",
          reference: float | None = None, reference_label: str | None = None) -> ReportRow:
    """Deterministic row: PASS iff ``|measured - predicted| <= tolerance``.

    Examples
    --------
    >>> exact("demo", "residual", 0.0, 1e-14, 1e-12).verdict
    'PASS'
    """
    ok = bool(math.isfinite(measured) and abs(measured - predicted) <= tolerance)
    return ReportRow(check, quantity, float(measured), None, float(predicted), float(tolerance),
                     "PASS" if ok else "FAIL", None, _f(reference), reference_label, notes)


def measure(check: str, quantity: str, measured: float, se: float | None = None, *, reference: float | None = None,
            reference_label: str | None = None, notes: str = "") -> ReportRow:
    """A measurement without a prediction (verdict MEASURED), optionally next to a labelled reference.

    Examples
    --------
    >>> r = measure("demo", "test LPPD", 0.21, reference=0.28, reference_label="paper best")
    >>> r.verdict, r.predicted
    ('MEASURED', None)
    """
    return ReportRow(check, quantity, float(measured), _f(se), None, None, "MEASURED", None, _f(reference),
                     reference_label, notes)


def known_limitation(check: str, quantity: str, predicted: float, measured: float, se: float | None = None, *,
                     notes: str = "", reference: float | None = None,
                     reference_label: str | None = None) -> ReportRow:
    """The exact value ``predicted`` that the method is documented to miss here (verdict KNOWN-LIMITATION).

    Examples
    --------
    >>> known_limitation("demo", "E[theta^2]", 9.0, 6.1, 0.3).verdict
    'KNOWN-LIMITATION'
    """
    return ReportRow(check, quantity, float(measured), _f(se), float(predicted), None, "KNOWN-LIMITATION", None,
                     _f(reference), reference_label, notes)


@dataclass
class RegisteredCheck:
    """A registered check: ``func(outdir, quick) -> list[ReportRow]``.

    ``quick``: part of the quick subset (``smile-ref verify --quick``); ``seeds``: the fixed seeds its
    random streams start from (recorded in the report's provenance).
    """

    name: str
    func: Callable[..., list[ReportRow]]
    quick: bool
    group: str
    description: str = ""
    seeds: tuple[int, ...] = field(default=())


#: name -> :class:`RegisteredCheck`, filled by :func:`check` when the check modules are imported.
CHECKS: dict[str, RegisteredCheck] = {}


def _first_paragraph(doc: str | None) -> str:
    para = (doc or "").strip().split("\n\n")[0]
    return re.sub(r"\s+", " ", para).strip()


def check(name: str, *, group: str, quick: bool = True, seeds=(), description: str | None = None):
    """Register ``func(outdir, quick) -> list[ReportRow]`` as the report check ``name``.

    ``description`` (one line, shown by ``smile-ref verify --list``) defaults to the first paragraph
    of the function's docstring; ``seeds`` lists the fixed seeds the check uses.

    Examples
    --------
    >>> @check("demo_check", group="demo", seeds=(0,))
    ... def demo_check(outdir, quick):
    ...     '''A demonstration.'''
    ...     return [exact("demo_check", "1 + 1", 2.0, 1.0 + 1.0, 0.0)]
    >>> CHECKS.pop("demo_check").description
    'A demonstration.'
    """

    def deco(func):
        desc = description if description is not None else _first_paragraph(func.__doc__)
        CHECKS[name] = RegisteredCheck(name, func, quick, group, desc, tuple(int(s) for s in seeds))
        return func

    return deco
