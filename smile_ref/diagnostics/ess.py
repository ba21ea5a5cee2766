"""Effective sample size, split-R-hat, autocorrelation and batch means: the estimators of
:mod:`smile_ref.chainstats.ess`, under their user-facing path ``smile_ref.diagnostics.ess``.

Examples
--------
>>> import numpy as np
>>> from smile_ref.diagnostics.ess import ess
>>> x = np.random.default_rng(0).standard_normal((4, 1000, 2))
>>> bool(np.all(ess(x) > 3000))
True
"""
from ..chainstats.ess import autocorrelation, autocovariance, batch_means_se, ess, mean_and_se, rhat, rhat_and_ess

__all__ = ["ess", "rhat", "rhat_and_ess", "autocorrelation", "autocovariance", "batch_means_se", "mean_and_se"]
