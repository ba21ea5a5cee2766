"""Tuner interface: an ``init``/``update`` pair that chains (modelled on optax).

A tuner adapts the sampler's *parameters* (step size, momentum decoherence
length L, diagonal preconditioner) from what each step reports.  Tuners never
see the sampler's internals; the sampler hands them a :class:`TuneInput` after
every step and applies the :class:`TuningParams` they return.

All arrays have a leading chain axis and live in the sampler's namespace;
tuner states are ``NamedTuple``s of arrays and Python scalars so that the
driver can checkpoint them.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

__all__ = ["TuningParams", "TuneInput", "Tuner", "chain", "identity"]


class TuningParams(NamedTuple):
    """Parameters a tuner may change.

    step_size : array (n,)
        Step size epsilon per chain.
    L : array (n,)
        Momentum decoherence length per chain (``inf`` = no partial refresh).
    sqrt_diag : array (n, d) or None
        Diagonal of ``M^{-1/2}``: positions move by ``tau * sqrt_diag * u`` and
        the velocity update sees ``sqrt_diag * g``.
    """

    step_size: Any
    L: Any
    sqrt_diag: Any = None


class TuneInput(NamedTuple):
    """What the sampler reports to the tuner after one step.

    energy_error : (n,) energy error dE of the step (0 where rejected)
    position : (n, d) position after the step (restored where rejected)
    rejected : (n,) bool, True where a guardrail rejected the step
    step : int, 0-based index of the step within the warm-up
    n_warmup : int, total number of warm-up steps
    dim : int
    """

    energy_error: Any
    position: Any
    rejected: Any
    step: int
    n_warmup: int
    dim: int


class Tuner(NamedTuple):
    """``init(params) -> state``; ``update(state, params, inp) -> (params, state)``.

    ``energy_var_target``: the ``Var[dE] / d`` a step-size tuner holds once warm-up ends (``None``: it has
    none); run health scales its energy-error limit with it.
    """

    init: Callable[[TuningParams], Any]
    update: Callable[[Any, TuningParams, TuneInput], tuple[TuningParams, Any]]
    name: str = "tuner"
    energy_var_target: float | None = None


def identity() -> Tuner:
    """A tuner that changes nothing (fixed step size: the "naive" samplers)."""
    return Tuner(lambda params: (), lambda state, params, inp: (params, state), "identity")


class ChainState(NamedTuple):
    inner: tuple


def chain(*tuners: Tuner) -> Tuner:
    """Compose tuners: each sees the parameters returned by the previous one."""

    def init(params):
        return ChainState(tuple(t.init(params) for t in tuners))

    def update(state, params, inp):
        new = []
        for t, s in zip(tuners, state.inner):
            params, s = t.update(s, params, inp)
            new.append(s)
        return params, ChainState(tuple(new))

    return Tuner(init, update, "+".join(t.name for t in tuners))
