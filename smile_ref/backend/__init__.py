"""Backend layer: array namespaces, dtype/device policy, random sources, validation.

This is the lowest layer of smile_ref; it imports nothing else from the package.
"""
from .namespace import (
    Backend,
    array_namespace,
    backend_of,
    device_of,
    float_dtype,
    get_backend,
    host_checks_cheap,
    is_cupy_namespace,
    is_numpy_namespace,
    to_numpy,
)
from .random import CupyRandom, HostRandom, RandomSource, make_random
from . import validate

__all__ = [
    "Backend",
    "array_namespace",
    "backend_of",
    "device_of",
    "float_dtype",
    "get_backend",
    "host_checks_cheap",
    "is_cupy_namespace",
    "is_numpy_namespace",
    "to_numpy",
    "RandomSource",
    "HostRandom",
    "CupyRandom",
    "make_random",
    "validate",
]
