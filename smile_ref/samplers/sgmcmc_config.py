"""Option records of the stochastic-gradient samplers: SGLD, pSGLD, SGHMC, adaptive SGHMC, BNP-SGLD, constant SGD.

Each class is the one place where its sampler's defaults are written (the kernels take the record,
or keyword options resolved into it by :meth:`~smile_ref.samplers.config.SamplerConfig.resolve`);
the meaning of each field, with equations and references, is in the sampler's module.  The
authors' presets of SGHMC and adaptive SGHMC (the SMILE authors' ``src/kernels/sghmc.py`` and
``adasghmc.py``) are the classmethods :meth:`SGHMCConfig.authors` and :meth:`AdaSGHMCConfig.authors`.

Examples
--------
>>> AdaSGHMCConfig.authors().moment_gradient, AdaSGHMCConfig().moment_gradient
('previous', 'current')
>>> SGLDConfig().with_options(variant="msgld", noise_correction=0.5).variant
'msgld'
"""
from __future__ import annotations

import dataclasses
from types import MappingProxyType
from typing import Any

from .config import SamplerConfig

__all__ = ["SGLDConfig", "PSGLDConfig", "SGHMCConfig", "AdaSGHMCConfig", "ConstantSGDConfig", "BNPSGLDConfig",
           "SGHMC_BETA_HAT_FROM_STEP", "AUTHORS_SGHMC", "AUTHORS_ADASGHMC"]

#: ``SGHMCConfig.beta_hat`` value meaning ``beta_hat = step_size / 2`` (resolved when the kernel is built).
SGHMC_BETA_HAT_FROM_STEP = "step_size/2"

#: The SMILE authors' plain SGHMC: ``beta_hat = eps^2/2 = step_size/2``, momentum from 0, NaN -> 0 and clip.
AUTHORS_SGHMC = MappingProxyType({"beta_hat": SGHMC_BETA_HAT_FROM_STEP, "initial_velocity": "zero",
                                  "gradient_clip": 1e6})
#: The SMILE authors' AdaSGHMC: moments updated with the previous gradient, NaN -> 0 and clip.
AUTHORS_ADASGHMC = MappingProxyType({"moment_gradient": "previous", "gradient_clip": 1e6})


@dataclasses.dataclass(frozen=True)
class SGLDConfig(SamplerConfig):
    """Options of ``"sgld"`` (:mod:`smile_ref.samplers.sgld`).

    Attributes
    ----------
    schedule : "constant" or ("polynomial", a, b, gamma)
        Step sizes ``h_t``; polynomial ``h_t = a (b + t)^{-gamma}`` with ``h_0 = step_size``.
    noise_correction : None, float, (d,) or (d, d) array
        Covariance ``C`` of the gradient estimate: inject ``N(0, 2 h I - h^2 C)``.
    variant : {"sgld", "msgld"}
        Plain (noise-corrected) SGLD or Vollmer, Zygalakis & Teh's modified SGLD (needs ``C``).
    """

    sampler = "sgld"

    schedule: Any = "constant"
    noise_correction: Any = None
    variant: str = "sgld"


@dataclasses.dataclass(frozen=True)
class PSGLDConfig(SamplerConfig):
    """Options of ``"psgld"`` (:mod:`smile_ref.samplers.psgld`).

    Attributes
    ----------
    alpha : float in (0, 1)
        Decay of the RMSprop average ``V <- alpha V + (1 - alpha) g^2`` (Li et al. 2016).
    lam : float > 0
        Damping ``lambda`` of ``G = 1 / (lambda + sqrt(V))``.
    schedule : "constant" or ("polynomial", a, b, gamma)
        Step sizes, as for SGLD.
    gamma_correction : bool
        Add the drift ``h Gamma(theta)`` of the state-dependent preconditioner.
    preconditioner : None or callable
        ``theta (n, d) -> G (n, d)``: a state-dependent diagonal preconditioner instead of RMSprop.
    divergence : None or callable
        ``theta (n, d) -> Gamma (n, d)``, ``Gamma_i = dG_i/dtheta_i`` (with ``gamma_correction``).
    """

    sampler = "psgld"

    alpha: float = 0.99
    lam: float = 1e-5
    schedule: Any = "constant"
    gamma_correction: bool = False
    preconditioner: Any = None
    divergence: Any = None


