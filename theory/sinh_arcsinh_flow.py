"""Sinh-arcsinh flow (SymPy): log-density, score, ``d log q/d lambda`` and the score-matching gradient of
``smile_ref.vi.flow.SinhArcsinhFlow`` in ``d = 2``, independently of the package (this module imports no
smile_ref code; the comparison with the package is in the test).

Statement: with ``v_l = Q_l y_{l-1}``, ``y_l = sinh(delta_l asinh((v_l - m_l)/sigma_l) - epsilon_l)``
(element-wise), ``y_0 = theta``, ``z = y_L``,
``log q = -|z|^2/2 - log(2 pi) + sum_l sum_j log f_l'(v_lj)``; the module's reverse-mode score, its
``log_prob_param_grads`` and its ``objective_grads`` (tangent + reverse pass) equal the SymPy derivatives of
this expression and of ``J = |grad_theta log q - s|^2 - beta log q`` (one sample).  ``Q_l`` are rotations by
fixed angles.  :func:`reference_values` evaluates these derivatives at one random point to 30 digits;
``tests/test_vi_flow.py`` compares them with the module; page docs/derivations/score-vi.md.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

__all__ = ["log_q_expr", "rotation", "reference_values"]

PARAMS = ("loc", "log_scale", "skew", "log_tail")


def rotation(angle: float) -> np.ndarray:
    """The 2 x 2 rotation matrix ``[[cos a, -sin a], [sin a, cos a]]``."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def log_q_expr(n_layers: int, angles):
    """``(log q, theta symbols, {name: [symbol_j]})`` with rotation ``Q_l`` by ``angles[l]``."""
    th = sp.symbols("theta0 theta1", real=True)
    ps = {f"{k}{l}": sp.symbols(f"{k}{l}_0 {k}{l}_1", real=True) for l in range(n_layers) for k in PARAMS}
    y, total = list(th), 0
    for l in range(n_layers):
        Q = sp.Matrix(rotation(angles[l]).tolist())
        v = list(Q * sp.Matrix(y))
        new = []
        for j in range(2):
            m, ls, eps, lt = (ps[f"{k}{l}"][j] for k in PARAMS)
            sigma, delta = sp.exp(ls), sp.exp(lt)
            x = (v[j] - m) / sigma
            w = delta * sp.asinh(x) - eps
            total += sp.log(delta) + sp.log(sp.cosh(w)) - sp.log(1 + x**2) / 2 - ls
            new.append(sp.sinh(w))
        y = new
    total += -(y[0] ** 2 + y[1] ** 2) / 2 - sp.log(2 * sp.pi)
    return total, th, ps


def reference_values(n_layers: int = 1, angles=(0.7, -1.1), beta: float = 0.6, seed: int = 0) -> dict:
    """SymPy values of the flow's log-density and its derivatives at one random point, to 30 digits.

    Parameters
    ----------
    n_layers : int
        Number of sinh-arcsinh layers ``L``; layer ``l`` follows a rotation by ``angles[l]``.
    angles : sequence of float
        Rotation angles in radians (at least ``n_layers`` of them).
    beta : float
        Weight of ``-log q`` in the score-matching objective ``J``.
    seed : int
        Seed of the NumPy generator that draws the point: every parameter ``~ N(0, 0.4^2)``,
        ``theta ~ N(0, 1.2^2 I)``, ``s ~ N(0, I)``.

    Returns
    -------
    dict
        ``params`` (``{f"{name}{l}": array of 2}`` for ``name`` in :data:`PARAMS`), ``rotations``
        (list of 2 x 2 arrays), ``theta``, ``s`` (arrays of 2), ``log_q`` (float), ``score``
        (list of 2 floats, ``d log q/d theta``), ``dlogq`` and ``dJ`` (``{f"{name}{l}": [2 floats]}``,
        ``d log q/d lambda`` and ``dJ/d lambda``).

    Examples
    --------
    >>> ref = reference_values(1)
    >>> sorted(ref)[:3], len(ref["score"])
    (['beta', 'dJ', 'dlogq'], 2)
    """
    rng = np.random.default_rng(seed)
    lq, th, ps = log_q_expr(n_layers, angles)
    vals = {name: rng.normal(0.0, 0.4, 2) for name in ps}
    theta_v, s_v = rng.normal(0.0, 1.2, 2), rng.normal(0.0, 1.0, 2)
    s = sp.symbols("s0 s1", real=True)
    g = [sp.diff(lq, t) for t in th]
    J = sum((g[i] - s[i]) ** 2 for i in range(2)) - beta * lq
    subs = {t: float(v) for t, v in zip(th, theta_v)}
    subs.update({si: float(v) for si, v in zip(s, s_v)})
    for name, sy in ps.items():
        subs.update({sy[j]: float(vals[name][j]) for j in range(2)})

    def ev(e):
        return float(sp.N(e.subs(subs), 30))

    return {
        "params": vals, "rotations": [rotation(a) for a in angles[:n_layers]], "theta": theta_v, "s": s_v,
        "beta": beta, "log_q": ev(lq), "score": [ev(gi) for gi in g],
        "dlogq": {name: [ev(sp.diff(lq, sy[j])) for j in range(2)] for name, sy in ps.items()},
        "dJ": {name: [ev(sp.diff(J, sy[j])) for j in range(2)] for name, sy in ps.items()},
    }
