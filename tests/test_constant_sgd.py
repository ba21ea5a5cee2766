"""Tests of the constant-SGD kernel (Mandt, Hoffman & Blei 2017) and the toy problem shared with
``tests/test_constant_sgd_theory.py`` (theory and simulation vs prediction).

Statistical tests (in the theory file) use many independent chains started at 0 and run for ``burn = 25/(1 - rho)``
steps (``rho`` the spectral radius of the linear recursion: the remaining initialisation bias is
below ``e^{-50}`` relative), then compare the empirical second moments with an exact prediction.
The toy model's iterates are exactly Gaussian with mean 0, so ``XX^T/n`` has the exact standard
error ``sqrt((S_ii S_jj + S_ij^2)/n)``; for real subsampling (non-Gaussian) the SE is estimated
from the per-chain products.  Unless stated otherwise a comparison is a two-sided z-test at
4.5 sigma on the ``D(D+1)/2 = 6`` distinct entries (Bonferroni): failure probability
``< 6 * 6.8e-6 = 4.1e-5`` per comparison.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import smile_ref.theory.constant_sgd as th
from smile_ref import run_chains
from smile_ref.backend import HostRandom, array_namespace, device_of, get_backend, to_numpy
from smile_ref.gradients.base import GradientEstimator
from smile_ref.samplers.constant_sgd import ConstantSGD
from tests.conftest import assert_backend, tol_for

Z = 4.5
A0 = np.array([[1.0, 0.3, 0.0], [0.3, 2.0, 0.5], [0.0, 0.5, 3.0]])
C0 = np.array([[2.0, 1.2, 0.3], [1.2, 1.5, -0.4], [0.3, -0.4, 1.0]])


# ------------------------------------------------------------------------------------------------
# toy linear-Gaussian problem: grad L_S = A theta + xi, xi ~ N(0, C/S)
# ------------------------------------------------------------------------------------------------
class QuadTarget:
    """``pi ∝ exp(-(N/2) theta^T A theta)`` with ``n_data = N`` (posterior ``(N A)^{-1}``)."""

    def __init__(self, A, N):
        self.A, self.n_data, self.dim = np.asarray(A, float), int(N), int(np.shape(A)[0])

    def logdensity_and_grad(self, x):
        xp = array_namespace(x)
        A = xp.asarray(self.A, dtype=x.dtype, device=device_of(x))
        g = -self.n_data * (x @ A)
        return 0.5 * xp.sum(x * g, axis=1), g

    def initial_position(self, rng, n):
        return rng.normal((n, self.dim))


class QuadNoise(GradientEstimator):
    """``g_hat = -N (A theta + xi)``, ``xi = L z``, ``L L^T = C / S``, ``z`` standard normal.

    ``nan_chain``: that chain's gradient is NaN wherever ``theta`` is not the all-ones start point (no mutable
    state, so the estimator's content digest stays fixed)."""

    stochastic = True

    def __init__(self, target, C, S, nan_chain=None):
        self.target, self.S = target, int(S)
        self.L = np.linalg.cholesky(np.asarray(C, float) / S)
        self.nan_chain = nan_chain

    def draw(self, state, rng, x):
        return rng.normal(tuple(x.shape), dtype=x.dtype), state

    def evaluate(self, x, z):
        xp = array_namespace(x)
        dev = device_of(x)
        A = xp.asarray(self.target.A, dtype=x.dtype, device=dev)
        L = xp.asarray(self.L, dtype=x.dtype, device=dev)
        gl = x @ A + z @ L.mT
        N = self.target.n_data
        lp = -N * (0.5 * xp.sum(x * (x @ A), axis=1) + xp.sum(x * (z @ L.mT), axis=1))
        g = -N * gl
        if self.nan_chain is not None:
            mask = (xp.arange(x.shape[0], device=dev) == self.nan_chain) & xp.any(x != 1.0, axis=1)
            g = xp.where(mask[:, None], xp.nan, g)
        return lp, g


def _rho(Phi):
    return float(np.max(np.abs(np.linalg.eigvals(Phi))))


def _burn(A, eps, H=None, momentum=0.0):
    Phi, _ = th._sgd_joint(A, np.eye(len(A)), 1, eps, H, momentum)
    return int(math.ceil(25.0 / (1.0 - _rho(Phi))))


