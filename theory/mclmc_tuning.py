"""MCLMC step-size tuning: EMA size, trust-weight fixed point, rejection equilibrium (SymPy / quadrature).

Statement (page: docs/derivations/mclmc-tuning.md; implementation: smile_ref/tuners/mclmc.py)
---------
1. The EMA ``X <- r X + w q`` with ``r = (N - 1)/(N + 1)`` has Kish effective sample size
   ``(sum_k r^k)^2 / sum_k r^{2k} = (1 + r)/(1 - r) = N`` exactly.
2. Under ``Var[dE]/d = c^2 eps^6`` (synthetic law, dE Gaussian), ``xi = a Z^2`` with
   ``a = (eps/eps*)^6``; the EMA's fixed point is the ``a`` solving
   ``E[w(a Z^2) (a Z^2 - 1)] = 0`` (``w`` the trust weight), and by the delta method
   ``sd(log eps) = sqrt(E[w^2 (y - 1)^2] / E[w]^2 / N) / 6`` with a second-order offset
   ``+ rel_var / (12 N)`` of ``E[log eps]``.
3. Rejections with probability ``p`` independent of eps, each entered as ``xi = f^-6``
   relative to the proposal: ``eps_prop^-6 (1 - p f^-6) = (1 - p) eps_0^-6`` (weights ~ 1),
   i.e. ``eps_prop / eps_0 = ((1 - p f^-6)/(1 - p))^{1/6}``; no fixed point for ``p >= f^6``.
4. The soft cap (``x f`` on a rejection, ``x g`` on an acceptance) has zero mean log-drift at
   ``p = log g / (log g - log f)``; for ``g = f^{-1/2}`` this is 1/3.

Checked by tests/test_tuners.py::test_theory_identities (and used by the statistical tests).
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp
from scipy import integrate, optimize, stats

__all__ = [
    "ema_kish_size", "rejection_fixed_point", "collapse_threshold", "cap_balance_probability",
    "trust_weight", "weighted_fixed_point", "log_sd_and_offset",
]

N, r, k = sp.symbols("N r k", positive=True)
p, f, g = sp.symbols("p f g", positive=True)


def ema_kish_size() -> sp.Expr:
    """(sum r^k)^2 / sum r^{2k} at r = (N-1)/(N+1), simplified (= N)."""
    kk = sp.symbols("kk", integer=True, nonnegative=True)
    s1 = sp.summation(r**kk, (kk, 0, sp.oo))
    s2 = sp.summation(r ** (2 * kk), (kk, 0, sp.oo))
    s1 = s1.args[0][0] if isinstance(s1, sp.Piecewise) else s1
    s2 = s2.args[0][0] if isinstance(s2, sp.Piecewise) else s2
    return sp.simplify((s1**2 / s2).subs(r, (N - 1) / (N + 1)))


def rejection_fixed_point() -> sp.Expr:
    """eps_prop / eps_0 solving eps^-6 (1 - p f^-6) = (1 - p) eps_0^-6 (eps_0 = 1)."""
    e = ((1 - p * f**-6) / (1 - p)) ** sp.Rational(1, 6)  # the positive real root for p < f^6
    assert sp.simplify(e**-6 * (1 - p * f**-6) - (1 - p)) == 0
    return e


def collapse_threshold() -> sp.Expr:
    """Smallest p without a fixed point: 1 - p f^-6 = 0."""
    return sp.solve(sp.Eq(1 - p * f**-6, 0), p)[0]


def cap_balance_probability() -> sp.Expr:
    """p with zero mean log-drift of the soft cap: p log f + (1 - p) log g = 0."""
    return sp.simplify(sp.solve(sp.Eq(p * sp.log(f) + (1 - p) * sp.log(g), 0), p)[0])


def trust_weight(x, trust: float = 1.5):
    """w(xi) = exp(-1/2 (log xi / (6 trust))^2) (numeric)."""
    return np.exp(-0.5 * (np.log(x) / (6.0 * trust)) ** 2)


def weighted_fixed_point(trust: float = 1.5) -> tuple[float, float]:
    """(a, rel_var): a = (eps_eq/eps*)^6 solving E[w(aZ^2)(aZ^2 - 1)] = 0 and
    rel_var = E[w^2 (aZ^2 - 1)^2] / E[w]^2 at that a (Z standard normal; quadrature)."""

    def E(fun, a):
        return integrate.quad(lambda z: fun(a * z * z) * 2.0 * stats.norm.pdf(z), 0.0, np.inf, limit=200)[0]

    a = optimize.brentq(lambda a: E(lambda y: trust_weight(y, trust) * (y - 1.0), a), 0.5, 2.0)
    rel_var = E(lambda y: trust_weight(y, trust) ** 2 * (y - 1.0) ** 2, a) / E(lambda y: trust_weight(y, trust), a) ** 2
    return float(a), float(rel_var)


def log_sd_and_offset(n_eff: float, trust: float = 1.5) -> tuple[float, float]:
    """(sd(log eps), E[log eps] - log eps_eq) to first / second order."""
    _, rel_var = weighted_fixed_point(trust)
    return math.sqrt(rel_var / n_eff) / 6.0, rel_var / (12.0 * n_eff)
