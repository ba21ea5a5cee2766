"""Tests of smile_ref.targets.from_callable / from_jax: user models as targets.

All comparisons are deterministic (fixed seeds, no statistical tolerance): a callable written with
the same floating-point operations as a hand-written target gives bit-identical chains; other
formulations agree to rounding (relative 1e-12 on gradients, 1e-9 on a few sampler steps, where
rounding differences of ~1e-16 are amplified at most by the steps' Lipschitz constants).
"""
from __future__ import annotations

import re
import sys

import numpy as np
import pytest

import smile_ref as sr
from smile_ref.backend import get_backend, to_numpy
from smile_ref.gradients import MiniBatch
from smile_ref.samplers.bnp_sgld import glm_layers
from smile_ref.targets import CallableDataTarget, CallableTarget, Gaussian, LogisticRegression, from_callable, from_jax

from .conftest import assert_backend, tol_for

MEAN = np.array([0.5, -1.0, 2.0])
COV = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.1], [0.0, 0.1, 0.5]])


def _gaussian_callables(g: Gaussian):
    """The exact operations of ``Gaussian._logdensity_and_grad`` (dense branch), on NumPy arrays."""
    m, P, c = g.mean, g.precision, g.log_normalizer

    def logdensity_and_grad(x):
        r = x - m
        grad = -(r @ P)
        return 0.5 * np.sum(r * grad, axis=1) + c, grad

    return logdensity_and_grad


def _logreg_data(N=40, p=3, seed=3):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(N), rng.standard_normal((N, p - 1))])
    w = np.array([0.3, -1.0, 0.7])[:p]
    y = (rng.random(N) < 1 / (1 + np.exp(-X @ w))).astype(float)
    return X, y


def _logreg_callable(X, y, s=1.0, bnp=None):
    """Logistic regression with prior N(0, s^2 I) as plain NumPy callables with per-example terms."""
    N, p = X.shape
    const = -0.5 * p * np.log(2 * np.pi * s**2)

    def prior(w):
        return -0.5 * np.sum(w * w, axis=1) / s**2 + const, -w / s**2

    def per_example(w, idx):
        Xb, yb = X[idx], y[idx]  # (n, b, p), (n, b)
        z = np.einsum("nbp,np->nb", Xb, w)
        sp = np.logaddexp(0.0, z)
        return yb * z - sp, (yb - np.exp(z - sp))[:, :, None] * Xb

    def ldg(w):
        z = w @ X.T
        sp = np.logaddexp(0.0, z)
        lp, gp = prior(w)
        return lp + np.sum(y * z - sp, axis=1), gp + (y - np.exp(z - sp)) @ X

    return from_callable(None, None, p, logdensity_and_grad=ldg, per_example=per_example, prior=prior, n_data=N,
                         data=(X, y), name="logreg", bnp_layers=bnp)


# ------------------------------------------------------------------------------- equivalence
def test_gaussian_callable_bit_identical_to_target():
    """Same operations, same seed: SMILE and SGLD chains equal the hand-written Gaussian's bit for bit."""
    g = Gaussian(MEAN, COV)
    t = from_callable(None, None, 3, logdensity_and_grad=_gaussian_callables(g))
    for sampler in ("smile", "sgld"):
        kw = dict(n_chains=3, n_steps=60, burn_in=20, seed=7, step_size=0.1, progress=False)
        a = sr.run_chains(sampler, g, **kw)
        b = sr.run_chains(sampler, t, **kw)
        assert np.array_equal(a.samples, b.samples), sampler
        for k in a.info:
            assert np.array_equal(a.info[k], b.info[k]), (sampler, k)


def test_separate_logdensity_and_grad():
    g = Gaussian(MEAN, COV)
    f = _gaussian_callables(g)
    t = from_callable(lambda x: f(x)[0], lambda x: f(x)[1], 3)
    x = np.random.default_rng(1).standard_normal((4, 3))
    lp, gr = t.logdensity_and_grad(x)
    lp0, gr0 = g.logdensity_and_grad(x)
    assert np.array_equal(lp, lp0) and np.array_equal(gr, gr0)
    assert np.array_equal(t.logdensity(x), lp0) and np.array_equal(t.grad_logdensity(x), gr0)


