"""Tests of smile_ref.ensembles.metrics: hand-computed values, stability, scipy references."""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import scipy.special as sps
from scipy import optimize, stats

from smile_ref.backend import to_numpy
from smile_ref.ensembles.metrics import (
    accuracy, classification_log_pred_density, classification_metrics, erfc,
    expected_calibration_error, interval_coverage, lppd, mixture_cdf, mixture_quantile, nll,
    normal_cdf, predictive_probs, regression_log_pred_density, regression_metrics, rmse,
)
from tests.conftest import assert_backend, tol_for


def _is_f32(backend):
    return backend.dtype == backend.xp.float32


def _labels(backend, y):
    return backend.asarray(np.asarray(y, dtype=np.int64), dtype=backend.xp.int64)


# ----------------------------------------------------------------------------- erfc / Phi
def test_erfc_float64_against_mpmath_and_scipy():
    """Cody's erfc: relative error < 4e-15 against 40-digit mpmath on [-6, 26.5].

    (scipy.special.erfc itself is off by up to ~6e-14 relative for x > 10, so the dense grid
    is compared to scipy at 1e-13 and the sparse one to mpmath at 4e-15.)
    """
    mpmath.mp.dps = 40
    x = np.concatenate([np.linspace(-6.0, 26.5, 397), [0.0, 0.46875, -0.46875, 4.0, -4.0, 1e-20]])
    ref = np.array([float(mpmath.erfc(mpmath.mpf(float(v)))) for v in x])
    assert np.max(np.abs(erfc(x) - ref) / ref) < 4e-15
    dense = np.linspace(-6.0, 26.0, 100_001)
    assert np.max(np.abs(erfc(dense) - sps.erfc(dense)) / sps.erfc(dense)) < 1e-13
    special = erfc(np.array([np.inf, -np.inf, 40.0, np.nan]))
    assert special[0] == 0.0 and special[1] == 2.0 and special[2] == 0.0 and np.isnan(special[3])


def test_erfc_and_normal_cdf_on_backends(backend):
    """Phi against mpmath; Phi's relative condition number is ~ 1 + z^2 for z < 0, so the
    tolerance is (1 + z^2) times a few units of rounding of the dtype."""
    mpmath.mp.dps = 40
    z = np.linspace(-9.0, 9.0, 181)
    zb = backend.asarray(z)
    out = normal_cdf(zb)
    assert_backend(out, backend, (181,))
    zh = to_numpy(zb).astype(np.float64)  # the float32-rounded inputs on f32 backends
    ref = np.array([float(mpmath.ncdf(mpmath.mpf(float(v)))) for v in zh])
    rel = np.abs(to_numpy(out).astype(np.float64) - ref) / ref / (1.0 + zh**2)
    assert np.max(rel) < (4e-7 if _is_f32(backend) else 1e-15)
    assert_backend(erfc(backend.asarray(z)), backend, (181,))


# ----------------------------------------------------------------------------- regression LPD
def test_regression_lpd_hand_two_gaussians(backend):
    """S=2: N(0, 1) and N(1, 2^2) at point 0, N(1, 1) and N(-1, 2^2) at point 1."""
    mean = backend.asarray(np.array([[0.0, 1.0], [1.0, -1.0]]))
    log_sigma = backend.asarray(np.array([0.0, math.log(2.0)]))
    y = backend.asarray(np.array([0.5, 0.0]))
    c = 1.0 / math.sqrt(2.0 * math.pi)
    # point 0: 0.5 * (c exp(-0.5^2/2) + c/2 exp(-0.5^2/8)); point 1: 0.5 * (c exp(-1/2) + c/2 exp(-1/8))
    hand = [math.log(0.5 * (c * math.exp(-0.125) + 0.5 * c * math.exp(-0.03125))),
            math.log(0.5 * (c * math.exp(-0.5) + 0.5 * c * math.exp(-0.125)))]
    out = regression_log_pred_density(mean, log_sigma, y)
    assert_backend(out, backend, (2,))
    np.testing.assert_allclose(to_numpy(out), hand, rtol=tol_for(backend, 1e-14, 1e-6))
    assert lppd(out) == pytest.approx(sum(hand) / 2, rel=tol_for(backend, 1e-14, 1e-6))
    assert nll(out) == pytest.approx(-sum(hand) / 2, rel=tol_for(backend, 1e-14, 1e-6))


