"""Golden trajectories: record a short run with all its random inputs, and replay it.

Format: ``<name>.npz`` (no pickles) + ``<name>.json`` sidecar; specified in
``docs/golden-format.md`` (schema version :data:`SCHEMA_VERSION`).

* :func:`record` runs a registered sampler on NumPy float64 through a
  :class:`~smile_ref.crosscheck.recording.RecordingRandom` and returns
  ``(spec, arrays)``; :func:`export` writes them.
* :func:`load` reads and validates a file (:class:`GoldenFormatError` with the
  offending key and the expected shape).
* :func:`check` replays a file, either through smile_ref (the recorded random
  stream is fed back by :class:`~smile_ref.crosscheck.recording.ReplayRandom`)
  or through a user step function (signature in :mod:`smile_ref.crosscheck.replay`),
  and returns a :class:`~smile_ref.crosscheck.replay.ReplayResult`: the maximum
  absolute deviation per step and quantity and the first step whose deviation
  exceeds ``tol`` (default ``1e-12``).
"""
from __future__ import annotations

import json
import math
import os
import pathlib

import numpy as np

from ..backend import HostRandom, get_backend, to_numpy
from ..errors import CorruptFileError
from ..io import atomic_save_npz, atomic_write_text, read_npz
from ..gradients.exact import Exact
from ..integrators.coefficients import get_integrator
from ..samplers import base as registry
from .recording import KINDS, ROLES, Draw, RecordingGradient, RecordingRandom
from .specs import gradient_spec, target_spec

__all__ = ["SCHEMA", "SCHEMA_VERSION", "GoldenFormatError", "record", "export", "load", "draws_from_arrays",
           "observe", "CONVENTIONS"]

SCHEMA = "smile_ref.golden"
SCHEMA_VERSION = 1

CONVENTIONS = {
    "step_size": "eps = duration of one full step in units of the dynamics' time; sub-step i of a palindromic "
                 "B-A-...-B scheme lasts coefficients[i] * eps (even i: velocity flow B, odd i: position flow A). "
                 "SGLD: h in x' = x + h g + sqrt(2h) xi. SGHMC: learning rate eta in v' = (1-alpha) v + eta g + "
                 "sqrt(2 (alpha - beta_hat) eta) xi, x' = x + v'.",
    "energy_error": "dE = dK - (logp(x') - logp(x)); dK = sum over B sub-steps of (d-1) log(cosh delta + c sinh "
                    "delta) (the work of the force); positive dE = energy gained. SMILE with a stochastic gradient "
                    "(energy_error='same_batch'): both logp on the step's batch. 0 for rejected chains.",
    "velocity": "MCLMC/SMILE: unit velocity u on S^{d-1} (|u| = 1; SMILE starts from u = 0 and a reset sets u = 0); "
                "the position flow is x' = x + tau S u with S = diag(sqrt_diag) (identity if absent). SGHMC: v = "
                "eps M^{-1} r (position increment). SGLD: no velocity.",
    "logdensity": "MCLMC/SMILE: the sampler's stored log pi (mini-batch/noisy estimate on the batch of the last "
                  "evaluation for stochastic gradients; includes normalising constants of the target). SGLD/SGHMC: "
                  "exact log pi(x_t) of the target (a diagnostic; these samplers never evaluate it).",
    "partial_refresh": "u <- (u + nu z)/|u + nu z|, nu = sqrt((exp(2 tau / L) - 1)/d), tau = eps/2, twice per step.",
    "full_refresh": "u = z/|z| (MCLMC initial velocity, and the velocity of a rejected chain from z2).",
    "axes": "per-step arrays are (n_steps, n_chains, ...); row t is the state after step t (0-based).",
    "dtype": "float64 throughout; integers int64.",
}

RNG_NOTE = ("All random inputs are stored in the order drawn (rng/* arrays); the generator used to make them (NumPy "
            "PCG64 seeded by SeedSequence(seed)) is irrelevant for replay: an implementation must consume the "
            "recorded values, not re-draw them. Gaussian draws are standard normals; permutations are of range(N) "
            "per chain; inputs/batch holds what the gradient estimator's draw() returned (batch indices, or the "
            "additive-noise draw xi = L z with L the Cholesky factor of the noise covariance).")

