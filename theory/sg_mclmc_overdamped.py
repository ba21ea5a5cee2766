"""Overdamped (strong-noise) limit of SG-MCLMC in any d: polynomial Galerkin solution of the cell problem.

Statement
---------
Homogenisation (see :mod:`smile_ref.theory.sg_mclmc_bias`, item 2): ``dx = A g dt + sqrt(2 D) dW`` with
``L0 Φ = -u``, ``D = sym E_rho0[u Φ^T]``, ``A = E_rho0[∇_S Φ]^T/(d-1)`` (unit-normalised
Stratonovich noise generator ``L0``, noise-only velocity law
``rho0 ∝ (u^TΣ^{-1}u)^{-(d-1)/2}``).  In the eigenbasis ``Σ = diag(lam)`` the reflection
symmetries ``u_j -> -u_j`` make ``Φ_i`` odd in ``u_i`` and even in the others, so ``A`` and
``D`` are diagonal there.

Method
------
Trial = test space for ``Φ_i``: homogeneous monomials ``u^α`` of degree ``2m+1`` with
``α_i`` odd and ``α_j`` even (linearly independent on the sphere; ``m = 0`` is the
linear closure ``Φ ≈ b u_i``).  Exact action of ``L0`` on monomials (Itô form of the
Stratonovich generator, ``Λ = diag(lam)``, ``n = |α|``)::

    L0 u^α = (1/2) Σ_k lam_k α_k(α_k-1) u^{α-2e_k}
             - [ (n tr Λ + Σ_k lam_k α_k)/2 + (n-1) Σ_k lam_k α_k ] u^α
             + (n (n+1)/2) (u^TΛu) u^α,

and exact moments under ``rho0`` (``v ~ N(0, Λ)``, ``b = |α| + 1``)::

    E_rho0[u^α] = [1/Γ(b/2)] ∫_0^∞ s^{b/2-1} Z(s) Π_k (α_k-1)!! mu_k(s)^{α_k/2} ds / E[|v|^{-1}],

``Z = Π (1 + 2 s lam)^{-1/2}``, ``mu = lam/(1 + 2 s lam)``.  ``(∇_S Φ_i)_i = ∂_i Φ_i - u_i u.∇Φ_i``.
Convergence in ``m`` is checked against the exact d = 2 solution in the tests.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.integrate import quad

from .sg_mclmc import _check_cov

__all__ = ["overdamped_coefficients_galerkin", "effective_temperatures"]


def _dfact(k):
    return math.prod(range(k - 1, 0, -2)) if k > 1 else 1


def _monomials(d, i, deg):
    """Exponent tuples of total degree ``deg`` with α_i odd and the others even."""
    out = []

    def rec(k, left, cur):
        if k == d:
            if left == 0:
                out.append(tuple(cur))
            return
        start = 1 if k == i else 0
        for a in range(start, left + 1, 2):
            rec(k + 1, left - a, cur + [a])

    rec(0, deg, [])
    return out


def _padd(p, q, c=1.0):
    for k, v in q.items():
        p[k] = p.get(k, 0.0) + c * v


def _L0(alpha, lam):
    """``L0 u^α`` as a polynomial dict."""
    d, n = len(alpha), sum(alpha)
    la = sum(lam[k] * alpha[k] for k in range(d))
    out = {}
    for k in range(d):
        if alpha[k] >= 2:
            b = list(alpha)
            b[k] -= 2
            _padd(out, {tuple(b): 0.5 * lam[k] * alpha[k] * (alpha[k] - 1)})
    _padd(out, {alpha: -(0.5 * (n * sum(lam) + la) + (n - 1) * la)})
    for k in range(d):
        b = list(alpha)
        b[k] += 2
        _padd(out, {tuple(b): 0.5 * n * (n + 1) * lam[k]})
    return out


def overdamped_coefficients_galerkin(noise_cov, degree: int = 1):
    """Diagonal ``(A, D)`` of the overdamped limit in the original axes, via Galerkin of order ``m = degree``.

    Parameters
    ----------
    noise_cov : (d, d) positive definite.
    degree : int >= 0, ``m`` (basis degree ``2m + 1``); ``0`` = linear closure.

    Returns ``(A, D)`` (d, d) for unit-normalised noise (only ``A^{-1} D`` and ratios matter).
    """
    S = _check_cov(noise_cov)
    if isinstance(degree, bool) or not isinstance(degree, int) or not 0 <= degree <= 3:
        raise ValueError(f"degree must be an int in [0, 3], got {degree!r}")
    lam_all, V = np.linalg.eigh(S)
    if lam_all[0] <= 0:
        raise ValueError("noise_cov must be positive definite")
    lam = tuple(float(v) for v in lam_all / lam_all.mean())
    d = len(lam)
    lam_np = np.array(lam)

    def Z(s):
        return float(np.prod((1.0 + 2.0 * s * lam_np) ** -0.5))

    def integ(f, p):
        return quad(lambda s: s ** (p - 1) * f(s), 0, np.inf, limit=400, epsabs=0, epsrel=1e-11)[0]

    E1 = integ(Z, 0.5) / math.gamma(0.5)

    @lru_cache(maxsize=None)
    def mom(alpha):
        if any(a % 2 for a in alpha):
            return 0.0
        b = sum(alpha) + 1
        consts = math.prod(_dfact(a) for a in alpha)
        f = lambda s: Z(s) * float(np.prod((lam_np / (1 + 2 * s * lam_np)) ** (np.array(alpha) / 2)))  # noqa: E731
        return consts * integ(f, b / 2) / math.gamma(b / 2) / E1

    def expect(p, q):
        tot = 0.0
        for a, ca in p.items():
            for b, cb in q.items():
                tot += ca * cb * mom(tuple(x + y for x, y in zip(a, b)))
        return tot

    Ad, Dd = np.zeros(d), np.zeros(d)
    for i in range(d):
        basis = _monomials(d, i, 2 * degree + 1)
        ui = {tuple(1 if k == i else 0 for k in range(d)): 1.0}
        Lb = [_L0(a, lam) for a in basis]
        M = np.array([[expect({b: 1.0}, Lb[j]) for j in range(len(basis))] for b in basis])
        r = np.array([-expect({b: 1.0}, ui) for b in basis])
        c = np.linalg.solve(M, r)
        phi = {}
        for cj, a in zip(c, basis):
            _padd(phi, {a: cj})
        Dd[i] = expect(ui, phi)
        grad = {}  # (∇_S Φ)_i = ∂_i Φ - u_i (u.∇Φ) = ∂_i Φ - u_i |α| Φ for homogeneous Φ
        for a, ca in phi.items():
            if a[i] >= 1:
                b = list(a)
                b[i] -= 1
                _padd(grad, {tuple(b): ca * a[i]})
            b = list(a)
            b[i] += 1
            _padd(grad, {tuple(b): -ca * sum(a)})
        Ad[i] = expect(grad, {tuple(0 for _ in range(d)): 1.0}) / (d - 1)
    return (V * Ad) @ V.T, (V * Dd) @ V.T


def effective_temperatures(noise_cov, degree: int = 1):
    """``D_ii / A_ii`` in the eigenbasis of Σ (ascending eigenvalues); all 1 iff unbiased."""
    S = _check_cov(noise_cov)
    lam, V = np.linalg.eigh(S)
    A, D = overdamped_coefficients_galerkin(S, degree)
    return np.diag(V.T @ D @ V) / np.diag(V.T @ A @ V)
