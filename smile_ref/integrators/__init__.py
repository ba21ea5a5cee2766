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
from .isokinetic import (IntegratorState, esh_velocity_update, isokinetic_step, isokinetic_step_unchecked,
                         position_update, reference_step)
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
    "IntegratorState",
    "esh_velocity_update",
    "position_update",
    "isokinetic_step",
    "isokinetic_step_unchecked",
    "reference_step",
    "partial_refresh",
    "full_refresh",
    "refresh_nu",
    "refresh_with_nu",
]
