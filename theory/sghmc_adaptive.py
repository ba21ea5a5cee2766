"""Exact stationary law of adaptive SGHMC (``"sghmc_adaptive"``) with a frozen preconditioner on a Gaussian.

After warm-up the kernel is, per coordinate with frozen preconditioner ``s > 0``, learning rate
``eta = eps^2`` and friction ``alpha``,
``m' = (1 - alpha) m + eps g_hat + sqrt(w) z``, ``theta' = theta + eps m' / s`` with
``w = max(2 alpha s - eta s^2, 1e-7)``.  In velocity units ``v = eps m / s`` and on the 1-D target
``N(0, 1/a)`` with ``g_hat = -a theta + xi``, ``Var xi = V`` (independent of the state),
``z = (theta, v)`` is the linear AR(1) process

.. math::

    z' = M z + (1, 1)^T e,\\quad
    M = \\begin{pmatrix} 1 - \\eta a / s & 1 - \\alpha \\\\ -\\eta a / s & 1 - \\alpha \\end{pmatrix},\\quad
    \\operatorname{Var} e = q = \\frac{\\eta^2 V}{s^2} + \\frac{\\eta\\,w}{s^2},

and its stationary covariance solves ``S = M S M^T + q 11^T`` (:func:`derive_stationary`).  Where the
noise is not floored (``w = 2 alpha s - eta s^2``, the authors' "balance condition"
``s < 2 alpha / eta``):

* ``a Var theta = (2 - alpha)(2 alpha + (eta/s)(V - s^2)) / (alpha (4 - 2 alpha - a eta / s))``
  (:func:`check_closed_form`), i.e. plain SGHMC (``smile_ref.theory.sghmc``) with learning rate
  ``eta / s`` and ``beta_hat = eta s / 2``;
* with ``s^2 = V`` (the preconditioner equal to the root noise variance):
  ``Var theta = (1/a) / (1 - a eta / (2 s (2 - alpha)))``;
* the warm-up estimate tends to the root second moment of the gradient,
  ``s^2 = E[g_hat^2] = a^2 Var theta + V``; that self-consistent ``s`` solves
  :func:`fixed_point_sd`.  ``s^2 > V`` makes the bias ``(eta/s)(V - s^2) / (2 alpha)`` negative: the
  preconditioner over-corrects the gradient noise by the signal part ``a^2 Var theta`` of the
  gradient's second moment.

Coordinates of a diagonal Gaussian with independent noise are independent processes, each with
its own ``(a, V, s)``.
"""
from __future__ import annotations

import numpy as np
import scipy.optimize
import sympy as sp

__all__ = ["a", "eta", "alpha", "V", "s", "w", "transition", "derive_stationary", "var_theta_expr",
           "check_closed_form", "var_theta", "var_theta_floored", "fixed_point_sd"]

a, eta, alpha, V, s, w = sp.symbols("a eta alpha V s w", positive=True)

FLOOR = 1e-7  # the kernel's floor of the momentum-noise variance w


def transition(noise=None):
    """``(M, q)`` on ``(theta, v)``; ``noise`` is the momentum-noise variance ``w`` (default: unfloored)."""
    w_ = 2 * alpha * s - eta * s**2 if noise is None else noise
    M = sp.Matrix([[1 - eta * a / s, 1 - alpha], [-eta * a / s, 1 - alpha]])
    q = eta**2 * V / s**2 + eta * w_ / s**2
    return M, q


def derive_stationary(noise=None) -> sp.Matrix:
    """Solve ``S = M S M^T + q 11^T`` for the symmetric ``2 x 2`` stationary covariance."""
    M, q = transition(noise)
    s11, s12, s22 = sp.symbols("s11 s12 s22")
    S = sp.Matrix([[s11, s12], [s12, s22]])
    R = S - M * S * M.T - q * sp.ones(2, 2)
    sol = sp.solve([R[0, 0], R[0, 1], R[1, 1]], [s11, s12, s22], dict=True)[0]
    return S.subs(sol).applyfunc(sp.factor)


def var_theta_expr(noise=None) -> sp.Expr:
    """Stationary ``Var theta`` as a SymPy expression (``noise``: ``w``, e.g. the symbol ``w``)."""
    return derive_stationary(noise)[0, 0]


def check_closed_form() -> dict:
    """Differences (all 0) to the closed forms of the module docstring and to ``theory.sghmc`` mapped."""
    from . import sghmc as plain

    vt = var_theta_expr()
    closed = (2 - alpha) * (2 * alpha + (eta / s) * (V - s**2)) / (alpha * (4 - 2 * alpha - a * eta / s)) / a
    mapped = plain.var_theta_expr().subs({plain.beta_hat: eta * s / 2, plain.eta: eta / s, plain.a: a,
                                          plain.alpha: alpha, plain.V: V}, simultaneous=True)
    matched = (1 / a) / (1 - a * eta / (2 * s * (2 - alpha)))
    return {"closed": sp.simplify(vt - closed), "sghmc_mapped": sp.simplify(vt - mapped),
            "matched": sp.simplify(vt.subs(V, s**2) - matched)}


_vt_w = sp.lambdify((a, eta, alpha, V, s, w), var_theta_expr(w), "numpy")


def var_theta_floored(a_, eta_, alpha_, V_, s_, floor=FLOOR):
    """Stationary ``Var theta`` with the kernel's floored noise ``w = max(2 alpha s - eta s^2, floor)``
    (NumPy, broadcasts over ``a_``, ``V_``, ``s_``)."""
    s_ = np.asarray(s_, dtype=float)
    w_ = np.maximum(2 * alpha_ * s_ - eta_ * s_**2, floor)
    return _vt_w(np.asarray(a_, dtype=float), eta_, alpha_, np.asarray(V_, dtype=float), s_, w_)


var_theta = sp.lambdify((a, eta, alpha, V, s), var_theta_expr(), "numpy")


def fixed_point_sd(a_: float, eta_: float, alpha_: float, V_: float) -> float:
    """The ``s`` with ``s^2 = a^2 Var theta(s) + V`` (the long-warm-up limit of the preconditioner, floored noise).

    Examples
    --------
    >>> round(fixed_point_sd(1.0, 0.0025, 0.05, 8.6), 3)
    3.097
    """
    f = lambda x: x**2 - a_**2 * float(var_theta_floored(a_, eta_, alpha_, V_, x)) - V_  # noqa: E731
    lo = np.sqrt(V_)
    hi = np.sqrt(V_ + 10 * a_) + 1.0
    while f(hi) < 0:
        hi *= 2
    return float(scipy.optimize.brentq(f, lo, hi, xtol=1e-14))
