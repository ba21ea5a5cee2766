"""Statistical and population checks of smile_ref.vi against theory/score_vi.py.

Failure probabilities are stated per test; all seeds are fixed.
"""
from __future__ import annotations

import math

import numpy as np

from smile_ref.backend import HostRandom, get_backend, to_numpy
from smile_ref.gradients import MiniBatch
from smile_ref.targets import LinearRegression
from smile_ref.vi import DiagGaussian
from smile_ref.vi.advi import elbo_gradients
from smile_ref.vi.score_vi import diag_update

Z = 4.5  # two-sided: P(|N(0,1)| > 4.5) = 6.8e-6 per comparison


def _regression(seed=0, N=200, d=3):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((N, d))
    y = X @ np.array([1.0, -1.0, 0.5]) + rs.standard_normal(N)
    return LinearRegression(X, y, prior_scale=1.0, noise_scale=1.0)


def test_minibatch_score_matching_loss_is_unbiased_up_to_trace_cov():
    """E||a - s_hat||^2 = ||a - s||^2 + tr Cov(s_hat) at a fixed theta (N=200, b=20, without replacement).

    z-test at 4.5 sigma with the SE of the mean of 40000 i.i.d. batches: failure probability < 1e-5.
    """
    t = _regression()
    bk = get_backend()
    n = 40000
    theta = np.array([[0.3, 0.2, -0.1]])
    a = np.array([1.0, -2.0, 0.5])
    est = MiniBatch(t, 20, replace=False)
    _, s_hat, _ = est(np.tile(theta, (n, 1)), HostRandom(1, bk))
    vals = np.sum((a - to_numpy(s_hat)) ** 2, axis=1)
    s = t.grad_logdensity(theta)[0]
    predicted = np.sum((a - s) ** 2) + np.trace(est.noise_covariance(theta)[0])
    se = vals.std(ddof=1) / math.sqrt(n)
    assert abs(vals.mean() - predicted) <= Z * se, (vals.mean(), predicted, se)
    # the constant is not zero: the noise term is many SEs away (the test could fail)
    assert np.trace(est.noise_covariance(theta)[0]) > 10 * se


def test_closed_form_natural_parameters_unbiased_over_minibatches():
    """tau_hat and h_hat are linear in s_hat: their mean over mini-batches (fixed theta samples) equals the
    exact-score values.  6 comparisons at 4.5 sigma (Bonferroni): failure probability < 5e-5."""
    t = _regression(1)
    bk = get_backend()
    M, R, d = 10, 8000, 3
    theta = np.random.default_rng(2).standard_normal((M, d)) * 0.2 + t.mean
    est = MiniBatch(t, 10, replace=False)
    _, s_hat, _ = est(np.tile(theta, (R, 1)), HostRandom(3, bk))
    s_hat = to_numpy(s_hat).reshape(R, M, d)
    tc = theta - theta.mean(0)
    V = np.mean(tc**2, axis=0)

    def natural(s):
        sc = s - s.mean(-2, keepdims=True)
        tau = -np.mean(tc * sc, axis=-2) / V
        return tau, s.mean(-2) + tau * theta.mean(0)

    tau_r, h_r = natural(s_hat)
    tau_ex, h_ex = natural(t.grad_logdensity(theta))
    for est_r, ex in ((tau_r, tau_ex), (h_r, h_ex)):
        se = est_r.std(0, ddof=1) / math.sqrt(R)
        assert np.all(np.abs(est_r.mean(0) - ex) <= Z * se), (est_r.mean(0), ex, se)


def _dense_P():
    return np.array([[2.0, 0.6, -0.3, 0.2], [0.6, 1.5, 0.4, 0.0], [-0.3, 0.4, 1.0, 0.3], [0.2, 0.0, 0.3, 1.2]])


