"""SGHMC (SGD-with-momentum form): exact stationary law (theory.sghmc) and friction-free energy growth.

Statistical tests: two-sided z-tests at |z| < 4.5 on independent-chain averages
(``tests/sgmcmc_helpers.py``), failure probability < 2e-5 per z-score,
Bonferroni-summed in each docstring.
"""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import smile_ref
from smile_ref.backend import HostRandom, get_backend, to_numpy
from smile_ref.gradients import AdditiveNoise, Exact
from smile_ref.samplers import get
from smile_ref.targets import Gaussian
import smile_ref.theory.sghmc as th

from .sgmcmc_helpers import Z_MAX, NaNForChain0, NaNForChain0AfterInit, chain_z, cov_z


# ----------------------------------------------------------------------------- theory
def test_theory_closed_forms():
    """2x2 Lyapunov solution = seed TC-16 formula; matched correction -> 1/a as eta -> 0; continuous
    limit 1 + B/C; friction-free conserved form and growth rate eta V (all SymPy, deterministic)."""
    assert all(v == 0 for v in th.check_seed_formula().values())
    c, b = sp.symbols("c b", positive=True)
    assert sp.simplify(th.continuous_limit() - (1 + b / c)) == 0
    eg = th.energy_growth_rate()
    assert eg["invariance"] == sp.zeros(2, 2)
    assert sp.simplify(eg["rate"] - th.eta * th.V) == 0
    # alpha = 1 is SGLD with h = eta (docs/conventions-sgmcmc.md); beta_hat = eta V/2 is noise-corrected SGLD
    import smile_ref.theory.sgld as tsgld
    vt = th.var_theta_expr()
    sg = tsgld.derive_1d()
    assert sp.simplify(vt.subs({th.alpha: 1, th.beta_hat: 0}) - sg["sgld"].subs({tsgld.h: th.eta, tsgld.a: th.a, tsgld.s2: th.V})) == 0
    assert sp.simplify(vt.subs({th.alpha: 1, th.beta_hat: th.eta * th.V / 2}) - sg["corrected"].subs({tsgld.h: th.eta, tsgld.a: th.a})) == 0
    # TC-16's numbers are Var(theta) (sigma^2 = 2), not A Var(theta) as labelled in the seed note
    assert th.var_theta(0.5, 0.01, 0.1, 0.0, 3.0) == pytest.approx(2.3030, abs=1e-4)
    assert th.var_theta(0.5, 0.01, 0.1, 0.015, 3.0) == pytest.approx(2.0026, abs=1e-4)


def test_theory_numeric_solver_matches_sympy():
    for args in [(0.5, 0.01, 0.1, 0.0, 3.0), (2.0, 0.05, 0.5, 0.1, 1.0), (1.0, 0.3, 1.0, 0.0, 0.0)]:
        a, eta, alpha, bh, V = args
        S = th.stationary_cov([[a]], eta, alpha, bh, [[V]])
        np.testing.assert_allclose(S, np.asarray(th.stationary_cov_1d(*args), dtype=float), rtol=1e-10)
    with pytest.raises(ValueError, match="unstable"):
        th.stationary_cov([[1.0]], 5.0, 0.1, 0.0)


def test_theory_energy_recursion_rate():
    """alpha = 0: E[H_k] from the exact moment recursion grows at eta V / (1 - a eta/4) per step on average
    (SymPy rate_H), not exactly eta V (the K-form's exact rate); a = 1, eta = 0.04 (deterministic)."""
    a, eta, V = 1.0, 0.04, 1.0
    eg = th.energy_growth_rate()
    rate_H = float(eg["rate_H"].subs({th.a: a, th.eta: eta, th.V: V}))
    assert rate_H == pytest.approx(eta * V / (1 - a * eta / 4), rel=1e-14)
    rec = th.moment_recursion(a, eta, 0.0, 0.0, V, np.diag([1.0, eta]), 40000)
    slope = (rec[-1] - rec[9999]) / 30000
    assert slope == pytest.approx(rate_H, rel=1e-3)
    assert abs(slope / (eta * V) - 1) > 5e-3  # distinguishes the discrete rate from eta V


# ------------------------------------------------------------------------ simulation
@pytest.mark.parametrize("matched", [False, True])
def test_1d_stationary_variance(matched):
    """TC-16: N(0, 2), additive noise V = 3, eta = 0.01, alpha = 0.1, beta_hat in {0, eta V/2}.
    Predictions Var theta = 2.3030 / 2.0026 and the stationary Var v, Cov(theta, v).

    Three z-scores per case: failure probability < 6e-5 per case.
    """
    a, eta, alpha, V = 0.5, 0.01, 0.1, 3.0
    bh = eta * V / 2 if matched else 0.0
    t = Gaussian(np.zeros(1), np.array([[2.0]]))
    k = get("sghmc")(t, AdditiveNoise(t, V), get_backend(), step_size=eta, alpha=alpha, beta_hat=bh)
    rng = HostRandom(7 + matched, get_backend())
    s = k.init(t.initial_position(rng, 256), rng)
    th_, v_ = [], []
    for i in range(4800):
        s, _ = k.step(s, rng, False)
        if i >= 800:
            th_.append(s.position[:, 0])
            v_.append(s.velocity[:, 0])
    x, v = np.stack(th_, 1), np.stack(v_, 1)
    S = np.asarray(th.stationary_cov_1d(a, eta, alpha, bh, V), dtype=float)
    assert abs(chain_z(x * x, S[0, 0])) < Z_MAX
    assert abs(chain_z(v * v, S[1, 1])) < Z_MAX
    assert abs(chain_z(x * v, S[0, 1])) < Z_MAX


