"""Target interface shared by every posterior/benchmark density.

A target is a density ``pi(x)`` on ``R^d`` with hand-written log-density and
gradient, evaluated on a batch of positions with a leading chain axis:

* ``logdensity(x)``: ``(n, d) -> (n,)``
* ``grad_logdensity(x)``: ``(n, d) -> (n, d)``
* ``logdensity_and_grad(x)``: both in one pass (what samplers call)

The namespace, device and dtype of ``x`` decide those of the outputs.  Targets
whose moments are known in closed form expose ``mean`` and ``cov`` (host NumPy
arrays) and ``second_moment`` (``E[x_i^2]``) plus ``second_moment_var``
(``Var[x_i^2]``) used by the paper's bias metric.

Data-based targets (:class:`DataTarget`) write the log-posterior as
``log prior(x) + sum_i loglik_i(x)`` over ``n_data`` examples and expose

* ``logdensity_and_grad_batch(x, idx)``: the unbiased mini-batch estimate
  ``log prior + (N/b) sum_{i in batch} loglik_i`` and its gradient, with a
  separate batch per chain (``idx`` of shape ``(n, b)``);
* ``per_example_grads(x, idx)``: ``grad loglik_i`` of shape ``(n, b, d)``, from
  which gradient-noise covariances are estimated.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from ..backend import array_namespace, device_of
from ..backend.validate import check_positions

__all__ = ["Target", "DataTarget"]


class Target:
    """Base class: subclasses implement ``_logdensity_and_grad(xp, x)``.

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import Target
    >>> class StdNormal(Target):
    ...     name, dim = "std_normal", 2
    ...     def _logdensity_and_grad(self, xp, x):
    ...         return -0.5 * xp.sum(x * x, axis=1), -x
    >>> StdNormal().logdensity_and_grad(np.ones((1, 2)))
    (array([-1.]), array([[-1., -1.]]))
    """

    name: str = "target"
    dim: int
    mean: np.ndarray | None = None
    cov: np.ndarray | None = None

    # --- public, batched API -------------------------------------------------
    def logdensity(self, x):
        return self.logdensity_and_grad(x)[0]

    def grad_logdensity(self, x):
        return self.logdensity_and_grad(x)[1]

    def logdensity_and_grad(self, x):
        check_positions(x, self.dim)
        xp = array_namespace(x)
        return self._logdensity_and_grad(xp, x)

    def _logdensity_and_grad(self, xp, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def unchecked_logdensity_and_grad(self, xp):
        """``x -> (logp, grad)`` for positions already checked (a sampler's inner loop).

        With the base :meth:`logdensity_and_grad` this is ``_logdensity_and_grad`` bound to ``xp``:
        the same arithmetic without the per-call
        :func:`~smile_ref.backend.validate.check_positions` and namespace lookup.  A subclass that
        overrides ``logdensity_and_grad``, or an instance whose method was replaced, gets its own
        ``logdensity_and_grad``.

        Examples
        --------
        >>> import numpy as np, array_api_compat.numpy as xp
        >>> from smile_ref.targets import Gaussian
        >>> f = Gaussian.isotropic(2).unchecked_logdensity_and_grad(xp)
        >>> f(np.ones((1, 2)))[1]
        array([[-1., -1.]])
        """
        if type(self).logdensity_and_grad is Target.logdensity_and_grad and "logdensity_and_grad" not in vars(self):
            return partial(self._logdensity_and_grad, xp)
        return self.logdensity_and_grad

    # --- moments -------------------------------------------------------------
    @property
    def second_moment(self) -> np.ndarray | None:
        """``E[x_i^2]`` per coordinate (host array) where known."""
        if self.mean is None or self.cov is None:
            return None
        return np.diag(self.cov) + self.mean**2

    @property
    def second_moment_var(self) -> np.ndarray | None:
        """``Var[x_i^2]`` per coordinate where known (Gaussian formula by default).

        For ``x_i ~ N(m, s^2)``: ``Var[x_i^2] = 2 s^4 + 4 m^2 s^2``.
        """
        if self.mean is None or self.cov is None:
            return None
        s2 = np.diag(self.cov)
        return 2 * s2**2 + 4 * self.mean**2 * s2

    # --- helpers ---------------------------------------------------------------
    def initial_position(self, rng, n_chains: int):
        """Default starting points: standard normal draws of shape ``(n_chains, dim)``."""
        return rng.normal((n_chains, self.dim))

    def describe(self) -> dict:
        """JSON-serialisable description (used by reports, checkpoints, golden files)."""
        return {"name": self.name, "dim": int(self.dim)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"


class DataTarget(Target):
    """Target built from ``n_data`` examples; caches the data per backend.

    Subclasses implement ``_prior(xp, x)`` returning ``(logp, grad)`` and
    ``_loglik_terms(xp, x, Xb, yb)`` returning per-example log-likelihoods
    ``(n, b)`` and gradients ``(n, b, d)`` for batched data ``Xb`` of shape
    ``(n, b, p)`` and ``yb`` of shape ``(n, b)``.

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import DataTarget, LinearRegression
    >>> t = LinearRegression(np.eye(3), np.ones(3))
    >>> isinstance(t, DataTarget), t.n_data
    (True, 3)
    """

    X: np.ndarray
    y: np.ndarray

    def __init__(self):
        self._cache: dict[Any, tuple] = {}

    @property
    def n_data(self) -> int:
        return int(self.X.shape[0])

    def data_on(self, xp, like):
        """``(X, y)`` as arrays of ``xp`` on the device and with the dtype of ``like`` (cached)."""
        dev = device_of(like)
        key = (id(xp), str(dev), str(like.dtype))
        hit = self._cache.get(key)
        if hit is None:
            X = xp.asarray(np.ascontiguousarray(self.X), dtype=like.dtype, device=dev)
            y = xp.asarray(np.ascontiguousarray(self.y), dtype=like.dtype, device=dev)
            hit = (X, y)
            self._cache[key] = hit
        return hit

    def gather(self, xp, x, idx):
        """Per-chain batches ``(Xb, yb)`` of shapes ``(n, b, p)`` and ``(n, b)``."""
        X, y = self.data_on(xp, x)
        n, b = idx.shape
        flat = xp.reshape(idx, (n * b,))
        Xb = xp.reshape(xp.take(X, flat, axis=0), (n, b, X.shape[1]))
        yb = xp.reshape(xp.take(y, flat, axis=0), (n, b))
        return Xb, yb

    def _logdensity_and_grad(self, xp, x):
        X, y = self.data_on(xp, x)
        lp, gp = self._prior(xp, x)
        n = x.shape[0]
        Xb = xp.broadcast_to(X[None, ...], (n, X.shape[0], X.shape[1]))
        yb = xp.broadcast_to(y[None, :], (n, y.shape[0]))
        ll, gl = self._loglik_sums(xp, x, Xb, yb)
        return lp + ll, gp + gl

    def logdensity_and_grad_batch(self, x, idx):
        """Unbiased mini-batch estimate ``log prior + (N/b) sum_batch loglik_i`` and its gradient.

        Parameters
        ----------
        x : array (n, d)
        idx : integer array (n, b) of example indices, one batch per chain.
        """
        check_positions(x, self.dim)
        xp = array_namespace(x)
        Xb, yb = self.gather(xp, x, idx)
        scale = self.n_data / idx.shape[1]
        lp, gp = self._prior(xp, x)
        ll, gl = self._loglik_sums(xp, x, Xb, yb)
        return lp + scale * ll, gp + scale * gl

    def per_example_grads(self, x, idx):
        """``grad_x loglik_i(x)`` for each example of each chain's batch: shape ``(n, b, d)``."""
        check_positions(x, self.dim)
        xp = array_namespace(x)
        Xb, yb = self.gather(xp, x, idx)
        _, g = self._loglik_terms(xp, x, Xb, yb)
        return g

    def _loglik_sums(self, xp, x, Xb, yb):
        """Sum over the batch of the per-example terms (subclasses may do this faster)."""
        ll, g = self._loglik_terms(xp, x, Xb, yb)
        return xp.sum(ll, axis=1), xp.sum(g, axis=1)

    def _prior(self, xp, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _loglik_terms(self, xp, x, Xb, yb):  # pragma: no cover - abstract
        raise NotImplementedError