def test_diag_iteration_converges_to_advi_optimum_not_fisher():
    """score_vi, diagonal family, beta = 0, exact scores on N(mu, P^{-1}) with dense P (2D - P is PD).

    For a Gaussian target, E[tau_hat_j | q_t] = P_jj exactly (Cov_m(theta_j, theta_k) has conditional mean 0
    given the theta_j draws), so the iterates tau_t are unbiased for P_jj and martingale differences: the mean
    over T iterations has SE sd/sqrt(T).  4 coordinates at 4.5 sigma: failure probability < 3e-5.
    The Fisher-divergence minimiser sqrt((P^2)_jj) is rejected by many SEs in every coordinate.
    """
    P = _dense_P()
    mu = np.array([1.0, -1.0, 0.5, 0.0])
    assert np.min(np.linalg.eigvalsh(2 * np.diag(np.diag(P)) - P)) > 0
    bk = get_backend()
    rng = HostRandom(5, bk)
    q = DiagGaussian(np.zeros(4), np.ones(4))
    taus, means = [], []
    M, T = 200, 600
    for t in range(T):
        theta = q.sample(rng, M)
        q, n_bad = diag_update(q, theta, -(theta - mu) @ P)
        assert n_bad == 0
        if t >= 20:
            taus.append(q.precision)
            means.append(q.mean)
    taus, means = np.array(taus), np.array(means)
    se = taus.std(0, ddof=1) / math.sqrt(len(taus))
    assert np.all(np.abs(taus.mean(0) - np.diag(P)) <= Z * se), (taus.mean(0), np.diag(P), se)
    fisher = np.sqrt(np.diag(P @ P))
    assert np.all(np.abs(taus.mean(0) - fisher) > 10 * se)
    # mean: batch means over 20 batches of the AR(1)-like iterates; loose 6-sigma check of m = mu
    b = means[: len(means) // 20 * 20].reshape(20, -1, 4).mean(1)
    se_m = b.std(0, ddof=1) / math.sqrt(20)
    assert np.all(np.abs(b.mean(0) - mu) <= 6 * se_m), (b.mean(0), mu, se_m)


def _antithetic(m, tau):
    """Samples with sample mean m and biased sample covariance diag(1/tau) exactly (population update)."""
    d = m.shape[0]
    E = np.concatenate([np.eye(d), -np.eye(d)]) * math.sqrt(d)
    return m + E / np.sqrt(tau)


def test_population_iteration_jacobi_divergence_and_beta_repair():
    """Population diagonal iteration (exact moments) on P with 2D - P indefinite (theory: mean Jacobian
    I - 2 (2D + beta)^{-1} P): beta = 0 diverges, beta = lambda_max(P - 2D) + 0.2 converges to (mu, diag P)."""
    P = np.full((3, 3), 0.9) + 0.1 * np.eye(3)
    mu = np.array([0.3, -0.2, 0.1])
    lam_max = float(np.max(np.linalg.eigvalsh(P - 2 * np.diag(np.diag(P)))))
    for beta, n_iter in ((0.0, 60), (lam_max + 0.2, 400)):
        q = DiagGaussian(np.zeros(3), np.ones(3))
        for _ in range(n_iter):
            theta = _antithetic(q.mean, q.precision)
            q, _ = diag_update(q, theta, -(theta - mu) @ P, beta=beta)
        err = np.abs(q.mean - mu).max()
        if beta == 0.0:
            assert err > 1e3
        else:
            assert err < 1e-8
            np.testing.assert_allclose(q.precision, np.diag(P), rtol=1e-8)


def test_population_beta_precision_contraction_rate():
    """1-D population step from tau_old = p (1 + eps): tau' - p = beta / (4 p + beta) (tau_old - p) + O(eps^2)."""
    p, beta, eps = 2.0, 3.0, 1e-6
    P = np.array([[p]])
    q = DiagGaussian(np.zeros(1), np.array([p * (1 + eps)]))
    theta = _antithetic(q.mean, q.precision)
    q2, _ = diag_update(q, theta, -theta @ P, beta=beta)
    rate = (q2.precision[0] - p) / (p * eps)
    assert abs(rate - beta / (4 * p + beta)) < 1e-4


def test_advi_reparameterised_gradients_unbiased():
    """Mean-field and full-rank ELBO gradients on N(mu, P^{-1}) against the closed forms
    grad_m = -P (m - mu), grad_omega = -diag(P L) e^omega + 1, grad_Loff = tril(-P L, -1).
    Chunk means (400 chunks of 50) give the SE; at most 4 + 4 + 6 + 4 + 4 = 22 comparisons at 4.5 sigma:
    failure probability < 2e-4."""
    P = _dense_P()
    mu = np.array([1.0, -1.0, 0.5, 0.0])
    rs = np.random.default_rng(7)
    m = rs.standard_normal(4)
    L = np.tril(rs.standard_normal((4, 4)) * 0.3, -1) + np.diag(rs.uniform(0.5, 1.5, 4))
    omega = np.log(np.diag(L))
    for kind in ("diag_gaussian", "full_gaussian"):
        Lk = np.diag(np.diag(L)) if kind == "diag_gaussian" else L
        chunks = []
        for _ in range(400):
            eps = rs.standard_normal((50, 4))
            theta = m + eps @ Lk.T
            gm, gw, gL = elbo_gradients(kind, m, omega, np.tril(Lk, -1), eps, -(theta - mu) @ P)
            chunks.append(np.concatenate([gm, gw] + ([gL[np.tril_indices(4, -1)]] if gL is not None else [])))
        chunks = np.array(chunks)
        PL = P @ Lk
        exact = [-P @ (m - mu), -np.diag(PL) * np.exp(omega) + 1.0]
        if kind == "full_gaussian":
            exact.append(-PL[np.tril_indices(4, -1)])
        exact = np.concatenate(exact)
        se = chunks.std(0, ddof=1) / math.sqrt(len(chunks))
        ok = (np.abs(chunks.mean(0) - exact) <= Z * se) | ((se == 0) & np.isclose(chunks.mean(0), exact))
        assert np.all(ok), (kind, chunks.mean(0), exact, se)
