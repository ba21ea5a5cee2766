"""Tests of smile_ref.gradients: MiniBatch, AdditiveNoise, noise_covariance, theory/minibatch_covariance.

Statistical tests use fixed seeds; each states its failure probability for a
fresh seed (normal approximation of the sampling distribution, two-sided, with
a Bonferroni union bound over the compared quantities).  Expected values come
from NumPy references written in this file or from ``theory/``, never from the
code under test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats as st
from hypothesis import given, settings
from hypothesis import strategies as st_h

from smile_ref.backend import HostRandom, device_of, get_backend, to_numpy
from smile_ref.gradients import AdditiveNoise, Exact, MiniBatch, exp_spatial, noise_covariance
from smile_ref.targets.base import DataTarget, Target
from tests.conftest import assert_backend, tol_for
from smile_ref.theory import minibatch_covariance as mbc
from tests.sgmcmc_helpers import replica_z

Z = 5.0  # two-sided 5-sigma: P(|N(0,1)| > 5) = 5.7e-7


# ----------------------------------------------------------------------------- test targets
class LinGauss(DataTarget):
    """``y_i = a_i . x + e_i``, ``e_i ~ N(0, s^2)``, prior ``N(0, t^2 I)`` (reference formulas in NumPy)."""

    name = "lin-gauss-test"

    def __init__(self, n_data=23, dim=2, seed=0, noise_sd=0.5, prior_sd=2.0):
        super().__init__()
        r = np.random.default_rng(seed)
        self.dim = dim
        self.X = r.standard_normal((n_data, dim))
        self.y = self.X @ r.standard_normal(dim) + noise_sd * r.standard_normal(n_data)
        self.s2, self.t2 = float(noise_sd**2), float(prior_sd**2)

    def _prior(self, xp, x):
        return xp.sum(x * x, axis=1) * (-0.5 / self.t2), x * (-1.0 / self.t2)

    def _loglik_terms(self, xp, x, Xb, yb):
        r = yb - xp.sum(Xb * x[:, None, :], axis=2)
        return r * r * (-0.5 / self.s2), (r * (1.0 / self.s2))[:, :, None] * Xb

    # NumPy references
    def ref_per_example(self, x):
        r = self.y[None, :] - x @ self.X.T  # (n, N)
        return r[:, :, None] * self.X[None, :, :] / self.s2

    def ref_grad(self, x):
        return -x / self.t2 + self.ref_per_example(x).sum(axis=1)


class Gauss(Target):
    """``N(0, diag(v))`` with NumPy reference formulas."""

    name = "gauss-test"

    def __init__(self, v):
        self.v = np.asarray(v, dtype=float)
        self.dim = self.v.size

    def _logdensity_and_grad(self, xp, x):
        iv = xp.asarray(1.0 / self.v, dtype=x.dtype, device=device_of(x))
        return -0.5 * xp.sum(x * x * iv, axis=1), -x * iv


def _x(backend, n, d, seed=1, scale=0.5):
    return backend.asarray(scale * np.random.default_rng(seed).standard_normal((n, d)))


def _cov_z(samples, pred):
    """z-scores of the sample covariance entries (upper triangle) vs ``pred``; SE from fourth moments."""
    s = samples - samples.mean(axis=0)
    d = s.shape[1]
    zs = []
    for j in range(d):
        for k in range(j, d):
            w = s[:, j] * s[:, k]
            zs.append(replica_z(w, pred[j, k]))
    return np.array(zs)


# ----------------------------------------------------------------------------- exports
def test_public_names():
    import smile_ref.gradients as g

    for name in ("Exact", "MiniBatch", "AdditiveNoise", "exp_spatial", "noise_covariance"):
        assert name in g.__all__ and hasattr(g, name)


# ----------------------------------------------------------------------------- MiniBatch
@pytest.mark.parametrize("replace", [False, True])
def test_minibatch_shapes_state_and_backend(backend, replace):
    t = LinGauss()
    est = MiniBatch(t, 5, replace=replace)
    assert est.cost == 5 / 23 and est.stochastic
    rng = HostRandom(3, backend)
    x = _x(backend, 4, 2)
    state = est.init(4, rng)
    assert all(isinstance(v, (int, np.ndarray)) for v in state.values())
    idx, state2 = est.draw(state, rng, x)
    assert idx.dtype == backend.xp.int64 and tuple(idx.shape) == (4, 5)
    assert str(idx.device) == str(backend.device)
    assert state2 is not state and state["n_draws"] == 0 and state2["n_draws"] == 1
    lp, g = est.evaluate(x, idx)
    assert_backend(lp, backend, (4,))
    assert_backend(g, backend, (4, 2))
    lp2, g2, _ = est(x, HostRandom(3, backend))  # __call__ = init + draw + evaluate, same seed
    assert np.array_equal(to_numpy(g2), to_numpy(g))
    assert_backend(est.noise_covariance(x), backend, (4, 2, 2))
    assert_backend(est.noise_covariance(x, kind="diag"), backend, (4, 2))


@pytest.mark.parametrize("n_data", [20, 23])
def test_minibatch_epochs_visit_each_index_once(n_data):
    """Deterministic: within an epoch every chain sees distinct indices; with b | N exactly all of them."""
    t = LinGauss(n_data=n_data)
    est = MiniBatch(t, 5)
    be = get_backend("numpy")
    rng = HostRandom(0, be)
    x = _x(be, 6, 2)
    state = est.init(6, rng)
    per_epoch = n_data // 5
    for epoch in range(3):
        seen = []
        for _ in range(per_epoch):
            idx, state = est.draw(state, rng, x)
            assert state["epoch"] == epoch
            seen.append(to_numpy(idx))
        seen = np.concatenate(seen, axis=1)  # (6, per_epoch * 5)
        for row in seen:
            assert len(np.unique(row)) == row.size == per_epoch * 5
            if n_data % 5 == 0:
                assert np.array_equal(np.sort(row), np.arange(n_data))
    idx, state = est.draw(state, rng, x)
    assert state["epoch"] == 3 and state["pos"] == 5


@settings(max_examples=30)
@given(N=st_h.integers(2, 40), data=st_h.data())
def test_minibatch_epoch_property(N, data):
    """Any N, b <= N, n_chains: every batch has b distinct in-range indices, each epoch uses
    floor(N/b) batches of disjoint indices, the epoch counter advances exactly then."""
    b = data.draw(st_h.integers(1, N))
    n = data.draw(st_h.integers(1, 4))
    t = LinGauss(n_data=N)
    est = MiniBatch(t, b)
    be = get_backend("numpy")
    rng = HostRandom(N * 100 + b, be)
    x = np.zeros((n, 2))
    state = est.init(n, rng)
    k = N // b
    for epoch in range(2):
        used = np.zeros((n, N), dtype=int)
        for _ in range(k):
            idx, state = est.draw(state, rng, x)
            idx = to_numpy(idx)
            assert idx.shape == (n, b) and state["epoch"] == epoch
            assert idx.min() >= 0 and idx.max() < N
            for c in range(n):
                used[c, idx[c]] += 1
        assert used.max() == 1 and np.all(used.sum(axis=1) == k * b)


def test_minibatch_epoch_average_is_exact_gradient(backend):
    """Deterministic: with b | N the average of one epoch's estimates is the full-data gradient."""
    t = LinGauss(n_data=20)
    est = MiniBatch(t, 5)
    rng = HostRandom(5, backend)
    x = _x(backend, 3, 2)
    state = est.init(3, rng)
    gs = []
    for _ in range(4):
        idx, state = est.draw(state, rng, x)
        gs.append(to_numpy(est.evaluate(x, idx)[1]).astype(float))
    ref = t.ref_grad(to_numpy(x).astype(float))
    np.testing.assert_allclose(np.mean(gs, axis=0), ref, rtol=tol_for(backend, 1e-12, 1e-5), atol=tol_for(backend, 1e-10, 1e-4) * np.abs(ref).max())
    ex = Exact(t).evaluate(x, None)[1]
    np.testing.assert_allclose(to_numpy(ex), ref, rtol=tol_for(backend), atol=tol_for(backend) * np.abs(ref).max())


