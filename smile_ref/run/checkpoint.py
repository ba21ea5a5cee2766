"""Atomic, pickle-free checkpoints of sampler state and recorded draws.

A checkpoint is one ``.npz`` file (loaded with ``allow_pickle=False``) holding

* every array leaf of the sampler state (nested ``NamedTuple``/``dict``/tuple),
  flattened to ``state/<path>`` keys, plus Python scalars as 0-d arrays;
* the host buffers recorded so far (``samples``, ``info/<key>``);
* a JSON document ``meta`` (configuration, step counter, RNG state), stored as a
  0-d unicode array.

Files are written to a temporary name in the same directory and moved into
place with :func:`os.replace`, so a crash never leaves a half-written file.
State is restored *into a template* (a freshly initialised state of the same
sampler), which fixes every leaf's type, namespace, device and dtype; resuming
on NumPy is bit-identical because float64/float32 round-trip exactly through
``.npz``.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any

import numpy as np

from ..backend import array_namespace, device_of, to_numpy

__all__ = ["flatten_state", "unflatten_state", "atomic_write", "atomic_save_npz", "save_checkpoint", "load_checkpoint"]


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and not isinstance(x, (int, float, bool))


def flatten_state(obj: Any, prefix: str = "state") -> dict[str, np.ndarray]:
    """Flatten a state tree into ``{path: host array}`` (``None`` leaves are skipped)."""
    out: dict[str, np.ndarray] = {}

    def walk(o, path):
        if o is None:
            return
        if _is_array(o):
            out[path] = np.asarray(to_numpy(o))
        elif isinstance(o, tuple) and hasattr(o, "_fields"):
            for f in o._fields:
                walk(getattr(o, f), f"{path}/{f}")
        elif isinstance(o, dict):
            for k in sorted(o):
                walk(o[k], f"{path}/{k}")
        elif isinstance(o, (tuple, list)):
            for i, v in enumerate(o):
                walk(v, f"{path}/{i}")
        elif isinstance(o, (bool, int, float, np.integer, np.floating, np.bool_)):
            out[path] = np.asarray(o)
        elif isinstance(o, str):
            out[path] = np.asarray(o)
        else:
            raise TypeError(f"cannot checkpoint a state leaf of type {type(o).__name__} at {path}")

    walk(obj, prefix)
    return out


def unflatten_state(template: Any, flat: dict, prefix: str = "state") -> Any:
    """Rebuild a state with the structure, types, namespaces and devices of ``template``."""

    def build(t, path):
        if t is None:
            return None
        if _is_array(t):
            if path not in flat:
                raise KeyError(f"checkpoint has no entry {path!r}")
            v = flat[path]
            if isinstance(t, np.ndarray):
                return np.array(v, dtype=t.dtype, copy=True)
            xp = array_namespace(t)
            return xp.asarray(np.ascontiguousarray(v), dtype=t.dtype, device=device_of(t))
        if isinstance(t, tuple) and hasattr(t, "_fields"):
            return type(t)(*[build(getattr(t, f), f"{path}/{f}") for f in t._fields])
        if isinstance(t, dict):
            return {k: build(t[k], f"{path}/{k}") for k in t}
        if isinstance(t, (tuple, list)):
            return type(t)(build(v, f"{path}/{i}") for i, v in enumerate(t))
        if isinstance(t, (bool, np.bool_)):
            return bool(flat[path])
        if isinstance(t, (int, np.integer)):
            return int(flat[path])
        if isinstance(t, (float, np.floating)):
            return float(flat[path])
        if isinstance(t, str):
            return str(flat[path])
        raise TypeError(f"cannot restore a state leaf of type {type(t).__name__} at {path}")

    return build(template, prefix)


def atomic_write(path: str | os.PathLike, write, binary: bool = True) -> None:
    """Call ``write(fh)`` on a temporary file beside ``path``, fsync it and move it into place (``os.replace``)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=directory)
    try:
        with os.fdopen(fd, "wb" if binary else "w") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` to ``path`` atomically (temporary file + ``os.replace``)."""
    atomic_write(path, lambda fh: np.savez(fh, **arrays))


def save_checkpoint(path, state, meta: dict, buffers: dict[str, np.ndarray]) -> None:
    arrays = flatten_state(state)
    arrays.update(buffers)
    arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True))
    atomic_save_npz(path, arrays)


def load_checkpoint(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Return ``(meta, arrays)``; arrays include ``state/...`` and buffer entries."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    return meta, arrays
