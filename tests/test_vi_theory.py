"""SymPy derivations of theory/score_vi.py and their agreement with the smile_ref.vi updates (deterministic)."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from smile_ref.vi.bam import bam_update
from smile_ref.vi.families import DiagGaussian
from smile_ref.vi.score_vi import diag_update
from smile_ref.theory import score_vi as T


def test_minibatch_identity_is_zero():
    assert T.minibatch_identity(2) == 0


def test_diag_update_population_map_and_optima():
    P, mu, m, tau = T.dense_symbols(2)
    tn, mn = T.diag_population_update(P, mu, m, tau)
    assert sp.simplify(tn - sp.Matrix([P[0, 0], P[1, 1]])) == sp.zeros(2, 1)
    D_inv = sp.diag(1 / P[0, 0], 1 / P[1, 1])
    assert sp.simplify(mn - (mu + (sp.eye(2) - D_inv * P) * (m - mu))) == sp.zeros(2, 1)   # Jacobi
    advi, _ = T.advi_optimum(P, mu, m, tau)
    assert advi == [[P[0, 0]], [P[1, 1]]]
    fisher, _ = T.fisher_optimum(P, mu, m, tau)
    P2 = P * P
    assert [sp.simplify(f[0] ** 2 - P2[j, j]) for j, f in enumerate(fisher)] == [0, 0]


def test_mean_jacobian_and_tau_contraction():
    P, *_ = T.dense_symbols(2)
    b = sp.Symbol("beta", positive=True)
    J = T.mean_jacobian(P, b)
    expected = sp.eye(2) - 2 * sp.diag(1 / (2 * P[0, 0] + b), 1 / (2 * P[1, 1] + b)) * P
    assert sp.simplify(J - expected) == sp.zeros(2, 2)
    rate, _ = T.tau_contraction()
    p = sp.Symbol("p", positive=True)
    assert sp.simplify(rate - b / (4 * p + b)) == 0


def test_bam_population_1d_matches_code():
    """BaM with the two exact quadrature points mu +- sqrt(s) reproduces the population map of theory/."""
    Snew, slope, mean_factor = T.bam_population_1d()
    lam_s = sp.Symbol("lambda", positive=True)
    assert sp.simplify(slope - 1 / (1 + 2 * lam_s)) == 0
    assert sp.simplify(mean_factor - 1 / (1 + lam_s)) == 0
    f = sp.lambdify((sp.Symbol("s", positive=True), lam_s), Snew)
    for lam in (0.5, 2.0, 10.0):
        for s in (0.3, 1.0, 4.0):
            z = np.array([[-np.sqrt(s)], [np.sqrt(s)]])
            _, Sig, U, V = bam_update(np.zeros(1), np.array([[s]]), z, -z, lam)
            assert Sig[0, 0] == pytest.approx(f(s, lam), rel=1e-12)


def test_diag_update_matches_population_map_with_antithetic_design():
    """With exact scores the empirical update equals the population map when the sample moments are exact:
    samples m + {+-e_j / sqrt(tau_j)} have mean m and diagonal covariance diag(1/tau) exactly."""
    P = np.array([[2.0, 0.6, -0.3], [0.6, 1.5, 0.4], [-0.3, 0.4, 1.0]])
    mu = np.array([0.5, -1.0, 2.0])
    m0 = np.array([1.0, 0.0, 0.0])
    tau0 = np.array([0.7, 3.0, 1.2])
    d = 3
    E = np.concatenate([np.eye(d), -np.eye(d)]) * np.sqrt(d)
    theta = m0 + E / np.sqrt(tau0)
    s = -(theta - mu) @ P
    q, n_bad = diag_update(DiagGaussian(m0, tau0), theta, s)
    assert n_bad == 0
    np.testing.assert_allclose(q.precision, np.diag(P), rtol=1e-12)
    np.testing.assert_allclose(q.mean, mu + (np.eye(d) - P / np.diag(P)[:, None]) @ (m0 - mu), rtol=1e-12)


def test_jacobi_divergence_and_beta_repair_population():
    """P with 2D - P indefinite: the beta=0 mean map diverges, beta > lambda_max(P - 2D) converges (population)."""
    P = np.full((3, 3), 0.9) + 0.1 * np.eye(3)
    D = np.diag(np.diag(P))
    lam_max = np.max(np.linalg.eigvalsh(P - 2 * D))
    assert lam_max > 0
    for beta, converges in ((0.0, False), (lam_max + 0.2, True)):
        J = np.eye(3) - 2 * np.linalg.solve(2 * D + beta * np.eye(3), P)
        assert (np.max(np.abs(np.linalg.eigvals(J))) < 1) == converges

