"""Batch-and-match VI (BaM; Cai et al., ICML 2024), as in the reference code ``modichirag/GSM-VI``.

With ``z_b ~ q_t = N(mu_t, Sigma_t)``, scores ``g_b``, ``b = 1..B``, sample means ``zbar, gbar``
and biased covariances ``C`` (of ``z``) and ``Gamma`` (of ``g``), and learning rate ``lambda_t``:

.. math::

    U = \\lambda\\Gamma + \\tfrac{\\lambda}{1+\\lambda}\\bar g\\bar g^T, \\qquad
    V = \\Sigma_t + \\lambda C + \\tfrac{\\lambda}{1+\\lambda}(\\mu_t - \\bar z)(\\mu_t - \\bar z)^T,

    \\Sigma_{t+1} = 2V\\big(I + (I + 4UV)^{1/2}\\big)^{-1}, \\qquad
    \\mu_{t+1} = \\frac{\\mu_t}{1+\\lambda} + \\frac{\\lambda}{1+\\lambda}(\\Sigma_{t+1}\\bar g + \\bar z).

``Sigma_{t+1}`` is the SPD solution of ``Sigma U Sigma + Sigma = V``.  We evaluate it without a
non-symmetric square root: with ``V = L L^T`` and ``S = (I + 4 L^T U L)^{1/2}`` (symmetric, by
``eigh``), ``(I + 4UV)^{1/2} = L^{-T} S L^T`` and hence ``Sigma_{t+1} = 2 L (I + S)^{-1} L^T``.
Schedule: ``lambda_t = lam`` (``schedule="constant"``) or ``lam / t`` (``"inverse"``, t = 1, 2, ...).
A non-finite or non-SPD result is skipped or raised (``on_invalid``).  Full-covariance family only.
"""
from __future__ import annotations

import math

from ..backend import array_namespace, device_of
from ._common import batch_stats, check_on_invalid, invalid, outer_mean
from .families import FullGaussian, is_spd

__all__ = ["BaM", "bam_update"]


def bam_update(mu, Sigma, z, g, lam: float):
    """One BaM step; returns ``(mu_new, Sigma_new, U, V)``."""
    xp = array_namespace(z)
    d = int(z.shape[1])
    zbar, gbar, zc, gc = batch_stats(z, g)
    C = outer_mean(zc, zc)
    Gam = outer_mean(gc, gc)
    w = lam / (1.0 + lam)
    dm = mu - zbar
    U = lam * Gam + w * (gbar[:, None] * gbar[None, :])
    V = Sigma + lam * C + w * (dm[:, None] * dm[None, :])
    V = 0.5 * (V + V.mT)
    L = xp.linalg.cholesky(V)
    eye = xp.eye(d, dtype=z.dtype, device=device_of(z))
    inner = eye + 4.0 * (L.mT @ U @ L)
    ev, Q = xp.linalg.eigh(0.5 * (inner + inner.mT))
    sq = xp.sqrt(xp.clip(ev, 1.0, None))           # eigenvalues of I + 4 L^T U L are >= 1
    mid = Q @ (Q.mT / (1.0 + sq)[:, None])         # (I + S)^{-1}
    Sigma_new = 2.0 * (L @ mid @ L.mT)
    Sigma_new = 0.5 * (Sigma_new + Sigma_new.mT)
    mu_new = mu / (1.0 + lam) + w * (gbar @ Sigma_new + zbar)
    return mu_new, Sigma_new, U, V


class BaM:
    """The ``"bam"`` algorithm: learning rate ``lam > 0``, ``schedule`` in {constant, inverse}."""

    def __init__(self, lam: float = 1.0, schedule: str = "constant", on_invalid: str = "skip"):
        lam = float(lam)
        if not (math.isfinite(lam) and lam > 0.0):
            raise ValueError(f"lam must be a finite float > 0, got {lam!r}")
        if schedule not in ("constant", "inverse"):
            raise ValueError(f"schedule must be 'constant' or 'inverse', got {schedule!r}")
        self.lam, self.schedule = lam, schedule
        self.on_invalid = check_on_invalid(on_invalid)

    def init(self, q0):
        if not isinstance(q0, FullGaussian):
            raise ValueError("bam needs family='full_gaussian'")
        return q0

    def sample(self, state, random, M):
        return state.sample(random, M), None

    def update(self, state, theta, aux, logp, s, t):
        xp = array_namespace(theta)
        r = state.score(theta) - s
        objective = xp.mean(xp.sum(r * r, axis=1))
        lam = self.lam if self.schedule == "constant" else self.lam / (t + 1)
        mu, Sigma, _, _ = bam_update(state.loc, state.cov, theta, s, lam)
        if not (bool(xp.all(xp.isfinite(mu))) and is_spd(Sigma)):
            return state, objective, invalid(self.on_invalid, f"bam update {t}: non-finite or non-SPD covariance")
        return FullGaussian(mu, Sigma), objective, 0

    def family(self, state):
        return state
