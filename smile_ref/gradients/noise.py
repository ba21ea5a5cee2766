"""Synthetic additive gradient noise (the paper's analytical benchmarks).

Sommer et al. (2026, arXiv 2602.06500), Sec. 6.1 / App. D.2 and their code
(``analytical/inference_models.py``): the mini-batch log-density of the
analytical benchmarks is ``log target(x) + sum_{i in B} y_i . x``, a *linear
tilt* whose gradient adds position-independent noise ``xi = sum_{i in B} y_i``
to the exact score.  :class:`AdditiveNoise` draws ``xi`` directly:

    g_hat(x)    = grad log pi(x) + f(x) xi,
    logp_hat(x) = log pi(x)      + f(x) xi . x,

with ``E[xi] = 0`` and ``Cov[xi] = cov`` exactly.  ``xi = L z`` where ``L`` is
the lower Cholesky factor of ``cov`` and ``z`` has i.i.d. zero-mean,
unit-variance coordinates:

* ``"gaussian"``: ``z ~ N(0, 1)``;
* ``"laplace"``: Laplace with scale ``1/sqrt(2)`` (variance ``2 s^2 = 1``);
* ``"student_t"``: ``t_df * sqrt((df - 2)/df)`` (needs ``df > 2``);
* ``"lognormal"``: ``(exp(sigma n) - exp(sigma^2/2)) / sqrt((exp(sigma^2) - 1) exp(sigma^2))``,
  ``n ~ N(0, 1)`` (mean ``exp(sigma^2/2)``, variance ``(e^{sigma^2}-1) e^{sigma^2}``).

For non-Gaussian ``z``, ``L z`` is **not elliptical**: only its first two
moments are fixed by ``cov``; its higher moments depend on the choice of square
root (here the Cholesky factor, hence on the coordinate order).

Spatially varying noise
-----------------------
``spatial`` is ``None`` or a callable ``f(xp, x) -> (n,)``; :func:`exp_spatial`
gives the paper's ``f(x) = exp(-x[:, coord] / length)`` (their code uses
coordinate index 2, zero-based, with lengths 6.5 (ICG), 9 (funnel), 1.414
(Rosenbrock)).  ``f`` multiplies the noise *draw*, so the noise covariance is
``f(x)^2 cov``.  With ``spatial_mode="scale"`` (default) ``g_hat = grad log pi +
f xi`` and ``logp_hat = log pi + f xi . x`` -- then ``logp_hat`` is **not** a
potential of ``g_hat`` (its gradient has the extra term ``(xi . x) grad f``).

The paper's code instead differentiates its tilted log-density by autodiff,
i.e. ``g_hat = grad[log pi + f(x) xi . x] = grad log pi + f xi + (xi . x) grad f``:
``spatial_mode="potential"`` reproduces this (``spatial`` must then provide
``spatial.grad(xp, x) -> (n, d)``, as :func:`exp_spatial` does).  Its noise
``A(x) xi`` with ``A = f I + grad f x^T`` has covariance ``A cov A^T``.

``draw`` returns ``xi`` (unscaled by ``f``), shape ``(n, d)``, in the backend of
``x``: the random input golden trajectories record.  ``cost = 1``.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from ..backend import array_namespace, backend_of, device_of
from ..backend.validate import (
    check_choice,
    check_host_vector,
    check_nonneg_int,
    check_positive_float,
    check_spd,
)
from .base import GradientEstimator, target_evaluator, target_logdensity

__all__ = ["AdditiveNoise", "ExpSpatial", "exp_spatial", "standardized_draws_host", "DISTRIBUTIONS"]

DISTRIBUTIONS = ("gaussian", "laplace", "student_t", "lognormal")


def standardized_draws_host(generator: np.random.Generator, distribution: str, shape, df=None, sigma=None) -> np.ndarray:
    """I.i.d. zero-mean, unit-variance draws (float64 host array) of ``distribution``."""
    check_choice(distribution, "distribution", DISTRIBUTIONS)
    if distribution == "gaussian":
        return generator.standard_normal(size=shape)
    if distribution == "laplace":
        return generator.laplace(0.0, 1.0 / math.sqrt(2.0), size=shape)
    if distribution == "student_t":
        return generator.standard_t(df, size=shape) * math.sqrt((df - 2.0) / df)
    s2 = sigma * sigma
    return (np.exp(sigma * generator.standard_normal(size=shape)) - math.exp(0.5 * s2)) / math.sqrt(
        math.expm1(s2) * math.exp(s2)
    )


def _host_generator(rng) -> np.random.Generator:
    gen = getattr(rng, "host_generator", None)  # a user-supplied source may lack it: say so clearly
    if isinstance(gen, np.random.Generator):
        return gen
    raise TypeError(f"non-Gaussian noise needs a random source with a host NumPy generator (RandomSource."
                    f"host_generator), got {type(rng).__name__}")


class ExpSpatial:
    """``f(x) = exp(-x[:, coord] / length)`` and its gradient ``-f/length e_coord``."""

    def __init__(self, coord: int, length: float):
        self.coord = check_nonneg_int(coord, "coord")
        self.length = check_positive_float(length, "length")

    def __call__(self, xp, x):
        return xp.exp(x[:, self.coord] * (-1.0 / self.length))

    def grad(self, xp, x):
        f = self(xp, x)
        onehot = xp.astype(xp.arange(x.shape[1], device=device_of(x)) == self.coord, x.dtype)
        return (f * (-1.0 / self.length))[:, None] * onehot[None, :]

    def __repr__(self) -> str:
        return f"exp_spatial(coord={self.coord}, length={self.length})"


def exp_spatial(coord: int, length: float) -> ExpSpatial:
    """The paper's spatial noise scale ``f(x) = exp(-x_coord / length)`` (``coord`` zero-based)."""
    return ExpSpatial(coord, length)


