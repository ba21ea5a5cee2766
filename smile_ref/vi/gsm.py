"""Gaussian score matching VI (GSM; Modi et al., NeurIPS 2023), as in the reference code ``modichirag/GSM-VI``.

For one sample ``z ~ q_t = N(mu0, Sigma0)`` with score ``v = grad log p(z)`` the update is the
KL(q_t || q)-closest Gaussian whose score matches ``v`` at ``z``:

.. math::

    \\rho = \\tfrac12\\sqrt{1 + 4(v^T\\Sigma_0 v + ((\\mu_0 - z)^T v)^2)} - \\tfrac12, \\qquad
    \\varepsilon_0 = \\Sigma_0 v - \\mu_0 + z,

    \\mu_1 = \\mu_0 + \\frac{1}{1+\\rho}\\Big[I - \\frac{(\\mu_0 - z)v^T}{1 + \\rho + (\\mu_0 - z)^T v}\\Big]\\varepsilon_0,
    \\qquad
    \\Sigma_1 = \\Sigma_0 + (\\mu_0 - z)(\\mu_0 - z)^T - (\\mu_1 - z)(\\mu_1 - z)^T,

so that ``Sigma_1^{-1} (mu_1 - z) = v`` exactly.  A batch of ``M`` samples averages the
increments ``(mu_1 - mu_0, Sigma_1 - Sigma_0)``; an averaged update whose covariance is not
positive definite is rejected (``on_invalid="skip"``, the iterate is kept and counted) or raises.
Full-covariance family only.  The trace records the score-matching loss
``mean_m ||grad log q_t(z_m) - v_m||^2`` at the current iterate.
"""
from __future__ import annotations

from ..backend import array_namespace
from ._common import check_on_invalid, invalid
from .families import FullGaussian, is_spd

__all__ = ["GSM", "gsm_increments"]


def gsm_increments(mu0, Sigma0, z, v):
    """Per-sample GSM updates: ``mu_1`` ``(M, d)`` and ``Sigma_1`` ``(M, d, d)`` for samples ``z`` and scores ``v``."""
    xp = array_namespace(z)
    a = mu0[None, :] - z                       # mu0 - z
    Sv = v @ Sigma0                            # Sigma0 v (Sigma0 symmetric)
    vSv = xp.sum(v * Sv, axis=1)
    av = xp.sum(a * v, axis=1)
    rho = 0.5 * xp.sqrt(1.0 + 4.0 * (vSv + av * av)) - 0.5
    eps0 = Sv - a
    c = 1.0 + rho + av
    corr = eps0 - a * (xp.sum(v * eps0, axis=1) / c)[:, None]
    mu1 = mu0[None, :] + corr / (1.0 + rho)[:, None]
    e = mu1 - z
    Sigma1 = Sigma0[None, :, :] + a[:, :, None] * a[:, None, :] - e[:, :, None] * e[:, None, :]
    return mu1, Sigma1


class GSM:
    """The ``"gsm"`` algorithm (batch-averaged GSM updates with rejection of non-SPD covariances)."""

    def __init__(self, on_invalid: str = "skip"):
        self.on_invalid = check_on_invalid(on_invalid)

    def init(self, q0):
        if not isinstance(q0, FullGaussian):
            raise ValueError("gsm needs family='full_gaussian'")
        return q0

    def sample(self, state, random, M):
        return state.sample(random, M), None

    def update(self, state, theta, aux, logp, s, t):
        xp = array_namespace(theta)
        r = state.score(theta) - s
        objective = xp.mean(xp.sum(r * r, axis=1))
        mu1, Sigma1 = gsm_increments(state.loc, state.cov, theta, s)
        mu = xp.mean(mu1, axis=0)
        Sigma = xp.mean(Sigma1, axis=0)
        Sigma = 0.5 * (Sigma + Sigma.mT)
        if not (bool(xp.all(xp.isfinite(mu))) and is_spd(Sigma)):
            return state, objective, invalid(self.on_invalid, f"gsm update {t}: covariance lost positive definiteness")
        return FullGaussian(mu, Sigma), objective, 0

    def family(self, state):
        return state
