"""Options of ``"smile"`` / ``"psmile"`` as one frozen record, with smile_ref's defaults and the authors' preset.

:class:`SMILEConfig` is the one place where each default of the SMILE kernel is written; its
classmethod :meth:`SMILEConfig.authors` is the one place of the authors' values (``SMILET`` /
``NOISYSMILE`` of ``src/kernels/smile.py`` in Sommer et al.'s code; ``docs/conventions.md`` maps every
field to their code).  ``run_chains("smile", ..., config=SMILEConfig.authors())`` and
``run_chains("smile", ..., preset="authors")`` build the same kernel; keyword options given next to
a config (or a preset) override its fields, ``tuner_options`` and ``preconditioner_options`` key by
key.

Examples
--------
>>> cfg = SMILEConfig.authors(preconditioned=True)
>>> cfg.tuner, cfg.energy_error, cfg.first_b_preconditioner
('energy_error', 'cross_batch', 'previous')
>>> cfg2 = cfg.with_options(tuner_options={"reset_prob": 0.98})
>>> cfg2.tuner_options["reset_prob"], cfg2.tuner_options["alpha"]
(0.98, 0.05)
>>> SMILEConfig().tuner, SMILEConfig().nonfinite_gradient
('mclmc', 'reject')
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

from ..backend.validate import check_choice
from .config import SamplerConfig

__all__ = ["SMILEConfig", "DEFAULT_TUNER", "AUTHORS_PRESETS", "apply_preset"]

#: Default ``tuner`` of ``"smile"``/``"psmile"``: the Var[dE]/d tuner.  The authors' Gamma tuner,
#: ``"energy_error"``, collapses to the step-size floor on exact gradients and same-batch energy
#: errors (``docs/smile-defaults.md``).
DEFAULT_TUNER = "mclmc"

_AUTHORS_SMILE = MappingProxyType({
    "tuner": "energy_error",
    "tuner_options": MappingProxyType({"reset_prob": 0.99, "alpha": 0.05, "strength": 0.02, "smoothing": 0.01,
                                       "freeze_steps": 10, "step_size_bounds": (1e-8, 10.0),
                                       "winsorize_rejected": False}),
    "integrator": "mclachlan",
    "energy_error": "cross_batch",
    "reset_keeps_rejected_gradient": True,
    "adapt_during_sampling": True,
    "refresh": False,
    "gradient_clip": 1e6,
    "initial_state": "zero",
    "warmup_boundary_reset": True,
    "nonfinite_gradient": "zero_and_clip",
    "nonfinite_backoff": False,
})
_AUTHORS_PSMILE = MappingProxyType(dict(
    _AUTHORS_SMILE,
    preconditioner="diag",
    preconditioner_options=MappingProxyType({"decay": 0.99, "var_floor": 1e-7, "clip": (1e-2, 1e4),
                                             "init_mean": 1.0, "init_std": 1.0, "carry_mean": False,
                                             "floor_stored_var": True}),
    freeze_preconditioner=False,
    first_b_preconditioner="previous",
))
AUTHORS_PRESETS = MappingProxyType({"smile": _AUTHORS_SMILE, "psmile": _AUTHORS_PSMILE})
"""Option values of ``preset="authors"`` per sampler (read-only).

