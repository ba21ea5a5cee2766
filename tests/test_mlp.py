"""Tests of smile_ref.targets.MLP: hand-written backpropagation and the batched data API.

Independent references: central finite differences in float64, the GLM targets
(:class:`LinearRegression`, :class:`LogisticRegression`) for zero hidden layers, and direct
NumPy evaluation of the priors.  No statistical tests (all checks are deterministic).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smile_ref.backend import to_numpy
from smile_ref.targets import MLP, LinearRegression, LogisticRegression
from tests.conftest import assert_backend, tol_for


def _data(seed, N=7, p=3, task="regression", K=3):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, p))
    y = rng.integers(0, K, N).astype(float) if task == "classification" else rng.standard_normal(N)
    return X, y


def _fd_grad(t, x, h=1e-6):
    g = np.zeros_like(x)
    for j in range(x.shape[1]):
        e = np.zeros_like(x)
        e[:, j] = h
        g[:, j] = (t.logdensity(x + e) - t.logdensity(x - e)) / (2 * h)
    return g


@settings(max_examples=30)
@given(
    depth=st.integers(0, 3),
    width=st.integers(1, 4),
    activation=st.sampled_from(["relu", "tanh", "gelu"]),
    task=st.sampled_from(["regression", "classification"]),
    seed=st.integers(0, 2**16),
)
def test_gradient_matches_finite_differences(depth, width, activation, task, seed):
    """Full-data gradient vs central differences (h = 1e-6, error O(h^2) + O(eps/h)); ReLU kinks
    are hit with probability 0 at Gaussian positions (a kink within h of a pre-activation is ~1e-6)."""
    X, y = _data(seed, task=task)
    t = MLP(X, y, hidden=(width,) * depth, activation=activation, task=task, prior_scale=1.3)
    x = 0.7 * np.random.default_rng(seed + 1).standard_normal((2, t.dim))
    g = t.grad_logdensity(x)
    np.testing.assert_allclose(g, _fd_grad(t, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("task", ["regression", "classification"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_per_example_grads_sum_to_batch_gradient(task, activation):
    X, y = _data(3, N=9, task=task)
    t = MLP(X, y, hidden=(5, 4), activation=activation, task=task)
    x = t.init_params(0, 3)
    idx = np.random.default_rng(1).integers(0, 9, (3, 4))
    pe = t.per_example_grads(x, idx)
    assert pe.shape == (3, 4, t.dim)
    lp, g = t.logdensity_and_grad_batch(x, idx)
    lp0, gp0 = t._prior(np, x)
    np.testing.assert_allclose(g, gp0 + (9 / 4) * pe.sum(axis=1), rtol=1e-12, atol=1e-12)
    # full data: the batch path with all examples equals the full-data path
    full = np.broadcast_to(np.arange(9), (3, 9))
    np.testing.assert_allclose(t.logdensity_and_grad_batch(x, full)[1], t.grad_logdensity(x), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(t.logdensity_and_grad_batch(x, full)[0], t.logdensity(x), rtol=1e-12)
    # per-example gradients vs finite differences of each example's log-likelihood
    ll, _ = t._loglik_terms(np, x, *t.gather(np, x, idx))
    h = 1e-6
    for j in range(0, t.dim, max(1, t.dim // 7)):
        e = np.zeros_like(x)
        e[:, j] = h
        fd = (t._loglik_terms(np, x + e, *t.gather(np, x, idx))[0] - t._loglik_terms(np, x - e, *t.gather(np, x, idx))[0]) / (2 * h)
        np.testing.assert_allclose(pe[:, :, j], fd, rtol=1e-5, atol=1e-6)


def test_zero_hidden_layers_equals_linear_regression():
    """params = [w (p), b, log_sigma]; LinearRegression on [X, 1] with noise_scale = e^{log_sigma}.
    The MLP log-density additionally carries the N(0, s^2) prior on log_sigma (computed by hand)."""
    X, y = _data(5, N=11, p=3)
    s = 1.7
    t = MLP(X, y, hidden=(), task="regression", prior_scale=s)
    assert t.dim == 5
    x = np.random.default_rng(2).standard_normal((4, t.dim))
    for ls in (-0.4, 0.3):
        x[:, -1] = ls
        ref = LinearRegression(np.c_[X, np.ones(11)], y, prior_scale=s, noise_scale=math.exp(ls))
        lp_ref, g_ref = ref.logdensity_and_grad(x[:, :4])
        extra = -0.5 * ls**2 / s**2 - 0.5 * math.log(2 * math.pi * s**2)
        lp, g = t.logdensity_and_grad(x)
        np.testing.assert_allclose(lp, lp_ref + extra, rtol=1e-12)
        np.testing.assert_allclose(g[:, :4], g_ref, rtol=1e-12, atol=1e-12)


def test_zero_hidden_layers_two_classes_equals_logistic_regression():
    """2-class softmax with logits f_k = x^T w_k + b_k gives P(y=1) = sigmoid(x^T (w_1 - w_0) + b_1 - b_0):
    log-likelihoods agree with LogisticRegression at v = [w_1 - w_0, b_1 - b_0] (priors differ and are
    removed by hand), and the likelihood gradient w.r.t. (w_1, b_1) equals LogisticRegression's,
    that w.r.t. (w_0, b_0) its negative."""
    X, y = _data(6, N=13, p=3, task="classification", K=2)
    t = MLP(X, y, hidden=(), task="classification", prior_scale=1.0)
    x = np.random.default_rng(3).standard_normal((3, t.dim))  # layout: W (3, 2) row-major, b (2)
    W = x[:, :6].reshape(3, 3, 2)
    b = x[:, 6:8]
    v = np.c_[W[:, :, 1] - W[:, :, 0], b[:, 1] - b[:, 0]]
    ref = LogisticRegression(np.c_[X, np.ones(13)], y, prior_scale=1.0)
    lp_ref, g_ref = ref.logdensity_and_grad(v)
    ll_ref = lp_ref - (-0.5 * (v**2).sum(1) - 2 * math.log(2 * math.pi))
    gl_ref = g_ref + v
    lp, g = t.logdensity_and_grad(x)
    ll = lp - (-0.5 * (x**2).sum(1) - 4 * math.log(2 * math.pi))
    gl = g + x
    np.testing.assert_allclose(ll, ll_ref, rtol=1e-12)
    gW = gl[:, :6].reshape(3, 3, 2)
    np.testing.assert_allclose(np.c_[gW[:, :, 1], gl[:, 7]], gl_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.c_[gW[:, :, 0], gl[:, 6]], -gl_ref, rtol=1e-10, atol=1e-12)
    lpr = t.predict(x, X)
    np.testing.assert_allclose(np.exp(lpr[:, :, 1]), 1 / (1 + np.exp(-(np.c_[X, np.ones(13)] @ v.T).T)), rtol=1e-12)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_outputs_follow_backend(backend, task):
    X, y = _data(7, task=task)
    t = MLP(X, y, hidden=(4, 3), activation="gelu", task=task)
    x64 = t.init_params(1, 3)
    x = backend.asarray(x64)
    lp, g = t.logdensity_and_grad(x)
    assert_backend(lp, backend, (3,))
    assert_backend(g, backend, (3, t.dim))
    rtol = tol_for(backend)
    xr = to_numpy(x).astype(np.float64)
    lp64, g64 = t.logdensity_and_grad(xr)
    np.testing.assert_allclose(to_numpy(lp).astype(float), lp64, rtol=rtol, atol=rtol * np.abs(lp64).max())
    np.testing.assert_allclose(to_numpy(g).astype(float), g64, rtol=rtol, atol=rtol * max(1, np.abs(g64).max()))
    idx = backend.asarray(np.random.default_rng(0).integers(0, 7, (3, 4)), dtype=backend.xp.int64)
    assert_backend(t.per_example_grads(x, idx), backend, (3, 4, t.dim))
    lpb, gb = t.logdensity_and_grad_batch(x, idx)
    assert_backend(lpb, backend, (3,))
    assert_backend(gb, backend, (3, t.dim))
    pred = t.predict(x, X[:5])
    if task == "regression":
        assert_backend(pred[0], backend, (3, 5))
        assert_backend(pred[1], backend, (3,))
    else:
        assert_backend(pred, backend, (3, 5, 3))
        np.testing.assert_allclose(np.exp(to_numpy(pred).astype(float)).sum(-1), 1.0, rtol=10 * rtol)


def test_init_params_and_layout():
    X, y = _data(0, p=4)
    t = MLP(X, y, hidden=(8, 8))
    assert t.dim == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 1 + 1 + 1
    th = t.init_params(np.random.default_rng(0), 500)
    assert th.shape == (500, t.dim)
    assert np.all(th[:, -1] == 0.0)
    W1, b1 = t.unflatten(np, th)[0]
    assert np.all(b1 == 0.0)
    # He init: Var = 2/4 per weight; 500*32 draws, SE of the variance ~ 0.5*sqrt(2/16000) = 0.0056; 6 SE
    assert abs(W1.var() - 0.5) < 0.034
    np.testing.assert_array_equal(t.init_params(3, 2), t.init_params(3, 2))


def test_stable_softmax_for_large_logits():
    X = np.array([[1e3], [-1e3]])
    t = MLP(X, np.array([0.0, 1.0]), hidden=(), task="classification")
    x = np.array([[1.0, -1.0, 0.0, 0.0]])
    lp, g = t.logdensity_and_grad(x)
    assert np.all(np.isfinite(lp)) and np.all(np.isfinite(g))


def test_bad_input():
    X, y = _data(0)
    Xn = X.copy()
    Xn[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"X must be finite.*rows \[2\]"):
        MLP(Xn, y)
    with pytest.raises(ValueError, match=r"y must have shape \(7,\)"):
        MLP(X, y[:5])
    with pytest.raises(ValueError, match=r"y must have shape"):
        MLP(X, y[:, None])
    with pytest.raises(ValueError, match=r"activation must be one of"):
        MLP(X, y, activation="sigmoid")
    with pytest.raises(ValueError, match=r"task must be one of"):
        MLP(X, y, task="ranking")
    with pytest.raises(ValueError, match=r"integer class labels"):
        MLP(X, y, task="classification")
    with pytest.raises(ValueError, match=r"labels must lie in 0..1"):
        MLP(X, np.arange(7.0), task="classification", n_classes=2)
    with pytest.raises(ValueError, match=r"hidden widths must be positive"):
        MLP(X, y, hidden=(3, 0))
    with pytest.raises(ValueError, match=r"prior_scale"):
        MLP(X, y, prior_scale=-1.0)
    t = MLP(X, y, hidden=(2,))
    with pytest.raises(ValueError, match=r"x must have shape \(n, %d\)" % t.dim):
        t.logdensity(np.zeros((2, t.dim + 1)))
    with pytest.raises(ValueError, match=r"X must have shape \(n, 3\)"):
        t.predict(np.zeros((1, t.dim)), np.zeros((4, 2)))


def test_bnp_layers_indices_and_inputs(backend):
    """Weight/bias indices address the right parameters; layer inputs are X[idx] then the hidden
    activations (checked against a direct NumPy forward pass)."""
    X, y = _data(8, N=6, p=3)
    t = MLP(X, y, hidden=(4, 2), activation="tanh")
    layers = t.bnp_layers()
    assert [L.weight.shape for L in layers] == [(4, 3), (2, 4), (1, 2)]
    x64 = np.random.default_rng(0).standard_normal((2, t.dim))
    Wb = t.unflatten(np, x64)
    for L, (W, b) in zip(layers, Wb):
        np.testing.assert_array_equal(x64[:, L.weight], W.transpose(0, 2, 1))
        np.testing.assert_array_equal(x64[:, L.bias], b)
    np.testing.assert_array_equal(layers[0].host_inputs, X)
    x = backend.asarray(x64)
    idx = backend.asarray(np.array([[0, 5, 2], [1, 1, 3]]), dtype=backend.xp.int64)
    xr = to_numpy(x).astype(np.float64)
    h1 = np.tanh(X[None] @ t.unflatten(np, xr)[0][0] + t.unflatten(np, xr)[0][1][:, None, :])
    for k, expect in [(0, np.broadcast_to(X[None], (2, 6, 3))), (1, h1)]:
        full = layers[k].inputs(x, None)
        sel = layers[k].inputs(x, idx)
        assert_backend(sel, backend, (2, 3, expect.shape[-1]))
        rows = np.array([[0, 5, 2], [1, 1, 3]])
        np.testing.assert_allclose(to_numpy(sel).astype(float), np.stack([expect[i, rows[i]] for i in range(2)]),
                                   rtol=tol_for(backend), atol=tol_for(backend))
        assert full.shape[1:] == (6, expect.shape[-1])


def test_bnp_sgld_runs_on_mlp():
    """Smoke test: BNP-SGLD accepts the MLP's layers with mini-batches (finite samples, right shape)."""
    import smile_ref
    from smile_ref.gradients import MiniBatch

    X, y = _data(9, N=40, p=2)
    t = MLP(X, y, hidden=(3,), activation="relu")
    res = smile_ref.run_chains("bnp_sgld", t, n_chains=3, n_steps=50, burn_in=10, seed=1, step_size=1e-3,
                               gradient=MiniBatch(t, 8), initial_position=t.init_params(0, 3), progress=False)
    assert res.samples.shape[-1] == t.dim and np.all(np.isfinite(res.samples))
