"""Shared fixtures: the backend matrix and the Hypothesis CI profile.

Backends (each a ``smile_ref.backend.Backend``):

* ``numpy-f64``, ``numpy-f32``
* ``strict-f64`` (array_api_strict, CPU device) and ``strict-device1-f32``
  (array_api_strict on its non-default device: the CPU stand-in for CuPy's
  "no implicit host transfer" rule)
* ``cupy-f64``, ``cupy-f32``: marked ``gpu``; skipped cleanly without CuPy or
  without a CUDA device.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("SMILE_REF_HYPOTHESIS_PROFILE", "ci"))


def _cupy_available() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - any import/driver failure means "no GPU"
        return False


_GPU = _cupy_available()
_gpu_skip = pytest.mark.skipif(not _GPU, reason="CuPy with a CUDA device is not available")

BACKEND_PARAMS = [
    pytest.param(("numpy", "float64", None), id="numpy-f64"),
    pytest.param(("numpy", "float32", None), id="numpy-f32"),
    pytest.param(("array_api_strict", "float64", None), id="strict-f64"),
    pytest.param(("array_api_strict", "float32", "device1"), id="strict-device1-f32"),
    pytest.param(("cupy", "float64", None), id="cupy-f64", marks=[pytest.mark.gpu, _gpu_skip]),
    pytest.param(("cupy", "float32", None), id="cupy-f32", marks=[pytest.mark.gpu, _gpu_skip]),
]


@pytest.fixture(params=BACKEND_PARAMS)
def backend(request):
    """A ``Backend`` from the matrix above."""
    from smile_ref.backend import get_backend

    name, dtype, device = request.param
    return get_backend(name, dtype, device)


def assert_backend(arr, backend, shape=None):
    """Assert ``arr`` has the namespace, dtype and device of ``backend`` (and ``shape``)."""
    from smile_ref.backend import array_namespace, device_of

    xp = array_namespace(arr)
    assert xp.__name__ == backend.xp.__name__, f"namespace {xp.__name__} != {backend.xp.__name__}"
    assert arr.dtype == backend.dtype, f"dtype {arr.dtype} != {backend.dtype}"
    assert str(device_of(arr)) == str(backend.device), f"device {device_of(arr)} != {backend.device}"
    if shape is not None:
        assert tuple(arr.shape) == tuple(shape), f"shape {arr.shape} != {shape}"


def tol_for(backend, f64=1e-10, f32=1e-4):
    """Relative tolerance for deterministic comparisons on ``backend``'s dtype."""
    return f32 if backend.dtype == backend.xp.float32 else f64


@pytest.fixture
def rng():
    return np.random.default_rng(20261123)
