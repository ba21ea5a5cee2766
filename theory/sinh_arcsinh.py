"""Sinh-arcsinh family (SymPy): log-density, score and parameter derivatives of ``smile_ref.vi.sinh_arcsinh``.

Statement: for one coordinate with ``x = (theta - m)/sigma``, ``w = delta asinh(x) - epsilon``,
``log q = -sinh(w)^2/2 - log(2 pi)/2 + log delta + log cosh w - log(1 + x^2)/2 - log sigma``, and the
hand-written formulas of the module docstring of ``smile_ref/vi/sinh_arcsinh.py`` equal the SymPy
derivatives ``d log q/d theta``, ``d^2 log q/(d theta d lambda)`` and ``d log q/d lambda`` for
``lambda = (m, log sigma, epsilon, log delta)``.  The density integrates to 1 (change of variables
``z = sinh(w)``; checked numerically by :func:`normalisation`).

Checked by ``tests/test_vi_sinh_arcsinh.py``; page docs/derivations/score-vi.md.
"""
from __future__ import annotations

import sympy as sp

__all__ = ["symbols", "log_q", "hand_formulas", "max_discrepancy", "normalisation"]

theta, m, ls, eps, lt = sp.symbols("theta m log_sigma epsilon log_delta", real=True)
symbols = (theta, m, ls, eps, lt)


def log_q() -> sp.Expr:
    sigma, delta = sp.exp(ls), sp.exp(lt)
    x = (theta - m) / sigma
    w = delta * sp.asinh(x) - eps
    return (-sp.sinh(w) ** 2 / 2 - sp.log(2 * sp.pi) / 2 + sp.log(delta) + sp.log(sp.cosh(w))
            - sp.log(1 + x**2) / 2 - sp.log(sigma))


def hand_formulas():
    """The module's hand-written score ``g`` and derivatives ``(dg, dl)`` as SymPy expressions."""
    sigma, delta = sp.exp(ls), sp.exp(lt)
    x = (theta - m) / sigma
    a = sp.asinh(x)
    r2 = 1 + x**2
    r = sp.sqrt(r2)
    w = delta * a - eps
    h = sp.tanh(w) - sp.sinh(w) * sp.cosh(w)
    hp = 1 / sp.cosh(w) ** 2 - sp.cosh(2 * w)
    u = delta * h / r - x / r2
    ux = delta**2 * hp / r2 - delta * x * h / (r2 * r) - (1 - x**2) / r2**2
    g = u / sigma
    dg = {m: -ux / sigma**2, ls: -(x * ux + u) / sigma, eps: -delta * hp / (r * sigma),
          lt: delta * (h + delta * a * hp) / (r * sigma)}
    dl = {m: -u / sigma, ls: -x * u - 1, eps: -h, lt: 1 + delta * a * h}
    return g, dg, dl


def max_discrepancy(n_points: int = 25, seed: int = 0) -> float:
    """Largest |SymPy derivative - hand formula| over random points (relative to 1 + |value|)."""
    import numpy as np

    lq = log_q()
    g, dg, dl = hand_formulas()
    score = sp.diff(lq, theta)
    pairs = [(score, g)] + [(sp.diff(score, p), dg[p]) for p in (m, ls, eps, lt)] + \
            [(sp.diff(lq, p), dl[p]) for p in (m, ls, eps, lt)]
    fs = [(sp.lambdify(symbols, a, "math"), sp.lambdify(symbols, b, "math")) for a, b in pairs]
    rs = np.random.default_rng(seed)
    worst = 0.0
    for _ in range(n_points):
        pt = (rs.normal(0, 2), rs.normal(), rs.normal(0, 0.5), rs.normal(0, 0.7), rs.normal(0, 0.4))
        for fa, fb in fs:
            va, vb = fa(*pt), fb(*pt)
            worst = max(worst, abs(va - vb) / (1 + abs(va)))
    return worst


def normalisation(m_=0.3, log_sigma=0.2, epsilon=0.5, log_delta=-0.3) -> float:
    """``int exp(log q) dtheta`` by adaptive quadrature (should be 1)."""
    from scipy.integrate import quad
    import math

    f = sp.lambdify(theta, sp.exp(log_q().subs({m: m_, ls: log_sigma, eps: epsilon, lt: log_delta})), "math")
    return quad(f, -math.inf, math.inf, limit=200)[0]
