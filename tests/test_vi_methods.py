"""smile_ref.vi: families (finite differences, backends), GSM, BaM, score_vi, ADVI updates and fit_vi."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from smile_ref import fit_vi
from smile_ref.backend import HostRandom, to_numpy
from smile_ref.targets import Gaussian
from smile_ref.targets.base import Target
from smile_ref.vi import DiagGaussian, FullGaussian
from smile_ref.vi.bam import bam_update
from smile_ref.vi.gsm import GSM, gsm_increments
from smile_ref.vi.score_vi import diag_update, full_update
from tests.conftest import assert_backend, tol_for


def _dense_target(d=4, seed=0):
    rs = np.random.default_rng(seed)
    A = rs.standard_normal((d, d))
    P = A @ A.T / d + np.eye(d)
    return Gaussian(rs.standard_normal(d), np.linalg.inv(P)), P


# ---------------------------------------------------------------- families
def test_families_log_prob_score_finite_differences():
    rs = np.random.default_rng(1)
    d = 3
    A = rs.standard_normal((d, d))
    fams = [DiagGaussian(rs.standard_normal(d), rs.uniform(0.5, 2, d)),
            FullGaussian(rs.standard_normal(d), A @ A.T + np.eye(d))]
    x = rs.standard_normal((5, d))
    h = 1e-6
    for q in fams:
        fd = np.stack([(q.log_prob(x + h * e) - q.log_prob(x - h * e)) / (2 * h) for e in np.eye(d)], axis=1)
        np.testing.assert_allclose(q.score(x), fd, rtol=1e-6, atol=1e-7)
        ref = Gaussian(to_numpy(q.mean), to_numpy(q.cov))
        np.testing.assert_allclose(q.log_prob(x), ref.logdensity(x), rtol=1e-12)


def test_families_on_backends(backend):
    rs = np.random.default_rng(2)
    d = 3
    A = rs.standard_normal((d, d))
    m, tau, cov = rs.standard_normal(d), rs.uniform(0.5, 2, d), A @ A.T + np.eye(d)
    x_np = rs.standard_normal((4, d))
    x = backend.asarray(x_np)
    for q, q_np in ((DiagGaussian(backend.asarray(m), backend.asarray(tau)), DiagGaussian(m, tau)),
                    (FullGaussian(backend.asarray(m), backend.asarray(cov)), FullGaussian(m, cov))):
        lp, sc = q.log_prob(x), q.score(x)
        assert_backend(lp, backend, (4,))
        assert_backend(sc, backend, (4, d))
        assert_backend(q.cov, backend, (d, d))
        tol = tol_for(backend)
        np.testing.assert_allclose(to_numpy(lp), q_np.log_prob(x_np), rtol=tol, atol=tol)
        np.testing.assert_allclose(to_numpy(sc), q_np.score(x_np), rtol=tol, atol=tol)
        assert_backend(q.sample(HostRandom(0, backend), 7), backend, (7, d))


def test_family_validation_messages():
    with pytest.raises(ValueError, match="precision must be finite and > 0"):
        DiagGaussian(np.zeros(2), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="cov must be finite, symmetric and positive definite"):
        FullGaussian(np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="exactly one of cov and precision"):
        FullGaussian(np.zeros(2))


# ---------------------------------------------------------------- GSM
@settings(max_examples=40)
@given(st.integers(0, 10**6))
def test_gsm_single_update_matches_score_and_stays_spd(seed):
    """Sigma_1^{-1} (mu_1 - z) = v exactly and Sigma_1 > 0, for random SPD Sigma_0, mu_0, z and score v."""
    rs = np.random.default_rng(seed)
    d = 4
    A = rs.standard_normal((d, d))
    S0 = A @ A.T + 0.1 * np.eye(d)
    mu0, z, v = rs.standard_normal((3, d)) * np.array([[1.0], [2.0], [3.0]])
    mu1, S1 = gsm_increments(mu0, S0, z[None, :], v[None, :])
    S1 = 0.5 * (S1[0] + S1[0].T)
    assert np.min(np.linalg.eigvalsh(S1)) > 0
    np.testing.assert_allclose(np.linalg.solve(S1, mu1[0] - z), v, rtol=1e-8, atol=1e-8 * np.abs(v).max())


def test_gsm_and_bam_recover_gaussian_target():
    t, P = _dense_target()
    for method, opts in (("gsm", {}), ("bam", {"lam": 10.0})):
        r = fit_vi(method, t, "full_gaussian", n_iter=200, n_samples=8, seed=3, **opts)
        assert r.n_skipped == 0
        np.testing.assert_allclose(r.mean, t.mean, atol=1e-10)
        np.testing.assert_allclose(r.cov, t.cov, atol=1e-10)


def test_gsm_rejects_invalid_update():
    q = FullGaussian(np.zeros(2), np.eye(2))
    z = np.array([[0.1, 0.2], [0.3, -0.4]])
    s = np.array([[np.inf, 0.0], [0.0, 1.0]])
    with np.errstate(invalid="ignore"):
        q2, _, n = GSM().update(q, z, None, None, s, 0)
        assert n == 1 and q2 is q
        with pytest.raises(FloatingPointError, match="gsm update 0: covariance lost positive definiteness"):
            GSM(on_invalid="raise").update(q, z, None, None, s, 0)


# ---------------------------------------------------------------- BaM
@settings(max_examples=40)
@given(st.integers(0, 10**6), st.sampled_from([0.1, 1.0, 100.0]))
def test_bam_update_solves_quadratic_matrix_equation(seed, lam):
    rs = np.random.default_rng(seed)
    d, B = 4, 3
    A = rs.standard_normal((d, d))
    S0 = A @ A.T + 0.1 * np.eye(d)
    z, g = rs.standard_normal((B, d)), 3.0 * rs.standard_normal((B, d))
    _, S, U, V = bam_update(rs.standard_normal(d), S0, z, g, lam)
    np.testing.assert_allclose(S @ U @ S + S, V, atol=1e-10 * np.abs(V).max())
    assert np.min(np.linalg.eigvalsh(S)) > 0


def test_bam_large_lambda_one_step_recovery():
    """B >= d + 1 exact scores and lambda -> inf: one step recovers the target with error O(1/lambda)."""
    t, P = _dense_target()
    errs = []
    for lam in (1e4, 1e6):
        r = fit_vi("bam", t, "full_gaussian", n_iter=1, n_samples=6, seed=0, lam=lam)
        errs.append(np.abs(r.cov - t.cov).max())
    assert errs[1] < 2e-5 and errs[1] < errs[0] / 50


# ---------------------------------------------------------------- score_vi
def test_score_vi_full_gaussian_recovers_target_in_one_step(backend):
    t, P = _dense_target()
    r = fit_vi("score_vi", t, "full_gaussian", n_iter=1, n_samples=5, seed=4, backend=backend)
    assert_backend(r.family.mean, backend, (4,))
    assert_backend(r.family.cov, backend, (4, 4))
    tol = tol_for(backend, 1e-10, 2e-3)
    np.testing.assert_allclose(r.mean, t.mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.linalg.inv(r.cov), P, rtol=tol, atol=tol)


def test_score_vi_diag_tau_guard_skip_and_raise():
    """Repulsive 'scores' s = +theta give tau_hat = -1 < 0: coordinates keep their previous values, or raise."""
    q = DiagGaussian(np.array([0.5, -0.5]), np.array([2.0, 3.0]))
    theta = np.random.default_rng(0).standard_normal((50, 2))
    q2, n = diag_update(q, theta, theta.copy())
    assert n == 2
    np.testing.assert_array_equal(q2.precision, q.precision)
    np.testing.assert_array_equal(q2.mean, q.mean)
    with pytest.raises(FloatingPointError, match="precision tau <= 0"):
        diag_update(q, theta, theta.copy(), on_invalid="raise")
    # beta > 0 never produces tau <= 0
    q3, n3 = diag_update(q, theta, theta.copy(), beta=1.0)
    assert n3 == 0 and np.all(q3.precision > 0)


def test_score_vi_full_non_spd_skip_and_raise():
    q = FullGaussian(np.zeros(2), np.eye(2))
    theta = np.random.default_rng(0).standard_normal((50, 2))
    q2, n = full_update(q, theta, theta.copy())
    assert n == 1 and q2 is q
    with pytest.raises(FloatingPointError, match="not positive definite"):
        full_update(q, theta, theta.copy(), on_invalid="raise")


class _NaNTarget(Target):
    """N(0, I) whose score is NaN where x_0 > 1 (about 16 % of draws from N(0, 1))."""

    name = "nan_target"

    def __init__(self, d=2):
        self.dim = d

    def _logdensity_and_grad(self, xp, x):
        bad = x[:, 0:1] > 1.0
        g = xp.where(bad, xp.nan, -x)
        return -0.5 * xp.sum(x * x, axis=1), g


@pytest.mark.parametrize("method,family", [("score_vi", "diag_gaussian"), ("score_vi", "full_gaussian"),
                                           ("gsm", "full_gaussian"), ("bam", "full_gaussian"),
                                           ("advi", "diag_gaussian")])
def test_nonfinite_scores_are_skipped_or_raise(method, family):
    r = fit_vi(method, _NaNTarget(), family, n_iter=20, n_samples=4, seed=0)
    assert r.n_skipped > 0
    assert np.all(np.isfinite(r.mean)) and np.all(np.isfinite(r.cov))
    with pytest.raises(FloatingPointError, match="non-finite log-density or score"):
        fit_vi(method, _NaNTarget(), family, n_iter=20, n_samples=4, seed=0, on_invalid="raise")


@pytest.mark.parametrize("method,family,opts", [("score_vi", "diag_gaussian", {"beta": 1.0}),
                                                ("score_vi", "full_gaussian", {"beta": 1.0}),
                                                ("gsm", "full_gaussian", {}), ("bam", "full_gaussian", {}),
                                                ("advi", "full_gaussian", {}), ("advi", "diag_gaussian", {})])
def test_fit_vi_backends_agree_with_numpy(backend, method, family, opts):
    t, _ = _dense_target(3)
    kw = dict(n_iter=5, n_samples=6, seed=7, **opts)
    r = fit_vi(method, t, family, backend=backend, **kw)
    f32 = backend.dtype == backend.xp.float32   # float32 normals are a different stream: compare with NumPy f32
    ref = fit_vi(method, t, family, dtype="float32" if f32 else "float64", **kw)
    assert_backend(r.family.mean, backend, (3,))
    assert_backend(r.family.cov, backend, (3, 3))
    tol = tol_for(backend, 1e-9, 1e-4)
    np.testing.assert_allclose(r.mean, ref.mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(r.cov, ref.cov, rtol=tol, atol=tol)
    assert r.trace.shape == (5,) and r.sample(3).shape == (3, 3)


def test_fit_vi_argument_errors():
    t, _ = _dense_target(2)
    with pytest.raises(ValueError, match="method must be one of"):
        fit_vi("nuts", t, n_iter=1, n_samples=2, seed=0)
    with pytest.raises(ValueError, match="family must be one of"):
        fit_vi("score_vi", t, "flow", n_iter=1, n_samples=2, seed=0)
    with pytest.raises(ValueError, match="gsm needs family='full_gaussian'"):
        fit_vi("gsm", t, "diag_gaussian", n_iter=1, n_samples=2, seed=0)
    with pytest.raises(ValueError, match="beta must be a finite float >= 0"):
        fit_vi("score_vi", t, beta=-1.0, n_iter=1, n_samples=2, seed=0)
    with pytest.raises(ValueError, match="n_samples must be >= 2"):
        fit_vi("score_vi", t, n_iter=1, n_samples=1, seed=0)
    with pytest.raises(ValueError, match="on_invalid must be one of"):
        fit_vi("score_vi", t, n_iter=1, n_samples=2, seed=0, on_invalid="ignore")
    with pytest.raises(ValueError, match="n_inner must be"):
        fit_vi("score_vi", t, "full_gaussian", beta=1.0, n_iter=1, n_samples=3, seed=0, n_inner=0)
    with pytest.raises(ValueError, match=r"init_mean must have shape \(2,\)"):
        fit_vi("score_vi", t, n_iter=1, n_samples=2, seed=0, init_mean=[0.0])


def _J(m, P, theta, s, beta):
    dd = m - theta
    r = dd @ P - s
    return np.mean(np.sum(r * r, 1)) + beta * (0.5 * np.mean(np.sum((dd @ P) * dd, 1)) - 0.5 * np.linalg.slogdet(P)[1])


def test_score_vi_full_beta_inner_solver_minimises_J():
    """beta > 0, full family: the inner solver's J is not above an independent BFGS minimum over (m, L), and
    beta -> 0 approaches the closed-form beta = 0 update."""
    from scipy.optimize import minimize

    rs = np.random.default_rng(0)
    d, M, beta = 3, 12, 0.7
    theta = rs.standard_normal((M, d))
    s = -(theta - 0.5) @ np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 1.5]]) + 0.5 * rs.standard_normal((M, d))
    q = FullGaussian(np.zeros(d), np.eye(d))
    q1, n = full_update(q, theta, s, beta=beta, n_inner=200)
    assert n == 0
    il = np.tril_indices(d)

    def f(x):
        L = np.zeros((d, d))
        L[il] = x[d:]
        L[np.diag_indices(d)] = np.exp(np.diag(L))
        return _J(x[:d], L @ L.T, theta, s, beta)

    x0 = np.concatenate([np.zeros(d), np.eye(d)[il] * 0.0])
    best = minimize(f, x0, method="BFGS", options={"gtol": 1e-10}).fun
    assert _J(q1.mean, q1.precision, theta, s, beta) <= best + 1e-9
    q0, _ = full_update(q, theta, s, beta=0.0)
    qe, _ = full_update(q, theta, s, beta=1e-7, n_inner=500)
    np.testing.assert_allclose(qe.precision, q0.precision, atol=1e-5)


def test_score_vi_full_beta_population_fixed_point():
    """Population iteration (samples with exact mean and covariance of q_t, exact scores): converges to the
    target N(mu, P^-1) for beta in {0.1, 1, 10}."""
    P = np.array([[2.0, 0.6, -0.3, 0.2], [0.6, 1.5, 0.4, 0.0], [-0.3, 0.4, 1.0, 0.3], [0.2, 0.0, 0.3, 1.2]])
    mu = np.array([1.0, -1.0, 0.5, 0.0])
    E = np.concatenate([np.eye(4), -np.eye(4)]) * 2.0
    for beta in (0.1, 1.0, 10.0):
        q = FullGaussian(np.zeros(4), np.eye(4))
        for _ in range(300):
            theta = q.mean + E @ np.linalg.cholesky(q.cov).T
            q, n = full_update(q, theta, -(theta - mu) @ P, beta=beta)
            assert n == 0
        np.testing.assert_allclose(q.precision, P, atol=1e-9)
        np.testing.assert_allclose(q.mean, mu, atol=1e-9)


def test_fit_vi_callback_sees_every_iteration():
    t, _ = _dense_target(2)
    seen = []
    fit_vi("gsm", t, "full_gaussian", n_iter=4, n_samples=3, seed=0, callback=lambda it, q: seen.append((it, q.dim)))
    assert seen == [(0, 2), (1, 2), (2, 2), (3, 2)]