def test_multid_stationary_covariance_run_chains():
    """d = 2 correlated Gaussian, anisotropic noise covariance C, through run_chains: the theta block of
    the 4x4 discrete Lyapunov solution.  Three z-scores: failure probability < 6e-5."""
    P = np.array([[1.5, 0.4], [0.4, 0.8]])
    C = np.array([[2.0, -0.5], [-0.5, 1.0]])
    t = Gaussian(np.array([1.0, -2.0]), np.linalg.inv(P))
    res = smile_ref.run_chains("sghmc", t, gradient=AdditiveNoise(t, C), n_chains=256, n_steps=4000,
                               burn_in=800, seed=3, step_size=0.02, alpha=0.2, beta_hat=0.01, progress=False)
    S = th.stationary_cov(P, 0.02, 0.2, 0.01, C)[:2, :2]
    assert np.all(np.abs(cov_z(res.samples, t.mean, S)) < Z_MAX)
    assert res.n_gradient_evals == 4801.0 and res.n_rejected == 0


def test_energy_growth_without_friction():
    """TC-18 in SGD-momentum form: U = theta^2/2, V = 1, eta = 0.01, alpha = 1e-9 (alpha = 0 is not
    allowed): E[H_K] (H = a theta^2 + v^2/eta) after K = 2000 steps equals the exact moment recursion
    (about 2 + K eta V = 22), and the simulated growth is linear at rate eta V.

    Two z-scores over 512 independent chains: failure probability < 4e-5.
    """
    eta, alpha, V, K = 0.01, 1e-9, 1.0, 2000
    t = Gaussian(np.zeros(1), np.eye(1))
    be = get_backend()
    k = get("sghmc")(t, AdditiveNoise(t, V), be, step_size=eta, alpha=alpha)
    rng = HostRandom(12, be)
    s = k.init(t.initial_position(rng, 512), rng)
    H = []
    for _ in range(K):
        s, _ = k.step(s, rng, False)
        H.append(s.position[:, 0] ** 2 + s.velocity[:, 0] ** 2 / eta)
    H = np.stack(H, 1)  # (chains, K)
    rec = th.moment_recursion(1.0, eta, alpha, 0.0, V, np.diag([1.0, eta]), K)
    assert rec[-1] == pytest.approx(2 + K * eta * V, rel=0.02)
    assert abs(chain_z(H[:, -1:], rec[-1])) < Z_MAX
    # growth between K/2 and K, per chain (independent across chains), against eta V
    growth = (H[:, -1] - H[:, K // 2 - 1])[:, None] / (K // 2)
    assert abs(chain_z(growth, (rec[-1] - rec[K // 2 - 1]) / (K // 2))) < Z_MAX
    assert (rec[-1] - rec[K // 2 - 1]) / (K // 2) == pytest.approx(eta * V, rel=0.05)


# ----------------------------------------------------------------------- interface
def test_bad_inputs():
    t = Gaussian(np.zeros(2), np.eye(2))
    be = get_backend()
    build = get("sghmc")
    with pytest.raises(ValueError, match="step_size .* is required"):
        build(t, Exact(t), be)
    with pytest.raises(ValueError, match=r"beta_hat=0.2 > alpha=0.1: the injected variance"):
        build(t, Exact(t), be, step_size=0.01, alpha=0.1, beta_hat=0.2)
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"alpha \(friction\) must lie in \(0, 1\]"):
            build(t, Exact(t), be, step_size=0.01, alpha=bad)
    with pytest.raises(ValueError, match="beta_hat .* must be >= 0"):
        build(t, Exact(t), be, step_size=0.01, beta_hat=-0.01)
    with pytest.raises(TypeError, match="alpha must be a finite real number"):
        build(t, Exact(t), be, step_size=0.01, alpha="0.1")
    with pytest.raises(ValueError, match="step_size must be finite and > 0"):
        build(t, Exact(t), be, step_size=0.0)


def test_guardrail_rejects_nonfinite(backend):
    t = Gaussian(np.zeros(2), np.eye(2))
    k = get("sghmc")(t, NaNForChain0AfterInit(t), backend, step_size=0.05, alpha=0.1)
    rng = HostRandom(0, backend)
    s0 = k.init(t.initial_position(rng, 4), rng)
    s1, info = k.step(s0, rng, False)
    assert to_numpy(info["rejected"]).tolist() == [True, False, False, False]
    assert np.array_equal(to_numpy(s1.position)[0], to_numpy(s0.position)[0])
    assert np.all(to_numpy(s1.velocity)[0] == 0)  # a rejected step zeroes the velocity
    assert to_numpy(info["nonfinite"]).tolist() == [True, False, False, False]
    assert np.all(np.isfinite(to_numpy(s1.velocity)))
