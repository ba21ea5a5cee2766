"""Argument validation: clear errors that name the argument and what was expected.

These helpers run at construction time (targets, estimators, samplers) on host
data; they are never called inside a sampler step.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = [
    "check_positive_int",
    "check_nonneg_int",
    "check_positive_float",
    "check_float_in",
    "check_host_matrix",
    "check_host_vector",
    "check_spd",
    "check_choice",
    "check_positions",
    "check_bool",
    "check_int",
    "check_real",
    "check_str",
    "check_real_array",
    "check_optional",
]


def _kind(value: Any) -> str:
    return type(value).__name__


def check_bool(value: Any, name: str) -> bool:
    """``value`` as a ``bool``; only ``True``/``False`` (and NumPy booleans) are accepted.

    Strings such as ``"no"``, numbers and ``None`` raise ``TypeError`` instead of being
    coerced (``bool("no")`` is ``True``).
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r} ({_kind(value)})")


def check_int(value: Any, name: str) -> int:
    """An integer (no bools, floats or strings); returned as ``int``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({_kind(value)})")
    return int(value)


def check_real(value: Any, name: str) -> float:
    """A finite real number (no bools, strings or complex numbers); returned as ``float``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({_kind(value)})")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite real number, got {value}")
    return v


def check_str(value: Any, name: str) -> str:
    """A string (for names and choices)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {value!r} ({_kind(value)})")
    return value


def check_optional(value: Any, check, name: str, *args, **kwargs):
    """``None`` or ``check(value, name, ...)``."""
    return None if value is None else check(value, name, *args, **kwargs)


def check_real_array(a: Any, name: str, ndim: int | None = None, finite: bool = True) -> np.ndarray:
    """Host float64 copy of a real array-like; rejects strings, booleans, complex and object data.

    ``ndim`` fixes the number of dimensions; ``finite`` rejects NaN/inf.
    """
    arr = _host(a, name)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array, got shape {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, found non-finite entries")
    return arr


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_nonneg_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value}")
    return int(value)


def check_positive_float(value: Any, name: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        rng = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be finite and {rng}, got {value}")
    return v


def check_float_in(value: Any, name: str, lo: float, hi: float, lo_open=False, hi_open=False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ValueError(f"{name} must lie in {lb}{lo}, {hi}{rb}, got {value}")
    return v


def _host(a: Any, name: str) -> np.ndarray:
    """Host float64 copy of real numeric data (ints and floats; no bool, complex, str or object)."""
    from .namespace import to_numpy

    if isinstance(a, (str, bytes)) or a is None:
        raise TypeError(f"{name} must be a real numeric array, got {a!r} ({_kind(a)})")
    try:
        arr = to_numpy(a) if not isinstance(a, (list, tuple, numbers.Number)) else np.asarray(a)
    except Exception as exc:  # noqa: BLE001
        raise TypeError(f"{name} must be a real numeric array, got {type(a).__name__}") from exc
    arr = np.asarray(arr)
    if arr.dtype.kind not in "fiu":
        what = {"b": "boolean", "c": "complex", "U": "string", "S": "bytes", "O": "object (ragged or mixed)"}.get(
            arr.dtype.kind, str(arr.dtype))
        raise TypeError(f"{name} must be a real numeric array (integer or floating dtype), got {what} data "
                        f"(dtype {arr.dtype})")
    return arr.astype(np.float64)


def check_host_vector(a: Any, name: str, length: int | None = None) -> np.ndarray:
    arr = _host(a, name)
    if arr.ndim != 1 or (length is not None and arr.shape[0] != length):
        exp = f"({length},)" if length is not None else "(d,)"
        raise ValueError(f"{name} must have shape {exp}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, found non-finite entries")
    return arr


def check_host_matrix(a: Any, name: str, shape: tuple | None = None) -> np.ndarray:
    arr = _host(a, name)
    if arr.ndim != 2 or (shape is not None and any(s is not None and s != t for s, t in zip(shape, arr.shape))):
        exp = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ")" if shape else "(n, m)"
        raise ValueError(f"{name} must have shape {exp}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, found non-finite entries")
    return arr


def check_spd(a: Any, name: str, dim: int | None = None) -> np.ndarray:
    """Symmetric positive-definite ``(d, d)`` matrix (checked by Cholesky)."""
    arr = check_host_matrix(a, name, (dim, dim) if dim is not None else None)
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be square (d, d), got {arr.shape}")
    scale = max(1.0, float(np.max(np.abs(arr))))
    if not np.allclose(arr, arr.T, rtol=1e-10, atol=1e-12 * scale):
        raise ValueError(f"{name} must be symmetric")
    try:
        np.linalg.cholesky(arr)
    except np.linalg.LinAlgError:
        raise ValueError(f"{name} must be positive definite (Cholesky failed)") from None
    return 0.5 * (arr + arr.T)


def check_choice(value: Any, name: str, choices) -> Any:
    try:
        ok = value in choices and not isinstance(value, (np.ndarray, list, dict))
    except TypeError:  # unhashable or incomparable value
        ok = False
    if ok and isinstance(value, (bool, np.bool_)) and not any(isinstance(c, bool) for c in choices):
        ok = False  # True == 1 must not select the choice 1
    if not ok:
        raise ValueError(f"{name} must be one of {sorted(map(repr, choices))}, got {value!r}")
    return value


def check_positions(x: Any, dim: int, name: str = "x"):
    """Check a batched position array of shape ``(n, dim)`` with float dtype."""
    shape = getattr(x, "shape", None)
    if shape is None:
        raise TypeError(f"{name} must be an array of shape (n, {dim}), got {type(x).__name__}")
    if len(shape) != 2 or shape[1] != dim:
        raise ValueError(f"{name} must have shape (n, {dim}), got {tuple(shape)}")
    from .namespace import array_namespace

    xp = array_namespace(x)
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype (float32 or float64), got {x.dtype}")
    return x