@pytest.mark.parametrize("replace", [False, True])
def test_minibatch_resume_is_bit_identical(replace, tmp_path):
    t = LinGauss()
    est = MiniBatch(t, 5, replace=replace)
    be = get_backend("numpy")
    rng = HostRandom(11, be)
    x = _x(be, 3, 2)
    state = est.init(3, rng)
    for _ in range(3):
        _, state = est.draw(state, rng, x)
    np.savez(tmp_path / "s.npz", **state)
    saved_rng = rng.get_state()
    ref = [to_numpy(est.draw(state, rng, x)[0]) for _ in range(1)]
    loaded = {k: (v if v.ndim else int(v)) for k, v in np.load(tmp_path / "s.npz").items()}
    rng2 = HostRandom(0, be)
    rng2.set_state(saved_rng)
    assert np.array_equal(to_numpy(est.draw(loaded, rng2, x)[0]), ref[0])


@pytest.mark.parametrize("replace", [False, True])
def test_minibatch_unbiased(backend, replace):
    """Mean over 4000 independent chains of each of 6 consecutive draws (positions 0-3 of an epoch,
    the reshuffle, and after) vs the exact gradient.  z-test at 5 sigma, Bonferroni over
    6 draws x 2 coordinates: failure probability < 12 * 5.7e-7 < 1e-5."""
    t = LinGauss(n_data=23)
    est = MiniBatch(t, 5, replace=replace)
    M = 4000
    rng = HostRandom(2024, backend)
    x0 = np.array([[0.3, -0.7]])
    x = backend.asarray(np.repeat(x0, M, axis=0))
    ref = t.ref_grad(x0)[0]
    state = est.init(M, rng)
    for _ in range(6):
        idx, state = est.draw(state, rng, x)
        g = to_numpy(est.evaluate(x, idx)[1]).astype(float)
        z = (g.mean(axis=0) - ref) / (g.std(axis=0, ddof=1) / math.sqrt(M))
        assert np.all(np.abs(z) < Z), z


