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
#: Top degrees ``(n_x, n_u, n_total_extra)`` of the weak-noise sequence by d, ``n_total = n_x + n_total_extra``
#: (None: no joint limit); among the affordable sequences (largest basis <= 15000) the one with the smallest
#: stated error (d = 4 rotated: (8, 6, 2) states 5.5 %, (8, 4, None) 15.8 %).  Diagonal Σ_t and Σ
#: (reflection symmetry; d = 6: 4232 functions at (6, 6, 8)) ...
WEAK_DEGREES = {3: (14, 8, None), 4: (10, 6, None), 5: (6, 6, 2), 6: (6, 6, 2)}
#: ... and otherwise (global symmetry; d = 4: 15334 functions at (8, 6, 10)).  Other d: no sequence is
#: affordable (d = 10 aligned (6, 6, 8): 31255 functions; d = 6 rotated (6, 6, 8): ~2^5 times d = 6 aligned).
WEAK_DEGREES_ROTATED = {3: (12, 6, None), 4: (8, 6, 2)}


def weak_degrees(d, symmetry):
    """``(n_x, n_u, n_total_extra)`` of the weak-noise sequence for ``d`` and the basis symmetry, or None."""
    table = WEAK_DEGREES if symmetry == "reflections" else WEAK_DEGREES_ROTATED
    return table.get(d)


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

    Returns ``(C3 + Δ_2 r/(1 - r), |Δ_2 r/(1 - r)| + |Δ_2|)`` with ``r = min(Δ_2/Δ_1, r_max)`` where the signs
    agree and ``Δ_2/Δ_1 <= 1`` (default ``r_max = R_MAX``); where the signs differ ``r = 0`` and ``|Δ_1|`` is added
    to the error; where the changes grow (``Δ_2/Δ_1 > 1``) no tail is applied and the capped tail plus
    ``|Δ_1|`` count as error.

    Examples
    --------
    >>> import numpy as np
    >>> C, e = geometric_tail(np.array([1.0]), np.array([1.5]), np.array([1.75]))  # limit 2, ratio 1/2
    >>> float(C[0]), float(e[0])
    (2.0, 0.5)
    """
    C1, C2, C3 = (np.asarray(c, dtype=np.float64) for c in (C1, C2, C3))
    rm = R_MAX if r_max is None else r_max
    D1, D2 = C2 - C1, C3 - C2
    same = D1 * D2 > 0
    r = np.where(same, np.divide(D2, D1, out=np.zeros_like(D2), where=same), 0.0)
    grow = r > 1.0  # changes growing: no tail is applied, the capped tail and the first change count as error
    rc = np.minimum(r, rm)
    tail = D2 * rc / (1.0 - rc)
    err = np.abs(tail) + np.abs(D2) + np.where(same & ~grow, 0.0, np.abs(D1))
    return C3 + np.where(grow, 0.0, tail), err


def weak_basis_size(d, symmetry, degrees):
    """Functions in the largest solve of the weak-noise sequence."""
    nx, nu, extra = degrees
    return galerkin_basis_size(d, nx, nu, symmetry, None if extra is None else nx + extra)
