"""Tests of pSMILE's EMA-preconditioner theory (``theory/psmile_ema.py``).

Statistical: the carried-mean EMA formula against a direct NumPy recursion on an AR(1) + white sequence
(independent of smile_ref); smile_ref's own ``run_chains("psmile", tuner=None)`` (additive Gaussian noise,
the preconditioner adapting throughout) against the long-window fixed point, which must also reject the
ideal-preconditioner prediction (no bias).  Deterministic: the noise-dominated limit, self-consistency
of the returned fixed point, the validity warning and bad input.  Host/NumPy reference code: no backend
matrix.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from smile_ref import run_chains
from smile_ref.gradients import AdditiveNoise
from smile_ref.targets import Gaussian
from smile_ref.theory import psmile_ema as pe
from smile_ref.theory import sg_mclmc_bias as mb

ST = np.diag([0.5, 1.0, 1.5])


def _ema_recursion(rho, a, c0, noise_var, n_series, n_steps, seed, carry_mean=True, m0=0.0):
    """Per-series time averages of the preconditioner's ``v`` for ``g_t = s_t + ξ_t``, ``s`` AR(1) with
    ``Var s = c0`` and lag-1 correlation ``a``, ``ξ`` white with variance ``noise_var`` (plain NumPy)."""
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(n_series) * math.sqrt(c0)
    m = np.zeros(n_series)
    v = np.full(n_series, noise_var + c0)  # start near the answer; the first 20 windows are discarded
    burn = int(20 / (1 - rho))
    acc = np.zeros(n_series)
    for t in range(burn + n_steps):
        s = a * s + math.sqrt(c0 * (1 - a * a)) * rng.standard_normal(n_series)
        g = s + math.sqrt(noise_var) * rng.standard_normal(n_series)
        m = rho * (m if carry_mean else m0) + (1 - rho) * g
        r = g - m
        v = rho * v + (1 - rho) * r * r
        if t >= burn:
            acc += v
    return acc / n_steps


@pytest.mark.parametrize("rho,a", [(0.9, 0.95), (0.99, 0.9), (0.95, 0.5)])
def test_ema_centred_variance_matches_the_recursion(rho, a):
    """``ema_centred_variance`` (score autocovariance ``c0 a^k``) against the recursion's mean over 400
    independent series (SE across series); 4.5 SE on each of 3 cases: failure probability < 2.1e-5.  The
    long-window value ``rho^2 2/(1+rho) (noise + c0)`` must be rejected where the window is short
    (``(0.9, 0.95)``: window 10 steps against a correlation time of 20)."""
    c0, noise = 2.0, 1.0
    est = _ema_recursion(rho, a, c0, noise, 400, 4000, seed=7)
    mean, se = est.mean(), est.std(ddof=1) / math.sqrt(est.size)
    pred = pe.ema_centred_variance(noise, c0 * a ** np.arange(2000), rho)
    assert abs(mean - pred) < 4.5 * se, (mean, pred, se)
    if (rho, a) == (0.9, 0.95):
        long_window = rho * rho * 2 / (1 + rho) * (noise + c0)
        assert abs(mean - long_window) > 8 * se


def test_ema_without_carried_mean_is_the_raw_second_moment():
    """Authors' estimator (mean reset to ``m0``): ``E v = rho^2 (noise + c0 + m0^2)`` at any window; 400 series,
    4.5 SE (failure probability < 6.8e-6)."""
    rho, m0 = 0.9, 0.5
    est = _ema_recursion(rho, 0.95, 2.0, 1.0, 400, 4000, seed=8, carry_mean=False, m0=m0)
    pred = rho * rho * (1.0 + 2.0 + m0 * m0)
    assert abs(est.mean() - pred) < 4.5 * est.std(ddof=1) / math.sqrt(est.size)


@pytest.mark.parametrize("kind", ["diag", "dense"])
def test_noise_dominated_fixed_point_is_the_ideal_preconditioner(kind):
    """Noise variances 2e4-2e5 times the score's: ``S`` is ``rms(sigma)/sigma`` of the noise to 1e-4 (the dense
    estimate: that diagonal matrix) and the bias vanishes (``C = Σ_t`` to 1e-3 relative; diagonal noise,
    isotropic in z)."""
    Sig = np.diag([1e4, 4e4, 9e4])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        C, s = pe.ema_preconditioner_second_moments(ST, Sig, 0.001, decay=0.9999, preconditioner=kind,
                                                    return_precond=True)
    sig = np.sqrt(np.diag(Sig))
    ideal = np.sqrt(np.mean(sig**2)) / sig
    np.testing.assert_allclose(s, ideal if kind == "diag" else np.diag(ideal), rtol=1e-4, atol=1e-4 * ideal.max())
    np.testing.assert_allclose(C, ST, atol=1e-3 * ST.max())


def test_fixed_point_is_self_consistent_and_warns_on_short_windows():
    """The returned ``S`` is the map of the returned ``C`` (``v = Σ_ii + (P C P)_ii``); a window shorter than
    ``min_window_ratio`` correlation times warns with the ratio; the carried mean and ``m0`` enter as stated."""
    Sig = np.diag([1.0, 4.0, 36.0]) * 5.0
    eps = 0.02
    with pytest.warns(UserWarning, match="T/tau_s"):
        C, err, s = pe.ema_preconditioner_second_moments(ST, Sig, eps, decay=0.99, return_error=True,
                                                         return_precond=True, tol=1e-7)
    P = np.linalg.inv(ST)
    v = np.diag(Sig) + np.diag(P @ C @ P)
    np.testing.assert_allclose(s, np.sqrt(np.mean(v)) / np.sqrt(v), rtol=1e-6)
    assert 0 < err < 0.01
    assert pe.ema_window_ratio(ST, eps, 0.9998) == pytest.approx(100 / (math.sqrt(1.5) * math.sqrt(3)))


def test_bad_input():
    with pytest.raises(ValueError, match="decay"):
        pe.ema_window_ratio(ST, 0.1, 1.0)
    with pytest.raises(TypeError, match="carry_mean"):
        pe.ema_preconditioner_second_moments(ST, np.eye(3), 0.1, carry_mean=1)
    with pytest.raises(ValueError, match="shape"):
        pe.ema_preconditioner_second_moments(ST, np.eye(2), 0.1)
    with pytest.raises(ValueError, match="autocov"):
        pe.ema_centred_variance(1.0, np.zeros((2, 2)), 0.9)
    with pytest.raises(ValueError, match="preconditioner"):
        pe.ema_preconditioner_second_moments(ST, np.eye(3), 0.1, decay=0.9999, preconditioner="full")
    with pytest.raises(ValueError, match="carry_mean"):
        pe.ema_preconditioner_second_moments(ST, np.eye(3), 0.1, decay=0.9999, preconditioner="dense",
                                             carry_mean=False)


def _psmile_moments(St, Sig, eps, decay, M, T_burn, T_sample, seed, carry_mean=True):
    """Per-chain time averages of x x^T from smile_ref's pSMILE (no tuner, the preconditioner adapting all the
    time), chains started from N(0, Σ_t)."""
    t = Gaussian(np.zeros(St.shape[0]), St)
    res = run_chains("psmile", t, gradient=AdditiveNoise(t, Sig), tuner=None, step_size=eps, n_chains=M,
                     n_steps=int(T_sample / eps), burn_in=int(T_burn / eps), seed=seed, thinning=5, progress=False,
                     preconditioner_options={"decay": decay, "carry_mean": carry_mean})
    assert res.health.ok
    x = np.asarray(res.samples)
    return np.mean(x[:, :, :, None] * x[:, :, None, :], axis=1)


def _score(m2, pred, err):
    iu = np.triu_indices(m2.shape[1])
    mean, se = m2.mean(0)[iu], m2.std(0, ddof=1)[iu] / math.sqrt(m2.shape[0])
    return mean, se, np.abs(mean - pred[iu]), err


@pytest.mark.parametrize("carry_mean", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_psmile_sampler_vs_the_fixed_point_quick(carry_mean):
    """Σ_t = diag(0.5, 1, 1.5), noise std sqrt(5) (1, 2, 6): the score variance 2 is 29 % of the least noisy axis'
    gradient variance, so the estimated S leaves an 8 % bias on x_1.  eps = 0.02 (kick 0.13), decay 0.99925
    (window T/tau_s = 12.6), 300 chains x 100 time units after 133 (5 windows) of burn-in.  Each of the 6
    entries within ``4.5 SE + stated error``: failure probability < 6 x 6.8e-6 = 4.1e-5 per case; the
    ideal-preconditioner prediction (C = Σ_t) rejected at |z| > 6 on x_1.  The authors' estimator
    (``carry_mean=False``) is the slow variant."""
    Sig = np.diag([1.0, 4.0, 36.0]) * 5.0
    eps, decay = 0.02, 0.99925
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a long window (12.6 correlation times) and a small stated error: no warning
        C, err = pe.ema_preconditioner_second_moments(ST, Sig, eps, decay=decay, carry_mean=carry_mean,
                                                      return_error=True, tol=1e-6)
    m2 = _psmile_moments(ST, Sig, eps, decay, 300, 133.0, 100.0, seed=3, carry_mean=carry_mean)
    mean, se, dev, err = _score(m2, C, err)
    assert np.all(dev < 4.5 * se + err), (mean, C[np.triu_indices(3)], se, err)
    assert (ST[0, 0] - mean[0]) / se[0] > 6


@pytest.mark.slow
def test_psmile_sampler_vs_the_fixed_point_long_window():
    """As the quick test with a window of 100 time units (decay 0.9998, T/tau_s = 47), 1000 chains x 400 time
    units after 500 of burn-in (about 75 s): every entry within ``4.5 SE + stated error`` (failure probability
    < 4.1e-5), and on the diagonal within 4 SE of the prediction alone; the ideal prediction rejected at
    |z| > 20."""
    Sig = np.diag([1.0, 4.0, 36.0]) * 5.0
    eps, decay = 0.02, 0.9998
    C, err = pe.ema_preconditioner_second_moments(ST, Sig, eps, decay=decay, return_error=True, tol=1e-6)
    m2 = _psmile_moments(ST, Sig, eps, decay, 1000, 500.0, 400.0, seed=1)
    mean, se, dev, err = _score(m2, C, err)
    assert np.all(dev < 4.5 * se + err), (mean, C[np.triu_indices(3)], se, err)
    diag = [0, 3, 5]
    assert np.all(dev[diag] < 4 * se[diag]), dev[diag] / se[diag]
    assert (ST[0, 0] - mean[0]) / se[0] > 20
    # the unpreconditioned sampler would be further off still: the estimate is a partial correction
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # anisotropy 36 unpreconditioned: warned as not converged (1.2 % of max|C|)
        C_none = mb.predicted_second_moments(ST, Sig, eps)
    assert abs(C_none[0, 0] - ST[0, 0]) > abs(C[0, 0] - ST[0, 0])


def _correlated_case():
    sd = np.array([1.0, 2.0, 6.0]) * math.sqrt(5.0)
    R = np.array([[1.0, 0.6, 0.2], [0.6, 1.0, 0.5], [0.2, 0.5, 1.0]])
    return R * np.outer(sd, sd)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dense", "diag"])
def test_psmile_sampler_vs_the_fixed_point_correlated_noise(kind):
    """Correlated noise (correlations 0.6, 0.2, 0.5) on the quick test's scales, decay 0.9998: the diagonal and the
    dense estimate (``preconditioner=kind``) against their long-window fixed points (the dense one: ``S = c V^{-1/2}``,
    a rotated ``z``-space target).  300 chains x 200 time units after 300 of burn-in (the dense prediction takes
    about 75 s, five rotated Galerkin solves).  Each of the 6 entries within ``4.5 SE + stated error`` (failure
    probability < 4.1e-5); the ideal preconditioner's prediction rejected at |z| > 8 on x_1 (for ``"dense"`` the
    ideal ``S = c Σ^{-1/2}`` makes the noise isotropic: no bias)."""
    Sig = _correlated_case()
    eps, decay = 0.02, 0.9998
    C, err = pe.ema_preconditioner_second_moments(ST, Sig, eps, decay=decay, preconditioner=kind, return_error=True,
                                                  tol=1e-6)
    t = Gaussian(np.zeros(3), ST)
    res = run_chains("psmile", t, gradient=AdditiveNoise(t, Sig), tuner=None, step_size=eps, n_chains=300,
                     n_steps=int(200 / eps), burn_in=int(300 / eps), seed=2, thinning=5, progress=False,
                     preconditioner=kind, preconditioner_options={"decay": decay})
    assert res.health.ok
    x = np.asarray(res.samples)
    m2 = np.mean(x[:, :, :, None] * x[:, :, None, :], axis=1)
    if kind == "dense":
        ideal = ST  # S Σ S isotropic: unbiased
    else:
        sig = np.sqrt(np.diag(Sig))
        ideal = mb.preconditioned_second_moments(ST, Sig, eps, precond=np.sqrt(np.mean(sig**2)) / sig)
    mean, se, dev, err = _score(m2, C, err)
    assert np.all(dev < 4.5 * se + err), (mean, C[np.triu_indices(3)], se, err)
    assert abs(mean[0] - ideal[0, 0]) / se[0] > 8


@pytest.mark.slow
def test_authors_psmile_vs_the_fixed_point_with_its_reset_mean():
    """``preset="authors"`` (the BNN kernel ``NOISYSMILE``: the running mean reset to ``m0 = 1`` before every update,
    the previous step's S on the first B), ``tuner=None``, decay raised to 0.9998: the estimate's long-window mean
    is ``rho^2 (Σ_ii + (P C P)_ii + 1)``.  1000 chains x 400 time units after 500 of burn-in (about 2 min).  Each
    of the 6 entries within ``4.5 SE + stated error`` (failure probability < 4.1e-5); the same fixed point without
    the ``m0^2`` term rejected at |z| > 6 on x_1."""
    Sig = np.diag([1.0, 4.0, 36.0]) * 5.0
    eps, decay = 0.02, 0.9998
    C, err = pe.ema_preconditioner_second_moments(ST, Sig, eps, decay=decay, carry_mean=False, init_mean=1.0,
                                                  return_error=True, tol=1e-6)
    C0 = pe.ema_preconditioner_second_moments(ST, Sig, eps, decay=decay, carry_mean=False, init_mean=0.0, tol=1e-6)
    t = Gaussian(np.zeros(3), ST)
    res = run_chains("psmile", t, gradient=AdditiveNoise(t, Sig), preset="authors", tuner=None, step_size=eps,
                     n_chains=1000, n_steps=int(400 / eps), burn_in=int(500 / eps), seed=4, thinning=5,
                     progress=False, preconditioner_options={"decay": decay})
    assert res.health.ok
    x = np.asarray(res.samples)
    m2 = np.mean(x[:, :, :, None] * x[:, :, None, :], axis=1)
    mean, se, dev, err = _score(m2, C, err)
    assert np.all(dev < 4.5 * se + err), (mean, C[np.triu_indices(3)], se, err)
    assert abs(mean[0] - C0[0, 0]) / se[0] > 6


@pytest.mark.slow
def test_fixed_point_s_discrete_sampler_richardson():
    """The kick-0.28 case (noise std (1, 2, 6), eps = 0.1), where pSMILE lies 1 % above the fixed point on x_1: the
    discrete sampler with S *fixed* at the fixed point (the theory tests' minimal loop) at eps = 0.1 and 0.05 with
    the same Q = eps Σ; the Richardson extrapolation (4 r(0.05) - r(0.1))/3 must meet the continuous-time fixed
    point within 4.5 SE + stated error on the three variances (failure probability < 2.1e-5), so the excess is the
    O(eps^2) discretisation, not the estimate.  1000 chains x 400 time units per step size (about 1 min)."""
    from .test_theory_sg_mclmc import sg_mclmc_run

    Sig = np.diag([1.0, 4.0, 36.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # decay 0.999 at eps = 0.1: window 47, no warning; kept quiet regardless
        C, err, s = pe.ema_preconditioner_second_moments(ST, Sig, 0.1, decay=0.999, return_error=True,
                                                         return_precond=True, tol=1e-6)
    runs = {}
    for eps in (0.1, 0.05):
        n = int(400 / eps)
        runs[eps] = sg_mclmc_run(ST, Sig * 0.1 / eps, eps, n, 1000, int(40 / eps), 5, precond=s)
    diag = np.arange(3)
    big, small = runs[0.1][:, diag, diag], runs[0.05][:, diag, diag]
    ext = (4 * small.mean(0) - big.mean(0)) / 3
    se = np.hypot(4 * small.std(0, ddof=1), big.std(0, ddof=1)) / (3 * math.sqrt(big.shape[0]))
    assert np.all(np.abs(ext - np.diag(C)) < 4.5 * se + err), (ext, np.diag(C), se, err)
