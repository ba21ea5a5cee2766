"""Host-side helpers for statistical tests and the verification report.

A statistical check compares an estimate with a theoretical prediction using
the estimate's standard error se (from batch means, ESS or an exact formula):

    z = (estimate - prediction) / se,    pass  iff  |z| <= z_{1 - alpha / (2 n_tests)},

a two-sided z-test at family-wise level ``alpha`` with a Bonferroni correction
over ``n_tests`` simultaneous comparisons, so the probability that a correct
implementation fails is at most ``alpha`` (asymptotically, when the estimate is
normal with the stated se).  These functions consume host data (arrays of any
namespace are copied to NumPy) and return Python floats / lists, so results are
JSON-serialisable via ``result._asdict()``.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

import numpy as np
from scipy.stats import norm

from ..backend import to_numpy
from ..backend.validate import check_float_in, check_positive_int

__all__ = ["z_critical", "z_tolerance", "check_close", "CheckResult"]


def _host(a: Any, name: str) -> np.ndarray:
    try:
        plain = isinstance(a, (np.ndarray, np.generic, numbers.Number, list, tuple))
        host = a if plain else to_numpy(a)  # device arrays (CuPy, array_api_strict): explicit copy
        arr = np.asarray(host, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number or array, got {type(a).__name__}") from exc
    return arr


def _out(arr: np.ndarray):
    """Python float for 0-d, nested list otherwise (JSON-friendly)."""
    return float(arr) if arr.ndim == 0 else arr.tolist()


def z_critical(alpha: float = 1e-4, n_tests: int = 1) -> float:
    """z_{1 - alpha/(2 n_tests)}: the two-sided Bonferroni critical value."""
    alpha = check_float_in(alpha, "alpha", 0.0, 1.0, lo_open=True, hi_open=True)
    n_tests = check_positive_int(n_tests, "n_tests")
    return float(norm.isf(alpha / (2.0 * n_tests)))  # isf: no cancellation in 1 - p for small alpha


def z_tolerance(se, alpha: float = 1e-4, n_tests: int = 1):
    """Absolute tolerance z_{1 - alpha/(2 n_tests)} * se (float, or list for array ``se``)."""
    se_h = _host(se, "se")
    if np.any(~np.isfinite(se_h)) or np.any(se_h < 0):
        raise ValueError("se must be finite and >= 0")
    return _out(z_critical(alpha, n_tests) * se_h)


class CheckResult(NamedTuple):
    """Outcome of :func:`check_close` (floats, or lists for array inputs; ``passed`` is a bool).

    ``passed`` is True iff every |z| <= ``z_crit`` = z_{1 - alpha/(2 n_tests)}.
    """

    estimate: Any
    se: Any
    prediction: Any
    z: Any
    passed: bool
    alpha: float
    z_crit: float = math.nan
    n_tests: int = 1


def check_close(estimate, se, prediction, alpha: float = 1e-4, n_tests: int | None = None) -> CheckResult:
    """Two-sided z-test of ``estimate`` against ``prediction`` with standard error ``se``.

    z = (estimate - prediction) / se elementwise (broadcast); with se = 0, z = 0
    when estimate == prediction and +-inf otherwise.  The test passes iff all
    |z| <= z_{1 - alpha / (2 n_tests)}; ``n_tests`` defaults to the number of
    compared elements (Bonferroni over them), so the family-wise failure
    probability of a correct implementation is <= ``alpha``.

    Returns
    -------
    CheckResult
        JSON-friendly: ``json.dumps(result._asdict())`` works.
    """
    est = _host(estimate, "estimate")
    s = _host(se, "se")
    pred = _host(prediction, "prediction")
    if np.any(~np.isfinite(s)) or np.any(s < 0):
        raise ValueError("se must be finite and >= 0")
    if np.any(~np.isfinite(pred)):
        raise ValueError("prediction must be finite")
    try:
        est, s, pred = np.broadcast_arrays(est, s, pred)
    except ValueError as exc:
        raise ValueError(f"estimate, se and prediction must broadcast, got shapes {est.shape}, {s.shape}, {pred.shape}") from exc
    n = int(est.size) if n_tests is None else check_positive_int(n_tests, "n_tests")
    n = max(n, 1)
    zc = z_critical(alpha, n)
    diff = est - pred
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, diff / np.where(s > 0, s, 1.0), np.where(diff == 0, 0.0, np.sign(diff) * np.inf))
    z = np.where(np.isnan(est), np.nan, z)
    passed = bool(np.all(np.abs(z) <= zc))  # NaN estimate fails
    return CheckResult(
        estimate=_out(est), se=_out(s), prediction=_out(pred), z=_out(z), passed=passed,
        alpha=float(alpha), z_crit=zc, n_tests=n,
    )
