"""Effective sample size, split-R-hat and autocorrelation, namespace-native.

Samples have shape ``(n_chains, n_draws, d)``; every function returns arrays of
the caller's namespace, dtype and device (float32 in, float32 out).  The
computation follows Vehtari, Gelman, Simpson, Carpenter & Buerkner (2021),
"Rank-normalization, folding, and localization: an improved R-hat", Bayesian
Analysis 16(2), and reproduces ``arviz_stats.base.array_stats`` (``ess`` with
``method="bulk"`` / ``"mean"``, ``rhat`` with ``method="rank"``) to rounding
error on NumPy float64.

ESS (Vehtari et al. 2021, Eqs. 10-12; Geyer 1992).  Split each chain into two
halves (M chains of N draws after splitting).  With the biased autocovariances
gamma_{m,t} (FFT, divisor N), W = mean_m gamma_{m,0} N/(N-1),
var+ = W (N-1)/N + B/N where B/N is the sample variance (ddof=1) of chain means,

    rho_t = 1 - (W - mean_m gamma_{m,t}) / var+,   rho_0 = 1.

Pair sums P_k = rho_{2k} + rho_{2k+1} are accumulated while positive (Geyer's
initial positive sequence, 2k < N - 2), made non-increasing (initial monotone
sequence: P_k <- min_{j<=k} P_j), and

    tau = -1 + 2 sum_{k<K} P_k + rho_{2K} [if rho_{2K} > 0],
    ESS = M N / max(tau, 1/log10(M N)).

``method="bulk"`` applies this to rank-normalised split chains (z-scale,
Eq. 14); ``method="basic"`` to the plain split chains (arviz ``method="mean"``;
the ESS of the sample mean, which is what the Monte-Carlo standard error of a
mean uses).
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import array_namespace, device_of
from ..backend.validate import check_choice, check_positive_int
from ._rank import median_last, z_scale

__all__ = ["ess", "rhat", "rhat_and_ess", "autocorrelation", "autocovariance", "batch_means_se", "mean_and_se"]


def _check_samples(samples, name="samples", min_draws=4):
    shape = getattr(samples, "shape", None)
    if shape is None:
        raise TypeError(f"{name} must be an array of shape (n_chains, n_draws, d), got {type(samples).__name__}")
    if len(shape) != 3:
        raise ValueError(f"{name} must have shape (n_chains, n_draws, d), got {tuple(shape)}")
    xp = array_namespace(samples)
    if not xp.isdtype(samples.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype (float32 or float64), got {samples.dtype}")
    if shape[0] < 1 or shape[2] < 1:
        raise ValueError(f"{name} must have n_chains >= 1 and d >= 1, got shape {tuple(shape)}")
    if shape[1] < min_draws:
        raise ValueError(f"{name} must have n_draws >= {min_draws}, got shape {tuple(shape)}")
    return xp


def _next_fast_len(n: int) -> int:
    """Smallest 5-smooth integer >= n (an efficient FFT length)."""
    m = max(int(n), 1)
    while True:
        k = m
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return m
        m += 1


def _fft_pair(xp, x):
    """(rfft, irfft) for ``x``: the namespace's fft extension, else NumPy for host arrays."""
    fft = getattr(xp, "fft", None)
    if fft is not None:
        return fft.rfft, fft.irfft, xp
    if isinstance(x, np.ndarray):  # pragma: no cover - compat NumPy always has fft
        import array_api_compat.numpy as cnp

        return np.fft.rfft, np.fft.irfft, cnp
    raise TypeError(
        f"autocovariance needs the Array API fft extension; namespace {getattr(xp, '__name__', xp)} has none "
        "and the input is not a host NumPy array"
    )


def autocovariance(x, axis: int = -1):
    """Biased autocovariance gamma_t = (1/n) sum_{s<n-t} (x_s - xbar)(x_{s+t} - xbar), all lags.

    Computed by zero-padded FFT (length >= 2n, so the circular correlation equals
    the linear one) along ``axis``; the output has the shape of ``x``.
    """
    xp = array_namespace(x)
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"axis must be an int, got {axis!r}")
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"x must have a real floating dtype (float32 or float64), got {x.dtype}")
    ndim = x.ndim
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis must lie in [-{ndim}, {ndim - 1}] for x of shape {tuple(x.shape)}, got {axis}")
    y = xp.moveaxis(x, axis, -1)
    n = y.shape[-1]
    y = y - xp.mean(y, axis=-1, keepdims=True)
    m = _next_fast_len(2 * n)
    rfft, irfft, fxp = _fft_pair(xp, y)
    f = rfft(y, n=m, axis=-1)
    power = f * fxp.conj(f)
    cov = irfft(power, n=m, axis=-1)[..., :n] / n
    cov = xp.astype(cov, x.dtype) if cov.dtype != x.dtype else cov
    return xp.moveaxis(cov, -1, axis)