@pytest.mark.parametrize("replace", [False, True])
def test_minibatch_covariance_matches_theory(backend, replace):
    """Sample covariance of g_hat over 20000 independent chains vs (N^2/b)(N-b)/(N-1) Sigma_pop
    (without) or (N^2/b) Sigma_pop (with replacement), Sigma_pop from NumPy per-example gradients.
    SE per entry from the sample fourth moments; 5 sigma, Bonferroni over 3 entries:
    failure probability < 2e-6.  Power: the other formula (18 % off) is rejected at > 5 sigma."""
    N, b, M = 23, 5, 20000
    t = LinGauss(n_data=N)
    est = MiniBatch(t, b, replace=replace)
    rng = HostRandom(77, backend)
    x0 = np.array([[0.3, -0.7]])
    x = backend.asarray(np.repeat(x0, M, axis=0))
    idx, _ = est.draw(est.init(M, rng), rng, x)
    g = to_numpy(est.evaluate(x, idx)[1]).astype(float)
    pe = t.ref_per_example(x0)[0]
    sigma_pop = np.cov(pe.T, ddof=0)
    pred = mbc.covariance_factor_numeric(N, b, replace) * sigma_pop
    assert np.all(np.abs(_cov_z(g, pred)) < Z)
    wrong = mbc.covariance_factor_numeric(N, b, not replace) * sigma_pop
    zw = _cov_z(g, wrong)
    assert abs(zw[0]) > Z and abs(zw[2]) > Z
    # the exact covariance method agrees with the same closed form (deterministic)
    exact = to_numpy(est.noise_covariance(backend.asarray(x0))).astype(float)[0]
    np.testing.assert_allclose(exact, pred, rtol=tol_for(backend, 1e-10, 1e-4))


def _glm_data(kind, N=31, p=3, seed=6):
    r = np.random.default_rng(seed)
    X = r.standard_normal((N, p))
    w = r.standard_normal(p)
    if kind == "linear":
        return X, X @ w + 0.7 * r.standard_normal(N)
    return X, (r.uniform(size=N) < 1 / (1 + np.exp(-X @ w))).astype(float)


