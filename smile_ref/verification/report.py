"""The verification report: theory checks, predicted vs measured, PASS/FAIL.

Each check is a function registered with :func:`check` that returns one or
more :class:`CheckResult` rows.  A row compares a *prediction* (from
``theory/`` or a closed form) with a *measurement* (a simulation of the
discrete sampler) whose standard error ``se`` comes from batch means / ESS; it
passes when ``|measured - predicted| <= z * se`` with ``z`` the two-sided
normal quantile at the check's failure probability ``alpha`` (Bonferroni over
the rows of a check).  Deterministic checks (exactness against an ODE solve,
say) set ``se = None`` and give an absolute tolerance instead.

:func:`run_report` runs the checks (``quick=True`` selects the quick subset),
and writes ``report.md``, ``report.json`` and, when matplotlib is installed,
PNG plots produced by the checks.
"""
from __future__ import annotations

import math
import os
import platform
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from ..io import atomic_write_json, atomic_write_text

__all__ = ["CheckResult", "check", "registered_checks", "run_report", "z_for"]


@dataclass
class CheckResult:
    check: str
    quantity: str
    predicted: float
    measured: float
    se: float | None
    tolerance: float
    passed: bool | None  # None: a measurement reported without a claim (shown as MEASURED)
    alpha: float | None = None
    notes: str = ""
    plot: str | None = None


def z_for(alpha: float, n_tests: int = 1) -> float:
    """Two-sided normal quantile for family-wise failure probability ``alpha`` over ``n_tests``."""
    from scipy.stats import norm

    return float(norm.isf(alpha / (2 * n_tests)))


def compare(check: str, quantity: str, predicted: float, measured: float, se: float,
            alpha: float = 1e-3, n_tests: int = 1, notes: str = "") -> CheckResult:
    """Statistical row: pass iff ``|measured - predicted| <= z_{alpha} * se``."""
    tol = z_for(alpha, n_tests) * float(se)
    ok = bool(math.isfinite(measured) and abs(measured - predicted) <= tol)
    return CheckResult(check, quantity, float(predicted), float(measured), float(se), tol, ok, alpha, notes)


def exact(check: str, quantity: str, predicted: float, measured: float, tolerance: float,
          notes: str = "") -> CheckResult:
    """Deterministic row: pass iff ``|measured - predicted| <= tolerance``."""
    ok = bool(math.isfinite(measured) and abs(measured - predicted) <= tolerance)
    return CheckResult(check, quantity, float(predicted), float(measured), None, float(tolerance), ok, None, notes)


def measure(check: str, quantity: str, reference: float, measured: float, se: float | None,
            notes: str = "") -> CheckResult:
    """A measurement shown next to a reference value without a pass/fail claim (known limitations)."""
    return CheckResult(check, quantity, float(reference), float(measured), None if se is None else float(se),
                       math.nan, None, None, notes)


@dataclass
class _Registered:
    name: str
    func: Callable[..., list[CheckResult]]
    quick: bool
    group: str
    description: str = field(default="")


_CHECKS: dict[str, _Registered] = {}


def check(name: str, *, group: str, quick: bool = True):
    """Register ``func(outdir, quick) -> list[CheckResult]`` as a report check."""

    def deco(func):
        _CHECKS[name] = _Registered(name, func, quick, group, (func.__doc__ or "").strip().split("\n")[0])
        return func

    return deco


def registered_checks() -> dict[str, _Registered]:
    from . import checks  # noqa: F401  (registers the checks)

    return dict(_CHECKS)


def _verdict(passed: bool | None) -> str:
    return "MEASURED" if passed is None else ("PASS" if passed else "**FAIL**")


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def run_report(outdir: str = "verification-report", quick: bool = True, only: list[str] | None = None,
               progress: bool = True) -> dict:
    """Run the checks and write the report; returns the JSON document."""
    os.makedirs(outdir, exist_ok=True)
    checks = registered_checks()
    selected = [c for c in checks.values() if (c.quick or not quick) and (not only or c.name in only)]
    rows: list[CheckResult] = []
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    for c in selected:
        if progress:
            print(f"[verify] {c.group} / {c.name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            rows.extend(c.func(outdir, quick))
        except Exception:  # noqa: BLE001 - a crashing check is reported, not hidden
            errors[c.name] = traceback.format_exc()
            rows.append(CheckResult(c.name, "(check raised)", math.nan, math.nan, None, math.nan, False,
                                    notes="see errors"))
        timings[c.name] = time.perf_counter() - t0
    n_pass = sum(r.passed is True for r in rows)
    n_measured = sum(r.passed is None for r in rows)
    doc = {
        "summary": {"passed": n_pass, "failed": len(rows) - n_pass - n_measured, "measured": n_measured,
                    "checks": len(selected), "quick": quick},
        "platform": {"python": platform.python_version(), "machine": platform.machine()},
        "rows": [asdict(r) for r in rows],
        "groups": {c.name: c.group for c in selected},
        "timings_s": timings,
        "errors": errors,
    }
    atomic_write_json(os.path.join(outdir, "report.json"), doc, indent=2, sort_keys=False, default=float)
    lines = [
        "# smile_ref verification report",
        "",
        f"{n_pass} of {len(rows) - n_measured} rows passed ({'quick' if quick else 'full'} run, {len(selected)} checks); "
        f"{n_measured} rows are measurements of known limitations, reported without a claim (MEASURED).",
        "",
        "A statistical row passes when |measured − predicted| ≤ z·SE, with z the two-sided normal quantile",
        "at the stated failure probability α (Bonferroni within a check); a deterministic row has no SE.",
        "",
        "| group | check | quantity | predicted | measured | SE | tolerance | α | result |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {doc['groups'].get(r.check, '')} | {r.check} | {r.quantity} | {_fmt(r.predicted)} | {_fmt(r.measured)} "
            f"| {_fmt(r.se)} | {_fmt(r.tolerance)} | {_fmt(r.alpha)} | {_verdict(r.passed)} |"
        )
    notes = [r for r in rows if r.notes]
    if notes:
        lines += ["", "## Notes", ""] + [f"- **{r.check} / {r.quantity}**: {r.notes}" for r in notes]
    plots = sorted({r.plot for r in rows if r.plot})
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    if errors:
        lines += ["", "## Errors", ""] + [f"### {k}\n```\n{v}\n```" for k, v in errors.items()]
    atomic_write_text(os.path.join(outdir, "report.md"), "\n".join(lines) + "\n")
    return doc
