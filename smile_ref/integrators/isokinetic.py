"""Isokinetic (ESH) splitting integrator: closed-form B and A flows and one palindromic step.

Dynamics (Steeg & Galstyan 2021, "Hamiltonian dynamics with non-Newtonian
momentum"; Robnik et al. 2023, MCHMC, arXiv 2212.08549): for a target
``p(x)`` with score ``g(x) = grad log p(x)`` and unit velocity ``u`` on
``S^{d-1}``, with the diagonal preconditioner ``S = diag(sqrt_diag)``,

    dx/dt = S u,        du/dt = P(u) S g(x) / (d - 1),      P(u) = I - u u^T.

It leaves ``p(x) x Uniform(S^{d-1})`` invariant, and it conserves the energy
``E = K - log p(x)`` with the kinetic energy defined through
``dK/dt = u . S g`` (the work done by the force).

B flow (gradient fixed, time ``tau``; derivation and SymPy check
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

Two arithmetic forms of the B flow, chosen by ``esh_form`` (the same mathematics, rounding apart):
``"robust"`` (default) evaluates the formulas above as written, with the fallbacks of
:func:`esh_velocity_update` (:mod:`.esh_robust`; :mod:`.esh_eager` skips its ``where``s when no row
needs them, bit-identically); ``"lean"`` (:mod:`.esh_lean`) uses the closed-form norm
``|e (1-zeta)(1+zeta+c(1-zeta)) + 2 zeta u| = 1 + c + (1 - c) zeta^2`` and skips the ``max|S g|``
pre-scaling: 5 instead of 13 full-array passes per B, a few ulp per B from the robust results, and the
robust form for the whole call whenever a row needs one of its fallbacks.

On CuPy arrays both flows run as fused kernels (:mod:`.cupy_fused`: the same formulas, a few ulp
apart through the order of the row sums; ``SMILE_REF_CUPY_FUSED=0`` turns them off).  Every other
namespace runs the Array-API code below.
"""
from __future__ import annotations

import math
import numbers
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from ..backend import array_namespace, host_checks_cheap, is_cupy_namespace
from .coefficients import IntegratorCoefficients, get_integrator
from .esh_eager import Direction, esh_fast_columns, esh_fast_row
from .esh_lean import is_lean, lean_b, lean_update
from .esh_robust import esh_general as _esh_general
from .metric import Metric, scale_of as _scale_of, scaled as _scaled
from .validation import check_pair as _check_pair, check_scale_arg as _check_scale, column as _column

