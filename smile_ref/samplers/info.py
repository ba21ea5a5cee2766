"""Typed per-step reports of the samplers (the ``Info`` of ``step(state, rng, warmup) -> (state, info)``).

Every sampler returns one of these frozen records; each field is a ``(n_chains,)`` array in the
sampler's namespace.  The fields every sampler reports are those of :class:`StepInfo`:

``step_size``
    the step size the step integrated with (SMILE: the tuner's, before any non-finite backoff);
``rejected``
    ``True`` where a guardrail rejected the step (position restored);
``nonfinite``
    ``True`` where the step met a non-finite value (log-density, gradient or position), whether or
    not it was rejected for it.

The subclasses add the fields of one family of samplers.  A field set to ``None`` is not reported
(e.g. ``IsokineticInfo.L`` for SMILE, which has no refresh length to report).

The records are also read-only mappings from field name to array over the reported fields, so that
``info["energy_error"]`` and ``for key in info`` work as on a ``dict``; the driver records exactly
these keys (``ChainResult.info``).

Examples
--------
>>> import numpy as np
>>> info = IsokineticInfo(step_size=np.array([0.1]), rejected=np.array([False]), nonfinite=np.array([False]),
...                       energy_error=np.array([1e-3]), kinetic_change=np.array([0.2]),
...                       logdensity=np.array([-1.0]))
>>> info.energy_error[0], info["kinetic_change"][0]
(np.float64(0.001), np.float64(0.2))
>>> list(info)
['step_size', 'rejected', 'nonfinite', 'energy_error', 'kinetic_change', 'logdensity']
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["StepInfo", "IsokineticInfo", "LangevinInfo", "SGDInfo"]


@dataclasses.dataclass(frozen=True, eq=False)
class StepInfo(Mapping):
    """Fields every sampler reports (see the module docstring)."""

    step_size: Any
    rejected: Any
    nonfinite: Any

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._names = None  # the field names, filled on first use (dataclass fields exist only after decoration)

    def _field_names(self) -> tuple:
        cls = type(self)
        names = cls.__dict__.get("_names")
        if names is None:
            names = tuple(f.name for f in dataclasses.fields(cls))
            cls._names = names
        return names

    def __getitem__(self, key: str):
        if key in self._field_names():
            value = getattr(self, key)
            if value is not None:
                return value
        raise KeyError(key)

    def __iter__(self):
        return (k for k in self._field_names() if getattr(self, k) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, key) -> bool:
        return key in self._field_names() and getattr(self, key) is not None

    def replace(self, **changes) -> "StepInfo":
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


StepInfo._names = None


@dataclasses.dataclass(frozen=True, eq=False)
class IsokineticInfo(StepInfo):
    """Report of an isokinetic (microcanonical) step: ``"mclmc"``, ``"smile"``, ``"psmile"``.

    ``energy_error``: ``dE = dK - (log p(x') - log p(x))`` (0 where the step met a non-finite value;
    MCLMC also zeroes it where the energy guardrail rejected the step); ``kinetic_change``: ``dK``,
    the isokinetic kinetic-energy change of the step (same zeroing); ``logdensity``: the stored
    log-density after the step; ``L``: the momentum decoherence length (MCLMC only).
    """

    energy_error: Any = None
    kinetic_change: Any = None
    logdensity: Any = None
    L: Any = None


@dataclasses.dataclass(frozen=True, eq=False)
class LangevinInfo(StepInfo):
    """Report of a Langevin or Hamiltonian SG step (SGLD family, SGHMC).

    ``drift_noise_ratio`` (SGLD, pSGLD): ``r = h G g^2 / 2`` averaged over coordinates, the squared
    drift over the injected variance; for exact gradients on ``N(0, s^2)``,
    ``E[r] = (a/2) / (1 - a/2)``, ``a = h G / s^2``, the relative excess of the Euler--Maruyama
    chain's stationary variance.
    """

    drift_noise_ratio: Any = None


@dataclasses.dataclass(frozen=True, eq=False)
class SGDInfo(StepInfo):
    """Report of a constant-SGD step: ``loss`` (mini-batch negative log-density per datum) and
    ``window_end`` (``True`` on the last step of an iterate-averaging window)."""

    loss: Any = None
    window_end: Any = None
