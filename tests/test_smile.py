"""SMILE / pSMILE kernels: mechanics, options, cost accounting, guardrails, backends.

The bias theory of these samplers is checked in tests/test_theory_sg_mclmc.py and in the
verification report; here the kernel's mechanics are checked against independent
re-computations.
"""
import math

import numpy as np
import pytest

import smile_ref
import smile_ref.errors
from smile_ref import gradients, targets
from smile_ref.backend import get_backend, HostRandom, to_numpy
from smile_ref.gradients.base import GradientEstimator
from smile_ref.samplers import get

from .conftest import assert_backend


def _target(d=5):
    return targets.Gaussian.diagonal(np.linspace(0.5, 2.0, d))


@pytest.mark.parametrize("name, tuner", [("smile", "energy_error"), ("psmile", "energy_error"),
                                         ("smile", "mclmc"), ("psmile", None)])
def test_runs_on_every_backend(name, tuner, backend):
    t = _target()
    g = gradients.AdditiveNoise(t, 4.0)
    res = smile_ref.run_chains(name, t, gradient=g, n_chains=3, n_steps=8, burn_in=12, step_size=0.05,
                               seed=0, backend=backend, progress=False, tuner=tuner)
    assert res.samples.shape == (3, 8, 5)
    assert np.all(np.isfinite(res.samples))
    assert_backend(res.state.integrator.position, backend, (3, 5))
    assert_backend(res.state.params.step_size, backend, (3,))


def _linreg(n=200, d=3, seed=0):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((n, d))
    y = X @ np.ones(d) + rs.standard_normal(n)
    return targets.LinearRegression(X, y, prior_scale=1.0, noise_scale=1.0)


@pytest.mark.parametrize("energy_error, per_step", [("same_batch", 3), ("cross_batch", 2)])
def test_cost_accounting(energy_error, per_step):
    t = _linreg()
    g = gradients.MiniBatch(t, 20)
    res = smile_ref.run_chains("smile", t, gradient=g, n_chains=2, n_steps=5, burn_in=5, step_size=1e-3,
                               seed=0, energy_error=energy_error, progress=False, tuner="energy_error")
    assert res.n_gradient_evals == pytest.approx(20 / 200 * (1 + per_step * 10))


def test_first_step_starts_from_zero_velocity():
    """u0 = 0: the first B sub-step returns the gradient direction e = g/|g| exactly."""
    from smile_ref.integrators import esh_velocity_update

    b = get_backend()
    x = b.asarray(np.array([[1.0, -2.0, 0.5]]))
    t = _target(3)
    g = t.grad_logdensity(x)
    u, _ = esh_velocity_update(b.zeros((1, 3)), g, 0.01)
    np.testing.assert_allclose(to_numpy(u), to_numpy(g) / np.linalg.norm(to_numpy(g)), rtol=1e-12)
    algo = get("smile")(t, gradients.Exact(t), b, step_size=0.01, n_warmup=0)
    state = algo.init(x, HostRandom(0, b))
    assert np.all(to_numpy(state.integrator.momentum) == 0.0)


class _Scripted(GradientEstimator):
    """Exact gradient, but NaN entries in coordinate 0 for calls listed in ``nan_calls``."""

    stochastic = False

    def __init__(self, target, nan_calls=(), nan_logdensity_calls=()):
        self.target, self.calls = target, 0
        self.nan_calls, self.nan_lp = set(nan_calls), set(nan_logdensity_calls)

    def evaluate(self, x, batch):
        self.calls += 1
        xp = smile_ref.backend.array_namespace(x)
        lp, g = self.target.logdensity_and_grad(x)
        if self.calls in self.nan_calls:
            mask = xp.arange(g.shape[1])[None, :] == 0
            g = xp.where(mask, xp.nan, g)
        if self.calls in self.nan_lp:
            lp = lp * xp.nan
        return lp, g


