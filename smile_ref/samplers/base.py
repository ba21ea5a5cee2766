"""Sampler contract and registry.

A sampler is built for one (target, gradient estimator, backend) and exposes,
in the style of BlackJAX kernels,

* ``init(position, rng) -> state``: a ``NamedTuple`` of arrays (leading chain
  axis), nested ``NamedTuple``s, host ``dict``s and Python scalars, with an
  ``(n_chains, d)`` attribute ``state.position`` (a field or a property) that the
  driver records;
* ``step(state, rng, warmup) -> (state, info)``: one transition for all chains
  at once; ``info`` is a typed record of ``(n_chains,)`` arrays
  (:class:`~smile_ref.samplers.info.StepInfo` and its subclasses: step size,
  rejections, energy error, ...); ``warmup`` tells the adaptation whether to adapt;
* ``grad_evals_per_step`` / ``init_grad_evals``: gradient-estimator evaluations
  per step and at ``init``, so that the driver can count cost in full-gradient
  equivalents (``grad_evals_per_step * gradient.cost``);
* ``energy_var_target``: the ``Var[dE] / d`` the sampler's step-size tuner holds
  (``None`` without one); run health scales its energy-error limit with it;
* ``judge_energy_error``: whether ``info.energy_error`` is an integration error
  that run health may judge (``False`` for SMILE's cross-batch energy error,
  which contains a mini-batch difference of log-densities);
* ``sqrt_diag(state)``: the diagonal preconditioner ``S`` (``(n, d)``) the next
  step will use, or ``None``;
* ``coefficients``: the splitting integrator's coefficients (``None`` for the
  samplers that are not built on one);
* ``observe(state)``: the host float64 arrays ``position``, ``logdensity`` and,
  for samplers with a velocity, ``velocity``, that golden trajectories record.

:class:`Kernel` holds the defaults of these members; every registered sampler
derives from it.  Builders are registered by name with :func:`register` and
looked up by :func:`smile_ref.run_chains`; :func:`available` lists the names.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

import numpy as np

from ..backend import to_numpy
from ..gradients.base import evaluator_of, logdensity_evaluator_of

__all__ = ["Sampler", "Kernel", "IsokineticKernel", "register", "get", "available"]


class Sampler(Protocol):
    name: str
    grad_evals_per_step: int
    init_grad_evals: int

    energy_var_target: float | None
    judge_energy_error: bool

    def init(self, position, rng) -> Any: ...

    def step(self, state, rng, warmup: bool) -> tuple[Any, Any]: ...

    def sqrt_diag(self, state) -> Any: ...

    def observe(self, state) -> dict: ...


class Kernel:
    """Defaults of the :class:`Sampler` members; the registered samplers derive from it.

    A subclass sets ``name``, ``grad_evals_per_step``, ``target`` and implements ``init`` and
    ``step``; it overrides ``sqrt_diag`` when it preconditions, ``energy_var_target`` when it
    tunes to a ``Var[dE] / d`` target, and ``_observed`` when its state stores a velocity or the
    log-density the golden recorder should report.
    """

    name: str = "kernel"
    grad_evals_per_step: int = 1
    init_grad_evals: int = 1
    judge_energy_error: bool = True
    energy_var_target: float | None = None
    #: :class:`~smile_ref.integrators.coefficients.IntegratorCoefficients` of an integrator-based sampler
    coefficients = None

    def sqrt_diag(self, state):
        """The diagonal preconditioner ``S`` of the next step: ``None`` (no preconditioning)."""
        return None

    def _observed(self, state) -> dict:
        """``position`` and the target's exact ``logdensity`` at it (samplers without a velocity)."""
        return {"position": state.position, "logdensity": self.target.logdensity_and_grad(state.position)[0]}

    def observe(self, state) -> dict:
        """Host float64 copies of :meth:`_observed` (``position``, ``logdensity`` [, ``velocity``])."""
        return {k: np.asarray(to_numpy(v), dtype=np.float64) for k, v in self._observed(state).items()}


class IsokineticKernel(Kernel):
    """:class:`Kernel` of the isokinetic samplers (``"mclmc"``, ``"smile"``, ``"psmile"``): a ``state.integrator``
    (:class:`~smile_ref.integrators.isokinetic.IntegratorState`) and a ``tuner``."""

    @property
    def energy_var_target(self):
        """The tuner's ``Var[dE] / d`` target (``None``: it has none)."""
        return self.tuner.energy_var_target

    def _observed(self, state) -> dict:
        """``position``, ``velocity`` and the stored ``logdensity`` of the integrator state."""
        inner = state.integrator
        return {"position": inner.position, "velocity": inner.momentum, "logdensity": inner.logdensity}

    _evaluators = None  # {kind: (gradient, evaluator)}: the unchecked evaluations of self.gradient, built once

    def _cached_evaluation(self, kind: str):
        """``kind`` ``"full"``: ``(x, batch) -> (logp_hat, g)`` (:func:`~smile_ref.gradients.base.evaluator_of`);
        ``"logdensity"``: ``(x, batch) -> logp_hat`` (:func:`~smile_ref.gradients.base.logdensity_evaluator_of`),
        both without per-call validation, rebuilt when ``self.gradient`` is replaced."""
        cache = self._evaluators
        if cache is None:
            cache = self._evaluators = {}
        hit = cache.get(kind)
        if hit is None or hit[0] is not self.gradient:
            make = evaluator_of if kind == "full" else logdensity_evaluator_of
            hit = cache[kind] = (self.gradient, make(self.gradient, self.xp))
        return hit[1]

    def _evaluator(self):
        """``(x, batch) -> (logp_hat, g)`` of ``self.gradient`` without per-call validation (cached)."""
        return self._cached_evaluation("full")

    def _logdensity_evaluator(self):
        """``(x, batch) -> logp_hat`` without the gradient where the estimator allows it (cached; bit-identical to
        the full evaluation's ``logp_hat``)."""
        return self._cached_evaluation("logdensity")

    def clear_evaluator_cache(self) -> None:
        """Forget the cached evaluations (e.g. after wrapping the target's methods for timing)."""
        self._evaluators = None


_REGISTRY: dict[str, Callable[..., Sampler]] = {}


def register(name: str):
    """Decorator registering ``builder(target, gradient, backend, step_size, n_warmup, **options)``."""

    def deco(builder):
        if name in _REGISTRY:
            raise ValueError(f"sampler {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return deco


def get(name: str) -> Callable[..., Sampler]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"sampler must be one of {available()}, got {name!r}") from None


def available() -> list[str]:
    """Names of the registered samplers."""
    return sorted(_REGISTRY)
