"""BNP-SGLD (``"bnp_sgld"``): the BNP transform, Proposition 7, Theorem 4, frozen-statistics stationarity.

Deterministic tests compare the sampler's Algorithm-2 arithmetic with the explicit matrix ``P = U D``
of ``theory.bnp`` (built independently).  The statistical test (frozen statistics, full batch) is a
two-sided z-test at |z| < 4.5 on independent-chain averages (``tests/sgmcmc_helpers.py``): failure
probability < 2e-5 per z-score; 9 z-scores, so < 2e-4 in total.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import smile_ref
from smile_ref.backend import HostRandom, get_backend, to_numpy
from smile_ref.gradients import Exact, MiniBatch
from smile_ref.samplers import get
from smile_ref.samplers.bnp_sgld import bnp_noise, bnp_transform, glm_layers, sigma_tilde2
from smile_ref.targets import Gaussian, LinearRegression, LogisticRegression
import smile_ref.theory.bnp as th

from .conftest import assert_backend, tol_for
from .sgmcmc_helpers import Z_MAX, NaNForChain0, NaNForChain0AfterInit, chain_z, cov_z


def _data(N=50, seed=0, bias_col=0):
    """Off-centre, badly scaled inputs: means (3, -2), scales (0.5, 4); intercept column at ``bias_col``."""
    r = np.random.default_rng(seed)
    H = np.column_stack([3.0 + 0.5 * r.standard_normal(N), -2.0 + 4.0 * r.standard_normal(N)])
    X = np.insert(H, bias_col, 1.0, axis=1)
    y = X @ np.array([0.5, 1.0, -0.3]) + r.standard_normal(N)
    return X, y, H


# ----------------------------------------------------------------------------- theory (SymPy)
def test_theory_sympy_identities():
    """P P^T has the closed form of BNP Eq. 15 and P^T [1; h] = [1; (h - mu)/s] (SymPy, deterministic)."""
    assert th.derive_ppt(3) == th.sp.zeros(4, 4)
    assert th.standardised_inputs_identity(3) == th.sp.zeros(4, 1)


# ----------------------------------------------------------------------------- TC-21: the transform
@settings(max_examples=40)
@given(n_in=st.integers(1, 50), n_out=st.integers(1, 4), batch=st.integers(1, 64), seed=st.integers(0, 2**31),
       bias=st.booleans())
def test_transform_equals_q2_PPt(n_in, n_out, batch, seed, bias):
    """Alg. 2 steps 4-5 equal (1/q^2) P P^T g and the noise map equals (1/q) P, per neuron (float64, 1e-12)."""
    r = np.random.default_rng(seed)
    mu = r.uniform(-10, 10, n_in)
    s2 = (10.0 ** r.uniform(-1, 1, n_in)) ** 2
    q2 = max(n_in / batch, 1.0)
    st2 = sigma_tilde2(np, s2[None, :], 1e-2, 1e-4)
    assert np.allclose(st2[0], th.sigma_tilde2(s2), rtol=1e-14)
    P = th.P_matrix(mu, np.sqrt(st2[0]))
    if not bias:
        P = P[1:, 1:]
    gW, gb = r.standard_normal((1, n_out, n_in)), (r.standard_normal((1, n_out)) if bias else None)
    tW, tb = bnp_transform(np, gW, gb, mu[None, :], st2, q2)
    nW, nb = bnp_noise(np, gW, gb, mu[None, :], st2, math.sqrt(q2))
    for i in range(n_out):
        g = np.concatenate([[gb[0, i]], gW[0, i]]) if bias else gW[0, i]
        want, want_noise = P @ P.T @ g / q2, P @ g / math.sqrt(q2)
        got = np.concatenate([[tb[0, i]], tW[0, i]]) if bias else tW[0, i]
        got_noise = np.concatenate([[nb[0, i]], nW[0, i]]) if bias else nW[0, i]
        scale = np.abs(P).max() ** 2 * np.abs(g).max() * n_in
        assert np.allclose(got, want, rtol=0, atol=1e-12 * scale)
        assert np.allclose(got_noise, want_noise, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("bias_col", [0, 2])
def test_sampler_apply_matches_explicit_preconditioner(backend, bias_col):
    """The kernel's M g and noise map equal theory.layer_preconditioner / P on a GLM (intercept anywhere)."""
    X, y, H = _data(bias_col=bias_col)
    t = LinearRegression(X, y, prior_scale=3.0)
    k = get("bnp_sgld")(t, Exact(t), backend, step_size=1e-3, frozen_statistics=True)
    x0 = backend.asarray(np.zeros((4, 3)))
    s = k.init(x0, HostRandom(0, backend))
    assert_backend(s.mu, backend, (4, 2))
    w = [j for j in range(3) if j != bias_col]
    assert np.allclose(to_numpy(s.mu)[0], H.mean(0), rtol=tol_for(backend))
    r = np.random.default_rng(1)
    g, z = r.standard_normal((4, 3)), r.standard_normal((4, 3))
    drift, noise = k.apply(backend.asarray(g), backend.asarray(z), s.mu, s.sigma2)
    assert_backend(drift, backend, (4, 3))
    assert_backend(noise, backend, (4, 3))
    M = th.layer_preconditioner(3, w, bias_col, H.mean(0), H.var(0), q2=1.0)
    st = np.sqrt(th.sigma_tilde2(H.var(0)))
    P = np.zeros((3, 3))
    idx = [bias_col] + w
    P[np.ix_(idx, idx)] = th.P_matrix(H.mean(0), st)
    tol = tol_for(backend, 1e-12, 1e-4)
    assert np.allclose(to_numpy(drift), g @ M.T, rtol=tol, atol=tol * np.abs(M).max())
    assert np.allclose(to_numpy(noise), z @ P.T, rtol=tol, atol=tol * np.abs(P).max())
    assert np.allclose(P @ P.T, M)