def test_minibatch_linear_regression_unbiased(backend):
    """smile_ref.targets.LinearRegression, N=31, b=4, without replacement: mean over 5000 chains of
    logp_hat and g_hat (first and second draw) vs the NumPy full-data log-density and the conjugate
    gradient -P (w - mu).  5 sigma, Bonferroni over 2 draws x 4 quantities: failure prob < 5e-6."""
    from smile_ref.targets import LinearRegression

    X, y = _glm_data("linear")
    t = LinearRegression(X, y, prior_scale=1.5, noise_scale=0.7)
    est = MiniBatch(t, 4)
    M = 5000
    w0 = np.array([[0.2, -0.4, 0.9]])
    x = backend.asarray(np.repeat(w0, M, axis=0))
    lp_ref = (-0.5 * (w0**2).sum() / 1.5**2 - 1.5 * math.log(2 * math.pi * 1.5**2)
              + (-0.5 * (y - X @ w0[0]) ** 2 / 0.49 - 0.5 * math.log(2 * math.pi * 0.49)).sum())
    g_ref = -t.posterior_precision @ (w0[0] - t.mean)
    rng = HostRandom(31, backend)
    state = est.init(M, rng)
    for _ in range(2):
        idx, state = est.draw(state, rng, x)
        lp, g = est.evaluate(x, idx)
        vals = np.column_stack([to_numpy(lp), to_numpy(g)]).astype(float)
        ref = np.concatenate([[lp_ref], g_ref])
        z = (vals.mean(axis=0) - ref) / (vals.std(axis=0, ddof=1) / math.sqrt(M))
        assert np.all(np.abs(z) < Z), z


@pytest.mark.parametrize("kind", ["linear", "logistic"])
@pytest.mark.parametrize("replace", [False, True])
def test_minibatch_noise_covariance_glm(backend, kind, replace):
    """Deterministic: MiniBatch.noise_covariance on the GLM targets vs a NumPy reference from the
    hand-written per-example gradients l'(z_i) x_i and the theory factor."""
    from smile_ref.targets import LinearRegression, LogisticRegression

    X, y = _glm_data(kind)
    t = LinearRegression(X, y, noise_scale=0.7) if kind == "linear" else LogisticRegression(X, y)
    w = np.random.default_rng(2).standard_normal((2, 3)) * 0.5
    z = w @ X.T
    c = (y - z) / 0.49 if kind == "linear" else y - 1 / (1 + np.exp(-z))
    pe = c[:, :, None] * X[None]  # (2, N, p)
    fac = mbc.covariance_factor_numeric(31, 4, replace)
    ref = np.stack([fac * np.cov(pe[i].T, ddof=0) for i in range(2)])
    out = MiniBatch(t, 4, replace=replace).noise_covariance(backend.asarray(w))
    assert_backend(out, backend, (2, 3, 3))
    np.testing.assert_allclose(to_numpy(out), ref, rtol=tol_for(backend, 1e-9, 1e-3), atol=tol_for(backend, 1e-9, 1e-3) * np.abs(ref).max())


# ----------------------------------------------------------------------------- noise_covariance
@pytest.mark.parametrize("kind", ["diag", "dense"])
def test_noise_covariance_vs_numpy_cov(backend, kind):
    r = np.random.default_rng(4)
    G = r.standard_normal((3, 7, 4)) * np.array([1.0, 2.0, 0.5, 3.0])
    Gb = backend.asarray(G)
    ref = np.stack([np.cov(G[i].T) for i in range(3)])
    if kind == "diag":
        ref = np.stack([np.diag(c) for c in ref])
    out = noise_covariance(Gb, kind=kind)
    assert_backend(out, backend, ref.shape)
    np.testing.assert_allclose(to_numpy(out), ref, rtol=tol_for(backend), atol=tol_for(backend) * 10)
    for replace in (False, True):
        fac = float(mbc.sample_covariance_factor(replace).subs({mbc.N: 50, mbc.b: 5}))
        out = noise_covariance(Gb, kind=kind, batch_size=5, n_data=50, replace=replace)
        assert_backend(out, backend, ref.shape)
        np.testing.assert_allclose(to_numpy(out), fac * ref, rtol=tol_for(backend), atol=tol_for(backend) * 10 * fac)


# ----------------------------------------------------------------------------- AdditiveNoise
DISTS = [("gaussian", {}), ("laplace", {}), ("student_t", {"df": 10.0}), ("lognormal", {"sigma": 0.5})]
COV = np.array([[2.0, 0.6, -0.3], [0.6, 1.0, 0.2], [-0.3, 0.2, 0.5]])


