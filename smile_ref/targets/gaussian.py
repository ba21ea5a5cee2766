"""Multivariate Gaussian targets, including the SMILE paper's ill-conditioned Gaussian (ICG).

For ``x ~ N(m, Sigma)`` with precision ``P = Sigma^{-1}`` the (normalised) log-density
and score are

.. math::

    \\log\\pi(x) = -\\tfrac12 (x-m)^T P (x-m) - \\tfrac12 \\log\\det(2\\pi\\Sigma),
    \\qquad \\nabla\\log\\pi(x) = -P (x-m).

The precision and the log-normaliser are computed once on the host (through the
Cholesky factor ``Sigma = L L^T``); the mean and precision are converted to each
caller's namespace/device/dtype once and cached.  A diagonal covariance
``Sigma = diag(v)`` is stored as ``v`` and evaluated elementwise,
``\\nabla\\log\\pi(x) = -(x - m) \\odot v^{-1}`` (no ``d x d`` array, no factorisation).

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
    """Gaussian target ``N(mean, cov)`` with dense or diagonal covariance.

    A diagonal Gaussian (:meth:`diagonal`, :meth:`isotropic`,
    :func:`diagonal_gaussian_condition`) stores only its variance vector ``v``: set-up,
    evaluation (``g = -(x - m) * (1/v)`` elementwise), moments and exact draws cost ``O(d)`` memory
    and ``O(n d)`` time, and the dense ``cov``, ``precision`` and ``chol`` are built only when
    read.  A covariance given as a matrix is checked and factorised once (``O(d^3)``).

    Parameters
    ----------
    mean : array-like (d,)
        Mean vector ``m`` (finite).
    cov : array-like (d, d)
        Symmetric positive-definite covariance ``Sigma`` (checked by Cholesky).

    Attributes
    ----------
    mean : host NumPy array ``m``, shape ``(d,)``.
    variances : host NumPy array ``diag(Sigma)``, shape ``(d,)`` (the marginal variances).
    cov, precision, chol : host NumPy arrays ``Sigma``, ``Sigma^{-1}`` and ``L`` (``Sigma = L L^T``),
        shape ``(d, d)``.  For a diagonal Gaussian built from its variances they are
        ``diag(v)``, ``diag(1/v)`` and ``diag(sqrt v)``, allocated anew on each access.
    is_diagonal : bool, whether ``Sigma`` is diagonal (evaluation is then elementwise).
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
        """Set-up from a dense covariance (a diagonal one is detected and evaluated elementwise)."""
        self.mean = mean
        self._cov = cov
        self.is_diagonal = bool(np.count_nonzero(cov - np.diag(np.diag(cov))) == 0)
        if self.is_diagonal:  # no factorisation: precision and Cholesky factor follow from diag(cov)
            self._variances = np.diag(cov).copy()
            self._chol = self._precision = None
        else:
            self._variances = None
            self._chol = np.linalg.cholesky(cov)
            linv = scipy.linalg.solve_triangular(self._chol, np.eye(mean.shape[0]), lower=True)
            prec = linv.T @ linv
            self._precision = 0.5 * (prec + prec.T)
        self._finish()

    def _setup_diagonal(self, mean: np.ndarray, variances: np.ndarray) -> None:
        """Set-up from the variance vector alone (validated by the caller): ``O(d)``."""
        self.mean = mean
        self._cov = self._chol = self._precision = None
        self._variances = variances
        self.is_diagonal = True
        self._finish()

    def _finish(self) -> None:
        self.dim = int(self.mean.shape[0])
        # log det Sigma = 2 sum_i log L_ii; for a diagonal Sigma, L_ii = sqrt(v_i)
        diag_chol = np.sqrt(self._variances) if self.is_diagonal else np.diag(self._chol)
        logdet = 2.0 * float(np.sum(np.log(diag_chol)))
        self.log_normalizer = -0.5 * (self.dim * math.log(2.0 * math.pi) + logdet)
        self._factory: dict | None = None
        self._cache: dict[Any, tuple] = {}
        self._cache_neg: dict[int, tuple] = {}  # id(P) -> (P, -P, mean is +0): see _logdensity_and_grad
        self._cache_describe: dict[str, Any] = {}

    # --- covariance, precision and Cholesky factor ------------------------------
    @property
    def variances(self) -> np.ndarray:
        """``diag(Sigma)``, shape ``(d,)``."""
        return self._variances if self.is_diagonal else np.diag(self._cov)

    @property
    def cov(self) -> np.ndarray:
        """``Sigma``, shape ``(d, d)`` (built from the variances on access for a diagonal Gaussian)."""
        return self._cov if self._cov is not None else np.diag(self._variances)

    @property
    def precision(self) -> np.ndarray:
        """``Sigma^{-1}``, shape ``(d, d)`` (``diag(1/v)``, built on access, for a diagonal Gaussian)."""
        return np.diag(1.0 / self._variances) if self.is_diagonal else self._precision

    @property
    def chol(self) -> np.ndarray:
        """Lower Cholesky factor ``L`` of ``Sigma`` (``diag(sqrt v)``, built on access, if diagonal)."""
        return np.diag(np.sqrt(self._variances)) if self.is_diagonal else self._chol

    # --- constructors ---------------------------------------------------------
    @classmethod
    def isotropic(cls, dim: int, scale: float = 1.0, mean=None) -> "Gaussian":
        """``N(mean, scale^2 I_dim)`` (``mean`` defaults to 0); ``O(dim)`` like :meth:`diagonal`."""
        dim = check_positive_int(dim, "dim")
        scale = check_positive_float(scale, "scale")
        try:
            var = scale**2
        except OverflowError:
            var = math.inf
        if not (math.isfinite(var) and var > 0.0):
            raise ValueError(f"scale**2 must be a finite positive float64, got scale={scale!r}")
        g = cls.diagonal(np.full(dim, var), mean)
        g._factory = {"factory": "isotropic", "scale": scale}
        return g

    @classmethod
    def diagonal(cls, variances, mean=None) -> "Gaussian":
        """``N(mean, diag(variances))``; ``variances`` must be finite and > 0.  ``O(d)`` memory and time."""
        v = check_host_vector(variances, "variances")
        if np.any(v <= 0):
            raise ValueError("variances must be > 0 (covariance must be positive definite)")
        m = np.zeros(v.shape[0]) if mean is None else check_host_vector(mean, "mean", v.shape[0])
        g = cls.__new__(cls)
        g._setup_diagonal(m, v)
        return g

    # --- evaluation -----------------------------------------------------------
    def params_on(self, xp, like):
        """``(mean, precision)`` in ``xp`` on the device/dtype of ``like`` (cached).

        ``precision`` is the ``(d,)`` vector ``1/v`` for a diagonal covariance, else ``(d, d)``.
        """
        if type(like) is np.ndarray:  # NumPy: the dtype is the whole key (no device lookup)
            hit = self._cache.get(like.dtype)
            if hit is None:
                p = 1.0 / self._variances if self.is_diagonal else self._precision
                hit = self._cache[like.dtype] = (np.array(self.mean, dtype=like.dtype), np.array(p, dtype=like.dtype))
            return hit
        dev = device_of(like)
        key = (id(xp), str(dev), str(like.dtype))
        hit = self._cache.get(key)
        if hit is None:
            p = 1.0 / self._variances if self.is_diagonal else self._precision
            m = xp.asarray(np.ascontiguousarray(self.mean), dtype=like.dtype, device=dev)
            P = xp.asarray(np.ascontiguousarray(p), dtype=like.dtype, device=dev)
            hit = (m, P)
            self._cache[key] = hit
        return hit

    def _logdensity_and_grad(self, xp, x):
        m, P = self.params_on(xp, x)
        neg = self._cache_neg.get(id(P))
        if neg is None or neg[0] is not P:
            # diagonal: -P (negation is exact and IEEE products are sign-symmetric, so r * (-P) == -(r * P) bit
            # for bit; not for the matrix product, whose exact-zero sums would change the sign of a zero), and
            # whether the mean is exactly +0 (then x - m == x bit for bit)
            zero_mean = not np.any(self.mean) and not np.any(np.signbit(self.mean))
            neg = self._cache_neg[id(P)] = (P, -P if self.is_diagonal else None, zero_mean)
        r = x if neg[2] else x - m
        g = r * neg[1] if self.is_diagonal else -(r @ P)  # P symmetric: (P r_k)^T = r_k^T P
        rg = r * g
        # NumPy: the reduction itself (xp.sum is np.sum, which is np.add.reduce behind two Python wrappers)
        s = np.add.reduce(rg, axis=1) if type(rg) is np.ndarray else xp.sum(rg, axis=1)
        logp = 0.5 * s + self.log_normalizer
        return logp, g

    # --- moments and exact draws --------------------------------------------------
    @property
    def second_moment(self) -> np.ndarray:
        """``E[x_i^2] = Sigma_ii + m_i^2``."""
        return self.variances + self.mean**2

    @property
    def second_moment_var(self) -> np.ndarray:
        """``Var[x_i^2] = 2 Sigma_ii^2 + 4 m_i^2 Sigma_ii``."""
        s2 = self.variances
        return 2 * s2**2 + 4 * self.mean**2 * s2

    def exact_sample(self, generator: np.random.Generator, n: int) -> np.ndarray:
        """``n`` i.i.d. host draws ``m + L z``, ``z ~ N(0, I)``: shape ``(n, d)``."""
        n = check_positive_int(n, "n")
        z = generator.standard_normal((n, self.dim))
        if self.is_diagonal and self._cov is None:  # L z = sqrt(v) * z elementwise
            return self.mean + z * np.sqrt(self._variances)
        return self.mean + z @ self.chol.T

    def describe(self) -> dict:
        """Name, dimension, condition number ``max eig / min eig`` of ``Sigma`` and SHA-256 digests.

        A dense Gaussian has ``cov_sha256``, :func:`~smile_ref.targets._digest.array_digest` of the
        ``(d, d)`` covariance; a diagonal one (however it was built) has ``variances_sha256``, the digest
        of its ``(d,)`` variances, instead: ``O(d)`` work where the matrix digest hashed ``d^2`` entries.
        Both digests and the condition number are cached.
        """
        v = self._variances if self.is_diagonal else self._cov
        key = array_digest(v)
        hit = self._cache_describe.get(key)
        if hit is None:
            ev = np.sort(v) if self.is_diagonal else np.linalg.eigvalsh(v)
            hit = self._cache_describe[key] = (key, float(ev[-1] / ev[0]))
        digest, cond = hit
        out = {
            "name": self.name,
            "dim": int(self.dim),
            "diagonal": self.is_diagonal,
            "cov_condition_number": cond,
            "mean_sha256": array_digest(self.mean),
            ("variances_sha256" if self.is_diagonal else "cov_sha256"): digest,
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
    >>> bool(np.allclose(t.variances[[0, -1]], [1e-2, 1e2]))
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
