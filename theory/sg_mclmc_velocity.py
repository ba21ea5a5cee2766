"""Invariant velocity law of the noise-only SG-MCLMC dynamics (anisotropic gradient noise).

Statement
---------
Noise-only dynamics on ``S^{d-1}`` (``g = 0``), diffusion ``kappa2 P Σ P``
(``kappa2 = eps/(d-1)^2``, see :mod:`smile_ref.theory.sg_mclmc`):

* Stratonovich (= limit of the discrete SG-MCLMC map)::

      rho_S(u) ∝ (u^T Σ^{-1} u)^{-(d-1)/2}

* Itô with only the normal drift ``-(kappa2/2) tr(PΣP) u``::

      rho_I(u) ∝ (u^T Σ^{-1} u)^{-d/2}      (angular central Gaussian, ACG(Σ))

  For d = 2 with ``t = (-sin θ, cos θ)`` and ``D(θ) = t^T Σ t = det(Σ) u^T Σ^{-1} u``
  these are ``D^{-1/2}`` (Stratonovich) and ``1/D`` (Itô).

* Representation used for moments: with ``v ~ N(0, Σ)``,
  ``E_rho[f(u)] = E[|v|^{-a} f(v/|v|)] / E[|v|^{-a}]`` with ``a = 1``
  (Stratonovich) or ``a = 0`` (Itô): polar coordinates give the weight
  ``∫ r^{d-1-a} exp(-r^2 q/2) dr ∝ q^{-(d-a)/2}``.

* The uniform law is stationary iff Σ is isotropic:
  ``L*_S 1 = (kappa2/2)(d-1)(d u^TΣu - tr Σ)``, ``L*_I 1 = (kappa2/2) d (d u^TΣu - tr Σ)``.
  With a non-constant score, ``p(x) h(u)`` is stationary for the full dynamics
  only if ``∇_S h = 0`` (the deterministic part leaves ``-(P g).∇_S h/(d-1)``),
  so for anisotropic Σ no product law ``p(x) × h(u)`` is stationary: the
  x-marginal is biased (:mod:`smile_ref.theory.sg_mclmc_bias`).

Method: ``stationarity_residual`` evaluates ``L*rho`` exactly (rational
arithmetic) at rational points of the sphere for a rational Σ, with
``L*_S rho = (1/2) Σ_k V_k^† V_k^† rho``, ``V_k = P s_k``,
``V^† f = -V.∇f + (d-1)(u.s) f``; ``L*_I = L*_S - div_S(rho P Σ u/2)``,
``div_S(P Σ u) = tr Σ - d u^TΣu``.  ``circle_residual`` is an independent
check in the angle coordinate for d = 2.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp
from scipy.integrate import quad

from .sg_mclmc import _check_cov

__all__ = [
    "velocity_law_exponent",
    "velocity_density",
    "stationarity_residual",
    "uniform_defect_residual",
    "circle_residual",
    "velocity_second_moments",
]

_A = {"stratonovich": 1, "ito": 0}


def _check_calculus(calculus):
    if calculus not in _A:
        raise ValueError(f"calculus must be 'stratonovich' or 'ito', got {calculus!r}")
    return _A[calculus]


def velocity_law_exponent(d: int, calculus: str = "stratonovich"):
    """``beta`` in ``rho ∝ (u^TΣ^{-1}u)^{-beta}``: ``(d-1)/2`` (Stratonovich) or ``d/2`` (Itô)."""
    a = _check_calculus(calculus)
    if isinstance(d, bool) or not isinstance(d, int) or d < 2:
        raise ValueError(f"d must be an int >= 2, got {d!r}")
    return sp.Rational(d - a, 2)


def velocity_density(u, noise_cov, calculus: str = "stratonovich"):
    """Unnormalised density of the noise-only velocity law w.r.t. the uniform law, rows of ``u``."""
    S = _check_cov(noise_cov)
    u = np.asarray(u, dtype=np.float64)
    beta = float(velocity_law_exponent(S.shape[0], calculus))
    q = np.sum(u * np.linalg.solve(S, u.T).T, axis=-1)
    return q ** (-beta)


def _noise_adjoint(rho, u, S_cols, calculus):
    """``L*_noise rho`` (unit kappa2) for ``Σ = S S^T``, ambient symbolic ``u``."""
    d = len(u)
    P = sp.eye(d) - u * u.T
    out = 0
    for k in range(S_cols.shape[1]):
        s = S_cols[:, k]
        V = P * s
        us = (u.T * s)[0]

        def vdag(f):
            grad = sp.Matrix([sp.diff(f, ui) for ui in u])
            return -(V.T * grad)[0] + (d - 1) * us * f

        out += vdag(vdag(rho)) / 2
    if calculus == "ito":
        Sig = S_cols * S_cols.T
        W = P * Sig * u / 2
        grad = sp.Matrix([sp.diff(rho, ui) for ui in u])
        div_w = (Sig.trace() - d * (u.T * Sig * u)[0]) / 2
        out -= (W.T * grad)[0] + rho * div_w
    return out


def stationarity_residual(S_cols, point, calculus: str = "stratonovich", beta=None):
    """Exact ``L*_noise rho`` at a rational unit vector ``point`` for ``rho = (u^TΣ^{-1}u)^{-beta}``.

    Parameters
    ----------
    S_cols : sympy.Matrix (d, m), rational; ``Σ = S S^T`` (full rank)
    point : sequence of d rationals with sum of squares 1
    beta : default :func:`velocity_law_exponent`
    """
    _check_calculus(calculus)
    d = S_cols.shape[0]
    pt = [sp.nsimplify(p) for p in point]
    if sum(p**2 for p in pt) != 1:
        raise ValueError("point must be a rational unit vector")
    beta = velocity_law_exponent(d, calculus) if beta is None else sp.nsimplify(beta)
    u = sp.Matrix(sp.symbols(f"u1:{d + 1}", real=True))
    Sig = S_cols * S_cols.T
    rho = ((u.T * Sig.inv() * u)[0]) ** (-beta)
    val = _noise_adjoint(rho, u, S_cols, calculus)
    return sp.simplify(val.subs(dict(zip(u, pt))))


def uniform_defect_residual(S_cols, point, calculus: str = "stratonovich"):
    """``L*_noise 1`` minus the closed form ``c_d (d u^TΣu - tr Σ)/2``, ``c_d = d-1`` (S) or ``d`` (I)."""
    d = S_cols.shape[0]
    u = sp.Matrix(sp.symbols(f"u1:{d + 1}", real=True))
    Sig = S_cols * S_cols.T
    val = _noise_adjoint(sp.Integer(1), u, S_cols, calculus)
    cd = d - 1 if calculus == "stratonovich" else d
    closed = cd * (d * (u.T * Sig * u)[0] - Sig.trace()) / 2
    pt = [sp.nsimplify(p) for p in point]
    return sp.simplify((val - closed).subs(dict(zip(u, pt))))


def circle_residual(calculus: str = "stratonovich"):
    """d = 2 in the angle: stationary FP flux check of ``rho = D^{-1/2}`` (S) / ``1/D`` (I); returns 0.

    Stratonovich ``dθ = sum_k (t.s_k) ∘ dW_k``: generator ``(1/2)(D f'' + D' f'/2)``;
    Itô (normal drift only, no θ drift by Itô's formula): generator ``(1/2) D f''``.
    ``D = a + b cos 2θ + c sin 2θ`` (general positive trigonometric quadratic).
    """
    a = _check_calculus(calculus)
    th, A, B, C = sp.symbols("theta A B C", real=True)
    D = A + B * sp.cos(2 * th) + C * sp.sin(2 * th)
    rho = D ** sp.Rational(-1, 2) if a == 1 else 1 / D
    if a == 1:
        adj = sp.diff(D * sp.diff(rho, th) + sp.diff(D, th) * rho / 2, th) / 2
    else:
        adj = sp.diff(D * rho, th, 2) / 2
    return sp.simplify(adj)


def velocity_second_moments(noise_cov, calculus: str = "stratonovich"):
    """``E_rho[u u^T]`` of the noise-only velocity law (1-D quadratures in the eigenbasis of Σ).

    ``E[|v|^{-b} v_i^2] = (1/Γ(b/2)) ∫_0^∞ s^{b/2-1} Z(s) mu_i(s) ds``,
    ``Z(s) = prod_j (1 + 2 s lam_j)^{-1/2}``, ``mu_i = lam_i/(1 + 2 s lam_i)``,
    with ``b = a + 2`` and normaliser ``E[|v|^{-a}]``.
    """
    a = _check_calculus(calculus)
    S = _check_cov(noise_cov)
    lam, V = np.linalg.eigh(S)
    if lam[0] <= 0:
        raise ValueError("noise_cov must be positive definite")
    lam = lam / lam.mean()

    def Z(s):
        return float(np.prod((1.0 + 2.0 * s * lam) ** -0.5))

    def integ(f, p):
        return quad(lambda s: s ** (p - 1) * f(s), 0, np.inf, limit=400, epsabs=0, epsrel=1e-11)[0]

    norm = 1.0 if a == 0 else integ(Z, a / 2) / math.gamma(a / 2)
    b = a + 2
    c = np.array(
        [integ(lambda s, i=i: Z(s) * lam[i] / (1 + 2 * s * lam[i]), b / 2) / math.gamma(b / 2) for i in range(len(lam))]
    )
    c = c / norm
    return (V * c) @ V.T
