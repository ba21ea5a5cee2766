"""BNN ensembles (Sommer et al. 2026, Sec. 5): deep-ensemble pre-training, one chain per member with any
registered sampler, predictive metrics, local/process/Dask execution with atomic per-member results.

Layer: above :mod:`smile_ref.run` (uses :func:`smile_ref.run_chains`); below :mod:`smile_ref.verification`.
"""
from .adamw import AdamWState, GradientTransformation, adamw, apply_updates
from .config import SAMPLER_DEFAULTS, STEP_SIZE_GRIDS, EnsembleConfig
from .metrics import (accuracy, classification_log_pred_density, classification_metrics, expected_calibration_error,
                      interval_coverage, lppd, mixture_cdf, mixture_quantile, nll, predictive_probs,
                      regression_log_pred_density, regression_metrics, rmse)
from .pipeline import EnsembleResult, run_ensemble
from .predict import ensemble_metrics, member_spread_metrics, predict_params
from .pretrain import PretrainResult, pretrain_ensemble

__all__ = [
    "AdamWState", "GradientTransformation", "adamw", "apply_updates", "EnsembleConfig", "SAMPLER_DEFAULTS",
    "STEP_SIZE_GRIDS", "accuracy", "classification_log_pred_density", "classification_metrics",
    "expected_calibration_error", "interval_coverage", "lppd", "mixture_cdf", "mixture_quantile", "nll",
    "predictive_probs", "regression_log_pred_density", "regression_metrics", "rmse", "EnsembleResult",
    "run_ensemble", "ensemble_metrics", "member_spread_metrics", "predict_params", "PretrainResult", "pretrain_ensemble",
]
