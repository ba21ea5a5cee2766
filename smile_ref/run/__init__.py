"""Driver layer: :func:`run_chains`, checkpoints, run health."""
from .driver import ChainResult, run_chains
from .health import RunHealth, run_health

__all__ = ["run_chains", "ChainResult", "RunHealth", "run_health"]
