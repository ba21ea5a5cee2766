"""Weak noise: x-degree extrapolation of the Galerkin solve of SG-MCLMC's stationary law.

As the noise weakens (``rate * sigma_min -> 0``, :func:`smile_ref.theory.sg_mclmc_bias.regime_numbers`)
the Galerkin solve of :mod:`smile_ref.theory.sg_mclmc_galerkin` converges slowly in the position degree
``n_x``: the correction ``h`` of the stationary law develops position structure that low-degree
polynomials do not resolve (``anisotropic-noise-bias.md``, "Limits").  Measured (d = 3, aligned,
rate 0.1, ``n_u = 8``): ``Var(x_1)/Σ_t,11 = 0.6584, 0.6728, 0.6787, 0.6825, 0.6857, 0.6884`` at
``n_x = 4 ... 14``, successive changes shrinking by a factor 0.4-0.85 per step of 2.

Method (Richardson-type geometric tail estimate, per entry of ``C = E[x xᵀ]``):
with three solves ``C_1, C_2, C_3`` at ``n_x - 4, n_x - 2, n_x`` (same velocity degree, same reference),
``Δ_1 = C_2 - C_1``, ``Δ_2 = C_3 - C_2`` and ``r = Δ_2/Δ_1`` (0 where the signs differ, capped at
``R_MAX``); if the changes keep shrinking by ``r`` the remainder is ``Δ_2 r/(1 - r)``, so::

    C = C_3 + Δ_2 r/(1 - r),
    err = max_ij w_i w_j [ |Δ_2 r/(1 - r)| + |Δ_2| + |C_3 - C_3'| ]   (+ |Δ_1| where the signs differ),

with ``C_3'`` the solve at ``(n_x, n_u - 2)``: the tail estimate counts fully as error (the geometric
model is not proved), plus the last x-change and the velocity-degree change, which is not extrapolated.
Everything comes from the convergence sequence; nothing is fitted to simulations.
"""
from __future__ import annotations

import numpy as np

from .sg_mclmc_galerkin import _solve, galerkin_basis_size

__all__ = ["x_degree_extrapolation", "geometric_tail", "weak_basis_size", "WEAK_DEGREES", "WEAK_DEGREES_ROTATED", "R_MAX", "weak_degrees"]

#: Largest ratio of successive changes used in the tail estimate (``r/(1 - r) <= 4``).
R_MAX = 0.8
#: Top degrees ``(n_x, n_u, n_total_extra)`` of the weak-noise sequence by d (larger d: the last entry);
#: ``n_total = n_x + n_total_extra`` (None: no joint limit).  Diagonal Σ_t and Σ (reflection symmetry) ...
WEAK_DEGREES = {3: (14, 8, None), 4: (10, 6, None), 5: (8, 4, 2), 7: (6, 4, 0)}
#: ... and otherwise (global symmetry).
WEAK_DEGREES_ROTATED = {3: (12, 6, None), 4: (8, 4, None), 5: (6, 4, 0)}


def weak_degrees(d, symmetry):
    """``(n_x, n_u, n_total_extra)`` of the weak-noise sequence for ``d`` and the basis symmetry."""
    table = WEAK_DEGREES if symmetry == "reflections" else WEAK_DEGREES_ROTATED
    return table[max(k for k in table if k <= d)]


def x_degree_extrapolation(St, S, eps, n_x, n_u, n_total_extra=None, ref_scale=1.2, symmetry="global",
                           ref_cov=None, error_weights=None, method="sparse", return_parts=False):
    """Extrapolated ``E[x xᵀ]`` and its stated error from the ``n_x`` sequence (module doc).

    Parameters
    ----------
    St, S : (d, d) arrays, target and noise covariances; eps : float.
    n_x, n_u : top position and velocity degrees (``n_x >= 6``, ``n_u >= 4``).
    n_total_extra : int or None; each solve uses ``n_total = n_x' + n_total_extra``.
    ref_cov : reference covariance (e.g. a refined first pass); default ``St``.
    error_weights : (d,) weights ``w`` of the error (error of ``diag(w) C diag(w)``).
    return_parts : also return the raw solves ``{(n_x', n_u'): C}``.

    Returns
    -------
    C, err (and the solves).
    """
    if n_x < 6 or n_u < 4:
        raise ValueError(f"x_degree_extrapolation needs n_x >= 6 and n_u >= 4, got {n_x}, {n_u}")
    d = St.shape[0]
    R = St if ref_cov is None else ref_cov

    def nt(nx):
        return None if n_total_extra is None else nx + n_total_extra

    parts = {}
    for nx, nu in ((n_x - 4, n_u), (n_x - 2, n_u), (n_x, n_u), (n_x, n_u - 2)):
        parts[(nx, nu)] = _solve(St, S, eps, nx, nu, ref_scale, symmetry, R, nt(nx), method)
    C3 = parts[(n_x, n_u)]
    C, e = geometric_tail(parts[(n_x - 4, n_u)], parts[(n_x - 2, n_u)], C3)
    C = (C + C.T) / 2
    w = np.ones(d) if error_weights is None else np.asarray(error_weights, dtype=np.float64)
    err = float(np.max((e + np.abs(C3 - parts[(n_x, n_u - 2)])) * np.outer(w, w)))
    return (C, err, parts) if return_parts else (C, err)


def geometric_tail(C1, C2, C3, r_max=None):
    """Elementwise geometric extrapolation of a sequence ``C1, C2, C3`` and its error (module doc).

    Returns ``(C3 + Δ_2 r/(1 - r), |Δ_2 r/(1 - r)| + |Δ_2| (+ |Δ_1| where Δ_1, Δ_2 differ in sign))`` with
    ``r = min(Δ_2/Δ_1, r_max)`` where the signs agree, else 0 (default ``r_max = R_MAX``).

    Examples
    --------
    >>> import numpy as np
    >>> C, e = geometric_tail(np.array([1.0]), np.array([1.5]), np.array([1.75]))  # limit 2, ratio 1/2
    >>> float(C[0]), float(e[0])
    (2.0, 0.5)
    """
    C1, C2, C3 = (np.asarray(c, dtype=np.float64) for c in (C1, C2, C3))
    D1, D2 = C2 - C1, C3 - C2
    same = D1 * D2 > 0
    r = np.where(same, np.divide(D2, D1, out=np.zeros_like(D2), where=same), 0.0)
    r = np.minimum(r, R_MAX if r_max is None else r_max)
    tail = D2 * r / (1.0 - r)
    return C3 + tail, np.abs(tail) + np.abs(D2) + np.where(same, 0.0, np.abs(D1))


def weak_basis_size(d, symmetry, degrees):
    """Functions in the largest solve of the weak-noise sequence."""
    nx, nu, extra = degrees
    return galerkin_basis_size(d, nx, nu, symmetry, None if extra is None else nx + extra)