DRAW_ORDER = {
    "mclmc": {"init": ["gradient draws (init, then one draw)", "normal (n,d) z0: u0 = z0/|z0|"],
              "step": ["normal (n,d) z2 (second half refresh, drawn first)", "normal (n,d) z1 (first half refresh; "
                       "only with refresh=True)", "gradient draw (one batch shared by all sub-steps)"]},
    "smile": {"init": ["gradient draws (init, then one draw; gradient at x0 on this batch)"],
              "step": ["normal (n,d) z1 (only with refresh=True)", "gradient draw B_t",
                       "normal (n,d) z2 (only with refresh=True)"]},
    "sgld": {"init": ["gradient draws (init, then one draw; gradient at x0 on this batch)"],
             "step": ["normal (n,d) xi (injected noise)", "gradient draw (for the gradient at the new position, "
                      "used by the next step)"]},
    "sghmc": {"init": ["normal (n,d) z: v0 = sqrt(eta) z", "gradient draws (init, then one draw; gradient at x0)"],
              "step": ["normal (n,d) xi (injected noise)", "gradient draw (for the gradient at the new position, "
                       "used by the next step)"]},
}
DRAW_ORDER["psmile"] = DRAW_ORDER["smile"]


class GoldenFormatError(CorruptFileError):
    """A golden file does not follow docs/golden-format.md (a :class:`~smile_ref.errors.CorruptFileError`)."""


def observe(algo, state, info=None) -> dict:
    """Host float64 arrays ``position``, ``logdensity`` [, ``velocity``] of a sampler state
    (:meth:`~smile_ref.samplers.base.Kernel.observe`) and, given the info of the step that produced
    it, its ``energy_error`` (isokinetic samplers), ``step_size`` and ``rejected`` (int8)."""
    out = algo.observe(state)
    if info is not None:
        for key in ("energy_error", "step_size"):
            if key in info:
                out[key] = np.asarray(to_numpy(info[key]), dtype=np.float64)
        out["rejected"] = np.asarray(to_numpy(info.rejected), dtype=np.int8)
    return out


def _jsonable(options: dict) -> dict:
    def conv(v):
        if isinstance(v, tuple):
            return [conv(a) for a in v]
        if isinstance(v, np.ndarray):
            return v.tolist()
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"golden export: non-finite option values are not portable JSON, got {v!r}")
        return v

    out = {k: conv(v) for k, v in options.items()}
    try:
        json.dumps(out, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"golden export: sampler options must be JSON-serialisable (floats, str, lists): {exc}") from None
    return out


def _stack_by_step(entries, n_steps, what):
    """``[(step, array)]`` -> (init stack ``(m0, ...)``, per-step stack ``(T, m, ...)``) or ``None``s."""
    init = [a for s, a in entries if s < 0]
    per = [[a for s, a in entries if s == t] for t in range(n_steps)]
    counts = {len(p) for p in per}
    if len(counts) > 1:
        raise ValueError(f"golden export: the number of {what} per step varies ({sorted(counts)}); not supported")
    shapes = {a.shape for p in per for a in p}
    if len(shapes) > 1:
        raise ValueError(f"golden export: {what} shapes vary between steps ({sorted(shapes)}); not supported")
    init_arr = np.stack(init) if init else None
    per_arr = np.stack([np.stack(p) if p else np.zeros((0,)) for p in per]) if counts != {0} else None
    return init_arr, per_arr


def _draw_arrays(draws) -> dict:
    floats, ints, table = [], [], []
    fo = io = 0
    for dr in draws:
        v = dr.values
        if v.ndim > 3:
            raise ValueError("golden export: draws of more than 3 dimensions are not supported")
        shape = list(v.shape) + [1] * (3 - v.ndim)
        if dr.kind in ("normal", "uniform"):
            floats.append(np.asarray(v, dtype=np.float64).ravel())
            off, fo = fo, fo + v.size
        else:
            ints.append(np.asarray(v, dtype=np.int64).ravel())
            off, io = io, io + v.size
        table.append([dr.step, KINDS.index(dr.kind), ROLES.index(dr.role), dr.high, v.ndim, *shape, off])
    return {
        "rng/table": np.asarray(table, dtype=np.int64).reshape(-1, 9),
        "rng/float_values": np.concatenate(floats) if floats else np.zeros(0),
        "rng/int_values": np.concatenate(ints) if ints else np.zeros(0, dtype=np.int64),
    }


