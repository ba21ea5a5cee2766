"""Checks of the verification report, one module per group; importing registers them."""
from . import analytical, baselines, ensembles, foundation, integrators, mclmc, smile, vi  # noqa: F401