def _as_cov(cov, d: int) -> np.ndarray:
    """``cov`` as a host ``(d, d)`` SPD matrix: scalar ``c`` -> ``c I``, vector -> ``diag``."""
    if isinstance(cov, (str, bytes, bool, np.bool_)) or cov is None:
        raise TypeError(f"cov must be a positive number, a vector ({d},) or an SPD matrix ({d}, {d}), got {cov!r}")
    if isinstance(cov, numbers.Real):
        return check_positive_float(cov, "cov") * np.eye(d)
    arr = np.asarray(cov) if isinstance(cov, (list, tuple, np.ndarray)) else cov
    ndim = len(getattr(arr, "shape", ()))
    if ndim == 0:
        return check_positive_float(np.asarray(arr).item(), "cov") * np.eye(d)
    if ndim == 1:
        v = check_host_vector(arr, "cov", d)
        if np.any(v <= 0):
            raise ValueError("cov given as a vector (diagonal) must have positive entries")
        return np.diag(v)
    if ndim == 2:
        return check_spd(arr, "cov", d)
    raise ValueError(f"cov must be a scalar, a vector of shape ({d},) or a matrix of shape ({d}, {d}); got ndim={ndim}")


class AdditiveNoise(GradientEstimator):
    """``g_hat = grad log pi(x) + f(x) xi``, ``xi = L z``, ``Cov[xi] = cov`` (see module docstring).

    Parameters
    ----------
    target : Target
    cov : float, array (d,) or array (d, d)
        Noise covariance: a scalar ``c`` means ``c I`` (``c`` is a variance),
        a vector the diagonal, a matrix must be symmetric positive definite.
    distribution : {"gaussian", "laplace", "student_t", "lognormal"}
    df : float, only for ``"student_t"``; must be ``> 2``.
    sigma : float, only for ``"lognormal"``; must be ``> 0``.
    spatial : callable ``f(xp, x) -> (n,)`` or None
        Multiplies the noise draw (covariance ``f^2 cov``); see :func:`exp_spatial`.
    spatial_mode : {"scale", "potential"}, keyword-only
        ``"potential"``: ``g_hat`` is the gradient of ``logp_hat`` (paper's code).
    """

    cost = 1.0
    stochastic = True

    def __init__(self, target, cov, distribution="gaussian", df=None, sigma=None, spatial=None, *, spatial_mode="scale"):
        if not hasattr(target, "logdensity_and_grad") or not hasattr(target, "dim"):
            raise TypeError(f"target must provide dim and logdensity_and_grad, got {type(target).__name__}")
        self.target = target
        d = int(target.dim)
        self.cov = _as_cov(cov, d)
        self.chol = np.linalg.cholesky(self.cov)
        diag = np.diag(self.chol).copy()
        self._diag_chol = diag if np.array_equal(self.chol, np.diag(diag)) else None  # draw: z * diag(L)
        self.distribution = check_choice(distribution, "distribution", DISTRIBUTIONS)
        if distribution == "student_t":
            if df is None:
                raise ValueError("df is required for distribution='student_t' (df > 2)")
            self.df = check_positive_float(df, "df")
            if self.df <= 2.0:
                raise ValueError(f"df must be > 2 so that the Student-t variance is finite, got {df}")
        elif df is not None:
            raise ValueError(f"df is only used with distribution='student_t', got distribution={distribution!r}")
        else:
            self.df = None
        if distribution == "lognormal":
            if sigma is None:
                raise ValueError("sigma is required for distribution='lognormal' (sigma > 0)")
            self.sigma = check_positive_float(sigma, "sigma")
        elif sigma is not None:
            raise ValueError(f"sigma is only used with distribution='lognormal', got distribution={distribution!r}")
        else:
            self.sigma = None
        if spatial is not None and not callable(spatial):
            raise TypeError(f"spatial must be None or a callable f(xp, x) -> (n,), got {type(spatial).__name__}")
        if spatial is not None and getattr(spatial, "coord", None) is not None and spatial.coord >= d:
            raise ValueError(f"spatial.coord must be < dim={d}, got {spatial.coord}")
        self.spatial = spatial
        self.spatial_mode = check_choice(spatial_mode, "spatial_mode", ("scale", "potential"))
        if spatial_mode == "potential" and spatial is not None and not callable(getattr(spatial, "grad", None)):
            raise TypeError("spatial_mode='potential' needs spatial.grad(xp, x) -> (n, d) (see exp_spatial)")
        self._cache: dict = {}

    def _on(self, x):
        """``(L, cov)`` as arrays of the namespace/device/dtype of ``x`` (cached)."""
        if type(x) is np.ndarray:  # NumPy: the dtype is the whole key (no namespace or device lookup)
            hit = self._cache.get(x.dtype)
            if hit is None:
                hit = self._cache[x.dtype] = tuple(np.array(a, dtype=x.dtype) for a in (self.chol, self.cov))
            return hit
        xp = array_namespace(x)
        dev = device_of(x)
        key = (id(xp), str(dev), str(x.dtype))
        hit = self._cache.get(key)
        if hit is None:
            hit = tuple(xp.asarray(np.ascontiguousarray(a), dtype=x.dtype, device=dev) for a in (self.chol, self.cov))
            self._cache[key] = hit
        return hit

    def draw(self, state: dict, rng, x) -> tuple:
        """``xi = L z`` of shape ``(n, d)`` (backend of ``x``; not scaled by ``f``)."""
        shape = (int(x.shape[0]), int(self.target.dim))
        if self.distribution == "gaussian":
            z = rng.normal(shape, dtype=x.dtype)
        else:
            zh = standardized_draws_host(_host_generator(rng), self.distribution, shape, self.df, self.sigma)
            be = backend_of(x)
            z = be.xp.asarray(np.ascontiguousarray(zh), dtype=x.dtype, device=be.device)
        if self._diag_chol is not None:  # diagonal L: z * diag(L), O(n d) instead of the O(n d^2) product
            return z * self._diag_on(x), state
        L, _ = self._on(x)
        return z @ L.mT, state

    def _diag_on(self, x):
        """``diag(L)`` as a ``(d,)`` array of the namespace/device/dtype of ``x`` (cached).

        For a diagonal ``L`` each entry of ``z L^T`` is ``z_i L_ii`` plus products with zeros, so
        ``z * diag(L)`` is the same number (adding a zero changes nothing but the sign of an exact zero,
        which needs ``z_i = 0``).
        """
        key = ("diag", x.dtype) if type(x) is np.ndarray else ("diag", id(array_namespace(x)), str(device_of(x)),
                                                                 str(x.dtype))
        hit = self._cache.get(key)
        if hit is None:
            if type(x) is np.ndarray:
                hit = np.array(self._diag_chol, dtype=x.dtype)
            else:
                hit = array_namespace(x).asarray(self._diag_chol, dtype=x.dtype, device=device_of(x))
            self._cache[key] = hit
        return hit

    def _f(self, xp, x):
        f = self.spatial(xp, x)
        if tuple(f.shape) != (x.shape[0],):
            raise ValueError(f"spatial(xp, x) must return shape ({x.shape[0]},), got {tuple(f.shape)}")
        return f

    def evaluate(self, x, batch):
        """``(log pi + f xi.x, grad log pi + f xi [+ (xi.x) grad f])`` for ``xi = batch`` ``(n, d)``."""
        lp, g = self.target.logdensity_and_grad(x)
        if tuple(batch.shape) != tuple(x.shape):
            raise ValueError(f"batch (the noise draw xi) must have the shape of x {tuple(x.shape)}, got {tuple(batch.shape)}")
        xp = array_namespace(x)
        tilt = xp.vecdot(batch, x)
        if self.spatial is None:
            return lp + tilt, g + batch
        f = self._f(xp, x)
        g_hat = g + f[:, None] * batch
        if self.spatial_mode == "potential":
            g_hat = g_hat + tilt[:, None] * self.spatial.grad(xp, x)
        return lp + f * tilt, g_hat

    def evaluator(self, xp):
        """:meth:`evaluate` without the per-call checks of ``x`` and ``batch`` (same arithmetic)."""
        if self.spatial is not None or type(self).evaluate is not AdditiveNoise.evaluate:
            return self.evaluate  # spatial noise, or a subclass with its own evaluate
        f = target_evaluator(self.target, xp)
        vecdot = xp.vecdot

        def ev(x, batch):
            lp, g = f(x)
            return lp + vecdot(batch, x), g + batch

        return ev

    def logdensity_evaluator(self, xp):
        """``(x, xi) -> log pi(x) + f xi.x`` without the gradient (the arithmetic of :meth:`evaluate`)."""
        f = target_logdensity(self.target, xp)
        vecdot = xp.vecdot
        if self.spatial is None:
            return lambda x, batch: f(x) + vecdot(batch, x)
        return lambda x, batch: f(x) + self._f(xp, x) * vecdot(batch, x)

    def noise_covariance(self, x):
        """``Cov[g_hat(x)]`` per chain, ``(n, d, d)``: ``cov``, ``f^2 cov`` or ``A cov A^T``."""
        xp = array_namespace(x)
        _, C = self._on(x)
        n, d = int(x.shape[0]), int(x.shape[1])
        if self.spatial is None:
            return xp.broadcast_to(C[None, ...], (n, d, d)) * 1.0
        f = self._f(xp, x)
        if self.spatial_mode == "scale":
            return (f * f)[:, None, None] * C[None, ...]
        eye = xp.eye(d, dtype=x.dtype, device=device_of(x))
        A = f[:, None, None] * eye[None, ...] + self.spatial.grad(xp, x)[:, :, None] * x[:, None, :]
        return A @ C @ A.mT

    def describe(self) -> dict:
        return {
            "name": "AdditiveNoise",
            "cost": 1.0,
            "distribution": self.distribution,
            "df": self.df,
            "sigma": self.sigma,
            "cov": self.cov.tolist(),
            "spatial": None if self.spatial is None else repr(self.spatial),
            "spatial_mode": self.spatial_mode,
        }
