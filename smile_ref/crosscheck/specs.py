"""Rebuildable descriptions of targets and gradient estimators for golden files.

``target.describe()`` identifies a target (name, dimension, digests); a golden
file must also let another implementation *rebuild* it, so
:func:`target_spec` adds the parameters (``mean`` and ``cov`` of a Gaussian as
JSON lists, which round-trip float64 exactly; the data ``X``, ``y`` of a GLM
as npz arrays ``target/X``, ``target/y``).  :func:`build_target` and
:func:`build_gradient` invert the descriptions.

Supported: targets ``Gaussian`` (any name, e.g. ``icg``), ``LinearRegression``,
``LogisticRegression``, ``Funnel``, ``Rosenbrock``; gradient estimators
``Exact``, ``MiniBatch``, ``AdditiveNoise`` (Gaussian draws, no spatial scale).
"""
from __future__ import annotations

import numpy as np

from ..gradients import AdditiveNoise, Exact, MiniBatch
from ..targets import Funnel, Gaussian, LinearRegression, LogisticRegression, Rosenbrock

__all__ = ["target_spec", "build_target", "gradient_spec", "build_gradient"]


def target_spec(target) -> tuple[dict, dict]:
    """``(json_dict, npz_arrays)`` describing ``target`` completely."""
    spec = {"describe": target.describe()}
    arrays: dict = {}
    if isinstance(target, Gaussian):
        spec["class"] = "Gaussian"
        spec["params"] = {"mean": target.mean.tolist(), "cov": target.cov.tolist()}
    elif isinstance(target, (LinearRegression, LogisticRegression)):
        spec["class"] = type(target).__name__
        spec["params"] = {"prior_scale": target.prior_scale}
        if isinstance(target, LinearRegression):
            spec["params"]["noise_scale"] = target.noise_scale
            spec["params"]["posterior_mean"] = target.mean.tolist()
            spec["params"]["posterior_cov"] = target.cov.tolist()
        spec["data_arrays"] = ["target/X", "target/y"]
        arrays = {"target/X": np.asarray(target.X, dtype=np.float64), "target/y": np.asarray(target.y, dtype=np.float64)}
    elif isinstance(target, Funnel):
        spec["class"] = "Funnel"
        spec["params"] = {"dim": int(target.dim), "theta_scale": target.theta_scale}
    elif isinstance(target, Rosenbrock):
        spec["class"] = "Rosenbrock"
        spec["params"] = {"dim": int(target.dim), "a": target.a, "Q": target.Q}
    else:
        raise TypeError(
            "golden files support Gaussian, LinearRegression, LogisticRegression, Funnel and Rosenbrock targets, "
            f"got {type(target).__name__}"
        )
    return spec, arrays


def build_target(spec: dict, arrays):
    """Rebuild the target of :func:`target_spec` (``arrays``: the golden file's npz arrays)."""
    cls, p = spec.get("class"), spec.get("params", {})
    if cls == "Gaussian":
        t = Gaussian(np.asarray(p["mean"], dtype=np.float64), np.asarray(p["cov"], dtype=np.float64))
        t.name = spec.get("describe", {}).get("name", t.name)
        return t
    if cls in ("LinearRegression", "LogisticRegression"):
        for key in ("target/X", "target/y"):
            if key not in arrays:
                raise ValueError(f"golden file: target {cls} needs the array {key!r}, which is missing")
        X, y = np.asarray(arrays["target/X"]), np.asarray(arrays["target/y"])
        if cls == "LinearRegression":
            return LinearRegression(X, y, prior_scale=p["prior_scale"], noise_scale=p["noise_scale"])
        return LogisticRegression(X, y, prior_scale=p["prior_scale"])
    if cls == "Funnel":
        return Funnel(dim=p["dim"], theta_scale=p["theta_scale"])
    if cls == "Rosenbrock":
        return Rosenbrock(dim=p["dim"], a=p["a"], Q=p["Q"])
    raise ValueError(
        f"golden file: unknown target class {cls!r} (expected Gaussian, LinearRegression, LogisticRegression, "
        "Funnel or Rosenbrock)"
    )


def gradient_spec(gradient) -> dict:
    """JSON description of a gradient estimator, with the parameters needed to rebuild it."""
    spec = {"describe": gradient.describe(), "class": type(gradient).__name__}
    if isinstance(gradient, Exact):
        spec["params"] = {}
    elif isinstance(gradient, MiniBatch):
        spec["params"] = {"batch_size": gradient.batch_size, "replace": gradient.replace}
        if getattr(gradient, "scale", "unbiased") != "unbiased":  # non-default options only: old files unchanged
            spec["params"]["scale"] = gradient.scale
        if getattr(gradient, "schedule", "default") != "default":
            spec["params"]["schedule"] = gradient.schedule
    elif isinstance(gradient, AdditiveNoise):
        if gradient.distribution != "gaussian" or gradient.spatial is not None:
            raise TypeError("golden files support AdditiveNoise with distribution='gaussian' and spatial=None only")
        spec["params"] = {"cov": gradient.cov.tolist(), "chol": gradient.chol.tolist()}
    else:
        raise TypeError(f"golden files support Exact, MiniBatch and AdditiveNoise gradients, got {type(gradient).__name__}")
    return spec


def build_gradient(spec: dict, target):
    """Rebuild the estimator of :func:`gradient_spec` for ``target``."""
    cls, p = spec.get("class"), spec.get("params", {})
    if cls == "Exact":
        return Exact(target)
    if cls == "MiniBatch":
        return MiniBatch(target, batch_size=p["batch_size"], replace=p["replace"],
                         scale=p.get("scale", "unbiased"), schedule=p.get("schedule", "default"))
    if cls == "AdditiveNoise":
        return AdditiveNoise(target, np.asarray(p["cov"], dtype=np.float64))
    raise ValueError(f"golden file: unknown gradient class {cls!r} (expected Exact, MiniBatch or AdditiveNoise)")
