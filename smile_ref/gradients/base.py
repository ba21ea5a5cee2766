"""Gradient-estimator interface.

A gradient estimator turns a target into the (possibly noisy) pair
``(logp_hat(x), g_hat(x))`` a sampler consumes.  Randomness is separated from
evaluation so that a sampler can evaluate several positions with the *same*
mini-batch (SMILE's two position sub-steps share one batch) and so that golden
trajectories can record every random input:

* ``init(n_chains, rng) -> state``: host-side, JSON/npz-serialisable state
  (e.g. the per-chain epoch permutations of sampling without replacement);
* ``draw(state, rng, x) -> (batch, state)``: the random input of one
  evaluation (mini-batch indices ``(n, b)``, additive-noise draws ``(n, d)``,
  or ``None`` for the exact gradient);
* ``evaluate(x, batch) -> (logp_hat, g_hat)``: deterministic given ``batch``;
* ``evaluator(xp) -> callable(x, batch)``: the same evaluation for a sampler's inner loop, without
  per-call validation (positions and batches there come from the sampler); defaults to ``evaluate``.
  :func:`evaluator_of` resolves it for any estimator object;
* ``logdensity_evaluator(xp) -> callable(x, batch)``: ``logp_hat`` alone, bit-identical to the first
  output of ``evaluator(xp)``, without computing the gradient where the estimator and its target
  allow it (default: the first output of the full evaluation).  :func:`logdensity_evaluator_of`
  resolves it for any estimator object.

``cost`` is the cost of one ``evaluate`` in units of one full-data gradient
(``b / N`` for mini-batches, 1 otherwise); the driver accumulates it into
``ChainResult.n_gradient_evals``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["GradientEstimator", "evaluator_of", "logdensity_evaluator_of"]


class GradientEstimator:
    target: Any
    cost: float = 1.0
    stochastic: bool = False

    def init(self, n_chains: int, rng) -> dict:
        return {}

    def draw(self, state: dict, rng, x) -> tuple[Any, dict]:
        return None, state

    def evaluate(self, x, batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluator(self, xp):
        """``(x, batch) -> (logp_hat, g_hat)`` without per-call validation; same values as ``evaluate``."""
        return self.evaluate

    def logdensity_evaluator(self, xp):
        """``(x, batch) -> logp_hat`` without per-call validation: the first output of :meth:`evaluator`.

        Subclasses whose log-density needs less work than the pair override it with the same
        arithmetic (bit-identical ``logp_hat``)."""
        ev = self.evaluator(xp)
        return lambda x, batch: ev(x, batch)[0]

    def __call__(self, x, rng, state: dict | None = None):
        """Draw and evaluate in one call; returns ``(logp_hat, g_hat, state)``."""
        if state is None:
            state = self.init(x.shape[0], rng)
        batch, state = self.draw(state, rng, x)
        lp, g = self.evaluate(x, batch)
        return lp, g, state

    def describe(self) -> dict:
        return {"name": type(self).__name__, "cost": float(self.cost)}


def evaluator_of(gradient, xp):
    """The unchecked evaluation ``(x, batch) -> (logp_hat, g_hat)`` of ``gradient`` in namespace ``xp``.

    :meth:`GradientEstimator.evaluator` for smile_ref estimators, else the object's own ``evaluate``
    (duck-typed estimators); an ``evaluate`` replaced on the instance, or overridden by a subclass
    of an estimator whose ``evaluator`` does not know it, is honoured.
    """
    if isinstance(gradient, GradientEstimator) and "evaluate" not in vars(gradient):
        return gradient.evaluator(xp)
    return gradient.evaluate


def logdensity_evaluator_of(gradient, xp):
    """The unchecked log-density-only evaluation ``(x, batch) -> logp_hat`` of ``gradient`` in namespace ``xp``.

    Bit-identical to ``evaluator_of(gradient, xp)(x, batch)[0]`` on every estimator; where the estimator
    and its target allow it (:class:`~smile_ref.gradients.Exact`, :class:`~smile_ref.gradients.AdditiveNoise`,
    :class:`~smile_ref.gradients.MiniBatch` on smile_ref's targets) the gradient is not computed.  A
    duck-typed estimator, an ``evaluate`` or ``evaluator`` replaced on the instance, or a subclass that
    overrides either without its own ``logdensity_evaluator`` gets the first output of the full evaluation.

    Examples
    --------
    >>> import numpy as np, array_api_compat.numpy as xp
    >>> from smile_ref import gradients, targets
    >>> t = targets.Gaussian.diagonal(np.array([1.0, 4.0]))
    >>> est = gradients.AdditiveNoise(t, 0.5)
    >>> x, xi = np.ones((3, 2)), np.full((3, 2), 0.1)
    >>> bool(np.array_equal(logdensity_evaluator_of(est, xp)(x, xi), est.evaluate(x, xi)[0]))
    True
    """
    if isinstance(gradient, GradientEstimator) and "evaluate" not in vars(gradient) \
            and "evaluator" not in vars(gradient) and _defines_all(gradient):
        return gradient.logdensity_evaluator(xp)
    ev = evaluator_of(gradient, xp)
    return lambda x, batch: ev(x, batch)[0]


def _defines_all(gradient) -> bool:
    """Whether ``logdensity_evaluator`` is defined at or below the classes defining ``evaluate`` and ``evaluator``."""
    mro = type(gradient).__mro__
    owner = {n: next(k for k in mro if n in vars(k)) for n in ("evaluate", "evaluator", "logdensity_evaluator")}
    return issubclass(owner["logdensity_evaluator"], owner["evaluate"]) and \
        issubclass(owner["logdensity_evaluator"], owner["evaluator"])


def target_logdensity(target, xp):
    """``x -> logp`` of ``target`` without per-call validation where the target offers it
    (:meth:`smile_ref.targets.Target.unchecked_logdensity`), else the first output of its
    ``logdensity_and_grad`` (bit-identical to :func:`target_evaluator`'s)."""
    make = getattr(target, "unchecked_logdensity", None)
    if make is not None:
        return make(xp)
    full = target_evaluator(target, xp)
    return lambda x: full(x)[0]


def target_evaluator(target, xp):
    """``x -> (logp, grad)`` of ``target`` without per-call validation where the target offers it
    (:meth:`smile_ref.targets.Target.unchecked_logdensity_and_grad`), else its ``logdensity_and_grad``."""
    make = getattr(target, "unchecked_logdensity_and_grad", None)
    return make(xp) if make is not None else target.logdensity_and_grad
