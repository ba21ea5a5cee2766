"""Gradient estimators: exact, mini-batch, synthetic additive noise, noise covariances.

* :class:`Exact`: full-data ``(log pi, grad log pi)``, cost 1.
* :class:`MiniBatch`: unbiased ``log prior + (N/b) sum_B l_i`` with per-chain
  batches, with or without replacement (epoch shuffles), cost ``b/N``.
* :class:`AdditiveNoise`: ``grad log pi + f(x) xi``, ``Cov[xi] = cov``, with
  Gaussian / Laplace / Student-t / log-normal coordinates (the paper's
  analytical benchmarks); :func:`exp_spatial` for spatially varying noise.
* :class:`Replay`: replays a given sequence of batches/noise through a host
  function, to drive an external implementation and smile_ref identically.
* :func:`noise_covariance`: the mini-batch gradient-noise covariance estimated
  from per-example gradients.
"""
from .base import GradientEstimator
from .covariance import minibatch_covariance_factor, noise_covariance
from .exact import Exact
from .minibatch import MiniBatch
from .noise import DISTRIBUTIONS, AdditiveNoise, ExpSpatial, exp_spatial
from .replay import Replay, ReplayExhausted

__all__ = [
    "GradientEstimator",
    "Exact",
    "MiniBatch",
    "AdditiveNoise",
    "ExpSpatial",
    "exp_spatial",
    "DISTRIBUTIONS",
    "Replay",
    "ReplayExhausted",
    "noise_covariance",
    "minibatch_covariance_factor",
]
