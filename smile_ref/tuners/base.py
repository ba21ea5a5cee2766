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

__all__ = ["TuningParams", "TuneInput", "ResetRule", "Tuner", "chain", "identity"]


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

    energy_error : (n,) energy error dE of the step.  A chain whose step met a non-finite value
        carries ``+inf``; a chain rejected by an energy guardrail carries its (finite) ``dE``.  Every
        tuner reads ``rejected`` itself (the Var[dE]/d tuner treats rejected rows as ``dE = 0``, the
        Gamma tuner winsorises them and shrinks the step on ``+inf``).
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


class ResetRule(NamedTuple):
    """A per-chain step-rejection rule that belongs to a tuner (a guardrail the sampler applies).

    ``mask(tuner_state, energy_error, xp) -> (n,) bool``: the chains whose step is rejected, judged
    from the step's energy error (non-finite entries already replaced by 0; non-finite steps are
    rejected by the sampler regardless).  The SMILE authors' Gamma tuner rejects
    ``|dE| > Q_Gamma(reset_prob)`` of its running ``|dE|`` statistics
    (:func:`smile_ref.tuners.energy_error.energy_error_tuner`).
    """

    mask: Callable[[Any, Any, Any], Any]
    name: str = "reset_rule"


class Tuner(NamedTuple):
    """``init(params) -> state``; ``update(state, params, inp) -> (params, state)``.

    ``energy_var_target``: the ``Var[dE] / d`` a step-size tuner holds once warm-up ends (``None``: it has
    none); run health scales its energy-error limit with it.
    ``reset_rule``: a :class:`ResetRule` of the tuner's own, applied by the sampler on top of its
    non-finite rejection (``None``: the tuner has none, and SMILE falls back to its fixed energy
    guardrail ``max_energy_error``).

    Examples
    --------
    >>> import numpy as np
    >>> t = identity()
    >>> p = TuningParams(np.array([0.1]), np.array([np.inf]))
    >>> p2, s = t.update(t.init(p), p, None)
    >>> p2 is p, t.reset_rule is None
    (True, True)
    """

    init: Callable[[TuningParams], Any]
    update: Callable[[Any, TuningParams, TuneInput], tuple[TuningParams, Any]]
    name: str = "tuner"
    energy_var_target: float | None = None
    reset_rule: ResetRule | None = None


def identity() -> Tuner:
    """A tuner that changes nothing (fixed step size: the "naive" samplers)."""
    return Tuner(lambda params: (), lambda state, params, inp: (params, state), "identity")


class ChainState(NamedTuple):
    inner: tuple


def chain(*tuners: Tuner) -> Tuner:
    """Compose tuners: each sees the parameters returned by the previous one.

    The composite's reset rule rejects a chain when any member's rule does; its
    ``energy_var_target`` is the last member's that has one.
    """

    def init(params):
        return ChainState(tuple(t.init(params) for t in tuners))

    def update(state, params, inp):
        new = []
        for t, s in zip(tuners, state.inner):
            params, s = t.update(s, params, inp)
            new.append(s)
        return params, ChainState(tuple(new))

    ruled = [(i, t.reset_rule) for i, t in enumerate(tuners) if t.reset_rule is not None]
    rule = None
    if ruled:
        def mask(state, energy_error, xp):
            out = None
            for i, r in ruled:
                m = r.mask(state.inner[i], energy_error, xp)
                out = m if out is None else out | m
            return out

        rule = ResetRule(mask, "+".join(r.name for _, r in ruled))
    targets = [t.energy_var_target for t in tuners if t.energy_var_target is not None]
    return Tuner(init, update, "+".join(t.name for t in tuners), targets[-1] if targets else None, rule)
