"""Targets: densities with hand-written, batched log-density and gradient.

Exact-moment benchmarks (``mean``, ``cov``, ``second_moment``, ``second_moment_var``):
:class:`Gaussian` (+ :func:`ill_conditioned_gaussian`, :func:`diagonal_gaussian_condition`),
:class:`Funnel`, :class:`Rosenbrock`, :class:`LinearRegression` (conjugate posterior).
Data targets without closed-form moments: :class:`LogisticRegression`.
User models: :func:`from_callable` (batched NumPy callables, validated on a probe point) and
:func:`from_jax` (a JAX log-density, gradients by ``jax.grad``).
Derivations: ``theory/targets_sympy.py``, ``docs/derivations/targets.md``.
"""
from .base import DataTarget, Target
from .callable import CallableDataTarget, CallableTarget, from_callable, from_jax
from .funnel import Funnel
from .gaussian import Gaussian, diagonal_gaussian_condition, ill_conditioned_gaussian
from .glm import LinearRegression, LogisticRegression
from .mlp import MLP
from .rosenbrock import Rosenbrock

__all__ = [
    "Target",
    "DataTarget",
    "Gaussian",
    "ill_conditioned_gaussian",
    "diagonal_gaussian_condition",
    "Funnel",
    "Rosenbrock",
    "LinearRegression",
    "LogisticRegression",
    "MLP",
    "from_callable",
    "from_jax",
    "CallableTarget",
    "CallableDataTarget",
]
