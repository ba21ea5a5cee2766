"""Tuners: ``init``/``update`` pairs that adapt step size, L and the diagonal preconditioner."""
from .base import *  # noqa: F401,F403
from .base import __all__ as _base_all
from .mclmc import MCLMCTunerState, mclmc_tuner

__all__ = list(_base_all) + ["mclmc_tuner", "MCLMCTunerState"]
