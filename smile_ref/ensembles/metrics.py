"""Predictive metrics of a sample ensemble, namespace-native.

An ensemble of S parameter vectors theta_1..theta_S (all members x retained draws, flattened)
defines at test point x_i the uniform mixture predictive
p(y | x_i) = (1/S) sum_s p(y | x_i, theta_s)  (Sommer et al. 2026, Sec. 6.3: "prediction by
averaging the predictive density over all members and samples").

* regression: p(y | x_i, theta_s) = N(y; mu_si, sigma_s^2) (``mean`` (S, N), ``log_sigma``
  (S,) or (S, N));
* classification: p(k | x_i, theta_s) = exp(``log_probs[s, i, k]``), normalised over k.

Metrics: per-point log predictive density and its test average LPPD (NLL = -LPPD), RMSE of
the mixture mean, accuracy, top-label expected calibration error (Guo et al. 2017), mixture
quantiles (vectorised bisection on the mixture CDF) and central-interval coverage.  All
computation stays in the caller's namespace/dtype/device; scalar metrics become Python floats
only at the very end.  The Gaussian CDF uses W. J. Cody's rational Chebyshev approximations
of erfc (Cody 1969, Math. Comp. 23, 631-637; netlib SPECFUN ``CALERF``), accurate to about
1e-16 relative in float64.  Work over the S x N grid is done in chunks of test points so that
no more than a few (S, chunk) temporaries exist at once.
"""
from __future__ import annotations

import math
import numbers
from statistics import NormalDist

from ..backend import array_namespace, device_of
from ..backend.validate import check_positive_int

__all__ = [
    "erfc", "normal_cdf", "regression_log_pred_density", "classification_log_pred_density",
    "predictive_probs", "lppd", "nll", "rmse", "accuracy", "expected_calibration_error",
    "mixture_cdf", "mixture_quantile", "interval_coverage", "regression_metrics",
    "classification_metrics",
]

# Cody (1969) / SPECFUN CALERF coefficients: erf on |x| <= 0.46875 (A, B), erfc on
# 0.46875 < |x| <= 4 (C, D) and erfc on |x| > 4 (P, Q).
_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03, 1.85777706184603153e-1)
_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
      2.84423683343917062e03)
_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
      2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
      1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
      3.43936767414372164e03, 1.23033935480374942e03)
_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
      6.05183413124413191e-2, 2.33520497626869185e-3)
_SQRPI = 5.6418958354775628695e-1  # 1 / sqrt(pi)
_LOG_2PI = math.log(2.0 * math.pi)
_CHUNK_ELEMENTS = 1 << 21  # S * chunk elements per temporary when chunk is None


def erfc(x):
    """Complementary error function erfc(x) = (2/sqrt(pi)) int_x^inf exp(-t^2) dt, elementwise.

    Cody's (1969) three rational approximations, as in SPECFUN ``CALERF``: for y = |x|,
    erfc(y) = 1 - y R_1(y^2) (y <= 0.46875); exp(-y^2) R_2(y) (0.46875 < y <= 4);
    exp(-y^2) (1/sqrt(pi) - y^-2 R_3(y^-2)) / y (y > 4), with exp(-y^2) evaluated as
    exp(-u^2) exp(-(y-u)(y+u)), u = floor(16 y)/16, to avoid cancellation; erfc(-y) = 2 - erfc(y).
    Maximum relative error about 1e-16 (float64); float32 inputs are evaluated in float32.

    Why not ``scipy.special.erfc``: SciPy's special functions take NumPy arrays only, and the
    metrics run in the caller's namespace (CuPy on a GPU, ``array_api_strict`` in the tests) without
    host copies; the Array API standard has no ``erf``/``erfc``.  ``cupyx.scipy.special.erfc``
    exists on CuPy, but dispatching to it would give CuPy a code path of its own (with CUDA's
    accuracy, not this one) that CI, which has no GPU, cannot run; this function is not on a hot
    path (metrics at the end of a run).  Measured (``tests/test_cross_libraries.py``): relative
    error 8e-16 against 40-digit mpmath on [-6, 26.5]; against ``scipy.special.erfc`` up to
    6e-14 for x > 10, which is SciPy's own error there.

    Examples
    --------
    >>> import numpy as np
    >>> float(erfc(np.asarray(0.0))), float(erfc(np.asarray(1.0)))
    (1.0, 0.15729920705028516)
    """
    xp = array_namespace(x)
    y = xp.abs(x)
    y1 = xp.minimum(y, 0.46875)
    z = y1 * y1
    num, den = _A[4] * z, z
    for i in range(3):
        num, den = (num + _A[i]) * z, (den + _B[i]) * z
    small = 1.0 - y1 * (num + _A[3]) / (den + _B[3])
    y2 = xp.clip(y, 0.46875, 4.0)
    num, den = _C[8] * y2, y2
    for i in range(7):
        num, den = (num + _C[i]) * y2, (den + _D[i]) * y2
    r2 = (num + _C[7]) / (den + _D[7])
    y3 = xp.clip(y, 4.0, 27.0)  # erfc(27) < 1e-318: beyond it the result is 0
    z = 1.0 / (y3 * y3)
    num, den = _P[5] * z, z
    for i in range(4):
        num, den = (num + _P[i]) * z, (den + _Q[i]) * z
    r3 = (_SQRPI - z * (num + _P[4]) / (den + _Q[4])) / y3
    mid = y <= 4.0
    r = xp.where(mid, r2, r3)
    yy = xp.where(mid, y2, y3)
    u = xp.floor(yy * 16.0) / 16.0
    big = xp.exp(-u * u) * xp.exp(-(yy - u) * (yy + u)) * r
    res = xp.where(y <= 0.46875, small, xp.where(y > 27.0, 0.0, big))
    return xp.where(x < 0, 2.0 - res, res)