def test_regression_lpd_extreme_residuals_finite(backend):
    """|y - mu|/sigma = 100 and 99: both densities underflow (exp(-5000)), log-sum-exp does not.

    log p = -log(2 pi)/2 + log(1/2) + log(e^-5000 + e^-4900.5)
          = -log(2 pi)/2 - log 2 - 4900.5 + log1p(e^-99.5).
    """
    mean = backend.asarray(np.array([[0.0], [1.0]]))
    log_sigma = backend.asarray(np.array([0.0, 0.0]))
    y = backend.asarray(np.array([100.0]))
    hand = -0.5 * math.log(2 * math.pi) - math.log(2.0) - 4900.5 + math.log1p(math.exp(-99.5))
    out = regression_log_pred_density(mean, log_sigma, y)
    assert_backend(out, backend, (1,))
    assert np.isfinite(to_numpy(out)).all()
    assert float(to_numpy(out)[0]) == pytest.approx(hand, rel=tol_for(backend, 1e-14, 1e-6))
    # tiny sigma: residual / sigma = 1e4 / e^-3 ~ 2e5; value -0.5 (r/sigma)^2 - log sigma - log(2 pi)/2
    ls = backend.asarray(np.array([-3.0, -3.0]))
    out2 = to_numpy(regression_log_pred_density(mean, ls, backend.asarray(np.array([1.0e2]))))
    r0, r1 = 100.0 * math.exp(3.0), 99.0 * math.exp(3.0)
    hand2 = (-0.5 * math.log(2 * math.pi) + 3.0 - math.log(2.0) - 0.5 * r1 * r1
             + math.log1p(math.exp(-0.5 * (r0 * r0 - r1 * r1))))
    assert float(out2[0]) == pytest.approx(hand2, rel=tol_for(backend, 1e-14, 1e-6))


def test_regression_lpd_against_scipy_per_point_sigma(backend, rng):
    S, N = 7, 11
    m, ls, y = rng.normal(size=(S, N)), rng.normal(scale=0.5, size=(S, N)), 2 * rng.normal(size=N)
    ref = sps.logsumexp(stats.norm.logpdf(y[None, :], m, np.exp(ls)), axis=0) - math.log(S)
    out = regression_log_pred_density(backend.asarray(m), backend.asarray(ls), backend.asarray(y), chunk=3)
    assert_backend(out, backend, (N,))
    tol = tol_for(backend, 1e-13, 1e-5)
    np.testing.assert_allclose(to_numpy(out), ref, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- classification
def test_classification_lpd_and_probs_hand(backend):
    p1 = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    p2 = np.array([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]])
    lp = backend.asarray(np.log(np.stack([p1, p2])))
    # y = (0, 1): log((0.7 + 0.5)/2) = log 0.6, log((0.3 + 0.2)/2) = log 0.25
    for y in (_labels(backend, [0, 1]), backend.asarray(np.array([0.0, 1.0]))):
        out = classification_log_pred_density(lp, y)
        assert_backend(out, backend, (2,))
        hand = [math.log(0.6), math.log(0.25)]
        np.testing.assert_allclose(to_numpy(out), hand, rtol=tol_for(backend, 1e-14, 1e-6))
    probs = predictive_probs(lp)
    assert_backend(probs, backend, (2, 3))
    hand_probs = [[0.6, 0.225, 0.175], [0.15, 0.25, 0.6]]  # (p1 + p2) / 2
    np.testing.assert_allclose(to_numpy(probs), hand_probs, rtol=tol_for(backend, 1e-14, 1e-6))
    m = classification_metrics(lp, _labels(backend, [0, 1]), n_bins=4)
    assert m["lppd"] == pytest.approx((math.log(0.6) + math.log(0.25)) / 2, rel=tol_for(backend, 1e-14, 1e-6))
    assert m["nll"] == -m["lppd"] and m["accuracy"] == 0.5
    # n_bins = 4: both confidences 0.6 fall in (0.5, 0.75]; gaps +0.4 (correct), -0.6 (wrong)
    assert m["ece"] == pytest.approx(abs(0.4 - 0.6) / 2, rel=tol_for(backend, 1e-12, 1e-5))


def test_classification_lpd_underflowing_probabilities(backend):
    """log p_s(y) = -1000, -1001: log((e^-1000 + e^-1001)/2) = -1000 + log((1 + e^-1)/2)."""
    lp = np.full((2, 1, 2), -np.inf)
    lp[0, 0, :] = [-1000.0, 0.0]
    lp[1, 0, :] = [-1001.0, 0.0]
    out = classification_log_pred_density(backend.asarray(lp), _labels(backend, [0]))
    hand = -1000.0 + math.log((1.0 + math.exp(-1.0)) / 2.0)
    assert float(to_numpy(out)[0]) == pytest.approx(hand, rel=tol_for(backend, 1e-14, 1e-6))


