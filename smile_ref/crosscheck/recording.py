"""Record every random draw of a run, in order, and replay it bit for bit.

A golden trajectory stores the *random inputs* of a run so that the run can be
replayed by smile_ref or reproduced by another implementation without sharing
a random-number generator.  Two pieces do this:

* :class:`RecordingRandom` wraps any :class:`~smile_ref.backend.RandomSource`
  and appends every draw (``normal``, ``uniform``, ``integers``,
  ``normal_host``, ``integers_host``, ``permutations_host``) to a list of
  :class:`Draw` records: kind, shape, the step it belongs to (``-1`` for
  ``init``), its *role* (``"sampler"``: refresh normals, injected noise,
  initial velocities; ``"gradient"``: drawn inside the gradient estimator's
  ``init``/``draw``: noise ``z``, epoch permutations, batch indices) and the
  values as a host NumPy array.
* :class:`ReplayRandom` hands the recorded draws back in the same order.  A
  call whose kind or shape differs from the next recorded draw, or a call
  after the record is exhausted, raises :class:`ReplayMismatch` naming the
  draw index and step: a replayed implementation cannot silently consume the
  random stream differently.

:class:`RecordingGradient` wraps a gradient estimator: it tags the draws made
inside ``init``/``draw`` with role ``"gradient"`` and keeps the ``batch``
returned by each ``draw`` (mini-batch indices ``(n, b)`` or the additive-noise
draw ``xi = L z`` of shape ``(n, d)``), which is the random input an external
implementation needs (the golden format stores both; docs/golden-format.md).

The recorder exposes no ``generator`` attribute, so estimators that draw
directly from a host NumPy ``Generator`` (non-Gaussian ``AdditiveNoise``)
refuse to run under it (``TypeError``) instead of drawing unrecorded numbers.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..backend import to_numpy

__all__ = ["Draw", "RecordingRandom", "ReplayRandom", "RecordingGradient", "ReplayMismatch", "KINDS", "ROLES"]

KINDS = ("normal", "uniform", "integers", "permutations")
ROLES = ("sampler", "gradient")


class ReplayMismatch(ValueError):
    """A replayed run asked for a draw that differs from the recorded one."""


class Draw(NamedTuple):
    """One recorded draw: ``kind`` in :data:`KINDS`, ``step`` (-1: init), ``role`` in :data:`ROLES`,
    ``high`` (integers: exclusive upper bound; permutations: ``n``; else 0), ``values`` (host array)."""

    kind: str
    step: int
    role: str
    high: int
    values: np.ndarray


class RecordingRandom:
    """Random source that forwards to ``inner`` and records every draw in order.

    Parameters
    ----------
    inner : RandomSource
        E.g. :class:`~smile_ref.backend.HostRandom`.

    Attributes
    ----------
    draws : list of Draw
    step : int
        Step index stamped on new draws; the caller sets it (``-1`` during ``init``).
    role : str
        ``"sampler"`` unless inside a :class:`RecordingGradient` call.
    """

    def __init__(self, inner):
        self.inner = inner
        self.backend = inner.backend
        self.draws: list[Draw] = []
        self.step = -1
        self.role = "sampler"

    def _rec(self, kind, values, high=0):
        self.draws.append(Draw(kind, int(self.step), self.role, int(high), np.array(values, copy=True)))

    def normal(self, shape, dtype=None):
        out = self.inner.normal(shape, dtype)
        self._rec("normal", to_numpy(out))
        return out

    def uniform(self, shape, dtype=None):
        out = self.inner.uniform(shape, dtype)
        self._rec("uniform", to_numpy(out))
        return out

    def integers(self, high: int, shape):
        out = self.inner.integers(high, shape)
        self._rec("integers", to_numpy(out), high)
        return out

    def normal_host(self, shape, dtype=None):
        out = self.inner.normal_host(shape, dtype)
        self._rec("normal", out)
        return out

    def integers_host(self, high: int, shape):
        out = self.inner.integers_host(high, shape)
        self._rec("integers", out, high)
        return out

    def permutations_host(self, n: int, n_rows: int):
        out = self.inner.permutations_host(n, n_rows)
        self._rec("permutations", out, n)
        return out

    def get_state(self) -> dict:
        return self.inner.get_state()

    def set_state(self, state: dict) -> None:
        self.inner.set_state(state)


class ReplayRandom:
    """Random source returning recorded draws in order (see module docstring).

    Parameters
    ----------
    draws : sequence of Draw
    backend : Backend
        Namespace/device/dtype of the returned arrays.
    """

    def __init__(self, draws, backend):
        self.draws = list(draws)
        self.backend = backend
        self.position = 0
        self.step = -1

    def _next(self, kind, shape, high=None) -> np.ndarray:
        k = self.position
        shape = (shape,) if isinstance(shape, int) else tuple(int(s) for s in shape)
        if k >= len(self.draws):
            raise ReplayMismatch(
                f"replay asked for draw #{k} ({kind} of shape {shape}) at step {self.step}, "
                f"but the record holds only {len(self.draws)} draws"
            )
        rec = self.draws[k]
        if rec.kind != kind or tuple(rec.values.shape) != shape or (high is not None and rec.high != int(high)):
            raise ReplayMismatch(
                f"replay draw #{k} at step {self.step}: asked for {kind} of shape {shape}"
                f"{'' if high is None else f' (high={high})'}, recorded {rec.kind} of shape "
                f"{tuple(rec.values.shape)} (high={rec.high}) at step {rec.step}, role {rec.role!r}"
            )
        self.position += 1
        return rec.values

    @property
    def exhausted(self) -> bool:
        return self.position == len(self.draws)

    def _float(self, host, dtype):
        dtype = self.backend.dtype if dtype is None else dtype
        return self.backend.asarray(np.ascontiguousarray(host), dtype=dtype)

    def normal(self, shape, dtype=None):
        return self._float(self._next("normal", shape), dtype)

    def uniform(self, shape, dtype=None):
        return self._float(self._next("uniform", shape), dtype)

    def integers(self, high: int, shape):
        return self.backend.asarray(np.asarray(self._next("integers", shape, high), dtype=np.int64),
                                    dtype=self.backend.xp.int64)

    def normal_host(self, shape, dtype=None):
        np_dtype = np.float32 if dtype is not None and dtype == self.backend.xp.float32 else np.float64
        return np.asarray(self._next("normal", shape), dtype=np_dtype)

    def integers_host(self, high: int, shape):
        return np.asarray(self._next("integers", shape, high), dtype=np.int64)

    def permutations_host(self, n: int, n_rows: int):
        return np.asarray(self._next("permutations", (n_rows, n), n), dtype=np.int64)

    def get_state(self) -> dict:
        return {"kind": "replay", "position": self.position}

    def set_state(self, state: dict) -> None:
        if state.get("kind") != "replay":
            raise ValueError(f"state is not a ReplayRandom state: kind={state.get('kind')!r}")
        self.position = int(state["position"])


class RecordingGradient:
    """Gradient-estimator wrapper: tags draws inside ``init``/``draw`` as role ``"gradient"``
    and records each ``batch`` returned by ``draw`` as ``(step, host array)`` in :attr:`batches`."""

    def __init__(self, inner, recorder: RecordingRandom):
        self.inner = inner
        self.recorder = recorder
        self.batches: list[tuple[int, Any]] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _tagged(self, fn, *args):
        prev, self.recorder.role = self.recorder.role, "gradient"
        try:
            return fn(*args)
        finally:
            self.recorder.role = prev

    def init(self, n_chains, rng):
        return self._tagged(self.inner.init, n_chains, rng)

    def draw(self, state, rng, x):
        batch, new = self._tagged(self.inner.draw, state, rng, x)
        self.batches.append((int(self.recorder.step), None if batch is None else np.array(to_numpy(batch), copy=True)))
        return batch, new

    def evaluate(self, x, batch):
        return self.inner.evaluate(x, batch)