__all__ = [
    "ESH_FORMS",
    "IntegratorState",
    "esh_velocity_update",
    "position_update",
    "isokinetic_step",
    "isokinetic_step_unchecked",
    "isokinetic_step_carry",
    "reference_step",
    "b_substep",
    "position_substep",
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


def _fused(xp):
    """:mod:`.cupy_fused` on CuPy arrays with the fast path enabled, else None (the Array-API code)."""
    if not is_cupy_namespace(xp):
        return None
    from . import cupy_fused

    return cupy_fused if cupy_fused.enabled() else None


def _esh_core(xp, u, g, tau, d, cached=None, want=False):
    """:func:`esh_velocity_update` on checked inputs: ``g`` already ``S g``, ``tau`` float or (n, 1) column.

    On NumPy and ``array_api_strict`` the common case runs without the fallback ``where``s
    (:mod:`.esh_eager`; the one-chain form for ``n = 1`` NumPy arrays); everywhere else, and
    whenever a row needs a fallback, the branch-free :func:`_esh_general`.  Both give
    bit-identical results.  Returns ``(u', dK)``; with ``want``, ``(u', dK, (e, |g|) or None)``
    (``None`` where the general form ran).  ``cached``: ``(e, |g|)`` of this ``g`` from an earlier
    call (then ``g`` may be ``None``, and ``None`` is returned if the fast path does not apply).
    """
    out = None
    if host_checks_cheap(xp):
        if u.shape[0] == 1 and isinstance(u, np.ndarray) and (g is None or isinstance(g, np.ndarray)):
            out = esh_fast_row(u, g, tau, d, cached)
        else:
            out = esh_fast_columns(xp, u, g, tau, d, cached)
    if out is not None:
        return (out[0], out[1], out[2:]) if want else out[:2]
    if g is None:
        return None
    u_new, k = _esh_general(xp, u, g, tau, d)
    return (u_new, k, None) if want else (u_new, k)


def _lean_core(xp, u, h, tau, d):
    """The ``"lean"`` update on checked inputs (:func:`.esh_lean.lean_update`), else the robust :func:`_esh_core`."""
    out = lean_update(xp, u, h, tau, d) if host_checks_cheap(xp) else None
    return _esh_core(xp, u, h, tau, d) if out is None else out[:2]


ESH_FORMS = MappingProxyType({"robust": _esh_core, "lean": _lean_core})
"""The ESH velocity update of each ``esh_form`` on checked inputs, ``f(xp, u, h, tau, d) -> (u', dK)``.

``h = S g`` (already preconditioned), ``tau`` a Python float or an ``(n, 1)`` column of ``u``'s dtype,
``d = u.shape[1]``: what :func:`esh_velocity_update` runs after its checks (benchmarks time these)."""


def _esh_fast_eager(xp, u, g, tau, d):
    """``(u', dK)`` of the eager fast path, or ``None`` when a row needs a fallback of :func:`_esh_general`."""
    if u.shape[0] == 1 and isinstance(u, np.ndarray) and isinstance(g, np.ndarray):
        out = esh_fast_row(u, g, tau, d)
    else:
        out = esh_fast_columns(xp, u, g, tau, d)
    return None if out is None else out[:2]


def _b_update(xp, u, g, scale, tau, d, direction=None, want=False):
    """One B sub-step on ``S g`` (unfused namespaces): ``(u', dK, Direction or None)``.

    ``scale``: ``None``, the ``sqrt_diag`` array or a :class:`~.metric.DenseMetric`.  ``direction``
    (a :class:`~.esh_eager.Direction`) replaces the computation of ``e`` and ``|S g|`` when it was
    made from these very ``g`` and ``scale`` objects.  With ``want`` the direction of ``S g`` is
    returned (``None`` where the general form ran).
    """
    out = None
    if direction is not None and direction.unit is not None and direction.matches(g, scale):
        out = _esh_core(xp, u, None, tau, d, (direction.unit, direction.norm), True)
    if out is None:
        out = _esh_core(xp, u, _scaled(xp, g, scale), tau, d, None, True)
    ek = out[2]
    return out[0], out[1], (Direction(ek[0], ek[1], g, scale) if want and ek is not None else None)


def esh_velocity_update(u, g, tau, sqrt_diag=None, *, metric=None, esh_form="robust"):
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
    metric : Metric, optional
        Any :mod:`~smile_ref.integrators.metric` (identity, diagonal, dense ``S``) instead of
        ``sqrt_diag``; the update sees ``S g``.
    esh_form : {"robust", "lean"}
        Arithmetic of the update (module docstring): ``"robust"`` (default) as written below;
        ``"lean"`` the closed-form norm (:mod:`.esh_lean`, a few ulp apart; rows that need a
        fallback get the robust form).  ``u`` is normalised by the lean form (``|u| = 1`` is assumed
        by the dynamics; the robust form takes a non-unit ``u`` as it is).

    Returns
    -------
    u_new : array (n, d)
        ``normalise(e (1-zeta)(1+zeta+c(1-zeta)) + 2 zeta u)`` with
        ``e = S g/|S g|``, ``delta = tau |S g|/(d-1)``, ``zeta = e^{-delta}``,
        ``c = u.e`` (module docstring).
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
    rounding.  Row norms and ``c`` are computed with ``vecdot`` (one fused
    reduction per row).
    """
    lean = is_lean(esh_form)
    _check_pair(u, g)
    xp = array_namespace(u, g)
    scale = _scale_of(sqrt_diag, metric)
    _check_scale(u, scale)
    fz = None if isinstance(scale, Metric) else _fused(xp)
    tau = _column(xp, tau, u, "tau")
    if fz is not None:
        return fz.esh(u, g, tau, u.shape[1], scale)
    return (_lean_core if lean else _esh_core)(xp, u, _scaled(xp, g, scale), tau, u.shape[1])


def _position_core(x, u, tau, sqrt_diag):
    v = u * tau if sqrt_diag is None else sqrt_diag * u
    if sqrt_diag is not None:
        v *= tau
    v += x
    return v


def position_update(x, u, tau, sqrt_diag=None, *, metric=None):
    """A flow: ``x + tau * S u`` (``S = diag(sqrt_diag)``, or any ``metric``; ``tau`` float or array (n,))."""
    _check_pair(x, u, "x", "u")
    xp = array_namespace(x, u)
    scale = _scale_of(sqrt_diag, metric)
    _check_scale(u, scale)
    return position_substep(xp, x, u, _column(xp, tau, x, "tau"), scale, _fused(xp))


def position_substep(xp, x, u, tau, scale, fz=None):
    """The A sub-step ``x + tau S u`` on checked inputs (``scale`` and ``fz`` as in :func:`b_substep`)."""
    if isinstance(scale, Metric):
        return scale.position(xp, x, u, tau)
    return (fz.position if fz is not None else _position_core)(x, u, tau, scale)


def isokinetic_step(state, step_size, logdensity_and_grad, coefficients, sqrt_diag=None, *, metric=None,
                    esh_form="robust"):
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
    metric : Metric, optional
        Instead of ``sqrt_diag``: an identity, diagonal or dense ``S``
        (:mod:`~smile_ref.integrators.metric`), held fixed within the step; A is
        ``x <- x + tau S u`` and B the ESH update on ``S g``.
    esh_form : {"robust", "lean"}
        Arithmetic of the B sub-steps (module docstring, :mod:`.esh_lean`): ``"robust"`` (default)
        or ``"lean"`` (5 instead of 13 full-array passes per B, a few ulp apart; ``|u|`` is measured
        and reset in the first B of every step, so it stays 1 to rounding over any number of steps).

    Returns
    -------
    new_state : IntegratorState
    kinetic_change : array (n,)
        Sum of the B sub-steps' ``dK``; the energy error of the step is
        ``kinetic_change - (new_state.logdensity - state.logdensity)``
        (``docs/derivations/esh-velocity-update.md``).
    """
    lean = is_lean(esh_form)
    if not isinstance(coefficients, IntegratorCoefficients):
        coefficients = get_integrator(coefficients)
    x, u, logp, g = state
    _check_pair(u, g)
    if tuple(x.shape) != tuple(u.shape):
        raise ValueError(f"x and u must have the same shape (n, d), got {tuple(x.shape)} and {tuple(u.shape)}")
    scale = _scale_of(sqrt_diag, metric)
    _check_scale(u, scale)
    xp = array_namespace(x, u, g)
    n = x.shape[0]
    if isinstance(step_size, numbers.Real) and not hasattr(step_size, "shape"):
        if not math.isfinite(float(step_size)) or float(step_size) <= 0:
            raise ValueError(f"step_size must be finite and > 0, got {step_size}")
        step_size = float(step_size)
    else:
        shape = tuple(getattr(step_size, "shape", ()))
        if shape not in ((), (n,)):
            raise ValueError(f"step_size must be a Python float or an array of shape ({n},), got shape {shape}")
    return _step(xp, state, step_size, logdensity_and_grad, coefficients, scale, lean=lean)[:2]


def isokinetic_step_unchecked(xp, state, step_size, logdensity_and_grad, coefficients, sqrt_diag=None, *,
                              metric=None, esh_form="robust"):
    """:func:`isokinetic_step` without argument validation (samplers' inner loop; inputs already checked).

    ``xp`` is the namespace of the state, ``coefficients`` an :class:`IntegratorCoefficients`,
    ``step_size`` a Python float or an array of shape ``()`` or ``(n,)``.  Same arithmetic as
    :func:`isokinetic_step` (bit for bit); wrong shapes or dtypes fail inside, so only code that has
    validated its inputs once (the samplers' constructors and ``init``) should call it.  ``esh_form``
    (``"robust"`` or ``"lean"``, :func:`isokinetic_step`) is checked (a string comparison).

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> from smile_ref.integrators import MCLACHLAN, IntegratorState, isokinetic_step_unchecked
    >>> def lg(x):
    ...     return -0.5 * xp.sum(x * x, axis=-1), -x
    >>> x = xp.asarray([[1.0, 0.0]])
    >>> s0 = IntegratorState(x, xp.asarray([[0.0, 1.0]]), *lg(x))
    >>> s1, dK = isokinetic_step_unchecked(xp, s0, 0.1, lg, MCLACHLAN)
    >>> s1.position.shape, dK.shape
    ((1, 2), (1,))
    """
    scale = sqrt_diag if metric is None else _scale_of(sqrt_diag, metric)
    return _step(xp, state, step_size, logdensity_and_grad, coefficients, scale, lean=is_lean(esh_form))[:2]


def isokinetic_step_carry(xp, state, step_size, logdensity_and_grad, coefficients, sqrt_diag=None,
                          direction=None, *, metric=None, esh_form="robust"):
    """:func:`isokinetic_step_unchecked` that also returns the last B's direction, for the next step's first B.

    The first B of a step uses the gradient the previous step's last B used (the stored
    ``state.logdensity_grad``), so ``e = S g/|S g|`` and ``|S g|`` need not be recomputed:
    pass the :class:`~smile_ref.integrators.esh_eager.Direction` this function returned for the
    previous step.  It is used only if ``state.logdensity_grad`` and the preconditioner
    (``sqrt_diag`` array or ``metric``'s) are the very objects it was computed from (``is``); a
    sampler that replaces the stored gradient (a rejected step, a rescaled stored gradient) or the
    preconditioner simply gets a recomputation.  The arrays must not be modified in place between
    the two steps.  Results are bit-identical to :func:`isokinetic_step_unchecked` with the same
    ``esh_form`` (``"robust"``, default, or ``"lean"``: :func:`isokinetic_step`).  A direction
    made by either form may be passed to either (the lean one carries ``S g`` and ``|S g|``, the
    robust one ``e`` and ``|S g|``; the robust form recomputes from a lean direction).

    Returns
    -------
    (new_state, kinetic_change, direction)
        ``direction`` is ``None`` where it could not be formed (CuPy's fused kernels, or the
        general form ran for the last B because a row needed a fallback).
    """
    scale = sqrt_diag if metric is None else _scale_of(sqrt_diag, metric)
    return _step(xp, state, step_size, logdensity_and_grad, coefficients, scale, direction, True,
                 is_lean(esh_form))


def b_substep(xp, u, g, scale, tau, d, direction=None, want=False, lean=False, unit=False, fz=None):
    """One B sub-step of the step functions on checked inputs: ``(u', dK, Direction or None, unit)``.

    ``scale``: ``None``, the ``sqrt_diag`` array or a dense metric; ``tau`` a float or ``(n, 1)``
    column; ``direction`` a carried :class:`~.esh_eager.Direction` (first B), ``want`` asks for this
    B's direction (last B); ``lean`` the ``"lean"`` form with ``unit`` (input ``|u| = 1`` known);
    ``fz`` the fused CuPy kernels or ``None``.  The returned ``unit`` is true after a lean B.  The step
    looks this function and :func:`position_substep` up at call time, so that a profiler
    (``benchmarks/step_anatomy.py``) can time the B and A flows by wrapping them.
    """
    if fz is not None:
        u, k = fz.esh(u, g, tau, d, scale)
        return u, k, None, False
    if lean:
        out = lean_b(xp, u, g, scale, tau, d, direction, unit, want)
        if out is not None:
            return out[0], out[1], out[2], True
    if direction is not None or want or lean:
        return (*_b_update(xp, u, g, scale, tau, d, direction, want), False)
    u, k = _esh_core(xp, u, _scaled(xp, g, scale), tau, d)
    return u, k, None, False


def _step(xp, state, step_size, logdensity_and_grad, coefficients, scale, direction=None, want=False, lean=False):
    """The palindromic step: ``(new_state, dK, Direction of the last B or None)``.

    ``lean``: B sub-steps by :func:`.esh_lean.lean_b`; the first B measures ``|u|``, later ones take
    ``|u| = 1`` after a lean B (``unit``) and measure it again after a robust fallback."""
    x, u, logp, g = state
    n, d = x.shape
    if type(step_size) is float:  # not a NumPy scalar (those have a shape and a dtype)
        eps = step_size
    elif n == 1 and type(step_size) is np.ndarray and type(x) is np.ndarray:
        # one chain of a NumPy array: the step size as a NumPy scalar of its dtype (the same IEEE products
        # eps * coef and tau * u as with a (1, 1) column, without an array operation per sub-step)
        eps = step_size.reshape(-1)[0]
    else:
        eps = xp.reshape(step_size, (n, 1) if step_size.ndim else (1, 1))
    dK = None
    fz = None if isinstance(scale, Metric) else _fused(xp)
    coefs = coefficients.coefficients
    last = len(coefs) - 1
    out_dir = None
    unit = False
    for i, coef in enumerate(coefs):
        tau = eps * coef
        if type(tau) is not float and tau.dtype != x.dtype:  # a NumPy float64 scalar is a float instance
            tau = x.dtype.type(tau) if isinstance(tau, np.generic) else xp.astype(tau, x.dtype)
        if i % 2 == 0:
            u, k, dr, unit = b_substep(xp, u, g, scale, tau, d, direction if i == 0 else None, i == last and want,
                                       lean, unit, fz)
            if i == last:
                out_dir = dr
            dK = k if dK is None else dK + k
        else:
            x = position_substep(xp, x, u, tau, scale, fz)
            logp, g = logdensity_and_grad(x)
            if tuple(getattr(g, "shape", ())) != (n, d):
                raise ValueError(f"logdensity_and_grad must return a gradient of shape ({n}, {d}), "
                                 f"got {getattr(g, 'shape', None)}")
    return IntegratorState(x, u, logp, g), dK, out_dir


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
