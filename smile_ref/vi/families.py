"""Gaussian variational families with hand-written log-density and score.

Both families are batched over positions ``theta`` of shape ``(n, d)`` and keep
their parameters as arrays of one namespace/device/dtype (those of the run):

* :class:`DiagGaussian`: ``q = N(m, diag(1/tau))``, natural coordinates
  ``(h, tau) = (tau * m, tau)``:

  .. math::

      \\log q(\\theta) = \\sum_j \\big[-\\tfrac12 \\tau_j (\\theta_j - m_j)^2
                          + \\tfrac12 \\log\\tau_j - \\tfrac12\\log 2\\pi\\big],
      \\qquad \\nabla_\\theta \\log q(\\theta) = h - \\tau \\odot \\theta .

* :class:`FullGaussian`: ``q = N(m, Sigma)``, precision ``P = Sigma^{-1}``:

  .. math::

      \\log q(\\theta) = -\\tfrac12 (\\theta - m)^T P (\\theta - m)
                         - \\tfrac12 \\log\\det(2\\pi\\Sigma),
      \\qquad \\nabla_\\theta \\log q(\\theta) = -P(\\theta - m).

``sample(random, n)`` draws ``m + L eps`` (``Sigma = L L^T``) through a
:class:`~smile_ref.backend.RandomSource`.  ``mean`` is ``(d,)`` and ``cov`` is
``(d, d)`` in the family's namespace.
"""
from __future__ import annotations

import math

from ..backend import array_namespace, device_of

__all__ = ["DiagGaussian", "FullGaussian", "is_spd"]

_LOG_2PI = math.log(2.0 * math.pi)


def is_spd(mat) -> bool:
    """``True`` iff ``mat`` (``(d, d)``) is finite, symmetric up to rounding and has positive eigenvalues."""
    xp = array_namespace(mat)
    if not bool(xp.all(xp.isfinite(mat))):
        return False
    sym = 0.5 * (mat + mat.mT)
    return bool(xp.min(xp.linalg.eigvalsh(sym)) > 0.0)


class DiagGaussian:
    """Mean-field Gaussian ``N(mean, diag(1/precision))``.

    Parameters
    ----------
    mean : array (d,)
    precision : array (d,), every entry finite and > 0 (``tau``).
    """

    kind = "diag_gaussian"

    def __init__(self, mean, precision):
        xp = array_namespace(mean, precision)
        if mean.ndim != 1 or precision.shape != mean.shape:
            raise ValueError(f"mean and precision must both have shape (d,), got {tuple(mean.shape)} and "
                             f"{tuple(precision.shape)}")
        if not bool(xp.all(xp.isfinite(mean))):
            raise ValueError("mean must be finite")
        if not bool(xp.all(xp.isfinite(precision) & (precision > 0.0))):
            raise ValueError("precision must be finite and > 0 in every coordinate")
        self.xp = xp
        self.loc = mean
        self.precision = precision

    @property
    def dim(self) -> int:
        return int(self.loc.shape[0])

    @property
    def mean(self):
        return self.loc

    @property
    def var(self):
        return 1.0 / self.precision

    @property
    def cov(self):
        xp = self.xp
        eye = xp.eye(self.dim, dtype=self.loc.dtype, device=device_of(self.loc))
        return eye * self.var[None, :]

    @property
    def natural(self):
        """Natural coordinates ``(h, tau) = (tau * m, tau)``."""
        return self.precision * self.loc, self.precision

    @classmethod
    def from_natural(cls, h, tau) -> "DiagGaussian":
        return cls(h / tau, tau)

    def log_prob(self, theta):
        """``log q(theta)``, ``(n, d) -> (n,)``."""
        xp = self.xp
        r = theta - self.loc[None, :]
        return (-0.5 * xp.sum(self.precision[None, :] * r * r, axis=1)
                + 0.5 * xp.sum(xp.log(self.precision)) - 0.5 * self.dim * _LOG_2PI)

    def score(self, theta):
        """``grad_theta log q(theta) = -tau * (theta - m)``, ``(n, d) -> (n, d)``."""
        return -self.precision[None, :] * (theta - self.loc[None, :])

    def sample(self, random, n: int):
        """``n`` draws ``m + eps / sqrt(tau)`` with ``eps`` standard normal from ``random``."""
        eps = random.normal((n, self.dim), dtype=self.loc.dtype)
        return self.loc[None, :] + eps / self.xp.sqrt(self.precision)[None, :]

    def __repr__(self) -> str:
        return f"DiagGaussian(dim={self.dim})"


class FullGaussian:
    """Full-covariance Gaussian ``N(mean, cov)``; ``precision``, ``chol`` and the log-normaliser are cached.

    Parameters
    ----------
    mean : array (d,)
    cov : array (d, d), symmetric positive definite (checked by eigenvalues).
    precision : array (d, d), optional
        Give ``precision`` instead of ``cov`` to build from the precision.
    """

    kind = "full_gaussian"

    def __init__(self, mean, cov=None, *, precision=None):
        if (cov is None) == (precision is None):
            raise ValueError("give exactly one of cov and precision")
        mat = cov if precision is None else precision
        name = "cov" if precision is None else "precision"
        xp = array_namespace(mean, mat)
        d = int(mean.shape[0]) if mean.ndim == 1 else -1
        if mean.ndim != 1 or tuple(mat.shape) != (d, d):
            raise ValueError(f"mean must have shape (d,) and {name} shape (d, d), got {tuple(mean.shape)} and "
                             f"{tuple(mat.shape)}")
        if not bool(xp.all(xp.isfinite(mean))):
            raise ValueError("mean must be finite")
        if not is_spd(mat):
            raise ValueError(f"{name} must be finite, symmetric and positive definite")
        mat = 0.5 * (mat + mat.mT)
        other = xp.linalg.inv(mat)
        other = 0.5 * (other + other.mT)
        self.xp = xp
        self.loc = mean
        self.cov_ = mat if precision is None else other
        self.precision = other if precision is None else mat
        self.chol = xp.linalg.cholesky(self.cov_)
        self._logdet_cov = 2.0 * xp.sum(xp.log(xp.linalg.diagonal(self.chol)))

    @property
    def dim(self) -> int:
        return int(self.loc.shape[0])

    @property
    def mean(self):
        return self.loc

    @property
    def cov(self):
        return self.cov_

    def log_prob(self, theta):
        """``log q(theta)``, ``(n, d) -> (n,)``."""
        xp = self.xp
        r = theta - self.loc[None, :]
        quad = xp.sum((r @ self.precision) * r, axis=1)
        return -0.5 * quad - 0.5 * self._logdet_cov - 0.5 * self.dim * _LOG_2PI

    def score(self, theta):
        """``grad_theta log q(theta) = -P (theta - m)``, ``(n, d) -> (n, d)``."""
        return -(theta - self.loc[None, :]) @ self.precision

    def sample(self, random, n: int):
        """``n`` draws ``m + L eps`` with ``eps`` standard normal from ``random``."""
        eps = random.normal((n, self.dim), dtype=self.loc.dtype)
        return self.loc[None, :] + eps @ self.chol.mT

    def __repr__(self) -> str:
        return f"FullGaussian(dim={self.dim})"
