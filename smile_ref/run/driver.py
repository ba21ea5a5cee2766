"""The one-call driver :func:`run_chains` (its result :class:`~smile_ref.run.result.ChainResult`).

The driver owns everything that is not a transition: backend and seed
resolution, initial positions, the warm-up / sampling split, thinning,
recording into preallocated host buffers (one device-to-host copy per block of
steps; ``info`` rows and exact counters through :mod:`smile_ref.run.recording`),
progress bars, and checkpoint / resume.
"""
from __future__ import annotations

import dataclasses
import numbers
import os
import sys
import time
import warnings
from typing import Any

import numpy as np

from ..backend import Backend, backend_of, get_backend, make_random, to_numpy
from ..backend.validate import check_bool, check_nonneg_int, check_positive_int, check_positions
from ..errors import CorruptFileError, ResumeMismatchError, SmileRefWarning
from ..gradients.exact import Exact
from ..io import check_writable
from ..samplers import base as registry
from ..samplers.info import StepInfo
from .checkpoint import flatten_state, load_checkpoint, save_checkpoint, unflatten_state
from .identity import IDENTITY_VERSION, check_identity, run_identity
from .recording import InfoRecorder, check_info_mode
from .result import ChainResult

from ..errors import RunHealthError, RunHealthWarning
from .health import health_from_stats

#: ``meta["format"]`` of the checkpoints :func:`run_chains` writes.
CHECKPOINT_FORMAT = "smile_ref.checkpoint/4"

__all__ = ["run_chains", "ChainResult"]


def _resolve_backend(backend, dtype, device, initial_position) -> Backend:
    if isinstance(backend, Backend):
        return backend
    if initial_position is not None and backend is None and hasattr(initial_position, "shape"):
        b = backend_of(initial_position)
        if dtype is not None:  # an explicit dtype wins over the dtype of the starting points
            if dtype not in ("float64", "float32"):
                raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
            b = Backend(b.xp, b.device, getattr(b.xp, dtype))
        return b
    return get_backend(backend or "numpy", dtype or "float64", device)


def _progress_enabled(progress) -> bool:
    if progress is not None:
        return check_bool(progress, "progress")
    return sys.stderr.isatty() and not os.environ.get("CI")


