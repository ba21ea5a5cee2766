"""Options of ``"mclmc"`` as one frozen record, with smile_ref's defaults and MILE's preset.

:class:`MCLMCConfig` is the one place of each default of the MCLMC kernel
(:mod:`smile_ref.samplers.mclmc`); :meth:`MCLMCConfig.authors` is the one place of the values of
MILE's warm-up as the SMILE authors' code runs it (``src/kernels/warmup.py``, BlackJAX 1.2.2
underneath; Sommer et al., ICLR 2025).  Two fields may hold a value that depends on the dimension
``d`` of the target and is computed when the kernel is built:

* ``L=None``: ``sqrt(d)``; ``L="max(sqrt(d), 15)"`` (:data:`L_MILE`, the preset's): ``max(sqrt(d), 15)``;
* ``default_step_size=None``: ``0.25 sqrt(d)``.  ``default_step_size`` is the initial step size when the
  run's ``step_size`` is ``None`` (an explicit ``step_size`` wins); the preset's is 0.005.

Examples
--------
>>> cfg = MCLMCConfig.authors()
>>> cfg.tuner, cfg.L, cfg.default_step_size, cfg.tuner_options["num_effective_samples"]
('mile', 'max(sqrt(d), 15)', 0.005, 100)
>>> cfg.with_options(tuner_options={"num_effective_samples": 50}).tuner_options["schedule_divisor"]
'n12+1'
>>> MCLMCConfig().resolved_L(400), MCLMCConfig.authors().resolved_L(100)
(20.0, 15.0)
"""
from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Any

from .config import SamplerConfig

__all__ = ["MCLMCConfig", "L_MILE", "MILE_AUTHORS_TUNER", "MILE_AUTHORS_STEP_SIZE"]

#: ``MCLMCConfig.L`` value meaning ``max(sqrt(d), 15)`` (MILE's initial L).
L_MILE = "max(sqrt(d), 15)"
#: MILE's tuner settings in the authors' code (:func:`~smile_ref.tuners.mclmc_tuner` arguments): ``N_eff = 100``,
#: schedule divisor ``n1 + n2 + 1``, phase-2 moment weight after the update, BlackJAX's ESS on the whole chain.
MILE_AUTHORS_TUNER = MappingProxyType({
    "energy_var_schedule": "mile", "num_effective_samples": 100, "schedule_divisor": "n12+1",
    "moment_weight": "updated", "ess_method": "blackjax",
    "frac_tune1": 0.8, "frac_tune2": 0.1, "frac_tune3": 0.1})  # their phase_ratio, always
#: Their ``step_size_init`` (code and config default; the UCI configs set 0.01).
MILE_AUTHORS_STEP_SIZE = 0.005


@dataclasses.dataclass(frozen=True)
class MCLMCConfig(SamplerConfig):
    """Every option of the MCLMC kernel, with smile_ref's defaults; preset :meth:`authors`.

    Attributes
    ----------
    integrator : str
        Splitting scheme of the isokinetic step (``"mclachlan"``: 2 gradients per step).
    L : float, None or "max(sqrt(d), 15)"
        Initial momentum decoherence length; ``None``: ``sqrt(d)``; :data:`L_MILE`: ``max(sqrt(d), 15)``.
    default_step_size : float or None
        Initial step size when the run's ``step_size`` is ``None``; ``None``: ``0.25 sqrt(d)``.
    tuner : {"mclmc", "mile", None} or Tuner
        Robnik et al.'s tuner, MILE's schedule (target Var[dE]/d from 0.5 to 0.1), none (fixed
        ``step_size`` and ``L``; ``step_size`` is then required), or a :class:`~smile_ref.tuners.base.Tuner`.
    tuner_options : dict or None
        Further :func:`~smile_ref.tuners.mclmc_tuner` arguments (with ``"mclmc"`` or ``"mile"``).
    desired_energy_var : float or None
        Target Var[dE]/d of ``tuner="mclmc"``; ``None``: the tuner's default.
    diagonal_preconditioning : bool
        Tune a diagonal preconditioner ``M^{-1/2}`` during warm-up.
    refresh : bool
        Partial momentum refresh (``False``: ``L = inf``, deterministic isokinetic dynamics).
    sqrt_diag : None or (d,) array
        A fixed diagonal preconditioner ``M^{-1/2}`` (strictly positive).
    max_energy_error : float or None
        Reset guardrail ``|dE| > max_energy_error``; ``None``: ``100 max(1, sqrt(d))``.
    esh_form : {"robust", "lean"}
        Arithmetic of the ESH velocity update (:mod:`smile_ref.integrators.esh_lean`; ``"lean"``: 5 instead
        of 13 full-array passes per ``B``, a few ulp apart per step).
    """

    sampler = "mclmc"
    presets = ("authors",)
    _merged = ("tuner_options",)
    _followers = {"tuner": ("tuner_options",)}

    integrator: str = "mclachlan"
    L: Any = None
    default_step_size: Any = None
    tuner: Any = "mclmc"
    tuner_options: Any = None
    desired_energy_var: Any = None
    diagonal_preconditioning: bool = False
    refresh: bool = True
    sqrt_diag: Any = None
    max_energy_error: Any = None
    esh_form: str = "robust"

    @classmethod
    def authors(cls) -> "MCLMCConfig":
        """MILE's warm-up in the SMILE authors' code: ``tuner="mile"`` with :data:`MILE_AUTHORS_TUNER`,
        ``L = max(sqrt(d), 15)`` and initial step size :data:`MILE_AUTHORS_STEP_SIZE`."""
        return cls(tuner="mile", tuner_options=dict(MILE_AUTHORS_TUNER), L=L_MILE,
                   default_step_size=MILE_AUTHORS_STEP_SIZE)

    def resolved_L(self, d: int):
        """The initial ``L`` for dimension ``d`` (``None`` and :data:`L_MILE` computed; a number as given)."""
        if self.L is None:
            return math.sqrt(d)
        if isinstance(self.L, str):
            if self.L != L_MILE:
                raise ValueError(f"L must be a positive number, None or {L_MILE!r}, got {self.L!r}")
            return max(math.sqrt(d), 15.0)
        return self.L
