"""Tests of smile_ref.targets: backend contract, gradients, SymPy references, exact moments, data API.

Independent references: central finite differences (float64), SymPy expressions and
integrals from ``theory/targets_sympy.py``, direct linear algebra, and i.i.d. draws.
Statistical tests state their failure probability in their docstrings.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smile_ref.backend import get_backend, to_numpy
from smile_ref.targets import (
    Funnel,
    Gaussian,
    LinearRegression,
    LogisticRegression,
    Rosenbrock,
    diagonal_gaussian_condition,
    ill_conditioned_gaussian,
)
from tests.conftest import assert_backend, tol_for
from smile_ref.theory import targets_sympy as ts

NP64 = get_backend("numpy", "float64")


def _glm_data(seed, n_data=12, p=3, logistic=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_data, p))
    if logistic:
        y = (rng.random(n_data) < 0.5).astype(float)
    else:
        y = X @ rng.standard_normal(p) + 0.5 * rng.standard_normal(n_data)
    return X, y


MAKERS = {
    "icg": lambda: ill_conditioned_gaussian(dim=5, seed=3),
    "diag": lambda: diagonal_gaussian_condition(dim=5, condition=100.0),
    "gauss-mean": lambda: Gaussian([1.0, -2.0, 0.5], [[2.0, 0.3, 0.0], [0.3, 1.0, -0.2], [0.0, -0.2, 0.5]]),
    "funnel": lambda: Funnel(dim=5, theta_scale=1.5),
    "rosenbrock": lambda: Rosenbrock(dim=6, a=1.0, Q=0.1),
    "linreg": lambda: LinearRegression(*_glm_data(0), prior_scale=2.0, noise_scale=0.7),
    "logreg": lambda: LogisticRegression(*_glm_data(1, logistic=True), prior_scale=1.5),
}


def _positions(dim, n=4, seed=0, scale=0.8):
    return scale * np.random.default_rng(seed).standard_normal((n, dim))


def _close(actual, expected, backend, scale=None):
    rtol = tol_for(backend)
    expected = np.asarray(expected, dtype=np.float64)
    s = max(1.0, float(np.max(np.abs(expected)))) if scale is None else scale
    np.testing.assert_allclose(to_numpy(actual).astype(np.float64), expected, rtol=rtol, atol=rtol * s)


# --- backend contract -------------------------------------------------------------------
@pytest.mark.parametrize("kind", list(MAKERS))
def test_outputs_follow_backend(backend, kind):
    t = MAKERS[kind]()
    x_host = _positions(t.dim, n=3)
    x = backend.asarray(x_host)
    lp, g = t.logdensity_and_grad(x)
    assert_backend(lp, backend, (3,))
    assert_backend(g, backend, (3, t.dim))
    assert_backend(t.logdensity(x), backend, (3,))
    assert_backend(t.grad_logdensity(x), backend, (3, t.dim))
    # agrees with the float64 NumPy evaluation
    lp64, g64 = t.logdensity_and_grad(to_numpy(x).astype(np.float64))  # same (rounded) positions
    _close(lp, lp64, backend)
    _close(g, g64, backend)
    json.dumps(t.describe())


# --- finite differences (float64) -----------------------------------------------------------
def _fd_check(t, x):
    lp, g = (np.asarray(a) for a in t.logdensity_and_grad(x))
    h = 1e-5
    fd = np.empty_like(x)
    for j in range(t.dim):
        e = np.zeros(t.dim)
        e[j] = h
        fd[:, j] = (np.asarray(t.logdensity(x + e)) - np.asarray(t.logdensity(x - e))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * (1.0 + np.max(np.abs(g))))


@settings(max_examples=30)
@given(
    kind=st.sampled_from(["gauss", "funnel", "rosenbrock", "linreg", "logreg"]),
    dim=st.integers(2, 6),
    n=st.integers(1, 4),
    scale=st.floats(0.3, 3.0),
    loc=st.floats(-1.5, 1.5),
    seed=st.integers(0, 2**31),
)
def test_gradient_matches_finite_differences(kind, dim, n, scale, loc, seed):
    rng = np.random.default_rng(seed)
    if kind == "gauss":
        A = rng.standard_normal((dim, dim))
        t = Gaussian(loc * np.ones(dim), A @ A.T / dim + scale * np.eye(dim))
    elif kind == "funnel":
        t = Funnel(dim, theta_scale=scale)
    elif kind == "rosenbrock":
        t = Rosenbrock(2 * (dim // 2), a=loc, Q=0.05 + scale)
    else:
        X, y = _glm_data(seed, n_data=1 + seed % 8, p=dim, logistic=kind == "logreg")
        if kind == "linreg":
            t = LinearRegression(X, y, prior_scale=scale, noise_scale=0.2 + abs(loc))
        else:
            t = LogisticRegression(X, y, prior_scale=scale)
    _fd_check(t, rng.standard_normal((n, t.dim)))


# --- SymPy references ----------------------------------------------------------------------
@lru_cache(maxsize=None)
def _sympy_ref(kind):
    if kind == "funnel":
        return ts.lambdify_logdensity_and_grad(*ts.funnel_logdensity(4, 1.5)), Funnel(4, 1.5)
    if kind == "funnel3":
        return ts.lambdify_logdensity_and_grad(*ts.funnel_logdensity(3, 3.0)), Funnel(3, 3.0)
    if kind == "rosenbrock":
        return ts.lambdify_logdensity_and_grad(*ts.rosenbrock_logdensity(4, 1.0, 0.1)), Rosenbrock(4, 1.0, 0.1)
    if kind == "rosenbrock-b":
        return ts.lambdify_logdensity_and_grad(*ts.rosenbrock_logdensity(4, -0.5, 2.0)), Rosenbrock(4, -0.5, 2.0)
    if kind == "gauss2":
        m, c = [0.5, -1.0], [[2.0, -0.6], [-0.6, 0.5]]
        return ts.lambdify_logdensity_and_grad(*ts.gaussian_logdensity(m, c)), Gaussian(m, c)
    if kind == "icg2":
        t = ill_conditioned_gaussian(dim=2, seed=5)
        return ts.lambdify_logdensity_and_grad(*ts.gaussian_logdensity(t.mean, t.cov)), t
    if kind == "logreg":
        X, y = _glm_data(7, n_data=6, p=3, logistic=True)
        return ts.lambdify_logdensity_and_grad(*ts.logistic_logdensity(X, y, 1.5)), LogisticRegression(X, y, 1.5)
    if kind == "linreg":
        X, y = _glm_data(8, n_data=5, p=2)
        ref = ts.lambdify_logdensity_and_grad(*ts.linear_regression_logdensity(X, y, 2.0, 0.5))
        return ref, LinearRegression(X, y, 2.0, 0.5)
    raise KeyError(kind)


@pytest.mark.parametrize("kind", ["funnel", "funnel3", "rosenbrock", "rosenbrock-b", "gauss2", "icg2", "logreg", "linreg"])
def test_logdensity_and_grad_match_sympy(backend, kind):
    ref, t = _sympy_ref(kind)
    x = _positions(t.dim, n=5, seed=11, scale=1.2)
    lp_ref, g_ref = ref(x)
    lp, g = t.logdensity_and_grad(backend.asarray(x))
    _close(lp, lp_ref, backend)
    _close(g, g_ref, backend)


def test_funnel_moments_match_sympy():
    m, s = ts.funnel_moments()
    for scale in (3.0, 1.0, 0.4):
        t = Funnel(dim=4, theta_scale=scale)
        val = {k: float(v.subs(s, scale)) for k, v in m.items()}
        assert val["E_x"] == 0.0 and val["E_theta_x"] == 0.0
        np.testing.assert_allclose(t.second_moment, [val["E_theta2"]] + 3 * [val["E_x2"]], rtol=1e-13)
        np.testing.assert_allclose(t.second_moment_var, [val["Var_theta2"]] + 3 * [val["Var_x2"]], rtol=1e-13)
        np.testing.assert_array_equal(t.mean, np.zeros(4))
        np.testing.assert_allclose(t.cov, np.diag([val["E_theta2"]] + 3 * [val["E_x2"]]), rtol=1e-13)
    assert math.isclose(Funnel().second_moment[1], math.exp(4.5), rel_tol=1e-14)


@pytest.mark.parametrize("a,Q", [(1.0, 0.1), (-0.5, 2.0), (0.0, 1.0)])
def test_rosenbrock_moments_match_sympy(a, Q):
    m, sa, sQ = ts.rosenbrock_moments()
    val = {k: float(v.subs({sa: a, sQ: Q})) for k, v in m.items()}
    t = Rosenbrock(dim=6, a=a, Q=Q)
    h = 3
    np.testing.assert_allclose(t.mean, h * [val["E_X"]] + h * [val["E_Y"]], rtol=1e-13)
    cov = np.diag(h * [val["Var_X"]] + h * [val["Var_Y"]])
    for i in range(h):
        cov[i, h + i] = cov[h + i, i] = val["Cov_XY"]
    np.testing.assert_allclose(t.cov, cov, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(t.second_moment, h * [val["E_X2"]] + h * [val["E_Y2"]], rtol=1e-13)
    np.testing.assert_allclose(t.second_moment_var, h * [val["Var_X2"]] + h * [val["Var_Y2"]], rtol=1e-13)


# --- linear regression: exact posterior -------------------------------------------------------
def test_linear_regression_posterior_exact(backend):
    X, y = _glm_data(8, n_data=5, p=2)
    t = LinearRegression(X, y, prior_scale=2.0, noise_scale=0.5)
    m_sym, c_sym = ts.linear_regression_posterior(X, y, 2.0, 0.5)
    np.testing.assert_allclose(t.mean, m_sym, rtol=1e-12)
    np.testing.assert_allclose(t.cov, c_sym, rtol=1e-12)
    # ridge least squares on the augmented system [X/sigma; I/s] w = [y/sigma; 0]
    A = np.vstack([X / 0.5, np.eye(2) / 2.0])
    b = np.concatenate([y / 0.5, np.zeros(2)])
    np.testing.assert_allclose(t.mean, np.linalg.lstsq(A, b, rcond=None)[0], rtol=1e-12)
    # the score is exactly the Gaussian one: -P (w - mu); log-densities differ by a constant
    w = _positions(2, n=6, seed=4, scale=2.0)
    g_ref = -(w - m_sym) @ np.linalg.inv(c_sym)
    lp, g = t.logdensity_and_grad(backend.asarray(w))
    _close(g, g_ref, backend)
    lg = to_numpy(Gaussian(m_sym, c_sym).logdensity(backend.asarray(w))).astype(np.float64)
    diff = to_numpy(lp).astype(np.float64) - lg
    np.testing.assert_allclose(diff, diff[0], rtol=tol_for(backend), atol=tol_for(backend) * np.max(np.abs(lg)))


# --- DataTarget mini-batch API -------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["linreg", "logreg"])
def test_minibatch_api_consistent_with_full_data(backend, kind):
    t = MAKERS[kind]()
    n, N = 3, t.n_data
    x_host = _positions(t.dim, n=n, seed=2)
    x = backend.asarray(x_host)
    lp, g = t.logdensity_and_grad(x)
    perms = np.random.default_rng(5).permuted(np.tile(np.arange(N), (n, 1)), axis=1)
    idx = backend.asarray(perms, dtype=backend.xp.int64)
    # b = N with every example once: exactly the full-data value
    lpb, gb = t.logdensity_and_grad_batch(x, idx)
    assert_backend(lpb, backend, (n,))
    assert_backend(gb, backend, (n, t.dim))
    _close(lpb, to_numpy(lp), backend)
    _close(gb, to_numpy(g), backend)
    # per-example gradients summed + prior gradient = full gradient
    pe = t.per_example_grads(x, idx)
    assert_backend(pe, backend, (n, N, t.dim))
    _close(backend.xp.sum(pe, axis=1) - x / t.prior_scale**2, to_numpy(g), backend)
    # unbiasedness: the average of the estimates over a partition into k batches is exact
    k = 4
    parts = [t.logdensity_and_grad_batch(x, backend.asarray(perms[:, j::k], dtype=backend.xp.int64)) for j in range(k)]
    _close(sum(p[0] for p in parts) / k, to_numpy(lp), backend)
    _close(sum(p[1] for p in parts) / k, to_numpy(g), backend)


@pytest.mark.parametrize("kind", ["linreg", "logreg"])
def test_per_example_grads_match_finite_differences(kind):
    """Batch of one example ``i``: estimate = log prior + N loglik_i; its gradient by FD."""
    t = MAKERS[kind]()
    x = _positions(t.dim, n=2, seed=9)
    for i in (0, t.n_data - 1):
        idx = np.full((2, 1), i, dtype=np.int64)
        f = lambda z: np.asarray(t.logdensity_and_grad_batch(z, idx)[0])  # noqa: E731
        h = 1e-5
        fd = np.stack([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(t.dim)], axis=1)
        fd_lik = (fd + x / t.prior_scale**2) / t.n_data
        np.testing.assert_allclose(np.asarray(t.per_example_grads(x, idx))[:, 0, :], fd_lik, rtol=1e-6, atol=1e-7)


def test_logistic_is_numerically_stable(backend):
    X = np.array([[1.0], [1.0]])
    t = LogisticRegression(X, np.array([1.0, 0.0]), prior_scale=1e3)
    w = backend.asarray(np.array([[800.0], [-800.0], [0.0]]))
    lp, g = t.logdensity_and_grad(w)
    prior = -0.5 * np.array([800.0, 800.0, 0.0]) ** 2 / 1e6 - 0.5 * math.log(2 * math.pi * 1e6)
    # loglik = log sigmoid(w) + log sigmoid(-w): -800 for |w| = 800, -2 log 2 at 0
    _close(lp, prior + np.array([-800.0, -800.0, -2 * math.log(2.0)]), backend)
    _close(g, np.array([[-1.0 - 8e-4], [1.0 + 8e-4], [0.0]]), backend)


# --- exact samplers and Monte Carlo checks -----------------------------------------------------
def _ztest(est, pred, se, z=5.0):
    zs = np.abs(np.asarray(est) - np.asarray(pred)) / np.asarray(se)
    assert np.all(zs < z), f"max |z| = {zs.max():.2f} at {np.argmax(zs)}"


@pytest.mark.parametrize("make", [lambda: Rosenbrock(4, a=1.0, Q=0.1), lambda: Funnel(3, theta_scale=1.0)])
def test_exact_moments_by_monte_carlo(make):
    """Mean and E[x_i^2] of 4e5 i.i.d. exact draws vs the closed forms.

    Standard errors are exact (sqrt(cov_ii/n), sqrt(Var[x_i^2]/n)); two-sided z-test at
    5 sigma over 2d statistics (d <= 4): failure probability < 8 * 5.8e-7 < 5e-6 under the
    normal approximation (n = 4e5, all fourth moments of these targets small).
    """
    t = make()
    n = 400_000
    s = t.exact_sample(np.random.default_rng(2026), n)
    _ztest(s.mean(0), t.mean, np.sqrt(np.diag(t.cov) / n))
    _ztest((s**2).mean(0), t.second_moment, np.sqrt(t.second_moment_var / n))


@pytest.mark.parametrize(
    "make",
    [lambda: Rosenbrock(4, a=1.0, Q=0.1), lambda: Funnel(3, theta_scale=1.0), lambda: ill_conditioned_gaussian(4, seed=1)],
)
def test_score_is_consistent_with_exact_draws(make):
    """Stein identities under exact draws: E[grad log pi] = 0 and E[x grad log pi^T] = -I.

    Links the hand-written score to the generative definition.  Sample standard errors,
    n = 2e5; z-test at 5 sigma over d + d^2 <= 20 statistics: failure probability
    < 20 * 5.8e-7 < 2e-5 (normal approximation).
    """
    t = make()
    n = 200_000
    s = t.exact_sample(np.random.default_rng(7), n)
    g = np.asarray(t.grad_logdensity(s))
    _ztest(g.mean(0), 0.0, g.std(0) / math.sqrt(n))
    xg = s[:, :, None] * g[:, None, :]
    _ztest(xg.mean(0), -np.eye(t.dim), xg.std(0) / math.sqrt(n))


# --- factories ----------------------------------------------------------------------------------
def test_ill_conditioned_gaussian_structure():
    t = ill_conditioned_gaussian(dim=10, seed=0)
    c = np.logspace(-1, 1, 10)
    np.testing.assert_allclose(np.linalg.eigvalsh(t.cov), c**2, rtol=1e-10)
    np.testing.assert_allclose(t.rotation.T @ t.rotation, np.eye(10), atol=1e-12)
    np.testing.assert_allclose(t.precision @ t.cov, np.eye(10), atol=1e-8)
    np.testing.assert_array_equal(t.mean, np.zeros(10))
    np.testing.assert_allclose(t.second_moment_var, 2 * np.diag(t.cov) ** 2)
    assert ill_conditioned_gaussian(10, seed=0).describe() == t.describe()
    assert ill_conditioned_gaussian(10, seed=1).describe()["cov_sha256"] != t.describe()["cov_sha256"]


def test_diagonal_gaussian_condition_and_diagonal_path(backend):
    t = diagonal_gaussian_condition(dim=100, condition=1e4)
    v = np.diag(t.cov)
    assert t.is_diagonal and math.isclose(v.max() / v.min(), 1e4, rel_tol=1e-12)
    np.testing.assert_allclose([v.min(), v.max()], [1e-2, 1e2], rtol=1e-12)
    x = _positions(100, n=3, seed=1)
    ref = -0.5 * np.sum(x**2 / v, axis=1) - 0.5 * np.sum(np.log(2 * math.pi * v))
    lp, g = t.logdensity_and_grad(backend.asarray(x))
    _close(lp, ref, backend)
    _close(g, -x / v, backend)
    iso = Gaussian.isotropic(3, scale=2.0, mean=[1.0, 0.0, -1.0])
    np.testing.assert_allclose(iso.cov, 4 * np.eye(3))
    assert iso.describe()["scale"] == 2.0


def test_params_cached_per_backend():
    t = ill_conditioned_gaussian(4)
    be = get_backend("array_api_strict", "float32", "device1")
    x = be.asarray(np.zeros((2, 4)))
    assert t.params_on(be.xp, x) is t.params_on(be.xp, x)
    assert t.params_on(NP64.xp, np.zeros((1, 4)))[1].dtype == np.float64


def test_describe_is_json_and_omits_data():
    t = MAKERS["linreg"]()
    d = t.describe()
    assert d["n_data"] == 12 and len(d["data_sha256"]) == 64 and d["noise_scale"] == 0.7
    assert len(json.dumps(d)) < 400
    X, y = _glm_data(0)
    y2 = y.copy()
    y2[0] += 1e-9
    assert LinearRegression(X, y2, 2.0, 0.7).describe()["data_sha256"] != d["data_sha256"]
    assert Rosenbrock().describe() == {"name": "rosenbrock", "dim": 10, "a": 1.0, "Q": 0.1}
    np.testing.assert_array_equal(Rosenbrock(4).paper_initial_point, [1.0, 1.0, 2.0, 2.0])


# --- bad inputs --------------------------------------------------------------------------------------
BAD = [
    (lambda: Gaussian([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]]), ValueError, "cov must be positive definite"),
    (lambda: Gaussian([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]]), ValueError, "cov must be symmetric"),
    (lambda: Gaussian([0.0, 0.0], np.eye(3)), ValueError, r"cov must have shape \(2, 2\)"),
    (lambda: Gaussian([0.0, np.nan], np.eye(2)), ValueError, "mean must be finite"),
    (lambda: Gaussian.diagonal([1.0, -1.0]), ValueError, "variances must be > 0"),
    (lambda: Gaussian.isotropic(0), ValueError, "dim must be a positive integer"),
    (lambda: ill_conditioned_gaussian(4, c_min=2.0, c_max=1.0), ValueError, "c_min must be <= c_max"),
    (lambda: ill_conditioned_gaussian(4, c_min=-1.0), ValueError, "c_min must be finite and > 0"),
    (lambda: ill_conditioned_gaussian(4, seed=-1), ValueError, "seed must be a non-negative integer"),
    (lambda: diagonal_gaussian_condition(10, condition=0.5), ValueError, "condition must be >= 1"),
    (lambda: Funnel(dim=1), ValueError, "dim must be >= 2"),
    (lambda: Funnel(dim=3, theta_scale=-1.0), ValueError, "theta_scale must be finite and > 0"),
    (lambda: Rosenbrock(dim=5), ValueError, "dim must be even"),
    (lambda: Rosenbrock(dim=4, Q=0.0), ValueError, "Q must be finite and > 0"),
    (lambda: Rosenbrock(dim=4, a=float("nan")), ValueError, "a must be a finite real number"),
    (lambda: LinearRegression(np.full((3, 2), np.nan), np.zeros(3)), ValueError, "X must be finite"),
    (lambda: LinearRegression(np.ones((3, 2)), np.zeros(4)), ValueError, r"y must have shape \(3,\)"),
    (lambda: LinearRegression(np.ones(3), np.zeros(3)), ValueError, r"X must have shape"),
    (lambda: LinearRegression(np.ones((3, 2)), np.zeros(3), noise_scale=-1.0), ValueError, "noise_scale must be finite and > 0"),
    (lambda: LogisticRegression(np.ones((3, 2)), np.array([0.0, 1.0, 2.0])), ValueError, "y must contain only 0 and 1"),
    (lambda: LogisticRegression(np.ones((3, 2)), np.zeros(3), prior_scale=0.0), ValueError, "prior_scale must be finite and > 0"),
]


@pytest.mark.parametrize("make,exc,msg", BAD)
def test_bad_inputs_raise_clear_errors(make, exc, msg):
    with pytest.raises(exc, match=msg):
        make()


def test_bad_positions_raise():
    t = Funnel(3)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\)"):
        t.logdensity(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="real floating dtype"):
        t.logdensity(np.zeros((2, 3), dtype=np.int64))
