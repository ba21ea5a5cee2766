"""The adaptation wrapper: tuner and preconditioner composed around an isokinetic kernel.

One SMILE / MCLMC step is, top to bottom,

1. ``S = adaptation.sqrt_diag(a)``, ``params = a.params`` (step size, L): what the kernel integrates with;
2. the kernel's transition at fixed ``(params, S)`` (:meth:`smile_ref.samplers.smile.SMILE.step`,
   :meth:`smile_ref.samplers.mclmc.MCLMC.step`): refresh, ``isokinetic_step_carry``
   (:mod:`smile_ref.integrators.isokinetic`), energy error ``dE``, guardrails
   (:mod:`smile_ref.samplers.guardrails`; the tuner's own reset rule is read through
   :meth:`Adaptation.reset_mask`);
3. ``a = adaptation.update(a, report)``: the tuner (an optax-style ``init``/``update`` pair,
   :class:`~smile_ref.tuners.base.Tuner`) sees the step's :class:`~smile_ref.tuners.base.TuneInput`, the
   preconditioner its gradient, and the warm-up clock advances.

The wrapper owns the single warm-up clock ``AdaptationState.warmup_step`` (the number of warm-up steps
adapted so far, the ``TuneInput.step`` of the next one); which steps are warm-up steps is the driver's
``warmup`` flag (``t < burn_in``).  Tuners that also adapt while sampling (the authors' Gamma tuner)
keep their own per-chain counters, which are part of their state.

Examples
--------
>>> import numpy as np
>>> from smile_ref.tuners.base import TuningParams, identity
>>> ad = Adaptation(identity(), n_warmup=10)
>>> a = ad.init(TuningParams(np.array([0.1]), np.array([np.inf])), None)
>>> a = ad.update(a, AdaptationInput(np.array([1e-3]), np.zeros((1, 2)), np.array([False])), dim=2, warmup=True)
>>> a.warmup_step, float(a.params.step_size[0])
(1, 0.1)
"""
from __future__ import annotations

from typing import Any, NamedTuple

from ..tuners.base import Tuner, TuneInput, TuningParams

__all__ = ["AdaptationState", "AdaptationInput", "Adaptation", "adaptation_view"]


class AdaptationState(NamedTuple):
    """``params``: what the kernel integrates with; ``tuner_state`` / ``precond_state``: the
    transformations' states; ``warmup_step``: the warm-up clock (warm-up steps adapted so far)."""

    params: TuningParams
    tuner_state: Any
    precond_state: Any = None
    warmup_step: int = 0


def adaptation_view(field: str) -> property:
    """A read-only property ``state.<field>`` reading ``state.adaptation.<field>`` (for sampler states that
    hold an :class:`AdaptationState`, so that ``state.params`` & co. read as before)."""
    return property(lambda self: getattr(self.adaptation, field),
                    doc=f"``adaptation.{field}`` (:class:`AdaptationState`).")


class AdaptationInput(NamedTuple):
    """What a kernel's transition reports to the adaptation: the :class:`~smile_ref.tuners.base.TuneInput`
    fields ``energy_error`` (``+inf`` on rows that met a non-finite value), ``position`` and ``rejected``,
    and ``grad``, the gradient the preconditioner learns from (``None`` without one)."""

    energy_error: Any
    position: Any
    rejected: Any
    grad: Any = None


class Adaptation:
    """A :class:`~smile_ref.tuners.base.Tuner` and an optional preconditioner around a kernel.

    Parameters
    ----------
    tuner : Tuner
        Adapts ``TuningParams`` from the step's ``TuneInput``.
    n_warmup : int
        Warm-up length (``TuneInput.n_warmup``; at least 1 is reported, so that a tuner adapting
        during sampling after ``burn_in=0`` sees a valid length).
    preconditioner : object with ``init(g)``, ``update(state, g)``, ``sqrt_diag(state)``, optional
        pSMILE's gradient-noise preconditioner; updated with the step's final gradient.
    adapt_during_sampling : bool
        Call the tuner after warm-up too (the tuner itself may still hold its parameters).
    freeze_preconditioner : bool
        Stop updating the preconditioner after warm-up.
    """

    def __init__(self, tuner: Tuner, n_warmup: int, *, preconditioner=None, adapt_during_sampling: bool = False,
                 freeze_preconditioner: bool = True):
        self.tuner, self.n_warmup = tuner, int(n_warmup)
        self.preconditioner = preconditioner
        self.adapt_during_sampling = adapt_during_sampling
        self.freeze_preconditioner = freeze_preconditioner

    def init(self, params: TuningParams, grad) -> AdaptationState:
        """The initial state: the tuner's ``init(params)`` and the preconditioner's ``init(grad)``."""
        pstate = self.preconditioner.init(grad) if self.preconditioner is not None else None
        return AdaptationState(params, self.tuner.init(params), pstate, 0)

    def sqrt_diag(self, a: AdaptationState):
        """Diagonal ``S`` of the next step: the preconditioner's, else ``params.sqrt_diag`` (``None``: identity)."""
        if self.preconditioner is not None:
            return self.preconditioner.sqrt_diag(a.precond_state)
        return a.params.sqrt_diag

    def reset_mask(self, a: AdaptationState, energy_error, xp):
        """The tuner's own reset rule on the step's (finite) energy errors, or ``None`` if it has none."""
        rule = self.tuner.reset_rule
        return None if rule is None else rule.mask(a.tuner_state, energy_error, xp)

    def update(self, a: AdaptationState, inp: AdaptationInput, *, dim: int, warmup: bool) -> AdaptationState:
        """Adapt after one step: the tuner on ``inp`` (in warm-up, and after it if ``adapt_during_sampling``),
        the preconditioner on ``inp.grad`` (in warm-up, and after it unless ``freeze_preconditioner``); the
        warm-up clock advances on warm-up steps (``warmup``: the driver's phase flag)."""
        params, tstate, wstep = a.params, a.tuner_state, a.warmup_step
        if warmup or self.adapt_during_sampling:
            params, tstate = self.tuner.update(
                tstate, a.params,
                TuneInput(inp.energy_error, inp.position, inp.rejected, wstep, max(self.n_warmup, 1), dim))
        pstate = a.precond_state
        if self.preconditioner is not None and (warmup or not self.freeze_preconditioner):
            pstate = self.preconditioner.update(pstate, inp.grad)
        return AdaptationState(params, tstate, pstate, wstep + 1 if warmup else wstep)