def run_chains(
    sampler: str,
    target,
    *,
    n_chains: int,
    n_steps: int,
    seed,
    gradient=None,
    step_size: float | None = None,
    thinning: int = 1,
    burn_in: int = 0,
    progress: bool | None = None,
    backend=None,
    dtype: str | None = None,
    device=None,
    initial_position=None,
    rng: str = "host",
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    block_size: int = 256,
    strict: bool = False,
    info: str = "thinned",
    warmup_info: str = "all",
    **options,
) -> ChainResult:
    """Run ``n_chains`` chains of a registered sampler; the stable entry point of smile_ref.

    Parameters
    ----------
    sampler : str
        A name from :func:`smile_ref.samplers.available`.
    target : Target
        Any ``smile_ref.targets`` object (``dim``, ``logdensity_and_grad``).
    n_chains, n_steps : int
        Number of chains and of sampling steps after warm-up.
    seed : int or numpy.random.SeedSequence
        Seeds every random input of the run.
    gradient : GradientEstimator, optional
        Default :class:`smile_ref.gradients.Exact` (``target``).
    step_size : float, optional
        Initial (tuned samplers) or fixed (``tuner=None``) step size.
    thinning : int
        Record every ``thinning``-th sampling step; ``n_draws = n_steps // thinning``.
    burn_in : int
        Warm-up steps before sampling (tuners adapt during these; not recorded).
    progress : bool, optional
        tqdm progress bar; default on for a TTY unless the ``CI`` variable is set.
    backend, dtype, device
        Array library (``"numpy"``, ``"array_api_strict"``, ``"cupy"`` or a
        :class:`~smile_ref.backend.Backend`), dtype (``"float64"``/``"float32"``)
        and device.  If ``initial_position`` is an array, its backend is used.
    initial_position : array (n_chains, d), optional
        Default: ``target.initial_position`` (standard normal draws).
    rng : {"host", "device"}
        Host NumPy generator (portable, checkpointable) or CuPy's generator.
    checkpoint, checkpoint_every, resume
        Path of an atomic ``.npz`` checkpoint written every ``checkpoint_every``
        steps; with ``resume=True`` an existing checkpoint of the same
        configuration is continued, bit-identically on NumPy.
    block_size : int
        Steps per device-to-host copy of recorded values.
    strict : bool
        Raise :class:`~smile_ref.errors.RunHealthError` instead of emitting a
        :class:`~smile_ref.errors.RunHealthWarning` when the finished run is unhealthy
        (``ChainResult.health``; ``docs/run-health.md``).
    info : {"thinned", "all", "summary"}
        Rows of ``ChainResult.info`` for the sampling steps: ``"thinned"`` (default) the steps
        that produced the draws (row ``s`` aligned with ``samples[:, s]``) plus window counts
        ``n_rejected``, ``n_nonfinite`` and ``max_abs_energy_error`` over the ``thinning`` steps
        ending there; ``"all"`` every step; ``"summary"`` none.  Run health and
        ``ChainResult.stats`` count every step in all three modes
        (:mod:`smile_ref.run.recording`, ``docs/run-health.md``).
    warmup_info : {"all", "thinned", "summary"}
        Rows for the warm-up steps: every step (default), every ``thinning``-th step and the
        last warm-up step, or none.  ``info="all", warmup_info="all"`` gives one row per step.
    **options
        Sampler options (see each sampler's builder).

    Returns
    -------
    ChainResult
    """
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be a bool, got {strict!r}")
    info_mode = check_info_mode(info, "info")
    warmup_mode = check_info_mode(warmup_info, "warmup_info")
    n_chains = check_positive_int(n_chains, "n_chains")
    n_steps = check_nonneg_int(n_steps, "n_steps")
    thinning = check_positive_int(thinning, "thinning")
    burn_in = check_nonneg_int(burn_in, "burn_in")
    block_size = check_positive_int(block_size, "block_size")
    resume = check_bool(resume, "resume")
    if progress is not None:
        check_bool(progress, "progress")
    if n_steps // thinning == 0:
        raise ValueError(f"n_steps={n_steps} with thinning={thinning} records no draw (n_draws = n_steps // thinning "
                         "= 0); use n_steps >= thinning (burn_in steps are never recorded)")
    if not isinstance(sampler, str):
        raise TypeError(f"sampler must be a sampler name (str), got {sampler!r}")
    if checkpoint_every is not None:
        checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
        if checkpoint is None:
            raise ValueError("checkpoint_every needs a checkpoint path")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs a checkpoint path")
    if checkpoint is not None:
        if not isinstance(checkpoint, (str, os.PathLike)):
            raise TypeError(f"checkpoint must be a path (str or os.PathLike), got {type(checkpoint).__name__}")
        check_writable(checkpoint, "checkpoint")  # now, not after the run (the final write would lose it)
    builder = registry.get(sampler)
    if not hasattr(target, "dim") or not hasattr(target, "logdensity_and_grad"):
        raise TypeError("target must provide dim and logdensity_and_grad (a smile_ref.targets object)")
    if gradient is not None and not (hasattr(gradient, "evaluate") and hasattr(gradient, "draw")):
        raise TypeError(f"gradient must be a smile_ref.gradients estimator (with init, draw, evaluate), "
                        f"got {type(gradient).__name__}")
    if step_size is not None and (isinstance(step_size, (bool, np.bool_)) or not isinstance(step_size, numbers.Real)):
        raise TypeError(f"step_size must be a positive real number or None, got {step_size!r}")
    bk = _resolve_backend(backend, dtype, device, initial_position)
    gradient = Exact(target) if gradient is None else gradient
    random = make_random(seed, bk, rng)
    algo = builder(target, gradient, bk, step_size=step_size, n_warmup=burn_in, **options)

    d = int(target.dim)
    if initial_position is None:
        x0 = target.initial_position(random, n_chains)
    else:
        x0 = initial_position
        if isinstance(x0, (list, tuple)) or (isinstance(x0, np.ndarray) and not bk.is_numpy):
            from ..backend.validate import check_real_array

            x0 = bk.asarray(check_real_array(x0, "initial_position", finite=False))
        x0 = check_positions(x0, d, "initial_position")
        if x0.dtype != bk.dtype:
            x0 = bk.xp.astype(x0, bk.dtype)
        if x0.shape[0] != n_chains:
            raise ValueError(f"initial_position must have shape ({n_chains}, {d}), got {tuple(x0.shape)}")
        if not bool(bk.xp.all(bk.xp.isfinite(x0))):
            raise ValueError("initial_position must be finite")
    state = algo.init(x0, random)

    total = burn_in + n_steps
    n_draws = n_steps // thinning
    np_dtype = np.float32 if bk.dtype == bk.xp.float32 else np.float64
    samples = np.empty((n_chains, n_draws, d), dtype=np_dtype)
    recorder = InfoRecorder(info_mode, warmup_mode, n_warmup=burn_in, n_steps=n_steps, thinning=thinning,
                            n_chains=n_chains, dim=d)
    config = {
        "sampler": sampler, "n_chains": n_chains, "n_steps": n_steps, "burn_in": burn_in,
        "thinning": thinning, "dim": d, "seed": repr(seed), "dtype": str(np_dtype.__name__),
        "options": {k: _readable(v) for k, v in sorted(options.items())}, "step_size": repr(step_size),
        "target": target.describe() if hasattr(target, "describe") else type(target).__name__,
        "gradient": gradient.describe() if hasattr(gradient, "describe") else type(gradient).__name__,
        "info": info_mode, "warmup_info": warmup_mode,
    }
    identity = None
    if checkpoint is not None:
        identity = run_identity(target, gradient, options, None if initial_position is None else to_numpy(x0))
        blocked = sorted(k for k, v in identity.items() if "undigestible" in v)
        if blocked and not resume:
            import warnings

            warnings.warn(f"checkpoint {os.fspath(checkpoint)!r} will be written but cannot be resumed: "
                          f"{identity[blocked[0]]['undigestible']} (define resume_identity() on that object)",
                          SmileRefWarning, stacklevel=2)
    start = 0
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        path = os.fspath(checkpoint)
        meta, arrays = load_checkpoint(path)
        _check_resume(path, meta, config, identity)
        try:
            state = unflatten_state(state, arrays)
        except (KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"checkpoint {path!r} does not hold a state of this sampler ({exc})") from None
        start = meta["step"]
        try:
            random.set_state(meta["rng"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CorruptFileError(f"checkpoint {path!r}: its random-generator state is unusable ({exc})") from None
        stored = arrays.get("samples")
        if stored is None or stored.shape != samples.shape or stored.dtype != samples.dtype:
            raise CorruptFileError(f"checkpoint {path!r}: 'samples' has shape "
                                   f"{None if stored is None else stored.shape}, expected {samples.shape}")
        n_done = min(n_draws, max(0, start - burn_in) // thinning)
        if not np.all(np.isfinite(stored[:, :n_done])):
            raise CorruptFileError(f"checkpoint {path!r}: the recorded samples contain NaN or inf")
        for key, v in flatten_state(state).items():
            if v.dtype.kind == "f" and np.any(np.isnan(v)):
                raise CorruptFileError(f"checkpoint {path!r}: sampler state entry {key!r} contains NaN")
        samples[...] = stored
        try:
            recorder.restore(arrays)
        except (KeyError, ValueError, TypeError) as exc:
            raise CorruptFileError(f"checkpoint {path!r}: its recorded info does not fit this run ({exc})") from None

    direct = bool(bk.is_numpy)  # NumPy positions are host arrays: record them without a block buffer
    pos_block: list = []
    pos_slots: list[int] = []
    info_block: list[dict] = []
    info_rows: list[int] = []

    def flush():
        nonlocal pos_block, pos_slots, info_block, info_rows
        xp = bk.xp
        if pos_block:
            host = to_numpy(xp.stack(pos_block, axis=1))  # (n, k, d): one transfer
            samples[:, pos_slots[0] : pos_slots[-1] + 1, :] = host
        if info_block:  # one transfer per key; the recorder keeps the rows and counts every step
            # typed records (StepInfo) are read by attribute: the Mapping lookup costs ~2 us per value
            get = getattr if isinstance(info_block[0], StepInfo) else (lambda blk, key: blk[key])
            # NumPy: np.array builds the (steps, n) block from equal-shape rows in C (3-10x faster than np.stack)
            stack = np.array if direct else (lambda rows: to_numpy(xp.stack(rows, axis=0)))
            recorder.add_block(info_rows[0], {key: stack([get(blk, key) for blk in info_block]) for key in info_block[0]})
        pos_block, pos_slots, info_block, info_rows = [], [], [], []

    def write_checkpoint(step):
        flush()
        meta = {"format": CHECKPOINT_FORMAT, "identity_version": IDENTITY_VERSION, "config": config,
                "identity": identity, "step": step, "rng": random.get_state()}
        buffers = {"samples": samples}
        buffers.update(recorder.to_arrays())
        save_checkpoint(checkpoint, state, meta, buffers)

    show = _progress_enabled(progress)
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=start, desc=sampler, unit="step", dynamic_ncols=True)
    t0 = time.perf_counter()
    try:
        for t in range(start, total):
            warm = t < burn_in
            state, step_info = algo.step(state, random, warm)
            info_block.append(step_info)
            info_rows.append(t)
            if not warm and (t - burn_in + 1) % thinning == 0:
                slot = (t - burn_in + 1) // thinning - 1
                if slot < n_draws:
                    if direct:  # host arrays: copy straight into the preallocated samples, no block
                        samples[:, slot, :] = state.position
                    else:
                        pos_block.append(state.position)
                        pos_slots.append(slot)
            if len(info_block) >= block_size:
                flush()
            if checkpoint_every is not None and (t + 1) % checkpoint_every == 0 and t + 1 < total:
                write_checkpoint(t + 1)
            if bar is not None:
                bar.update(1)
        flush()
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - t0
    if checkpoint is not None:
        write_checkpoint(total)
    cost = float(getattr(gradient, "cost", 1.0))
    n_evals = cost * (algo.init_grad_evals + total * algo.grad_evals_per_step)
    result = ChainResult(
        samples=samples, info=recorder.info, n_gradient_evals=n_evals, state=state, sampler=sampler,
        n_warmup=burn_in, thinning=thinning, seed=seed, backend=bk.name, dtype=np_dtype.__name__,
        wall_time=wall, meta={"config": config}, info_steps=recorder.steps, n_warmup_rows=recorder.n_warmup_rows,
        stats=recorder.stats, info_mode=info_mode, warmup_info_mode=warmup_mode,
    )
    return _check_health(result, strict, algo.judge_energy_error, algo.energy_var_target)


def _check_health(result: ChainResult, strict, check_energy: bool, energy_var_target=None) -> ChainResult:
    """Attach :func:`~smile_ref.run.health.run_health` to ``result``; warn (or raise) once if unhealthy."""
    if not isinstance(strict, bool):
        raise TypeError(f"strict must be a bool, got {strict!r}")
    result.health = health_from_stats(result.samples, result.stats, sampler=result.sampler, check_energy=check_energy,
                                      energy_var_target=energy_var_target)
    if not result.health.ok:
        if strict:
            raise RunHealthError(result.health.message())
        warnings.warn(result.health.message(), RunHealthWarning, stacklevel=3)
    return result


def _readable(value) -> Any:
    """A JSON-friendly, address-free rendering of an option value for ``meta["config"]``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, float) or np.isfinite(value) else repr(value)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields") and len(value) <= 16:
        return [_readable(v) for v in value]
    if isinstance(value, dict) and len(value) <= 32:
        return {str(k): _readable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # a config record: its fields
        return {"__config__": type(value).__name__,
                **{f.name: _readable(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    name = getattr(value, "name", None)
    label = type(value).__name__ + (f"({name!r})" if isinstance(name, str) else "")
    if hasattr(value, "shape"):
        label += f" shape {tuple(value.shape)}"
    return f"<{label}>"


_STRUCTURE = ("sampler", "n_chains", "n_steps", "burn_in", "thinning", "dim", "dtype", "seed", "step_size", "info",
              "warmup_info")


def _check_resume(path: str, meta: dict, config: dict, identity: dict) -> None:
    """Refuse (ResumeMismatchError / CorruptFileError, naming the field) unless ``meta`` is this run's."""
    older = {"smile_ref.checkpoint/2": "records info at every step and no exact step counters",
             "smile_ref.checkpoint/3": "stores the SMILE/MCLMC tuner and preconditioner states outside their "
                                       "adaptation state"}
    if meta.get("format") in older:
        raise ResumeMismatchError(
            f"checkpoint {path!r} has format {meta['format']!r}, which {older[meta['format']]}; this run_chains "
            f"writes {CHECKPOINT_FORMAT!r} and cannot continue it (delete it, or rerun with resume=False)")
    if meta.get("format") != CHECKPOINT_FORMAT or not isinstance(meta.get("identity"), dict):
        raise ResumeMismatchError(
            f"checkpoint {path!r} was not written by this version of run_chains (format "
            f"{meta.get('format', 'unversioned')!r}, expected {CHECKPOINT_FORMAT!r}); it carries no identity digests "
            "to verify the target, gradient, options and initial positions against, so it cannot be resumed "
            "safely (delete it, or rerun with resume=False)")
    if meta.get("identity_version") != IDENTITY_VERSION:
        raise ResumeMismatchError(f"checkpoint {path!r} uses identity digests of version "
                                  f"{meta.get('identity_version')!r}, this smile_ref computes {IDENTITY_VERSION}")
    old = meta.get("config")
    if not isinstance(old, dict):
        raise CorruptFileError(f"checkpoint {path!r}: 'config' is missing from its metadata")
    for key in _STRUCTURE:
        if old.get(key) != config[key]:
            raise ResumeMismatchError(
                f"checkpoint {path!r} was written by a different configuration: {key} is {old.get(key)!r} there and "
                f"{config[key]!r} here; refusing to resume (delete the checkpoint or change the path)")
    check_identity(path, meta["identity"], identity)
    step = meta.get("step")
    total = config["burn_in"] + config["n_steps"]
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= total:
        raise CorruptFileError(f"checkpoint {path!r}: step counter {step!r} is not an integer in [0, {total}]")
