"""Constant SGD (Mandt, Hoffman & Blei 2017): theory (SymPy, Lyapunov) and simulation vs prediction.

Statistical tests use many independent chains started at 0 and run for ``burn = 25/(1 - rho)``
steps (``rho`` the spectral radius of the linear recursion: the remaining initialisation bias is
below ``e^{-50}`` relative), then compare the empirical second moments with an exact prediction.
The toy model's iterates are exactly Gaussian with mean 0, so ``XX^T/n`` has the exact standard
error ``sqrt((S_ii S_jj + S_ij^2)/n)``; for real subsampling (non-Gaussian) the SE is estimated
from the per-chain products.  Unless stated otherwise a comparison is a two-sided z-test at
4.5 sigma on the ``D(D+1)/2 = 6`` distinct entries (Bonferroni): failure probability
``< 6 * 6.8e-6 = 4.1e-5`` per comparison.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sympy as sp

import smile_ref.theory.constant_sgd as th
from smile_ref import run_chains
from smile_ref.backend import to_numpy
from smile_ref.preconditioners import sgd_optimal as so
from smile_ref.samplers.constant_sgd import ConstantSGD
from tests.conftest import assert_backend, tol_for
from tests.test_constant_sgd import A0, C0, NP64, Z, _burn, _rho, _run, _se, _toy, _zcov


# ------------------------------------------------------------------------------------------------
# theory (deterministic): SymPy closed forms and Lyapunov identities
# ------------------------------------------------------------------------------------------------
def test_sympy_sgd_discrete_vs_ou_1d():
    """TC-07, 1-D: exact/OU = 2/(2 - eps A), -> 1 as eps -> 0."""
    ratio = sp.simplify(th.sgd_discrete_variance_1d() / th.sgd_ou_variance_1d())
    assert sp.simplify(ratio - 2 / (2 - th.eps * th.A)) == 0
    assert sp.limit(ratio, th.eps, 0) == 1


def test_ou_error_is_first_order_in_eps():
    """Multi-D (non-commuting A, C): ||Sigma_OU - Sigma_exact|| / ||Sigma_exact|| = O(eps)."""
    errs = []
    for e in (1e-1, 1e-2, 1e-3):
        d = th.sgd_discrete_covariance(A0, C0, 5, e)
        errs.append(np.linalg.norm(th.sgd_ou_covariance(A0, C0, 5, e) - d) / np.linalg.norm(d))
    assert 8 < errs[0] / errs[1] < 12 and 9 < errs[1] / errs[2] < 11
    # Eq. 13 residual of the OU solution
    Sg = th.sgd_ou_covariance(A0, C0, 5, 0.01)
    np.testing.assert_allclose(A0 @ Sg + Sg @ A0, 0.01 / 5 * C0, atol=1e-14)


def test_thm1_optimal_learning_rate():
    """Mandt Thm 1 (Eq. 15): SymPy derivation, and the closed form equals the numerical KL minimiser."""
    assert sp.simplify(th.optimal_learning_rate_expr() - 2 * th.S * th.D / (th.N * th.trC)) == 0
    S, N = 10, 1000
    e_star = so.optimal_learning_rate(S, N, 3, C0)
    assert e_star == pytest.approx(2 * S * 3 / (N * np.trace(C0)), rel=1e-15)
    assert so.optimal_learning_rate(S, N, 3, np.diag(C0)) == pytest.approx(e_star, rel=1e-15)
    assert th.optimal_learning_rate_numeric(A0, C0, S, N) == pytest.approx(e_star, rel=1e-5)
    kl = lambda e: th.kl_to_posterior(th.sgd_ou_covariance(A0, C0, S, e), A0, N)  # noqa: E731
    assert kl(e_star) < min(kl(0.9 * e_star), kl(1.1 * e_star))


def test_thm7_sqrt_preconditioner_rate():
    S, N = 10, 1000
    G_inv = np.diag(1 / np.sqrt(np.diag(C0)))
    f = lambda u: th.kl_to_posterior(th.sgd_ou_covariance(A0, C0, S, math.exp(u), G_inv), A0, N)  # noqa: E731
    import scipy.optimize as sopt

    u = sopt.minimize_scalar(f, bracket=(-10, 0), tol=1e-12).x
    assert so.optimal_learning_rate_sqrt(S, N, C0) == pytest.approx(math.exp(u), rel=1e-5)


@pytest.mark.parametrize("seed", range(5))
def test_thm2_cor4_full_preconditioner_gives_posterior(seed):
    """Cor. 4: with H* = (2S/N) C^{-1} the OU covariance is exactly (N A)^{-1} for any SPD A, C."""
    r = np.random.default_rng(seed)
    M1, M2 = r.normal(size=(4, 4)), r.normal(size=(4, 4))
    A, C = M1 @ M1.T + 0.3 * np.eye(4), M2 @ M2.T + 0.3 * np.eye(4)
    S, N, eps = 7, 5000, 0.3
    H = so.optimal_preconditioner(S, N, C, learning_rate=eps)
    np.testing.assert_allclose(eps * H, so.optimal_preconditioner(S, N, C), rtol=1e-12)
    Sig = th.sgd_ou_covariance(A, C, S, eps, H)
    np.testing.assert_allclose(Sig, np.linalg.inv(N * A), rtol=1e-8, atol=1e-14)
    # the exact discrete recursion approaches it as S/N -> 0 (discretisation bias O(S/N))
    errs = [np.linalg.norm(th.sgd_discrete_covariance(A, C, S, 1.0, so.optimal_preconditioner(S, n, C)) * n @ A - np.eye(4))
            for n in (10**4, 10**5)]
    assert errs[1] < 0.15 * errs[0]


def test_cor3_diagonal_preconditioner():
    """Cor. 3 is KL-optimal for diagonal C (where it equals H*) and not for correlated C (errata)."""
    S, N = 10, 1000
    Cd = np.diag(np.diag(C0))
    h, kl = th.optimal_diagonal_preconditioner_numeric(A0, Cd, S, N)
    np.testing.assert_allclose(h, so.optimal_diagonal_preconditioner(S, N, Cd), rtol=1e-5)
    assert abs(kl) < 1e-10
    h_cor3 = so.optimal_diagonal_preconditioner(S, N, C0)
    h_opt, kl_opt = th.optimal_diagonal_preconditioner_numeric(A0, C0, S, N)
    kl_cor3 = th.kl_to_posterior(th.sgd_ou_covariance(A0, C0, S, 1.0, np.diag(h_cor3)), A0, N)
    assert kl_cor3 > kl_opt + 0.01
    assert np.max(np.abs(h_opt / h_cor3 - 1)) > 0.1
    # the proof's identity tr(A Sigma) = tr(C H)/(2S) holds for every H; the log-det step does not
    Sg = th.sgd_ou_covariance(A0, C0, S, 1.0, np.diag(h_opt))
    assert np.trace(A0 @ Sg) == pytest.approx(np.trace(C0 @ np.diag(h_opt)) / (2 * S), rel=1e-10)


def test_cor3_seed_theory_counterexample():
    """The seed-theory note's D=3, N=1000, S=10, seed-0 example: its Cor. 3 values reproduce; the
    numerical optimum we find, (7.588, 2.014, 18.136)e-3, has lower KL than the note's quoted
    optimum (7.90, 1.89, 18.26)e-3 (errata: the note's optimum is slightly off, its conclusion holds)."""
    r = np.random.default_rng(0)
    M = r.normal(size=(3, 3))
    A = M @ M.T + 0.5 * np.eye(3)
    M = r.normal(size=(3, 3))
    C = M @ M.T + 0.5 * np.eye(3)
    h3 = so.optimal_diagonal_preconditioner(10, 1000, C)
    np.testing.assert_allclose(h3, [8.03e-3, 2.66e-3, 13.96e-3], rtol=2e-3)
    h, kl = th.optimal_diagonal_preconditioner_numeric(A, C, 10, 1000)
    np.testing.assert_allclose(h, [7.5877e-3, 2.0139e-3, 18.1357e-3], rtol=1e-3)
    kl_note = th.kl_to_posterior(th.sgd_ou_covariance(A, C, 10, 1.0, np.diag([7.90e-3, 1.89e-3, 18.26e-3])), A, 1000)
    kl3 = th.kl_to_posterior(th.sgd_ou_covariance(A, C, 10, 1.0, np.diag(h3)), A, 1000)
    assert kl < kl_note < kl3


def test_momentum_theory():
    """Mandt Eq. 25 vs the exact Lyapunov equation of the momentum SDE (Eq. 24)."""
    md = th.momentum_discrete_variance_1d()
    e, a, b2, s, mu = th.eps, th.A, th.B2, th.S, th.mu
    assert sp.simplify(md - (e * b2 / (2 * mu * s * a)) * 2 * (2 - mu) / (4 - 2 * mu - e * a)) == 0
    assert sp.simplify(th.momentum_sde_variance_1d() - e * b2 / (2 * mu * s * a)) == 0
    # commuting A, C: Eq. 25 exact
    lam, U = np.linalg.eigh(A0)
    Cc = U @ np.diag([1.0, 2.0, 3.0]) @ U.T
    np.testing.assert_allclose(th.momentum_sde_covariance(A0, Cc, 5, 0.01, 0.05),
                               th.momentum_printed_covariance(A0, Cc, 5, 0.01, 0.05), rtol=1e-9)
    # non-commuting: errors (A0, C0, eps = 0.01, S = 5) 26%, 12%, 3.8%, 0.17%, 7e-5 for mu = .05, .1, .2, 1, 5
    rel = [np.linalg.norm(th.momentum_sde_covariance(A0, C0, 5, 0.01, m_) - th.momentum_printed_covariance(A0, C0, 5, 0.01, m_))
           / np.linalg.norm(th.momentum_sde_covariance(A0, C0, 5, 0.01, m_)) for m_ in (0.05, 0.1, 0.2, 1.0, 5.0)]
    np.testing.assert_allclose(rel, [0.2635, 0.1177, 0.0384, 0.00172, 6.89e-5], rtol=5e-3)
    # discrete momentum SGD -> SDE as eps -> 0 (mu fixed)
    errs = [np.linalg.norm(th.sgd_discrete_covariance(A0, C0, 5, e_, momentum=0.9) - th.momentum_sde_covariance(A0, C0, 5, e_, 0.1))
            / np.linalg.norm(th.momentum_sde_covariance(A0, C0, 5, e_, 0.1)) for e_ in (1e-2, 1e-3, 1e-4)]
    assert errs[0] > 5 * errs[1] > 25 * errs[2]


def test_sgld_section51_correction():
    """Mandt Sec. 5.1: the Lyapunov equation that follows from the printed SGLD update."""
    e, a, b2, s, n = th.eps, th.A, th.B2, th.S, th.N
    disc = th.sgld_discrete_variance_1d()
    assert sp.simplify(n * a * disc - (1 + e * n**2 * b2 / (4 * s)) / (1 - e * n * a / 4)) == 0
    # exact discrete = corrected continuous / (1 - eps N A / 4): only the drift discretisation differs
    assert sp.simplify(disc * (1 - e * n * a / 4) - th.sgld_continuous_variance_1d()) == 0
    assert sp.simplify(th.sgld_continuous_variance_1d(printed=True) - th.sgld_continuous_variance_1d()) != 0
    # multi-D: drift (eps/2) N A and per-step covariance eps I + (eps^2 N^2/4) C/S of the printed update
    import scipy.linalg as sla

    S, N, eps = 10, 100, 0.002
    F = 0.5 * eps * N * A0
    Q = eps * np.eye(3) + 0.25 * eps**2 * N**2 * C0 / S
    np.testing.assert_allclose(sla.solve_continuous_lyapunov(F, Q), th.sgld_continuous_covariance(A0, C0, S, N, eps), rtol=1e-10)


def _enumerate_eq21(vals, S, replace):
    idx = itertools.product(range(len(vals)), repeat=S) if replace else itertools.permutations(range(len(vals)), S)
    out = [(vals[i[0]] - np.mean(vals[list(i)])) ** 2 for i in idx]
    return float(np.mean(out))


@pytest.mark.parametrize("replace", [True, False])
def test_eq21_bias_factor_by_enumeration(replace):
    """E[(g_1 - g_S)^2] by enumerating every (ordered) batch of a population of N = 6 numbers."""
    vals = np.array([0.3, -1.2, 2.5, 0.0, 1.1, -0.7])
    Npop, S = 6, 3
    c = float(np.var(vals))  # population variance (divisor N)
    fac = th.eq21_bias_factor(replace).subs({th.S: S, th.N: Npop})
    assert _enumerate_eq21(vals, S, replace) == pytest.approx(float(fac) * c, rel=1e-12)
    assert sp.simplify(th.eq21_bias_factor(True) - (th.S - 1) / th.S) == 0


def test_iterate_average_theory():
    """Mandt Eq. 30-31: T Cov(theta_bar_T) -> A^{-1}(C/S)A^{-1} for every eps, H and momentum."""
    assert sp.simplify(th.iterate_average_limit_1d() - th.B2 / (th.S * th.A**2)) == 0
    lim = th.iterate_average_limit(A0, C0, 5)
    for eps, H, m_ in ((0.2, None, 0.0), (0.05, np.array([0.5, 1.0, 2.0]), 0.0), (0.01, None, 0.8)):
        T = 10**6
        np.testing.assert_allclose(T * th.iterate_average_covariance(A0, C0, 5, eps, T, H, m_), lim, rtol=2e-3, atol=1e-4)
    # 1-D finite-T formula
    v = th.iterate_average_variance_1d().subs({th.eps: 0.1, th.A: 2.0, th.B2: 3.0, th.S: 4, th.T: 50})
    assert float(v) == pytest.approx(th.iterate_average_covariance([[2.0]], [[3.0]], 4, 0.1, 50)[0, 0], rel=1e-12)


def test_iasg_eq33_is_the_continuous_limit():
    """Eq. 33 (A5: C = A) vs the exact discrete window covariance, at fixed eps*T as eps -> 0."""
    errs = []
    for eps in (1e-2, 1e-3):
        T = int(round(5.0 / eps))
        exact = th.iterate_average_covariance(A0, A0, 10, eps, T)
        errs.append(np.linalg.norm(th.iasg_window_covariance_eq33(A0, 10, eps, T) - exact) / np.linalg.norm(exact))
    assert errs[1] < 0.15 * errs[0]


# ------------------------------------------------------------------------------------------------
# simulation vs prediction
# ------------------------------------------------------------------------------------------------
def test_sim_stationary_covariance_exact_discrete_not_ou():
    """TC-07: eps = 0.2 (eps lambda_max = 0.64): the simulated covariance matches the exact discrete
    Lyapunov solution (z-test, failure prob < 4.1e-5) and rejects the OU prediction of Eq. 13
    (max |z| > 10: the OU error is 10-40 % here, the SE about 1.4 %)."""
    t, g = _toy(S=5)
    eps, n = 0.2, 20000
    k = ConstantSGD(t, g, NP64, learning_rate=eps)
    st, _ = _run(k, n, 1, seed=11, n_warmup=_burn(A0, eps))
    X = to_numpy(st.position)
    assert np.max(np.abs(_zcov(X, th.sgd_discrete_covariance(A0, C0, 5, eps)))) < Z
    assert np.max(np.abs(_zcov(X, th.sgd_ou_covariance(A0, C0, 5, eps)))) > 10


def test_sim_optimal_preconditioner_gives_posterior():
    """Thm 2 / Cor 4: with H* = (2S/N) C^{-1} and learning_rate = 1 the stationary covariance is the
    posterior (N A)^{-1} (N = 2000, S = 5, 2000 chains).  The exact discrete covariance differs from
    it by the O(S/N) discretisation bias, asserted below to shift every z-score by < 0.5 (1.4 at
    20000 chains, hence the chain count); with threshold 4.5 the failure probability is
    < 6 P(|Z| > 4) = 3.8e-4 (and < 4.1e-5 against the exact discrete prediction)."""
    S, N, n = 5, 2000, 2000
    t, g = _toy(S=S, N=N)
    H = so.optimal_preconditioner(S, N, C0)
    k = ConstantSGD(t, g, NP64, learning_rate=1.0, preconditioner=H)
    post = np.linalg.inv(N * A0)
    exact = th.sgd_discrete_covariance(A0, C0, S, 1.0, H)
    assert np.max(np.abs((exact - post) / _se(post, n))) < 0.5
    st, _ = _run(k, n, 1, seed=12, n_warmup=_burn(A0, 1.0, H))
    X = to_numpy(st.position)
    assert np.max(np.abs(_zcov(X, post))) < Z
    assert np.max(np.abs(_zcov(X, exact))) < Z
    # power: plain SGD at Thm 1's optimal scalar rate is far from the posterior (KL > 0)
    e1 = so.optimal_learning_rate(S, N, 3, C0)
    assert th.kl_to_posterior(th.sgd_discrete_covariance(A0, C0, S, e1), A0, N) > 0.2


def test_sim_momentum_rejects_eq25_for_noncommuting():
    """Momentum m = 0.95 (Mandt mu = 0.05), eps = 0.01, non-commuting A, C: the simulation matches
    the exact discrete (theta, v) Lyapunov solution (failure prob < 4.1e-5), which is within 0.6 %
    of the exact SDE solution, and rejects Eq. 25 as printed (26 % off; max |z| > 8)."""
    t, g = _toy(S=5)
    eps, m_, n = 0.01, 0.95, 5000
    k = ConstantSGD(t, g, NP64, learning_rate=eps, momentum=m_)
    st, _ = _run(k, n, 1, seed=13, n_warmup=_burn(A0, eps, None, m_))
    X = to_numpy(st.position)
    assert np.max(np.abs(_zcov(X, th.sgd_discrete_covariance(A0, C0, 5, eps, momentum=m_)))) < Z
    assert np.max(np.abs(_zcov(X, th.momentum_printed_covariance(A0, C0, 5, eps, 1 - m_)))) > 8


@pytest.mark.parametrize("eps, H", [(0.2, None), (0.1, None), (0.2, np.array([0.5, 1.0, 2.0]))])
def test_sim_iterate_average(eps, H):
    """Mandt Eq. 30-31: T Cov(theta_bar_T) over T = 1000 sampling steps (state.average) matches the
    exact finite-T prediction, which is within 1.5 % of the eps- and H-free limit A^{-1}(C/S)A^{-1}
    (the SE is 3 %).  theta_bar is exactly Gaussian with mean 0: z-test, failure prob < 4.1e-5 per case."""
    t, g = _toy(S=5)
    T, n = 1000, 2000
    k = ConstantSGD(t, g, NP64, learning_rate=eps, preconditioner=H)
    st, _ = _run(k, n, T, seed=14, n_warmup=_burn(A0, eps, H))
    assert st.n_averaged == T
    X = to_numpy(st.average)
    pred = th.iterate_average_covariance(A0, C0, 5, eps, T, H)
    lim = th.iterate_average_limit(A0, C0, 5)
    assert np.linalg.norm(T * pred - lim) / np.linalg.norm(lim) < 0.015
    assert np.max(np.abs(_zcov(X, pred))) < Z


def test_sim_iasg_window_means():
    """IASG with momentum 0.5: the first recorded window mean (window = thinning = 50) of each chain
    matches the exact window covariance (z-test, failure prob < 4.1e-5)."""
    t, g = _toy(S=5, N=250)
    eps, m_, W, n = 0.05, 0.5, 50, 10000
    burn = _burn(A0, eps, None, m_)
    res = run_chains("constant_sgd", t, gradient=g, n_chains=n, n_steps=W, burn_in=burn, thinning=W, seed=15,
                     backend="numpy", initial_position=np.zeros((n, 3)), learning_rate=eps, momentum=m_,
                     iasg=True, window=W, progress=False, block_size=4096)
    X = res.samples[:, 0, :]
    pred = th.iterate_average_covariance(A0, C0, 5, eps, W, None, m_)
    assert np.max(np.abs(_zcov(X, pred))) < Z
    assert np.max(np.abs(_zcov(X, th.sgd_discrete_covariance(A0, C0, 5, eps, momentum=m_)))) > 10  # not the iterates'


def test_sim_sgld_section51():
    """Mandt Sec. 5.1 SGLD (theta' = theta - (eps/2) N (A theta + xi) + sqrt(eps) z), simulated
    locally: matches the exact discrete covariance (failure prob < 4.1e-5); the printed
    correction (N/2)(A S + S A) = I + (eps N/(2S)) C is rejected (max |z| > 20)."""
    S, N, eps, n = 10, 100, 0.002, 20000
    r = np.random.default_rng(16)
    L = np.linalg.cholesky(C0 / S)
    Phi = np.eye(3) - 0.5 * eps * N * A0
    burn = int(math.ceil(25 / (1 - _rho(Phi))))
    x = np.zeros((n, 3))
    for _ in range(burn):
        x = x @ Phi.T - 0.5 * eps * N * r.standard_normal((n, 3)) @ L.T + math.sqrt(eps) * r.standard_normal((n, 3))
    assert np.max(np.abs(_zcov(x, th.sgld_discrete_covariance(A0, C0, S, N, eps)))) < Z
    assert np.max(np.abs(_zcov(x, th.sgld_continuous_covariance(A0, C0, S, N, eps, printed=True)))) > 20


def test_sim_eq21_bias_correction():
    """Eq. 21 term without/with the S/(S-1) correction, i.i.d. Gaussian per-example gradients (S = 4).
    The corrected mean over 40000 draws is within 4.5 SE (empirical SE) of C on all 6 entries
    (failure prob < 4.1e-5); the uncorrected (3/4) C is rejected; the within-batch covariance too."""
    r = np.random.default_rng(17)
    n, S = 40000, 4
    gpe = r.standard_normal((n, S, 3)) @ np.linalg.cholesky(C0).T + np.array([1.0, -2.0, 0.5])
    iu = np.triu_indices(3)
    for sample in (so.eq21_sample(gpe), so.batch_covariance_sample(gpe)):
        m = sample.mean(axis=0)[iu]
        se = sample.std(axis=0, ddof=1)[iu] / math.sqrt(n)
        assert np.max(np.abs((m - C0[iu]) / se)) < Z
    raw = so.eq21_sample(gpe) * (S - 1) / S
    z_raw = (raw.mean(axis=0)[iu] - C0[iu]) / (raw.std(axis=0, ddof=1)[iu] / math.sqrt(n))
    assert np.max(np.abs(z_raw)) > 10


def test_noise_estimators_backend(backend):
    r = np.random.default_rng(3)
    gh = r.standard_normal((5, 4, 3))
    g = backend.asarray(gh)
    e = so.eq21_sample(g)
    c = so.batch_covariance_sample(g)
    assert_backend(e, backend, (5, 3, 3))
    assert_backend(c, backend, (5, 3, 3))
    d = gh[:, 0, :] - gh.mean(axis=1)
    np.testing.assert_allclose(to_numpy(e), 4 / 3 * d[:, :, None] * d[:, None, :], rtol=tol_for(backend), atol=1e-6)
    np.testing.assert_allclose(to_numpy(c), np.stack([np.cov(x.T) for x in gh]), rtol=tol_for(backend), atol=1e-6)
    u = so.ema_update(e, c, 0.25)
    assert_backend(u, backend, (5, 3, 3))
    np.testing.assert_allclose(to_numpy(u), 0.75 * to_numpy(e) + 0.25 * to_numpy(c), rtol=tol_for(backend), atol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: so.optimal_learning_rate(0, 10, 3, C0), "S must be a positive integer"),
        (lambda: so.optimal_learning_rate(20, 10, 3, C0), "S .batch size. must be <= N"),
        (lambda: so.optimal_learning_rate(2, 10, 3, np.eye(2)), r"BBt must have shape \(3, 3\)"),
        (lambda: so.optimal_learning_rate(2, 10, 3, -np.eye(3)), "positive finite trace"),
        (lambda: so.optimal_preconditioner(2, 10, -np.eye(3)), "positive definite"),
        (lambda: so.optimal_preconditioner(2, 10, np.eye(3), learning_rate=0), "learning_rate must be"),
        (lambda: so.optimal_diagonal_preconditioner(2, 10, np.array([1.0, 0.0])), "strictly positive"),
        (lambda: so.eq21_sample(np.ones((2, 3))), r"shape \(n, S, d\)"),
        (lambda: so.eq21_sample(np.ones((2, 1, 3))), "S >= 2"),
        (lambda: so.ema_update(np.ones((2, 3, 3)), np.ones((2, 3, 3)), 0.0), "kappa must lie in"),
        (lambda: so.ema_update(np.ones((2, 3, 3)), np.ones((1, 3, 3)), 0.5), "same shape"),
    ],
)
def test_helper_validation(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ------------------------------------------------------------------------------------------------
# real subsampled linear regression (multiplicative, non-Gaussian mini-batch noise)
# ------------------------------------------------------------------------------------------------
def _linreg_exact_moments(X, y, s2_prior, s2_noise, S, eps, H):
    """Exact stationary mean and covariance of ``theta' = theta - eps H grad L_S`` for linear regression
    with ``S`` i.i.d. uniform indices per batch (independent of smile_ref).

    Per example ``grad l_i = a_i theta - b_i``, ``a_i = x_i x_i^T / s2_noise + I / (N s2_prior)``,
    ``b_i = x_i y_i / s2_noise``; ``theta' = F theta + c`` with ``F = mean_J (I - eps H a_J)``,
    ``c = mean_J eps H b_J``.  Mean: ``m = abar^{-1} bbar`` (the posterior mean).  Second moment:
    ``M = E[F M F^T] + E[F m c^T] + E[c m^T F^T] + E[c c^T]`` with
    ``E[F X G^T] = Fbar X Gbar^T + (1/S)(mean_i F_i X G_i^T - Fbar X Gbar^T)`` (i.i.d. indices),
    solved as a linear system in ``vec(M)`` (row-major: ``vec(F M F^T) = (F kron F) vec(M)``).
    """
    N, d = X.shape
    a = X[:, :, None] * X[:, None, :] / s2_noise + np.eye(d) / (N * s2_prior)
    b = X * y[:, None] / s2_noise
    F = np.eye(d) - eps * np.einsum("jk,ikl->ijl", H, a)
    c = eps * b @ H.T
    Fb, cb = F.mean(0), c.mean(0)
    m = np.linalg.solve(a.mean(0), b.mean(0))
    w = 1.0 / S

    def EFXG(Fs, Xm, Gs):  # E over the batch of Fhat X Ghat^T; Fs (N, d, k), Gs (N, d, l)
        Fbar, Gbar = Fs.mean(0), Gs.mean(0)
        return (1 - w) * Fbar @ Xm @ Gbar.T + w * np.mean(Fs @ Xm @ Gs.transpose(0, 2, 1), axis=0)

    K = (1 - w) * np.kron(Fb, Fb) + w * np.mean([np.kron(Fi, Fi) for Fi in F], axis=0)
    cm = EFXG(F, m[:, None], c[:, :, None])
    R = cm + cm.T + EFXG(c[:, :, None], np.eye(1), c[:, :, None])
    M = np.linalg.solve(np.eye(d * d) - K, R.reshape(-1)).reshape(d, d)
    return m, 0.5 * (M + M.T) - np.outer(m, m), max(abs(np.linalg.eigvals(Fb))), max(abs(np.linalg.eigvals(K)))


def test_sim_linear_regression_minibatch_exact():
    """Constant SGD with Thm 2's H* on a real subsampled LinearRegression (N = 400, p = 2, S = 10,
    batches with replacement): the mean and covariance of 4000 independent chains match the exact
    stationary moments of the multiplicative-noise recursion (z-tests with empirical SE, 2 + 3
    entries at 4.5 sigma: failure prob < 5 * 6.8e-6 = 3.4e-5, CLT approximation).  The exact
    covariance is within 6 % (max relative entry error) of the posterior covariance."""
    from smile_ref.gradients import MiniBatch
    from smile_ref.targets import LinearRegression

    r = np.random.default_rng(21)
    N, S, n = 400, 10, 4000
    X = r.normal(size=(N, 2)) @ np.array([[1.0, 0.0], [0.6, 0.8]])
    y = X @ np.array([0.5, -1.0]) + r.normal(size=N)
    tgt = LinearRegression(X, y, prior_scale=1.0, noise_scale=1.0)
    gpe = X * (y - X @ tgt.mean)[:, None]  # grad log lik_i at the posterior mean
    H = so.optimal_preconditioner(S, N, np.cov(gpe.T, bias=True))
    m, cov, rho, rho2 = _linreg_exact_moments(X, y, 1.0, 1.0, S, 1.0, H)
    np.testing.assert_allclose(m, tgt.mean, rtol=1e-10)
    assert np.max(np.abs(cov / tgt.cov - 1)) < 0.06
    burn = int(math.ceil(25 / (1 - math.sqrt(rho2))))
    res = run_chains("constant_sgd", tgt, gradient=MiniBatch(tgt, S, replace=True), n_chains=n, n_steps=1,
                     burn_in=burn, seed=22, backend="numpy", initial_position=np.zeros((n, 2)),
                     learning_rate=1.0, preconditioner=H, progress=False, block_size=4096)
    Xs = res.samples[:, 0, :]
    zm = (Xs.mean(0) - m) / (Xs.std(0, ddof=1) / math.sqrt(n))
    P = (Xs - m)[:, :, None] * (Xs - m)[:, None, :]
    iu = np.triu_indices(2)
    zc = (P.mean(0)[iu] - cov[iu]) / (P.std(0, ddof=1)[iu] / math.sqrt(n))
    assert np.max(np.abs(zm)) < Z and np.max(np.abs(zc)) < Z
    assert res.n_gradient_evals == pytest.approx((burn + 2) * S / N)  # init + one evaluation per step
