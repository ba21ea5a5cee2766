"""Generalised linear model posteriors: Bayesian linear and logistic regression.

Both use the Gaussian prior ``w ~ N(0, s^2 I_p)`` (``s = prior_scale``) and a
per-example likelihood depending on ``w`` through ``z_i = x_i^T w`` only:

.. math::

    \\log\\pi(w) = -\\frac{|w|^2}{2 s^2} - \\frac p2 \\log(2\\pi s^2) + \\sum_{i=1}^N \\ell(z_i; y_i),
    \\qquad \\nabla\\log\\pi(w) = -\\frac{w}{s^2} + \\sum_i \\ell'(z_i; y_i)\\, x_i.

* Linear regression, ``y_i ~ N(z_i, sigma^2)``:
  ``l = -(y_i - z_i)^2 / (2 sigma^2) - 1/2 log(2 pi sigma^2)``, ``l' = (y_i - z_i)/sigma^2``.
  The posterior is Gaussian (conjugacy): precision ``P = I/s^2 + X^T X/sigma^2``,
  mean ``mu = P^{-1} X^T y / sigma^2``, so ``grad log pi(w) = -P (w - mu)``.
* Logistic regression, ``y_i ~ Bernoulli(sigmoid(z_i))``, ``y_i in {0, 1}``:
  ``l = y_i z_i - softplus(z_i)``, ``softplus(z) = log(1 + e^z) = logaddexp(0, z)``
  (stable for all ``z``), ``l' = y_i - sigmoid(z_i)`` with
  ``sigmoid(z) = exp(z - softplus(z))`` (no overflow for either sign of ``z``).
  No closed-form moments (``mean = cov = None``).

The full-data path evaluates ``z = w X^T`` as one ``(n, N)`` matrix product per call;
the mini-batch path (:meth:`DataTarget.logdensity_and_grad_batch`) gathers one
batch per chain.  Users who want an intercept add a column of ones to ``X``.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from ..backend.validate import check_host_matrix, check_host_vector, check_positive_float
from ._digest import array_digest
from .base import DataTarget, written_for

__all__ = ["LinearRegression", "LogisticRegression"]


class _GLM(DataTarget):
    """Shared prior, data handling and batched evaluation; subclasses define ``_link``."""

    def __init__(self, X, y, prior_scale: float = 1.0):
        super().__init__()
        X = check_host_matrix(X, "X")
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X must have shape (N, p) with N >= 1 and p >= 1, got {X.shape}")
        y = check_host_vector(y, "y")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have shape ({X.shape[0]},) to match X of shape {X.shape}, got {y.shape}")
        self.X = X
        self.y = y
        self.dim = int(X.shape[1])
        self.prior_scale = check_positive_float(prior_scale, "prior_scale")
        self._prior_const = -0.5 * self.dim * math.log(2.0 * math.pi * self.prior_scale**2)

    def _link(self, xp, z, y):  # pragma: no cover - abstract
        """Elementwise ``(l(z; y), dl/dz)``."""
        raise NotImplementedError

    def _link_ll(self, xp, z, y):
        """``l(z; y)`` alone (subclasses: the first output of ``_link`` with the same arithmetic)."""
        return self._link(xp, z, y)[0]

    def _link_lp(self, xp, z, y):
        return self._link_ll(xp, z, y) if written_for(self, "_link_ll", "_link") else self._link(xp, z, y)[0]

    def _prior(self, xp, x):
        s2 = self.prior_scale**2
        return -0.5 * xp.sum(x * x, axis=1) / s2 + self._prior_const, -x / s2

    def _prior_logdensity(self, xp, x):
        return -0.5 * xp.sum(x * x, axis=1) / self.prior_scale**2 + self._prior_const

    def _loglik_terms(self, xp, x, Xb, yb):
        z = (Xb @ x[:, :, None])[:, :, 0]
        ll, c = self._link(xp, z, yb)
        return ll, c[:, :, None] * Xb

    def _loglik_sums(self, xp, x, Xb, yb):
        z = (Xb @ x[:, :, None])[:, :, 0]
        ll, c = self._link(xp, z, yb)
        return xp.sum(ll, axis=1), (c[:, None, :] @ Xb)[:, 0, :]

    def _loglik_sum(self, xp, x, Xb, yb):
        z = (Xb @ x[:, :, None])[:, :, 0]
        return xp.sum(self._link_lp(xp, z, yb), axis=1)

    def _logdensity_and_grad(self, xp, x):
        X, y = self.data_on(xp, x)
        lp, gp = self._prior(xp, x)
        z = x @ X.mT
        ll, c = self._link(xp, z, y[None, :])
        return lp + xp.sum(ll, axis=1), gp + c @ X

    def _logdensity(self, xp, x):
        """``log pi(x)`` without the ``c X`` product of the gradient (same arithmetic as the log-density above)."""
        X, y = self.data_on(xp, x)
        return self._prior_lp(xp, x) + xp.sum(self._link_lp(xp, x @ X.mT, y[None, :]), axis=1)

    def _describe_data(self) -> dict:
        return {
            "name": self.name,
            "dim": int(self.dim),
            "n_data": self.n_data,
            "prior_scale": self.prior_scale,
            "data_sha256": array_digest(self.X, self.y),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_data={self.n_data}, dim={self.dim})"


class LinearRegression(_GLM):
    """Bayesian linear regression ``y ~ N(X w, noise_scale^2 I)``, ``w ~ N(0, prior_scale^2 I)``.

    Parameters
    ----------
    X : array-like (N, p)
        Design matrix (finite).
    y : array-like (N,)
        Responses (finite).
    prior_scale, noise_scale : float > 0

    Attributes
    ----------
    posterior_precision : host ``(p, p)``, ``P = I/s^2 + X^T X/sigma^2``.
    mean, cov : host exact posterior mean ``P^{-1} X^T y/sigma^2`` and covariance ``P^{-1}``.

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import LinearRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2))
    >>> t = LinearRegression(X, X @ np.array([1.0, -1.0]) + rng.normal(size=200))
    >>> t.dim, t.n_data
    (2, 200)
    >>> bool(np.all(np.abs(t.mean - [1.0, -1.0]) < 4 * np.sqrt(np.diag(t.cov))))
    True
    """

    name = "linear_regression"

    def __init__(self, X, y, prior_scale: float = 1.0, noise_scale: float = 1.0):
        super().__init__(X, y, prior_scale)
        self.noise_scale = check_positive_float(noise_scale, "noise_scale")
        self._lik_const = -0.5 * math.log(2.0 * math.pi * self.noise_scale**2)
        n2 = self.noise_scale**2
        P = np.eye(self.dim) / self.prior_scale**2 + (self.X.T @ self.X) / n2
        P = 0.5 * (P + P.T)
        self.posterior_precision = P
        cf = scipy.linalg.cho_factor(P, lower=True)
        self.mean = scipy.linalg.cho_solve(cf, self.X.T @ self.y / n2)
        cov = scipy.linalg.cho_solve(cf, np.eye(self.dim))
        self.cov = 0.5 * (cov + cov.T)

    def _link(self, xp, z, y):
        n2 = self.noise_scale**2
        r = y - z
        return -0.5 * (r * r) / n2 + self._lik_const, r / n2

    def _link_ll(self, xp, z, y):
        r = y - z
        return -0.5 * (r * r) / self.noise_scale**2 + self._lik_const

    def describe(self) -> dict:
        out = self._describe_data()
        out["noise_scale"] = self.noise_scale
        return out


class LogisticRegression(_GLM):
    """Bayesian logistic regression ``y_i ~ Bernoulli(sigmoid(x_i^T w))``, ``w ~ N(0, prior_scale^2 I)``.

    Parameters
    ----------
    X : array-like (N, p)
        Design matrix (finite).
    y : array-like (N,)
        Labels, each exactly 0 or 1.
    prior_scale : float > 0

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref import gradients
    >>> from smile_ref.targets import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 2))
    >>> t = LogisticRegression(X, (X[:, 0] > 0).astype(float))
    >>> logp, grad = t.logdensity_and_grad(np.zeros((1, 2)))
    >>> bool(np.isclose(logp[0], 100 * np.log(0.5) - np.log(2 * np.pi)))  # likelihood 2^-N times the N(0, I) prior
    True
    >>> gradients.MiniBatch(t, batch_size=10).n_data  # a DataTarget: usable with mini-batches
    100
    """

    name = "logistic_regression"

    def __init__(self, X, y, prior_scale: float = 1.0):
        super().__init__(X, y, prior_scale)
        if not np.all((self.y == 0.0) | (self.y == 1.0)):
            bad = self.y[(self.y != 0.0) & (self.y != 1.0)]
            raise ValueError(f"y must contain only 0 and 1 labels, found e.g. {bad[0]!r}")

    def _link(self, xp, z, y):
        sp = xp.logaddexp(xp.zeros_like(z), z)
        return y * z - sp, y - xp.exp(z - sp)

    def _link_ll(self, xp, z, y):
        return y * z - xp.logaddexp(xp.zeros_like(z), z)

    def describe(self) -> dict:
        return self._describe_data()
