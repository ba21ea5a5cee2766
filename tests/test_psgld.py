"""pSGLD: the RMSprop update, and the bias of dropping Gamma for a state-dependent preconditioner.

Statistical tests: two-sided z-tests at |z| < 4.5 on independent-chain averages
(``tests/sgmcmc_helpers.py``), failure probability < 2e-5 per z-score.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import smile_ref
from smile_ref.backend import HostRandom, array_namespace, get_backend, to_numpy
from smile_ref.gradients import AdditiveNoise, Exact
from smile_ref.samplers import get
from smile_ref.targets import Gaussian
import smile_ref.theory.psgld as th

from .conftest import assert_backend
from .sgmcmc_helpers import Z_MAX, NaNForChain0, NaNForChain0AfterInit, chain_z


def G(x):
    return 1.0 / (1.0 + x * x)


def dG(x):
    return -2.0 * x / (1.0 + x * x) ** 2


def _grad_U(x):
    return x


# ----------------------------------------------------------------------------- theory
def test_theory_density_without_gamma():
    """Zero-flux density e^{-U}/G; E theta^2 = 1 (target), 2 (G = 1/(1+theta^2), no Gamma), and the
    RMSprop-like formula (lam sqrt(2 pi) + 4)/(lam sqrt(2 pi) + 2) (SymPy, deterministic)."""
    ex = th.second_moment_examples()
    assert ex["target"] == 1 and ex["without_gamma"] == 2
    assert sp.simplify(ex["density_without_gamma"] - (1 + th.theta**2) * sp.exp(-th.theta**2 / 2)) == 0
    lam = sp.Symbol("lam", positive=True)
    r = sp.sqrt(2 * sp.pi) * lam
    assert sp.simplify(th.second_moment_rmsprop_like() - (r + 4) / (r + 2)) == 0


def test_theory_discrete_converges_to_continuous():
    """The exact discrete E theta^2 is first order in h and Richardson-extrapolates to the continuous
    values 1 (with Gamma) and 2 (without) (deterministic numerics)."""
    for with_gamma, target in ((True, 1.0), (False, 2.0)):
        m1 = th.discrete_second_moment(_grad_U, G, dG, 0.04, with_gamma, L=7.0, m=1001)
        m2 = th.discrete_second_moment(_grad_U, G, dG, 0.02, with_gamma, L=7.0, m=1001)
        assert (m1 - target) / (m2 - target) == pytest.approx(2.0, rel=0.05)
        assert abs(2 * m2 - m1 - target) < 0.1 * abs(m2 - target)


# ------------------------------------------------------------------------ simulation
def _state_dependent(with_gamma, h, n_chains, n_steps, burn_in, seed):
    t = Gaussian(np.zeros(1), np.eye(1))
    kw = {"preconditioner": G, "gamma_correction": with_gamma}
    if with_gamma:
        kw["divergence"] = dG
    return smile_ref.run_chains("psgld", t, n_chains=n_chains, n_steps=n_steps, burn_in=burn_in, seed=seed,
                                step_size=h, progress=False, **kw)


@pytest.mark.parametrize("with_gamma", [True, False])
def test_gamma_bias_state_dependent_preconditioner(with_gamma):
    """TC-19 at h = 0.05: U = theta^2/2, G = 1/(1+theta^2).  E theta^2 matches the exact discrete value
    (1.0405 with Gamma, 2.0313 without); without Gamma it is far (> 20 SE) from the target's 1.

    Two z-scores: failure probability < 4e-5 per case.
    """
    h = 0.05
    res = _state_dependent(with_gamma, h, 256, 4000, 400, seed=31 + with_gamma)
    pred = th.discrete_second_moment(_grad_U, G, dG, h, with_gamma, L=7.0, m=1001)
    x2 = res.samples[..., 0] ** 2
    assert abs(chain_z(x2, pred)) < Z_MAX
    assert abs(chain_z(res.samples[..., 0], 0.0)) < Z_MAX
    if not with_gamma:
        assert chain_z(x2, 1.0) > 20


@pytest.mark.slow
@pytest.mark.parametrize("with_gamma", [True, False])
def test_gamma_bias_small_step_slow(with_gamma):
    """As above at h = 0.01 with 1024 chains x 20000 steps: exact discrete 1.0079 / 2.0062.
    Two z-scores: failure probability < 4e-5 per case."""
    h = 0.01
    res = _state_dependent(with_gamma, h, 1024, 20000, 2000, seed=41 + with_gamma)
    pred = th.discrete_second_moment(_grad_U, G, dG, h, with_gamma)
    assert abs(chain_z(res.samples[..., 0] ** 2, pred)) < Z_MAX
    assert abs(chain_z(res.samples[..., 0], 0.0)) < Z_MAX


def test_rmsprop_update_formula(backend):
    """Two steps reproduce V <- alpha V + (1-alpha) g^2, G = 1/(lam + sqrt V),
    theta' = theta + h G g + sqrt(2 h G) xi (Gamma = 0 for frozen V), with the same normals."""
    t = Gaussian(np.array([0.5, -1.0]), np.array([[1.0, 0.2], [0.2, 0.5]]))
    k = get("psgld")(t, Exact(t), backend, step_size=0.01, alpha=0.9, lam=1e-3)
    rng = HostRandom(3, backend)
    x0 = t.initial_position(rng, 4)
    s = k.init(x0, rng)
    state = rng.get_state()
    s1, info = k.step(s, rng, False)
    s2, _ = k.step(s1, rng, False)
    rng.set_state(state)
    z1, z2 = to_numpy(rng.normal((4, 2))), to_numpy(rng.normal((4, 2)))
    x = to_numpy(x0).astype(np.float64)
    V = np.zeros_like(x)
    P = np.linalg.inv(t.cov)
    for z in (z1, z2):
        g = -(x - t.mean) @ P
        V = 0.9 * V + 0.1 * g * g
        Gm = 1 / (1e-3 + np.sqrt(V))
        if z is z1:  # drift^2 over injected variance of the first step, mean over coordinates
            ratio1 = np.mean((0.01 * Gm * g) ** 2 / (0.02 * Gm), axis=1)
        x = x + 0.01 * Gm * g + np.sqrt(0.02 * Gm) * z
    f32 = backend.dtype == backend.xp.float32
    np.testing.assert_allclose(to_numpy(s2.position), x, rtol=1e-4 if f32 else 1e-12, atol=1e-5 if f32 else 1e-13)
    np.testing.assert_allclose(to_numpy(s2.V), V, rtol=1e-4 if f32 else 1e-12)
    assert_backend(s2.position, backend, (4, 2))
    assert_backend(s2.V, backend, (4, 2))
    assert_backend(info["step_size"], backend, (4,))
    np.testing.assert_allclose(to_numpy(info["drift_noise_ratio"]), ratio1, rtol=1e-4 if f32 else 1e-12)
    # gamma_correction=True with the RMSprop preconditioner runs the same update (Gamma = 0 for frozen V)
    k2 = get("psgld")(t, Exact(t), backend, step_size=0.01, alpha=0.9, lam=1e-3, gamma_correction=True)
    rng.set_state(state)
    s1b, _ = k2.step(k2.init(x0, rng), rng, False)
    assert np.array_equal(to_numpy(s1b.position), to_numpy(s1.position))