def draws_from_arrays(arrays) -> list[Draw]:
    """Inverse of the ``rng/*`` encoding (see docs/golden-format.md)."""
    table, fv, iv = arrays["rng/table"], arrays["rng/float_values"], arrays["rng/int_values"]
    out = []
    for k, (step, kind, role, high, ndim, s0, s1, s2, off) in enumerate(table.tolist()):
        if not (0 <= kind < len(KINDS) and 0 <= role < len(ROLES) and 0 <= ndim <= 3):
            raise GoldenFormatError(f"rng/table row {k}: invalid kind/role/ndim {(kind, role, ndim)}")
        shape = (s0, s1, s2)[:ndim]
        size = int(np.prod(shape)) if shape else 1
        buf = fv if KINDS[kind] in ("normal", "uniform") else iv
        if off < 0 or off + size > buf.shape[0]:
            raise GoldenFormatError(f"rng/table row {k}: values [{off}, {off + size}) lie outside the value buffer "
                                    f"of length {buf.shape[0]}")
        out.append(Draw(KINDS[kind], step, ROLES[role], high, buf[off:off + size].reshape(shape)))
    return out


def record(sampler: str, target, gradient=None, *, n_chains: int, n_steps: int, seed: int, step_size=None,
           initial_position=None, n_warmup: int = 0, description: str = "", **options) -> tuple[dict, dict]:
    """Run ``sampler`` for ``n_steps`` on NumPy float64, recording every random input; return ``(spec, arrays)``.

    ``initial_position`` defaults to ``0.5 z`` with ``z ~ N(0, I)`` from ``default_rng([seed, 1])`` (a
    generator separate from the recorded one; the position itself is stored).  Steps ``t < n_warmup``
    run with ``warmup=True``.
    """
    bk = get_backend("numpy", "float64")
    gradient = Exact(target) if gradient is None else gradient
    d = int(target.dim)
    if initial_position is None:
        initial_position = 0.5 * np.random.default_rng([seed, 1]).standard_normal((n_chains, d))
    x0 = np.array(initial_position, dtype=np.float64)
    if x0.shape != (n_chains, d):
        raise ValueError(f"initial_position must have shape ({n_chains}, {d}), got {x0.shape}")
    options = _jsonable(options)
    rec = RecordingRandom(HostRandom(seed, bk))
    grad = RecordingGradient(gradient, rec)
    algo = registry.get(sampler)(target, grad, bk, step_size=step_size, n_warmup=n_warmup, **options)
    state = algo.init(x0, rec)
    obs0 = observe(algo, state)
    per: dict[str, list] = {}
    pre: list = []
    for t in range(n_steps):
        rec.step = t
        sd = algo.sqrt_diag(state)
        if sd is not None:
            pre.append(np.asarray(to_numpy(sd), dtype=np.float64))
        state, info = algo.step(state, rec, t < n_warmup)
        for k, v in observe(algo, state, info).items():
            per.setdefault(k, []).append(v)
    names = {"position": "positions", "velocity": "velocities"}
    arrays = {"initial_position": x0, "initial_logdensity": obs0["logdensity"]}
    if "velocity" in obs0:
        arrays["initial_velocity"] = obs0["velocity"]
    arrays.update({names.get(k, k): np.stack(v) for k, v in per.items()})
    if pre:
        arrays["sqrt_diag"] = np.stack(pre)
    samp = [(dr.step, dr.values) for dr in rec.draws if dr.role == "sampler" and dr.kind == "normal"]
    init_n, step_n = _stack_by_step(samp, n_steps, "sampler normals")
    if init_n is not None:
        arrays["init/sampler_normals"] = init_n
    arrays["inputs/sampler_normals"] = step_n if step_n is not None else np.zeros((n_steps, 0, n_chains, d))
    batches = [(s, b) for s, b in grad.batches if b is not None]
    init_b, step_b = _stack_by_step(batches, n_steps, "gradient batches")
    if init_b is not None:
        arrays["init/batch"] = init_b
    if step_b is not None:
        arrays["inputs/batch"] = step_b
    arrays.update(_draw_arrays(rec.draws))
    tspec, tarrays = target_spec(target)
    arrays.update(tarrays)
    coefs = algo.coefficients
    spec = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "description": description,
        "sampler": {"name": sampler, "options": options, "step_size": step_size, "n_warmup": int(n_warmup)},
        "n_chains": int(n_chains), "dim": d, "n_steps": int(n_steps), "dtype": "float64", "seed": int(seed),
        "target": tspec,
        "gradient": gradient_spec(gradient),
        "integrator": None if coefs is None else {"name": coefs.name, "coefficients": list(coefs.coefficients),
                                                  "order": coefs.order, "n_grad": coefs.n_grad},
        "conventions": CONVENTIONS,
        "rng": {"note": RNG_NOTE, "generator": "numpy PCG64, SeedSequence(seed)",
                "draw_order": DRAW_ORDER.get(sampler, {})},
        "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sorted(arrays.items())},
    }
    return spec, arrays


