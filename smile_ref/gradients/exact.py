"""Exact full-data gradient (the default estimator of ``run_chains``)."""
from __future__ import annotations

from .base import GradientEstimator, target_evaluator, target_logdensity

__all__ = ["Exact"]


class Exact(GradientEstimator):
    """``(log pi(x), grad log pi(x))`` of ``target`` with no noise; cost 1 per call."""

    cost = 1.0
    stochastic = False

    def __init__(self, target):
        if not hasattr(target, "logdensity_and_grad"):
            raise TypeError(f"target must provide logdensity_and_grad, got {type(target).__name__}")
        self.target = target

    def evaluate(self, x, batch):
        return self.target.logdensity_and_grad(x)

    def evaluator(self, xp):
        """:meth:`evaluate` without per-call validation (a subclass with its own ``evaluate`` keeps it)."""
        if type(self).evaluate is not Exact.evaluate:
            return self.evaluate
        f = target_evaluator(self.target, xp)
        return lambda x, batch: f(x)

    def logdensity_evaluator(self, xp):
        """``(x, batch) -> log pi(x)`` without the gradient where the target allows it (same values)."""
        f = target_logdensity(self.target, xp)
        return lambda x, batch: f(x)
