"""Shared helpers for the SGLD / pSGLD / SGHMC tests: z-scores from independent chains, test estimators."""
from __future__ import annotations

import math

import numpy as np

from smile_ref.backend import array_namespace, device_of
from smile_ref.gradients import Exact, GradientEstimator

# Two-sided threshold for every z-test below.  The z statistic is (mean of m
# independent per-chain time averages - prediction) / (their sample SD / sqrt(m)),
# i.e. Student-t with m - 1 >= 127 degrees of freedom under the null hypothesis
# (per-chain averages of >= 2000 steps are close to normal); P(|t_127| > 4.5) < 2e-5.
Z_MAX = 4.5
P_FAIL_PER_Z = 2e-5


def replica_z(estimates: np.ndarray, prediction, axis: int = 0) -> np.ndarray:
    """z-scores of the mean of independent replicas of an estimate against ``prediction``.

    ``estimates`` holds ``M`` independent, identically distributed estimates along ``axis`` (chains,
    repeated runs); ``z = (mean - prediction) / (sd / sqrt(M))`` with the sample SD (``ddof=1``), a
    Student-t statistic with ``M - 1`` degrees of freedom under the null hypothesis.
    """
    est = np.asarray(estimates, dtype=np.float64)
    M = est.shape[axis]
    return (est.mean(axis=axis) - prediction) / (est.std(axis=axis, ddof=1) / math.sqrt(M))


def chain_z(values: np.ndarray, prediction: float) -> float:
    """z-score of the grand mean of ``values`` (n_chains, n_draws) against ``prediction``.

    The standard error uses only the spread of the per-chain time averages, which are
    independent across chains (no autocorrelation model needed).
    """
    return float(replica_z(values.mean(axis=1), prediction))


def cov_z(samples: np.ndarray, mean: np.ndarray, cov_pred: np.ndarray) -> np.ndarray:
    """z-scores of every upper-triangle entry of the stationary covariance (known mean)."""
    c = samples - mean[None, None, :]
    d = samples.shape[-1]
    return np.array([chain_z(c[..., i] * c[..., j], cov_pred[i, j]) for i in range(d) for j in range(i, d)])


class NaNForChain0(GradientEstimator):
    """Exact gradient except chain 0, whose gradient is NaN (guardrail tests)."""

    def __init__(self, target):
        self.inner = Exact(target)
        self.target = target

    def evaluate(self, x, batch):
        lp, g = self.inner.evaluate(x, batch)
        xp = array_namespace(x)
        row = xp.arange(x.shape[0], device=device_of(x))[:, None] == 0
        return lp, xp.where(row, xp.nan, g)


class NaNForChain0AfterInit(GradientEstimator):
    """Exact gradient, except that every evaluation after the first returns a NaN gradient for chain 0
    (the chain starts at a finite point and every proposal of the first step lands where the gradient
    is NaN: the proposal must be rejected and the stored gradient of the start kept)."""

    def __init__(self, target):
        self.inner = Exact(target)
        self.target = target
        self.calls = 0

    def evaluate(self, x, batch):
        lp, g = self.inner.evaluate(x, batch)
        self.calls += 1
        if self.calls == 1:
            return lp, g
        xp = array_namespace(x)
        row = xp.arange(x.shape[0], device=device_of(x))[:, None] == 0
        return lp, xp.where(row, xp.nan, g)


class SubsetMiniBatch(GradientEstimator):
    """Mini-batch estimator drawing an *independent* uniform ``b``-subset per chain and step.

    (smile_ref's :class:`MiniBatch` without replacement walks through per-chain
    epoch shuffles, whose consecutive batches are dependent; Vollmer et al.'s
    Eq. 16 assumes independent batches.)
    """

    stochastic = True

    def __init__(self, target, batch_size):
        self.target, self.b = target, batch_size
        self.cost = batch_size / target.n_data

    def draw(self, state, rng, x):
        idx = rng.permutations_host(self.target.n_data, int(x.shape[0]))[:, : self.b]
        xp = array_namespace(x)
        return xp.asarray(np.ascontiguousarray(idx), dtype=xp.int64, device=device_of(x)), state

    def evaluate(self, x, batch):
        return self.target.logdensity_and_grad_batch(x, batch)


class Crash(RuntimeError):
    pass


class CrashAfter(GradientEstimator):
    """Delegates to ``inner`` but raises :class:`Crash` after ``n`` evaluations (resume tests)."""

    def __init__(self, inner, n):
        self.inner, self.n, self.calls = inner, n, 0
        self.target, self.cost, self.stochastic = inner.target, inner.cost, inner.stochastic

    def init(self, n_chains, rng):
        return self.inner.init(n_chains, rng)

    def draw(self, state, rng, x):
        return self.inner.draw(state, rng, x)

    def evaluate(self, x, batch):
        self.calls += 1
        if self.calls > self.n:
            raise Crash
        return self.inner.evaluate(x, batch)

    def describe(self):
        return self.inner.describe()

    def resume_identity(self):  # an instrument, not a different estimator: resume checks see the inner one
        return self.inner
