"""Foundation checks: gradient estimators against their covariance formulas."""
from __future__ import annotations

import math

import numpy as np

from ...backend import HostRandom, get_backend, to_numpy
from ...gradients import AdditiveNoise, MiniBatch
from ...targets import Gaussian, LinearRegression
from ..registry import check, compare


def _cov_rows(name, draws, predicted_cov, alpha, label):
    """Rows comparing empirical variances (diagonal) with predictions; SE from 4th moments."""
    n = draws.shape[0]
    c = draws - draws.mean(axis=0)
    rows = []
    d = draws.shape[1]
    for i in range(d):
        v = np.mean(c[:, i] ** 2) * n / (n - 1)
        se = math.sqrt(max(np.mean(c[:, i] ** 4) - v * v, 0.0) / n)
        rows.append(compare(name, f"{label} Var[g_{i}]", predicted_cov[i, i], v, se, alpha=alpha, n_tests=d))
    return rows


@check("minibatch_noise_covariance", group="gradients", seeds=(0, 1))
def minibatch_noise_covariance(outdir, quick):
    """Mini-batch gradient (N=200, b=20, without replacement): unbiased, covariance (N^2/b)(N-b)/(N-1) S^2."""
    rs = np.random.default_rng(0)
    X = rs.standard_normal((200, 3))
    y = X @ np.array([1.0, -1.0, 0.5]) + rs.standard_normal(200)
    t = LinearRegression(X, y, prior_scale=1.0, noise_scale=1.0)
    b = get_backend()
    n = 20000 if quick else 200000
    x = b.asarray(np.tile(np.array([[0.3, 0.2, -0.1]]), (n, 1)))
    est = MiniBatch(t, 20, replace=False)
    rng = HostRandom(1, b)
    _, g, _ = est(x, rng)
    g = to_numpy(g)
    exact = to_numpy(t.grad_logdensity(x[:1, :]))[0]
    cov = to_numpy(est.noise_covariance(x[:1, :]))[0]
    rows = []
    se = np.sqrt(np.diag(cov) / n)
    for i in range(3):
        rows.append(compare("minibatch_noise_covariance", f"E[g_{i}] (unbiased)", exact[i], g[:, i].mean(), se[i],
                            alpha=1e-3, n_tests=3))
    rows += _cov_rows("minibatch_noise_covariance", g, cov, 1e-3, "")
    return rows


@check("additive_noise_covariance", group="gradients", seeds=(2,))
def additive_noise_covariance(outdir, quick):
    """Additive Laplace / Student-t noise normalised to a requested diagonal covariance."""

    t = Gaussian.isotropic(4)
    cov = np.diag([0.01, 1.0, 10.0, 100.0])
    b = get_backend()
    n = 20000 if quick else 200000
    x = b.zeros((n, 4))
    rows = []
    for dist, kw in (("laplace", {}), ("student_t", {"df": 10.0})):
        est = AdditiveNoise(t, cov, distribution=dist, **kw)
        _, g, _ = est(x, HostRandom(2, b))
        rows += _cov_rows("additive_noise_covariance", to_numpy(g), cov, 1e-3 / 2, dist)
    return rows
