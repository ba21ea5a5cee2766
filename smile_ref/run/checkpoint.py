"""Atomic, pickle-free checkpoints of sampler state and recorded draws.

A checkpoint is one ``.npz`` file (loaded with ``allow_pickle=False``) holding

* every array leaf of the sampler state (nested ``NamedTuple``/``dict``/tuple),
  flattened to ``state/<path>`` keys, plus Python scalars as 0-d arrays; fields a
  ``NamedTuple`` lists in its class attribute ``_transient`` (caches the sampler
  recomputes bit-identically when they are ``None``) are not stored and restore as ``None``;
* the host buffers recorded so far (``samples``, ``info/<key>``);
* a JSON document ``meta`` (configuration, identity digests, step counter, RNG
  state), stored as a 0-d unicode array;
* ``checksums``: a JSON ``{key: CRC-32}`` of every other entry, verified on load,
  so that arrays which do not belong to the ``meta`` they were saved with are
  detected (the zip container's own CRC catches random corruption).

Files are written through :func:`smile_ref.io.atomic_save_npz` (temporary name in
the same directory, fsync, :func:`os.replace`), so a crash never leaves a
half-written file.  :func:`load_checkpoint` raises
:class:`~smile_ref.errors.CorruptFileError` naming the file for anything that is
not an intact checkpoint.
State is restored *into a template* (a freshly initialised state of the same
sampler), which fixes every leaf's type, namespace, device and dtype; resuming
on NumPy is bit-identical because float64/float32 round-trip exactly through
``.npz``.
"""
from __future__ import annotations

import json
import os
import zlib
from typing import Any

import numpy as np

from ..backend import array_namespace, device_of, to_numpy
from ..errors import CorruptFileError
from ..io import atomic_save_npz, atomic_write, read_npz

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
            transient = getattr(type(o), "_transient", ())  # caches recomputed bit-identically: not stored
            for f in o._fields:
                if f not in transient:
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
            if np.ndim(v) != len(t.shape):
                raise ValueError(f"checkpoint entry {path!r} has {np.ndim(v)} dimensions, the sampler state has "
                                 f"{len(t.shape)}")
            if isinstance(t, np.ndarray):
                return np.array(v, dtype=t.dtype, copy=True)
            xp = array_namespace(t)
            return xp.asarray(np.ascontiguousarray(v), dtype=t.dtype, device=device_of(t))
        if isinstance(t, tuple) and hasattr(t, "_fields"):
            transient = getattr(type(t), "_transient", ())
            return type(t)(*[None if f in transient else build(getattr(t, f), f"{path}/{f}") for f in t._fields])
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


def _crc(a: np.ndarray) -> int:
    """CRC-32 of the raw bytes of ``a`` (no copy for contiguous numeric arrays)."""
    if a.ndim == 0 or a.dtype.kind in "USOV" or a.size == 0:
        return zlib.crc32(a.tobytes())
    return zlib.crc32(np.ascontiguousarray(a).reshape(-1).view(np.uint8))


def save_checkpoint(path, state, meta: dict, buffers: dict[str, np.ndarray]) -> None:
    """Write ``state`` (flattened), ``buffers`` and the JSON ``meta`` to ``path`` atomically."""
    arrays = flatten_state(state)
    arrays.update(buffers)
    arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True, allow_nan=True))
    arrays["checksums"] = np.asarray(json.dumps({k: _crc(np.asarray(v)) for k, v in sorted(arrays.items())}))
    atomic_save_npz(path, arrays)


def load_checkpoint(path) -> tuple[dict, dict[str, np.ndarray]]:
    """Return ``(meta, arrays)``; arrays include ``state/...`` and buffer entries.

    Raises :class:`~smile_ref.errors.CorruptFileError` (naming ``path``) when the file is not a
    readable ``.npz``, has no ``meta`` entry, or an entry does not match its recorded checksum.
    """
    p = os.fspath(path)
    arrays = read_npz(p, "checkpoint")
    if "meta" not in arrays:
        raise CorruptFileError(f"checkpoint {p!r} has no 'meta' entry: not a smile_ref checkpoint")
    raw = arrays.pop("meta")
    try:
        meta = json.loads(str(raw))
    except ValueError as exc:
        raise CorruptFileError(f"checkpoint {p!r}: its 'meta' entry is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise CorruptFileError(f"checkpoint {p!r}: its 'meta' entry is not a JSON object")
    if "checksums" in arrays:
        try:
            sums = json.loads(str(arrays.pop("checksums")))
        except ValueError as exc:
            raise CorruptFileError(f"checkpoint {p!r}: its 'checksums' entry is not valid JSON ({exc})") from None
        expected = dict(arrays, meta=raw)
        if set(sums) != set(expected):
            diff = sorted(set(sums) ^ set(expected))
            raise CorruptFileError(f"checkpoint {p!r}: entries {diff[:5]} are missing or were added after writing")
        for k, v in expected.items():
            if _crc(np.asarray(v)) != sums[k]:
                raise CorruptFileError(f"checkpoint {p!r}: entry {k!r} does not match its checksum (the file was "
                                       "modified after it was written)")
    return meta, arrays
