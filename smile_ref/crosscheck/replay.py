"""Replay a golden file and measure the deviation per step (:func:`check`).

Two modes:

* **smile_ref** (default): rebuild target, gradient estimator and sampler from
  the sidecar, feed the recorded random stream back through
  :class:`~smile_ref.crosscheck.recording.ReplayRandom` and run the kernel.
  Every draw must match the record in kind and shape, and the whole record
  must be consumed.
* **user step function** ``step_fn(t, state, inputs, golden) -> state``:

  ``t`` : int, 0-based step index.
  ``state`` : dict of NumPy float64 arrays.  For ``t = 0`` it holds
      ``position`` ``(n, d)`` (``initial_position``), ``velocity`` ``(n, d)``
      and ``logdensity`` ``(n,)`` where recorded, and ``init_batch``
      ``(m0, n, ...)`` / ``init_sampler_normals`` ``(k0, n, d)`` where the
      sampler drew at ``init``; afterwards it is whatever ``step_fn`` returned
      (extra keys, e.g. a stored gradient, are passed back unchanged).
  ``inputs`` : dict: ``sampler_normals`` ``(k, n, d)`` (this step's sampler
      draws, in draw order), ``batch`` ``(m, n, ...)`` (what the gradient
      estimator's ``draw`` returned) where present, ``step_size`` ``(n,)``,
      ``sqrt_diag`` ``(n, d)`` where used, ``warmup`` (bool).
  ``golden`` : :class:`Golden` (``spec`` dict, ``arrays`` dict; e.g. the
      target's data ``arrays["target/X"]``).

  The returned dict must contain ``position`` ``(n, d)``; ``velocity``,
  ``energy_error``, ``logdensity`` and ``rejected`` are compared when
  present (the result lists which quantities were compared).

Deviation of a quantity at step ``t``: ``max |recorded - replayed|`` over
chains and coordinates (``inf`` on a shape mismatch or where exactly one of
the two is non-finite; 0 where both are the same non-finite value).  The run is
free (never reset to the recorded state), so the first step whose deviation
exceeds ``tol`` is where an implementation first departs from the record.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..backend import get_backend, to_numpy
from ..samplers import base as registry
from .golden import GoldenFormatError, draws_from_arrays, load, observe
from .recording import RecordingGradient, ReplayMismatch, ReplayRandom
from .specs import build_gradient, build_target

__all__ = ["Golden", "ReplayResult", "check", "deviation", "import_step_function"]

QUANTITIES = {"positions": "position", "velocities": "velocity", "energy_error": "energy_error",
              "logdensity": "logdensity", "step_size": "step_size", "rejected": "rejected",
              "sqrt_diag": "sqrt_diag", "inputs/batch": "batch"}


class Golden(NamedTuple):
    spec: dict
    arrays: dict


@dataclass
class ReplayResult:
    """Outcome of :func:`check`.

    ``per_step``: ``(n_steps,)`` maximum deviation over the compared quantities;
    ``per_quantity``: name -> ``(n_steps,)``; ``init_deviation``: maximum
    deviation of the initial velocity/log-density; ``first_failure``: first step
    with deviation ``> tol`` (``-1``: the initial state; ``None``: none);
    ``error``: message if the replay stopped early (e.g. a random-stream mismatch).
    """

    path: str
    tol: float
    per_step: np.ndarray
    per_quantity: dict
    init_deviation: float
    first_failure: int | None
    error: str | None = None
    compared: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.first_failure is None and self.error is None

    @property
    def max_deviation(self) -> float:
        return float(max(self.init_deviation, np.max(self.per_step, initial=0.0)))

    def summary(self) -> str:
        status = "PASS" if self.passed else "FAIL"
        lines = [f"{status} {self.path}: max deviation {self.max_deviation:.3e} (tol {self.tol:.1e}), "
                 f"compared {', '.join(self.compared)}"]
        if self.first_failure is not None:
            where = "initial state" if self.first_failure < 0 else f"step {self.first_failure}"
            worst = [q for q, v in self.per_quantity.items() if self.first_failure >= 0 and v[self.first_failure] > self.tol]
            lines.append(f"  first deviation > tol at {where}" + (f" ({', '.join(worst)})" if worst else ""))
        if self.error:
            lines.append(f"  replay stopped: {self.error}")
        lines.append("  per step: " + " ".join(f"{v:.1e}" for v in self.per_step))
        return "\n".join(lines)


def deviation(recorded, replayed) -> float:
    """``max |recorded - replayed|`` (see module docstring for non-finite values and shape mismatches)."""
    a = np.asarray(recorded, dtype=np.float64)
    b = np.asarray(replayed, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    fa, fb = np.isfinite(a), np.isfinite(b)
    if np.any(fa != fb) or np.any(~fa & (a != b) & ~(np.isnan(a) & np.isnan(b))):
        return float("inf")
    return float(np.max(np.abs(np.where(fa, a - b, 0.0))))


def import_step_function(dotted: str):
    """``"package.module:function"`` -> the function."""
    if not isinstance(dotted, str) or dotted.count(":") != 1:
        raise ValueError(f"step function must be given as 'module:function', got {dotted!r}")
    mod, name = dotted.split(":")
    fn = getattr(importlib.import_module(mod), name, None)
    if not callable(fn):
        raise ValueError(f"{dotted!r}: module {mod!r} has no callable {name!r}")
    return fn


def _smile_ref_run(spec, arrays, backend=None):
    """Generator of ``(t, observations)``: ``t = -1`` for the initial state."""
    bk = get_backend("numpy", "float64") if backend is None else backend
    target = build_target(spec["target"], arrays)
    rr = ReplayRandom(draws_from_arrays(arrays), bk)
    rr.role = "sampler"
    grad = RecordingGradient(build_gradient(spec["gradient"], target), rr)
    s = spec["sampler"]
    algo = registry.get(s["name"])(target, grad, bk, step_size=s.get("step_size"), n_warmup=s.get("n_warmup", 0),
                                   **s["options"])
    state = algo.init(bk.asarray(np.array(arrays["initial_position"]), dtype=bk.dtype), rr)
    yield -1, observe(algo, state)
    for t in range(int(spec["n_steps"])):
        rr.step = t
        sd = algo.sqrt_diag(state)
        n_b = len(grad.batches)
        state, info = algo.step(state, rr, t < int(s.get("n_warmup", 0)))
        obs = observe(algo, state, info)
        if sd is not None:
            obs["sqrt_diag"] = np.asarray(to_numpy(sd), dtype=np.float64)
        new_b = [b for _, b in grad.batches[n_b:] if b is not None]
        if new_b:
            obs["batch"] = np.stack(new_b)
        yield t, obs
    if not rr.exhausted:
        raise ReplayMismatch(f"replay consumed {rr.position} of {len(rr.draws)} recorded draws")


def _user_run(spec, arrays, step_fn):
    golden = Golden(spec, arrays)
    state = {"position": np.array(arrays["initial_position"])}
    for src, dst in (("initial_velocity", "velocity"), ("initial_logdensity", "logdensity"),
                     ("init/batch", "init_batch"), ("init/sampler_normals", "init_sampler_normals")):
        if src in arrays:
            state[dst] = np.array(arrays[src])
    n_warmup = int(spec["sampler"].get("n_warmup", 0))
    for t in range(int(spec["n_steps"])):
        inputs = {"sampler_normals": np.array(arrays["inputs/sampler_normals"][t]),
                  "step_size": np.array(arrays["step_size"][t]), "warmup": t < n_warmup}
        for key in ("inputs/batch", "sqrt_diag"):
            if key in arrays:
                inputs[key.split("/")[-1]] = np.array(arrays[key][t])
        state = step_fn(t, dict(state), inputs, golden)
        if not isinstance(state, dict) or "position" not in state:
            raise TypeError(f"step function must return a dict with at least 'position', got {type(state).__name__}")
        yield t, state


def check(path, step_fn=None, tol: float = 1e-12, backend=None) -> ReplayResult:
    """Replay the golden file at ``path``; see the module docstring.

    Parameters
    ----------
    path : str or Path
        ``<name>.npz`` (the ``.json`` sidecar lies next to it).
    step_fn : callable, str or None
        ``None``: replay through smile_ref; a callable or ``"module:function"``:
        a user step function with the documented signature.
    tol : float
        Maximum allowed absolute deviation per step (default ``1e-12``).
    backend : Backend, optional
        smile_ref mode only: replay on this backend (default NumPy float64),
        e.g. array_api_strict or CuPy for backend-agreement checks; the
        recorded draws are moved to it by :class:`ReplayRandom`.
    """
    if not (isinstance(tol, float) and tol >= 0):
        raise ValueError(f"tol must be a float >= 0, got {tol!r}")
    spec, arrays = load(path)
    if isinstance(step_fn, str):
        step_fn = import_step_function(step_fn)
    T = int(spec["n_steps"])
    if backend is not None and step_fn is not None:
        raise ValueError("backend applies to the smile_ref replay only, not to a user step function")
    run = _smile_ref_run(spec, arrays, backend) if step_fn is None else _user_run(spec, arrays, step_fn)
    per_q: dict[str, np.ndarray] = {}
    init_dev, error = 0.0, None
    try:
        for t, obs in run:
            if t < 0:
                for src, key in (("initial_velocity", "velocity"), ("initial_logdensity", "logdensity")):
                    if src in arrays and key in obs:
                        init_dev = max(init_dev, deviation(arrays[src], obs[key]))
                continue
            for name, key in QUANTITIES.items():
                if name in arrays and key in obs:
                    per_q.setdefault(name, np.full(T, np.inf))[t] = deviation(arrays[name][t], obs[key])
    except (ReplayMismatch, GoldenFormatError) as exc:
        error = str(exc)
    per_step = np.max(np.stack(list(per_q.values())), axis=0) if per_q else np.full(T, np.inf)
    if init_dev > tol:
        first = -1
    else:
        bad = np.flatnonzero(~(per_step <= tol))
        first = int(bad[0]) if bad.size else None
    if "positions" not in per_q and error is None:
        error = "no positions were compared"
    return ReplayResult(str(path), tol, per_step, per_q, init_dev, first, error, sorted(per_q))
