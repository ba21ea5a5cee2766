"""Tests of the SG-MCLMC continuous-time theory (theory/sg_mclmc*.py) against SymPy and simulation.

The simulations use a minimal discrete SG-MCLMC written here (NumPy, host): McLachlan
``B(b1 eps) A(eps/2) B((1-2 b1) eps) A(eps/2) B(b1 eps)``, ``x += tau u``, no refresh,
noisy score ``g(x) + xi`` with one fresh ``xi`` per step shared by the step's two gradient
evaluations (the first B of a step reuses the last gradient of the previous step).
Standard errors come from independent chains (per-chain time averages, so no
autocorrelation correction is needed).  The theory modules are host/NumPy reference
code (no array-API path), so no backend matrix applies here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from smile_ref.theory import sg_mclmc as m
from smile_ref.theory import sg_mclmc_bias as mb
from smile_ref.theory import sg_mclmc_overdamped as mo
from smile_ref.theory import sg_mclmc_velocity as mv

from .sgmcmc_helpers import replica_z

B1 = m.B1_MCLACHLAN


def _rot(a):
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def sg_mclmc_run(target_cov, noise_cov, eps, n_steps, n_chains, burn, seed, precond=None):
    """Minimal discrete SG-MCLMC on N(0, target_cov); returns per-chain time averages of x x^T (M, d, d).

    ``precond`` (vector s): run in ``z = x / s`` with score ``s * g`` and noise ``s * xi``.
    """
    rng = np.random.default_rng(seed)
    St = np.asarray(target_cov, float)
    d = St.shape[0]
    s = np.ones(d) if precond is None else np.asarray(precond, float)
    prec = np.linalg.inv(St)
    Ln = np.linalg.cholesky(noise_cov)
    x = rng.standard_normal((n_chains, d)) @ np.linalg.cholesky(St).T
    u = rng.standard_normal((n_chains, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    gh = s * (-x @ prec + rng.standard_normal((n_chains, d)) @ Ln.T)
    acc = np.zeros((n_chains, d, d))
    for i in range(n_steps):
        u = m.esh_update_np(u, gh, B1 * eps)
        x = x + 0.5 * eps * s * u
        xi = rng.standard_normal((n_chains, d)) @ Ln.T
        gh = s * (-x @ prec + xi)
        u = m.esh_update_np(u, gh, (1 - 2 * B1) * eps)
        x = x + 0.5 * eps * s * u
        gh = s * (-x @ prec + xi)
        u = m.esh_update_np(u, gh, B1 * eps)
        if i >= burn:
            acc += x[:, :, None] * x[:, None, :]
    return acc / (n_steps - burn)


def _z(est, pred):
    """Per-entry z-scores of the chain mean of ``est`` (M, ...) against ``pred``."""
    return replica_z(est, pred)


# ----------------------------------------------------------------------------- item 1: drift, calculus
def test_series_expansion_sympy():
    assert m.series_residual() == (0, 0)


def test_second_order_map_error_is_third_order():
    """Deterministic: |exact - second-order| / |w|^3 stays bounded as |w| -> 0 (ratio of consecutive errors ~ 8)."""
    rng = np.random.default_rng(1)
    u = rng.standard_normal((50, 4))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    g = rng.standard_normal((50, 4))
    errs = []
    for tau in (0.08, 0.04, 0.02):
        errs.append(np.max(np.abs(m.esh_update_np(u, g, tau) - m.second_order_map_np(u, tau * g / 3))))
    assert 6.0 < errs[0] / errs[1] < 10.0 and 6.0 < errs[1] / errs[2] < 10.0


def test_noise_drift_sympy():
    assert m.noise_drift_residual(3) == sp.zeros(3, 1)


def test_noise_drift_simulation_is_stratonovich():
    """Noise-only ESH kicks ``u' = ESH(u, xi, eps)``: mean (u' - u - P w)/eps vs the predicted drift.

    ``P w`` (w = eps xi/(d-1)) has mean exactly 0, so subtracting it is a control variate.
    Two-sided z-test at 5 sigma per coordinate, Bonferroni over d = 4: failure prob < 3e-6.
    Higher-order bias is O(|w|^2) ~ 1e-4 relative, far below the SE (~2e-3 relative).
    The Itô drift (no tangential term) must be rejected (|z| > 20 somewhere).
    """
    rng = np.random.default_rng(7)
    d, eps, n = 4, 0.02, 400_000
    A = rng.standard_normal((d, d))
    Sigma = A @ A.T + np.diag([0.5, 1.0, 4.0, 9.0])
    u0 = rng.standard_normal(d)
    u0 /= np.linalg.norm(u0)
    xi = rng.standard_normal((n, d)) @ np.linalg.cholesky(Sigma).T
    u = np.broadcast_to(u0, (n, d))
    w = eps * xi / (d - 1)
    pw = w - (w @ u0)[:, None] * u0
    sample = (m.esh_update_np(u, xi, eps) - u - pw) / eps
    se = sample.std(0, ddof=1) / math.sqrt(n)
    z_s = (sample.mean(0) - m.predicted_noise_drift(u0, Sigma, eps)) / se
    z_i = (sample.mean(0) - m.predicted_noise_drift(u0, Sigma, eps, calculus="ito")) / se
    assert np.all(np.abs(z_s) < 5.0), z_s
    assert np.max(np.abs(z_i)) > 20.0, z_i


def test_diffusion_and_strat_minus_ito():
    u = np.array([0.6, 0.8, 0.0])
    S = np.diag([1.0, 2.0, 3.0])
    P = np.eye(3) - np.outer(u, u)
    np.testing.assert_allclose(m.predicted_noise_diffusion(u, S, 0.5), 0.5 / 4 * P @ S @ P, rtol=1e-14)
    np.testing.assert_allclose(m.strat_minus_ito_drift(u, S, 0.5), -(0.5 / 8) * P @ S @ u, rtol=1e-14)
    np.testing.assert_allclose(m.strat_minus_ito_drift(u, 2.0 * np.eye(3), 0.5), 0.0, atol=1e-15)


# ----------------------------------------------------------------------------- item 2: isotropic noise
def test_refresh_generator_sympy():
    Ls, d = sp.symbols("L d", positive=True)
    assert sp.simplify(m.refresh_generator_coefficient() - 2 / (d * Ls)) == 0
    assert m.refresh_coefficient_residual() == 0
    assert m.L_eff(0.1, 4.0, 5) == pytest.approx(2 * 16 / (5 * 0.4))
    assert m.L_eff(0.1, 4.0, 5, refresh="decorrelation") == pytest.approx(2 * 4 / 0.4)


@pytest.mark.parametrize("d", [3, 6])
def test_isotropic_noise_matches_refresh_at_L_eff(d):
    """Velocity autocorrelation at t = 1/lambda: SG noise-only map and BlackJAX refresh at L_eff both give e^{-1}.

    Noise-only SG map: one ESH flow of length eps per step with xi ~ N(0, s2 I) (the three
    sub-steps sharing xi compose to this).  Refresh: ``u <- normalise(u + nu z)`` twice per
    step with tau = eps/2.  Per-step kicks 0.05, so O(kick^2) bias ~3e-3 << 4.5 SE (~3e-2).
    Two-sided z-tests at 4.5 sigma, 2 comparisons: failure prob < 1.4e-5.  The project-notes
    L = 2(d-1)/(eps s2) must be rejected for d = 3 (factor (d-1)/d in the rate).
    """
    rng = np.random.default_rng(d)
    M, eps = 8000, 0.01
    s2 = 0.05**2 * (d - 1) / eps**2  # per-step tangential kick variance eps^2 s2/(d-1) = 0.05^2
    lam = m.decorrelation_rate(eps, s2, d)
    n = int(round(1.0 / (lam * eps)))
    t = n * eps
    u0 = rng.standard_normal((M, d))
    u0 /= np.linalg.norm(u0, axis=1, keepdims=True)

    def refresh(L):
        nu = math.sqrt((math.exp(2 * (eps / 2) / L) - 1) / d)
        u = u0.copy()
        for _ in range(2 * n):
            u = u + nu * rng.standard_normal((M, d))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
        return np.sum(u * u0, axis=1)

    u = u0.copy()
    for _ in range(n):
        u = m.esh_update_np(u, math.sqrt(s2) * rng.standard_normal((M, d)), eps)
    c_sg = np.sum(u * u0, axis=1)
    c_ref = refresh(m.L_eff(eps, s2, d))
    pred = math.exp(-lam * t)
    for c in (c_sg, c_ref):
        assert abs(c.mean() - pred) < 4.5 * c.std(ddof=1) / math.sqrt(M), (c.mean(), pred)
    if d == 3:
        c_notes = refresh(m.L_eff(eps, s2, d, refresh="decorrelation"))
        assert abs(c_notes.mean() - pred) > 10 * c_notes.std(ddof=1) / math.sqrt(M)


def test_isotropic_noise_sampler_unbiased_quick():
    """d = 3, isotropic noise Q = eps Σ/(d-1)^2 = 2 I, correlated target: discrete SG-MCLMC second moments
    equal the target covariance (continuous-time prediction; O(eps) discretisation << SE here).

    600 chains x 60 time units at eps = 0.02; z-test at 4.5 sigma on 6 entries: failure prob < 4.1e-5.
    """
    d, eps = 3, 0.02
    rng = np.random.default_rng(31)
    A = rng.standard_normal((d, d))
    St = A @ A.T / d + 0.3 * np.eye(d)
    Sigma = 2.0 * np.eye(d) * (d - 1) ** 2 / eps
    np.testing.assert_allclose(mb.predicted_second_moments(St, Sigma, eps), St)
    est = sg_mclmc_run(St, Sigma, eps, int(60 / eps), 600, int(6 / eps), 32)
    z = _z(est, St)[np.triu_indices(d)]
    assert np.all(np.abs(z) < 4.5), z


# ----------------------------------------------------------------------------- item 3: velocity law
@pytest.mark.parametrize("calculus", ["stratonovich", "ito"])
def test_velocity_law_sympy(calculus):
    S2 = sp.Matrix([[2, 0], [1, 1]])
    S3 = sp.Matrix([[2, 0, 0], [1, 1, 0], [0, -1, 3]])
    p2 = [sp.Rational(3, 5), sp.Rational(4, 5)]
    p3 = [sp.Rational(2, 7), sp.Rational(3, 7), sp.Rational(6, 7)]
    assert mv.circle_residual(calculus) == 0
    assert mv.stationarity_residual(S2, p2, calculus) == 0
    assert mv.stationarity_residual(S3, p3, calculus) == 0
    other = "ito" if calculus == "stratonovich" else "stratonovich"
    assert mv.stationarity_residual(S3, p3, calculus, beta=mv.velocity_law_exponent(3, other)) != 0
    assert mv.uniform_defect_residual(S3, p3, calculus) == 0
    assert mv.uniform_defect_residual(S2, p2, calculus) == 0


def test_velocity_moments_closed_forms():
    """d = 2 Itô law is ACG: E[u1^2] = sqrt(l1)/(sqrt(l1)+sqrt(l2)); isotropic: I/d; trace 1."""
    np.testing.assert_allclose(mv.velocity_second_moments(np.diag([1.0, 9.0]), "ito"), np.diag([0.25, 0.75]), atol=1e-9)
    np.testing.assert_allclose(mv.velocity_second_moments(np.eye(4)), np.eye(4) / 4, atol=1e-9)
    C = mv.velocity_second_moments(np.diag([1.0, 2.0, 30.0]))
    assert np.trace(C) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("d", [2, 3])
def test_velocity_law_simulation(d):
    """Noise-only discrete map: chain-averaged E[u u^T] vs the Stratonovich law; Itô (ACG) rejected.

    4000 independent chains, per-chain time averages after burn-in; per-step kick ~0.07
    (O(kick^2) bias ~5e-3 relative).  z-test at 4.5 sigma on the d(d+1)/2 entries (Bonferroni):
    failure prob < 4e-5.
    """
    rng = np.random.default_rng(10 + d)
    lam = np.array([1.0, 9.0, 3.0])[:d]
    Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    Sigma = (Q * lam) @ Q.T
    eps = 0.07 * (d - 1) / math.sqrt(lam.mean())
    M, n, burn = 4000, 3000, 1000
    Ls = np.linalg.cholesky(Sigma)
    u = rng.standard_normal((M, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    acc = np.zeros((M, d, d))
    for i in range(n):
        u = m.esh_update_np(u, rng.standard_normal((M, d)) @ Ls.T, eps)
        if i >= burn:
            acc += u[:, :, None] * u[:, None, :]
    est = acc / (n - burn)
    iu = np.triu_indices(d)
    z_s = _z(est, mv.velocity_second_moments(Sigma))[iu]
    z_i = _z(est, mv.velocity_second_moments(Sigma, "ito"))[iu]
    assert np.all(np.abs(z_s) < 4.5), z_s
    assert np.max(np.abs(z_i)) > 20, z_i


# ----------------------------------------------------------------------------- item 3: bias, d = 2
ST2 = np.array([[1.0, 0.3], [0.3, 0.5]])


def test_fp_isotropic_is_unbiased():
    """Galerkin solve with isotropic noise reproduces the target covariance (deterministic)."""
    C = mb.fp_second_moments_2d(ST2, 3.0 * np.eye(2), 0.5)
    np.testing.assert_allclose(C, ST2, atol=1e-9)
    np.testing.assert_allclose(mb.predicted_second_moments(ST2, np.eye(2), 0.1), ST2)


def test_fp_strong_noise_approaches_overdamped_limit():
    """Deterministic: FP at Q = f Σ (f = 2.5, 5, 10) converges to the exact d = 2 overdamped limit.

    Observed (and asserted) rate: error ~ 1/Q^2 (ratios 0.27, 0.26); the O(1/Q) term
    vanishing is consistent with the u -> -u symmetry but not proven here.  Truncation
    changes (coarse vs fine) are ~1e-4, below the smallest difference tested (5e-4).
    """
    Sd = np.diag([1.0, 8.0])
    with pytest.warns(RuntimeWarning, match="per-step kick"):  # eps = 1: only the continuous-time law is compared
        C_od = mb.predicted_second_moments(ST2, Sd, 1.0, regime="overdamped")
    e = [np.max(np.abs(mb.fp_second_moments_2d(ST2, f * Sd, 1.0) - C_od)) for f in (2.5, 5.0, 10.0)]
    assert e[2] < 1e-3 and 0.2 < e[1] / e[0] < 0.32 and 0.2 < e[2] / e[1] < 0.32, e


def test_overdamped_closure_exact_for_isotropic():
    A, D = mb.overdamped_coefficients_closure(np.eye(5) * 2.0)
    np.testing.assert_allclose(A, D, rtol=1e-9)
    A2, D2 = mb.overdamped_coefficients_2d(np.eye(2))
    np.testing.assert_allclose(A2, D2, rtol=1e-9, atol=1e-12)


def _fp_vs_sim(Q, eps, T, M, seed):
    d = 2
    Sigma = Q * (d - 1) ** 2 / eps
    n = int(T / eps)
    est = sg_mclmc_run(ST2, Sigma, eps, n, M, n // 10, seed)
    pred = mb.fp_second_moments_2d(ST2, Sigma, eps)
    pred_ito = mb.fp_second_moments_2d(ST2, Sigma, eps, calculus="ito")
    iu = np.triu_indices(d)
    return _z(est, pred)[iu], _z(est, pred_ito)[iu], _z(est, ST2)[iu]


def test_fp_prediction_vs_discrete_sampler_quick():
    """d = 2, Q = eps Σ = R diag(0.5, 4) R^T: discrete SG-MCLMC vs Fokker-Planck prediction.

    1000 chains x 100 time units at eps = 0.02.  z-test at 4.5 sigma on 3 entries: failure
    prob < 2.1e-5 (discretisation bias ~1e-3, measured, vs SE ~6e-3).  The unbiased value and
    the Itô prediction must both be rejected (|z| > 8).
    """
    Q = _rot(0.4) @ np.diag([0.5, 4.0]) @ _rot(0.4).T
    z, z_ito, z_target = _fp_vs_sim(Q, 0.02, 100.0, 1000, 3)
    assert np.all(np.abs(z) < 4.5), z
    assert np.max(np.abs(z_ito)) > 8 and np.max(np.abs(z_target)) > 8, (z_ito, z_target)


@pytest.mark.slow
@pytest.mark.parametrize("qdiag", [(0.05, 0.4), (2.0, 16.0)])
def test_fp_prediction_vs_discrete_sampler_slow(qdiag):
    """Weak and strong noise, eps = 0.01, 2000 chains x 200 time units; same test and failure prob."""
    Q = _rot(1.1) @ np.diag(qdiag) @ _rot(1.1).T
    z, z_ito, z_target = _fp_vs_sim(Q, 0.01, 200.0, 2000, 5)
    assert np.all(np.abs(z) < 4.5), z
    assert np.max(np.abs(z_target)) > 8, z_target


def test_overdamped_galerkin_converges_to_exact_d2():
    """Deterministic: Galerkin temperatures (m = 0..3) approach the exact d = 2 cell solution monotonically;
    m = 0 equals the linear closure."""
    S = np.diag([1.0, 8.0])
    A, D = mb.overdamped_coefficients_2d(S)
    exact = np.diag(D) / np.diag(A)
    errs = [np.max(np.abs(mo.effective_temperatures(S, k) - exact)) for k in range(4)]
    assert errs[3] < 1e-3 and all(errs[k + 1] < 0.6 * errs[k] for k in range(3)), errs
    Ac, Dc = mb.overdamped_coefficients_closure(S)
    np.testing.assert_allclose(mo.effective_temperatures(S, 0), np.diag(Dc) / np.diag(Ac), rtol=1e-8)
    np.testing.assert_allclose(mo.effective_temperatures(np.eye(4) * 3.0, 1), 1.0, rtol=1e-8)


@pytest.mark.slow
def test_overdamped_prediction_vs_discrete_sampler_d4():
    """d = 4, Σ_t = I, noise diag(1, 2, 4, 8): strong noise (velocity decorrelation rate 8 per unit time,
    target scale 1) vs the overdamped Galerkin prediction C = diag(T_i).

    400 chains x 600 time units at eps = 0.0025.  z-test at 4.5 sigma on the 4 diagonal entries:
    failure prob < 3e-5, ignoring the finite-rate correction (O(1/rate^2) in d = 2, measured there;
    not derived for d = 4).  The target (T_i = 1) must be rejected.
    """
    d, eps, gamma = 4, 0.0025, 8.0
    lam = np.array([1.0, 2.0, 4.0, 8.0])
    Sigma = np.diag(lam / lam.sum() * 2 * gamma * (d - 1) ** 2 / eps)  # kappa2 tr Σ / 2 = gamma
    pred = mb.predicted_second_moments(np.eye(d), Sigma, eps, regime="overdamped")
    n = int(600 / eps)
    est = sg_mclmc_run(np.eye(d), Sigma, eps, n, 400, n // 5, 21)
    z = np.diagonal(_z(est, pred))
    assert np.all(np.abs(z) < 4.5), z
    assert np.max(np.abs(np.diagonal(_z(est, np.eye(d))))) > 8


# ----------------------------------------------------------------------------- item 4: preconditioning
def test_preconditioning_diagonal_noise_unbiased():
    Sd = np.diag([0.3, 12.0])
    np.testing.assert_allclose(mb.preconditioned_second_moments(ST2, Sd, 0.1), ST2)
    s = mb.noise_preconditioner(Sd)
    assert np.sqrt(np.mean(s**2)) == pytest.approx(1.0) and s[0] / s[1] == pytest.approx(math.sqrt(12.0 / 0.3))


def test_preconditioned_residual_bias_vs_sampler_quick():
    """Correlated noise (corr 0.8), diagonal pSMILE-style S: residual bias predicted in z-space vs simulation.

    1000 chains x 100 time units, eps = 0.02; z-test at 4.5 sigma on 3 entries: failure prob < 2.1e-5.
    The target covariance (no residual bias) must be rejected (|z| > 8).
    """
    eps = 0.02
    sd = np.array([0.7, 2.8])
    R = np.array([[1.0, 0.8], [0.8, 1.0]])
    Q = R * np.outer(sd, sd) * 2.0  # per-unit-time diffusion eps Σ
    Sigma = Q / eps
    s = mb.noise_preconditioner(Sigma)
    pred = mb.preconditioned_second_moments(ST2, Sigma, eps)
    est = sg_mclmc_run(ST2, Sigma, eps, int(100 / eps), 1000, 500, 11, precond=s)
    iu = np.triu_indices(2)
    z = _z(est, pred)[iu]
    assert np.all(np.abs(z) < 4.5), z
    assert np.max(np.abs(_z(est, ST2)[iu])) > 8


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs():
    with pytest.raises(ValueError, match="eps must be a positive"):
        m.L_eff(-1.0, 1.0, 3)
    with pytest.raises(ValueError, match="d must be an int >= 2"):
        m.L_eff(0.1, 1.0, 1)
    with pytest.raises(ValueError, match="refresh must be"):
        m.L_eff(0.1, 1.0, 3, refresh="x")
    with pytest.raises(ValueError, match="noise_cov must be a square"):
        m.predicted_noise_drift(np.ones(3), np.ones((3, 2)), 0.1)
    with pytest.raises(ValueError, match="symmetric"):
        m.predicted_noise_drift(np.ones(2), np.array([[1.0, 0.5], [0.0, 1.0]]), 0.1)
    with pytest.raises(ValueError, match="calculus must be"):
        m.predicted_noise_drift(np.array([1.0, 0.0]), np.eye(2), 0.1, calculus="x")
    with pytest.raises(ValueError, match="target_cov must be positive definite"):
        mb.predicted_second_moments(np.zeros((2, 2)), np.eye(2), 0.1)
    with pytest.raises(ValueError, match="regime must be"):
        mb.predicted_second_moments(np.eye(2), np.diag([1.0, 2.0]), 0.1, regime="x")
    with pytest.raises(ValueError, match="d = 2 only"):
        mb.predicted_second_moments(np.eye(3), np.diag([1.0, 2.0, 3.0]), 0.1, regime="fokker-planck")
    with pytest.raises(ValueError, match="precond must be a positive vector"):
        mb.preconditioned_second_moments(np.eye(2), np.eye(2), 0.1, precond=np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="n_hermite must be an int"):
        mb.fp_second_moments_2d(np.eye(2), np.diag([1.0, 2.0]), 0.1, n_hermite=3)