def autocorrelation(x, axis: int = -1):
    """Autocorrelation rho_t = gamma_t / gamma_0 along ``axis`` (all lags, FFT).

    Matches ``arviz_stats`` ``autocorr`` (biased autocovariance, divisor n).
    A constant series gives NaN.
    """
    xp = array_namespace(x)
    cov = autocovariance(x, axis=axis)
    ax = axis % x.ndim
    g0 = xp.take(cov, xp.asarray([0], device=device_of(cov)), axis=ax)
    return cov / g0


def _split(y):
    """(d, C, n) -> (d, 2C, n//2): first and last halves of each chain (middle draw dropped if n odd)."""
    xp = array_namespace(y)
    n = y.shape[-1]
    half = n // 2
    return xp.concat([y[..., :half], y[..., n - half :]], axis=1)


def _cummin_last(p):
    """Running minimum along the last axis (log-step doubling with +inf padding)."""
    xp = array_namespace(p)
    m, k = p.shape
    s = 1
    while s < k:
        pad = xp.full((m, s), math.inf, dtype=p.dtype, device=device_of(p))
        p = xp.minimum(p, xp.concat([pad, p[:, : k - s]], axis=-1))
        s *= 2
    return p


def _ess_core(y):
    """Geyer initial-monotone ESS for each row of ``y`` with shape (d, M chains, N draws)."""
    xp = array_namespace(y)
    dev = device_of(y)
    d, n_chain, n = y.shape
    size = n_chain * n
    acov = autocovariance(y, axis=-1)
    chain_mean = xp.mean(y, axis=-1)
    mean_var = xp.mean(acov[..., 0], axis=-1) * (n / (n - 1.0))
    var_plus = mean_var * ((n - 1.0) / n)
    if n_chain > 1:
        var_plus = var_plus + xp.var(chain_mean, axis=-1, correction=1)
    rho = 1.0 - (mean_var[:, None] - xp.mean(acov, axis=1)) / var_plus[:, None]
    rho = xp.concat([xp.ones((d, 1), dtype=y.dtype, device=dev), rho[:, 1:]], axis=-1)
    lim = max((n - 3) // 2, 0)  # last pair index the positive-sequence loop may reach
    npairs = lim + 1
    rho_even = rho[:, 0 : 2 * npairs : 2]
    pairs = rho_even + rho[:, 1 : 2 * npairs : 2]
    # K = index of the first non-positive pair (the loop stops after computing it), capped at lim
    leading_pos = xp.cumulative_sum(xp.astype(pairs <= 0.0, xp.int64), axis=-1) == 0
    stop = xp.sum(xp.astype(leading_pos, xp.int64), axis=-1)
    k_stop = xp.minimum(stop, xp.asarray(lim, dtype=xp.int64, device=dev))[:, None]
    k = xp.arange(npairs, dtype=xp.int64, device=dev)[None, :]
    zero = xp.zeros((), dtype=y.dtype, device=dev)
    mono = _cummin_last(pairs)
    body = xp.sum(xp.where(k < k_stop, mono, zero), axis=-1)
    at_k = k == k_stop
    last_rho = xp.sum(xp.where(at_k, rho_even, zero), axis=-1)
    last_pair = xp.sum(xp.where(at_k, pairs, zero), axis=-1)
    include = (last_rho > 0.0) | ((k_stop[:, 0] >= 1) & (last_pair >= 0.0))
    tau = -1.0 + 2.0 * body + xp.where(include, last_rho, zero)
    tau = xp.maximum(tau, xp.asarray(1.0 / math.log10(size), dtype=y.dtype, device=dev))
    out = size / tau
    out = xp.where(xp.any(xp.isnan(rho), axis=-1), xp.asarray(math.nan, dtype=y.dtype, device=dev), out)
    flat = xp.reshape(y, (d, size))
    constant = (xp.max(flat, axis=-1) - xp.min(flat, axis=-1)) < float(np.finfo(np.float64).resolution)
    return xp.where(constant, xp.asarray(float(size), dtype=y.dtype, device=dev), out)


def _zscale_chains(y):
    """Rank-normalise (d, C, n) jointly over chains and draws of each coordinate."""
    xp = array_namespace(y)
    d, c, n = y.shape
    return xp.reshape(z_scale(xp.reshape(y, (d, c * n))), (d, c, n))


def _nan_rows(y):
    xp = array_namespace(y)
    return xp.any(xp.isnan(xp.reshape(y, (y.shape[0], -1))), axis=-1)


def ess(samples, method: str = "bulk"):
    """Effective sample size of each coordinate (Vehtari et al. 2021).

    Parameters
    ----------
    samples : array, shape (n_chains, n_draws, d)
        Draws of any supported namespace; n_draws >= 4.
    method : {"bulk", "basic"}
        ``"bulk"``: rank-normalised split chains (arviz ``method="bulk"``).
        ``"basic"``: split chains without rank normalisation (arviz
        ``method="mean"``), the ESS relevant to the Monte-Carlo error of a mean.

    Returns
    -------
    array, shape (d,)
        ESS in draws (total over chains), dtype of ``samples``.  NaN for a
        coordinate containing NaN; the total draw count for a constant one.
    """
    xp = _check_samples(samples)
    check_choice(method, "method", ("bulk", "basic"))
    y = _split(xp.permute_dims(samples, (2, 0, 1)))
    bad = _nan_rows(y)
    if method == "bulk":
        y = _zscale_chains(xp.where(bad[:, None, None], xp.zeros_like(y), y))
    with np.errstate(invalid="ignore", divide="ignore"):  # constant/NaN rows are handled explicitly
        out = _ess_core(y)
    return xp.where(bad, xp.asarray(math.nan, dtype=out.dtype, device=device_of(out)), out)


def _rhat_core(y):
    """Gelman-Rubin R-hat of (d, M, N): sqrt(((N-1)/N W + B/N) / W)."""
    xp = array_namespace(y)
    n = y.shape[-1]
    chain_mean = xp.mean(y, axis=-1)
    within = xp.mean(xp.var(y, axis=-1, correction=1), axis=-1)
    between = n * xp.var(chain_mean, axis=-1, correction=1)
    return xp.sqrt((between / within + n - 1.0) / n)


def _rhat_from_split(y):
    """:func:`rhat` of split chains ``y`` (d, C, n) whose NaN rows are zeroed, with the rank-normalised
    ``y`` (for :func:`ess`'s ``"bulk"`` method) as a second output."""
    xp = array_namespace(y)
    d, c, n = y.shape
    flat = xp.reshape(y, (d, c * n))
    folded = xp.reshape(xp.abs(flat - median_last(flat)), (d, c, n))
    z = _zscale_chains(y)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant coordinate gives NaN
        return xp.maximum(_rhat_core(z), _rhat_core(_zscale_chains(folded))), z


def rhat(samples):
    """Rank-normalised split-R-hat of each coordinate (Vehtari et al. 2021, Sec. 4.2).

    R-hat = max(R_bulk, R_tail): R_bulk is the classic split-R-hat of the
    rank-normalised split chains, R_tail that of the rank-normalised folded
    draws |x - median(x)| (arviz ``rhat(method="rank")``).

    Parameters
    ----------
    samples : array, shape (n_chains, n_draws, d)
        n_draws >= 4.  Unlike arviz (which returns NaN for one chain) a single
        chain is allowed: its two halves are compared.

    Returns
    -------
    array, shape (d,)
    """
    xp = _check_samples(samples)
    y = _split(xp.permute_dims(samples, (2, 0, 1)))
    bad = _nan_rows(y)
    out, _ = _rhat_from_split(xp.where(bad[:, None, None], xp.zeros_like(y), y))
    return xp.where(bad, xp.asarray(math.nan, dtype=out.dtype, device=device_of(out)), out)


def rhat_and_ess(samples):
    """``(rhat(samples), ess(samples, method="bulk"))`` with one rank normalisation shared between them.

    Both statistics rank-normalise the same split chains; computing them together saves one of the
    three rankings.  The values are those of the two functions called separately, bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(4, 200, 2))
    >>> r, e = rhat_and_ess(x)
    >>> bool(np.array_equal(r, rhat(x)) and np.array_equal(e, ess(x)))
    True
    """
    xp = _check_samples(samples)
    y = _split(xp.permute_dims(samples, (2, 0, 1)))
    bad = _nan_rows(y)
    r, z = _rhat_from_split(xp.where(bad[:, None, None], xp.zeros_like(y), y))
    with np.errstate(invalid="ignore", divide="ignore"):
        e = _ess_core(z)
    nan = xp.asarray(math.nan, dtype=r.dtype, device=device_of(r))
    return xp.where(bad, nan, r), xp.where(bad, nan, e)


def _default_n_batches(n_chains: int, n_draws: int) -> int:
    """floor(sqrt(n_draws)) batches per chain (at least 2 for a single chain)."""
    return max(math.isqrt(n_draws), 1 if n_chains > 1 else 2)


def _batch_means(values, n_batches, name):
    """Core of :func:`batch_means_se` for ``values`` of shape (n_chains, n_draws, *rest)."""
    shape = getattr(values, "shape", None)
    if shape is None:
        raise TypeError(f"{name} must be an array of shape (n_chains, n_draws, ...), got {type(values).__name__}")
    if len(shape) < 2:
        raise ValueError(f"{name} must have shape (n_chains, n_draws, ...), got {tuple(shape)}")
    xp = array_namespace(values)
    if not xp.isdtype(values.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype (float32 or float64), got {values.dtype}")
    n_chains, n_draws = shape[0], shape[1]
    rest = tuple(shape[2:])
    if n_chains < 1 or n_draws < 1:
        raise ValueError(f"{name} must have n_chains >= 1 and n_draws >= 1, got shape {tuple(shape)}")
    if n_batches is None:
        n_batches = _default_n_batches(n_chains, n_draws)
    n_batches = check_positive_int(n_batches, "n_batches")
    if n_batches > n_draws:
        raise ValueError(f"n_batches must be <= n_draws = {n_draws}, got {n_batches}")
    if n_chains * n_batches < 2:
        raise ValueError(
            f"need at least 2 batches in total: n_chains * n_batches = {n_chains} * {n_batches}; "
            f"use n_batches >= 2 (and n_draws >= 2) for a single chain"
        )
    size = n_draws // n_batches
    used = xp.reshape(values[:, n_draws - n_batches * size :, ...], (n_chains, n_batches, size) + rest)
    batch = xp.reshape(xp.mean(used, axis=2), (n_chains * n_batches,) + rest)
    mean = xp.mean(batch, axis=0)
    se = xp.sqrt(xp.var(batch, axis=0, correction=1) / (n_chains * n_batches))
    return mean, se


def batch_means_se(samples, n_batches: int | None = None):
    """Mean of each coordinate and its Monte-Carlo standard error by batch means.

    Each chain's draws are cut into ``n_batches`` consecutive batches of
    b = floor(n_draws / n_batches) draws (the first ``n_draws mod n_batches``
    draws of every chain are dropped).  With the m = n_chains * n_batches batch
    means Y_j pooled over chains,

        mean = (1/m) sum_j Y_j,      se^2 = s_Y^2 / m,   s_Y^2 = (1/(m-1)) sum_j (Y_j - mean)^2,

    the batch-means estimator of Var(mean) (Flegal & Jones 2010; Geyer 1992,
    Sec. 3.2), consistent when b grows faster than the autocorrelation time.
    Between-chain disagreement enters s_Y^2, so unmixed chains inflate se.

    Parameters
    ----------
    samples : array, shape (n_chains, n_draws, d)
    n_batches : int, optional
        Batches per chain; default floor(sqrt(n_draws)) (at least 2 for one chain).

    Returns
    -------
    (mean, se) : arrays of shape (d,), namespace/dtype/device of ``samples``.
    """
    _check_samples(samples, min_draws=1)
    return _batch_means(samples, n_batches, "samples")


def mean_and_se(values, n_batches: int | None = None):
    """Batch-means mean and standard error of an already computed function of the draws.

    ``values`` has shape (n_chains, n_draws, ...) (e.g. ``samples**2`` or a
    scalar statistic of shape (n_chains, n_draws)); returns ``(mean, se)`` with
    the trailing shape.  Same estimator as :func:`batch_means_se`.
    """
    return _batch_means(values, n_batches, "values")