def _run(kernel, n_chains, n_steps, seed, n_warmup=0, x0=None):
    b = kernel.backend
    rng = HostRandom(seed, b)
    x = b.zeros((n_chains, kernel.dim)) if x0 is None else x0
    st = kernel.init(x, rng)
    for t in range(n_warmup + n_steps):
        st, info = kernel.step(st, rng, t < n_warmup)
    return st, info


def _se(Sig, n):
    """Exact SE of ``X^T X / n`` for ``n`` i.i.d. ``N(0, Sig)`` rows: ``sqrt((S_ii S_jj + S_ij^2)/n)``."""
    return np.sqrt((np.outer(np.diag(Sig), np.diag(Sig)) + Sig**2) / n)


def _zcov(X, Sig):
    """z-scores of ``X^T X / n`` against ``Sig`` (exact Gaussian SE) on the upper triangle."""
    n = X.shape[0]
    iu = np.triu_indices(Sig.shape[0])
    return ((X.T @ X / n - Sig) / _se(Sig, n))[iu]


NP64 = get_backend("numpy", "float64")


def _toy(A=A0, C=C0, S=5, N=1000, **kw):
    t = QuadTarget(A, N)
    return t, QuadNoise(t, C, S, **kw)


# ------------------------------------------------------------------------------------------------
# kernel: one-step algebra on every backend, driver integration, validation, guardrail
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("precond", [None, 0.7, "diag", "full"])
def test_steps_match_formula(backend, precond):
    """Three steps of ``v' = m v - eps H grad L_S``, ``theta' = theta + v'`` reproduced in float64 NumPy."""
    t, g = _toy(N=50)
    H = {"diag": np.array([0.5, 1.0, 2.0]), "full": np.linalg.inv(C0)}.get(precond, precond)
    k = ConstantSGD(t, g, backend, learning_rate=0.01, preconditioner=H, momentum=0.6)
    n = 4
    x0h = np.linspace(-1, 1, n * 3).reshape(n, 3)
    rng, ref = HostRandom(7, backend), HostRandom(7, backend)
    st = k.init(backend.asarray(x0h), rng)  # evaluates the estimate at theta_0 (its noise z is drawn here)
    z = ref.normal_host((n, 3), backend.dtype).astype(np.float64)
    Hm = np.eye(3) if H is None else (H * np.eye(3) if np.ndim(H) == 0 else (np.diag(H) if np.ndim(H) == 1 else H))
    th_, v = x0h.copy(), np.zeros_like(x0h)
    for _ in range(3):
        st, info = k.step(st, rng, False)
        gradL = th_ @ A0 + z @ g.L.T
        v = 0.6 * v - 0.01 * gradL @ Hm.T
        th_ = th_ + v
        z = ref.normal_host((n, 3), backend.dtype).astype(np.float64)  # the estimate at the new iterate
    assert_backend(st.position, backend, (n, 3))
    assert_backend(st.velocity, backend, (n, 3))
    assert_backend(info["step_size"], backend, (n,))
    assert info["rejected"].dtype == backend.xp.bool
    np.testing.assert_allclose(to_numpy(st.position), th_, rtol=tol_for(backend, 1e-12, 2e-5), atol=1e-6)
    assert not np.any(to_numpy(info["rejected"]))


def test_run_chains_integration_and_average(backend):
    t, g = _toy(N=100)
    res = run_chains("constant_sgd", t, gradient=g, n_chains=3, n_steps=6, burn_in=2, seed=0, backend=backend,
                     learning_rate=0.05, momentum=0.3, progress=False)
    assert res.samples.shape == (3, 6, 3)
    for key in ("step_size", "rejected", "loss", "window_end"):
        assert res.info[key].shape == (8, 3)
    assert np.all(res.info["step_size"] == np.float32(0.05) if backend.dtype == backend.xp.float32 else res.info["step_size"] == 0.05)
    assert_backend(res.state.average, backend, (3, 3))
    assert res.state.n_averaged == 6
    np.testing.assert_allclose(to_numpy(res.state.average), res.samples.mean(axis=1), rtol=tol_for(backend, 1e-12, 1e-5), atol=1e-6)
    assert res.n_gradient_evals == 9.0  # init + one per step


