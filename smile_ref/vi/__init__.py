"""Variational inference: proximal score-matching VI (our formulation of Kim 2026) and the ADVI, GSM, BaM baselines.

* :func:`fit_vi` / :class:`VIResult`: the entry point (methods ``"score_vi"``, ``"advi"``, ``"gsm"``, ``"bam"``).
* :class:`DiagGaussian`, :class:`FullGaussian`, :class:`SinhArcsinh` (mean-field, non-Gaussian), :class:`SinhArcsinhFlow` (stacked layers with fixed rotations): families with hand-written ``log_prob`` and ``score``.
"""
from .families import DiagGaussian, FullGaussian
from .sinh_arcsinh import SinhArcsinh
from .flow import SinhArcsinhFlow
from .fit import FAMILIES, METHODS, VIResult, fit_vi

__all__ = ["fit_vi", "VIResult", "METHODS", "FAMILIES", "DiagGaussian", "FullGaussian", "SinhArcsinh", "SinhArcsinhFlow"]