def test_nan_gradient_entries_zero_and_clip_counts_them():
    """The authors' NaN -> 0 replacement keeps the steps but flags them in info["nonfinite"]."""
    t = _target(3)
    est = _Scripted(t, nan_calls={3, 4, 5})  # init = call 1; step k evaluates calls 2k, 2k + 1
    with pytest.warns(smile_ref.errors.RunHealthWarning, match="non-finite"):
        res = smile_ref.run_chains("smile", t, gradient=est, n_chains=2, n_steps=20, step_size=0.05, seed=0,
                                   tuner=None, progress=False, nonfinite_gradient="zero_and_clip", info="all")
    assert np.all(np.isfinite(res.samples))
    assert res.n_rejected == 0  # NaN gradient entries are sanitised (set to 0), not rejected
    assert res.info["nonfinite"][:, 0].nonzero()[0].tolist() == [0, 1]  # steps 1, 2 (calls 3; 4, 5)


def test_nan_gradient_entries_reject_the_step_by_default():
    t = _target(3)
    est = _Scripted(t, nan_calls={3, 4, 5})
    with pytest.warns(smile_ref.errors.RunHealthWarning, match="non-finite"):
        res = smile_ref.run_chains("smile", t, gradient=est, n_chains=2, n_steps=20, step_size=0.05, seed=0,
                                   tuner=None, progress=False, info="all")
    assert np.all(np.isfinite(res.samples))
    assert res.info["rejected"][:, 0].nonzero()[0].tolist() == [0, 1]
    assert res.info["nonfinite"][:, 0].nonzero()[0].tolist() == [0, 1]
    assert res.health.n_nonfinite.tolist() == [2, 2]


def test_all_nan_gradient_is_rejected_in_zero_and_clip_mode():
    """A gradient whose every entry is NaN carries no information: the step is rejected even in the
    authors' mode (which would otherwise move with a zero gradient)."""
    b = get_backend()
    t = _target(2)

    class AllNaN(_Scripted):
        def evaluate(self, x, batch):
            lp, g = super().evaluate(x, batch)
            return lp, g * np.nan if self.calls == 3 else g

    algo = get("smile")(t, AllNaN(t), b, step_size=0.1, n_warmup=0, tuner=None, nonfinite_gradient="zero_and_clip")
    rng = HostRandom(0, b)
    s = algo.init(b.asarray(np.array([[0.3, -0.1]])), rng)
    s1, info = algo.step(s, rng, False)
    assert bool(to_numpy(info["rejected"])[0]) and bool(to_numpy(info["nonfinite"])[0])
    np.testing.assert_array_equal(to_numpy(s1.integrator.position), [[0.3, -0.1]])


def test_nan_gradient_at_initial_position_is_an_error():
    t = _target(3)
    with pytest.raises(ValueError, match="initial_position"):
        smile_ref.run_chains("smile", t, gradient=_Scripted(t, nan_calls={1}), n_chains=1, n_steps=2,
                             step_size=0.05, seed=0, progress=False)


@pytest.mark.parametrize("keep", [False, True])
def test_nonfinite_logdensity_resets_step(keep):
    """A non-finite log-density rejects the step: position restored, velocity zero."""
    b = get_backend()
    t = _target(3)
    est = _Scripted(t, nan_logdensity_calls={5})  # init=1, step1 = calls 2,3; step2 = 4,5
    algo = get("smile")(t, est, b, step_size=0.1, n_warmup=0, tuner=None, reset_keeps_rejected_gradient=keep)
    rng = HostRandom(0, b)
    s = algo.init(b.asarray(np.array([[0.3, -0.2, 0.1]])), rng)
    s, info = algo.step(s, rng, False)
    assert not bool(to_numpy(info["rejected"])[0])
    before = s
    s, info = algo.step(s, rng, False)
    assert bool(to_numpy(info["rejected"])[0]) and bool(to_numpy(info["nonfinite"])[0])
    np.testing.assert_array_equal(to_numpy(s.integrator.position), to_numpy(before.integrator.position))
    assert np.all(to_numpy(s.integrator.momentum) == 0.0)
    # a non-finite log-density is never kept, even in the authors' "keep the rejected gradient" mode
    np.testing.assert_array_equal(to_numpy(s.integrator.logdensity), to_numpy(before.integrator.logdensity))