@pytest.mark.parametrize("dist,kw", DISTS, ids=[d for d, _ in DISTS])
def test_additive_noise_moments(backend, dist, kw):
    """xi over 40000 chains: mean 0 and covariance COV.  z-tests at 5 sigma (SE of the covariance
    from the sample fourth moments; Student-t df=10 and log-normal sigma=0.5 have finite 8th moments),
    Bonferroni over 3 means + 6 covariance entries: failure probability < 9 * 5.7e-7 < 1e-5
    (normal approximation)."""
    M = 40000
    est = AdditiveNoise(Gauss([1.0, 1.0, 1.0]), COV, distribution=dist, **kw)
    rng = HostRandom(99, backend)
    x = backend.asarray(np.zeros((M, 3)))
    xi, _ = est.draw({}, rng, x)
    assert_backend(xi, backend, (M, 3))
    xi = to_numpy(xi).astype(float)
    zm = xi.mean(axis=0) / (xi.std(axis=0, ddof=1) / math.sqrt(M))
    assert np.all(np.abs(zm) < Z), zm
    assert np.all(np.abs(_cov_z(xi, COV)) < Z)


@pytest.mark.parametrize("dist,kw,ref", [
    ("laplace", {}, st.laplace(scale=1 / math.sqrt(2))),
    ("student_t", {"df": 5.0}, st.t(5.0, scale=math.sqrt(3 / 5))),
    ("lognormal", {"sigma": 0.7}, st.lognorm(0.7, loc=-math.exp(0.245) / math.sqrt(math.expm1(0.49) * math.exp(0.49)),
                                             scale=1 / math.sqrt(math.expm1(0.49) * math.exp(0.49)))),
])
def test_additive_noise_marginal_law(dist, kw, ref):
    """Standardised coordinates (cov = I) follow the named law: KS test, p > 1e-4 (failure prob 1e-4);
    power: the same sample is rejected as Gaussian (p < 1e-4)."""
    be = get_backend("numpy")
    est = AdditiveNoise(Gauss([1.0] * 2), 1.0, distribution=dist, **kw)
    xi, _ = est.draw({}, HostRandom(5, be), be.asarray(np.zeros((20000, 2))))
    z = to_numpy(xi)[:, 0]
    assert st.kstest(z, ref.cdf).pvalue > 1e-4
    assert st.kstest(z, "norm").pvalue < 1e-4


def test_additive_noise_evaluate_and_spatial(backend):
    """Deterministic relations of evaluate for given xi, and the covariance of each spatial mode."""
    v = np.array([1.0, 4.0, 0.25])
    t = Gauss(v)
    x_np = np.random.default_rng(0).standard_normal((5, 3))
    xi_np = np.random.default_rng(1).standard_normal((5, 3))
    x, xi = backend.asarray(x_np), backend.asarray(xi_np)
    lp0, g0 = -0.5 * (x_np**2 / v).sum(1), -x_np / v
    tol = dict(rtol=tol_for(backend), atol=tol_for(backend))
    lp, g = AdditiveNoise(t, COV).evaluate(x, xi)
    assert_backend(lp, backend, (5,))
    assert_backend(g, backend, (5, 3))
    np.testing.assert_allclose(to_numpy(lp), lp0 + (xi_np * x_np).sum(1), **tol)
    np.testing.assert_allclose(to_numpy(g), g0 + xi_np, **tol)
    f = np.exp(-x_np[:, 2] / 6.5)
    for mode in ("scale", "potential"):
        est = AdditiveNoise(t, COV, spatial=exp_spatial(2, 6.5), spatial_mode=mode)
        lp, g = est.evaluate(x, xi)
        assert_backend(g, backend, (5, 3))
        np.testing.assert_allclose(to_numpy(lp), lp0 + f * (xi_np * x_np).sum(1), **tol)
        extra = np.zeros((5, 3))
        if mode == "potential":
            extra[:, 2] = -(xi_np * x_np).sum(1) * f / 6.5
        np.testing.assert_allclose(to_numpy(g), g0 + f[:, None] * xi_np + extra, **tol)
        A = f[:, None, None] * np.eye(3)
        if mode == "potential":
            A = A + np.einsum("i,nj->nij", np.eye(3)[2], x_np) * (-f / 6.5)[:, None, None]
        C = to_numpy(est.noise_covariance(x))
        assert_backend(est.noise_covariance(x), backend, (5, 3, 3))
        np.testing.assert_allclose(C, A @ COV @ np.transpose(A, (0, 2, 1)), rtol=tol_for(backend), atol=tol_for(backend))


