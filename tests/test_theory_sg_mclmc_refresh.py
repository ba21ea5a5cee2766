"""Partial refresh as isotropic gradient noise (``theory/sg_mclmc.py`` item 4): the keyword ``L`` of
``predicted_second_moments``, and smile_ref's own SMILE with ``refresh=True`` against the prediction.

Statistical tests: independent chains, per-chain time averages of ``x xᵀ``, standard errors across chains; an
entry passes when ``|sim - pred| <= 4 SE + err`` (``err`` the prediction's stated error).  With an exact
prediction the failure probability is ``6.3e-5`` per entry, below ``1e-3`` per test (d(d+1)/2 entries).
Each test also checks that the bias it predicts is resolved (``|sim - Σ_t| > 4 SE`` on some diagonal entry),
so that agreement is not agreement with an unbiased sampler.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from smile_ref.gradients import AdditiveNoise
from smile_ref.run import run_chains
from smile_ref.targets import Gaussian
from smile_ref.theory.sg_mclmc_bias import predicted_second_moments, preconditioned_second_moments
from smile_ref.theory.sg_mclmc import L_eff, refresh_noise_variance
from validation.sg_mclmc_regime_map import case


def test_refresh_noise_variance_inverts_L_eff_and_rejects_bad_input():
    for eps, L, d in ((0.02, 2.0, 3), (0.1, 0.3, 7), (1e-3, 50.0, 2)):
        s2 = refresh_noise_variance(eps, L, d)
        assert s2 == pytest.approx(2 * (d - 1) ** 2 / (d * eps * L), rel=1e-15)
        assert L_eff(eps, s2, d) == pytest.approx(L, rel=1e-14)
    assert refresh_noise_variance(0.02, math.inf, 3) == 0.0
    for L in (0.0, -1.0, "1", None, True):
        with pytest.raises(ValueError, match="L must be"):
            refresh_noise_variance(0.02, L, 3)
    with pytest.raises(ValueError, match="eps"):
        refresh_noise_variance(0.0, 1.0, 3)


def test_predicted_second_moments_L_adds_isotropic_noise():
    St, S = case(3, 0.5, 0.02)
    s = refresh_noise_variance(0.02, 3.0, 3)
    C = predicted_second_moments(St, S, 0.02, L=3.0)
    np.testing.assert_array_equal(C, predicted_second_moments(St, S + s * np.eye(3), 0.02))
    np.testing.assert_array_equal(predicted_second_moments(St, S, 0.02, L=math.inf),
                                  predicted_second_moments(St, S, 0.02))
    # the refresh acts on the velocity of the preconditioned coordinates: the z-space noise gets s I
    p = np.array([0.5, 1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # this z-space case is not converged to 1 %; same solve twice
        Cz = predicted_second_moments(St / np.outer(p, p), S * np.outer(p, p) + s * np.eye(3), 0.02)
        Cx = preconditioned_second_moments(St, S, 0.02, precond=p, L=3.0)
    np.testing.assert_allclose(Cx, Cz * np.outer(p, p), rtol=1e-13)
    with pytest.raises(ValueError, match="continuous time only"):
        predicted_second_moments(St, S, 0.02, L=3.0, time="discrete")
    with pytest.raises(ValueError, match="L must be"):
        predicted_second_moments(St, S, 0.02, L=-1.0)


def _simulate(d, rate, L, M, T, rotated=False, seed=11, eps=0.02):
    St, S = case(d, rate, eps, rotated)
    t = Gaussian(np.zeros(d), St)
    n = int(round(T / eps))
    x0 = np.random.default_rng(seed + 1).standard_normal((M, d)) @ np.linalg.cholesky(St).T
    res = run_chains("smile", t, gradient=AdditiveNoise(t, S), n_chains=M, n_steps=n, burn_in=n // 5, step_size=eps,
                     tuner=None, seed=seed, thinning=5, initial_position=x0, progress=False, refresh=True, L=L)
    x = np.asarray(res.samples)
    est = np.mean(x[:, :, :, None] * x[:, :, None, :], axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the prediction must be a validated one (no warning)
        C, err = predicted_second_moments(St, S, eps, L=L, return_error=True)
    return St, C, err, est.mean(0), est.std(0, ddof=1) / math.sqrt(M)


def _check(St, C, err, mean, se):
    iu = np.triu_indices(St.shape[0])
    assert np.all(np.abs(mean - C)[iu] <= 4 * se[iu] + err), ((mean - C)[iu] / se[iu], err)
    dg = np.diag_indices(St.shape[0])
    assert np.max(np.abs(mean - St)[dg] / se[dg]) > 4.0  # the bias is resolved


def test_refresh_removes_the_weak_noise_gap_d3():
    """d = 3 aligned, gradient noise of the regime map's failing hold-out (rate 0.05, rate·σ_min 0.033), ``L = 4``.

    Without refresh the prediction is 5.8 % off there (regime-map page); with the refresh the noise is
    ``Σ + 33.3 I`` (rate 0.22), predicted with stated error 0.13 % of max|C|.  1000 chains x 100 time units
    (about 12 s).  Measured: 0.934, 0.989, 1.102 against 0.930, 0.982, 1.110 (max |z| 0.9 over the six
    entries; the bias against Σ_t at 10-11 SE).
    """
    _check(*_simulate(3, 0.05, 4.0, 1000, 100.0))


@pytest.mark.slow
@pytest.mark.parametrize("d, rate, L, rotated", [(4, 0.05, 2.0, False), (3, 0.05, 2.0, True), (6, 0.1, math.sqrt(6.0), False)])
def test_refresh_prediction_more_cases(d, rate, L, rotated):
    """d = 4 aligned and d = 3 rotated at the hold-outs' noise, d = 6 aligned at the weak cell's (2000 chains x
    150 time units; 1-3 min each)."""
    _check(*_simulate(d, rate, L, 2000, 150.0, rotated))
