"""Argument checks of the integrator entry points (shapes of velocities, gradients, preconditioners, columns).

Used only at the public boundary (:func:`~.isokinetic.isokinetic_step`, :func:`~.isokinetic.esh_velocity_update`,
:func:`~.isokinetic.position_update`, :mod:`.refresh`); the unchecked step functions skip them.
"""
from __future__ import annotations

import numbers

from .metric import Metric, check_scale

__all__ = ["check_pair", "check_scale_arg", "column"]


def check_pair(u, g, uname="u", gname="g"):
    """``ValueError`` naming the argument unless ``u`` and ``g`` are arrays of one shape ``(n, d)`` with ``d >= 2``."""
    for a, name in ((u, uname), (g, gname)):
        shape = getattr(a, "shape", None)
        if shape is None or len(shape) != 2:
            raise ValueError(f"{name} must be an array of shape (n, d), got {shape if shape is not None else type(a).__name__}")
    if tuple(u.shape) != tuple(g.shape):
        raise ValueError(f"{uname} and {gname} must have the same shape (n, d), got {tuple(u.shape)} and {tuple(g.shape)}")
    if u.shape[1] < 2:
        raise ValueError(f"{uname} must have d >= 2 columns (the velocity lives on S^(d-1)), got d = {u.shape[1]}")


def check_scale_arg(u, scale):
    """Validate what :func:`~.metric.scale_of` gave: a ``sqrt_diag`` array as before, a metric by its own rule."""
    if scale is None or isinstance(scale, Metric) or getattr(scale, "ndim", None) == 1:
        check_scale(u, scale)
    else:
        check_pair(u, scale, "u", "sqrt_diag")


def column(xp, v, like, name):
    """Python real -> float; array (n,) -> (n, 1) array of ``like``'s dtype."""
    if isinstance(v, numbers.Real) and not hasattr(v, "shape"):
        return float(v)
    shape = tuple(getattr(v, "shape", ()))
    n = like.shape[0]
    if shape == ():
        return xp.astype(xp.reshape(v, (1, 1)), like.dtype)
    if shape != (n,):
        raise ValueError(f"{name} must be a Python float or an array of shape ({n},), got shape {shape}")
    return xp.astype(xp.reshape(v, (n, 1)), like.dtype)
