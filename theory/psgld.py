"""pSGLD with a state-dependent preconditioner: the bias of dropping the divergence term Gamma (1-D).

Continuous time (Li et al. AAAI 2016, Sec. 3; Ma, Chen & Fox NeurIPS 2015):
``d theta = [G(theta) (-U'(theta)) + Gamma(theta)] dt + sqrt(2 G(theta)) dW`` with
``Gamma = G'`` leaves ``e^{-U}`` invariant.  Without ``Gamma`` the stationary
Fokker-Planck equation ``0 = d/dtheta [G U' p + (G p)']`` with zero flux gives
``(G p)' = -U' (G p)``, i.e.

.. math:: p(\\theta) \\propto e^{-U(\\theta)} / G(\\theta)

(:func:`density_without_gamma` derives it with SymPy's ODE solver).  For
``U = theta^2/2``:

* ``G = 1/(1 + theta^2)``: ``p ∝ (1 + theta^2) e^{-theta^2/2}``, ``E theta^2 = 2``
  (``1`` with ``Gamma``);
* RMSprop-like ``G = 1/(lam + |theta|)``:
  ``E theta^2 = (lam sqrt(2 pi) + 4)/(lam sqrt(2 pi) + 2)``.

Discrete time: the chain ``theta' ~ N(theta + h [G (-U') + c Gamma], 2 h G)``
(``c`` = 1 or 0) has an ``O(h)`` bias on top.  :func:`discrete_second_moment`
computes its exact stationary ``E theta^2`` numerically, independently of the
sampler code: the Gaussian transition density is tabulated on a fine grid
(rows renormalised), and the stationary vector is the null vector of
``K^T - I``.  :func:`discrete_second_moment` at ``h -> 0`` converges to the
continuous values (checked in the tests).
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

__all__ = [
    "theta", "density_without_gamma", "second_moment", "second_moment_examples",
    "second_moment_rmsprop_like", "discrete_second_moment",
]

theta = sp.Symbol("theta", real=True)


def density_without_gamma(U: sp.Expr, G: sp.Expr) -> sp.Expr:
    """Zero-flux stationary density (unnormalised) of ``d theta = -G U' dt + sqrt(2G) dW``: solves ``(G p)' = -U' G p``."""
    f = sp.Function("f")  # f = G p
    sol = sp.dsolve(sp.Eq(f(theta).diff(theta), -sp.diff(U, theta) * f(theta)), f(theta))
    return sp.simplify(sol.rhs.subs(sp.Symbol("C1"), 1) / G)


def second_moment(p: sp.Expr) -> sp.Expr:
    """``E theta^2`` under the unnormalised density ``p`` on the real line."""
    Z = sp.integrate(p, (theta, -sp.oo, sp.oo))
    return sp.simplify(sp.integrate(theta**2 * p, (theta, -sp.oo, sp.oo)) / Z)


def second_moment_examples() -> dict:
    """``E theta^2`` for ``U = theta^2/2``: with Gamma (target) and without, for ``G = 1/(1+theta^2)``."""
    U = theta**2 / 2
    G = 1 / (1 + theta**2)
    p_without = density_without_gamma(U, G)
    return {
        "target": second_moment(sp.exp(-U)),
        "density_without_gamma": p_without,
        "without_gamma": second_moment(p_without),
        "divergence": sp.diff(G, theta),
    }


def second_moment_rmsprop_like() -> sp.Expr:
    """``E theta^2`` without Gamma for ``G = 1/(lam + |theta|)``, ``U = theta^2/2`` (symmetric: integrate on ``theta > 0``)."""
    lam = sp.Symbol("lam", positive=True)
    t = sp.Symbol("t", positive=True)
    p = (lam + t) * sp.exp(-t**2 / 2)
    return sp.simplify(sp.integrate(t**2 * p, (t, 0, sp.oo)) / sp.integrate(p, (t, 0, sp.oo)))


def discrete_second_moment(grad_U, G, dG, h: float, with_gamma: bool, L: float = 8.0, m: int = 1601) -> float:
    """Exact stationary ``E theta^2`` of the 1-D discrete pSGLD chain (numerical, grid quadrature).

    ``theta' ~ N(theta + h (-G U' + c G'), 2 h G)`` with ``c = with_gamma``;
    ``grad_U``, ``G``, ``dG`` are NumPy ufunc-like callables.  Grid ``[-L, L]``
    with ``m`` nodes; the transition density is evaluated at the nodes (times
    the spacing) and each row renormalised (mass beyond ``L`` is negligible
    for the examples used).  Requires the transition standard deviation to be
    several grid spacings wide in the bulk of the law.
    """
    x = np.linspace(-L, L, m)
    dx = x[1] - x[0]
    g = G(x)
    mean = x + h * (-g * grad_U(x) + (dG(x) if with_gamma else 0.0))
    sd = np.sqrt(2 * h * g)
    K = np.exp(-0.5 * ((x[None, :] - mean[:, None]) / sd[:, None]) ** 2) / (sd[:, None] * math.sqrt(2 * math.pi)) * dx
    K /= K.sum(axis=1, keepdims=True)
    A = K.T - np.eye(m)
    A[-1, :] = 1.0  # replace one equation by the normalisation sum(pi) = 1
    rhs = np.zeros(m)
    rhs[-1] = 1.0
    pi = np.linalg.solve(A, rhs)
    return float(np.sum(pi * x**2))