@dataclasses.dataclass(frozen=True)
class SGHMCConfig(SamplerConfig):
    """Options of ``"sghmc"`` (:mod:`smile_ref.samplers.sghmc`); preset :meth:`authors`.

    Attributes
    ----------
    alpha : float in (0, 1]
        Friction (Chen, Fox & Guestrin 2014, Eq. 15).
    beta_hat : float in [0, alpha] or "step_size/2"
        Estimate of the gradient-noise term; ``"step_size/2"`` (:data:`SGHMC_BETA_HAT_FROM_STEP`) means
        ``step_size / 2``, computed when the kernel is built (the authors' ``eps^2 / 2``).
    initial_velocity : {"sample", "zero"}
        ``v ~ N(0, eta I)`` or the authors' ``v = 0``.
    gradient_clip : float or None
        With a value: NaN gradient entries set to 0, the rest clipped, the step kept.
    """

    sampler = "sghmc"
    presets = ("authors",)

    alpha: float = 0.01
    beta_hat: Any = 0.0
    initial_velocity: str = "sample"
    gradient_clip: Any = None

    @classmethod
    def authors(cls) -> "SGHMCConfig":
        """The SMILE authors' plain SGHMC: :data:`AUTHORS_SGHMC` (pass ``step_size = eps**2``, ``alpha = mdecay``)."""
        return cls(**AUTHORS_SGHMC)


@dataclasses.dataclass(frozen=True)
class AdaSGHMCConfig(SamplerConfig):
    """Options of ``"sghmc_adaptive"`` (:mod:`smile_ref.samplers.sghmc_adaptive`); preset :meth:`authors`.

    Attributes
    ----------
    alpha : float in (0, 1]
        Friction (the authors' ``mdecay``).
    moment_gradient : {"current", "previous"}
        Gradient of the warm-up moment update: the step's own, or the previous step's (the authors').
    gradient_clip : float or None
        With a value: NaN gradient entries set to 0, the rest clipped, the step kept.
    """

    sampler = "sghmc_adaptive"
    presets = ("authors",)

    alpha: float = 0.05
    moment_gradient: str = "current"
    gradient_clip: Any = None

    @classmethod
    def authors(cls) -> "AdaSGHMCConfig":
        """The SMILE authors' AdaSGHMC: :data:`AUTHORS_ADASGHMC` (pass ``step_size = eps**2``, ``alpha = mdecay``)."""
        return cls(**AUTHORS_ADASGHMC)


@dataclasses.dataclass(frozen=True)
class ConstantSGDConfig(SamplerConfig):
    """Options of ``"constant_sgd"`` (:mod:`smile_ref.samplers.constant_sgd`).

    Attributes
    ----------
    learning_rate : float or None
        ``eps`` of ``theta' = theta - eps H grad L_S``; ``None``: the run's ``step_size``.
    preconditioner : None, float, (d,) or (d, d) array
        ``H`` (``None``: the identity).
    momentum : float in [0, 1)
        Heavy-ball momentum ``mu``.
    iasg : bool
        Iterate averaging over windows of ``window`` steps (Mandt, Hoffman & Blei 2017, Sec. 4).
    window : int or None
        Steps per window; ``None``: ``round(N / S)`` from the gradient's ``batch_size``.
    n_data : int or None
        ``N`` of ``L = -log p / N``; ``None``: the target's ``n_data``.
    """

    sampler = "constant_sgd"

    learning_rate: Any = None
    preconditioner: Any = None
    momentum: float = 0.0
    iasg: bool = False
    window: Any = None
    n_data: Any = None


@dataclasses.dataclass(frozen=True)
class BNPSGLDConfig(SamplerConfig):
    """Options of ``"bnp_sgld"`` (:mod:`smile_ref.samplers.bnp_sgld`).

    Attributes
    ----------
    rho : float in [0, 1)
        Decay of the running gradient statistics.
    eps1, eps2 : float
        Damping of the layer-wise preconditioner (``eps1 >= 0``, ``eps2 > 0``).
    schedule : "constant" or ("polynomial", a, b, gamma)
        Step sizes, as for SGLD.
    bias_column : "auto", int or None
        Column of a GLM's design matrix holding the intercept.
    frozen_statistics : bool or list
        ``False``: running statistics; ``True``: computed once at ``init`` from all examples; a list of
        one ``(mu, sigma2)`` pair of host vectors per layer.
    """

    sampler = "bnp_sgld"

    rho: float = 0.99
    eps1: float = 1e-2
    eps2: float = 1e-4
    schedule: Any = "constant"
    bias_column: Any = "auto"
    frozen_statistics: Any = False