@pytest.mark.parametrize("sampler", sr.samplers.available())
@pytest.mark.parametrize("minibatch", [False, True], ids=["exact", "minibatch"])
def test_every_sampler_matches_handwritten_logreg(sampler, minibatch):
    """Every registered sampler, Exact and MiniBatch: the callable logistic regression follows the
    hand-written LogisticRegression's chains (same seed) to rounding over a few steps."""
    X, y = _logreg_data()
    lr = LogisticRegression(X, y)
    t = _logreg_callable(X, y, bnp=glm_layers(lr))
    kw = dict(n_chains=2, n_steps=8, burn_in=4, seed=11, step_size=0.02, progress=False)
    if sampler == "constant_sgd":
        kw["learning_rate"] = 0.02
        del kw["step_size"]
    ga = MiniBatch(lr, 8) if minibatch else None
    gb = MiniBatch(t, 8) if minibatch else None
    a = sr.run_chains(sampler, lr, gradient=ga, **kw)
    b = sr.run_chains(sampler, t, gradient=gb, **kw)
    assert np.all(np.isfinite(b.samples))
    np.testing.assert_allclose(b.samples, a.samples, rtol=1e-9, atol=1e-12)


def test_minibatch_per_example_matches_glm():
    """MiniBatch estimates, per-example gradients and the exact noise covariance equal LogisticRegression's."""
    X, y = _logreg_data(N=50)
    lr = LogisticRegression(X, y)
    t = _logreg_callable(X, y)
    assert isinstance(t, CallableDataTarget) and t.n_data == 50
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 3))
    idx = np.stack([rng.permutation(50)[:7] for _ in range(3)])
    for est_t, est_lr in ((MiniBatch(t, 7), MiniBatch(lr, 7)), (MiniBatch(t, 7, replace=True), MiniBatch(lr, 7, replace=True))):
        lp_t, g_t = est_t.evaluate(x, idx)
        lp_l, g_l = est_lr.evaluate(x, idx)
        np.testing.assert_allclose(lp_t, lp_l, rtol=1e-12)
        np.testing.assert_allclose(g_t, g_l, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(est_t.noise_covariance(x), est_lr.noise_covariance(x), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(t.per_example_grads(x, idx), lr.per_example_grads(x, idx), rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------- validation
def test_fd_check_names_the_wrong_coordinate():
    f = _gaussian_callables(Gaussian(MEAN, COV))
    scale = np.array([1.0, 1.0, 1.001])  # coordinate 2 off by 0.1 %
    with pytest.raises(ValueError, match=r"coordinate 2: grad") as ei:
        from_callable(lambda x: f(x)[0], lambda x: f(x)[1] * scale, 3)
    assert "coordinate 0" not in str(ei.value) and "coordinate 1" not in str(ei.value)
    with pytest.raises(ValueError, match="finite difference"):
        from_callable(lambda x: f(x)[0], lambda x: -f(x)[1], 3)  # the classic sign error
    # the same wrong gradient passes with the check off (and only then)
    t = from_callable(lambda x: f(x)[0], lambda x: f(x)[1] * scale, 3, check_grad=False)
    assert isinstance(t, CallableTarget)


def test_fd_check_accepts_stiff_and_large_scale_models():
    """No false alarms: an ill-conditioned Gaussian (variances 1e-4 .. 1e4), a large additive constant and
    a non-polynomial density (Rosenbrock-like) all pass the finite-difference tolerance."""
    v = np.logspace(-4, 4, 9)

    def ld(x):
        return -0.5 * np.sum(x * x / v, axis=1) - 1e6

    t = from_callable(ld, lambda x: -x / v, 9, probe=np.linspace(-2, 2, 9))
    assert t.dim == 9

    def rb(x):
        return -(np.sum(100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2, axis=1))

    def rbg(x):
        g = np.zeros_like(x)
        a = x[:, 1:] - x[:, :-1] ** 2
        g[:, :-1] += 400 * a * x[:, :-1] + 2 * (1 - x[:, :-1])
        g[:, 1:] += -200 * a
        return g

    from_callable(rb, rbg, 5)


def _builtin_targets():
    from smile_ref import targets as T

    rng = np.random.default_rng(0)
    X, yr = rng.standard_normal((100, 4)), rng.standard_normal(100)
    return [T.ill_conditioned_gaussian(10), T.Funnel(), T.Rosenbrock(), T.LinearRegression(X, yr),
            T.LogisticRegression(X, (yr > 0).astype(float)), T.MLP(X, yr, hidden=(8, 8)),
            T.MLP(X, yr, hidden=(16, 16, 16), activation="tanh")]


@pytest.mark.parametrize("seed", [0, 1])
def test_fd_check_no_false_alarm_on_builtin_targets(seed):
    """The hand-written gradients of every built-in target (ReLU networks included, and d = 642 > fd_max_coords)
    pass at two probe draws; a 1e-6 relative error in one coordinate of the same gradients is caught."""
    for t in _builtin_targets():
        probe = np.random.default_rng(seed).standard_normal((2, t.dim))
        from_callable(None, None, t.dim, logdensity_and_grad=t.logdensity_and_grad, probe=probe)
        s = np.ones(t.dim)
        s[t.dim - 1] += 1e-6  # the last coordinate is always among the checked ones

        def ldg(x, t=t, s=s):
            lp, g = t.logdensity_and_grad(x)
            return lp, g * s

        with pytest.raises(ValueError, match=f"coordinate {t.dim - 1}"):
            from_callable(None, None, t.dim, logdensity_and_grad=ldg, probe=probe)


def test_shape_and_finiteness_errors():
    with pytest.raises(ValueError, match=r"must return an array of shape \(2,\), got \(2, 1\)"):
        from_callable(lambda x: -0.5 * np.sum(x**2, axis=1, keepdims=True), lambda x: -x, 3)
    with pytest.raises(ValueError, match=r"grad\) must return an array of shape \(2, 3\), got \(3,\)"):
        from_callable(lambda x: -0.5 * np.sum(x**2, axis=1), lambda x: -x[0], 3)
    with pytest.raises(ValueError, match="not finite at probe point"), np.errstate(invalid="ignore", divide="ignore"):
        from_callable(lambda x: np.log(x[:, 0]), lambda x: np.stack([1 / x[:, 0], 0 * x[:, 1]], 1), 2,
                      probe=np.array([-1.0, 0.0]))
    with pytest.raises(ValueError, match="independent chains"):
        from_callable(lambda x: -0.5 * np.sum(x**2) * np.ones(x.shape[0]), lambda x: -x, 3)
    with pytest.raises(TypeError, match="logdensity_and_grad"):
        from_callable(None, lambda x: -x, 3)
    with pytest.raises(TypeError, match="must return a pair"):
        from_callable(None, None, 3, logdensity_and_grad=lambda x: -0.5 * np.sum(x**2, axis=1))
    with pytest.raises(ValueError, match=r"ldg \(logdensity\) must return an array of shape \(2,\)"):
        def ldg(x):
            return np.zeros(3), -x
        from_callable(None, None, 3, logdensity_and_grad=ldg)
    with pytest.raises(ValueError, match=r"probe must have shape \(k, 3\)"):
        from_callable(lambda x: -0.5 * np.sum(x**2, axis=1), lambda x: -x, 3, probe=np.zeros(4))
    with pytest.raises(ValueError, match="dim"):
        from_callable(lambda x: x[:, 0], lambda x: x, 0)
    t = from_callable(lambda x: -0.5 * np.sum(x**2, axis=1), lambda x: -x, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(n, 3\)"):
        t.logdensity_and_grad(np.zeros((2, 4)))


def test_per_example_validation():
    X, y = _logreg_data()
    good = _logreg_callable(X, y)
    f = good._ldg

    def wrong_prior(w):  # variance 4 instead of 1: the decomposition no longer adds up
        return -0.125 * np.sum(w * w, axis=1) - 1.5 * np.log(8 * np.pi), -w / 4

    with pytest.raises(ValueError, match="per_example/prior must decompose"):
        from_callable(None, None, 3, logdensity_and_grad=f, per_example=good._per_example, prior=wrong_prior,
                      n_data=40, check_grad=False)

    def bad_terms(w, idx):
        ll, g = good._per_example(w, idx)
        return ll, g * np.array([1.0, 1.1, 1.0])

    with pytest.raises(ValueError, match=r"(?s)per_example .*coordinate 1 of example"):
        from_callable(None, None, 3, logdensity_and_grad=f, per_example=bad_terms, prior=good._prior, n_data=40)
    with pytest.raises(ValueError, match="needs prior"):
        from_callable(None, None, 3, logdensity_and_grad=f, per_example=good._per_example, n_data=40)
    with pytest.raises(ValueError, match="together with per_example"):
        from_callable(None, None, 3, logdensity_and_grad=f, n_data=40)
    with pytest.raises(TypeError, match="DataTarget"):
        MiniBatch(from_callable(None, None, 3, logdensity_and_grad=f), 4)


def test_bnp_sgld_needs_layers():
    t = from_callable(lambda x: -0.5 * np.sum(x**2, axis=1), lambda x: -x, 3)
    with pytest.raises(TypeError, match="bnp_layers"):
        sr.run_chains("bnp_sgld", t, n_chains=2, n_steps=2, seed=0, step_size=0.1, progress=False)


# ------------------------------------------------------------------------------- backends
def test_numpy_callable_on_every_backend(backend):
    """A NumPy callable is converted at the boundary: outputs carry the caller's namespace, device and dtype
    and equal the hand-written target's on that backend."""
    g = Gaussian(MEAN, COV)
    t = from_callable(None, None, 3, logdensity_and_grad=_gaussian_callables(g))
    x = backend.asarray(np.random.default_rng(2).standard_normal((4, 3)))
    lp, gr = t.logdensity_and_grad(x)
    lp0, gr0 = g.logdensity_and_grad(x)
    assert_backend(lp, backend, (4,))
    assert_backend(gr, backend, (4, 3))
    rt = tol_for(backend)
    np.testing.assert_allclose(to_numpy(lp), to_numpy(lp0), rtol=rt)
    np.testing.assert_allclose(to_numpy(gr), to_numpy(gr0), rtol=rt, atol=rt)


def test_callable_run_on_array_api_strict_equals_numpy():
    """run_chains on array_api_strict (host RNG) with a NumPy callable gives the NumPy run's draws."""
    g = Gaussian(MEAN, COV)
    t = from_callable(None, None, 3, logdensity_and_grad=_gaussian_callables(g))
    kw = dict(n_chains=2, n_steps=30, burn_in=10, seed=3, step_size=0.1, progress=False)
    a = sr.run_chains("smile", t, **kw)
    b = sr.run_chains("smile", t, backend="array_api_strict", **kw)
    assert b.backend != a.backend
    np.testing.assert_allclose(b.samples, a.samples, rtol=1e-12, atol=1e-12)


def test_minibatch_on_array_api_strict():
    X, y = _logreg_data()
    t = _logreg_callable(X, y)
    bk = get_backend("array_api_strict", "float64", "device1")
    x = bk.asarray(np.random.default_rng(0).standard_normal((2, 3)))
    idx = bk.xp.asarray(np.array([[0, 5, 9], [1, 2, 3]], dtype=np.int64), device=bk.device)
    lp, gr = MiniBatch(t, 3).evaluate(x, idx)
    assert_backend(gr, bk, (2, 3))
    lr = LogisticRegression(X, y)
    np.testing.assert_allclose(to_numpy(gr), to_numpy(lr.logdensity_and_grad_batch(x, idx)[1]), rtol=1e-12)


def test_native_arrays_mode(backend):
    """arrays="native": an Array-API callable receives the caller's arrays unchanged."""
    from smile_ref.backend import array_namespace

    seen = []

    def ldg(x):
        xp = array_namespace(x)
        seen.append(type(x).__module__)
        return -0.5 * xp.sum(x * x, axis=1), -x

    t = from_callable(None, None, 3, logdensity_and_grad=ldg, arrays="native")
    x = backend.asarray(np.ones((2, 3)))
    lp, gr = t.logdensity_and_grad(x)
    assert_backend(lp, backend, (2,))
    assert seen[-1] == type(x).__module__
    with pytest.raises(ValueError, match="arrays"):
        from_callable(None, None, 3, logdensity_and_grad=ldg, arrays="cupy")


# ------------------------------------------------------------------------------- identity
def _std_normal_ld(x):
    return -0.5 * np.sum(x * x, axis=1)


def _std_normal_grad(x):
    return -x


def test_describe_names_functions_and_data(tmp_path):
    t = from_callable(_std_normal_ld, _std_normal_grad, 2, names=["a", "b"], data=np.arange(3.0))
    d = t.describe()
    assert d["functions"] == {"logdensity": f"{__name__}._std_normal_ld", "grad": f"{__name__}._std_normal_grad"}
    assert d["param_names"] == ["a", "b"] and d["dim"] == 2 and len(d["data_sha256"]) == 64
    other = from_callable(_std_normal_ld, _std_normal_grad, 2, names=["a", "b"], data=np.arange(3.0) + 1)
    assert other.describe()["data_sha256"] != d["data_sha256"]
    with pytest.raises(ValueError, match="names"):
        from_callable(_std_normal_ld, _std_normal_grad, 2, names=["a", "a"])
    # a checkpoint resumes with the same callables and refuses other data
    ck = tmp_path / "ck.npz"
    kw = dict(n_chains=2, n_steps=20, seed=0, step_size=0.1, progress=False, checkpoint=ck, checkpoint_every=10)
    full = sr.run_chains("sgld", t, **kw)
    again = sr.run_chains("sgld", t, resume=True, **kw)
    assert np.array_equal(full.samples, again.samples)
    with pytest.raises(ValueError, match="different configuration"):
        sr.run_chains("sgld", other, resume=True, **kw)


# ------------------------------------------------------------------------------- JAX
@pytest.fixture
def jax_modules():
    jax = pytest.importorskip("jax")
    import jax.numpy as jnp

    # before any constant is made: arrays created while x64 is off are float32 (see from_jax's docstring)
    jax.config.update("jax_enable_x64", True)

    return jax, jnp


def test_from_jax_gaussian_matches(jax_modules):
    jax, jnp = jax_modules
    g = Gaussian(MEAN, COV)
    m, P = jnp.asarray(g.mean), jnp.asarray(g.precision)
    t = from_jax(lambda th: -0.5 * (th - m) @ P @ (th - m) + g.log_normalizer, 3)
    assert jax.config.jax_enable_x64
    x = np.random.default_rng(4).standard_normal((5, 3))
    lp, gr = t.logdensity_and_grad(x)
    assert isinstance(lp, np.ndarray) and lp.dtype == np.float64 and gr.shape == (5, 3)
    lp0, gr0 = g.logdensity_and_grad(x)
    np.testing.assert_allclose(lp, lp0, rtol=1e-12)
    np.testing.assert_allclose(gr, gr0, rtol=1e-12, atol=1e-12)
    # float32 positions come back as float32
    lp32, gr32 = t.logdensity_and_grad(x.astype(np.float32))
    assert lp32.dtype == np.float32 and gr32.dtype == np.float32
    r = sr.run_chains("smile", t, n_chains=2, n_steps=10, seed=0, step_size=0.1, progress=False)
    assert np.all(np.isfinite(r.samples))


def test_from_jax_logistic_regression_matches(jax_modules):
    jax, jnp = jax_modules
    X, y = _logreg_data(N=60)
    lr = LogisticRegression(X, y, prior_scale=2.0)
    Xj, yj = jnp.asarray(X), jnp.asarray(y)
    const = -0.5 * 3 * np.log(2 * np.pi * 4.0)

    def prior(th):
        return -0.5 * jnp.sum(th**2) / 4.0 + const

    def loglik(th, i):
        z = Xj[i] @ th
        return yj[i] * z - jnp.logaddexp(0.0, z)

    def logdensity(th):
        z = Xj @ th
        return prior(th) + jnp.sum(yj * z - jnp.logaddexp(0.0, z))

    t = from_jax(logdensity, 3, per_example=loglik, prior=prior, n_data=60, data=(X, y))
    x = np.random.default_rng(6).standard_normal((4, 3))
    lp, gr = t.logdensity_and_grad(x)
    lp0, gr0 = lr.logdensity_and_grad(x)
    np.testing.assert_allclose(lp, lp0, rtol=1e-12)
    np.testing.assert_allclose(gr, gr0, rtol=1e-12, atol=1e-12)
    idx = np.stack([np.random.default_rng(k).permutation(60)[:9] for k in range(4)])
    np.testing.assert_allclose(MiniBatch(t, 9).evaluate(x, idx)[1], MiniBatch(lr, 9).evaluate(x, idx)[1],
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.per_example_grads(x, idx), lr.per_example_grads(x, idx), rtol=1e-12, atol=1e-13)
    r = sr.run_chains("psmile", t, gradient=MiniBatch(t, 9), n_chains=2, n_steps=10, seed=0, step_size=0.01,
                      progress=False)
    assert np.all(np.isfinite(r.samples))
    assert t.describe()["functions"]["logdensity"].endswith("logdensity")


def test_from_jax_catches_wrong_decomposition(jax_modules):
    jax, jnp = jax_modules
    with pytest.raises(ValueError, match="decompose"):
        from_jax(lambda th: -0.5 * jnp.sum(th**2), 2, per_example=lambda th, i: 0.1 * th[0], prior=lambda th: 0.0 * th[0],
                 n_data=3)


def test_from_jax_without_jax(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)
    with pytest.raises(ImportError, match=re.escape("smile_ref[crosscheck]")):
        from_jax(lambda th: -th @ th, 2)
