"""Accuracy metrics for samples against known moments, namespace-native.

Samples have shape ``(n_chains, n_draws, d)`` and are pooled over chains and
draws.  Reference moments (``mean``, ``cov``, ``second_moment``...) may be
arrays of the samples' namespace or host data (lists, NumPy); they are moved
to the samples' namespace, dtype and device.

* :func:`moment_errors` -- absolute / relative errors of means and variances.
* :func:`bias_metric` -- the SMILE paper's b^2 (Sommer et al. 2026, Sec. 6.1):
  b^2 = (1/d) sum_i (Ehat[x_i^2] - E[x_i^2])^2 / Var[x_i^2].
* :func:`bias_metric_se` -- b^2 with its standard error and the value b^2 takes
  from Monte-Carlo noise alone, so a test can tell bias from noise.
* :func:`gaussian_kl` -- KL(N0 || N1) via Cholesky factors.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..backend import array_namespace, device_of
from ..chainstats.ess import _batch_means, _check_samples, _default_n_batches

__all__ = ["moment_errors", "bias_metric", "bias_metric_se", "BiasMetric", "gaussian_kl"]


def _like(a: Any, ref, name: str, shape: tuple):
    """``a`` as an array of ``ref``'s namespace/dtype/device, checked to have ``shape``."""
    xp = array_namespace(ref)
    dev = device_of(ref)
    if isinstance(a, (list, tuple, int, float, np.ndarray, np.generic)):
        host = np.asarray(a, dtype=np.float64)
        if host.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {host.shape}")
        return xp.asarray(np.ascontiguousarray(host), dtype=ref.dtype, device=dev)
    if tuple(getattr(a, "shape", ())) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(getattr(a, 'shape', ()))}")
    if array_namespace(a) is not xp:
        raise TypeError(f"{name} must be host data or an array of the samples' namespace {xp.__name__}")
    return xp.asarray(a, dtype=ref.dtype, device=dev)


def _pooled(samples):
    """(n_chains, n_draws, d) -> (n_chains * n_draws, d)."""
    xp = array_namespace(samples)
    c, n, d = samples.shape
    return xp.reshape(samples, (c * n, d))


def moment_errors(samples, mean=None, cov=None) -> dict:
    """Errors of the pooled sample mean and variance of each coordinate.

    With mhat_i, vhat_i the mean and variance (divisor N-1) of coordinate i over
    all N = n_chains * n_draws draws, m = ``mean`` and v = diag(``cov``):

    * ``"mean"``, ``"var"``: mhat, vhat (always);
    * ``"mean_abs_error"`` = |mhat - m| (if ``mean``);
    * ``"mean_std_error"`` = |mhat - m| / sqrt(v) (if both; error in marginal
      standard deviations -- a relative error of a mean is undefined at m = 0);
    * ``"var_abs_error"`` = |vhat - v|, ``"var_rel_error"`` = |vhat - v| / v (if ``cov``);
    * ``"cov_rel_frobenius"`` = ||Chat - C||_F / ||C||_F (if ``cov`` is a (d, d) matrix).

    Parameters
    ----------
    samples : array, shape (n_chains, n_draws, d)
    mean : array-like, shape (d,), optional
    cov : array-like, shape (d, d) or (d,), optional
        Covariance matrix, or the vector of marginal variances.

    Returns
    -------
    dict of arrays of shape (d,) (0-d for ``"cov_rel_frobenius"``) in the samples' namespace.
    """
    xp = _check_samples(samples, min_draws=1)
    x = _pooled(samples)
    if x.shape[0] < 2:
        raise ValueError(f"samples must hold at least 2 draws in total, got shape {tuple(samples.shape)}")
    d = x.shape[1]
    mhat = xp.mean(x, axis=0)
    vhat = xp.var(x, axis=0, correction=1)
    out = {"mean": mhat, "var": vhat}
    if mean is not None:
        m = _like(mean, samples, "mean", (d,))
        out["mean_abs_error"] = xp.abs(mhat - m)
    if cov is not None:
        cshape = tuple(getattr(cov, "shape", np.shape(cov)))
        if cshape == (d, d):
            c = _like(cov, samples, "cov", (d, d))
            v = xp.linalg.diagonal(c)
            centred = x - mhat
            chat = (centred.mT @ centred) / (x.shape[0] - 1.0)
            out["cov_rel_frobenius"] = xp.linalg.matrix_norm(chat - c) / xp.linalg.matrix_norm(c)
        elif cshape == (d,):
            v = _like(cov, samples, "cov", (d,))
        else:
            raise ValueError(f"cov must have shape ({d}, {d}) or ({d},), got {cshape}")
        if bool(xp.any(v <= 0.0)):
            raise ValueError("cov must have positive diagonal (marginal variances)")
        out["var_abs_error"] = xp.abs(vhat - v)
        out["var_rel_error"] = xp.abs(vhat - v) / v
        if mean is not None:
            out["mean_std_error"] = out["mean_abs_error"] / xp.sqrt(v)
    return out


