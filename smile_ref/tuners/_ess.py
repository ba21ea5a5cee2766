"""Per-chain effective sample size by FFT (private helper of the MCLMC tuner).

Phase 3 of the MCLMC tuner needs, for every chain separately, the effective
sample size of each coordinate of the ``n3`` positions it recorded.  This module
computes it in the caller's array namespace (``xp.fft``), vectorised over chains
and coordinates, with Geyer's initial positive *and* monotone sequence
estimator (Geyer 1992, "Practical Markov chain Monte Carlo", Stat. Sci. 7; the
estimator used by Stan and by BlackJAX's ``effective_sample_size``):

.. math::

    \\hat\\gamma_k = \\frac1T \\sum_{t=0}^{T-1-k} (x_t - \\bar x)(x_{t+k} - \\bar x),
    \\qquad \\hat\\rho_k = \\hat\\gamma_k / \\hat\\gamma_0,

    P_j = \\hat\\rho_{2j} + \\hat\\rho_{2j+1}, \\quad
    \\tilde P_j = \\min_{i \\le j} P_i \\ \\text{for } j < J,
    \\ J = \\text{first } j \\text{ with } P_j \\le 0,

    \\hat\\tau = -1 + 2 \\sum_{j<J} \\tilde P_j, \\qquad
    \\mathrm{ESS} = T / \\max(\\hat\\tau, 1/\\log_{10} T).

The autocovariance is obtained from one zero-padded real FFT of length ``2T``
along the draws axis (Wiener-Khinchin); the running minimum is a
Hillis-Steele scan (``log2 T`` vectorised ``xp.minimum`` calls), because the
Array API has no cumulative minimum.  A coordinate with zero variance over the
window (a chain that did not move) gets ``tau = T`` (ESS = 1).

For the stationary AR(1) process :math:`x_t = \\rho x_{t-1} + \\sqrt{1-\\rho^2} z_t`
the estimate converges to :math:`T (1-\\rho)/(1+\\rho)`; ``tests/test_tuners.py``
checks this.
"""
from __future__ import annotations

import math

from ..backend import array_namespace

__all__ = ["ess_per_chain"]


def ess_per_chain(samples):
    """Effective sample size of each chain and coordinate.

    Parameters
    ----------
    samples : array (n_chains, n_draws, d)
        Draws of each chain, in any supported namespace; ``n_draws >= 4``.

    Returns
    -------
    array (n_chains, d)
        ESS per chain and coordinate, same namespace, device and dtype as ``samples``.
    """
    xp = array_namespace(samples)
    if samples.ndim != 3:
        raise ValueError(f"samples must have shape (n_chains, n_draws, d), got {tuple(samples.shape)}")
    n, T, d = samples.shape
    if T < 4:
        raise ValueError(f"samples needs at least 4 draws per chain, got n_draws={T}")
    dtype = samples.dtype
    xc = samples - xp.mean(samples, axis=1, keepdims=True)
    F = xp.fft.rfft(xc, n=2 * T, axis=1)
    power = F * xp.conj(F)  # |F|^2, kept complex for irfft
    acov = xp.fft.irfft(power, n=2 * T, axis=1)[:, :T, :] / T
    acov = xp.astype(acov, dtype)
    acov0 = acov[:, 0:1, :]
    moving = acov0 > 0.0
    rho = acov / xp.where(moving, acov0, 1.0)
    K = T // 2
    P = rho[:, 0 : 2 * K : 2, :] + rho[:, 1 : 2 * K : 2, :]
    # initial positive sequence: keep pairs before the first non-positive one
    nonpos = xp.astype(P <= 0.0, xp.int32)
    keep = xp.cumulative_sum(nonpos, axis=1) == 0
    # initial monotone sequence: running minimum along the pair axis
    Pm = P
    s = 1
    while s < K:
        pad = xp.full((n, s, d), math.inf, dtype=dtype, device=P.device)
        Pm = xp.minimum(Pm, xp.concat([pad, Pm[:, : K - s, :]], axis=1))
        s *= 2
    tau = -1.0 + 2.0 * xp.sum(xp.where(keep, Pm, 0.0), axis=1)
    tau = xp.maximum(tau, 1.0 / math.log10(T))
    tau = xp.where(moving[:, 0, :], tau, float(T))
    return T / tau
