"""Driver layer: :func:`run_chains`, checkpoints."""
from .driver import ChainResult, run_chains

__all__ = ["run_chains", "ChainResult"]