def test_psmile_preconditioner_follows_the_ema_recursion():
    """The preconditioner state after k steps equals an independent re-computation of the EMA."""
    b = get_backend()
    t = _target(4)
    g = gradients.AdditiveNoise(t, np.array([0.1, 1.0, 10.0, 100.0]))
    algo = get("psmile")(t, g, b, step_size=0.01, n_warmup=0, tuner=None)
    rng = HostRandom(3, b)
    s = algo.init(b.asarray(np.zeros((2, 4))), rng)
    m = np.zeros((2, 4))
    v = np.ones((2, 4))
    for _ in range(30):
        s, _ = algo.step(s, rng, False)
        gr = to_numpy(s.integrator.logdensity_grad)
        m = 0.99 * m + 0.01 * gr
        v = 0.99 * v + 0.01 * (gr - m) ** 2
    np.testing.assert_allclose(to_numpy(s.precond_state.mean), m, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(s.precond_state.var), v, rtol=1e-12)
    sd = to_numpy(algo.precond.sqrt_diag(s.precond_state))
    sigma = np.clip(np.sqrt(np.maximum(v, 1e-7)), 1e-2, 1e4)
    np.testing.assert_allclose(sd, np.sqrt(np.mean(sigma**2, axis=1, keepdims=True)) / sigma, rtol=1e-12)


def test_frozen_preconditioner_stops_after_warmup():
    t = _target(3)
    g = gradients.AdditiveNoise(t, 2.0)
    res = smile_ref.run_chains("psmile", t, gradient=g, n_chains=2, n_steps=10, burn_in=10, step_size=0.01,
                               seed=0, tuner=None, freeze_preconditioner=True, progress=False)
    b = get_backend()
    algo = get("psmile")(t, g, b, step_size=0.01, n_warmup=10, tuner=None, freeze_preconditioner=True)
    rng = HostRandom(0, b)
    s = algo.init(t.initial_position(rng, 2), rng)
    for _ in range(10):
        s, _ = algo.step(s, rng, True)
    np.testing.assert_array_equal(to_numpy(res.state.precond_state.var), to_numpy(s.precond_state.var))


@pytest.mark.parametrize(
    "opts, exc, msg",
    [
        (dict(step_size=None), ValueError, "step_size is required"),
        (dict(energy_error="both"), ValueError, "energy_error must be one of"),
        (dict(tuner="adam"), ValueError, "tuner must be one of"),
        (dict(refresh=True), ValueError, "refresh=True needs L"),
        (dict(gradient_clip=-1.0), ValueError, "gradient_clip"),
    ],
)
def test_bad_options(opts, exc, msg):
    kw = dict(step_size=0.01)
    kw.update(opts)
    with pytest.raises(exc, match=msg):
        smile_ref.run_chains("smile", _target(), n_chains=1, n_steps=1, seed=0, progress=False, **kw)


def test_dense_preconditioner_whitens_and_reduces_to_diagonal(backend):
    """S C S = c^2 I with c^2 = mean eigenvalue of C; S S^-1 = I; for diagonal C, S = diag(rms(sigma)/sigma)."""
    from smile_ref.preconditioners.noise_scale import (DenseNoiseScaleState, NoiseScaleState,
                                                       dense_noise_scale_preconditioner, noise_scale_preconditioner)

    rs = np.random.default_rng(0)
    A = rs.standard_normal((3, 3))
    C = A @ A.T + 0.5 * np.eye(3)
    dense = dense_noise_scale_preconditioner()
    S, S_inv = dense.matrices(DenseNoiseScaleState(backend.zeros((2, 3)), backend.asarray(np.stack([C, np.diag(np.diag(C))]))))
    assert_backend(S, backend, (2, 3, 3))
    tol = 1e-4 if backend.dtype == backend.xp.float32 else 1e-10
    S, S_inv = to_numpy(S), to_numpy(S_inv)
    c2 = np.mean(np.linalg.eigvalsh(C))
    np.testing.assert_allclose(S[0] @ C @ S[0], c2 * np.eye(3), atol=tol * c2)
    np.testing.assert_allclose(S[0] @ S_inv[0], np.eye(3), atol=tol)
    diag = noise_scale_preconditioner().sqrt_diag(NoiseScaleState(backend.zeros((1, 3)), backend.asarray(np.diag(C)[None])))
    np.testing.assert_allclose(S[1], np.diag(to_numpy(diag)[0]), atol=tol)