def _moment_args(samples, second_moment, second_moment_var):
    xp = _check_samples(samples, min_draws=1)
    d = samples.shape[2]
    m2 = _like(second_moment, samples, "second_moment", (d,))
    v2 = _like(second_moment_var, samples, "second_moment_var", (d,))
    if not bool(xp.all(v2 > 0.0)):
        raise ValueError("second_moment_var must be > 0 in every coordinate (it is Var[x_i^2] under the target)")
    return xp, m2, v2


def bias_metric(samples, second_moment, second_moment_var):
    """The SMILE bias metric b^2 (Sommer et al. 2026, Sec. 6.1).

        b^2 = (1/d) sum_i (Ehat[x_i^2] - E[x_i^2])^2 / Var[x_i^2],

    Ehat pooling all chains and draws; E[x_i^2] = ``second_moment`` and
    Var[x_i^2] = ``second_moment_var`` are the target's values (for a centred
    Gaussian with variance s_i: E = s_i, Var = 2 s_i^2).

    Returns a 0-d array in the samples' namespace/dtype/device.
    """
    xp, m2, v2 = _moment_args(samples, second_moment, second_moment_var)
    ehat = xp.mean(_pooled(samples) ** 2, axis=0)
    return xp.mean((ehat - m2) ** 2 / v2)


class BiasMetric(NamedTuple):
    """b^2 with its uncertainty (0-d arrays in the samples' namespace).

    b2 : the metric; se : its standard error; noise_mean, noise_sd : mean and
    standard deviation of b^2 when the sampler is unbiased (pure Monte-Carlo
    noise); debiased = b2 - noise_mean estimates the squared bias itself.
    """

    b2: Any
    se: Any
    noise_mean: Any
    noise_sd: Any
    debiased: Any


