"""Ensemble predictions: per-parameter-vector outputs stacked over members and draws, then metrics.

For parameter vectors ``theta_1..theta_S`` (all members, all retained draws) the MLP gives per
test point ``x_i`` a Gaussian ``N(f(x_i; theta_s), sigma_s^2)`` (regression, ``sigma_s =
exp(log sigma)`` the learned noise scale of draw ``s``) or class probabilities
``softmax(f(x_i; theta_s))`` (classification).  The posterior predictive is their uniform
mixture; :mod:`smile_ref.ensembles.metrics` turns the stacked outputs into LPPD, RMSE, coverage,
accuracy and ECE.  Everything stays in the namespace/device of the parameter arrays.
"""
from __future__ import annotations

import numpy as np

from ..backend import array_namespace, device_of
from .metrics import classification_metrics, regression_metrics

__all__ = ["predict_params", "ensemble_metrics", "member_spread_metrics"]


def predict_params(target, params_list, X, chunk: int = 2048):
    """Stack the model outputs of every parameter row of every array in ``params_list`` at ``X``.

    Parameters
    ----------
    target : smile_ref.targets.MLP
    params_list : sequence of arrays (S_m, dim)
        E.g. one array per member (its retained draws), or one (M, dim) array of DE weights.
    X : array-like (N, p)
        Host test inputs (standardised like the training data).
    chunk : int
        Parameter rows per forward pass (bounds the (chunk, N, width) activations).

    Returns
    -------
    (mean (S, N), log_sigma (S,)) for regression; log-probabilities (S, N, K) for classification.
    """
    if not params_list:
        raise ValueError("params_list must contain at least one (S_m, dim) array")
    xp = array_namespace(params_list[0])
    means, scales = [], []
    for P in params_list:
        if P.ndim != 2 or P.shape[1] != target.dim:
            raise ValueError(f"each parameter array must have shape (S_m, {target.dim}), got {tuple(P.shape)}")
        for a in range(0, P.shape[0], chunk):
            out = target.predict(P[a:min(a + chunk, P.shape[0]), :], X)
            if target.task == "regression":
                means.append(out[0])
                scales.append(out[1])
            else:
                means.append(out)
    if target.task == "regression":
        return xp.concat(means, axis=0), xp.concat(scales, axis=0)
    return xp.concat(means, axis=0)


def ensemble_metrics(target, params_list, X, y, levels=(0.8, 0.9, 0.95), n_bins: int = 15) -> dict:
    """Predictive metrics of the uniform mixture over all rows of ``params_list`` at ``(X, y)``.

    ``y`` is a host vector (standardised targets or integer labels); it is moved to the namespace
    and device of the parameters.  Returns the dict of
    :func:`~smile_ref.ensembles.metrics.regression_metrics` or
    :func:`~smile_ref.ensembles.metrics.classification_metrics` plus ``n_samples`` (``S``).
    """
    xp = array_namespace(params_list[0])
    dev = device_of(params_list[0])
    dtype = params_list[0].dtype
    out = predict_params(target, params_list, X)
    yy = np.asarray(y, dtype=np.float64)
    if target.task == "regression":
        mean, log_sigma = out
        yb = xp.asarray(yy, dtype=dtype, device=dev)
        m = regression_metrics(mean, log_sigma, yb, levels=levels)
        s = int(mean.shape[0])
    else:
        yb = xp.asarray(yy.astype(np.int64), device=dev)
        m = classification_metrics(out, yb, n_bins=n_bins)
        s = int(out.shape[0])
    m = {k: float(v) for k, v in m.items()}
    m["n_samples"] = s
    return m


def member_spread_metrics(target, params, X, y, levels=(0.8, 0.9, 0.95), scale_bounds=(1e-6, 1e6)) -> dict:
    """Regression metrics of a deep ensemble whose predictive scale is the spread of its members' means.

    The SMILE authors' deep-ensemble row for mean regression (members trained with ``sigma`` fixed):
    with member means ``mu_m(x_i)``, ``m = 1..M``, and ``s_i`` their population standard deviation over
    ``m`` (clipped to ``scale_bounds``), the predictive is the mixture
    ``(1/M) sum_m N(y; mu_m(x_i), s_i^2)``; LPPD, RMSE and coverage as
    :func:`~smile_ref.ensembles.metrics.regression_metrics`.  The members' own ``log sigma`` is ignored.

    Parameters
    ----------
    target : smile_ref.targets.MLP
        A regression MLP.
    params : array (M, dim)
        Member parameters, ``M >= 2``.
    X : array-like (N, p)
    y : array-like (N,)
        Host test inputs and (standardised) targets.
    """
    if target.task != "regression":
        raise ValueError(f"member_spread_metrics is for regression targets, got task={target.task!r}")
    if params.ndim != 2 or params.shape[0] < 2:
        raise ValueError(f"params must have shape (M, dim) with M >= 2 members (the spread of one member is 0), "
                         f"got {tuple(params.shape)}")
    lo, hi = (float(v) for v in scale_bounds)
    if not 0.0 < lo < hi:
        raise ValueError(f"scale_bounds must be (lo, hi) with 0 < lo < hi, got {scale_bounds!r}")
    xp = array_namespace(params)
    mean, _ = predict_params(target, [params], X)
    spread = xp.clip(xp.std(mean, axis=0), lo, hi)
    log_sigma = xp.broadcast_to(xp.log(spread)[None, :], mean.shape)
    yb = xp.asarray(np.asarray(y, dtype=np.float64), dtype=params.dtype, device=device_of(params))
    m = {k: float(v) for k, v in regression_metrics(mean, log_sigma, yb, levels=levels).items()}
    m["n_samples"] = int(mean.shape[0])
    return m
