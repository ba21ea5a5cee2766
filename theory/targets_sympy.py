"""SymPy reference expressions for the targets of ``smile_ref.targets``.

Every function here is independent of ``smile_ref``: log-densities are written
from the model definitions, gradients come from ``sympy.diff`` and exact moments
from explicit Gaussian integrals (``sympy.integrate``), never from the package's
closed forms.  ``tests/test_targets.py`` compares the package against them;
``docs/derivations/targets.md`` states the results.

Contents
--------
* :func:`normal_expectation` -- ``E[f(v)]`` for ``v ~ N(m, s^2)`` by integration.
* :func:`funnel_logdensity`, :func:`funnel_moments` -- Neal's funnel.
* :func:`rosenbrock_logdensity`, :func:`rosenbrock_moments` -- the SMILE banana.
* :func:`gaussian_logdensity` -- ``N(m, Sigma)`` for given numbers.
* :func:`logistic_logdensity`, :func:`linear_regression_logdensity`,
  :func:`linear_regression_posterior` -- GLM posteriors for given (small) data.
* :func:`lambdify_logdensity_and_grad` -- NumPy callables ``(n, d) -> (n,), (n, d)``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp

__all__ = [
    "normal_expectation",
    "funnel_logdensity",
    "funnel_moments",
    "rosenbrock_logdensity",
    "rosenbrock_moments",
    "gaussian_logdensity",
    "logistic_logdensity",
    "linear_regression_logdensity",
    "linear_regression_posterior",
    "lambdify_logdensity_and_grad",
]

_z = sp.Symbol("z", real=True)


def normal_expectation(expr, var, mean, variance):
    """``E[expr]`` over ``var ~ N(mean, variance)``, by ``integrate(expr * pdf, (-oo, oo))``.

    The substitution ``var = mean + sqrt(variance) z`` with ``z ~ N(0, 1)`` keeps the
    integrand a polynomial/exponential in ``z`` times ``exp(-z^2/2)``.
    """
    f = sp.expand(expr.subs(var, mean + sp.sqrt(variance) * _z))
    if f.is_polynomial(_z):
        # term by term: sum_k c_k E[z^k], each E[z^k] an explicit (cached) integral
        return sp.expand(sum(c * _std_normal_moment(k) for (k,), c in sp.Poly(f, _z).terms()))
    return sp.integrate(f * _phi, (_z, -sp.oo, sp.oo))


_phi = sp.exp(-_z**2 / 2) / sp.sqrt(2 * sp.pi)


@lru_cache(maxsize=None)
def _std_normal_moment(k: int):
    """``E[z^k] = integrate(z^k exp(-z^2/2)/sqrt(2 pi), (-oo, oo))`` for ``z ~ N(0, 1)``."""
    return sp.integrate(_z**k * _phi, (_z, -sp.oo, sp.oo))


def _symbols(dim: int):
    return list(sp.symbols(f"x0:{dim}", real=True))


# --- Neal's funnel -----------------------------------------------------------------
def funnel_logdensity(dim: int, theta_scale):
    """Normalised ``log pi`` of the funnel: ``x0 ~ N(0, s^2)``, ``x_i | x0 ~ N(0, exp(x0))``.

    Returns ``(expr, [x0, ..., x_{d-1}])``.
    """
    xs = _symbols(dim)
    s = sp.nsimplify(theta_scale)
    th = xs[0]
    expr = -th**2 / (2 * s**2) - sp.log(2 * sp.pi * s**2) / 2
    for xi in xs[1:]:
        v = sp.exp(th)
        expr += -xi**2 / (2 * v) - sp.log(2 * sp.pi * v) / 2
    return expr, xs


@lru_cache(maxsize=None)
def funnel_moments():
    """Exact funnel moments as functions of the symbol ``s`` (``theta_scale``).

    Keys: ``E_theta2, Var_theta2, E_x2, Var_x2, E_x4, E_theta_x, E_x`` (``x`` any of
    ``x_1..x_{d-1}``).  Conditional moments given ``theta`` are Gaussian integrals
    with variance ``exp(theta)``; the outer integral is over ``theta ~ N(0, s^2)``.
    Returns ``(dict, s)``.
    """
    s = sp.Symbol("s", positive=True)
    th, x = sp.symbols("theta x", real=True)
    v = sp.exp(th)

    def inner(f):
        return normal_expectation(f, x, 0, v)

    def outer(f):
        return sp.simplify(normal_expectation(f, th, 0, s**2))

    E_theta2 = outer(th**2)
    E_theta4 = outer(th**4)
    E_x2 = outer(inner(x**2))
    E_x4 = outer(inner(x**4))
    out = {
        "E_theta2": E_theta2,
        "Var_theta2": sp.simplify(E_theta4 - E_theta2**2),
        "E_x": outer(inner(x)),
        "E_theta_x": outer(th * inner(x)),
        "E_x2": E_x2,
        "E_x4": E_x4,
        "Var_x2": sp.simplify(E_x4 - E_x2**2),
    }
    return out, s


# --- Rosenbrock / banana --------------------------------------------------------------
def rosenbrock_logdensity(dim: int, a, Q):
    """Normalised ``log pi`` of the banana ``-1/2 sum[(X_i-a)^2 + (X_i^2-Y_i)^2/Q] + const``.

    ``X = x_0..x_{h-1}``, ``Y = x_h..x_{d-1}``, ``h = d/2``.  Returns ``(expr, xs)``.
    """
    xs = _symbols(dim)
    h = dim // 2
    a = sp.nsimplify(a)
    Q = sp.nsimplify(Q)
    expr = 0
    for i in range(h):
        X, Y = xs[i], xs[h + i]
        expr += -((X - a) ** 2 + (X**2 - Y) ** 2 / Q) / 2 - sp.log(2 * sp.pi) / 2 - sp.log(2 * sp.pi * Q) / 2
    return expr, xs


@lru_cache(maxsize=None)
def rosenbrock_moments():
    """Exact moments of one pair ``X ~ N(a, 1)``, ``Y | X ~ N(X^2, Q)`` (symbols ``a``, ``Q``).

    Keys: ``E_X, Var_X, E_X2, Var_X2, E_Y, Var_Y, Cov_XY, E_Y2, Var_Y2``.
    Returns ``(dict, a, Q)``.
    """
    a = sp.Symbol("a", real=True)
    Q = sp.Symbol("Q", positive=True)
    X, Y = sp.symbols("X Y", real=True)

    def E(f):
        return sp.expand(normal_expectation(sp.expand(normal_expectation(f, Y, X**2, Q)), X, a, 1))

    EX, EX2, EX4 = E(X), E(X**2), E(X**4)
    EY, EY2, EY4, EXY = E(Y), E(Y**2), E(Y**4), E(X * Y)
    out = {
        "E_X": EX,
        "Var_X": sp.expand(EX2 - EX**2),
        "E_X2": EX2,
        "Var_X2": sp.expand(EX4 - EX2**2),
        "E_Y": EY,
        "Var_Y": sp.expand(EY2 - EY**2),
        "Cov_XY": sp.expand(EXY - EX * EY),
        "E_Y2": EY2,
        "Var_Y2": sp.expand(EY4 - EY2**2),
    }
    return out, a, Q


# --- Gaussian -------------------------------------------------------------------------
def gaussian_logdensity(mean, cov):
    """Normalised ``log N(x; m, Sigma)`` for numeric ``mean`` (d,) and ``cov`` (d, d).

    Numbers are converted with ``nsimplify`` (exact rationals where possible).
    Returns ``(expr, xs)``.
    """
    mean = np.asarray(mean, dtype=float)
    d = mean.shape[0]
    xs = _symbols(d)
    S = sp.Matrix(d, d, lambda i, j: sp.nsimplify(float(cov[i][j]), rational=True))
    m = sp.Matrix([sp.nsimplify(float(v), rational=True) for v in mean])
    r = sp.Matrix(xs) - m
    quad = (r.T * S.inv() * r)[0, 0]
    expr = -quad / 2 - sp.log((2 * sp.pi) ** d * S.det()) / 2
    return expr, xs


# --- GLMs -------------------------------------------------------------------------------
def _prior(xs, prior_scale):
    s = sp.nsimplify(prior_scale, rational=True)
    p = len(xs)
    return -sum(w**2 for w in xs) / (2 * s**2) - p * sp.log(2 * sp.pi * s**2) / 2


def logistic_logdensity(X, y, prior_scale):
    """``log prior + sum_i [y_i z_i - log(1 + exp(z_i))]``, ``z_i = x_i^T w``; returns ``(expr, ws)``."""
    X = np.asarray(X, dtype=float)
    xs = _symbols(X.shape[1])
    expr = _prior(xs, prior_scale)
    for row, yi in zip(X, np.asarray(y, dtype=float)):
        z = sum(sp.nsimplify(float(c), rational=True) * w for c, w in zip(row, xs))
        expr += int(yi) * z - sp.log(1 + sp.exp(z))
    return expr, xs


def linear_regression_logdensity(X, y, prior_scale, noise_scale):
    """``log prior + sum_i log N(y_i; x_i^T w, sigma^2)``; returns ``(expr, ws)``."""
    X = np.asarray(X, dtype=float)
    xs = _symbols(X.shape[1])
    sig = sp.nsimplify(noise_scale, rational=True)
    expr = _prior(xs, prior_scale)
    for row, yi in zip(X, np.asarray(y, dtype=float)):
        z = sum(sp.nsimplify(float(c), rational=True) * w for c, w in zip(row, xs))
        r = sp.nsimplify(float(yi), rational=True) - z
        expr += -(r**2) / (2 * sig**2) - sp.log(2 * sp.pi * sig**2) / 2
    return expr, xs


def linear_regression_posterior(X, y, prior_scale, noise_scale):
    """Exact posterior ``(mean, cov)`` (host float arrays) from the SymPy log-density.

    The log-density is quadratic in ``w``, so the posterior precision is minus its
    Hessian and the mean is the unique root of its gradient (solved exactly).
    """
    expr, xs = linear_regression_logdensity(X, y, prior_scale, noise_scale)
    H = sp.hessian(expr, xs)
    sol = sp.solve([sp.diff(expr, w) for w in xs], xs, dict=True)[0]
    mean = np.array([float(sol[w]) for w in xs])
    cov = np.array((-H).inv().evalf(), dtype=float)
    return mean, cov


# --- numeric versions ------------------------------------------------------------------
def lambdify_logdensity_and_grad(expr, xs):
    """NumPy callable ``f(x) -> (logp, grad)`` for ``x`` of shape ``(n, d)`` (float64).

    The gradient is ``sympy.diff(expr, x_j)`` for each ``j``.
    """
    grads = [sp.diff(expr, v) for v in xs]
    f_l = sp.lambdify(xs, expr, modules="numpy")
    f_g = sp.lambdify(xs, grads, modules="numpy")
    d = len(xs)

    def f(x):
        x = np.asarray(x, dtype=np.float64)
        cols = [x[:, j] for j in range(d)]
        n = x.shape[0]
        logp = np.broadcast_to(np.asarray(f_l(*cols), dtype=np.float64), (n,)).copy()
        g = np.stack([np.broadcast_to(np.asarray(gj, dtype=np.float64), (n,)) for gj in f_g(*cols)], axis=1)
        return logp, g

    return f
