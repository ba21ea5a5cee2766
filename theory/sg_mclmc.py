"""Continuous-time model of SG-MCLMC (SMILE): drift, diffusion, calculus, and the isotropic case.

Model (reconstruction; the paper's theorem text was not available, see
docs/derivations/sg-mclmc-continuous-time.md).  Target ``p(x) ∝ exp(-L(x))``,
score ``g = ∇ log p``, velocity ``u ∈ S^{d-1}``, ``P(u) = I - u u^T``.  Every
velocity sub-step of length ``tau = eps * coef`` is the exact ESH flow of
``du/dt = P(u) ĝ/(d-1)`` with the noisy score ``ĝ = g(x) + xi`` held fixed,
``xi ~ (0, Sigma)``, one fresh ``xi`` per step shared by the step's gradients.

Results derived here
--------------------
1. Second-order expansion of one ESH sub-step with ``w = tau ĝ/(d-1)``
   (``series_residual`` checks it with SymPy, the closed form coming from
   :mod:`smile_ref.theory.esh`)::

       u' = u + P w - (u.w) P w / 2 - |P w|^2 u / 2 + O(|w|^3).

2. Per step the noise weights sum to one (``b1 + (1 - 2 b1) + b1``) and the
   three sub-steps using the same ``xi`` are consecutive in ``u`` (position
   sub-steps do not touch ``u``), so to leading order the noise acts as one
   ESH flow of length ``eps``.  Averaging item 1 over ``xi``, per unit time
   (``kappa2 = eps/(d-1)^2``)::

       drift     b(u) = P g/(d-1) - (kappa2/2) [tr(P Σ P) u + P Σ u]
       diffusion        kappa2 P Σ P

   The tangential term ``-(kappa2/2) P Σ u`` is exactly the Itô correction
   of the *Stratonovich* SDE ``du = P g/(d-1) dt + sqrt(kappa2) P(u) ∘ Σ^{1/2} dW``
   (Wong–Zakai: piecewise-constant noise).  The Itô SDE with only the normal
   term ``-(kappa2/2) tr(PΣP) u`` also keeps ``|u| = 1`` but is a different
   process when Σ is anisotropic (``strat_minus_ito_drift``).

3. Generator (Itô form, ``A : ∇² = Σ_ij A_ij ∂_i ∂_j`` in the ambient ``u``
   coordinates)::

       L f = u.∇_x f + b(u).∇_u f + (kappa2/2) (P Σ P) : ∇_u² f,

   Fokker–Planck operator ``L*ρ = -u.∇_x ρ - div_S(ρ P g)/(d-1) + (kappa2/2) Σ_k V_k^† V_k^† ρ``
   with ``V_k = P(u) s_k`` (``Σ = Σ_k s_k s_k^T``) and
   ``V^† ρ = -V.∇_S ρ + (d-1)(u.s) ρ`` (because ``div_S P s = -(d-1) u.s``).

4. Isotropic ``Σ = s2 I``: the noise generator is ``(kappa2 s2 / 2) Δ_S``.
   MCLMC's partial refresh ``u <- normalise(u + nu z)``,
   ``nu^2 = (exp(2 tau/L) - 1)/d``, has per unit time the generator
   ``(nu^2/(2 tau)) Δ_S -> (1/(d L)) Δ_S`` (tangential kick covariance
   ``nu^2 P``, normal drift ``-nu^2 (d-1) u/2``).  Matching gives
   ``L_eff = 2 (d-1)^2 / (d eps s2)`` (``refresh="blackjax"``); matching the
   velocity decorrelation time ``E[u(t).u(0)] = exp(-t/L)`` instead gives
   ``2 (d-1)/(eps s2)`` (``refresh="decorrelation"``, the formula of the
   project notes); they differ by the factor ``(d-1)/d``.
   The noise generator ``(kappa2/2) Σ_ij Σ_ij V_i V_j`` (``V_i = P e_i``, Stratonovich) is linear in ``Σ``
   and independent noises add their generators, so SG-MCLMC with noise ``Σ`` *and* partial refresh of
   length ``L`` is, in continuous time, SG-MCLMC without refresh and noise ``Σ + s2(L) I``,
   ``s2(L) = 2 (d-1)^2/(d eps L)`` (:func:`refresh_noise_variance`, the inverse of ``L_eff``).
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

__all__ = [
    "B1_MCLACHLAN",
    "esh_update_np",
    "second_order_map_np",
    "series_residual",
    "noise_drift_residual",
    "noise_kappa2",
    "predicted_noise_drift",
    "predicted_noise_diffusion",
    "strat_minus_ito_drift",
    "refresh_generator_coefficient",
    "refresh_coefficient_residual",
    "L_eff",
    "refresh_noise_variance",
    "decorrelation_rate",
]

#: McLachlan minimal-norm coefficient b1 (BlackJAX ``isokinetic_mclachlan``).
B1_MCLACHLAN = 0.1931833275037836


# ----------------------------------------------------------------------------- numeric reference
def esh_update_np(u, g, tau, d=None):
    """Exact ESH velocity sub-step (zeta form), NumPy reference, batched over rows.

    ``e = g/|g|``, ``delta = tau |g|/(d-1)``, ``zeta = exp(-delta)``, ``c = u.e``,
    ``u' = normalise(e (1-zeta)(1+zeta+c(1-zeta)) + 2 zeta u)``.

    Parameters
    ----------
    u, g : ndarray (..., d)
    tau : float
    d : int, optional (defaults to ``u.shape[-1]``)
    """
    u = np.asarray(u, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    d = u.shape[-1] if d is None else d
    gn = np.linalg.norm(g, axis=-1, keepdims=True)
    e = g / gn
    zeta = np.exp(-tau * gn / (d - 1))
    c = np.sum(u * e, axis=-1, keepdims=True)
    v = e * (1.0 - zeta) * (1.0 + zeta + c * (1.0 - zeta)) + 2.0 * zeta * u
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def second_order_map_np(u, w):
    """``u + P w - (u.w) P w/2 - |P w|^2 u/2`` (item 1), rows of ``u`` and ``w = tau ĝ/(d-1)``."""
    a = np.sum(u * w, axis=-1, keepdims=True)
    pw = w - a * u
    return u + pw - 0.5 * a * pw - 0.5 * np.sum(pw * pw, axis=-1, keepdims=True) * u


# ----------------------------------------------------------------------------- SymPy derivations
def series_residual(order: int = 3) -> tuple[sp.Expr, sp.Expr]:
    """Residuals (coefficients of ``e`` and ``u``) of item 1 against the exact flow, to ``O(delta^order)``.

    With ``w = delta e`` (``|e| = 1``, ``c = u.e``): ``P w = delta (e - c u)``,
    ``u.w = c delta``, ``|P w|^2 = delta^2 (1 - c^2)``, and the exact flow is
    ``alpha e + beta u`` (:func:`smile_ref.theory.esh.velocity_coefficients`).  Both residuals
    must be 0 after truncating the series at ``delta^order`` (order <= 3).
    """
    from . import esh

    x = sp.Symbol("x", positive=True)
    c = esh.c
    alpha, beta = esh.velocity_coefficients(x)
    approx_e = x - c * x**2 / 2
    approx_u = 1 - c * x - (c * x**2 / 2) * (-c) - x**2 * (1 - c**2) / 2
    r_e = sp.series(alpha - approx_e, x, 0, order).removeO()
    r_u = sp.series(beta - approx_u, x, 0, order).removeO()
    return sp.simplify(r_e), sp.simplify(r_u)


def _sym_vec(name, d):
    return sp.Matrix(sp.symbols(f"{name}1:{d + 1}", real=True))


def noise_drift_residual(d: int = 3) -> sp.Matrix:
    """SymPy check of item 2: ``E_xi[second-order part] + (tau^2/2)[tr(PΣP)u + PΣu]/(d-1)^2``.

    ``xi`` is symbolic with ``E[xi_i xi_j] = Sigma_ij`` (symmetric symbols);
    the expectation is the linear substitution of the quadratic monomials.
    Returns the residual vector with ``|u|^2 = 1`` imposed (must be zero).
    """
    u = _sym_vec("u", d)
    xi = _sym_vec("xi", d)
    tau = sp.Symbol("tau", positive=True)
    S = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"S{min(i, j) + 1}{max(i, j) + 1}", real=True))
    P = sp.eye(d) - u * u.T
    w = tau * xi / (d - 1)
    a = (u.T * w)[0]
    pw = P * w
    quad = -a * pw / 2 - (pw.T * pw)[0] * u / 2
    expect = sp.zeros(d, 1)
    for k in range(d):
        poly = sp.Poly(sp.expand(quad[k]), *xi)
        val = 0
        for monom, coeff in poly.terms():
            idx = [i for i, m in enumerate(monom) for _ in range(m)]
            assert len(idx) == 2
            val += coeff * S[idx[0], idx[1]]
        expect[k] = val
    pred = -(tau**2 / (2 * (d - 1) ** 2)) * ((P * S * P).trace() * u + P * S * u)
    res = sp.expand(expect - pred)
    # impose |u| = 1 by eliminating u_d^2
    ud = u[d - 1]
    rest = 1 - sum(u[i] ** 2 for i in range(d - 1))
    return sp.simplify(res.subs(ud**2, rest).applyfunc(lambda e: sp.expand(e).subs(ud**2, rest)))


# ----------------------------------------------------------------------------- numeric predictions
def _check_cov(Sigma, name="noise_cov"):
    S = np.asarray(Sigma, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] < 2:
        raise ValueError(f"{name} must be a square (d, d) matrix with d >= 2, got shape {S.shape}")
    if not np.all(np.isfinite(S)) or not np.allclose(S, S.T, rtol=1e-12, atol=1e-12 * np.max(np.abs(S))):
        raise ValueError(f"{name} must be finite and symmetric")
    if np.linalg.eigvalsh(S)[0] < 0:
        raise ValueError(f"{name} must be positive semi-definite")
    return S


def _check_pos(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite float, got {v!r}")
    return float(v)


def noise_kappa2(eps: float, d: int) -> float:
    """``kappa2 = eps/(d-1)^2``: the diffusion matrix per unit time is ``kappa2 * P Σ P``."""
    eps = _check_pos(eps, "eps")
    if isinstance(d, bool) or not isinstance(d, int) or d < 2:
        raise ValueError(f"d must be an int >= 2, got {d!r}")
    return eps / (d - 1) ** 2


def predicted_noise_drift(u, noise_cov, eps: float, calculus: str = "stratonovich"):
    """Mean drift of ``u`` per unit time caused by the gradient noise (item 2).

    ``-(kappa2/2)[tr(PΣP) u + PΣu]`` for ``calculus="stratonovich"`` (the limit
    of the discrete map) or ``-(kappa2/2) tr(PΣP) u`` for ``"ito"``.

    Parameters
    ----------
    u : ndarray (..., d), unit rows
    noise_cov : ndarray (d, d)
    eps : float
    """
    S = _check_cov(noise_cov)
    u = np.asarray(u, dtype=np.float64)
    d = S.shape[0]
    if u.shape[-1] != d:
        raise ValueError(f"u must have last dimension d={d}, got shape {u.shape}")
    if calculus not in ("stratonovich", "ito"):
        raise ValueError(f"calculus must be 'stratonovich' or 'ito', got {calculus!r}")
    k2 = noise_kappa2(eps, d)
    su = u @ S
    usu = np.sum(u * su, axis=-1, keepdims=True)
    tr_psp = np.trace(S) - usu
    out = -(k2 / 2) * tr_psp * u
    if calculus == "stratonovich":
        out = out - (k2 / 2) * (su - usu * u)
    return out


def predicted_noise_diffusion(u, noise_cov, eps: float):
    """Diffusion matrix per unit time ``kappa2 P(u) Σ P(u)`` (shape ``(..., d, d)``)."""
    S = _check_cov(noise_cov)
    u = np.asarray(u, dtype=np.float64)
    d = S.shape[0]
    P = np.eye(d) - u[..., :, None] * u[..., None, :]
    return noise_kappa2(eps, d) * P @ S @ P


def strat_minus_ito_drift(u, noise_cov, eps: float):
    """``-(kappa2/2) P(u) Σ u``: zero for all ``u`` iff Σ is isotropic."""
    return predicted_noise_drift(u, noise_cov, eps, "stratonovich") - predicted_noise_drift(
        u, noise_cov, eps, "ito"
    )


# ----------------------------------------------------------------------------- isotropic case
def refresh_generator_coefficient() -> sp.Expr:
    """Leading-order ``lim_{tau->0} nu^2/tau`` for ``nu^2 = (exp(2 tau/L) - 1)/d`` (= ``2/(d L)``).

    The refresh kick ``w = nu z`` has ``E[P w (P w)^T] = nu^2 P`` and, by item 1,
    ``E[Δu] = -nu^2 (d-1) u/2``: Brownian motion on the sphere with generator
    ``(nu^2/(2 tau)) Δ_S`` per unit time.
    """
    tau, L, d = sp.symbols("tau L d", positive=True)
    nu2 = (sp.exp(2 * tau / L) - 1) / d
    return sp.simplify(sp.limit(nu2 / tau, tau, 0))


def refresh_coefficient_residual() -> sp.Expr:
    """``eta2_SG - eta2_refresh`` at ``L = L_eff`` (``eta2_SG = eps s2/(d-1)^2``); must be 0."""
    eps, s2, d, L = sp.symbols("eps s2 d L", positive=True)
    eta_ref = refresh_generator_coefficient().subs(sp.Symbol("L", positive=True), L)
    L_sym = 2 * (d - 1) ** 2 / (d * eps * s2)
    return sp.simplify(eps * s2 / (d - 1) ** 2 - eta_ref.subs(L, L_sym))


def L_eff(eps: float, s2: float, d: int, refresh: str = "blackjax") -> float:
    """Momentum-refresh length equivalent to isotropic gradient noise ``Σ = s2 I`` (item 4 of the module doc).

    ``refresh="blackjax"``: ``2 (d-1)^2/(d eps s2)``, the ``L`` at which BlackJAX's
    partial refresh ``nu^2 = (exp(2 tau/L)-1)/d`` has the same generator.
    ``refresh="decorrelation"``: ``2 (d-1)/(eps s2)``, the ``L`` with
    ``E[u(t).u(0)] = exp(-t/L)`` (equal to the former only as ``d -> inf``).
    """
    eps = _check_pos(eps, "eps")
    s2 = _check_pos(s2, "s2")
    noise_kappa2(eps, d)
    if refresh == "blackjax":
        return 2.0 * (d - 1) ** 2 / (d * eps * s2)
    if refresh == "decorrelation":
        return 2.0 * (d - 1) / (eps * s2)
    raise ValueError(f"refresh must be 'blackjax' or 'decorrelation', got {refresh!r}")


def refresh_noise_variance(eps: float, L: float, d: int) -> float:
    """Isotropic noise variance ``s2`` with the generator of partial refresh at length ``L``: ``2 (d-1)^2/(d eps L)``.

    The inverse of :func:`L_eff` (``refresh="blackjax"``); ``L = inf`` (no refresh) gives 0.  Item 4 of the module
    doc: with anisotropic noise ``Σ`` the refreshed sampler has the continuous-time law of noise ``Σ + s2 I``.

    Examples
    --------
    >>> refresh_noise_variance(0.02, 2.0, 3)
    66.66666666666667
    """
    eps = _check_pos(eps, "eps")
    if not (isinstance(L, (int, float)) and not isinstance(L, bool) and L > 0):
        raise ValueError(f"L must be a positive float (inf for no refresh), got {L!r}")
    noise_kappa2(eps, d)
    return 0.0 if L == math.inf else 2.0 * (d - 1) ** 2 / (d * eps * L)


def decorrelation_rate(eps: float, s2: float, d: int) -> float:
    """Rate ``lambda`` of ``E[u(t).u(0)] = exp(-lambda t)`` under isotropic noise: ``eps s2/(2(d-1))``."""
    return noise_kappa2(eps, d) * _check_pos(s2, "s2") * (d - 1) / 2.0
