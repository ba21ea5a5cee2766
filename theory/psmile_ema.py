"""pSMILE with its EMA-estimated preconditioner on a Gaussian target: the long-window fixed point.

Statement
---------
pSMILE (Sommer et al. 2026) runs SG-MCLMC in ``z = S^{-1} x`` with ``S = diag(rms(sigma_hat) / sigma_hat_i)``
(:func:`smile_ref.preconditioners.noise_scale.noise_scale_preconditioner`), where ``sigma_hat_i^2 = v_i`` is
an exponential moving average (decay ``rho``) of the squared *raw* stochastic gradient about a running
mean.  On ``N(0, Σ_t)`` with additive gradient noise ``ξ ~ N(0, Σ)`` the raw gradient is
``g = s(x) + ξ`` with the score ``s(x) = -P x``, ``P = Σ_t^{-1}``.  So ``v`` estimates the noise variance
*plus* the variance of the score along the trajectory, and the preconditioner is not the ideal
``S_i ∝ 1/sqrt(Σ_ii)`` that makes the ``z``-space noise ``S Σ S`` isotropic (which would remove the
continuous-time bias of diagonal noise exactly, ``anisotropic-noise-bias.md`` section 4).

Mean of the estimate at stationarity (``C = E[x x^T]``, ``C_s = P C P`` the score covariance, ``ξ_t``
independent of ``x_t``):

* ``carry_mean=False`` (the authors' BNN kernel: the mean is reset to ``m0`` before every update, so
  ``v_t = rho v_{t-1} + (1 - rho) rho^2 (g_t - m0)^2``): ``E v_i = rho^2 (Σ_ii + (C_s)_ii + m0^2)`` exactly,
  for every ``rho`` (the EMA of a stationary sequence has its mean).
* ``carry_mean=True`` (smile_ref's default; ``m_t = rho m_{t-1} + (1 - rho) g_t``,
  ``v_t = rho v_{t-1} + (1 - rho)(g_t - m_t)^2``): with ``g_t - m_t = rho (g_t - m_{t-1})`` and the score
  autocovariance ``c(k)`` at lag ``k`` steps,

      E v_i = rho^2 [ 2/(1 + rho) (Σ_ii + c(0))
                      - 2 (1 - rho) Σ_{k>=0} rho^k c(k+1) + 2 (1 - rho)/(1 + rho) Σ_{j>=1} rho^j c(j) ]

  (:func:`ema_centred_variance`, checked against a direct recursion in ``tests/test_theory_psmile_ema.py``);
  when the window ``T = eps/(1 - rho)`` is long against the score's correlation time ``tau_s`` the last
  two terms are ``O(tau_s/T)`` and ``E v_i ∝ Σ_ii + (C_s)_ii`` as without the carried mean.

Long-window fixed point: with ``S`` held at ``rms(sqrt(v))/sqrt(v)``, ``v_i = Σ_ii + (P C P)_ii + m0^2``
(``m0`` only without the carried mean), and ``C`` the stationary second moment of SG-MCLMC preconditioned
by that ``S`` (:func:`~smile_ref.theory.sg_mclmc_bias.preconditioned_second_moments`), solve
``S = S(C(S))`` by iteration from ``C = Σ_t``.

Assumptions: (1) ``S`` held at the value its mean ``v`` gives (the fluctuation of the EMA, relative size
about ``sqrt(tau_s / T)`` on the score part, and its correlation with the state are neglected); (2) long
window, ``T >> tau_s`` with ``tau_s ≈ sigma_max(Σ_t) sqrt(d)`` (the time a unit-speed velocity spread
over ``d`` axes takes to cross the widest axis; an order of magnitude, not derived); (3) the noise of a
step is independent of the position it is evaluated at (true to ``O(eps)``: the step's middle
evaluation moves ``u`` with the same draw); (4) the clip ``[1e-2, 1e4]`` and the variance floor are
inactive; (5) the continuous-time prediction in ``z``-space and its own error.

Consequence: the estimated preconditioner leaves a continuous-time bias wherever the score variance
``(P C P)_ii ≈ 1/Σ_t,ii`` is not small against the noise variance ``Σ_ii`` on some axis, because the
``z``-space noise diagonal ``∝ Σ_ii / (Σ_ii + (P C P)_ii)`` is then anisotropic.  With mini-batch noise of a
large data set (``Σ_ii`` of order ``N^2/b`` times the per-example variance) it vanishes.

Docs: ``docs/derivations/psmile-ema-preconditioner.md``; tests: ``tests/test_theory_psmile_ema.py``.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .sg_mclmc import _check_cov
from .sg_mclmc_bias import _check_target, preconditioned_second_moments

__all__ = ["ema_centred_variance", "ema_window_ratio", "ema_preconditioner_second_moments"]


def ema_centred_variance(noise_var: float, autocov, decay: float) -> float:
    """``E v`` of the carried-mean EMA estimator for a stationary scalar ``g_t = s_t + ξ_t``.

    ``noise_var``: the variance of the white part ``ξ``; ``autocov``: ``c(0), c(1), ...`` of the zero-mean
    part ``s`` at lags ``0, 1, ...`` steps (truncated where it has decayed); ``decay``: ``rho``.  Returns
    ``rho^2 [2/(1+rho) (noise_var + c(0)) - 2 (1-rho) Σ_k rho^k c(k+1) + 2 (1-rho)/(1+rho) Σ_{j>=1} rho^j c(j)]``
    (module docstring).
    """
    rho = float(decay)
    c = np.asarray(autocov, dtype=np.float64)
    if c.ndim != 1 or c.size < 1:
        raise ValueError("autocov must be a 1-d array c(0), c(1), ...")
    if not 0.0 < rho < 1.0:
        raise ValueError(f"decay must be in (0, 1), got {decay!r}")
    k = np.arange(c.size)
    lag_sum = np.sum(rho ** k[:-1] * c[1:])  # Σ_{k>=0} rho^k c(k+1)
    two_sided = np.sum(rho ** k[1:] * c[1:])  # Σ_{j>=1} rho^j c(j)
    return rho * rho * (2.0 / (1.0 + rho) * (noise_var + c[0]) - 2.0 * (1.0 - rho) * lag_sum
                        + 2.0 * (1.0 - rho) / (1.0 + rho) * two_sided)


def ema_window_ratio(target_cov, eps: float, decay: float) -> float:
    """``T / tau_s``: the EMA window ``T = eps/(1 - decay)`` (time units) over ``tau_s = sigma_max(Σ_t) sqrt(d)``.

    The long-window fixed point assumes this is large: at 47 (per-step kick 0.13) it matched pSMILE within
    1.8 SE (0.3 % on the least noisy axis, 1.0 % on the noisiest), at 4.7 (the default ``decay = 0.99`` at ``eps = 0.1``) it was 2.7 % off on the least noisy
    axis (``docs/derivations/psmile-ema-preconditioner.md``).
    """
    St = _check_target(target_cov)
    rho = float(decay)
    if not 0.0 < rho < 1.0:
        raise ValueError(f"decay must be in (0, 1), got {decay!r}")
    T = float(eps) / (1.0 - rho)
    return T / (math.sqrt(float(np.linalg.eigvalsh(St)[-1])) * math.sqrt(St.shape[0]))


def _precond_of(v):
    sig = np.sqrt(v)
    return math.sqrt(float(np.mean(v))) / sig  # rms(sigma) / sigma, the sampler's normalisation


def _dense_precond_of(V):
    """``S = c V^{-1/2} = Q diag(c/sqrt(w)) Q^T``, ``c = sqrt(mean eigenvalue of V)`` (the dense preconditioner's
    normalisation); returns ``(S, Q, c/sqrt(w))``."""
    w, Q = np.linalg.eigh(0.5 * (V + V.T))
    D = math.sqrt(float(np.mean(w))) / np.sqrt(w)
    return (Q * D) @ Q.T, Q, D


def _dense_moments(St, Sig, eps, Q, D, **kwargs):
    """``E[x x^T]`` with the dense ``S = Q diag(D) Q^T``, and its error.

    In ``v = Q^T x`` the preconditioner is the diagonal ``D`` (MCLMC is invariant under rotations), so
    ``C_x = Q C_v Q^T`` with ``C_v`` from :func:`preconditioned_second_moments` on ``(Q^T Σ_t Q, Q^T Σ Q)``;
    the error of an entry of ``C_x`` is at most that of ``C_v`` times the largest squared row sum of ``|Q|``.
    """
    Tv, Nv = Q.T @ St @ Q, Q.T @ Sig @ Q
    Cv, err = preconditioned_second_moments(0.5 * (Tv + Tv.T), 0.5 * (Nv + Nv.T), eps, precond=D, return_error=True,
                                            **kwargs)
    return Q @ Cv @ Q.T, float(err) * float(np.max(np.sum(np.abs(Q), axis=1))) ** 2


def ema_preconditioner_second_moments(target_cov, noise_cov, eps, *, decay=0.99, carry_mean=True, init_mean=0.0,
                                      preconditioner="diag", max_iter=40, tol=1e-7, return_error=False,
                                      return_precond=False, min_window_ratio=10.0, **kwargs):
    """Stationary ``E[x x^T]`` of pSMILE with the EMA-estimated diagonal preconditioner (long-window fixed point).

    Parameters
    ----------
    target_cov, noise_cov : (d, d) arrays
        ``Σ_t`` and the additive noise covariance ``Σ`` (one draw per step).
    eps : float
        Step size.
    decay, carry_mean, init_mean
        The preconditioner's ``decay`` (``rho``), ``carry_mean`` and ``init_mean`` (``m0``; enters only
        without the carried mean).  ``decay`` enters only the validity check (:func:`ema_window_ratio`).
    preconditioner : ``"diag"`` or ``"dense"``
        ``"dense"``: :func:`~smile_ref.preconditioners.noise_scale.dense_noise_scale_preconditioner`
        (carried mean only), whose EMA of the centred outer product has the long-window mean
        ``V = Σ + P C P`` (the same derivation, entry by entry); ``S = c V^{-1/2}`` with
        ``c = sqrt(mean eigenvalue of V)``; ``C`` is predicted in the eigenbasis ``Q`` of ``V``, where ``S`` is
        diagonal (a rotated target in general).  ``return_precond`` then returns the matrix ``S``.
    max_iter, tol
        Fixed-point iteration ``S -> C(S) -> S``: stops when ``max |S_new - S| <= tol``; a ``RuntimeError``
        if it does not within ``max_iter`` (it contracts by about 0.2 per iteration in the cases tested).
    return_error, return_precond
        Also return the stated absolute error of ``C`` (the last solve's, plus the last change of ``C``
        between iterations) and the fixed-point ``S`` (``rms(sigma)/sigma``, the sampler's normalisation).
    min_window_ratio : float
        A ``UserWarning`` naming ``T / tau_s`` when it is below this (the long-window limit does not hold).
    **kwargs
        Passed to :func:`~smile_ref.theory.sg_mclmc_bias.preconditioned_second_moments` (``regime``,
        ``time``, ...).

    Examples
    --------
    >>> import numpy as np, warnings
    >>> St, Sig = np.diag([0.5, 1.0, 1.5]), np.diag([1e4, 4e4, 9e4])  # noise >> score: S is the ideal one
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     C = ema_preconditioner_second_moments(St, Sig, 0.001, decay=0.9999)
    >>> bool(np.allclose(np.diag(C) / np.diag(St), 1.0, atol=2e-3))
    True
    """
    St = _check_target(target_cov)
    S = _check_cov(noise_cov)
    if S.shape != St.shape:
        raise ValueError(f"noise_cov must have the shape of target_cov {St.shape}, got {S.shape}")
    if not isinstance(carry_mean, bool):
        raise TypeError(f"carry_mean must be a bool, got {carry_mean!r}")
    ratio = ema_window_ratio(St, eps, decay)
    if ratio < min_window_ratio:
        warnings.warn(f"pSMILE EMA preconditioner: window T/tau_s = {ratio:.3g} < {min_window_ratio:g} (T = eps/(1 - "
                      f"decay) = {float(eps) / (1 - float(decay)):.3g}); the long-window fixed point neglects "
                      "terms of order tau_s/T and the fluctuation of the estimate (2.7 % on the least noisy axis at "
                      "T/tau_s = 4.7, docs/derivations/psmile-ema-preconditioner.md)", UserWarning, stacklevel=2)
    if preconditioner not in ("diag", "dense"):
        raise ValueError(f"preconditioner must be 'diag' or 'dense', got {preconditioner!r}")
    P = np.linalg.inv(St)
    if preconditioner == "dense":
        if not carry_mean:
            raise ValueError("the dense preconditioner always carries its running mean (carry_mean=True)")
        return _dense_fixed_point(St, S, eps, P, max_iter, tol, return_error, return_precond, kwargs)
    shift = 0.0 if carry_mean else float(init_mean) ** 2
    noise = np.diag(S)

    def precond_of(C):
        p = _precond_of(noise + np.diag(P @ C @ P) + shift)
        return p, p

    def solve(p):
        return preconditioned_second_moments(St, S, eps, precond=p, return_error=True, **kwargs)

    return _fixed_point(St, precond_of, solve, max_iter, tol, return_error, return_precond)


def _fixed_point(St, precond_of, solve, max_iter, tol, return_error, return_precond):
    """Iterate ``S -> C(S) -> S`` from ``C = Σ_t`` until ``max |S_new - S| <= tol``.

    ``precond_of(C) -> (S, parts)``, ``solve(parts) -> (C, err)``; returns as
    :func:`ema_preconditioner_second_moments` (the error: the last solve's plus the last change of ``C``).
    """
    C = St.copy()
    S, parts = precond_of(C)
    step = math.inf
    for _ in range(int(max_iter)):
        C_new, err = solve(parts)
        change = float(np.max(np.abs(C_new - C)))
        C = C_new
        S_new, parts = precond_of(C)
        step = float(np.max(np.abs(S_new - S)))
        S = S_new
        if step <= tol:
            break
    else:
        raise RuntimeError(f"fixed point not reached in {max_iter} iterations (last change of S {step:.3g})")
    out = [C]
    if return_error:
        out.append(float(err) + change)
    if return_precond:
        out.append(S)
    return out[0] if len(out) == 1 else tuple(out)


def _dense_fixed_point(St, Sig, eps, P, max_iter, tol, return_error, return_precond, kwargs):
    """The ``"dense"`` iteration of :func:`ema_preconditioner_second_moments`: ``S = c V^{-1/2}``, ``V = Σ + P C P``."""

    def precond_of(C):
        S, Q, D = _dense_precond_of(Sig + P @ C @ P)
        return S, (Q, D)

    def solve(parts):
        return _dense_moments(St, Sig, eps, *parts, **kwargs)

    return _fixed_point(St, precond_of, solve, max_iter, tol, return_error, return_precond)
