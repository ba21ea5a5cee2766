"""Sampler interface and registry.

A sampler is built for one (target, gradient estimator, backend) and exposes,
in the style of BlackJAX kernels,

* ``init(position, rng) -> state``: a ``NamedTuple`` of arrays (leading chain
  axis), nested ``NamedTuple``s, host ``dict``s and Python scalars, with an
  ``(n_chains, d)`` attribute ``state.position`` (a field or a property) that the
  driver records;
* ``step(state, rng, warmup) -> (state, info)``: one transition for all chains
  at once; ``info`` is a ``dict`` of ``(n_chains,)`` arrays (energy error,
  step size, rejections, ...); ``warmup`` tells tuners whether to adapt;
* ``grad_evals_per_step``: gradient-estimator evaluations per step, so that the
  driver can count cost in full-gradient equivalents
  (``grad_evals_per_step * gradient.cost``).

Builders are registered by name with :func:`register` and looked up by
:func:`smile_ref.run_chains`; :func:`available` lists the names.
"""
from __future__ import annotations

from typing import Any, Callable, Protocol

__all__ = ["Sampler", "register", "get", "available"]


class Sampler(Protocol):
    name: str
    grad_evals_per_step: int
    init_grad_evals: int

    def init(self, position, rng) -> Any: ...

    def step(self, state, rng, warmup: bool) -> tuple[Any, dict]: ...


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
