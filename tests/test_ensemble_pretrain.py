"""AdamW and deep-ensemble pre-training (issue 7, item 3): smile_ref.ensembles.adamw / .pretrain.

Every test here is deterministic (fixed seeds, no statistical tolerance), so the failure
probability of a correct implementation is 0 up to the rounding stated per test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from smile_ref.backend import get_backend, to_numpy
from smile_ref.ensembles.adamw import AdamWState, adamw, apply_updates
from smile_ref.ensembles.pretrain import PretrainResult, pretrain_ensemble
from smile_ref.targets import MLP

from .conftest import assert_backend, tol_for


# --- AdamW -------------------------------------------------------------------------------------
def _torch_style_adamw(params, grads_seq, masks, lr, wd, b1, b2, eps):
    """Independent reference: the loop of ``torch.optim.AdamW`` (decay first, then the Adam step
    with ``denom = sqrt(v) / sqrt(1 - b2^t) + eps`` and step size ``lr / (1 - b1^t)``), one row and
    one coordinate at a time in Python floats; masked rows are skipped entirely."""
    P = [list(map(float, row)) for row in params]
    M, d = len(P), len(P[0])
    m = [[0.0] * d for _ in range(M)]
    v = [[0.0] * d for _ in range(M)]
    t = [0] * M
    for g, mask in zip(grads_seq, masks):
        for r in range(M):
            if not mask[r]:
                continue
            t[r] += 1
            for j in range(d):
                gj = float(g[r][j])
                P[r][j] *= 1.0 - lr * wd
                m[r][j] = b1 * m[r][j] + (1.0 - b1) * gj
                v[r][j] = b2 * v[r][j] + (1.0 - b2) * gj * gj
                denom = math.sqrt(v[r][j]) / math.sqrt(1.0 - b2 ** t[r]) + eps
                P[r][j] -= lr / (1.0 - b1 ** t[r]) * m[r][j] / denom
    return np.array(P), np.array(m), np.array(v), np.array(t)


def test_adamw_matches_reference_loop(backend):
    """Six steps with random gradients and a changing row mask agree with the torch-style loop to
    rounding (relative ``tol_for``: 1e-10 in float64, 1e-4 in float32)."""
    rng = np.random.default_rng(3)
    M, d, lr, wd, b1, b2, eps = 3, 5, 0.01, 0.05, 0.8, 0.99, 1e-6
    p0 = rng.standard_normal((M, d))
    grads = [rng.standard_normal((M, d)) * 10.0 ** rng.integers(-3, 2) for _ in range(6)]
    masks = [[True, True, True], [True, False, True], [False, False, True], [True, True, True],
             [True, False, False], [True, True, True]]
    opt = adamw(lr, wd, b1, b2, eps)
    p = backend.asarray(p0)
    state = opt.init(p)
    assert_backend(state.mu, backend, (M, d))
    for g, mk in zip(grads, masks):
        mask = backend.xp.asarray(np.array(mk), device=backend.device)
        upd, state = opt.update(backend.asarray(g), state, p, mask)
        assert_backend(upd, backend, (M, d))
        p = apply_updates(p, upd)
    P, m, v, t = _torch_style_adamw(p0, grads, masks, lr, wd, b1, b2, eps)
    tol = tol_for(backend)
    np.testing.assert_allclose(to_numpy(p), P, rtol=tol, atol=tol)
    np.testing.assert_allclose(to_numpy(state.mu), m, rtol=tol, atol=tol * 10)
    np.testing.assert_allclose(to_numpy(state.nu), v, rtol=tol, atol=tol * 100)
    np.testing.assert_array_equal(to_numpy(state.count), t)


def test_adamw_first_step_is_sign_step_and_masked_rows_frozen():
    """At t = 1, mhat = g and vhat = g^2, so update = -lr (g / (|g| + eps) + wd p) (exact); masked
    rows: zero update, zero moments, count 0; no mask = all rows (host NumPy mask accepted)."""
    p = np.array([[1.0, -2.0], [3.0, 4.0]])
    g = np.array([[0.5, -4.0], [1e-3, 2.0]])
    opt = adamw(0.1, 0.2, eps=1e-8)
    upd, st = opt.update(g, opt.init(p), p, np.array([True, False]))
    np.testing.assert_allclose(upd[0], -0.1 * (g[0] / (np.abs(g[0]) + 1e-8) + 0.2 * p[0]), rtol=1e-14)
    assert np.all(upd[1] == 0.0) and np.all(st.mu[1] == 0.0) and np.all(st.nu[1] == 0.0)
    np.testing.assert_array_equal(st.count, [1, 0])
    upd2, st2 = opt.update(g, opt.init(p), p)
    np.testing.assert_allclose(upd2[1], -0.1 * (g[1] / (np.abs(g[1]) + 1e-8) + 0.2 * p[1]), rtol=1e-14)
    np.testing.assert_array_equal(st2.count, [1, 1])
    assert isinstance(st2, AdamWState)


def test_adamw_bad_input():
    with pytest.raises(ValueError, match="learning_rate"):
        adamw(learning_rate=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        adamw(weight_decay=-0.1)
    with pytest.raises(ValueError, match="b1"):
        adamw(b1=1.0)
    with pytest.raises(ValueError, match="b2"):
        adamw(b2=-0.5)
    opt = adamw()
    p = np.zeros((2, 3))
    st = opt.init(p)
    with pytest.raises(ValueError, match="params"):
        opt.update(p, st)
    with pytest.raises(ValueError, match=r"mask must have shape \(2,\)"):
        opt.update(p, st, p, np.array([True, False, True]))
    with pytest.raises(TypeError, match="mask must be boolean"):
        opt.update(p, st, p, np.array([1, 0]))
    with pytest.raises(ValueError, match=r"grads must have shape \(2, 3\)|state.mu must have shape"):
        opt.update(np.zeros((2, 4)), st, None)
    with pytest.raises(ValueError, match=r"params must be an array of shape \(M, dim\)"):
        opt.init(np.zeros(3))


# --- MLP.loglik / loglik_and_grad ----------------------------------------------------------------
def test_mlp_loglik_and_grad_public_methods(backend):
    """The public batch sums agree with logdensity_and_grad_batch minus the prior (scaled back by
    b/N), share a leading-1 batch across chains, and their gradient matches central finite
    differences of :meth:`MLP.loglik` (float64 only; h = 1e-6, error O(h^2) ~ 1e-11 relative)."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((12, 2)), rng.standard_normal(12)
    t = MLP(X, y, hidden=(3,), activation="tanh")
    th = backend.asarray(t.init_params(1, 2) + 0.1 * rng.standard_normal((2, t.dim)))
    xp = backend.xp
    idx = xp.asarray(np.array([[0, 3, 5, 7], [1, 2, 11, 4]]), dtype=xp.int64, device=backend.device)
    Xb, yb = t.gather(xp, th, idx)
    ll, g = t.loglik_and_grad(th, Xb, yb)
    assert_backend(ll, backend, (2,))
    assert_backend(g, backend, (2, t.dim))
    tol = tol_for(backend, 1e-10, 1e-4)
    np.testing.assert_allclose(to_numpy(t.loglik(th, Xb, yb)), to_numpy(ll), rtol=tol)
    lp, gp = t._prior(xp, th)
    lb, gb = t.logdensity_and_grad_batch(th, idx)
    np.testing.assert_allclose(to_numpy(ll), to_numpy(lb - lp) * 4 / 12, rtol=tol, atol=tol)
    np.testing.assert_allclose(to_numpy(g), to_numpy(gb - gp) * 4 / 12, rtol=tol, atol=tol)
    shared = t.loglik(th, t.data_on(xp, th)[0][None, ...], t.data_on(xp, th)[1][None, :])
    full = t.logdensity(th) - lp
    np.testing.assert_allclose(to_numpy(shared), to_numpy(full), rtol=tol, atol=tol)
    if backend.dtype == xp.float64:
        th_h = to_numpy(th)
        Xh, yh = to_numpy(Xb), to_numpy(yb)
        fd = np.zeros_like(th_h)
        for j in range(t.dim):
            e = np.zeros_like(th_h)
            e[:, j] = 1e-6
            fd[:, j] = (t.loglik(th_h + e, Xh, yh) - t.loglik(th_h - e, Xh, yh)) / 2e-6
        np.testing.assert_allclose(to_numpy(g), fd, rtol=1e-7, atol=1e-8)
    with pytest.raises(ValueError, match="Xb must have shape"):
        t.loglik(th, Xb[:, :, :1], yb)
    with pytest.raises(ValueError, match="yb must have shape"):
        t.loglik_and_grad(th, Xb, yb[:, :2])


