"""Basis of the Galerkin solve of :mod:`smile_ref.theory.sg_mclmc_galerkin`: exponents, closed-form moments.

The trial = test space is spanned by ``y^β u^γ`` (position ``y``, velocity ``u`` on ``S^{d-1}``) with
``|β| <= n_x``, ``|γ| <= n_u``, ``γ_d <= 1`` (``u_d^2 = 1 - Σ_{i<d} u_i^2``), optionally
``|β| + |γ| <= n_total``, restricted by a symmetry: even ``|β| + |γ|`` (``(y, u) -> (-y, -u)``), or
``β_i + γ_i`` even for every ``i`` (each joint reflection ``(y_i, u_i) -> (-y_i, -u_i)``; diagonal
target and noise covariances).  Moments: ``E[y^β] = Π k^{β_i} (β_i-1)!!`` under ``N(0, k^2 I)`` and
``E_U[u^γ] = Π (γ_i-1)!! / (d (d+2) ... (d+|γ|-2))`` under the uniform law (all exponents even, else 0).
"""
from __future__ import annotations

import math
from itertools import combinations_with_replacement

import numpy as np

__all__ = ["galerkin_basis", "galerkin_basis_size", "velocity_monomial_count"]


def _exponents(n_vars, max_deg, last_max=None):
    """All exponent tuples in ``n_vars`` variables with total degree ``<= max_deg`` (last entry ``<= last_max``)."""
    out = []
    for deg in range(max_deg + 1):
        for combo in combinations_with_replacement(range(n_vars), deg):
            e = [0] * n_vars
            for c in combo:
                e[c] += 1
            if last_max is not None and e[-1] > last_max:
                continue
            out.append(tuple(e))
    return np.array(out, dtype=np.int64).reshape(-1, n_vars)


def _dfact_table(n):
    """``t[k] = (k-1)!!`` for even ``k``, 0 for odd ``k`` (``k = 0 .. n``)."""
    t = np.zeros(n + 1)
    acc = 1.0
    for k in range(0, n + 1, 2):
        t[k] = acc
        acc *= k + 1
    return t


class _Moments:
    """Closed-form moments of ``N(0, k^2 I_d)`` (position) and ``Uniform(S^{d-1})`` (velocity)."""

    def __init__(self, d, k2, max_deg):
        self.d = d
        self.df = _dfact_table(max_deg + 4)
        self.kpow = np.sqrt(k2) ** np.arange(max_deg + 5)
        s = np.ones(max_deg + 5)
        for n in range(2, max_deg + 5, 2):
            s[n] = s[n - 2] / (d + n - 2)
        s[1::2] = 0.0
        self.sphere_norm = s

    def y(self, e):
        """``E[y^e]`` for an exponent array ``(..., d)`` (negative entries give 0)."""
        bad = np.any(e < 0, axis=-1)
        ec = np.clip(e, 0, None)
        val = np.prod(self.df[ec] * self.kpow[ec], axis=-1)
        return np.where(bad, 0.0, val)

    def u(self, e):
        """``E_U[u^e]`` for an exponent array ``(..., d)`` (negative entries give 0)."""
        bad = np.any(e < 0, axis=-1)
        ec = np.clip(e, 0, None)
        val = np.prod(self.df[ec], axis=-1) * self.sphere_norm[ec.sum(-1)]
        return np.where(bad, 0.0, val)


def _parity_mask(E):
    return (E % 2).astype(np.int64) @ (1 << np.arange(E.shape[1], dtype=np.int64))


def galerkin_basis(d, n_x, n_u, symmetry="global", n_total=None):
    """Index pairs ``(β, γ)`` of the Galerkin basis (see module doc).

    Parameters
    ----------
    d : int >= 2
    n_x, n_u : int >= 0, maximal degrees in ``y`` and in ``u``.
    symmetry : ``"global"`` (even ``|β| + |γ|``), ``"reflections"`` (``β_i + γ_i`` even for all
        ``i``) or ``"none"``.
    n_total : int, optional, maximal joint degree ``|β| + |γ|`` (default ``n_x + n_u``).

    Returns
    -------
    By, Gu : int arrays ``(n_y, d)``, ``(n_u', d)`` of the factor exponents; iy, iu : index
        arrays of the selected pairs (the constant is pair 0).
    """
    if symmetry not in ("global", "reflections", "none"):
        raise ValueError(f"symmetry must be 'global', 'reflections' or 'none', got {symmetry!r}")
    By = _exponents(d, n_x)
    Gu = _exponents(d, n_u, last_max=1)
    nt = n_x + n_u if n_total is None else n_total
    mu, du = _parity_mask(Gu), Gu.sum(1)
    my, dy = _parity_mask(By), By.sum(1)
    iy_out, iu_out = [], []
    cache = {}
    for i in range(len(By)):
        key = (int(my[i]), int(dy[i]))
        if key not in cache:
            ok = du <= nt - dy[i]
            if symmetry == "global":
                ok &= (du + dy[i]) % 2 == 0
            elif symmetry == "reflections":
                ok &= mu == my[i]
            cache[key] = np.flatnonzero(ok)
        sel = cache[key]
        iy_out.append(np.full(sel.size, i, dtype=np.int64))
        iu_out.append(sel)
    return By, Gu, np.concatenate(iy_out), np.concatenate(iu_out)


def galerkin_basis_size(d, n_x, n_u, symmetry="global", n_total=None):
    """Number of basis functions of :func:`galerkin_basis`."""
    return int(galerkin_basis(d, n_x, n_u, symmetry, n_total)[2].size)


def velocity_monomial_count(d, n_u):
    """Number ``n_u'`` of velocity monomials (degree ``<= n_u``, ``γ_d <= 1``): ``C(n_u+d-1, d-1) + C(n_u+d-2, d-1)``."""
    return math.comb(n_u + d - 1, d - 1) + (math.comb(n_u + d - 2, d - 1) if n_u >= 1 else 0)