def _paths(path) -> tuple[pathlib.Path, pathlib.Path]:
    p = pathlib.Path(path)
    if p.suffix in (".npz", ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + ".npz"), p.with_name(p.name + ".json")


def export(path, sampler: str, target, gradient=None, **kwargs) -> tuple[pathlib.Path, pathlib.Path]:
    """:func:`record` and write ``<path>.npz`` and ``<path>.json``; returns both paths."""
    spec, arrays = record(sampler, target, gradient, **kwargs)
    npz, js = _paths(path)
    text = json.dumps(spec, indent=1, sort_keys=True, allow_nan=False) + "\n"  # fails before anything is written
    atomic_save_npz(npz, arrays, compressed=True)  # the .npz first: a sidecar never points to a missing array file
    atomic_write_text(js, text)
    return npz, js


def _require(cond, path, msg):
    if not cond:
        raise GoldenFormatError(f"golden file {os.fspath(path)}: {msg}")


def load(path) -> tuple[dict, dict]:
    """Read and validate ``<path>.npz`` + ``<path>.json``; returns ``(spec, arrays)``."""
    npz, js = _paths(path)
    _require(npz.exists(), npz, "not found")
    _require(js.exists(), js, "JSON sidecar not found (expected next to the .npz, same name)")
    try:
        spec = json.loads(js.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise GoldenFormatError(f"golden file {js}: sidecar is not valid JSON ({exc})") from None
    _require(isinstance(spec, dict), js, "sidecar must hold a JSON object")
    _require(spec.get("schema") == SCHEMA, js, f"'schema' must be {SCHEMA!r}, got {spec.get('schema')!r}")
    _require(spec.get("schema_version") == SCHEMA_VERSION, js,
             f"unsupported schema_version {spec.get('schema_version')!r} (this smile_ref reads {SCHEMA_VERSION})")
    for key in ("sampler", "n_chains", "dim", "n_steps", "target", "gradient", "conventions"):
        _require(key in spec, js, f"missing key {key!r} in the sidecar")
    _require(isinstance(spec["sampler"], dict) and "name" in spec["sampler"] and "options" in spec["sampler"], js,
             "'sampler' must be an object with 'name' and 'options'")
    try:
        arrays = read_npz(npz, "golden file")
    except CorruptFileError as exc:
        raise GoldenFormatError(str(exc)) from None
    for key in ("n_steps", "n_chains", "dim"):
        v = spec[key]
        _require(isinstance(v, int) and not isinstance(v, bool) and v >= 1, js,
                 f"{key!r} must be a positive integer, got {v!r}")
    T, n, d = int(spec["n_steps"]), int(spec["n_chains"]), int(spec["dim"])
    expected = {"initial_position": (n, d), "initial_logdensity": (n,), "positions": (T, n, d),
                "logdensity": (T, n), "step_size": (T, n), "rejected": (T, n), "inputs/sampler_normals": None,
                "rng/table": None, "rng/float_values": None, "rng/int_values": None}
    optional = {"initial_velocity": (n, d), "velocities": (T, n, d), "energy_error": (T, n), "sqrt_diag": (T, n, d)}
    for key, shape in list(expected.items()) + list(optional.items()):
        if key not in arrays:
            _require(key in optional, npz, f"missing array {key!r}")
            continue
        a = arrays[key]
        if shape is not None:
            _require(a.shape == shape, npz, f"array {key!r} has shape {a.shape}, expected {shape} "
                                            f"(n_steps={T}, n_chains={n}, dim={d})")
        if key not in ("rejected", "rng/table", "rng/int_values"):
            _require(a.dtype == np.float64, npz, f"array {key!r} has dtype {a.dtype}, expected float64")
            _require(bool(np.all(np.isfinite(a))), npz, f"array {key!r} contains NaN or inf")
    _require(arrays["rng/table"].ndim == 2 and arrays["rng/table"].shape[1] == 9, npz,
             f"array 'rng/table' has shape {arrays['rng/table'].shape}, expected (n_draws, 9)")
    return spec, arrays
