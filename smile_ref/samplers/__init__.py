"""Samplers, registered by name for :func:`smile_ref.run_chains`.

``available()`` lists the registered names.
"""
from .base import available, get, register
from . import mclmc  # noqa: F401  (registers "mclmc")

__all__ = ["available", "get", "register"]