def test_iasg_records_window_means():
    """IASG with thinning = window records exactly the means of consecutive windows of the iterates."""
    t, g = _toy(N=40)
    kw = dict(gradient=g, n_chains=2, burn_in=3, seed=5, backend="numpy", learning_rate=0.1, progress=False)
    plain = run_chains("constant_sgd", t, n_steps=12, **kw)
    ia = run_chains("constant_sgd", t, n_steps=12, thinning=4, iasg=True, window=4, info="all", **kw)
    want = plain.samples.reshape(2, 3, 4, 3).mean(axis=2)
    np.testing.assert_allclose(ia.samples, want, rtol=1e-12, atol=1e-14)
    ends = ia.info["window_end"][3:, 0]
    assert ends.tolist() == [False, False, False, True] * 3


def test_iasg_default_window_from_batch_size():
    class G(QuadNoise):
        batch_size = 8

    t = QuadTarget(A0, 1000)
    k = ConstantSGD(t, G(t, C0, 8), NP64, learning_rate=0.1, iasg=True)
    assert k.window == 125


def test_guardrail_rejects_nonfinite_chain(backend):
    t, g = _toy(nan_chain=1)
    k = ConstantSGD(t, g, backend, learning_rate=0.1, momentum=0.5)
    x0 = backend.asarray(np.ones((3, 3)))
    st, info = _run(k, 3, 2, seed=0, x0=x0)
    pos = to_numpy(st.position)
    assert np.all(np.isfinite(pos))
    np.testing.assert_array_equal(pos[1], np.ones(3))
    assert to_numpy(info["rejected"]).tolist() == [False, True, False]
    assert np.all(to_numpy(st.velocity)[1] == 0)


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(), ValueError, "needs learning_rate"),
        (dict(learning_rate=-1.0), ValueError, "learning_rate must be finite and > 0"),
        (dict(learning_rate=0.1, step_size=0.2), ValueError, "not two different values"),
        (dict(learning_rate=0.1, momentum=1.0), ValueError, r"momentum must lie in \[0.0, 1.0\)"),
        (dict(learning_rate=0.1, preconditioner=np.ones(2)), ValueError, r"shape \(3,\)"),
        (dict(learning_rate=0.1, preconditioner=-np.ones(3)), ValueError, "positive finite"),
        (dict(learning_rate=0.1, preconditioner=-np.eye(3)), ValueError, "positive definite"),
        (dict(learning_rate=0.1, preconditioner=np.ones((2, 2, 2))), ValueError, "preconditioner must be"),
        (dict(learning_rate=0.1, iasg=True), ValueError, "iasg=True needs window"),
        (dict(learning_rate=0.1, window=0), ValueError, "window must be a positive integer"),
    ],
)
def test_bad_options(kw, exc, match):
    t, g = _toy()
    with pytest.raises(exc, match=match):
        ConstantSGD(t, g, NP64, **kw)


def test_needs_n_data():
    class NoN(QuadTarget):
        n_data = None

    t = NoN(A0, 10)
    t.n_data = None
    with pytest.raises(ValueError, match="pass n_data="):
        ConstantSGD(t, QuadNoise(QuadTarget(A0, 10), C0, 5), NP64, learning_rate=0.1)
    assert ConstantSGD(t, QuadNoise(QuadTarget(A0, 10), C0, 5), NP64, learning_rate=0.1, n_data=7).n_data == 7


def test_checkpoint_resume_bit_identical(tmp_path):
    """IASG state (window sums, counters, average) survives checkpoint/resume bit-identically."""
    t, g = _toy(N=40)
    kw = dict(gradient=g, n_chains=2, n_steps=12, burn_in=3, thinning=4, seed=9, backend="numpy",
              learning_rate=0.1, momentum=0.3, iasg=True, window=4, progress=False)
    full = run_chains("constant_sgd", t, **kw)
    path = tmp_path / "ck.npz"
    with pytest.raises(KeyboardInterrupt):
        class Stop(QuadNoise):
            calls = 0

            def evaluate(self, x, z):
                Stop.calls += 1
                if Stop.calls == 10:
                    raise KeyboardInterrupt
                return super().evaluate(x, z)

            def describe(self):
                return g.describe()

            def resume_identity(self):
                return g

        run_chains("constant_sgd", t, **dict(kw, gradient=Stop(t, C0, 5)), checkpoint=path, checkpoint_every=4)
    assert path.exists()
    resumed = run_chains("constant_sgd", t, **kw, checkpoint=path, checkpoint_every=4, resume=True)
    np.testing.assert_array_equal(resumed.samples, full.samples)
    np.testing.assert_array_equal(resumed.state.average, full.state.average)
    assert resumed.state.n_averaged == full.state.n_averaged == 12