def test_accuracy_and_ece_hand(backend):
    """Four points, two classes; labels chosen so the bin convention matters.

    conf = (0.9, 0.7, 0.6, 0.5), correct = (1, 0, 1, 1) (the 0.5/0.5 tie predicts class 0).
    n_bins=1: |3 - 2.7| / 4 = 0.075.
    n_bins=2: (0.5, 1] holds 0.9, 0.7, 0.6: |2 - 2.2|/4 = 0.05; [0, 0.5] holds 0.5: |1 - 0.5|/4
              = 0.125; total 0.175 (0.5 in the upper bin would give 0.075).
    n_bins=3: (2/3, 1]: |1 - 1.6|/4 = 0.15; (1/3, 2/3]: |2 - 1.1|/4 = 0.225; total 0.375.
    """
    probs = backend.asarray(np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.5, 0.5]]))
    y = _labels(backend, [0, 0, 0, 0])
    assert accuracy(probs, y) == 0.75
    rt = tol_for(backend, 1e-12, 1e-5)
    for n_bins, hand in ((1, 0.075), (2, 0.175), (3, 0.375)):
        assert expected_calibration_error(probs, y, n_bins=n_bins) == pytest.approx(hand, rel=rt)


# ----------------------------------------------------------------------------- quantiles
def _host_mixture_quantile(m, s, q):
    f = lambda t: np.mean(stats.norm.cdf((t - m) / s)) - q  # noqa: E731
    lo, hi = np.min(m - 50 * s), np.max(m + 50 * s)
    return optimize.brentq(f, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)


def test_mixture_quantile_against_brentq(backend, rng):
    S, N = 3, 5
    m = rng.normal(scale=3.0, size=(S, N))
    ls = rng.normal(scale=0.7, size=(S, N))
    m[:, 0] = [-10.0, 0.0, 10.0]  # well-separated modes: a wide, flat CDF between them
    qs = [0.025, 0.1, 0.5, 0.9, 0.975]
    out = mixture_quantile(backend.asarray(m), backend.asarray(ls), qs, chunk=2)
    assert_backend(out, backend, (5, N))
    ref = np.array([[_host_mixture_quantile(m[:, i], np.exp(ls[:, i]), q) for i in range(N)] for q in qs])
    tol = tol_for(backend, 1e-12, 2e-5)
    np.testing.assert_allclose(to_numpy(out), ref, rtol=tol, atol=tol)
    one = mixture_quantile(backend.asarray(m), backend.asarray(ls), np.float64(0.9))
    assert_backend(one, backend, (N,))
    np.testing.assert_allclose(to_numpy(one), ref[3], rtol=tol, atol=tol)


def test_mixture_quantile_single_component_is_norm_ppf(backend):
    m = np.array([[-1.0, 0.0, 2.5]])
    ls = np.array([math.log(0.5)])
    for q in (0.025, 0.3, 0.975):
        out = mixture_quantile(backend.asarray(m), backend.asarray(ls), q)
        ref = stats.norm.ppf(q, loc=m[0], scale=0.5)
        tol = tol_for(backend, 1e-14, 1e-6)
        np.testing.assert_allclose(to_numpy(out), ref, rtol=tol, atol=tol)


def test_mixture_cdf_and_quantile_are_inverse(backend, rng):
    S, N = 4, 6
    m, ls = rng.normal(size=(S, N)), rng.normal(scale=0.3, size=(S,))
    Q = mixture_quantile(backend.asarray(m), backend.asarray(ls), 0.8)
    F = mixture_cdf(backend.asarray(m), backend.asarray(ls), Q)
    assert_backend(F, backend, (N,))
    np.testing.assert_allclose(to_numpy(F), 0.8, atol=tol_for(backend, 1e-14, 2e-6))


# ----------------------------------------------------------------------------- coverage
def test_coverage_of_draws_from_the_predictive_itself(backend):
    """y_i drawn from the mixture itself: coverage at level c ~ Binomial(N, c) / N.

    N = 20000, tolerance 4.5 binomial SE sqrt(c(1-c)/N) per level (normal approximation):
    two-sided failure probability 6.8e-6 per level, < 2.1e-5 for the 3 levels (the same
    host draws are used on every backend; float32 only moves points within ~1e-7 of an
    interval end).
    """
    g = np.random.default_rng(7)
    S, N = 4, 20_000
    m = g.normal(scale=2.0, size=(S, N))
    ls = g.normal(scale=0.5, size=(S, N))
    comp = g.integers(0, S, size=N)
    y = m[comp, np.arange(N)] + np.exp(ls[comp, np.arange(N)]) * g.standard_normal(N)
    cov = interval_coverage(backend.asarray(m), backend.asarray(ls), backend.asarray(y))
    assert set(cov) == {0.8, 0.9, 0.95}
    for c, v in cov.items():
        assert abs(v - c) <= 4.5 * math.sqrt(c * (1 - c) / N), (c, v)
    # a predictive that is too narrow (sigma / 3) must under-cover: the test can fail
    narrow = interval_coverage(backend.asarray(m), backend.asarray(ls - math.log(3.0)), backend.asarray(y))
    assert narrow[0.9] < 0.9 - 4.5 * math.sqrt(0.09 / N)


