"""Random sources returning arrays of a chosen backend.

The Array API standard has no random-number API, so smile_ref draws through a
small :class:`RandomSource` protocol:

* :class:`HostRandom` draws with a NumPy ``Generator`` (PCG64) on the host and
  moves the result to the target namespace/device.  The same seed gives the same
  numbers on NumPy, array_api_strict and CuPy, which is what golden trajectories
  and backend-agreement checks need, and its state is JSON-serialisable, which
  bit-identical checkpoint/resume needs.
* :class:`CupyRandom` draws with ``cupy.random.Generator`` directly on the GPU
  (fast, but its state cannot be serialised: CuPy runs checkpoint by re-seeding
  at block boundaries).

All draws take an explicit ``dtype``; float32 normals are generated in float32
(``standard_normal(dtype=np.float32)``), not down-cast from float64.
"""
from __future__ import annotations

import json
from typing import Any, Protocol

import numpy as np

from .namespace import Backend

__all__ = ["RandomSource", "HostRandom", "CupyRandom", "make_random"]


class RandomSource(Protocol):
    """What samplers and gradient estimators draw from.

    ``normal``/``uniform``/``integers`` return arrays of ``backend``; the ``*_host`` methods return host
    NumPy arrays (mini-batch indices and permutations, golden-file recording), and ``host_generator``
    is the ``numpy.random.Generator`` behind them (non-Gaussian noise draws).  ``get_state`` /
    ``set_state`` serialise the whole source for bit-identical resume (where it can be serialised).
    """

    backend: Backend

    def normal(self, shape, dtype=None): ...

    def uniform(self, shape, dtype=None): ...

    def integers(self, high: int, shape): ...

    def normal_host(self, shape, dtype=None) -> np.ndarray: ...

    def integers_host(self, high: int, shape) -> np.ndarray: ...

    def permutations_host(self, n: int, n_rows: int) -> np.ndarray: ...

    @property
    def host_generator(self) -> np.random.Generator: ...

    def get_state(self) -> dict: ...

    def set_state(self, state: dict) -> None: ...


def _seed_sequence(seed) -> np.random.SeedSequence:
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, (bool, float)) or not isinstance(seed, (int, np.integer, type(None))):
        raise TypeError(f"seed must be an int, a numpy SeedSequence or None, got {type(seed).__name__}")
    if seed is not None and seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return np.random.SeedSequence(seed)


class HostRandom:
    """NumPy-Generator random source whose draws are moved to ``backend``.

    Parameters
    ----------
    seed : int or numpy.random.SeedSequence
    backend : Backend
        Namespace, device and default float dtype of the returned arrays.
    """

    def __init__(self, seed, backend: Backend):
        self.seed_sequence = _seed_sequence(seed)
        self.backend = backend
        self.generator = np.random.Generator(np.random.PCG64(self.seed_sequence))

    def _float_dtype(self, dtype):
        dtype = self.backend.dtype if dtype is None else dtype
        return np.float32 if dtype == self.backend.xp.float32 else np.float64, dtype

    @property
    def host_generator(self) -> np.random.Generator:
        """The host ``numpy.random.Generator`` of the host draws (this source's ``generator``)."""
        return self.generator

    def normal_host(self, shape, dtype=None) -> np.ndarray:
        """Standard normals as a host NumPy array (used by golden-trajectory recording)."""
        np_dtype, _ = self._float_dtype(dtype)
        return self.generator.standard_normal(size=shape, dtype=np_dtype)

    def normal(self, shape, dtype=None):
        np_dtype, dtype = self._float_dtype(dtype)
        return self.backend.asarray(self.generator.standard_normal(size=shape, dtype=np_dtype), dtype=dtype)

    def uniform(self, shape, dtype=None):
        np_dtype, dtype = self._float_dtype(dtype)
        return self.backend.asarray(self.generator.random(size=shape, dtype=np_dtype), dtype=dtype)

    def integers_host(self, high: int, shape) -> np.ndarray:
        return self.generator.integers(0, high, size=shape, dtype=np.int64)

    def integers(self, high: int, shape):
        return self.backend.asarray(self.integers_host(high, shape), dtype=self.backend.xp.int64)

    def permutations_host(self, n: int, n_rows: int) -> np.ndarray:
        """``n_rows`` independent permutations of ``range(n)``, shape ``(n_rows, n)``."""
        return self.generator.permuted(np.broadcast_to(np.arange(n, dtype=np.int64), (n_rows, n)), axis=1)

    def get_state(self) -> dict:
        """JSON-serialisable state (resume is bit-identical)."""
        return {"kind": "host-pcg64", "bit_generator": self.generator.bit_generator.state}

    def set_state(self, state: dict) -> None:
        if state.get("kind") != "host-pcg64":
            raise ValueError(f"state is not a HostRandom state: kind={state.get('kind')!r}")
        self.generator.bit_generator.state = state["bit_generator"]

    def state_json(self) -> str:
        return json.dumps(self.get_state())


class CupyRandom:  # pragma: no cover - exercised on GPU machines only
    """``cupy.random.Generator`` source: draws directly on the device.

    Its state cannot be serialised; checkpoints of CuPy runs record the seed and
    the block counter and re-seed from ``SeedSequence(seed, spawn_key=(block,))``.
    """

    def __init__(self, seed, backend: Backend):
        import cupy

        self.seed_sequence = _seed_sequence(seed)
        self.backend = backend
        self._cupy = cupy
        self.block = 0
        self.generator = cupy.random.default_rng(self.seed_sequence)
        self._host = HostRandom(self.seed_sequence.spawn(1)[0], backend)

    def normal(self, shape, dtype=None):
        dtype = self.backend.dtype if dtype is None else dtype
        out = self.generator.standard_normal(size=shape, dtype=self._cupy.float32 if dtype == self.backend.xp.float32 else self._cupy.float64)
        return self.backend.xp.asarray(out)

    def uniform(self, shape, dtype=None):
        dtype = self.backend.dtype if dtype is None else dtype
        out = self.generator.random(size=shape, dtype=self._cupy.float32 if dtype == self.backend.xp.float32 else self._cupy.float64)
        return self.backend.xp.asarray(out)

    def integers(self, high: int, shape):
        return self.backend.xp.asarray(self.generator.integers(0, high, size=shape, dtype=self._cupy.int64))

    @property
    def host_generator(self) -> np.random.Generator:
        """The host ``numpy.random.Generator`` of the host draws (a spawned child of the seed)."""
        return self._host.generator

    def integers_host(self, high, shape):
        return self._host.integers_host(high, shape)

    def permutations_host(self, n, n_rows):
        return self._host.permutations_host(n, n_rows)

    def normal_host(self, shape, dtype=None):
        return self._host.normal_host(shape, dtype)

    def get_state(self) -> dict:
        raise NotImplementedError(
            "CuPy generator state cannot be serialised; use rng='host' for bit-identical checkpoints"
        )

    def set_state(self, state: dict) -> None:
        raise NotImplementedError("CuPy generator state cannot be restored; use rng='host'")


def make_random(seed, backend: Backend, kind: str = "host"):
    """Build a random source: ``kind='host'`` (default, portable) or ``'device'`` (CuPy)."""
    if kind == "host":
        return HostRandom(seed, backend)
    if kind == "device":
        if backend.name != "cupy":
            raise ValueError(f"rng='device' needs the cupy backend, got {backend.name!r}")
        return CupyRandom(seed, backend)
    raise ValueError(f"rng must be 'host' or 'device', got {kind!r}")
