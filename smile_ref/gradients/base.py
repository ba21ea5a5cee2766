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
  :func:`evaluator_of` resolves it for any estimator object.

``cost`` is the cost of one ``evaluate`` in units of one full-data gradient
(``b / N`` for mini-batches, 1 otherwise); the driver accumulates it into
``ChainResult.n_gradient_evals``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["GradientEstimator", "evaluator_of"]


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


def target_evaluator(target, xp):
    """``x -> (logp, grad)`` of ``target`` without per-call validation where the target offers it
    (:meth:`smile_ref.targets.Target.unchecked_logdensity_and_grad`), else its ``logdensity_and_grad``."""
    make = getattr(target, "unchecked_logdensity_and_grad", None)
    return make(xp) if make is not None else target.logdensity_and_grad
