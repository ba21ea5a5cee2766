"""Sinh-arcsinh flow (SymPy): log-density, score, ``d log q/d lambda`` and the score-matching gradient of
``smile_ref.vi.flow.SinhArcsinhFlow`` in ``d = 2``.

Statement: with ``v_l = Q_l y_{l-1}``, ``y_l = sinh(delta_l asinh((v_l - m_l)/sigma_l) - epsilon_l)``
(element-wise), ``y_0 = theta``, ``z = y_L``,
``log q = -|z|^2/2 - log(2 pi) + sum_l sum_j log f_l'(v_lj)``; the module's reverse-mode score, its
``log_prob_param_grads`` and its ``objective_grads`` (tangent + reverse pass) equal the SymPy derivatives of
this expression and of ``J = |grad_theta log q - s|^2 - beta log q`` (one sample).  ``Q_l`` are rotations by
fixed angles.  Checked by ``tests/test_vi_flow.py``; page docs/derivations/score-vi.md.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

__all__ = ["log_q_expr", "max_discrepancy"]

PARAMS = ("loc", "log_scale", "skew", "log_tail")


def _rot(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def log_q_expr(n_layers: int, angles):
    """``(log q, theta symbols, {name: [symbol_j]})`` with rotation ``Q_l`` by ``angles[l]``."""
    th = sp.symbols("theta0 theta1", real=True)
    ps = {f"{k}{l}": sp.symbols(f"{k}{l}_0 {k}{l}_1", real=True) for l in range(n_layers) for k in PARAMS}
    y, total = list(th), 0
    for l in range(n_layers):
        Q = sp.Matrix(_rot(angles[l]).tolist())
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


def max_discrepancy(n_layers: int = 1, angles=(0.7, -1.1), beta: float = 0.6, seed: int = 0) -> float:
    """Largest relative difference (``|a - b| / (1 + |a|)``) between SymPy and the module at one random point."""
    from smile_ref.vi.flow import SinhArcsinhFlow
    from smile_ref.vi.sinh_arcsinh import SinhArcsinh

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

    flow = SinhArcsinhFlow([SinhArcsinh(*(vals[f"{k}{l}"] for k in PARAMS)) for l in range(n_layers)],
                           [_rot(a) for a in angles[:n_layers]])
    X, S = theta_v[None, :], s_v[None, :]
    worst = 0.0

    def cmp(a, b):
        nonlocal worst
        worst = max(worst, abs(a - b) / (1.0 + abs(a)))

    cmp(ev(lq), float(flow.log_prob(X)[0]))
    for i in range(2):
        cmp(ev(g[i]), float(flow.score(X)[0, i]))
    dl = flow.log_prob_param_grads(X)
    dJ = flow.objective_grads(X, S, beta)
    for l in range(n_layers):
        for k in PARAMS:
            for j in range(2):
                sy = ps[f"{k}{l}"][j]
                cmp(ev(sp.diff(lq, sy)), float(dl[l][k][0, j]))
                cmp(ev(sp.diff(J, sy)), float(dJ[f"{k}{l}"][j]))
    return worst