def test_potential_mode_gradient_is_gradient_of_logp_hat():
    """Central finite differences of logp_hat (xi fixed) reproduce g_hat only in 'potential' mode."""
    be = get_backend("numpy")
    t = Gauss([1.0, 2.0, 3.0])
    x_np = np.array([[0.4, -1.2, 0.8]])
    xi = be.asarray(np.array([[1.5, -0.5, 2.0]]))
    h = 1e-6
    for mode, should_match in (("potential", True), ("scale", False)):
        est = AdditiveNoise(t, COV, spatial=exp_spatial(2, 1.414), spatial_mode=mode)
        fd = np.array([(est.evaluate(x_np + h * e, xi)[0] - est.evaluate(x_np - h * e, xi)[0])[0] / (2 * h) for e in np.eye(3)])
        g = est.evaluate(x_np, xi)[1][0]
        assert np.allclose(fd, g, rtol=1e-6, atol=1e-6) == should_match


@pytest.mark.parametrize("mode", ["scale", "potential"])
def test_spatial_noise_covariance_statistical(mode):
    """g_hat - grad log pi over 40000 draws at one x vs f^2 COV ('scale') or A COV A^T ('potential'),
    Student-t(df=10) coordinates.  5 sigma, Bonferroni over 6 entries: failure prob < 4e-6."""
    be = get_backend("numpy")
    t = Gauss([1.0, 1.0, 1.0])
    est = AdditiveNoise(t, COV, distribution="student_t", df=10.0, spatial=exp_spatial(1, 2.0), spatial_mode=mode)
    M = 40000
    x = np.repeat(np.array([[0.7, -1.1, 1.3]]), M, axis=0)
    xi, _ = est.draw({}, HostRandom(8, be), x)
    noise = est.evaluate(x, xi)[1] - t.grad_logdensity(x)
    pred = est.noise_covariance(x[:1])[0]
    f = math.exp(1.1 / 2.0)
    if mode == "scale":
        np.testing.assert_allclose(pred, f * f * COV, rtol=1e-12)
    assert np.all(np.abs(_cov_z(noise, pred)) < Z)


