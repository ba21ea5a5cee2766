"""Driver layer: :func:`run_chains`, checkpoints, run health."""
from .driver import ChainResult, run_chains
from .health import RunHealth, health_from_stats, run_health
from .stats import StepStats

__all__ = ["run_chains", "ChainResult", "RunHealth", "run_health", "health_from_stats", "StepStats"]
