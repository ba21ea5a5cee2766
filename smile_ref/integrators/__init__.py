"""Isokinetic (ESH) integrators: closed-form velocity/position flows, palindromic schemes, refresh.

Layer: imports only :mod:`smile_ref.backend`.
"""
from .coefficients import (
    INTEGRATORS,
    LEAPFROG,
    MCLACHLAN,
    OMELYAN,
    OMELYAN_4GRAD,
    YOSHIDA_3STAGE,
    IntegratorCoefficients,
    get_integrator,
)
from .esh_eager import Direction
from .isokinetic import (ESH_FORMS, IntegratorState, esh_velocity_update, isokinetic_step, isokinetic_step_carry,
                         isokinetic_step_unchecked, position_update, reference_step)
from .metric import DenseMetric, DiagonalMetric, IdentityMetric, Metric, as_metric
from .refresh import full_refresh, partial_refresh, refresh_nu, refresh_with_nu

__all__ = [
    "IntegratorCoefficients",
    "INTEGRATORS",
    "LEAPFROG",
    "MCLACHLAN",
    "YOSHIDA_3STAGE",
    "OMELYAN",
    "OMELYAN_4GRAD",
    "get_integrator",
    "ESH_FORMS",
    "IntegratorState",
    "esh_velocity_update",
    "position_update",
    "isokinetic_step",
    "isokinetic_step_unchecked",
    "isokinetic_step_carry",
    "Direction",
    "reference_step",
    "Metric",
    "IdentityMetric",
    "DiagonalMetric",
    "DenseMetric",
    "as_metric",
    "partial_refresh",
    "full_refresh",
    "refresh_nu",
    "refresh_with_nu",
]
