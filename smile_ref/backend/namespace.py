"""Array namespace resolution, dtype policy and host transfer.

Every numerical function in smile_ref resolves the namespace of its inputs once
(``xp = array_namespace(x)``) and returns arrays of that namespace, dtype and
device.  NumPy, CuPy and ``array_api_strict`` are supported; NumPy is wrapped by
``array_api_compat`` so that the standard names (``xp.concat``, ``xp.vecdot``,
``xp.linalg.vector_norm``...) are available on every backend.

Dtype policy: float64 is the reference precision; float32 is supported and
preserved (outputs keep the dtype of the position array).  Integer or boolean
positions are rejected by :func:`float_dtype`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import array_api_compat
from array_api_compat import array_namespace as _compat_namespace
from array_api_compat import device as _device
from array_api_compat import is_numpy_namespace, is_cupy_namespace

__all__ = [
    "array_namespace",
    "Backend",
    "backend_of",
    "get_backend",
    "to_numpy",
    "float_dtype",
    "device_of",
    "is_numpy_namespace",
    "is_cupy_namespace",
    "host_checks_cheap",
    "eager_max",
    "eager_min",
    "eager_any",
    "eager_all",
]


def array_namespace(*arrays: Any):
    """Return the Array-API namespace of ``arrays`` (compat-wrapped for NumPy/CuPy)."""
    return _compat_namespace(*arrays)


_EAGER: dict = {}


def host_checks_cheap(xp) -> bool:
    """True for the eager CPU namespaces (NumPy, ``array_api_strict``).

    There a Python branch on a value computed from an array (``bool(xp.any(mask))`` over ``(n,)``,
    a ``float`` of an ``(n, 1)`` column's minimum) costs one small host read, so hot paths may take
    a shortcut when, e.g., no chain was rejected.  Every other namespace (CuPy, lazy or
    JIT-traced ones) gets the branch-free code, which gives the same results.
    """
    key = id(xp)
    hit = _EAGER.get(key)
    if hit is None:
        from array_api_compat import is_array_api_strict_namespace

        hit = _EAGER[key] = bool(is_numpy_namespace(xp) or is_array_api_strict_namespace(xp))
    return hit


# Reductions for the eager fast paths: on NumPy arrays ``ufunc.reduce`` directly (the same C loop as
# ``np.max`` & co., without their Python wrappers); any other array goes through ``xp``.
def eager_max(xp, a, axis=None, keepdims=False):
    """``xp.max(a, axis=axis, keepdims=keepdims)`` (NaN propagates)."""
    if isinstance(a, np.ndarray):
        return np.maximum.reduce(a, axis=axis, keepdims=keepdims)
    return xp.max(a, axis=axis, keepdims=keepdims)


def eager_min(xp, a, axis=None, keepdims=False):
    """``xp.min(a, axis=axis, keepdims=keepdims)`` (NaN propagates)."""
    if isinstance(a, np.ndarray):
        return np.minimum.reduce(a, axis=axis, keepdims=keepdims)
    return xp.min(a, axis=axis, keepdims=keepdims)


def eager_any(xp, a) -> bool:
    """``bool(xp.any(a))`` (a host read)."""
    if isinstance(a, np.ndarray):
        return bool(np.logical_or.reduce(a, axis=None))
    return bool(xp.any(a))


def eager_all(xp, a) -> bool:
    """``bool(xp.all(a))`` (a host read)."""
    if isinstance(a, np.ndarray):
        return bool(np.logical_and.reduce(a, axis=None))
    return bool(xp.all(a))


def device_of(x: Any):
    """Device of array ``x`` (``"cpu"`` for NumPy)."""
    return _device(x)


def float_dtype(xp, x: Any, name: str = "x"):
    """Return the floating dtype of ``x`` or raise ``TypeError`` naming ``name``."""
    if not xp.isdtype(x.dtype, "real floating"):
        raise TypeError(f"{name} must have a real floating dtype (float32 or float64), got {x.dtype}")
    return x.dtype


def to_numpy(x: Any) -> np.ndarray:
    """Copy an array of any supported namespace to a host NumPy array.

    This is the single place where data leaves the device: the driver calls it
    once per recorded block, never inside a sampler step.
    """
    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    if type(x).__module__.startswith("array_api_strict"):
        import array_api_strict as aas

        if _device(x) != aas.Device("CPU_DEVICE"):
            x = aas.asarray(x, device=aas.Device("CPU_DEVICE"), copy=True)
        return np.asarray(x)
    return np.asarray(x)


@dataclass(frozen=True)
class Backend:
    """A captured (namespace, device, dtype) triple.

    ``Backend`` is resolved once when a sampler is built and used to create every
    new array, so that nothing silently falls back to NumPy or to the default
    device.
    """

    xp: Any
    device: Any
    dtype: Any

    @property
    def name(self) -> str:
        if is_numpy_namespace(self.xp):
            return "numpy"
        if is_cupy_namespace(self.xp):
            return "cupy"
        return getattr(self.xp, "__name__", str(self.xp))

    @property
    def is_numpy(self) -> bool:
        return is_numpy_namespace(self.xp)

    def asarray(self, a: Any, dtype: Any = None):
        """Move host data ``a`` to this backend (float dtype unless ``dtype`` given)."""
        if dtype is None:
            dtype = self.dtype
        if self.is_numpy and type(a) is np.ndarray and a.dtype == dtype:
            return a  # what xp.asarray returns here, without the compat wrapper's cost
        if isinstance(a, np.ndarray) and not self.is_numpy and not is_cupy_namespace(self.xp):
            # array_api_strict: build from a list-free buffer on the CPU device then move
            a = np.ascontiguousarray(a)
        return self.xp.asarray(a, dtype=dtype, device=self.device)

    def zeros(self, shape, dtype: Any = None):
        return self.xp.zeros(shape, dtype=self.dtype if dtype is None else dtype, device=self.device)

    def ones(self, shape, dtype: Any = None):
        return self.xp.ones(shape, dtype=self.dtype if dtype is None else dtype, device=self.device)

    def full(self, shape, value, dtype: Any = None):
        return self.xp.full(shape, value, dtype=self.dtype if dtype is None else dtype, device=self.device)

    @property
    def itemsize(self) -> int:
        return 4 if self.dtype == self.xp.float32 else 8

    @property
    def eps(self) -> float:
        return float(self.xp.finfo(self.dtype).eps)


def backend_of(x: Any) -> Backend:
    """The :class:`Backend` of array ``x`` (its namespace, device and dtype)."""
    xp = array_namespace(x)
    return Backend(xp, _device(x), x.dtype)


def get_backend(name: str = "numpy", dtype: str = "float64", device: Any = None) -> Backend:
    """Build a :class:`Backend` from names.

    Parameters
    ----------
    name : {"numpy", "array_api_strict", "cupy"}
        Array library.
    dtype : {"float64", "float32"}
        Floating dtype of positions.
    device : optional
        Device object or name understood by the library (``"device1"`` for
        array_api_strict's non-default device).
    """
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    if name == "numpy":
        import array_api_compat.numpy as xp

        dev = "cpu"
    elif name in ("array_api_strict", "strict"):
        import array_api_strict as xp

        dev = xp.Device(device) if isinstance(device, str) else (device or xp.Device("CPU_DEVICE"))
    elif name == "cupy":
        try:
            import array_api_compat.cupy as xp
            import cupy
        except ImportError as exc:  # pragma: no cover - GPU only
            raise ImportError("backend 'cupy' needs the 'gpu' extra (pip install smile_ref[gpu])") from exc
        dev = cupy.cuda.Device(device if device is not None else 0)
    else:
        raise ValueError(f"backend must be one of 'numpy', 'array_api_strict', 'cupy'; got {name!r}")
    return Backend(xp, dev, getattr(xp, dtype))