``"smile"`` reproduces the authors' ``SMILET`` (and, with ``tuner=None``, ``SMILE``/SMILE-naive);
``"psmile"`` their ``NOISYSMILE`` (with ``tuner=None``: pSMILE-naive, which their configs express as
``reset_prob=1, adaption_prob=0``).  The tuner is pinned (``"energy_error"`` with the code defaults
``reset_prob=0.99``, ``alpha=0.05`` -- the UCI configs use 0.98 / 0.1: pass them as ``tuner_options``).
Pair the preset with ``MiniBatch(target, b, scale="floor", schedule="authors")`` for the authors'
mini-batch log posterior and batch schedule (the gradient estimator is not a sampler option).
"""

_DICT_OPTIONS = ("tuner_options", "preconditioner_options")


def apply_preset(name: str, preset, options: dict) -> dict:
    """Options of sampler ``name`` (``"smile"``/``"psmile"``) with ``preset`` applied under ``options``.

    Explicit options win.  ``tuner_options`` and ``preconditioner_options`` are merged key by key
    (explicit keys win); an explicit ``tuner`` other than ``"energy_error"`` drops the preset's
    ``tuner_options`` (they are the energy-error tuner's), and an explicit ``preconditioner="dense"``
    drops its ``preconditioner_options`` and ``first_b_preconditioner``.  An explicit option that
    contradicts the preset is therefore honoured and the run is no longer the authors' algorithm; the
    sampler's own checks still apply to the combination (e.g. a ``Var[dE]/d`` tuner needs
    ``energy_error="same_batch"``, which must then be given explicitly too).

    Examples
    --------
    >>> opts = apply_preset("smile", "authors", {"tuner_options": {"reset_prob": 0.98}})
    >>> opts["energy_error"], opts["tuner_options"]["reset_prob"], opts["tuner_options"]["alpha"]
    ('cross_batch', 0.98, 0.05)
    """
    options = dict(options)
    if preset is None:
        return options
    check_choice(preset, "preset", ("authors",))
    merged = {k: (dict(v) if isinstance(v, MappingProxyType) else v) for k, v in AUTHORS_PRESETS[name].items()}
    if "tuner" in options and options["tuner"] != "energy_error":
        merged.pop("tuner_options", None)
    if options.get("preconditioner", "diag") != "diag":
        merged.pop("preconditioner_options", None)
        merged.pop("first_b_preconditioner", None)
    for key in _DICT_OPTIONS:
        if key in merged and options.get(key) is not None:
            options[key] = {**merged[key], **dict(options[key])}
    merged.update(options)
    return merged


@dataclasses.dataclass(frozen=True)
class SMILEConfig(SamplerConfig):
    """Every option of the SMILE / pSMILE kernel, with smile_ref's defaults.

    ``with_options`` and ``as_options`` are :class:`~smile_ref.samplers.config.SamplerConfig`'s: a new
    ``tuner`` drops ``tuner_options``, a new ``preconditioner`` its ``preconditioner_options`` and
    ``first_b_preconditioner`` (as :func:`apply_preset` does), and the two dict options merge key by key.

    The meaning of each field is in :mod:`smile_ref.samplers.smile` (numbered step list); the
    values are validated when the kernel is built (the error names the field).

    Attributes
    ----------
    integrator : str
        Splitting scheme of the isokinetic step (``"mclachlan"``: ``B A B A B``, 2 gradients).
    tuner : {"mclmc", "energy_error", None} or Tuner
        Step-size tuner: the Var[dE]/d tuner (default), the authors' Gamma energy-error tuner, none
        (fixed step size, "naive"), or a :class:`~smile_ref.tuners.base.Tuner`.
    tuner_options : dict or None
        Keyword arguments of the tuner's constructor.
    adapt_during_sampling : bool
        Keep adapting after warm-up (the Gamma tuner; the Var[dE]/d tuner holds its step size).
    refresh : bool or None
        MCLMC's partial refresh; ``None``: on for exact gradients with ``tuner="mclmc"`` only.
    L : float or None
        Momentum decoherence length of the refresh (default ``sqrt(d)`` when automatic).
    energy_error : {"same_batch", "cross_batch"}
        Both log-densities of ``dE`` on the step's batch, or the authors' ``l_old`` of the previous batch.
    reset_keeps_rejected_gradient : bool
        Authors: a rejected step keeps the rejected position's stored gradient and log-density.
    gradient_clip : float
        Entries of every gradient are clipped to ``+-gradient_clip``.
    max_energy_error : float or None
        Reset guardrail ``|dE| > max_energy_error``; ``None``: ``100 max(1, sqrt(d))`` for an adaptive tuner
        without its own reset rule, none otherwise.
    preconditioner : {"diag", "dense"}
        pSMILE's preconditioner: ``S = diag(1/sigma_tilde)`` or ``S = c C^{-1/2}`` (smile_ref extension).
    preconditioner_options : dict or None
        Keyword arguments of the preconditioner's constructor.
    freeze_preconditioner : bool
        Stop updating the preconditioner after warm-up.
    initial_state : {"evaluate", "zero"}
        Evaluate the gradient at ``init``, or the authors' zero stored gradient and log-density.
    warmup_boundary_reset : bool
        Authors: zero velocity, stored gradient and log-density at the first sampling step.
    first_b_preconditioner : {"current", "previous"}
        Authors (pSMILE): the first ``B`` sees the stored gradient scaled by the previous step's ``S``.
    nonfinite_gradient : {"reject", "zero_and_clip"}
        Reject a step with a non-finite gradient entry, or the authors' NaN -> 0 and clip.
    nonfinite_backoff : bool
        Halve the next step's step size after a non-finite step (per chain).
    esh_form : {"robust", "lean"}
        Arithmetic of the ESH velocity update (:mod:`smile_ref.integrators.esh_lean`): ``"robust"``
        (max-scaled direction, two renormalisations; the reference rounding) or ``"lean"`` (the same
        update in 5 instead of 13 full-array passes per ``B``, a few ulp apart per step).
    """

    sampler = "smile'/'psmile"
    _merged = _DICT_OPTIONS
    _followers = {"tuner": ("tuner_options",), "preconditioner": ("preconditioner_options", "first_b_preconditioner")}

    integrator: str = "mclachlan"
    tuner: Any = DEFAULT_TUNER
    tuner_options: Any = None
    adapt_during_sampling: bool = True
    refresh: Any = None
    L: Any = None
    energy_error: str = "same_batch"
    reset_keeps_rejected_gradient: bool = False
    gradient_clip: float = 1e6
    max_energy_error: Any = None
    preconditioner: str = "diag"
    preconditioner_options: Any = None
    freeze_preconditioner: bool = False
    initial_state: str = "evaluate"
    warmup_boundary_reset: bool = False
    first_b_preconditioner: str = "current"
    nonfinite_gradient: str = "reject"
    nonfinite_backoff: bool = True
    esh_form: str = "robust"

    @classmethod
    def authors(cls, preconditioned: bool = False) -> "SMILEConfig":
        """The authors' ``SMILET`` (``preconditioned=False``) or ``NOISYSMILE`` (``True``): :data:`AUTHORS_PRESETS`."""
        if not isinstance(preconditioned, bool):
            raise TypeError(f"preconditioned must be a bool, got {preconditioned!r}")
        return cls.from_options(apply_preset("psmile" if preconditioned else "smile", "authors", {}))

    @classmethod
    def from_options(cls, options: dict) -> "SMILEConfig":
        """A config from keyword options; an unknown name raises ``TypeError`` naming it."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown} of 'smile'/'psmile'; the options are {sorted(names)}")
        return cls(**options)
