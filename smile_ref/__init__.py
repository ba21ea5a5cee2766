"""smile_ref: reference implementation of stochastic-gradient microcanonical Langevin samplers.

Public API (kept stable): :func:`run_chains`, :class:`ChainResult`,
``smile_ref.targets.*``, ``smile_ref.gradients.*``, ``smile_ref.samplers.available()``.
"""
__version__ = "0.1.0"