# --- pre-training --------------------------------------------------------------------------------
def _sine(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3.0, 3.0, (n, 1))
    return X, np.sin(X[:, 0]) + 0.1 * rng.standard_normal(n)


def test_pretrain_fits_sine():
    """y = sin(x) + N(0, 0.1^2), N = 200: the validation NLL falls from the init value to below
    0 (the Bayes-optimal mean NLL is log(0.1) + log(2 pi)/2 + 1/2 = -0.88; a constant predictor
    with the marginal variance of y, about 0.5, gets +1.07), histories are consistent."""
    X, y = _sine(200, 0)
    Xv, yv = _sine(60, 1)
    t = MLP(X, y, hidden=(16, 16))
    r = pretrain_ensemble(t, Xv, yv, n_members=3, seed=0, max_epochs=150, progress=False)
    assert isinstance(r, PretrainResult)
    assert r.params.shape == (3, t.dim) and np.all(np.isfinite(r.params))
    assert np.all(r.best_val_loss < 0.0) and np.all(r.init_val_loss > 1.0)
    E = r.history["val_loss"].shape[0]
    assert r.history["train_loss"].shape == (E, 3) and E == r.n_epochs.max()
    np.testing.assert_allclose(r.n_gradient_evals, r.n_epochs)  # incomplete batch included
    for j in range(3):
        h = r.history["val_loss"][:, j]
        n = r.n_epochs[j]
        assert np.all(np.isfinite(h[:n])) and np.all(np.isnan(h[n:]))
        assert h[r.best_epoch[j] - 1] == r.best_val_loss[j] == np.min(h[:n])
    # the returned parameters are the best ones: their validation NLL is best_val_loss
    vl = -t.loglik(r.params, Xv[None], yv[None]) / 60
    np.testing.assert_allclose(vl, r.best_val_loss, rtol=1e-12)
    assert r.wall_time > 0