# ----------------------------------------------------------------------------- Prop. 7
def test_prop7_bnp_step_is_gd_on_standardised_inputs():
    """One BNP gradient step on linear regression equals one GD step in the standardised coordinates z.

    ``w_hat = P z`` with ``P^T [1; h] = [1; (h - mu)/s]``; the z-gradient is computed from a second
    LinearRegression on the standardised design ``G = X P`` plus the chain rule for the prior
    (``-P^T P z / s_prior^2`` replaces the standardised target's ``-z / s_prior^2``).  Deterministic.
    """
    X, y, H = _data(N=40, seed=3)
    mu, sd = H.mean(0), H.std(0)
    t = LinearRegression(X, y, prior_scale=2.0)
    be = get_backend()
    k = get("bnp_sgld")(t, Exact(t), be, step_size=1e-3, frozen_statistics=[(mu, sd**2)], eps1=0.0, eps2=1e-300)
    P = th.P_matrix(mu, sd)
    G = X @ P
    assert np.allclose(G[:, 1:], (H - mu) / sd)
    ts = LinearRegression(G, y, prior_scale=2.0)
    w = np.array([[0.3, -0.7, 1.1]])
    z = np.linalg.solve(P, w[0])[None, :]
    alpha = 1e-3
    grad_z = to_numpy(ts.grad_logdensity(z))[0] + z[0] / 4.0 - P.T @ P @ z[0] / 4.0
    w_gd = P @ (z[0] + alpha * grad_z)
    s = k.init(be.asarray(w), HostRandom(0, be))
    drift, _ = k.apply(t.grad_logdensity(be.asarray(w)), be.asarray(np.zeros((1, 3))), s.mu, s.sigma2)
    w_bnp = w[0] + alpha * to_numpy(drift)[0]
    assert np.allclose(w_bnp, w_gd, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- TC-22: Theorem 4
@settings(max_examples=40)
@given(N=st.integers(8, 60), n=st.integers(1, 6), seed=st.integers(0, 2**31), shift=st.floats(0.0, 10.0),
       logscale=st.floats(-1.0, 1.0))
def test_theorem4_inequalities(N, n, seed, shift, logscale):
    """kappa(H_hat U) <= kappa(H_hat) and kappa(G_hat) <= sqrt(n+1) kappa(H_hat U D0) for random diagonal D0."""
    r = np.random.default_rng(seed)
    scales = 10.0 ** (logscale * r.uniform(-1, 1, n))
    H = shift * r.uniform(-1, 1, n) + scales * r.standard_normal((N, n))
    if np.linalg.matrix_rank(np.column_stack([np.ones(N), H])) < n + 1:
        return
    for _ in range(5):
        D0 = 10.0 ** r.uniform(-2, 2, n + 1)
        q = th.theorem4_quantities(H, D0)
        assert q["HU"] <= q["H"] * (1 + 1e-9)
        assert q["G"] <= math.sqrt(n + 1) * q["HUD0"] * (1 + 1e-9)


# ----------------------------------------------------------------------------- TC-23: frozen statistics
def test_stationary_cov_theory():
    """Lyapunov residual; h -> 0 limit A^{-1}; M = I reduces to theory.sgld (deterministic)."""
    import smile_ref.theory.sgld as sg

    X, y, H = _data()
    t = LinearRegression(X, y, prior_scale=3.0)
    A = t.posterior_precision
    M = th.layer_preconditioner(3, [1, 2], 0, H.mean(0), H.var(0), 1.0)
    h = 0.5 / np.max(np.abs(np.linalg.eigvals(M @ A)))
    S = th.stationary_cov(A, M, h)
    T = np.eye(3) - h * M @ A
    assert np.allclose(S, T @ S @ T.T + 2 * h * M, atol=1e-12 * np.abs(S).max())
    assert np.allclose(th.stationary_cov(A, M, 1e-7 * h), t.cov, rtol=1e-5, atol=1e-6 * np.abs(t.cov).max())
    h1 = 0.5 / np.linalg.eigvalsh(A)[-1]
    assert np.allclose(th.stationary_cov(A, np.eye(3), h1), sg.stationary_cov(A, h1), rtol=1e-10)
    with pytest.raises(ValueError, match="spectral radius"):
        th.stationary_cov(A, M, 5 * h)


def test_frozen_statistics_stationary_law():
    """Frozen BNP-SGLD, full-batch gradient, linear regression: E theta = posterior mean and
    Cov theta = solve_discrete_lyapunov(I - hMA, 2hM) (theory.bnp.stationary_cov), entrywise.

    512 chains x 2000 draws after 500 warm-up steps; 3 mean + 6 covariance z-scores at 4.5 (P < 2e-4).
    The prediction is far from the target covariance (h = 0.5 / rho(MA)), so the test can fail.
    """
    X, y, H = _data()
    t = LinearRegression(X, y, prior_scale=3.0)
    A = t.posterior_precision
    M = th.layer_preconditioner(3, [1, 2], 0, H.mean(0), H.var(0), 1.0)
    h = 0.5 / np.max(np.abs(np.linalg.eigvals(M @ A)))
    pred = th.stationary_cov(A, M, h)
    res = smile_ref.run_chains("bnp_sgld", t, n_chains=512, n_steps=2000, burn_in=500, seed=5, step_size=h,
                               frozen_statistics=True, initial_position=np.tile(t.mean, (512, 1)),
                               progress=False)
    x = res.samples
    zm = [chain_z(x[..., i], t.mean[i]) for i in range(3)]
    zc = cov_z(x, t.mean, pred)
    assert np.all(np.abs(zm) < Z_MAX), zm
    assert np.all(np.abs(zc) < Z_MAX), (zc, pred, t.cov)
    zt = cov_z(x, t.mean, t.cov)  # the bias is resolved: the target covariance is rejected
    assert np.max(np.abs(zt)) > Z_MAX


def test_condition_number_of_preconditioned_fisher():
    """Off-centre, badly scaled inputs: kappa(M^{1/2} F M^{1/2}) << kappa(F) for the empirical Fisher F.

    Linear regression's per-example gradients are x_i r_i, and at the least-squares solution the
    empirical Fisher is sum_i r_i^2 x_i x_i^T; both F and X^T X are checked (deterministic numbers,
    reported in docs/derivations/bnp-preconditioning.md).  Measured: kappa(F) = 1.79e6; preconditioned
    1.43 with eps1 = 0 and 110 with the default eps1 = 1e-2, which adds eps1 max_j sigma_j^2 = 1 to the
    smallest variance 0.01 (feature scales 0.1 and 10): eps1 caps the equalisable scale ratio at about
    1/sqrt(eps1) in sigma, 1/eps1 in kappa.
    """
    r = np.random.default_rng(0)
    N = 500
    H = np.column_stack([10.0 + 0.1 * r.standard_normal(N), -5.0 + 10.0 * r.standard_normal(N),
                         r.standard_normal(N)])
    X = np.column_stack([np.ones(N), H])
    y = X @ np.array([1.0, 2.0, 0.1, -1.0]) + r.standard_normal(N)
    w = np.linalg.lstsq(X, y, rcond=None)[0]
    F = (X * ((y - X @ w) ** 2)[:, None]).T @ X
    for eps1, bound in ((0.0, 2.0), (1e-2, 120.0)):
        M = th.layer_preconditioner(4, [1, 2, 3], 0, H.mean(0), H.var(0), 1.0, eps1=eps1)
        k_raw, k_pre = th.preconditioned_condition(F, M)
        k_raw2, k_pre2 = th.preconditioned_condition(X.T @ X, M)
        assert k_raw > 1e6 and k_pre < bound, (k_raw, k_pre)
        assert k_raw2 > 1e6 and k_pre2 < bound, (k_raw2, k_pre2)


# ----------------------------------------------------------------------------- running statistics
def test_running_statistics_update():
    """Alg. 2 steps 1-2 from mu = 0, sigma^2 = 1: a full-data batch gives mu = 0.01 mean, sigma^2 = 0.99 + 0.01 var;
    a batch of one uses sigma_H^2 = (h - mu_old)^2 (deterministic)."""
    X, y, H = _data(N=30)
    t = LinearRegression(X, y)
    be = get_backend()
    for b in (30, 1):
        Xb = X if b == 30 else X[:1]
        tb = LinearRegression(Xb, y[: Xb.shape[0]])
        k = get("bnp_sgld")(tb, MiniBatch(tb, b), be, step_size=1e-4)
        s = k.init(be.asarray(np.zeros((2, 3))), HostRandom(0, be))
        s, _ = k.step(s, HostRandom(1, be), False)
        Hb = Xb[:, 1:]
        var = Hb.var(0) if b > 1 else Hb[0] ** 2
        assert np.allclose(to_numpy(s.mu), 0.01 * Hb.mean(0), rtol=1e-12)
        assert np.allclose(to_numpy(s.sigma2), 0.99 + 0.01 * var, rtol=1e-12)
        assert k.q2 == [max(2 / b, 1.0)]
    assert len(glm_layers(t)) == 1


def test_guardrail_rejects_nonfinite():
    X, y, _ = _data()
    t = LinearRegression(X, y)
    be = get_backend()
    k = get("bnp_sgld")(t, NaNForChain0AfterInit(t), be, step_size=1e-3)
    s = k.init(be.asarray(np.ones((3, 3))), HostRandom(0, be))
    s, info = k.step(s, HostRandom(1, be), False)
    assert to_numpy(info["rejected"]).tolist() == [True, False, False]
    assert np.all(to_numpy(s.position)[0] == 1.0) and np.all(np.isfinite(to_numpy(s.position)))


def test_bad_input_messages():
    X, y, _ = _data()
    t = LinearRegression(X, y)
    be = get_backend()
    build = get("bnp_sgld")
    with pytest.raises(ValueError, match="bias_column"):
        build(t, Exact(t), be, step_size=0.1, bias_column=7)
    with pytest.raises(ValueError, match="frozen_statistics"):
        build(t, Exact(t), be, step_size=0.1, frozen_statistics=[(np.zeros(2), np.ones(2))] * 2)
    with pytest.raises(ValueError, match="rho"):
        build(t, Exact(t), be, step_size=0.1, rho=1.0)
    with pytest.raises(ValueError, match="step_size"):
        build(t, Exact(t), be)
    with pytest.raises(TypeError, match="bnp_layers"):
        build(Gaussian.isotropic(2), Exact(Gaussian.isotropic(2)), be, step_size=0.1)
    X2 = np.column_stack([np.ones(5), np.ones(5), np.arange(5.0)])
    with pytest.raises(ValueError, match="several all-ones"):
        build(LinearRegression(X2, np.zeros(5)), Exact(t), be, step_size=0.1)
    with pytest.raises(ValueError, match="n_in >= 1"):
        build(LinearRegression(np.ones((5, 1)), np.zeros(5)), Exact(t), be, step_size=0.1)


def test_target_protocol_and_layer_without_bias(backend):
    """A target exposing ``bnp_layers()`` (inputs only through ``inputs(x, None)``) gets frozen data statistics
    on its backend; a GLM without an intercept column gets ``M = diag(1/(q^2 tilde sigma^2))`` (deterministic)."""
    X, y, H = _data()

    class Layered(LinearRegression):
        def bnp_layers(self):
            return [glm_layers(self)[0]._replace(host_inputs=None)]

    t = Layered(X, y)
    k = get("bnp_sgld")(t, Exact(t), backend, step_size=1e-3, frozen_statistics=True)
    s = k.init(backend.asarray(np.zeros((3, 3))), HostRandom(0, backend))
    assert_backend(s.sigma2, backend, (3, 2))
    tol = tol_for(backend, 1e-12, 1e-5)
    assert np.allclose(to_numpy(s.mu), np.tile(H.mean(0), (3, 1)), rtol=tol)
    assert np.allclose(to_numpy(s.sigma2), np.tile(H.var(0), (3, 1)), rtol=tol)
    t2 = LinearRegression(H, y)
    k2 = get("bnp_sgld")(t2, MiniBatch(t2, 1), backend, step_size=1e-3, frozen_statistics=True)
    assert k2.q2 == [2.0]
    s2 = k2.init(backend.asarray(np.zeros((3, 2))), HostRandom(0, backend))
    g = np.random.default_rng(2).standard_normal((3, 2))
    drift, noise = k2.apply(backend.asarray(g), backend.asarray(g), s2.mu, s2.sigma2)
    st2 = th.sigma_tilde2(H.var(0))
    assert np.allclose(to_numpy(drift), g / (2.0 * st2), rtol=tol_for(backend, 1e-12, 1e-5))
    assert np.allclose(to_numpy(noise), g / np.sqrt(2.0 * st2), rtol=tol_for(backend, 1e-12, 1e-5))


def test_checkpoint_resume_bit_identical(tmp_path):
    """Running statistics (mu, sigma^2 per chain) survive checkpoint/resume bit-identically (MiniBatch behind a
    wrapper: the batch indices still reach the statistics)."""
    from .sgmcmc_helpers import Crash, CrashAfter

    X, y, _ = _data()
    t = LinearRegression(X, y)
    kw = dict(n_chains=3, n_steps=12, burn_in=3, thinning=2, seed=4, step_size=1e-3, progress=False)
    full = smile_ref.run_chains("bnp_sgld", t, gradient=MiniBatch(t, 7), **kw)
    path = tmp_path / "ck.npz"
    with pytest.raises(Crash):
        smile_ref.run_chains("bnp_sgld", t, gradient=CrashAfter(MiniBatch(t, 7), 10), checkpoint=path,
                             checkpoint_every=4, **kw)
    resumed = smile_ref.run_chains("bnp_sgld", t, gradient=MiniBatch(t, 7), checkpoint=path, checkpoint_every=4,
                                   resume=True, **kw)
    np.testing.assert_array_equal(resumed.samples, full.samples)
    np.testing.assert_array_equal(resumed.state.mu, full.state.mu)
    assert get("bnp_sgld")(t, CrashAfter(MiniBatch(t, 7), 1), get_backend(), step_size=1e-3).batch == 7