def test_run_chains_noisy_gradient_and_cost():
    t = Gaussian(np.zeros(3), np.eye(3))
    res = smile_ref.run_chains("psgld", t, gradient=AdditiveNoise(t, 2.0), n_chains=8, n_steps=50, burn_in=10,
                               seed=0, step_size=1e-3, progress=False, backend="array_api_strict", dtype="float32")
    assert res.samples.dtype == np.float32 and np.all(np.isfinite(res.samples))
    assert res.n_gradient_evals == 61.0 and res.n_rejected == 0


def test_guardrail_rejects_nonfinite(backend):
    t = Gaussian(np.zeros(2), np.eye(2))
    k = get("psgld")(t, NaNForChain0AfterInit(t), backend, step_size=0.01)
    rng = HostRandom(0, backend)
    s0 = k.init(t.initial_position(rng, 4), rng)
    s1, info = k.step(s0, rng, False)
    assert to_numpy(info["rejected"]).tolist() == [True, False, False, False]
    assert np.array_equal(to_numpy(s1.position)[0], to_numpy(s0.position)[0])
    assert np.all(to_numpy(s1.V)[0] == 0) and np.all(np.isfinite(to_numpy(s1.V)))
    assert to_numpy(info["nonfinite"]).tolist() == [True, False, False, False]


def test_bad_inputs():
    t = Gaussian(np.zeros(1), np.eye(1))
    be = get_backend()
    build = get("psgld")
    with pytest.raises(ValueError, match="step_size is required"):
        build(t, Exact(t), be)
    with pytest.raises(ValueError, match=r"alpha must lie in \(0.0, 1.0\)"):
        build(t, Exact(t), be, step_size=0.01, alpha=1.0)
    with pytest.raises(ValueError, match="lam must be finite and > 0"):
        build(t, Exact(t), be, step_size=0.01, lam=0.0)
    with pytest.raises(ValueError, match="gamma_correction=True with preconditioner=callable needs divergence"):
        build(t, Exact(t), be, step_size=0.01, preconditioner=G, gamma_correction=True)
    with pytest.raises(ValueError, match="divergence is only used with"):
        build(t, Exact(t), be, step_size=0.01, divergence=dG)
    with pytest.raises(TypeError, match="gamma_correction must be a bool"):
        build(t, Exact(t), be, step_size=0.01, gamma_correction=1)
    with pytest.raises(TypeError, match="preconditioner must be None or a callable"):
        build(t, Exact(t), be, step_size=0.01, preconditioner=2.0)
    k = build(t, Exact(t), be, step_size=0.01, preconditioner=lambda x: array_namespace(x).ones((1, 1)))
    rng = HostRandom(0, be)
    with pytest.raises(ValueError, match=r"preconditioner\(theta\) must return shape \(3, 1\)"):
        k.step(k.init(t.initial_position(rng, 3), rng), rng, False)
