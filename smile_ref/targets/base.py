"""Target interface shared by every posterior/benchmark density.

A target is a density ``pi(x)`` on ``R^d`` with hand-written log-density and
gradient, evaluated on a batch of positions with a leading chain axis:

* ``logdensity(x)``: ``(n, d) -> (n,)``
* ``grad_logdensity(x)``: ``(n, d) -> (n, d)``
* ``logdensity_and_grad(x)``: both in one pass (what samplers call)

A subclass implements ``_logdensity_and_grad(xp, x)`` and may add ``_logdensity(xp, x)``, the
log-density alone with exactly the same arithmetic (bit-identical to ``_logdensity_and_grad(xp, x)[0]``)
and cheaper where the gradient costs work the log-density does not need (the backward pass of an MLP,
the ``c X`` product of a GLM).  :meth:`Target.unchecked_logdensity` uses it only where it was written
for the class's ``_logdensity_and_grad`` (:func:`written_for`), so a subclass that overrides only the
pair's full form still gets its own log-density.

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

from functools import lru_cache, partial
from typing import Any

import numpy as np

from ..backend import array_namespace, device_of
from ..backend.validate import check_positions

__all__ = ["Target", "DataTarget", "written_for"]


@lru_cache(maxsize=None)
def _written_for_class(cls, value: str, full: str) -> bool:
    owner = {}
    for name in (value, full):
        owner[name] = next((k for k in cls.__mro__ if name in vars(k)), None)
    return owner[value] is not None and owner[full] is not None and issubclass(owner[value], owner[full])


def written_for(obj, value: str, full: str) -> bool:
    """Whether ``obj``'s method ``value`` (a log-density-only form) was written for its method ``full``.

    True when the class that defines ``value`` is the class that defines ``full`` or a subclass of it,
    and neither is replaced on the instance: then ``value`` is the log-density part of ``full``'s
    arithmetic.  A subclass that overrides ``full`` only makes it False (use ``full(...)[0]`` then).

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.targets import Gaussian, LinearRegression
    >>> t = LinearRegression(np.eye(2), np.ones(2))
    >>> written_for(t, "_logdensity", "_logdensity_and_grad")  # the GLM's own log-density-only form
    True
    >>> written_for(Gaussian.isotropic(2), "_logdensity", "_logdensity_and_grad")  # Target's default
    False
    >>> class Shifted(LinearRegression):
    ...     def _logdensity_and_grad(self, xp, x):
    ...         lp, g = super()._logdensity_and_grad(xp, x)
    ...         return lp + 1.0, g
    >>> written_for(Shifted(np.eye(2), np.ones(2)), "_logdensity", "_logdensity_and_grad")
    False
    """
    inst = getattr(obj, "__dict__", {})
    if value in inst or full in inst:
        return False
    return _written_for_class(type(obj), value, full)


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
        """``log pi(x)``, shape ``(n,)``: the first output of :meth:`logdensity_and_grad`, bit for bit."""
        if type(self).logdensity_and_grad is Target.logdensity_and_grad and "logdensity_and_grad" not in vars(self):
            check_positions(x, self.dim)
            return self.unchecked_logdensity(array_namespace(x))(x)
        return self.logdensity_and_grad(x)[0]

    def grad_logdensity(self, x):
        return self.logdensity_and_grad(x)[1]

    def logdensity_and_grad(self, x):
        check_positions(x, self.dim)
        xp = array_namespace(x)
        return self._logdensity_and_grad(xp, x)

    def _logdensity_and_grad(self, xp, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _logdensity(self, xp, x):
        """The log-density alone; default ``_logdensity_and_grad(xp, x)[0]`` (subclasses may do less work)."""
        return self._logdensity_and_grad(xp, x)[0]

    def unchecked_logdensity(self, xp):
        """``x -> logp`` for positions already checked, bit-identical to ``unchecked_logdensity_and_grad(xp)(x)[0]``.

        ``_logdensity`` bound to ``xp`` where it was written for the class's ``_logdensity_and_grad``
        (:func:`written_for`), else the first output of the full evaluation.

        Examples
        --------
        >>> import numpy as np, array_api_compat.numpy as xp
        >>> from smile_ref.targets import Gaussian
        >>> t = Gaussian.diagonal(np.array([1.0, 4.0]))
        >>> x = np.ones((1, 2))
        >>> bool(t.unchecked_logdensity(xp)(x)[0] == t.logdensity_and_grad(x)[0][0])
        True
        """
        if type(self).logdensity_and_grad is not Target.logdensity_and_grad or "logdensity_and_grad" in vars(self):
            full = self.logdensity_and_grad
            return lambda x: full(x)[0]
        if written_for(self, "_logdensity", "_logdensity_and_grad"):
            return partial(self._logdensity, xp)
        full = partial(self._logdensity_and_grad, xp)
        return lambda x: full(x)[0]

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

    def _logdensity(self, xp, x):
        X, y = self.data_on(xp, x)
        n = x.shape[0]
        Xb = xp.broadcast_to(X[None, ...], (n, X.shape[0], X.shape[1]))
        yb = xp.broadcast_to(y[None, :], (n, y.shape[0]))
        return self._prior_lp(xp, x) + self._loglik_lp(xp, x, Xb, yb)

    def _prior_lp(self, xp, x):
        """``log prior(x)`` alone: ``_prior_logdensity`` where written for ``_prior`` (:func:`written_for`), else ``_prior(xp, x)[0]``."""
        if written_for(self, "_prior_logdensity", "_prior"):
            return self._prior_logdensity(xp, x)
        return self._prior(xp, x)[0]

    def _loglik_lp(self, xp, x, Xb, yb):
        """``sum_batch loglik_i`` alone: ``_loglik_sum`` where written for ``_loglik_sums``, else its first output."""
        if written_for(self, "_loglik_sum", "_loglik_sums"):
            return self._loglik_sum(xp, x, Xb, yb)
        return self._loglik_sums(xp, x, Xb, yb)[0]

    def _prior_logdensity(self, xp, x):
        return self._prior(xp, x)[0]

    def _loglik_sum(self, xp, x, Xb, yb):
        return self._loglik_sums(xp, x, Xb, yb)[0]

    def unchecked_logdensity_batch(self, xp):
        """``(x, idx) -> log prior + (N/b) sum_batch loglik_i``, bit-identical to the first output of
        :meth:`logdensity_and_grad_batch`, without its gradient (and without per-call checks)."""
        if type(self).logdensity_and_grad_batch is not DataTarget.logdensity_and_grad_batch \
                or "logdensity_and_grad_batch" in vars(self):
            full = self.logdensity_and_grad_batch
            return lambda x, idx: full(x, idx)[0]

        def lp(x, idx):
            Xb, yb = self.gather(xp, x, idx)
            scale = self.n_data / idx.shape[1]
            return self._prior_lp(xp, x) + scale * self._loglik_lp(xp, x, Xb, yb)

        return lp

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
