"""Closed-form ESH / isokinetic velocity flow for a fixed gradient (SymPy).

Statement
---------
For ``u`` with ``|u| = 1`` in ``R^d`` (``d >= 2``) and a fixed vector
``g = G e`` (``G = |g| > 0``, ``|e| = 1``), the solution of

    du/dt = P(u) g / (d - 1),       P(u) = I - u u^T,       u(0) = u,

is, with ``delta = G t / (d - 1)`` and ``c = u . e``,

    u(t) = [u + e (sinh delta + c (cosh delta - 1))] / (cosh delta + c sinh delta),

it stays on the unit sphere, it equals the overflow-free "zeta form"
(``zeta = exp(-delta)``)

    u(t) = [e (1 - zeta)(1 + zeta + c (1 - zeta)) + 2 zeta u] / (1 + c + (1 - c) zeta^2),

(the denominator being exactly the norm of the numerator, so
``normalise(numerator)`` is the same thing), and the kinetic change

    dK(t) = (d - 1) log(cosh delta + c sinh delta)
          = (d - 1) [delta - log 2 + log(1 + c + (1 - c) zeta^2)]

satisfies ``d(dK)/dt = u(t) . g`` (kinetic change = work of the force), so
``dK + (-log p)`` is conserved along a linear potential.

Method
------
The flow never leaves the plane spanned by ``e`` and ``u``: write
``u(t) = alpha(t) e + beta(t) u`` (``alpha(0) = 0``, ``beta(0) = 1``).  In the
(non-orthogonal) basis ``(e, u)`` with Gram matrix ``[[1, c], [c, 1]]`` the ODE
becomes the two scalar equations

    alpha' = k (1 - m alpha),   beta' = -k m beta,   m = u(t).e = alpha + c beta,
    k = G / (d - 1),

and ``|u(t)|^2 = alpha^2 + 2 c alpha beta + beta^2``.  Everything below is
checked by ``sympy.simplify`` of residuals to 0, for symbolic ``c`` (any value;
no orthogonality or dimension assumed beyond ``d > 1``).

Used by ``smile_ref.integrators.isokinetic.esh_velocity_update``; checked in
``tests/test_integrators.py::test_theory_*``.
"""
from __future__ import annotations

import sympy as sp

__all__ = [
    "c",
    "t",
    "G",
    "D",
    "delta",
    "velocity_coefficients",
    "zeta_velocity_coefficients",
    "kinetic_change",
    "kinetic_change_zeta",
    "ode_residual",
    "norm_residual",
    "zeta_form_residual",
    "zeta_norm_residual",
    "work_residual",
    "kinetic_zeta_residual",
    "all_residuals",
    "velocity_numeric",
    "esh_reference",
]

c = sp.Symbol("c", real=True)  # u . e
t = sp.Symbol("t", nonnegative=True)  # elapsed time
G = sp.Symbol("G", positive=True)  # |g|
D = sp.Symbol("D", positive=True)  # d - 1
delta = G * t / D


def velocity_coefficients(dl=None):
    """``(alpha, beta)`` with ``u(t) = alpha e + beta u`` (hyperbolic form), as functions of ``delta``."""
    dl = delta if dl is None else dl
    den = sp.cosh(dl) + c * sp.sinh(dl)
    return (sp.sinh(dl) + c * (sp.cosh(dl) - 1)) / den, 1 / den


def zeta_velocity_coefficients(dl=None):
    """``(alpha, beta)`` of the zeta form ``[e (1-z)(1+z+c(1-z)) + 2 z u] / (1 + c + (1-c) z^2)``."""
    dl = delta if dl is None else dl
    z = sp.exp(-dl)
    den = 1 + c + (1 - c) * z**2
    return (1 - z) * (1 + z + c * (1 - z)) / den, 2 * z / den


def kinetic_change(dl=None):
    """``dK = D log(cosh delta + c sinh delta)``."""
    dl = delta if dl is None else dl
    return D * sp.log(sp.cosh(dl) + c * sp.sinh(dl))


def kinetic_change_zeta(dl=None):
    """``dK = D (delta - log 2 + log(1 + c + (1 - c) zeta^2))``."""
    dl = delta if dl is None else dl
    z = sp.exp(-dl)
    return D * (dl - sp.log(2) + sp.log(1 + c + (1 - c) * z**2))


def _m(alpha, beta):
    return alpha + c * beta  # u(t) . e


