"""Statistics primitives on arrays of any Array API namespace: ESS, split-R-hat, autocovariances,
batch-means standard errors, and the rank/normal-quantile helpers they use.

A low layer (it imports only :mod:`smile_ref.backend`) so that the MCLMC tuner and the run-health
summary can use the same estimators as the user-facing :mod:`smile_ref.diagnostics`, which
re-exports them.
"""
from .ess import autocorrelation, autocovariance, batch_means_se, ess, mean_and_se, rhat, rhat_and_ess

__all__ = ["ess", "rhat", "rhat_and_ess", "autocorrelation", "autocovariance", "batch_means_se", "mean_and_se"]
