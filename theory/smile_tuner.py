"""Mean-field analysis of the SMILE energy-error tuner (Gamma / Wilson-Hilferty rule).

Statement.  Let ``a = |dE|`` be i.i.d. with a law ``F`` whose mean ``m`` and
standard deviation ``sd`` the tuner's EMAs estimate.  With the moment-fitted
Gamma law (``k = m^2 / (sd^2 + 1e-6)``, ``theta = (sd^2 + 1e-6) / m``) and the
Wilson-Hilferty quantile ``Q(p) = theta k (1 - 1/(9k) + z_p / (3 sqrt k))^3``,
the per-step probabilities are

* ``p_down = P(a > Q(1 - 2 alpha / 3))`` (step size multiplied by ``1 - delta``),
* ``p_up = P(a < Q(alpha / 3))`` (multiplied by ``1 + delta``),
* ``p_reset = P(a > Q(reset_prob))``,

and the mean drift of ``log eps`` per step is
``p_up log(1 + delta) + p_down log(1 - delta)``.

Assumption (the "mean-field" part): the EMAs sit at the true moments; their
fluctuations (effective window ``~ 2 / beta`` steps) are ignored.  The rule is
scale-free: ``F`` and ``c F`` give the same probabilities, so a law whose shape
does not change with ``eps`` gives a drift that does not depend on ``eps``:
the step size performs a geometric random walk with that drift instead of
converging to a fixed value.  Checked against the tuner itself in
``tests/test_energy_error_tuner.py``.

Winsorised statistics (smile_ref's default, ``winsorize_rejected=True``): a
rejected step enters the EMAs as ``min(a, R)``, so the EMAs estimate the
moments of the winsorised law, a fixed point
``m = E[min(a, R)] = int_0^R (1 - F(x)) dx``,
``m2 = E[min(a, R)^2] = int_0^R 2 x (1 - F(x)) dx``, ``sd^2 = m2 - m^2``,
``R = Q_{m, sd}(reset_prob)``, solved by iteration from the raw moments; the
decisions still compare the raw ``a`` with the quantiles of that fit.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import integrate, stats

__all__ = ["abs_energy_error_law", "wilson_hilferty_quantile", "winsorized_moments", "tuner_probabilities",
           "log_step_drift"]


def abs_energy_error_law(name: str, **kw):
    """Law of ``|dE|`` for ``dE`` Gaussian, Laplace or Student-t (unit scale): a frozen scipy law."""
    if name == "gaussian":
        return stats.halfnorm()
    if name == "laplace":
        return stats.expon()
    if name == "student_t":
        df = float(kw.get("df", 5.0))
        if df <= 2:
            raise ValueError("df must exceed 2 (the tuner needs a finite variance of |dE|)")
        return stats.chi(1) if math.isinf(df) else _HalfT(df)
    raise ValueError(f"law must be 'gaussian', 'laplace' or 'student_t', got {name!r}")


class _HalfT:
    """|T| for a Student-t with ``df`` degrees of freedom."""

    def __init__(self, df):
        self.df = df
        self._t = stats.t(df)

    def cdf(self, x):
        x = np.maximum(x, 0.0)
        return 2.0 * self._t.cdf(x) - 1.0

    def sf(self, x):
        return 1.0 - self.cdf(x)

    def mean(self):
        return integrate.quad(lambda x: 2 * x * self._t.pdf(x), 0, np.inf)[0]

    def var(self):
        return self.df / (self.df - 2.0) - self.mean() ** 2

    def rvs(self, size, random_state):
        return np.abs(self._t.rvs(size=size, random_state=random_state))


def wilson_hilferty_quantile(mean: float, sd: float, p: float) -> float:
    var = sd * sd + 1e-6
    k = mean * mean / var
    theta = var / mean
    base = 1.0 - 1.0 / (9.0 * k) + stats.norm.ppf(p) / (3.0 * math.sqrt(k))
    return theta * k * base**3


def winsorized_moments(law, reset_prob: float = 0.98, scale: float = 1.0, tol: float = 1e-13) -> tuple[float, float]:
    """Fixed point ``(m, sd)`` of the winsorised statistics (see the module docstring)."""
    m, sd = scale * float(law.mean()), scale * math.sqrt(float(law.var()))
    sf = lambda x: float(law.sf(x / scale))  # noqa: E731
    for _ in range(200):
        R = wilson_hilferty_quantile(m, sd, reset_prob)
        m_new = integrate.quad(sf, 0.0, R, limit=200, epsabs=1e-14)[0]
        m2 = integrate.quad(lambda x: 2.0 * x * sf(x), 0.0, R, limit=200, epsabs=1e-14)[0]
        sd_new = math.sqrt(max(m2 - m_new * m_new, 0.0))
        done = abs(m_new - m) <= tol * m and abs(sd_new - sd) <= tol * sd
        m, sd = m_new, sd_new
        if done:
            break
    return m, sd


def tuner_probabilities(law, alpha: float = 0.1, reset_prob: float = 0.98, scale: float = 1.0,
                        winsorize: bool = False) -> dict:
    """``p_up``, ``p_down``, ``p_reset`` of the rule for ``|dE| ~ scale * law`` (mean-field); ``winsorize``:
    statistics at the fixed point of :func:`winsorized_moments`."""
    if winsorize:
        m, sd = winsorized_moments(law, reset_prob, scale)
    else:
        m, sd = scale * float(law.mean()), scale * math.sqrt(float(law.var()))
    U = wilson_hilferty_quantile(m, sd, 1 - 2 * alpha / 3)
    D = wilson_hilferty_quantile(m, sd, alpha / 3)
    R = wilson_hilferty_quantile(m, sd, reset_prob)
    cdf = lambda q: float(law.cdf(q / scale)) if q > 0 else 0.0  # noqa: E731
    return {"p_up": cdf(D), "p_down": 1.0 - cdf(U), "p_reset": 1.0 - cdf(R), "upper": U, "lower": D, "reset": R}


def log_step_drift(law, alpha: float = 0.1, strength: float = 0.02, reset_prob: float = 0.98,
                   winsorize: bool = False) -> float:
    """Mean change of ``log eps`` per step, mean-field."""
    p = tuner_probabilities(law, alpha, reset_prob, winsorize=winsorize)
    return p["p_up"] * math.log1p(strength) + p["p_down"] * math.log1p(-strength)