def bias_metric_se(samples, second_moment, second_moment_var, n_batches: int | None = None) -> BiasMetric:
    """b^2 with a batch-means / delta-method standard error and its pure-noise value.

    Let Delta_i = Ehat[x_i^2] - E[x_i^2] = delta_i + e_i, with true bias delta_i
    and Monte-Carlo error e_i of variance s_i^2 estimated by batch means on
    x_i^2 (:func:`mean_and_se`; s_i^2 is rescaled by n_used / n_draws when the
    batches leave out the first n_draws mod n_batches draws, since Ehat uses all
    draws).  Treating the e_i as independent normals,

        E[b^2]   = (1/d) sum_i (delta_i^2 + s_i^2) / V_i,
        Var[b^2] = (1/d^2) sum_i (4 delta_i^2 s_i^2 + 2 s_i^4) / V_i^2

    (the first term is the delta method, the second the chi-square part that
    dominates when delta = 0).  Returned:

    * ``noise_mean`` = (1/d) sum_i s_i^2 / V_i  (E[b^2] when unbiased),
    * ``noise_sd`` = sqrt(2 sum_i s_i^4 / V_i^2) / d  (sd of b^2 when unbiased),
    * ``se`` = sqrt((1/d^2) sum_i (4 Delta_i^2 s_i^2 + 2 s_i^4) / V_i^2), with
      Delta_i^2 plugged in for delta_i^2 (conservative: E[Delta^2] = delta^2 + s^2),
    * ``debiased`` = b^2 - noise_mean, an unbiased estimate of (1/d) sum_i delta_i^2 / V_i.

    Assumptions: the errors e_i of different coordinates are independent (exact
    for independent coordinates, e.g. a diagonal Gaussian; otherwise ``se`` and
    ``noise_sd`` are approximate), and the batch means are long enough to be
    nearly independent.
    """
    xp, m2, v2 = _moment_args(samples, second_moment, second_moment_var)
    d = samples.shape[2]
    c, n, _ = samples.shape
    sq = samples**2
    ehat = xp.mean(_pooled(sq), axis=0)  # all draws, as in bias_metric
    _, s = _batch_means(sq, n_batches, "samples")
    nb = n_batches if n_batches is not None else _default_n_batches(c, n)
    # batch means estimate Var of the mean of the n_used = nb * floor(n / nb) draws per chain they use;
    # rescale to the mean over all n draws: Var ~ sigma_asy^2 / N.
    s2 = s**2 * ((nb * (n // nb)) / n)
    delta2 = (ehat - m2) ** 2
    b2 = xp.mean(delta2 / v2)
    noise_mean = xp.mean(s2 / v2)
    noise_sd = xp.sqrt(2.0 * xp.sum(s2**2 / v2**2)) / d
    se = xp.sqrt(xp.sum((4.0 * delta2 * s2 + 2.0 * s2**2) / v2**2)) / d
    return BiasMetric(b2=b2, se=se, noise_mean=noise_mean, noise_sd=noise_sd, debiased=b2 - noise_mean)


def gaussian_kl(mean0, cov0, mean1, cov1):
    """KL(N(mean0, cov0) || N(mean1, cov1)), batched over leading dimensions.

        KL = 1/2 [ tr(S1^{-1} S0) + (m1 - m0)^T S1^{-1} (m1 - m0) - d + ln det S1 - ln det S0 ],

    evaluated with Cholesky factors S_k = L_k L_k^T: tr(S1^{-1} S0) = ||L1^{-1} L0||_F^2,
    the quadratic form = ||L1^{-1}(m1 - m0)||^2 and ln det S_k = 2 sum_j ln (L_k)_jj.

    Parameters
    ----------
    mean0, mean1 : arrays, shape (..., d)
    cov0, cov1 : arrays, shape (..., d, d), symmetric positive definite
        All four of one namespace; leading dimensions broadcast.

    Returns
    -------
    array, shape (...)  (0-d for unbatched input).  A non-SPD covariance makes
    the namespace's Cholesky fail (NumPy: ``LinAlgError``) or return NaN.
    """
    xp = array_namespace(mean0, cov0, mean1, cov1)
    for name, a in (("mean0", mean0), ("mean1", mean1)):
        if a.ndim < 1:
            raise ValueError(f"{name} must have shape (..., d), got {tuple(a.shape)}")
    d = mean0.shape[-1]
    if mean1.shape[-1] != d:
        raise ValueError(f"mean1 must have last dimension d = {d}, got shape {tuple(mean1.shape)}")
    for name, c in (("cov0", cov0), ("cov1", cov1)):
        if c.ndim < 2 or c.shape[-1] != d or c.shape[-2] != d:
            raise ValueError(f"{name} must have shape (..., {d}, {d}), got {tuple(c.shape)}")
    for name, a in (("mean0", mean0), ("cov0", cov0), ("mean1", mean1), ("cov1", cov1)):
        if not xp.isdtype(a.dtype, "real floating"):
            raise TypeError(f"{name} must have a real floating dtype, got {a.dtype}")
    # explicit broadcasting of the batch dimensions (CuPy's solve does not broadcast stacks);
    # np.broadcast_shapes is shape arithmetic on tuples, no array data leaves the device
    try:
        batch = tuple(np.broadcast_shapes(mean0.shape[:-1], mean1.shape[:-1], cov0.shape[:-2], cov1.shape[:-2]))
    except ValueError:
        raise ValueError(
            "batch dimensions of mean0, cov0, mean1, cov1 must broadcast, got shapes "
            f"{tuple(mean0.shape)}, {tuple(cov0.shape)}, {tuple(mean1.shape)}, {tuple(cov1.shape)}"
        ) from None
    l0 = xp.broadcast_to(xp.linalg.cholesky(cov0), batch + (d, d))
    l1 = xp.broadcast_to(xp.linalg.cholesky(cov1), batch + (d, d))
    a = xp.linalg.solve(l1, l0)
    trace = xp.sum(a**2, axis=(-2, -1))
    z = xp.linalg.solve(l1, xp.broadcast_to(mean1 - mean0, batch + (d,))[..., None])
    maha = xp.sum(z**2, axis=(-2, -1))
    logdet0 = 2.0 * xp.sum(xp.log(xp.linalg.diagonal(l0)), axis=-1)
    logdet1 = 2.0 * xp.sum(xp.log(xp.linalg.diagonal(l1)), axis=-1)
    return 0.5 * (trace + maha - float(d) + logdet1 - logdet0)

