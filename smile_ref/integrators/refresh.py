"""Velocity refreshment of microcanonical *Langevin* dynamics (the O step).

Partial refresh (Robnik & Seljak 2024, "Fluctuation without dissipation",
arXiv 2303.18221; BlackJAX ``partially_refresh_momentum``): for time ``tau`` and momentum decoherence length ``L``,

    u' = (u + nu z) / |u + nu z|,   z ~ N(0, I_d),   nu = sqrt((exp(2 tau / L) - 1) / d).

Why this ``nu``: for large ``d``, ``|u + nu z|^2 ~= 1 + nu^2 d = e^{2 tau/L}``,
so ``u' . u ~= e^{-tau/L}``: the velocity autocorrelation decays like
``e^{-t/L}`` whatever ``tau`` is, i.e. refreshes compose (two refreshes of
``tau/2`` act like one of ``tau`` to leading order).  The map is equivariant
under rotations and ``z`` is isotropic, so the uniform law on ``S^{d-1}`` is
invariant and the refresh adds no bias.  ``L = inf`` gives ``nu = 0``: no
refresh (the input is returned unchanged).

Use in a step (O-B-A-B-A-B-O, BlackJAX ``with_isokinetic_maruyama``): the
sampler applies **two half refreshes**, ``tau = eps/2`` before and after the
deterministic palindromic step ``Phi_eps``:
``u <- O(eps/2); (x, u) <- Phi_eps(x, u); u <- O(eps/2)``.  Reasons:

1. The composition ``O(eps/2) Phi_eps O(eps/2)`` is a symmetric (Strang)
   splitting of the Langevin generator ``L_Phi + L_O``: the step stays
   palindromic, the leading commutator error term cancels and the weak
   local error is ``O(eps^3)`` (second order), the same order as the
   deterministic McLachlan/leapfrog part.  A single refresh per step,
   ``O(eps) Phi_eps`` (Lie-Trotter), is only first order in the
   noise-dynamics coupling.
2. It is what BlackJAX (and hence the SMILE code) does, so trajectories can be
   cross-checked step by step given the same normal draws ``z``.

The caller supplies ``z`` (standard normal draws of shape ``(n, d)``) so that
golden trajectories can record the random numbers.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..backend import array_namespace, host_checks_cheap
from ..backend.namespace import eager_min
from .validation import column as _column  # (n,) parameter -> (n, 1) column, shared with the ESH update

__all__ = ["partial_refresh", "full_refresh", "refresh_nu", "refresh_with_nu"]


def _is_py_real(v) -> bool:
    return isinstance(v, numbers.Real) and not hasattr(v, "shape")


def refresh_nu(tau, L, d: int):
    """``nu = sqrt(expm1(2 tau / L) / d)`` (Python floats or arrays; ``L = inf`` -> 0)."""
    if _is_py_real(tau) and _is_py_real(L):
        return math.sqrt(math.expm1(2.0 * float(tau) / float(L)) / d)
    xp = array_namespace(*[v for v in (tau, L) if not _is_py_real(v)])
    return xp.sqrt(xp.expm1(2.0 * tau / L) / d)


def _check(u, z):
    for a, name in ((u, "u"), (z, "z")):
        shape = getattr(a, "shape", None)
        if shape is None or len(shape) != 2:
            raise ValueError(f"{name} must be an array of shape (n, d), got {shape}")
    if tuple(u.shape) != tuple(z.shape):
        raise ValueError(f"u and z must have the same shape (n, d), got {tuple(u.shape)} and {tuple(z.shape)}")


def partial_refresh(u, tau, L, z):
    """Partial refresh ``u <- normalise(u + nu z)``, ``nu = sqrt((e^{2 tau/L} - 1)/d)``.

    Parameters
    ----------
    u : array (n, d)
        Unit velocities.
    tau : float or array (n,)
        Refresh time (``eps/2`` for each of the two half refreshes of a step).
    L : float or array (n,)
        Momentum decoherence length, ``> 0``; ``inf`` disables the refresh.
    z : array (n, d)
        Standard normal draws supplied by the caller.

    Returns
    -------
    array (n, d): ``u`` where ``nu = 0`` (``L = inf`` or ``tau = 0``), else
    ``(u + nu z)/|u + nu z|``.
    """
    _check(u, z)
    xp = array_namespace(u, z)
    d = u.shape[1]
    if _is_py_real(tau) and _is_py_real(L):
        if float(L) <= 0 or math.isnan(float(L)):
            raise ValueError(f"L must be > 0 (inf disables the refresh), got {L}")
        if float(tau) < 0 or not math.isfinite(float(tau)):
            raise ValueError(f"tau must be finite and >= 0, got {tau}")
        nu = refresh_nu(tau, L, d)
        if nu == 0.0:
            return u
        return refresh_with_nu(xp, u, nu, z)
    tau_c = float(tau) if _is_py_real(tau) else _column(xp, tau, u, "tau")
    L_c = float(L) if _is_py_real(L) else _column(xp, L, u, "L")
    return refresh_with_nu(xp, u, refresh_nu(tau_c, L_c, d), z)


def refresh_with_nu(xp, u, nu, z):
    """``(u + nu z)/|u + nu z|`` for a float or (n, 1) column ``nu``; rows with ``nu = 0`` return ``u``.

    Rows with ``nu = 0`` are divided by 1 (``u + 0 z = u``), rows with ``|u + nu z| = 0`` too.
    ``u = 0`` with ``nu = 1`` gives ``z/|z|`` (the full refresh).  Used by
    :func:`partial_refresh` and by the MCLMC kernel (which merges the second half refresh
    and the rejected chains' full refresh into one pass).  No argument validation: the inner-loop
    form of :func:`partial_refresh` (``nu`` from :func:`refresh_nu`).

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> u, z = xp.asarray([[1.0, 0.0]]), xp.asarray([[0.0, 1.0]])
    >>> refresh_with_nu(xp, u, 1.0, z).tolist()  # (u + z)/|u + z|
    [[0.7071067811865475, 0.7071067811865475]]
    """
    w = z * nu  # fresh array: shifted and normalised in place
    w += u
    if isinstance(nu, float):
        w /= xp.sqrt(xp.vecdot(w, w))[:, None]
        return w
    if w.shape[0] == 1 and type(w) is np.ndarray:
        # one chain of a NumPy array: |w| and the test as scalars (dividing by 1 changes nothing, so the
        # rows the where would divide by 1 are left as they are; the same values)
        wn = np.sqrt(np.vecdot(w, w)[0])
        if wn > 0 and nu[0, 0] != 0.0:
            w /= wn
        return w
    wn = xp.sqrt(xp.vecdot(w, w))[:, None]
    if host_checks_cheap(xp) and float(eager_min(xp, wn)) > 0 and float(eager_min(xp, nu)) > 0:
        w /= wn  # eager namespaces, every row with |w| > 0 and nu != 0 (a NaN fails the tests): no where
        return w
    w /= xp.where((wn > 0) & (nu != 0.0), wn, 1.0)
    return w


def full_refresh(z):
    """Uniform draw on ``S^{d-1}``: ``z / |z|`` for standard normal ``z`` of shape (n, d).

    A row with ``|z| = 0`` (probability zero) is returned as zeros.
    """
    shape = getattr(z, "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"z must be an array of shape (n, d), got {shape}")
    xp = array_namespace(z)
    zn = xp.sqrt(xp.vecdot(z, z))[:, None]
    pos = zn > 0
    return xp.where(pos, z / xp.where(pos, zn, 1.0), 0.0)
