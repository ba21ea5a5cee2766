"""Adaptive SGHMC (``"sghmc_adaptive"``): the warm-up estimator, the frozen-preconditioner stationary law
(``smile_ref.theory.sghmc_adaptive``), presets, guardrails, backends and bad input.

Statistical tests: two-sided z-tests at |z| < 4.5 on averages over independent series
(``tests/sgmcmc_helpers.py``; Student-t with >= 63 degrees of freedom, P(|t_63| > 4.5) < 3e-5 per z-score),
Bonferroni-summed in each docstring.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

import smile_ref
from smile_ref.backend import HostRandom, get_backend, to_numpy
from smile_ref.gradients import AdditiveNoise, Exact
from smile_ref.samplers import get
from smile_ref.targets import Gaussian
import smile_ref.theory.sghmc_adaptive as th

from .conftest import assert_backend
from .sgmcmc_helpers import Z_MAX, NaNForChain0AfterInit, chain_z


class _Normals:
    """Random source handing out the given standard normals in order (deterministic unit tests)."""

    def __init__(self, normals):
        self.normals, self.k = list(normals), 0

    def normal(self, shape, dtype=None):
        z = np.asarray(self.normals[self.k], dtype=np.float64)
        assert z.shape == tuple(shape)
        self.k += 1
        return z


# ----------------------------------------------------------------------------- theory
def test_theory_closed_forms():
    """Lyapunov solution = the closed form, = plain SGHMC with eta/s and beta_hat = eta s/2, and
    (1/a)/(1 - a eta/(2 s (2 - alpha))) for s^2 = V (SymPy, deterministic)."""
    assert all(v == 0 for v in th.check_closed_form().values())
    # floored and unfloored agree where the balance condition holds; the floor only raises w
    assert th.var_theta_floored(1.0, 0.04, 0.2, 3.0, 2.0) == pytest.approx(th.var_theta(1.0, 0.04, 0.2, 3.0, 2.0),
                                                                          rel=1e-14)
    vt = th.var_theta_expr()
    assert sp.simplify(sp.limit(vt, th.eta, 0) - 1 / th.a) == 0


def test_theory_fixed_point():
    """The warm-up fixed point s^2 = a^2 Var theta(s) + V on the d = 8 example (a = 1, V = 8.6, eps = 0.05,
    mdecay = 0.05): s = 3.097, bias -0.78 % against +19.1 % of plain SGHMC (s = 1) (deterministic)."""
    s = th.fixed_point_sd(1.0, 0.0025, 0.05, 8.6)
    assert s**2 == pytest.approx(th.var_theta(1.0, 0.0025, 0.05, 8.6, s) + 8.6, rel=1e-12)
    assert s == pytest.approx(3.0971, abs=1e-4)
    assert th.var_theta(1.0, 0.0025, 0.05, 8.6, s) - 1 == pytest.approx(-0.0078, abs=1e-4)
    assert th.var_theta(1.0, 0.0025, 0.05, 8.6, 1.0) - 1 == pytest.approx(0.1908, abs=1e-4)


# ------------------------------------------------------------------------ simulation
def _series_ratio(k, state, rng, n_steps, n_burn, pred):
    """Per-(chain, coordinate) series of theta^2 / prediction after ``n_burn`` sampling steps."""
    out = []
    for i in range(n_burn + n_steps):
        state, _ = k.step(state, rng, False)
        if i >= n_burn:
            out.append(np.asarray(state.position) ** 2 / pred)
    x = np.stack(out, -1)  # (chains, d, T)
    return x.reshape(-1, x.shape[-1]), state


def test_frozen_preconditioner_stationary_variance():
    """Frozen s in {0.5, 1, 2, 3.5} per coordinate (and a = 1/var per coordinate), V = 3, eta = 0.04,
    alpha = 0.2: Var theta per coordinate against theory.sghmc_adaptive (a Var theta from 0.74 to 1.59).
    64 independent chains; four z-scores (one per coordinate): failure probability < 1.2e-4."""
    var = np.array([1.0, 0.5, 2.0, 1.0])
    t = Gaussian.diagonal(var)
    eta, alpha, V = 0.04, 0.2, 3.0
    k = get("sghmc_adaptive")(t, AdditiveNoise(t, V), get_backend(), step_size=eta, alpha=alpha)
    rng = HostRandom(11, get_backend())
    n = 64
    s = k.init(np.zeros((n, 4)), rng)
    sd = np.tile(np.array([0.5, 1.0, 2.0, 3.5]), (n, 1))
    s = s._replace(sd=sd)
    pred = th.var_theta_floored(1 / var, eta, alpha, V, sd)
    assert np.ptp(pred[0] / var) > 0.8  # the predictions differ a lot between coordinates
    x, _ = _series_ratio(k, s, rng, 3000, 300, pred)
    x = x.reshape(n, 4, -1)
    wrong = th.var_theta_floored(1 / var, eta, alpha, V, np.ones(4))  # plain SGHMC's prediction (s = 1)
    for j in range(4):
        assert abs(chain_z(x[:, j], 1.0)) < Z_MAX
        if j != 1:  # s != 1: the plain-SGHMC prediction is rejected by the same data
            assert abs(chain_z(x[:, j] * pred[0, j] / wrong[j], 1.0)) > 10


@pytest.mark.slow
def test_warmup_then_sampling_d8_example():
    """The d = 8 example (N(0, I), V = 8.6, eps = 0.05, mdecay = 0.05), warm-up 3000 steps through run_chains'
    driver order, then 40000 sampling steps: each series' variance against the prediction from its own frozen
    s (one z-score over 16 x 8 = 128 independent series: failure probability < 3e-5); the mean frozen s lies
    within 5 % of the fixed point 3.097 (a loose check: the warm-up average includes the transient)."""
    d, V, eta, alpha = 8, 8.6, 0.0025, 0.05
    t = Gaussian.diagonal(np.ones(d))
    k = get("sghmc_adaptive")(t, AdditiveNoise(t, V), get_backend(), step_size=eta, alpha=alpha)
    rng = HostRandom(5, get_backend())
    s = k.init(t.initial_position(rng, 16), rng)
    for _ in range(3000):
        s, _ = k.step(s, rng, True)
    sd = np.asarray(s.sd)
    assert np.mean(sd) == pytest.approx(th.fixed_point_sd(1.0, eta, alpha, V), rel=0.05)
    pred = th.var_theta_floored(1.0, eta, alpha, V, sd)
    x, s2 = _series_ratio(k, s, rng, 40000, 2000, pred)
    assert np.array_equal(np.asarray(s2.sd), sd)  # frozen after warm-up
    assert abs(chain_z(x, 1.0)) < Z_MAX


# ----------------------------------------------------------------------- warm-up arithmetic
def _one_warmup_step(moment_gradient):
    t = Gaussian.diagonal(np.array([1.0, 4.0]))
    k = get("sghmc_adaptive")(t, Exact(t), get_backend(), step_size=0.01, alpha=0.1, moment_gradient=moment_gradient)
    z0, z1 = np.array([[0.3, -1.2]]), np.array([[-0.7, 0.4]])
    rng = _Normals([z0, z1])
    x0 = np.array([[1.0, -2.0]])
    s0 = k.init(x0, rng)
    s1, _ = k.step(s0, rng, True)
    s2, _ = k.step(s1, rng, False)
    return t, x0, (z0, z1), s0, s1, s2


@pytest.mark.parametrize("moment_gradient", ["current", "previous"])
def test_warmup_update_by_hand(moment_gradient):
    """One warm-up step then one sampling step, against the formulas of the module docstring written out."""
    t, x0, (z0, z1), s0, s1, s2 = _one_warmup_step(moment_gradient)
    g0 = -x0 / np.array([1.0, 4.0])
    gm = g0 if moment_gradient == "current" else np.zeros_like(g0)  # "previous": the initial zero gradient
    tau = 1.0 * (1 - 1.0 / (1.0 + 1e-7)) + 1.0
    sd = np.sqrt((1 - 1 / (tau + 1)) + gm**2 / (tau + 1))
    sg = (1 - 1 / (tau + 1)) - gm / (tau + 1)
    np.testing.assert_allclose(s1.tau, tau, rtol=1e-15)
    np.testing.assert_allclose(s1.sd, sd, rtol=1e-15)
    np.testing.assert_allclose(s1.smooth_grad, sg, rtol=1e-15)
    eps, alpha = 0.1, 0.1
    m1 = eps * g0 + z0 * np.sqrt(np.maximum(2 * alpha * sd - (eps * sd) ** 2, 1e-7))
    x1 = x0 + eps * m1 / sd
    np.testing.assert_allclose(s1.momentum, m1, rtol=1e-14)
    np.testing.assert_allclose(s1.position, x1, rtol=1e-14)
    # sampling: s frozen, the momentum restarts from zero
    g1 = -x1 / np.array([1.0, 4.0])
    m2 = eps * g1 + z1 * np.sqrt(np.maximum(2 * alpha * sd - (eps * sd) ** 2, 1e-7))
    np.testing.assert_array_equal(s2.sd, s1.sd)
    np.testing.assert_allclose(s2.position, x1 + eps * m2 / sd, rtol=1e-14)


def test_preset_authors():
    t = Gaussian.diagonal(np.ones(2))
    k = get("sghmc_adaptive")(t, Exact(t), get_backend(), step_size=0.01, preset="authors")
    assert (k.moment_gradient, k.clip, k.alpha) == ("previous", 1e6, 0.05)
    k = get("sghmc_adaptive")(t, Exact(t), get_backend(), step_size=0.01, preset="authors", moment_gradient="current")
    assert k.moment_gradient == "current"
    with pytest.raises(ValueError, match="preset"):
        get("sghmc_adaptive")(t, Exact(t), get_backend(), step_size=0.01, preset="pybnn")


# ----------------------------------------------------------------------- interface
def test_bad_inputs():
    t = Gaussian(np.zeros(2), np.eye(2))
    be = get_backend()
    build = get("sghmc_adaptive")
    with pytest.raises(ValueError, match="step_size .* is required"):
        build(t, Exact(t), be)
    for bad in (0.0, -0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match=r"alpha must lie in \(0.0, 1.0\]"):
            build(t, Exact(t), be, step_size=0.01, alpha=bad)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        build(t, Exact(t), be, step_size=0.01, alpha="0.1")
    with pytest.raises(ValueError, match="moment_gradient must be one of"):
        build(t, Exact(t), be, step_size=0.01, moment_gradient="next")
    with pytest.raises(ValueError, match="gradient_clip must be finite and > 0"):
        build(t, Exact(t), be, step_size=0.01, gradient_clip=0.0)
    with pytest.raises(ValueError, match="step_size must be finite and > 0"):
        build(t, Exact(t), be, step_size=-1.0)
    with pytest.raises(TypeError, match="step_size"):
        smile_ref.run_chains("sghmc_adaptive", t, step_size="0.1", n_chains=2, n_steps=2, seed=0, progress=False)
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['beta_hat'\] of 'sghmc_adaptive'"):
        build(t, Exact(t), be, step_size=0.01, beta_hat=0.1)


def test_backend_matrix(backend):
    t = Gaussian(np.array([0.0, 1.0]), np.array([[1.0, 0.3], [0.3, 2.0]]))
    out = []
    for be in (backend, get_backend()):
        k = get("sghmc_adaptive")(t, AdditiveNoise(t, [1.0, 2.0]), be, step_size=0.05, alpha=0.1,
                                  moment_gradient="previous")
        rng = HostRandom(4, be)
        s = k.init(t.initial_position(rng, 5), rng)
        for i in range(4):
            s, info = k.step(s, rng, i < 2)
        out.append((s, info))
    (s, info), (s64, _) = out
    for arr in (s.position, s.momentum, s.sd, s.tau, s.smooth_grad):
        assert_backend(arr, backend, (5, 2))
    assert_backend(info["step_size"], backend, (5,))
    assert tuple(info["rejected"].shape) == (5,)
    if backend.dtype == backend.xp.float64:
        np.testing.assert_allclose(to_numpy(s.position), to_numpy(s64.position), rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(to_numpy(s.position)))


def test_guardrail_rejects_nonfinite(backend):
    t = Gaussian(np.zeros(2), np.eye(2))
    k = get("sghmc_adaptive")(t, NaNForChain0AfterInit(t), backend, step_size=0.05, alpha=0.1)
    rng = HostRandom(0, backend)
    s0 = k.init(t.initial_position(rng, 4), rng)
    s1, info = k.step(s0, rng, True)
    assert to_numpy(info["rejected"]).tolist() == [True, False, False, False]
    assert to_numpy(info["nonfinite"]).tolist() == [True, False, False, False]
    assert np.array_equal(to_numpy(s1.position)[0], to_numpy(s0.position)[0])
    assert np.all(to_numpy(s1.momentum)[0] == 0)
    assert np.all(np.isfinite(to_numpy(s1.sd)))


def test_gradient_clip_keeps_step():
    t = Gaussian(np.zeros(2), np.eye(2))
    k = get("sghmc_adaptive")(t, NaNForChain0AfterInit(t), get_backend(), step_size=0.05, alpha=0.1,
                              gradient_clip=1e6)
    rng = HostRandom(0, get_backend())
    s0 = k.init(t.initial_position(rng, 4), rng)
    s1, info = k.step(s0, rng, True)
    assert not np.any(info["rejected"]) and info["nonfinite"].tolist() == [True, False, False, False]
    assert np.all(s1.grad[0] == 0)  # NaN entries set to 0


def test_run_chains_and_checkpoint_resume(tmp_path):
    """Through the driver: warm-up flags reach the kernel (sd changes during burn-in only); a checkpointed
    run resumed from its file gives the same samples."""
    t = Gaussian.diagonal(np.array([1.0, 2.0]))
    kw = dict(gradient=AdditiveNoise(t, 1.0), step_size=0.01, n_chains=3, n_steps=60, burn_in=40, seed=2,
              progress=False)
    full = smile_ref.run_chains("sghmc_adaptive", t, **kw)
    assert full.samples.shape == (3, 60, 2) and np.all(np.isfinite(full.samples))
    ck = tmp_path / "ck.npz"
    part = smile_ref.run_chains("sghmc_adaptive", t, checkpoint=ck, checkpoint_every=25, **kw)
    np.testing.assert_array_equal(part.samples, full.samples)
    res = smile_ref.run_chains("sghmc_adaptive", t, checkpoint=ck, resume=True, **kw)
    np.testing.assert_array_equal(res.samples, full.samples)
