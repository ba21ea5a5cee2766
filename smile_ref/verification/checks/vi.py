"""Variational-inference checks: score_vi (our proximal score-matching formulation), GSM, BaM on Gaussian targets."""
from __future__ import annotations

import math

import numpy as np

from ...backend import HostRandom, get_backend, to_numpy
from ...gradients import MiniBatch
from ...targets import Gaussian, LinearRegression
from ...vi import DiagGaussian, fit_vi
from ...vi.bam import bam_update
from ...vi.gsm import gsm_increments
from ...vi.score_vi import diag_update
from ..registry import check, compare, exact

_P = np.array([[2.0, 0.6, -0.3, 0.2], [0.6, 1.5, 0.4, 0.0], [-0.3, 0.4, 1.0, 0.3], [0.2, 0.0, 0.3, 1.2]])
_MU = np.array([1.0, -1.0, 0.5, 0.0])


@check("vi_gaussian_recovery", group="vi", seeds=(0, 1, 2))
def vi_gaussian_recovery(outdir, quick):
    """Full-covariance score_vi (one step, M = d + 1), GSM and BaM recover N(mu, P^-1) with dense P (d = 4)."""
    t = Gaussian(_MU, np.linalg.inv(_P))
    rows = []
    r = fit_vi("score_vi", t, "full_gaussian", n_iter=1, n_samples=5, seed=0)
    rows.append(exact("vi_gaussian_recovery", "score_vi full: max|P_fit - P| after 1 step", 0.0,
                      float(np.abs(np.linalg.inv(r.cov) - _P).max()), 1e-10))
    for method, opts in (("gsm", {}), ("bam", {"lam": 10.0})):
        r = fit_vi(method, t, "full_gaussian", n_iter=200, n_samples=8, seed=1, **opts)
        err = max(float(np.abs(r.mean - _MU).max()), float(np.abs(r.cov - t.cov).max()))
        rows.append(exact("vi_gaussian_recovery", f"{method}: max moment error after 200 steps", 0.0, err, 1e-10))
    rs = np.random.default_rng(2)
    z, v = rs.standard_normal((2, 4))
    mu1, S1 = gsm_increments(np.zeros(4), np.eye(4), z[None, :], v[None, :])
    res = float(np.abs(np.linalg.solve(S1[0], mu1[0] - z) - v).max())
    rows.append(exact("vi_gaussian_recovery", "gsm: |Sigma_1^-1 (mu_1 - z) - grad log p(z)|", 0.0, res, 1e-10))
    _, S, U, V = bam_update(np.zeros(4), np.eye(4), rs.standard_normal((3, 4)), rs.standard_normal((3, 4)), 1.0)
    rows.append(exact("vi_gaussian_recovery", "bam: |Sigma U Sigma + Sigma - V|", 0.0,
                      float(np.abs(S @ U @ S + S - V).max()), 1e-10))
    return rows


@check("vi_diag_fixed_point", group="vi", seeds=(5,))
def vi_diag_fixed_point(outdir, quick):
    """Diagonal score_vi (beta = 0) on N(mu, P^-1): precision -> diag(P) (ADVI's mean-field optimum), not sqrt(diag P^2)."""
    bk = get_backend()
    rng = HostRandom(5, bk)
    q = DiagGaussian(np.zeros(4), np.ones(4))
    T = 600 if quick else 3000
    taus = []
    for t in range(T):
        theta = q.sample(rng, 200)
        q, _ = diag_update(q, theta, -(theta - _MU) @ _P)
        if t >= 20:
            taus.append(q.precision)
    taus = np.array(taus)
    se = taus.std(0, ddof=1) / math.sqrt(len(taus))
    fisher = np.sqrt(np.diag(_P @ _P))
    rows = []
    for j in range(4):
        rows.append(compare("vi_diag_fixed_point", f"tau_{j} vs P_jj (Fisher minimiser {fisher[j]:.4f})",
                            _P[j, j], float(taus[:, j].mean()), float(se[j]), alpha=1e-3, n_tests=4,
                            notes="iterates are unbiased for P_jj (martingale differences): SE = sd/sqrt(T)"
                            if j == 0 else ""))
    return rows


@check("vi_minibatch_objective", group="vi", seeds=(0, 1))
def vi_minibatch_objective(outdir, quick):
    """E||a - s_hat||^2 = ||a - s||^2 + tr Cov(s_hat) with mini-batch scores (N = 200, b = 20)."""
    rs = np.random.default_rng(0)
    X = rs.standard_normal((200, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + rs.standard_normal(200)
    t = LinearRegression(X, y)
    n = 40000 if quick else 400000
    theta = np.array([[0.3, 0.2, -0.1]])
    a = np.array([1.0, -2.0, 0.5])
    est = MiniBatch(t, 20)
    _, s_hat, _ = est(np.tile(theta, (n, 1)), HostRandom(1, get_backend()))
    vals = np.sum((a - to_numpy(s_hat)) ** 2, axis=1)
    pred = float(np.sum((a - t.grad_logdensity(theta)[0]) ** 2) + np.trace(est.noise_covariance(theta)[0]))
    return [compare("vi_minibatch_objective", "E||a - s_hat||^2", pred, float(vals.mean()),
                    float(vals.std(ddof=1) / math.sqrt(n)), alpha=1e-3)]
