"""AR(1) effective sample size and batch-means coverage (SymPy / exact linear algebra).

Statement
---------
1. Stationary AR(1), x_t = rho x_{t-1} + sqrt(1 - rho^2) e_t: autocorrelation rho^|t|, integrated
   autocorrelation time tau = sum_{t in Z} rho^|t| = (1 + rho)/(1 - rho), so ESS = N (1 - rho)/(1 + rho).
2. Batch means on n_chains independent stationary AR(1) chains, n_batches batches of b draws per chain
   (m = n_chains n_batches batch means Y, Gaussian with covariance S = A Gamma A^T, block-diagonal
   over chains): Var(Ybar) = 1^T S 1 / m^2 exactly; s^2 = Y^T Q Y with Q = (I - 11^T/m)/(m - 1) has
   E s^2 = tr(QS) and Var s^2 = 2 tr((QS)^2).  The coverage P(|Ybar| < k se), se^2 = s^2/m, is
   approximated by P(|t_nu| < k sqrt(E[s^2]/m / Var Ybar)) with Satterthwaite nu = 2 (E s^2)^2 / Var s^2
   (exact t when the batch means are i.i.d.; here they are weakly correlated).

Checked by tests/test_diagnostics.py::test_ess_ar1_matches_analytic and
::test_batch_means_coverage_ar1.  Page: docs/derivations/batch-means.md.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp
from scipy import stats

__all__ = ["rho", "ar1_tau", "ar1_ess_fraction", "batch_means_moments", "predicted_coverage"]

rho = sp.symbols("rho", real=True)


def ar1_tau() -> sp.Expr:
    """tau = 1 + 2 sum_{t>=1} rho^t for |rho| < 1, summed by SymPy."""
    t = sp.symbols("t", integer=True, positive=True)
    s = sp.summation(rho**t, (t, 1, sp.oo))
    s = s.args[0][0] if isinstance(s, sp.Piecewise) else s  # the |rho| < 1 branch
    return sp.simplify(1 + 2 * s)


def ar1_ess_fraction() -> sp.Expr:
    """ESS / N = 1 / tau = (1 - rho)/(1 + rho)."""
    return sp.simplify(1 / ar1_tau())


def batch_means_moments(rho_value: float, n_chains: int, n_draws: int, n_batches: int):
    """(Var Ybar, E s^2, Var s^2, m) for batch means of stationary unit-variance AR(1) chains."""
    b = n_draws // n_batches
    used = n_batches * b
    gam = rho_value ** np.abs(np.subtract.outer(np.arange(used), np.arange(used)))
    a = np.kron(np.eye(n_batches), np.full((1, b), 1.0 / b))
    m = n_chains * n_batches
    s = np.kron(np.eye(n_chains), a @ gam @ a.T)
    v_true = s.sum() / m**2
    qs = ((np.eye(m) - 1.0 / m) / (m - 1)) @ s
    return v_true, float(np.trace(qs)), float(2.0 * np.trace(qs @ qs)), m


def predicted_coverage(rho_value: float, n_chains: int, n_draws: int, n_batches: int, k: float = 2.0) -> float:
    """P(|mean| < k se) under batch means (Satterthwaite t approximation, see module docstring)."""
    v_true, e_s2, var_s2, m = batch_means_moments(rho_value, n_chains, n_draws, n_batches)
    nu = 2.0 * e_s2**2 / var_s2
    return float(2.0 * stats.t.cdf(k * math.sqrt(e_s2 / m / v_true), nu) - 1.0)