def test_coverage_pit_equals_quantile_definition(rng):
    """u = F(y) in [(1-c)/2, (1+c)/2]  <=>  y in [Q((1-c)/2), Q((1+c)/2)] (float64 NumPy)."""
    from smile_ref.backend import get_backend

    b = get_backend("numpy", "float64")
    S, N = 5, 300
    m, ls = rng.normal(size=(S, N)), rng.normal(scale=0.4, size=(S,))
    y = rng.normal(scale=1.5, size=N)
    cov = interval_coverage(b.asarray(m), b.asarray(ls), b.asarray(y), levels=(0.5, 0.9))
    for c in (0.5, 0.9):
        lo, hi = to_numpy(mixture_quantile(b.asarray(m), b.asarray(ls), [(1 - c) / 2, (1 + c) / 2]))
        assert cov[c] == np.mean((y >= lo) & (y <= hi))


def test_regression_metrics_dict(backend, rng):
    S, N = 6, 40
    m, ls, y = rng.normal(size=(S, N)), rng.normal(scale=0.3, size=(S,)), rng.normal(size=N)
    out = regression_metrics(backend.asarray(m), backend.asarray(ls), backend.asarray(y))
    assert set(out) == {"lppd", "nll", "rmse", "coverage_80", "coverage_90", "coverage_95"}
    assert all(type(v) is float for v in out.values())
    ref_lpd = np.mean(sps.logsumexp(stats.norm.logpdf(y, m, np.exp(ls)[:, None]), axis=0) - math.log(S))
    assert out["lppd"] == pytest.approx(ref_lpd, rel=tol_for(backend, 1e-12, 1e-5))
    assert out["nll"] == -out["lppd"]
    assert out["rmse"] == pytest.approx(math.sqrt(np.mean((m.mean(0) - y) ** 2)), rel=tol_for(backend, 1e-12, 1e-5))


# ----------------------------------------------------------------------------- bad input
def test_bad_input_messages():
    m, ls, y = np.zeros((3, 4)), np.zeros(3), np.zeros(4)
    with pytest.raises(ValueError, match=r"mean must have shape \(S, N\)"):
        regression_log_pred_density(np.zeros(4), ls, y)
    with pytest.raises(ValueError, match=r"log_sigma must have shape \(3,\) or \(3, 4\)"):
        regression_log_pred_density(m, np.zeros(4), y)
    with pytest.raises(ValueError, match=r"y must have shape \(4,\)"):
        regression_metrics(m, ls, np.zeros(3))
    with pytest.raises(ValueError, match=r"levels must lie in the open interval \(0, 1\)"):
        interval_coverage(m, ls, y, levels=(0.9, 1.0))
    with pytest.raises(ValueError, match=r"q must lie in the open interval"):
        mixture_quantile(m, ls, 0.0)
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        mixture_cdf(m, ls, y, chunk=0)
    lp = np.log(np.full((2, 4, 3), 1.0 / 3.0))
    with pytest.raises(ValueError, match=r"log_probs must have shape \(S, N, K\)"):
        classification_log_pred_density(lp[0], np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match=r"class labels in \[0, 2\] \(K = 3\), got range \[0, 3\]"):
        classification_metrics(lp, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="integer class labels"):
        classification_log_pred_density(lp, np.array([0.0, 0.5, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"y must have shape \(4,\) \(one label"):
        classification_log_pred_density(lp, np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="n_bins must be a positive integer"):
        expected_calibration_error(np.full((4, 3), 1.0 / 3.0), np.zeros(4, dtype=np.int64), n_bins=0)
    with pytest.raises(ValueError, match=r"probs must have shape \(N, K\)"):
        accuracy(np.zeros(4), np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match=r"y must have shape \(4,\) like pred_mean"):
        rmse(np.zeros(4), np.zeros(5))
    with pytest.raises(TypeError, match="mean must have a real floating dtype"):
        regression_log_pred_density(np.zeros((3, 4), dtype=np.int64), ls, y)
