"""Noise level of the SMILE bias metric b^2 for exact i.i.d. Gaussian draws (SymPy).

Statement
---------
For N i.i.d. draws of x_i ~ N(0, s_i) in each of d independent coordinates and
b^2 = (1/d) sum_i (Ehat[x_i^2] - s_i)^2 / (2 s_i^2) (Sommer et al. 2026, Sec. 6.1),
Ehat[x_i^2] / s_i = X_i / N with X_i ~ chi2_N, so b^2 = (1/d) sum_i u_i with
u_i = (X_i/N - 1)^2 / 2 i.i.d. and

    E[b^2] = 1/N,        Var[b^2] = 2 (N + 6) / (N^3 d).

The batch-means noise estimate ``noise_mean`` = (1/d) sum_i se_i^2 / V_i uses, per
coordinate, the sample variance of m batch means of b draws of x_i^2; for i.i.d.
draws se_i^2 is unbiased for Var(x_i^2)/(m b), and (sample-variance identity
Var s^2 = sigma^4 (2/(m-1) + kappa/m)) its relative variance is
2/(m-1) + kappa_b/m with kappa_b = 12/b, the excess kurtosis of a mean of b
chi2_1 variables (excess kurtosis of chi2_1 = 12).

Checked by tests/test_diagnostics.py::test_bias_metric_iid_exact_distribution and
::test_bias_metric_se_noise_value_consistent.  Page: docs/derivations/bias-metric-noise.md.
"""
from __future__ import annotations

import sympy as sp
from sympy.stats import ChiSquared, E, kurtosis, variance

__all__ = ["N", "d", "b2_iid_moments", "chi2_1_excess_kurtosis", "noise_mean_relative_variance",
           "b2_iid_moments_numeric"]

N, d, m, b = sp.symbols("N d m b", positive=True, integer=True)


def b2_iid_moments() -> tuple[sp.Expr, sp.Expr]:
    """(E[b^2], Var[b^2]) as SymPy expressions in N, d, from chi-square moments."""
    x = ChiSquared("X", N)
    u = (x / N - 1) ** 2 / 2
    return sp.simplify(E(u)), sp.factor(sp.simplify(variance(u) / d))


def chi2_1_excess_kurtosis() -> sp.Expr:
    """Excess kurtosis of chi2_1 (= 12)."""
    return sp.simplify(kurtosis(ChiSquared("Y", 1)) - 3)


def noise_mean_relative_variance() -> sp.Expr:
    """Relative variance of one coordinate's batch-means variance estimate: 2/(m-1) + kappa_b/m."""
    return 2 / (m - 1) + chi2_1_excess_kurtosis() / b / m


def b2_iid_moments_numeric(n_draws_total: int, dim: int) -> tuple[float, float]:
    """(E[b^2], sd[b^2]) as floats."""
    mean, var = b2_iid_moments()
    return float(mean.subs(N, n_draws_total)), float(sp.sqrt(var.subs({N: n_draws_total, d: dim})))
