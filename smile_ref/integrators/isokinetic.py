"""Isokinetic (ESH) splitting integrator: closed-form B and A flows and one palindromic step.

Dynamics (Steeg & Galstyan 2021, "Hamiltonian dynamics with non-Newtonian
momentum"; Robnik et al. 2023, MCHMC, arXiv 2212.08549; smile-method notes
Sec. 1.1): for a target ``p(x)`` with score ``g(x) = grad log p(x)`` and unit
velocity ``u`` on ``S^{d-1}``, with the diagonal preconditioner
``S = diag(sqrt_diag)``,

    dx/dt = S u,        du/dt = P(u) S g(x) / (d - 1),      P(u) = I - u u^T.

It leaves ``p(x) x Uniform(S^{d-1})`` invariant, and it conserves the energy
``E = K - log p(x)`` with the kinetic energy defined through
``dK/dt = u . S g`` (the work done by the force).

B flow (gradient fixed, time ``tau``; notes Sec. 1.2, derivation and SymPy check
in ``theory/esh.py`` and ``docs/derivations/esh-velocity-update.md``): with
``e = S g / |S g|``, ``delta = tau |S g| / (d - 1)``, ``c = u . e``,
``zeta = exp(-delta)``,

    u(tau) = [u + e (sinh delta + c (cosh delta - 1))] / (cosh delta + c sinh delta)
           = normalise( e (1 - zeta)(1 + zeta + c (1 - zeta)) + 2 zeta u ),
    dK     = (d - 1) log(cosh delta + c sinh delta)
           = (d - 1) [delta - log 2 + log(1 + c + (1 - c) zeta^2)].

The ``zeta`` forms never overflow (``0 < zeta <= 1``).  ``1 - zeta`` is
evaluated as ``-expm1(-delta)`` and ``dK`` as ``delta + log1p(-q)`` with
``q = (1 - c)(1 - zeta^2)/2`` when ``q < 1/2`` (no cancellation for small
``delta``), otherwise through ``logaddexp`` (no underflow for ``c -> -1``).

A flow: ``x(tau) = x + tau S u``.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

from ..backend import array_namespace
from .coefficients import IntegratorCoefficients, get_integrator

__all__ = [
    "IntegratorState",
    "esh_velocity_update",
    "position_update",
    "isokinetic_step",
    "reference_step",
]


class IntegratorState(NamedTuple):
    """State carried between steps (leading chain axis ``n``).

    position : (n, d)
    momentum : (n, d) unit velocity ``u`` (all-zero allowed: the first B
        sub-step then sets ``u = e``, as in SMILE's first step)
    logdensity : (n,) ``log p(position)`` (or its mini-batch estimate)
    logdensity_grad : (n, d) gradient at ``position`` used by the next step's first B
    """

    position: Any
    momentum: Any
    logdensity: Any
    logdensity_grad: Any


def _check_pair(u, g, uname="u", gname="g"):
    for a, name in ((u, uname), (g, gname)):
        shape = getattr(a, "shape", None)
        if shape is None or len(shape) != 2:
            raise ValueError(f"{name} must be an array of shape (n, d), got {shape if shape is not None else type(a).__name__}")
    if tuple(u.shape) != tuple(g.shape):
        raise ValueError(f"{uname} and {gname} must have the same shape (n, d), got {tuple(u.shape)} and {tuple(g.shape)}")
    if u.shape[1] < 2:
        raise ValueError(f"{uname} must have d >= 2 columns (the velocity lives on S^(d-1)), got d = {u.shape[1]}")


def _column(xp, v, like, name):
    """Python real -> float; array (n,) -> (n, 1) array of ``like``'s dtype."""
    if isinstance(v, numbers.Real) and not hasattr(v, "shape"):
        return float(v)
    shape = tuple(getattr(v, "shape", ()))
    n = like.shape[0]
    if shape == ():
        return xp.astype(xp.reshape(v, (1, 1)), like.dtype)
    if shape != (n,):
        raise ValueError(f"{name} must be a Python float or an array of shape ({n},), got shape {shape}")
    return xp.astype(xp.reshape(v, (n, 1)), like.dtype)


def _safe_log(xp, x):
    """``log(x)`` for ``x >= 0`` with ``log(0) = -inf`` and no warning."""
    pos = x > 0
    return xp.where(pos, xp.log(xp.where(pos, x, xp.ones_like(x))), xp.full_like(x, -math.inf))


def _scaled_norm(xp, g):
    """``(|g|, g/|g|, ok)`` without overflow/underflow for ``max_i |g_i|`` in ``[smallest_normal, max]``.

    ``ok`` is ``False`` where ``max_i |g_i| < finfo.smallest_normal`` (zero or subnormal
    gradient): the direction ``e`` is then undefined and set to 0.
    """
    tiny = float(xp.finfo(g.dtype).smallest_normal)
    m = xp.max(xp.abs(g), axis=-1, keepdims=True)
    ok = m >= tiny
    m_safe = xp.where(ok, m, xp.ones_like(m))
    gs = g / m_safe
    ns = xp.linalg.vector_norm(gs, axis=-1, keepdims=True)
    ns_safe = xp.where(ok, ns, xp.ones_like(ns))
    e = xp.where(ok, gs / ns_safe, xp.zeros_like(g))
    gnorm = xp.where(ok, m_safe * ns_safe, xp.zeros_like(m))
    return gnorm, e, ok


def esh_velocity_update(u, g, tau, sqrt_diag=None):
    """Closed-form isokinetic velocity update for a fixed gradient over time ``tau``.

    Parameters
    ----------
    u : array (n, d)
        Unit velocities (an all-zero row is allowed and is mapped to ``e``).
    g : array (n, d)
        Gradient of ``log p`` held fixed during the sub-step.
    tau : float or array (n,)
        Duration of the sub-step (``coef * step_size``), ``>= 0``.
    sqrt_diag : array (n, d), optional
        Diagonal preconditioner ``S``: the update sees ``S g``.

    Returns
    -------
    u_new : array (n, d)
        ``normalise(e (1-zeta)(1+zeta+c(1-zeta)) + 2 zeta u)`` with
        ``e = S g/|S g|``, ``delta = tau |S g|/(d-1)``, ``zeta = e^{-delta}``,
        ``c = u.e`` (module docstring; notes Sec. 1.2).
    kinetic_change : array (n,)
        ``dK = (d-1) log(cosh delta + c sinh delta) = int_0^tau u(t).S g dt``.

    Notes
    -----
    Edge cases (all without data-dependent shapes or warnings):
    ``max|S g| < finfo.smallest_normal`` -> ``u`` unchanged, ``dK = 0``;
    ``c = -1`` (``u`` antiparallel to ``e``, an unstable fixed point) ->
    ``u_new = u``, ``dK = -(d-1) delta``; ``delta = inf`` -> ``u_new = e``
    (unless ``c = -1``); ``u = 0`` -> ``u_new = e`` and
    ``dK = (d-1) log cosh delta``.  ``c`` is clipped to ``[-1, 1]`` against
    rounding.
    """
    _check_pair(u, g)
    xp = array_namespace(u, g)
    d = u.shape[1]
    if sqrt_diag is not None:
        _check_pair(u, sqrt_diag, "u", "sqrt_diag")
        g = sqrt_diag * g
    tau = _column(xp, tau, u, "tau")
    gnorm, e, ok = _scaled_norm(xp, g)
    delta = tau * (gnorm / (d - 1))  # (n, 1)
    c = xp.clip(xp.sum(u * e, axis=-1, keepdims=True), -1.0, 1.0)
    zeta = xp.exp(-delta)
    om = -xp.expm1(-delta)  # 1 - zeta, accurate for small delta
    raw = e * (om * (1.0 + zeta + c * om)) + (2.0 * zeta) * u
    rn = xp.linalg.vector_norm(raw, axis=-1, keepdims=True)
    good = rn > 0
    un = xp.linalg.vector_norm(u, axis=-1, keepdims=True)
    fallback = xp.where(un > 0, u, e)  # c = -1 with zeta^2 underflow, or u = 0 with delta = 0
    u_new = xp.where(good, raw / xp.where(good, rn, xp.ones_like(rn)), fallback)
    u_new = xp.where(ok, u_new, u)

    # kinetic change / (d - 1) = log(cosh delta + c sinh delta)
    q = (1.0 - c) * (om * (1.0 + zeta)) * 0.5  # (1 - c)(1 - zeta^2)/2 in [0, 1]
    small_q = q < 0.5
    k_small = delta + xp.log1p(-xp.where(small_q, q, xp.zeros_like(q)))
    lse = xp.logaddexp(_safe_log(xp, 1.0 + c), _safe_log(xp, 1.0 - c) - 2.0 * delta)
    anti = (1.0 + c) > 0
    k_large = xp.where(anti, delta - math.log(2.0) + xp.where(anti, lse, xp.zeros_like(lse)), -delta)
    k = xp.where(small_q, k_small, k_large)
    k = xp.where(ok, k, xp.zeros_like(k))
    return u_new, (d - 1) * k[:, 0]


def position_update(x, u, tau, sqrt_diag=None):
    """A flow: ``x + tau * S u`` (``S = diag(sqrt_diag)``; ``tau`` float or array (n,))."""
    _check_pair(x, u, "x", "u")
    xp = array_namespace(x, u)
    tau = _column(xp, tau, x, "tau")
    v = u if sqrt_diag is None else sqrt_diag * u
    return x + tau * v


def isokinetic_step(state, step_size, logdensity_and_grad, coefficients, sqrt_diag=None):
    """One palindromic ``B A B ... A B`` step of the isokinetic dynamics.

    Parameters
    ----------
    state : IntegratorState
        The first B uses ``state.logdensity_grad`` (stored from the previous step).
    step_size : float or array (n,)
        ``eps``; sub-step ``i`` lasts ``coefficients[i] * eps``.
    logdensity_and_grad : callable
        ``x (n, d) -> (logp (n,), grad (n, d))``, called once after each A sub-step
        (``coefficients.n_grad`` calls per step).
    coefficients : IntegratorCoefficients or str
        Scheme (see :mod:`smile_ref.integrators.coefficients`).
    sqrt_diag : array (n, d), optional
        Diagonal preconditioner ``S``.

    Returns
    -------
    new_state : IntegratorState
    kinetic_change : array (n,)
        Sum of the B sub-steps' ``dK``; the energy error of the step is
        ``kinetic_change - (new_state.logdensity - state.logdensity)``
        (notes Sec. 1.3).
    """
    if not isinstance(coefficients, IntegratorCoefficients):
        coefficients = get_integrator(coefficients)
    if isinstance(step_size, numbers.Real) and not hasattr(step_size, "shape"):
        if not math.isfinite(float(step_size)) or float(step_size) <= 0:
            raise ValueError(f"step_size must be finite and > 0, got {step_size}")
    x, u, logp, g = state
    dK = None
    for i, coef in enumerate(coefficients.coefficients):
        tau = step_size * coef
        if i % 2 == 0:
            u, k = esh_velocity_update(u, g, tau, sqrt_diag)
            dK = k if dK is None else dK + k
        else:
            x = position_update(x, u, tau, sqrt_diag)
            logp, g = logdensity_and_grad(x)
    return IntegratorState(x, u, logp, g), dK


def reference_step(x, u, step_size, logdensity_and_grad, integrator="mclachlan", sqrt_diag=None):
    """One deterministic step from ``(x, u)``, evaluating the initial gradient (cross-checks).

    Returns
    -------
    (x_new, u_new, kinetic_change, logdensity_new, grad_new, energy_error)
        ``energy_error = kinetic_change - (logp(x_new) - logp(x))``, for
        step-by-step comparison with external implementations (BlackJAX
        ``isokinetic_<integrator>``).
    """
    logp, g = logdensity_and_grad(x)
    new, dK = isokinetic_step(IntegratorState(x, u, logp, g), step_size, logdensity_and_grad,
                              get_integrator(integrator), sqrt_diag)
    return new.position, new.momentum, dK, new.logdensity, new.logdensity_grad, dK - (new.logdensity - logp)