def normal_cdf(z):
    """Standard normal CDF Phi(z) = erfc(-z / sqrt(2)) / 2 (relative accuracy in both tails)."""
    return 0.5 * erfc(z * (-1.0 / math.sqrt(2.0)))


# ----------------------------------------------------------------------------- validation
def _check_float(xp, a, name):
    if not xp.isdtype(a.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype (float32 or float64), got {a.dtype}")


def _check_regression(mean, log_sigma, y=None):
    """Resolve the namespace, check (S, N) / (S,) | (S, N) / (N,) shapes, cast y to mean's dtype."""
    xp = array_namespace(mean, log_sigma) if y is None else array_namespace(mean, log_sigma, y)
    _check_float(xp, mean, "mean")
    _check_float(xp, log_sigma, "log_sigma")
    if mean.ndim != 2 or mean.shape[0] < 1 or mean.shape[1] < 1:
        raise ValueError(f"mean must have shape (S, N) with S, N >= 1, got {tuple(mean.shape)}")
    S, N = mean.shape
    if tuple(log_sigma.shape) not in ((S,), (S, N)):
        raise ValueError(f"log_sigma must have shape ({S},) or ({S}, {N}), got {tuple(log_sigma.shape)}")
    if log_sigma.ndim == 1:
        log_sigma = log_sigma[:, None]
    if y is not None:
        if tuple(y.shape) != (N,):
            raise ValueError(f"y must have shape ({N},) (one target per test point), got {tuple(y.shape)}")
        _check_float(xp, y, "y")
        y = xp.astype(y, mean.dtype)
    return xp, S, N, log_sigma, y


def _check_labels(xp, y, N, K):
    """Labels y of shape (N,), integer-valued, in [0, K); returned as int64."""
    if tuple(y.shape) != (N,):
        raise ValueError(f"y must have shape ({N},) (one label per test point), got {tuple(y.shape)}")
    if xp.isdtype(y.dtype, "real floating"):
        if not bool(xp.all(y == xp.floor(y))):
            raise ValueError("y must hold integer class labels; got non-integer values")
    elif not xp.isdtype(y.dtype, "integral"):
        raise TypeError(f"y must have an integer or floating dtype holding labels, got {y.dtype}")
    lo, hi = float(xp.min(y)), float(xp.max(y))
    if lo < 0 or hi > K - 1:
        raise ValueError(f"y must hold class labels in [0, {K - 1}] (K = {K}), got range [{lo:g}, {hi:g}]")
    return xp.astype(y, xp.int64)


def _check_log_probs(log_probs):
    xp = array_namespace(log_probs)
    _check_float(xp, log_probs, "log_probs")
    if log_probs.ndim != 3 or min(log_probs.shape) < 1:
        raise ValueError(
            f"log_probs must have shape (S, N, K) with S, N, K >= 1, got {tuple(log_probs.shape)}")
    return xp


def _check_level(c, name):
    c = float(c)
    if not 0.0 < c < 1.0:
        raise ValueError(f"{name} must lie in the open interval (0, 1), got {c}")
    return c


def _chunk_size(S, N, chunk):
    if chunk is None:
        return max(1, min(N, _CHUNK_ELEMENTS // S))
    return check_positive_int(chunk, "chunk")


def _logmeanexp0(a, xp):
    """log (1/S) sum_s exp(a[s, ...]) with the max over s shifted out (finite whenever max is)."""
    m = xp.max(a, axis=0)
    m_safe = xp.where(xp.isfinite(m), m, 0.0)
    return m_safe + xp.log(xp.mean(xp.exp(a - m_safe), axis=0))


# ----------------------------------------------------------------------------- densities
def regression_log_pred_density(mean, log_sigma, y, chunk=None):
    """Per-test-point log predictive density of the Gaussian mixture.

    log p(y_i | x_i) = log (1/S) sum_s N(y_i; mu_si, sigma_si^2),
    log N(y; mu, sigma^2) = -log(2 pi)/2 - log sigma - (y - mu)^2 / (2 sigma^2),
    evaluated as a_max + log (1/S) sum_s exp(a_s - a_max) (log-sum-exp with the maximum
    a_max = max_s a_s shifted out), so the result is finite and correct even when every
    component density underflows (e.g. |y - mu| / sigma = 100).

    Parameters
    ----------
    mean : array (S, N)
        Component means mu_si (sample s, test point i).
    log_sigma : array (S,) or (S, N)
        Log noise scales (per sample, or per sample and point).
    y : array (N,)
        Test targets (cast to ``mean``'s dtype).
    chunk : int, optional
        Test points per block (default: about 2M elements of (S, chunk) per temporary).

    Returns
    -------
    array (N,) of ``mean``'s namespace, dtype and device.
    """
    xp, S, N, ls, y = _check_regression(mean, log_sigma, y)
    step, out = _chunk_size(S, N, chunk), []
    for a in range(0, N, step):
        b = min(N, a + step)
        lsb = ls if ls.shape[1] == 1 else ls[:, a:b]
        r = (y[None, a:b] - mean[:, a:b]) * xp.exp(-lsb)
        out.append(_logmeanexp0(-0.5 * (r * r) - lsb, xp) - 0.5 * _LOG_2PI)
    return out[0] if len(out) == 1 else xp.concat(out)


def classification_log_pred_density(log_probs, y):
    """Per-test-point log predictive probability of the observed label.

    log p(y_i | x_i) = log (1/S) sum_s p_s(y_i | x_i), computed as a max-shifted log-mean-exp
    of ``log_probs[s, i, y_i]`` over s.  ``log_probs`` (S, N, K) must be normalised
    log-probabilities (e.g. log-softmax outputs); ``y`` (N,) holds labels in [0, K) with any
    integer dtype or a floating dtype holding integers.  Returns (N,).
    """
    xp = _check_log_probs(log_probs)
    S, N, K = log_probs.shape
    yi = _check_labels(xp, y, N, K)
    onehot = xp.arange(K, dtype=xp.int64, device=device_of(log_probs))[None, :] == yi[:, None]
    picked = xp.sum(xp.where(onehot[None, :, :], log_probs, 0.0), axis=2)  # (S, N)
    return _logmeanexp0(picked, xp)


def predictive_probs(log_probs):
    """Mixture class probabilities p(k | x_i) = (1/S) sum_s exp(log_probs[s, i, k]), shape (N, K).

    Computed as exp of the max-shifted log-mean-exp over s (no component is lost to underflow
    unless the mixture probability itself underflows).
    """
    xp = _check_log_probs(log_probs)
    return xp.exp(_logmeanexp0(log_probs, xp))


def _check_vector(x, name):
    xp = array_namespace(x)
    if x.ndim != 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape (N,) with N >= 1, got {tuple(x.shape)}")
    return xp


def lppd(log_pred_density) -> float:
    """LPPD = (1/N) sum_i log p(y_i | x_i): the test-point average of the per-point values
    (the convention of Sommer et al. 2026, whose best energy value is about 2.02)."""
    xp = _check_vector(log_pred_density, "log_pred_density")
    return float(xp.mean(log_pred_density))


def nll(log_pred_density) -> float:
    """Negative log-likelihood per test point, NLL = -LPPD."""
    return -lppd(log_pred_density)


def rmse(pred_mean, y) -> float:
    """RMSE = sqrt((1/N) sum_i (m_i - y_i)^2), m_i = (1/S) sum_s mu_si the mixture mean (N,)."""
    xp = _check_vector(pred_mean, "pred_mean")
    if tuple(y.shape) != tuple(pred_mean.shape):
        raise ValueError(f"y must have shape {tuple(pred_mean.shape)} like pred_mean, got {tuple(y.shape)}")
    d = pred_mean - xp.astype(y, pred_mean.dtype)
    return math.sqrt(float(xp.mean(d * d)))


def _check_probs(probs):
    xp = array_namespace(probs)
    _check_float(xp, probs, "probs")
    if probs.ndim != 2 or min(probs.shape) < 1:
        raise ValueError(f"probs must have shape (N, K) with N, K >= 1, got {tuple(probs.shape)}")
    return xp


def accuracy(probs, y) -> float:
    """Fraction of test points with argmax_k probs[i, k] == y_i (ties: the first maximal class)."""
    xp = _check_probs(probs)
    yi = _check_labels(xp, y, *probs.shape)
    return float(xp.mean(xp.astype(xp.argmax(probs, axis=1) == yi, probs.dtype)))


def expected_calibration_error(probs, y, n_bins: int = 15) -> float:
    """Top-label expected calibration error with equal-width confidence bins (Guo et al. 2017).

    With confidence c_i = max_k probs[i, k], prediction k_i = argmax_k probs[i, k] and
    correctness a_i = [k_i == y_i],

        ECE = sum_b (|B_b| / N) |acc(B_b) - conf(B_b)| = (1/N) sum_b |sum_{i in B_b} (a_i - c_i)|.

    Bin convention: B_b = {i : b/n_bins < c_i <= (b+1)/n_bins} for b = 0..n_bins-1, i.e. the
    bin index is ceil(c_i n_bins) - 1 (computed in floating point), with c_i = 0 put in the
    first bin.  Empty bins contribute 0.
    """
    xp = _check_probs(probs)
    n_bins = check_positive_int(n_bins, "n_bins")
    N = probs.shape[0]
    yi = _check_labels(xp, y, *probs.shape)
    conf = xp.max(probs, axis=1)
    gap = xp.astype(xp.argmax(probs, axis=1) == yi, probs.dtype) - conf
    idx = xp.clip(xp.astype(xp.ceil(conf * float(n_bins)), xp.int64) - 1, 0, n_bins - 1)
    mask = idx[:, None] == xp.arange(n_bins, dtype=xp.int64, device=device_of(probs))[None, :]
    per_bin = xp.sum(xp.where(mask, gap[:, None], 0.0), axis=0)
    return float(xp.sum(xp.abs(per_bin))) / N


# ----------------------------------------------------------------------------- quantiles
def _cdf_block(mean, ls, t, a, b, xp):
    """F_i(t_i) = (1/S) sum_s Phi((t_i - mu_si) / sigma_si) for points a..b-1; t has b-a entries."""
    lsb = ls if ls.shape[1] == 1 else ls[:, a:b]
    return xp.mean(normal_cdf((t[None, :] - mean[:, a:b]) * xp.exp(-lsb)), axis=0)


def mixture_cdf(mean, log_sigma, t, chunk=None):
    """Per-point mixture CDF F_i(t_i) = (1/S) sum_s Phi((t_i - mu_si) / sigma_si), shape (N,).

    At t = y this is the probability integral transform of the observations.
    """
    xp, S, N, ls, t = _check_regression(mean, log_sigma, t)
    step = _chunk_size(S, N, chunk)
    out = [_cdf_block(mean, ls, t[a:min(N, a + step)], a, min(N, a + step), xp) for a in range(0, N, step)]
    return out[0] if len(out) == 1 else xp.concat(out)


def mixture_quantile(mean, log_sigma, q, chunk=None):
    """Quantile Q_i(q) of each per-point mixture (1/S) sum_s N(mu_si, sigma_si^2).

    Vectorised bisection on F_i(t) - q with F_i the mixture CDF (:func:`mixture_cdf`, Cody's
    erfc).  Bracket: with z_q = Phi^{-1}(q) (``statistics.NormalDist``, a Python float), the
    component quantiles mu_si + sigma_si z_q enclose the root, since at their minimum every
    component CDF is <= q and at their maximum >= q; so lo = min_s(.), hi = max_s(.) (a single
    component gives lo = hi = mu + sigma z_q, the exact answer).  After
    n = ceil(log2(2 / eps)) + 1 halvings (54 for float64, 25 for float32) the bracket width is
    below eps * max(|lo_0|, |hi_0|), the floating-point resolution of the answer.

    Parameters
    ----------
    mean : array (S, N); log_sigma : array (S,) or (S, N)
    q : float or sequence of floats in (0, 1)
    chunk : int, optional
        Test points per block (bounds the (S, chunk) temporaries).

    Returns
    -------
    array (N,) for a float ``q``, (len(q), N) for a sequence.
    """
    xp, S, N, ls, _ = _check_regression(mean, log_sigma)
    scalar = isinstance(q, numbers.Real)
    qs = [_check_level(v, "q") for v in ([q] if scalar else list(q))]
    if not qs:
        raise ValueError("q must be a float or a non-empty sequence of floats in (0, 1)")
    eps = float(xp.finfo(mean.dtype).eps)
    n_iter = math.ceil(math.log2(2.0 / eps)) + 1
    step, rows = _chunk_size(S, N, chunk), []
    for qv in qs:
        zq, out = NormalDist().inv_cdf(qv), []
        for a in range(0, N, step):
            b = min(N, a + step)
            comp = mean[:, a:b] + xp.exp(ls if ls.shape[1] == 1 else ls[:, a:b]) * zq
            lo, hi = xp.min(comp, axis=0), xp.max(comp, axis=0)
            for _ in range(n_iter):
                mid = lo + 0.5 * (hi - lo)
                below = _cdf_block(mean, ls, mid, a, b, xp) < qv
                lo, hi = xp.where(below, mid, lo), xp.where(below, hi, mid)
            out.append(lo + 0.5 * (hi - lo))
        rows.append(out[0] if len(out) == 1 else xp.concat(out))
    return rows[0] if scalar else xp.stack(rows)


def interval_coverage(mean, log_sigma, y, levels=(0.8, 0.9, 0.95), chunk=None) -> dict:
    """Fraction of test targets inside the central predictive interval of each level c.

    The interval is [Q_i((1-c)/2), Q_i((1+c)/2)] of the mixture (:func:`mixture_quantile`).
    Because F_i is continuous and strictly increasing, y_i lies in it iff
    (1-c)/2 <= F_i(y_i) <= (1+c)/2, so the coverage is computed from one evaluation of the
    probability integral transform u_i = F_i(y_i) (no root finding).

    Returns
    -------
    dict {c: coverage} with Python-float values.
    """
    cs = [_check_level(c, "levels") for c in levels]
    if not cs:
        raise ValueError("levels must be a non-empty sequence of floats in (0, 1)")
    u = mixture_cdf(mean, log_sigma, y, chunk=chunk)
    xp = array_namespace(u)
    res = {}
    for c in cs:
        inside = (u >= (1.0 - c) / 2.0) & (u <= (1.0 + c) / 2.0)
        res[c] = float(xp.mean(xp.astype(inside, u.dtype)))
    return res


def _coverage_key(c):
    p = 100.0 * c
    return f"coverage_{round(p)}" if abs(p - round(p)) < 1e-9 else f"coverage_{p:g}"


def regression_metrics(mean, log_sigma, y, levels=(0.8, 0.9, 0.95), chunk=None) -> dict:
    """LPPD, NLL, RMSE and interval coverage of the Gaussian-mixture predictive.

    Returns ``{"lppd", "nll", "rmse", "coverage_80", "coverage_90", "coverage_95"}`` (one
    ``coverage_<100 c>`` key per level) with Python-float values; see
    :func:`regression_log_pred_density`, :func:`rmse`, :func:`interval_coverage`.
    """
    xp, *_ = _check_regression(mean, log_sigma, y)
    lpd = regression_log_pred_density(mean, log_sigma, y, chunk=chunk)
    out = {"lppd": lppd(lpd)}
    out["nll"] = -out["lppd"]
    out["rmse"] = rmse(xp.mean(mean, axis=0), y)
    for c, v in interval_coverage(mean, log_sigma, y, levels=levels, chunk=chunk).items():
        out[_coverage_key(c)] = v
    return out


def classification_metrics(log_probs, y, n_bins: int = 15) -> dict:
    """LPPD, NLL, accuracy and top-label ECE of the categorical mixture predictive.

    Returns ``{"lppd", "nll", "accuracy", "ece"}`` with Python-float values; accuracy and ECE
    use the mixture probabilities of :func:`predictive_probs`.
    """
    n_bins = check_positive_int(n_bins, "n_bins")
    lpd = classification_log_pred_density(log_probs, y)
    probs = predictive_probs(log_probs)
    out = {"lppd": lppd(lpd)}
    out["nll"] = -out["lppd"]
    out["accuracy"] = accuracy(probs, y)
    out["ece"] = expected_calibration_error(probs, y, n_bins=n_bins)
    return out