def test_dense_psmile_runs_and_resumes_bit_identically(tmp_path):
    t = _target(3)
    g = gradients.AdditiveNoise(t, np.array([[4.0, 3.0, 0.0], [3.0, 4.0, 0.0], [0.0, 0.0, 1.0]]))
    kw = dict(gradient=g, n_chains=2, n_steps=20, burn_in=10, step_size=0.02, seed=0, progress=False,
              preconditioner="dense")
    ref = smile_ref.run_chains("psmile", t, **kw)
    assert np.all(np.isfinite(ref.samples))
    from .sgmcmc_helpers import Crash, CrashAfter

    ck = tmp_path / "c.npz"
    kw.pop("gradient")
    with pytest.raises(Crash):  # interrupted at step 22, after the checkpoint at step 15
        smile_ref.run_chains("psmile", t, gradient=CrashAfter(g, 1 + 3 * 22), checkpoint=ck, checkpoint_every=15, **kw)
    res = smile_ref.run_chains("psmile", t, gradient=g, checkpoint=ck, checkpoint_every=15, resume=True, **kw)
    np.testing.assert_array_equal(res.samples, ref.samples)


def test_mclmc_tuned_smile_has_the_mclmc_energy_guardrail():
    """SMILE/pSMILE with a tuner lacking its own reset rule (``tuner="mclmc"`` or a Tuner object) reject
    |dE| > 100 sqrt(d) by default, as ``"mclmc"`` does; without
    it one gradient spike drove pSMILE's step size to the floor on a UCI network (docs/ensembles.md).
    The Gamma tuner keeps its own guardrail and SMILE-naive has none unless asked."""
    import math

    from smile_ref.backend import get_backend
    from smile_ref.gradients import Exact
    from smile_ref.samplers.base import get
    from smile_ref.targets import Gaussian

    t = Gaussian.isotropic(16)
    bk = get_backend("numpy", "float64")
    make = lambda name, **kw: get(name)(t, Exact(t), bk, step_size=0.1, n_warmup=10, **kw)  # noqa: E731
    assert make("smile", tuner="mclmc").max_energy_error == 100.0 * math.sqrt(16)
    assert make("psmile", tuner="mclmc").max_energy_error == 100.0 * math.sqrt(16)
    assert make("smile", tuner="mclmc", max_energy_error=3.0).max_energy_error == 3.0
    assert make("smile").max_energy_error == 100.0 * math.sqrt(16)  # the default tuner is "mclmc"
    assert make("smile", tuner="energy_error").max_energy_error == math.inf
    assert make("smile", tuner=None).max_energy_error == math.inf
    from smile_ref.tuners.mclmc import mclmc_tuner

    assert make("smile", tuner=mclmc_tuner()).max_energy_error == 100.0 * math.sqrt(16)  # a Tuner object too


@pytest.mark.parametrize("backend_name", ["numpy", "array_api_strict"])
def test_evaluate_clips_and_flags_on_every_path(backend_name):
    """SMILE's per-evaluation gradient handling ("reject") on each of its paths: |g|_2 <= clip/2 (NumPy's
    one-pass proof), every entry inside the clip but |g|_2 > clip/2, entries beyond the clip, and NaN.
    The returned gradient is clip(g) with NaN kept, and the all-finite marker is set exactly when every
    entry is finite (deterministic)."""
    be = get_backend(backend_name, "float64")
    t = targets.Gaussian.diagonal(np.ones(4))
    kern = get("smile")(t, gradients.Exact(t), be, step_size=0.1, n_warmup=0, tuner=None, gradient_clip=4.0)
    rows = np.array([[0.5, -0.5, 1.0, 0.2],      # |g|_2 = 1.23 <= 2
                     [3.0, -3.5, 3.9, 2.0],      # every |g_i| <= 4, |g|_2 = 6.3 > 2
                     [9.0, -0.1, 0.0, -12.0],    # beyond the clip
                     [np.nan, 1.0, 0.0, 0.0]])   # non-finite
    for i, row in enumerate(rows):
        x = be.asarray(-row[None, :])  # g = -x for N(0, I)
        acc, fin = [], []
        _, g = kern._evaluate(x, None, acc, fin)
        g = to_numpy(g)[0]
        expect = np.where(np.isfinite(row), np.clip(row, -4.0, 4.0), np.nan)
        np.testing.assert_array_equal(g, expect, err_msg=f"row {i}")
        assert (fin == [True]) == bool(np.all(np.isfinite(row))), f"row {i}"
        if not np.all(np.isfinite(row)):
            assert bool(to_numpy(acc[0][0])[0])