def test_pretrain_linear_reaches_least_squares():
    """hidden=() with weight_decay=0 is Gaussian linear regression with a learned noise scale, whose
    minimum mean NLL is at the OLS weights (numpy.linalg.lstsq on [X, 1]) and log sigma =
    log(RSS/N)/2.  Full-batch AdamW is deterministic; on this strongly convex, well-conditioned
    problem (standardised features) its steps lr * mhat/(sqrt(vhat)+eps) shrink to 0 once the
    gradient decays faster than the b2-memory of vhat, so the iterates converge (no stochastic
    floor).  With X_val = X_train the returned (best) iterate minimises the training NLL.  We
    require 1e-6 in every coordinate, 10^4 times below the O(lr) = 1e-2 wandering of a
    non-converging Adam iterate, so a wrong gradient, sign or decay fails; and the final mean NLL
    may not undercut the analytic minimum by more than rounding (1e-12)."""
    rng = np.random.default_rng(1)
    N = 200
    X = rng.standard_normal((N, 3))
    y = X @ np.array([0.5, -1.0, 0.3]) + 0.2 + 0.5 * rng.standard_normal(N)
    X, y = (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std()
    A = np.c_[X, np.ones(N)]
    w = np.linalg.lstsq(A, y, rcond=None)[0]
    log_sigma = 0.5 * math.log(np.sum((y - A @ w) ** 2) / N)
    opt = np.r_[w, log_sigma]
    nll_min = log_sigma + 0.5 * math.log(2 * math.pi) + 0.5
    t = MLP(X, y, hidden=())
    r = pretrain_ensemble(t, X, y, n_members=2, seed=0, weight_decay=0.0, batch_size=N, max_epochs=1000,
                          patience=1000, progress=False)
    np.testing.assert_allclose(r.params, np.broadcast_to(opt, (2, 5)), rtol=0, atol=1e-6)
    assert np.all(r.best_val_loss >= nll_min - 1e-12) and np.all(r.best_val_loss < nll_min + 1e-9)
    # full batch: epoch 1's training loss is the mean NLL at the initial parameters (hand formula)
    th0 = t.init_params(np.random.default_rng(np.random.SeedSequence(0).spawn(2)[0]), 2)
    res = y[None, :] - (th0[:, :3] @ X.T + th0[:, 3:4])
    nll0 = np.mean(0.5 * res**2 * np.exp(-2 * th0[:, 4:5]) + th0[:, 4:5] + 0.5 * math.log(2 * math.pi), axis=1)
    np.testing.assert_allclose(r.history["train_loss"][0], nll0, rtol=1e-12)
    np.testing.assert_allclose(r.init_val_loss, nll0, rtol=1e-12)


def _val_optimum(Xv, yv):
    A = np.c_[Xv, np.ones(len(yv))]
    w = np.linalg.lstsq(A, yv, rcond=None)[0]
    return np.r_[w, 0.5 * math.log(np.mean((yv - A @ w) ** 2))]


def test_early_stopping_freezes_member_at_validation_optimum():
    """Member 0 starts at the unique minimiser of its validation NLL (OLS on the validation split,
    linear model), so no epoch can improve it: it must stop after exactly ``patience`` epochs with
    its initial parameters returned bit for bit (best_epoch 0).  Member 1 starts far away and keeps
    improving, so it trains on: stopping is per member."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, 2))
    y = X @ np.array([1.0, -0.5]) + 0.3 * rng.standard_normal(120)
    Xv = rng.standard_normal((40, 2))
    yv = Xv @ np.array([0.7, -0.2]) + 0.6 * rng.standard_normal(40)
    t = MLP(X, y, hidden=())
    init = np.stack([_val_optimum(Xv, yv), np.array([-3.0, 3.0, 2.0, 1.5])])
    r = pretrain_ensemble(t, Xv, yv, n_members=2, init=init, patience=4, max_epochs=40, batch_size=32,
                          progress=False)
    assert r.n_epochs[0] == 4 and r.best_epoch[0] == 0
    np.testing.assert_array_equal(r.params[0], init[0])
    assert r.best_val_loss[0] == r.init_val_loss[0]
    assert np.all(r.history["val_loss"][:4, 0] > r.init_val_loss[0]) and np.all(np.isnan(r.history["val_loss"][4:, 0]))
    assert r.n_epochs[1] > 4 and r.best_val_loss[1] < r.init_val_loss[1]
    # all members unimprovable: the loop ends after `patience` epochs, not max_epochs
    r2 = pretrain_ensemble(t, Xv, yv, n_members=2, init=np.stack([init[0], init[0]]), patience=3,
                           max_epochs=40, progress=False)
    assert r2.history["val_loss"].shape == (3, 2) and np.all(r2.n_epochs == 3)
    np.testing.assert_allclose(r2.n_gradient_evals, [3.0, 3.0])


def test_pretrain_reproducible_from_seed_and_float32():
    X, y = _sine(100, 2)
    Xv, yv = _sine(30, 3)
    t = MLP(X, y, hidden=(8,))
    kw = dict(n_members=2, max_epochs=5, batch_size=32, progress=False)
    a = pretrain_ensemble(t, Xv, yv, seed=7, **kw)
    b = pretrain_ensemble(t, Xv, yv, seed=7, **kw)
    c = pretrain_ensemble(t, Xv, yv, seed=8, **kw)
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(a.history["val_loss"], b.history["val_loss"])
    assert not np.array_equal(a.params, c.params)
    f = pretrain_ensemble(t, Xv, yv, seed=7, dtype="float32", **kw)
    assert f.params.dtype == np.float32 and np.all(np.isfinite(f.params))
    assert np.all(np.isfinite(f.best_val_loss)) and np.all(f.best_val_loss < f.init_val_loss)


def test_pretrain_backend_matrix(backend):
    """Same seed -> the same permutations and initialisation on every backend; 3 epochs with an
    incomplete last batch (N = 40, b = 16) agree with the NumPy float64 run to rounding (1e-9) in
    float64 and to 2e-3 (float32 rounding amplified over 9 Adam steps) in float32."""
    X, y = _sine(40, 4)
    Xv, yv = _sine(10, 5)
    t = MLP(X, y, hidden=(4,), activation="tanh")
    kw = dict(n_members=2, seed=3, max_epochs=3, batch_size=16, progress=False)
    ref = pretrain_ensemble(t, Xv, yv, **kw)
    r = pretrain_ensemble(t, Xv, yv, backend=backend, **kw)
    assert_backend(r.params, backend, (2, t.dim))
    tol = tol_for(backend, 1e-9, 2e-3)
    np.testing.assert_allclose(to_numpy(r.params), ref.params, rtol=tol, atol=tol)
    np.testing.assert_allclose(r.history["val_loss"], ref.history["val_loss"], rtol=tol, atol=tol)
    np.testing.assert_array_equal(r.n_epochs, ref.n_epochs)
    if backend.is_numpy:  # a host array as init means host data: NumPy float64 unless told
        return
    # a device array as init selects its backend
    r2 = pretrain_ensemble(t, Xv, yv, init=backend.asarray(np.zeros((2, t.dim))), n_members=2, max_epochs=1,
                           progress=False)
    assert_backend(r2.params, backend, (2, t.dim))


def test_pretrain_bad_input():
    X, y = _sine(30, 0)
    t = MLP(X, y, hidden=(2,))
    with pytest.raises(ValueError, match=r"X_val must have shape \(n, 1\)"):
        pretrain_ensemble(t, np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(ValueError, match=r"y_val must have shape \(5,\)"):
        pretrain_ensemble(t, np.zeros((5, 1)), np.zeros(4))
    with pytest.raises(ValueError, match="X_val must be finite"):
        pretrain_ensemble(t, np.full((5, 1), np.nan), np.zeros(5))
    for name in ("n_members", "batch_size", "max_epochs", "patience"):
        with pytest.raises(ValueError, match=name):
            pretrain_ensemble(t, X, y, **{name: 0})
        with pytest.raises(TypeError, match=name):
            pretrain_ensemble(t, X, y, **{name: 2.5})
    with pytest.raises(ValueError, match="learning_rate"):
        pretrain_ensemble(t, X, y, learning_rate=0.0)
    with pytest.raises(ValueError, match="weight_decay"):
        pretrain_ensemble(t, X, y, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"init must have shape \(3, 8\)"):
        pretrain_ensemble(t, X, y, n_members=3, init=np.zeros((2, 7)))
    with pytest.raises(ValueError, match="dtype"):
        pretrain_ensemble(t, X, y, dtype="float16")
    with pytest.raises(TypeError, match="seed"):
        pretrain_ensemble(t, X, y, seed=1.5)
    with pytest.raises(TypeError, match="target must be a data target"):
        pretrain_ensemble(object(), X, y)
    tc = MLP(X, (X[:, 0] > 0).astype(float), hidden=(2,), task="classification")
    with pytest.raises(ValueError, match=r"y_val must contain integer class labels 0..1"):
        pretrain_ensemble(tc, X[:3], np.array([0.0, 2.0, 1.0]))


def test_pretrain_classification_and_batch_clipping():
    """Two well-separated classes: validation NLL drops below 0.2 nats (log 2 = 0.69 for a
    coin flip); batch_size > N runs one full batch per epoch."""
    rng = np.random.default_rng(9)
    X = np.r_[rng.normal(-2, 0.5, (40, 2)), rng.normal(2, 0.5, (40, 2))]
    y = np.r_[np.zeros(40), np.ones(40)]
    t = MLP(X, y, hidden=(4,), task="classification")
    r = pretrain_ensemble(t, X[::4], y[::4], n_members=2, batch_size=1000, max_epochs=60, progress=False)
    assert np.all(r.best_val_loss < 0.2)
    np.testing.assert_allclose(r.n_gradient_evals, r.n_epochs)
