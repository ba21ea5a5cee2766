"""smile_ref: reference implementation of stochastic-gradient microcanonical Langevin samplers.

Public API (kept stable): :func:`run_chains`, :class:`ChainResult`,
``smile_ref.targets.*``, ``smile_ref.gradients.*``,
``smile_ref.samplers.available()``.
"""
__version__ = "0.1.0"

from . import backend, diagnostics, gradients, targets  # noqa: E402
from . import samplers  # noqa: E402
from .run import ChainResult, run_chains  # noqa: E402
from .vi import fit_vi  # noqa: E402

__all__ = ["run_chains", "fit_vi", "ChainResult", "targets", "gradients", "samplers", "diagnostics", "backend", "__version__"]
