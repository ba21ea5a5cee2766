"""Multivariate Gaussian targets, including the SMILE paper's ill-conditioned Gaussian (ICG).

For ``x ~ N(m, Sigma)`` with precision ``P = Sigma^{-1}`` the (normalised) log-density
and score are

.. math::

    \\log\\pi(x) = -\\tfrac12 (x-m)^T P (x-m) - \\tfrac12 \\log\\det(2\\pi\\Sigma),
    \\qquad \\nabla\\log\\pi(x) = -P (x-m).

The precision and the log-normaliser are computed once on the host (through the
Cholesky factor ``Sigma = L L^T``); the mean and precision are converted to each
caller's namespace/device/dtype once and cached.  A diagonal covariance is
evaluated elementwise (no ``d x d`` product).

Exact moments: ``mean = m``, ``cov = Sigma``; the base-class formulas
``E[x_i^2] = Sigma_ii + m_i^2`` and ``Var[x_i^2] = 2 Sigma_ii^2 + 4 m_i^2 Sigma_ii``
hold for any Gaussian marginal.

References: SMILE (Sommer et al. 2026, arXiv 2602.06500), experiments section
(ICG: ``Sigma = Q diag(c^2) Q^T``, ``c = logspace(-1, 1, 10)``, ``Q`` a random
rotation); MCHMC (Robnik et al. 2023, arXiv 2212.08549), ill-conditioned Gaussian
with log-uniformly spaced eigenvalues and condition number ``10^4`` in ``d = 100``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.linalg

from ..backend import device_of
from ..backend.validate import (
    check_host_vector,
    check_nonneg_int,
    check_positive_float,
    check_positive_int,
    check_spd,
)
from ._digest import array_digest
from .base import Target

__all__ = ["Gaussian", "ill_conditioned_gaussian", "diagonal_gaussian_condition"]


class Gaussian(Target):
    """Gaussian target ``N(mean, cov)`` with dense (or diagonal) covariance.

    Parameters
    ----------
    mean : array-like (d,)
        Mean vector ``m`` (finite).
    cov : array-like (d, d)
        Symmetric positive-definite covariance ``Sigma`` (checked by Cholesky).

    Attributes
    ----------
    mean, cov, precision, chol : host NumPy arrays ``m``, ``Sigma``, ``Sigma^{-1}``, ``L``.
    log_normalizer : float, ``-1/2 log det(2 pi Sigma)``.

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import Gaussian
    >>> t = Gaussian(np.zeros(2), np.array([[2.0, 0.5], [0.5, 1.0]]))
    >>> logp, grad = t.logdensity_and_grad(np.array([[1.0, 0.0]]))  # batched: (n, d) -> (n,), (n, d)
    >>> grad  # -Sigma^{-1} x
    array([[-0.57142857,  0.28571429]])
    >>> Gaussian.diagonal(np.array([1.0, 4.0])).second_moment
    array([1., 4.])
    """

    name = "gaussian"

    def __init__(self, mean, cov):
        mean = check_host_vector(mean, "mean")
        cov = check_spd(cov, "cov", dim=mean.shape[0])
        self._setup(mean, cov)

    def _setup(self, mean: np.ndarray, cov: np.ndarray) -> None:
        self.dim = int(mean.shape[0])
        self.mean = mean
        self.cov = cov
        self.is_diagonal = bool(np.count_nonzero(cov - np.diag(np.diag(cov))) == 0)
        if self.is_diagonal:  # O(d^2) instead of O(d^3): no factorisation needed
            v = np.diag(cov)
            self.chol = np.diag(np.sqrt(v))
            self.precision = np.diag(1.0 / v)
        else:
            self.chol = np.linalg.cholesky(cov)
            linv = scipy.linalg.solve_triangular(self.chol, np.eye(self.dim), lower=True)
            prec = linv.T @ linv
            self.precision = 0.5 * (prec + prec.T)
        logdet = 2.0 * float(np.sum(np.log(np.diag(self.chol))))
        self.log_normalizer = -0.5 * (self.dim * math.log(2.0 * math.pi) + logdet)
        self._factory: dict | None = None
        self._cache: dict[Any, tuple] = {}

    # --- constructors ---------------------------------------------------------
    @classmethod
    def isotropic(cls, dim: int, scale: float = 1.0, mean=None) -> "Gaussian":
        """``N(mean, scale^2 I_dim)`` (``mean`` defaults to 0)."""
        dim = check_positive_int(dim, "dim")
        scale = check_positive_float(scale, "scale")
        m = np.zeros(dim) if mean is None else check_host_vector(mean, "mean", dim)
        g = cls(m, scale**2 * np.eye(dim))
        g._factory = {"factory": "isotropic", "scale": scale}
        return g

    @classmethod
    def diagonal(cls, variances, mean=None) -> "Gaussian":
        """``N(mean, diag(variances))``; ``variances`` must be finite and > 0."""
        v = check_host_vector(variances, "variances")
        if np.any(v <= 0):
            raise ValueError("variances must be > 0 (covariance must be positive definite)")
        m = np.zeros(v.shape[0]) if mean is None else check_host_vector(mean, "mean", v.shape[0])
        g = cls.__new__(cls)  # variances already validated: skip the O(d^3) SPD check of __init__
        g._setup(m, np.diag(v))
        return g

    # --- evaluation -----------------------------------------------------------
    def params_on(self, xp, like):
        """``(mean, precision)`` in ``xp`` on the device/dtype of ``like`` (cached).

        ``precision`` is the ``(d,)`` diagonal for a diagonal covariance, else ``(d, d)``.
        """
        if type(like) is np.ndarray:  # NumPy: the dtype is the whole key (no device lookup)
            hit = self._cache.get(like.dtype)
            if hit is None:
                p = np.diag(self.precision).copy() if self.is_diagonal else self.precision
                hit = self._cache[like.dtype] = (np.array(self.mean, dtype=like.dtype), np.array(p, dtype=like.dtype))
            return hit
        dev = device_of(like)
        key = (id(xp), str(dev), str(like.dtype))
        hit = self._cache.get(key)
        if hit is None:
            p = np.diag(self.precision).copy() if self.is_diagonal else self.precision
            m = xp.asarray(np.ascontiguousarray(self.mean), dtype=like.dtype, device=dev)
            P = xp.asarray(np.ascontiguousarray(p), dtype=like.dtype, device=dev)
            hit = (m, P)
            self._cache[key] = hit
        return hit

    def _logdensity_and_grad(self, xp, x):
        m, P = self.params_on(xp, x)
        r = x - m
        g = -(r * P) if self.is_diagonal else -(r @ P)  # P symmetric: (P r_k)^T = r_k^T P
        logp = 0.5 * xp.sum(r * g, axis=1) + self.log_normalizer
        return logp, g

    # --- exact draws ------------------------------------------------------------
    def exact_sample(self, generator: np.random.Generator, n: int) -> np.ndarray:
        """``n`` i.i.d. host draws ``m + L z``, ``z ~ N(0, I)``: shape ``(n, d)``."""
        n = check_positive_int(n, "n")
        z = generator.standard_normal((n, self.dim))
        return self.mean + z @ self.chol.T

    def describe(self) -> dict:
        ev = np.sort(np.diag(self.cov)) if self.is_diagonal else np.linalg.eigvalsh(self.cov)
        out = {
            "name": self.name,
            "dim": int(self.dim),
            "diagonal": self.is_diagonal,
            "cov_condition_number": float(ev[-1] / ev[0]),
            "mean_sha256": array_digest(self.mean),
            "cov_sha256": array_digest(self.cov),
        }
        if self._factory is not None:
            out.update(self._factory)
        return out


def _haar_orthogonal(dim: int, seed: int) -> np.ndarray:
    """Haar-random orthogonal matrix: QR of a Gaussian matrix with the sign fix ``Q diag(sign(diag R))``.

    (Mezzadri 2007, "How to generate random matrices from the classical compact
    groups".)  The draw uses ``numpy.random.default_rng(seed)``.  The result is Haar on
    O(d); ``Q diag(c^2) Q^T`` does not depend on the sign of any column of ``Q``, so an
    SO(d) (rotation) draw would give the same covariance.
    """
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((dim, dim))
    q, r = np.linalg.qr(z)
    q = q * np.sign(np.diag(r))[None, :]
    return q


def ill_conditioned_gaussian(dim: int = 10, seed: int = 0, c_min: float = 0.1, c_max: float = 10.0) -> Gaussian:
    """The SMILE paper's ill-conditioned Gaussian (ICG): ``N(0, Q diag(c^2) Q^T)``.

    ``c = logspace(log10 c_min, log10 c_max, dim)`` (standard deviations along the
    principal axes; with the defaults the variance ratio is ``10^4``) and ``Q`` is a
    Haar-random orthogonal matrix drawn from ``numpy.random.default_rng(seed)``
    (QR with sign fix).  The paper's own rotation comes from a JAX key, so its
    exact matrix is not reproduced; every statistic of interest depends only on
    ``c`` up to the rotation.

    ``E[x_i^2] = Sigma_ii`` and ``Var[x_i^2] = 2 Sigma_ii^2`` (mean 0).

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import ill_conditioned_gaussian
    >>> t = ill_conditioned_gaussian(10)
    >>> t.principal_scales[[0, -1]]
    array([ 0.1, 10. ])
    >>> bool(np.allclose(np.linalg.eigvalsh(t.cov)[[0, -1]], [1e-2, 1e2]))
    True
    """
    dim = check_positive_int(dim, "dim")
    seed = check_nonneg_int(seed, "seed")
    c_min = check_positive_float(c_min, "c_min")
    c_max = check_positive_float(c_max, "c_max")
    if c_min > c_max:
        raise ValueError(f"c_min must be <= c_max, got c_min={c_min}, c_max={c_max}")
    c = np.logspace(math.log10(c_min), math.log10(c_max), dim)
    q = _haar_orthogonal(dim, int(seed))
    cov = (q * c**2) @ q.T
    cov = 0.5 * (cov + cov.T)
    g = Gaussian(np.zeros(dim), cov)
    g.name = "icg"
    g.principal_scales = c
    g.rotation = q
    g._factory = {"factory": "ill_conditioned_gaussian", "seed": int(seed), "c_min": c_min, "c_max": c_max}
    return g


def diagonal_gaussian_condition(dim: int = 100, condition: float = 1e4) -> Gaussian:
    """Diagonal Gaussian ``N(0, diag(v))`` with ``max v / min v = condition``.

    ``v_i = condition^{-1/2 + (i-1)/(dim-1)}``: log-uniformly spaced variances from
    ``condition^{-1/2}`` to ``condition^{1/2}`` (geometric mean 1), as in the MCHMC
    paper's 100-d ill-conditioned Gaussian (variances ``1e-2 ... 1e2``).
    ``dim = 1`` requires ``condition = 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import diagonal_gaussian_condition
    >>> t = diagonal_gaussian_condition(100, condition=1e4)
    >>> bool(np.allclose(np.diag(t.cov)[[0, -1]], [1e-2, 1e2]))
    True
    """
    dim = check_positive_int(dim, "dim")
    condition = check_positive_float(condition, "condition")
    if condition < 1.0:
        raise ValueError(f"condition must be >= 1, got {condition}")
    if dim == 1 and condition != 1.0:
        raise ValueError(f"condition must be 1 when dim == 1, got {condition}")
    half = 0.5 * math.log10(condition)
    v = np.logspace(-half, half, dim) if dim > 1 else np.ones(1)
    g = Gaussian.diagonal(v)
    g.name = "diagonal_gaussian"
    g._factory = {"factory": "diagonal_gaussian_condition", "condition": condition}
    return g
