"""Samplers, registered by name for :func:`smile_ref.run_chains`.

``available()`` lists the registered names.
"""
from .base import available, get, register
from . import mclmc  # noqa: F401  (registers "mclmc")
from . import smile  # noqa: F401  (registers "smile", "psmile")
from . import sgld  # noqa: F401  (registers "sgld")
from . import psgld  # noqa: F401  (registers "psgld")
from . import sghmc  # noqa: F401  (registers "sghmc")
from . import constant_sgd  # noqa: F401  (registers "constant_sgd")
from . import bnp_sgld  # noqa: F401  (registers "bnp_sgld")
from . import sghmc_adaptive  # noqa: F401  (registers "sghmc_adaptive")

__all__ = ["available", "get", "register"]
