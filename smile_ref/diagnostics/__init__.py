"""Diagnostics: ESS, R-hat, batch-means standard errors, accuracy metrics, test helpers.

Imports only :mod:`smile_ref.backend`, so every other layer may use it.
Array functions are namespace-native (NumPy, CuPy, array_api_strict);
:mod:`.stat_tests` is host-side (NumPy/SciPy) for tests and reports.
"""
from .ess import autocorrelation, autocovariance, batch_means_se, ess, mean_and_se, rhat, rhat_and_ess
from .metrics import BiasMetric, bias_metric, bias_metric_se, gaussian_kl, moment_errors
from .stat_tests import CheckResult, check_close, z_critical, z_tolerance

__all__ = [
    "ess",
    "rhat",
    "rhat_and_ess",
    "autocorrelation",
    "autocovariance",
    "batch_means_se",
    "mean_and_se",
    "moment_errors",
    "bias_metric",
    "bias_metric_se",
    "BiasMetric",
    "gaussian_kl",
    "z_critical",
    "z_tolerance",
    "check_close",
    "CheckResult",
]