def ode_residual():
    """``(alpha' - k (1 - m alpha), beta' + k m beta)`` simplified (both must be 0)."""
    alpha, beta = velocity_coefficients()
    k = G / D
    m = _m(alpha, beta)
    r1 = sp.diff(alpha, t) - k * (1 - m * alpha)
    r2 = sp.diff(beta, t) + k * m * beta
    return sp.simplify(r1.rewrite(sp.exp)), sp.simplify(r2.rewrite(sp.exp))


def norm_residual():
    """``|u(t)|^2 - 1 = alpha^2 + 2 c alpha beta + beta^2 - 1`` simplified (must be 0)."""
    alpha, beta = velocity_coefficients()
    return sp.simplify((alpha**2 + 2 * c * alpha * beta + beta**2 - 1).rewrite(sp.exp))


def zeta_form_residual():
    """Zeta-form coefficients minus hyperbolic ones, simplified (both must be 0)."""
    a1, b1 = velocity_coefficients()
    a2, b2 = zeta_velocity_coefficients()
    return sp.simplify((a1 - a2).rewrite(sp.exp)), sp.simplify((b1 - b2).rewrite(sp.exp))


def zeta_norm_residual():
    """``|numerator|^2 - (1 + c + (1-c) zeta^2)^2`` for the zeta numerator (must be 0).

    Shows that dividing by the analytic denominator and normalising numerically agree.
    """
    z = sp.Symbol("zeta", positive=True)
    na = (1 - z) * (1 + z + c * (1 - z))
    nb = 2 * z
    return sp.expand(na**2 + 2 * c * na * nb + nb**2 - (1 + c + (1 - c) * z**2) ** 2)


def work_residual():
    """``d(dK)/dt - G u(t).e`` simplified (must be 0): kinetic change equals work."""
    alpha, beta = velocity_coefficients()
    return sp.simplify((sp.diff(kinetic_change(), t) - G * _m(alpha, beta)).rewrite(sp.exp))


def kinetic_zeta_residual():
    """``exp(dK/D)`` of the two forms minus each other (must be 0): the log forms agree."""
    x = sp.Symbol("x", positive=True)  # delta
    lhs = sp.cosh(x) + c * sp.sinh(x)
    rhs = sp.exp(x) * (1 + c + (1 - c) * sp.exp(-2 * x)) / 2
    return sp.simplify((lhs - rhs).rewrite(sp.exp))


def all_residuals() -> dict:
    """Every residual above (each must simplify to 0)."""
    o1, o2 = ode_residual()
    z1, z2 = zeta_form_residual()
    return {
        "ode_alpha": o1,
        "ode_beta": o2,
        "norm": norm_residual(),
        "zeta_alpha": z1,
        "zeta_beta": z2,
        "zeta_norm": zeta_norm_residual(),
        "work": work_residual(),
        "kinetic_zeta": kinetic_zeta_residual(),
    }


_x = sp.Symbol("x", nonnegative=True)
#: ``(c, delta) -> (alpha, beta, dK/(d-1))`` (hyperbolic form, NumPy; overflows for delta > ~700).
velocity_numeric = sp.lambdify((c, _x), (*velocity_coefficients(_x), kinetic_change(_x) / D), "numpy")
_velocity_mp = sp.lambdify((c, _x), (*velocity_coefficients(_x), kinetic_change(_x) / D), "mpmath")


def esh_reference(u, g, tau, dps: int = 40):
    """High-precision reference of the B flow, row by row with mpmath (hyperbolic form).

    Parameters
    ----------
    u, g : array-like (n, d)
        Unit velocities and gradients (host NumPy; ``|g| > 0``).
    tau : float or array-like (n,)
    dps : int
        mpmath decimal digits.

    Returns
    -------
    (u_new (n, d), dK (n,)) as float64 NumPy arrays.
    """
    import mpmath
    import numpy as np

    u = np.asarray(u, dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    n, d = u.shape
    tau = np.broadcast_to(np.asarray(tau, dtype=np.float64), (n,))
    out_u = np.empty((n, d))
    out_k = np.empty(n)
    with mpmath.workdps(dps):
        for i in range(n):
            gi = [mpmath.mpf(float(v)) for v in g[i]]
            ui = [mpmath.mpf(float(v)) for v in u[i]]
            gn = mpmath.sqrt(mpmath.fsum(v * v for v in gi))
            ei = [v / gn for v in gi]
            ci = mpmath.fsum(a * b for a, b in zip(ui, ei))
            dl = mpmath.mpf(float(tau[i])) * gn / (d - 1)
            al, be, k = _velocity_mp(ci, dl)
            out_u[i] = [float(al * a + be * b) for a, b in zip(ei, ui)]
            out_k[i] = float((d - 1) * k)
    return out_u, out_k
