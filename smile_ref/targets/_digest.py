"""Content hashes of host arrays for ``describe()`` (golden files, reports, checkpoints)."""
from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["array_digest"]


def array_digest(*arrays: np.ndarray) -> str:
    """SHA-256 (hex) of the shapes and little-endian float64 bytes of ``arrays``.

    Independent of the platform byte order and of the input dtype (values are
    converted to float64 first), so the same data always gives the same digest.
    """
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a, dtype=np.float64), dtype="<f8")
        h.update(repr(tuple(a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()