# ----------------------------------------------------------------------------- bad input
def test_bad_input_messages():
    t = LinGauss()
    with pytest.raises(TypeError, match="DataTarget"):
        MiniBatch(Gauss([1.0]), 2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        MiniBatch(t, 0)
    with pytest.raises(ValueError, match=r"batch_size must be <= n_data=23"):
        MiniBatch(t, 24)
    MiniBatch(t, 24, replace=True)  # allowed with replacement
    with pytest.raises(TypeError, match="replace must be a bool"):
        MiniBatch(t, 2, replace="yes")
    be = get_backend("numpy")
    est = MiniBatch(t, 5)
    state = est.init(3, HostRandom(0, be))
    with pytest.raises(ValueError, match=r"state\['perm'\] has shape"):
        est.draw(state, HostRandom(0, be), np.zeros((4, 2)))
    g = Gauss([1.0, 1.0])
    with pytest.raises(ValueError, match=r"cov must have shape \(2, 2\)"):
        AdditiveNoise(g, np.eye(3))
    with pytest.raises(ValueError, match="positive definite"):
        AdditiveNoise(g, np.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="symmetric"):
        AdditiveNoise(g, np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="cov must be finite and > 0"):
        AdditiveNoise(g, -1.0)
    with pytest.raises(ValueError, match="positive entries"):
        AdditiveNoise(g, [1.0, 0.0])
    with pytest.raises(ValueError, match=r"cov must have shape \(2,\)"):
        AdditiveNoise(g, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="cov must be a scalar"):
        AdditiveNoise(g, np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="distribution must be one of"):
        AdditiveNoise(g, 1.0, distribution="cauchy")
    with pytest.raises(ValueError, match="df is required"):
        AdditiveNoise(g, 1.0, distribution="student_t")
    with pytest.raises(ValueError, match="df must be > 2"):
        AdditiveNoise(g, 1.0, distribution="student_t", df=2.0)
    with pytest.raises(ValueError, match="df is only used"):
        AdditiveNoise(g, 1.0, df=3.0)
    with pytest.raises(ValueError, match="sigma is required"):
        AdditiveNoise(g, 1.0, distribution="lognormal")
    with pytest.raises(ValueError, match="sigma must be finite and > 0"):
        AdditiveNoise(g, 1.0, distribution="lognormal", sigma=-0.1)
    with pytest.raises(ValueError, match="sigma is only used"):
        AdditiveNoise(g, 1.0, sigma=0.3)
    with pytest.raises(TypeError, match="spatial must be None or a callable"):
        AdditiveNoise(g, 1.0, spatial=3.0)
    with pytest.raises(ValueError, match="spatial.coord must be < dim=2"):
        AdditiveNoise(g, 1.0, spatial=exp_spatial(2, 6.5))
    with pytest.raises(ValueError, match="spatial_mode must be one of"):
        AdditiveNoise(g, 1.0, spatial_mode="both")
    with pytest.raises(TypeError, match="needs spatial.grad"):
        AdditiveNoise(g, 1.0, spatial=lambda xp, x: xp.ones(x.shape[0]), spatial_mode="potential")
    with pytest.raises(ValueError, match="length must be finite and > 0"):
        exp_spatial(0, 0.0)
    with pytest.raises(ValueError, match=r"spatial\(xp, x\) must return shape \(4,\)"):
        AdditiveNoise(g, 1.0, spatial=lambda xp, x: x).evaluate(np.zeros((4, 2)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"per_example_grads must have shape \(n, m, d\)"):
        noise_covariance(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="at least 2 examples"):
        noise_covariance(np.zeros((3, 1, 2)))
    with pytest.raises(ValueError, match="must be given together"):
        noise_covariance(np.zeros((3, 4, 2)), batch_size=2)
    with pytest.raises(ValueError, match="kind must be one of"):
        noise_covariance(np.zeros((3, 4, 2)), kind="full")
    with pytest.raises(ValueError, match="expected m <= n_data"):
        noise_covariance(np.zeros((3, 9, 2)), batch_size=2, n_data=8)


# ----------------------------------------------------------------------------- theory
def test_theory_general_derivation_matches_closed_form():
    import sympy as sp

    for replace in (False, True):
        assert sp.simplify(mbc.derive_factor(replace) - mbc.covariance_factor(replace)) == 0
    assert sp.simplify(mbc.sample_covariance_factor(False) - mbc.N * (mbc.N - mbc.b) / mbc.b) == 0


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("n,k", [(2, 1), (4, 2), (5, 3), (6, 6), (7, 3)])
def test_theory_enumeration(replace, n, k):
    assert mbc.check_enumeration(n, k, replace)


def test_theory_enumeration_rejects_wrong_factor():
    import sympy as sp

    _, cov, sigma = mbc.enumerate_covariance(5, 2, False)
    wrong = mbc.covariance_factor(True).subs({mbc.N: 5, mbc.b: 2})
    assert sp.expand(cov - wrong * sigma) != 0


# ----------------------------------------------------------------------------- log-density-only evaluation
def _ld_targets():
    from smile_ref import targets

    rng = np.random.default_rng(3)
    X = rng.standard_normal((23, 3))
    A = rng.standard_normal((4, 4))
    return {
        "gauss_diag": targets.Gaussian.diagonal(np.array([0.5, 1.0, 4.0]), mean=np.array([0.1, -0.2, 0.3])),
        "gauss_diag_zero_mean": targets.Gaussian.diagonal(np.array([0.5, 1.0, 4.0])),
        "gauss_dense": targets.Gaussian(np.array([0.0, 1.0, -1.0, 0.5]), A @ A.T + np.eye(4)),
        "linreg": targets.LinearRegression(X, X @ np.array([1.0, -0.5, 0.2]) + rng.standard_normal(23)),
        "logreg": targets.LogisticRegression(X, (X[:, 0] > 0).astype(float)),
        "mlp_reg": targets.MLP(X, rng.standard_normal(23), hidden=(5, 4), activation="tanh"),
        "mlp_cls": targets.MLP(X, rng.integers(0, 3, 23), hidden=(4,), task="classification", n_classes=3),
        "datatarget": LinGauss(),
        "plain_target": Gauss([1.0, 2.0, 3.0]),
    }


def _ld_estimators(t):
    out = {"exact": Exact(t), "noise": AdditiveNoise(t, 0.3),
           "noise_spatial": AdditiveNoise(t, 0.3, spatial=exp_spatial(0, 2.0))}
    if isinstance(t, DataTarget):
        out.update(mb=MiniBatch(t, batch_size=7), mb_floor=MiniBatch(t, batch_size=7, scale="floor"))
    return out


@pytest.mark.parametrize("tname", sorted(_ld_targets()))
def test_logdensity_evaluator_is_bit_identical(backend, tname):
    """``logdensity_evaluator_of`` gives the full evaluation's ``logp_hat`` bit for bit (every estimator, target,
    backend and dtype), and the targets' ``logdensity`` / ``unchecked_logdensity`` that of ``logdensity_and_grad``."""
    from smile_ref.gradients.base import evaluator_of, logdensity_evaluator_of

    t = _ld_targets()[tname]
    x = _x(backend, 6, t.dim, seed=4)
    xp = backend.xp
    ref_t = to_numpy(t.logdensity_and_grad(x)[0])
    assert to_numpy(t.logdensity(x)).tobytes() == ref_t.tobytes()
    if hasattr(t, "unchecked_logdensity"):
        assert to_numpy(t.unchecked_logdensity(xp)(x)).tobytes() == ref_t.tobytes()
    rng = HostRandom(5, backend)
    for ename, est in _ld_estimators(t).items():
        batch, _ = est.draw(est.init(6, rng), rng, x)
        full = to_numpy(evaluator_of(est, xp)(x, batch)[0])
        checked = to_numpy(est.evaluate(x, batch)[0])
        lp = logdensity_evaluator_of(est, xp)(x, batch)
        assert_backend(lp, backend)
        got = to_numpy(lp)
        assert got.dtype == full.dtype and got.shape == (6,), ename
        assert got.tobytes() == full.tobytes() == checked.tobytes(), (tname, ename)


def test_logdensity_evaluator_skips_the_gradient():
    """The log-density-only forms are used (no gradient computed) where they exist, and overrides are honoured."""
    from smile_ref import targets
    from smile_ref.gradients.base import logdensity_evaluator_of
    from smile_ref.targets.base import written_for
    import array_api_compat.numpy as xp

    T = _ld_targets()
    for name in ("linreg", "logreg", "mlp_reg", "mlp_cls"):
        assert written_for(T[name], "_logdensity", "_logdensity_and_grad"), name
    # the Gaussian's log-density needs g = r (-P) itself (0.5 sum(r * g)): the pair's first output
    assert not written_for(T["gauss_dense"], "_logdensity", "_logdensity_and_grad")
    assert written_for(LinGauss(), "_logdensity", "_logdensity_and_grad")  # DataTarget's pair
    assert not written_for(Gauss([1.0, 2.0]), "_logdensity", "_logdensity_and_grad")  # falls back to the pair

    class Counting(targets.LinearRegression):
        calls = 0

        def _loglik_sums(self, xp, x, Xb, yb):
            type(self).calls += 1
            return super()._loglik_sums(xp, x, Xb, yb)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((10, 2))
    c = Counting(X, X[:, 0])
    x = rng.standard_normal((3, 2))
    # the subclass overrides _loglik_sums only: the mini-batch log-density must go through it
    mb = MiniBatch(c, batch_size=4)
    idx = np.asarray(np.arange(12).reshape(3, 4) % 10)
    lp = logdensity_evaluator_of(mb, xp)(x, idx)
    assert Counting.calls == 1
    np.testing.assert_array_equal(lp, mb.evaluate(x, idx)[0])

    class Shifted(Exact):
        def evaluate(self, x, batch):
            lp, g = super().evaluate(x, batch)
            return lp + 1.0, g

    s = Shifted(T["gauss_diag"])
    x3 = rng.standard_normal((3, 3))
    np.testing.assert_array_equal(logdensity_evaluator_of(s, xp)(x3, None), s.evaluate(x3, None)[0])


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_additive_noise_diagonal_draw_is_the_cholesky_product(backend_name, dtype):
    """A diagonal noise covariance draws ``z * diag(L)`` instead of ``z @ L^T``: the same numbers bit for bit
    (the product only adds zeros), and a dense covariance still uses the product (deterministic)."""
    from smile_ref import targets

    be = get_backend(backend_name, dtype)
    t = targets.Gaussian.diagonal(np.ones(5))
    x = be.asarray(np.zeros((7, 5)))
    for cov, diagonal in ((np.diag([0.3, 1.0, 2.0, 0.01, 5.0]), True), (0.5, True),
                          (np.eye(5) + 0.2 * np.ones((5, 5)), False)):
        est = AdditiveNoise(t, cov)
        assert (est._diag_chol is not None) == diagonal
        xi, _ = est.draw(est.init(7, HostRandom(3, be)), HostRandom(3, be), x)
        z = HostRandom(3, be).normal((7, 5))
        ref = z @ be.asarray(np.asarray(est.chol, dtype=dtype)).mT
        assert to_numpy(xi).tobytes() == to_numpy(ref).tobytes()
