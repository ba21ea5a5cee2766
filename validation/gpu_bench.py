"""Environment, time per step and summary for ``validation/gpu_run.sh`` (the one-command GPU run).

Subcommands (each one process, run by ``gpu_run.sh`` under its own ``timeout``)::

    python -m validation.gpu_bench env     OUT/env.json    [--standin]
    python -m validation.gpu_bench timing  OUT/timing.json --side {cupy,jax,numpy} [--standin] [--budget S]
    python -m validation.gpu_bench summary OUT             [--total-budget S]

Run from the repository root, where ``validation`` and ``smile_ref`` import (``gpu_run.sh`` does, and puts the
root on ``PYTHONPATH`` for the processes it starts).

env
    GPU name, compute capability, memory, CUDA driver/runtime versions, CuPy, JAX (and its devices),
    BlackJAX, NumPy and Python versions, and the **device memory bandwidth**: ``cupy.copyto`` of a
    1 GiB float64 array timed with CUDA events, bytes counted once read and once written
    (``2 x 1 GiB / t``; best of 10).  ``--standin``: the same keys, bandwidth from ``np.copyto`` on the
    host (a stand-in number, not a GPU one).

timing
    Seconds per step of the samplers ``mclmc``, ``smile``, ``psmile``, ``sgld`` at
    ``n_chains x d`` in ``CHAINS x DIMS`` (``--standin``: tiny sizes).  Target: the standard Gaussian
    ``N(0, I_d)`` (:class:`StdGaussian`: ``g = -x``, ``log p = -|x|^2/2``); MCLMC uses the exact
    gradient, SMILE / pSMILE / SGLD a synthetic isotropic gradient noise (:class:`IsoNoise`, one
    ``(n, d)`` normal draw per step, as the paper's analytical benchmark); fixed step sizes, no tuner.

    * side ``cupy``: smile_ref on CuPy float64 with the device random source (``rng="device"``),
      the fused CuPy kernels on; at the cells of ``UNFUSED_CELLS`` also with them off
      (``SMILE_REF_CUPY_FUSED=0``), and MCLMC also with the host random source.  ``--standin``:
      ``array_api_strict`` on ``device1`` with the host random source.
    * side ``numpy``: smile_ref on NumPy float64 (host random source).
    * side ``jax``: BlackJAX's MCLMC (``isokinetic_mclachlan``, ``jax.jit(jax.vmap(step))``, float64,
      ``lax.scan`` over ``SCAN`` steps per call, state donated) on JAX's default device; BlackJAX has
      no SMILE, so only MCLMC has a BlackJAX column.

    A timed cell is: build + ``init``, two warm-up steps (kernel compilation), then blocks of ``k``
    steps ending with a device synchronisation, until the cell's time budget; the reported time is
    the **minimum** over blocks of ``block time / k`` (the median is in the JSON).  Cells run in
    increasing ``n d``; a cell is **skipped** (with the reason written down) when its predicted
    memory exceeds 85 % of the free device memory (bytes per element calibrated on the first cell)
    or its predicted time (affine in ``n d``, fitted on the cells already measured) does not fit the
    cell cap or the stage's remaining budget.

    **Bandwidth floor** of one step: ``2 x 8 x n d x A`` bytes, where ``A`` is the number of
    ``(n, d)`` arrays in the sampler's state (each read once and written once per step; the gradient
    and the random numbers are taken as generated in registers, so this is a lower bound no
    implementation can beat), divided by the measured copy bandwidth of ``env``; the JSON and
    the summary give ``t_step / t_floor``.

    The results are rewritten (atomically) after every cell, so a stage stopped by its timeout
    keeps the cells it finished.

summary
    Reads everything ``gpu_run.sh`` wrote to ``OUT`` and writes ``OUT/summary.md``: stage status,
    test counts, the agreement table, and the timing table with the ratios CuPy / BlackJAX,
    NumPy / CuPy, CuPy fused / unfused and CuPy / bandwidth floor; it checks the device tool's
    return limits (at most 8 files, each at most 16 MiB, at most two folders deep, names of letters,
    digits, ``._-``).
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import re
import statistics
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np

CHAINS = (1, 64, 1024, 4096)
DIMS = (100, 10_000, 1_000_000)
STANDIN_CHAINS = (1, 4)
STANDIN_DIMS = (10,)
SAMPLERS = ("mclmc", "smile", "psmile", "sgld")
UNFUSED_CELLS = ((64, 100), (64, 10_000), (1024, 10_000), (64, 1_000_000))
STANDIN_UNFUSED_CELLS = ((4, 10),)
PRIORITY_CELLS = ((1, 100), (64, 100), (64, 10_000), (1024, 10_000), (64, 1_000_000), (1, 10_000), (1024, 100),
                  (4096, 100), (4096, 10_000), (1, 1_000_000), (1024, 1_000_000), (4096, 1_000_000))
SCAN = 8
NOISE_SIGMA = 0.1
MAX_FILES, MAX_FILE_BYTES = 8, 16 * 2**20
_NAME_OK = re.compile(r"^[A-Za-z0-9._-]+$")


# ----------------------------------------------------------------------------------- helpers
def write_json(path: str, obj) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (:func:`smile_ref.io.atomic_write_text`)."""
    from smile_ref.io import atomic_write_text  # here: the env and summary subcommands do not import smile_ref

    atomic_write_text(path, json.dumps(obj, indent=1, default=str))


def read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _version(mod: str):
    try:
        m = __import__(mod)
        return getattr(m, "__version__", "?")
    except Exception as e:  # noqa: BLE001 - informational only
        return f"not importable ({type(e).__name__}: {e})"


def step_params(sampler: str, d: int) -> dict:
    """Fixed sampler options of the timing runs (no tuner, stable on ``N(0, I_d)``)."""
    if sampler == "mclmc":
        return {"step_size": 0.25 * math.sqrt(d), "L": math.sqrt(d), "tuner": None}
    if sampler in ("smile", "psmile"):
        return {"step_size": 0.25 * math.sqrt(d), "tuner": None}
    if sampler == "sgld":
        return {"step_size": 1e-2}
    raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")


class StdGaussian:
    """``N(0, I_d)``: ``log p(x) = -|x|^2 / 2`` (no constant), ``grad log p(x) = -x`` (rows of ``x``)."""

    def __init__(self, dim: int):
        self.dim = int(dim)
        self.name = "std_gaussian"

    def logdensity_and_grad(self, x):
        from smile_ref.backend import array_namespace

        xp = array_namespace(x)
        return -0.5 * xp.vecdot(x, x), -x

    def describe(self) -> dict:
        return {"name": self.name, "dim": self.dim}


def iso_noise(target, sigma: float):
    """Gradient estimator ``g_hat = -x + sigma z``, ``logp_hat = log p + sigma z . x``, ``z ~ N(0, I)``.

    The isotropic case of :class:`smile_ref.gradients.AdditiveNoise` without its dense ``(d, d)``
    Cholesky factor (which does not fit at ``d = 10^6``); one ``(n, d)`` normal draw per step.
    """
    from smile_ref.backend import array_namespace
    from smile_ref.gradients.base import GradientEstimator

    class IsoNoise(GradientEstimator):
        cost = 1.0
        stochastic = True

        def __init__(self):
            self.target, self.sigma = target, float(sigma)

        def draw(self, state, rng, x):
            return rng.normal(tuple(x.shape)), state

        def evaluate(self, x, batch):
            xp = array_namespace(x)
            lp, g = self.target.logdensity_and_grad(x)
            xi = self.sigma * batch
            return lp + xp.vecdot(xi, x), g + xi

    return IsoNoise()


def _count_state_arrays(state, n: int, d: int) -> int:
    """Number of ``(n, d)`` arrays in a sampler state (NamedTuples, tuples, lists, dicts, recursively)."""
    if hasattr(state, "shape") and tuple(state.shape) == (n, d):
        return 1
    if isinstance(state, dict):
        return sum(_count_state_arrays(v, n, d) for v in state.values())
    if isinstance(state, (tuple, list)):
        return sum(_count_state_arrays(v, n, d) for v in state)
    return 0


class AffineTime:
    """Per-sampler prediction of seconds per step, affine in ``n d``, from the cells measured so far."""

    def __init__(self):
        self.points: list[tuple[int, float]] = []

    def add(self, nd: int, t: float) -> None:
        self.points.append((nd, t))
        self.points.sort()

    def predict(self, nd: int) -> float | None:
        """Piecewise-linear in ``n d`` through the measured points; beyond the largest, the slope of
        the last two (at least 0; one point: proportional, i.e. all time bandwidth-like)."""
        pts = self.points
        if not pts:
            return None
        if len(pts) == 1:
            return pts[0][1] * max(1.0, nd / pts[0][0])
        if nd <= pts[0][0]:
            return pts[0][1]
        for (n0, t0), (n1, t1) in zip(pts, pts[1:]):
            if nd <= n1:
                return t0 + (t1 - t0) * (nd - n0) / max(n1 - n0, 1)
        (n0, t0), (n1, t1) = pts[-2], pts[-1]
        slope = max((t1 - t0) / max(n1 - n0, 1), t1 / n1 if n1 == n0 else 0.0)
        return t1 + slope * (nd - n1)


# ----------------------------------------------------------------------------------- env
def _cupy_env() -> dict:
    import cupy

    rt = cupy.cuda.runtime
    dev = cupy.cuda.Device(0)
    props = rt.getDeviceProperties(0)
    name = props.get("name", b"")
    free, total = rt.memGetInfo()
    out = {"gpu_name": name.decode() if isinstance(name, bytes) else str(name),
           "compute_capability": dev.compute_capability, "device_count": rt.getDeviceCount(),
           "memory_total_bytes": int(total), "memory_free_bytes": int(free),
           "multiprocessors": int(props.get("multiProcessorCount", 0)),
           "cuda_driver_version": rt.driverGetVersion(), "cuda_runtime_version": rt.runtimeGetVersion(),
           "cupy": cupy.__version__}
    try:
        out["cupy_config"] = {"cuda_path": cupy.cuda.get_cuda_path(), "nvrtc": cupy.cuda.nvrtc.getVersion()}
    except Exception as e:  # noqa: BLE001 - informational only
        out["cupy_config"] = f"{type(e).__name__}: {e}"
    return out


def fused_probe() -> dict:
    """Compile and run the fused CuPy kernels once on a small problem, against the Array-API path."""
    import cupy
    import array_api_compat.cupy as xcp

    from smile_ref.integrators import cupy_fused
    from smile_ref.integrators.isokinetic import _esh_core, _position_core

    r = np.random.default_rng(0)
    u = r.normal(size=(8, 50))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    cu, cg, cx = (cupy.asarray(a) for a in (u, r.normal(size=(8, 50)), r.normal(size=(8, 50))))
    t0 = time.perf_counter()
    a_u, a_k = cupy_fused.esh(cu, cg, 0.3, 50)
    b_u, b_k = _esh_core(xcp, cu, cg, 0.3, 50)
    pos_equal = bool(cupy.all(cupy_fused.position(cx, cu, 0.3) == _position_core(cx, cu, 0.3, None)))
    cupy.cuda.get_current_stream().synchronize()
    return {"ok": True, "compile_and_run_s": time.perf_counter() - t0, "position_bit_identical": pos_equal,
            "esh_u_max_abs_dev": float(cupy.max(cupy.abs(a_u - b_u))),
            "esh_dk_max_abs_dev": float(cupy.max(cupy.abs(a_k - b_k)))}


def bandwidth_cupy(nbytes: int = 2**30, reps: int = 10) -> dict:
    """Device-to-device ``cupy.copyto`` bandwidth, CUDA events, best of ``reps`` (bytes read + written)."""
    import cupy

    n = nbytes // 8
    a = cupy.ones(n, dtype=cupy.float64)
    b = cupy.empty_like(a)
    cupy.copyto(b, a)
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    ts = []
    for _ in range(reps):
        start.record()
        cupy.copyto(b, a)
        stop.record()
        stop.synchronize()
        ts.append(cupy.cuda.get_elapsed_time(start, stop) * 1e-3)
    del a, b
    cupy.get_default_memory_pool().free_all_blocks()
    t = min(ts)
    return {"method": "cupy.copyto float64, CUDA events, best of %d" % reps, "array_bytes": 8 * n,
            "t_copy_s": t, "t_copy_median_s": statistics.median(ts), "copy_gbps": 2 * 8 * n / t / 1e9}


def bandwidth_host(nbytes: int = 2**26, reps: int = 5) -> dict:
    """Host ``np.copyto`` bandwidth (the stand-in's number), best of ``reps`` (bytes read + written)."""
    n = nbytes // 8
    a, b = np.ones(n), np.empty(n)
    np.copyto(b, a)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        np.copyto(b, a)
        ts.append(time.perf_counter() - t0)
    t = min(ts)
    return {"method": "np.copyto float64 on the host (stand-in), best of %d" % reps, "array_bytes": 8 * n,
            "t_copy_s": t, "t_copy_median_s": statistics.median(ts), "copy_gbps": 2 * 8 * n / t / 1e9}


def _jax_env(standin: bool) -> dict:
    if standin:  # importing jax costs seconds; the stand-in needs only the version
        from importlib import metadata

        try:
            return {"jax": metadata.version("jax"), "jax_backend": "not queried (stand-in)", "jax_devices": []}
        except metadata.PackageNotFoundError:
            return {"jax": "not installed", "jax_backend": None, "jax_devices": []}
    try:
        import jax

        devs = jax.devices()
        return {"jax": jax.__version__, "jax_backend": jax.default_backend(),
                "jax_devices": [str(d) for d in devs]}
    except Exception as e:  # noqa: BLE001 - informational only
        return {"jax": f"not importable ({type(e).__name__}: {e})"}


def env(out: str, standin: bool) -> dict:
    res = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "standin": standin,
           "python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
           "numpy": np.__version__, "scipy": _version("scipy"), "array_api_compat": _version("array_api_compat"),
           "array_api_strict": _version("array_api_strict"), "blackjax": _version("blackjax"),
           "env": {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "XLA_PYTHON_CLIENT_PREALLOCATE",
                                              "SMILE_REF_CUPY_FUSED", "CUDA_VISIBLE_DEVICES") if k in os.environ}}
    try:
        import smile_ref

        res["smile_ref"] = getattr(smile_ref, "__version__", "?")
        res["smile_ref_file"] = smile_ref.__file__
    except Exception as e:  # noqa: BLE001
        res["smile_ref"] = f"not importable ({type(e).__name__}: {e})"
    write_json(out, res)
    if standin:
        res.update(gpu_name=None, cupy=_version("cupy"), backend="array_api_strict/device1")
        res["bandwidth"] = bandwidth_host()
    else:
        try:
            res.update(_cupy_env())
            res["backend"] = "cupy"
            write_json(out, res)
            res["bandwidth"] = bandwidth_cupy()
        except Exception as e:  # noqa: BLE001 - recorded, the other stages still run
            res["cupy_error"] = f"{type(e).__name__}: {e}"
        write_json(out, res)
        if "cupy_error" not in res:
            try:  # gpu_run.sh turns the fast path off for the later stages when this fails
                res["fused_probe"] = fused_probe()
            except Exception as e:  # noqa: BLE001
                res["fused_probe"] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000]}
    write_json(out, res)
    res.update(_jax_env(standin))
    write_json(out, res)
    print(json.dumps({k: res.get(k) for k in ("gpu_name", "cupy", "jax", "jax_backend", "bandwidth", "fused_probe")},
                     default=str))
    return res


# ----------------------------------------------------------------------------------- timing
class _Device:
    """What the timing loop needs from a backend: sync, free memory, peak bytes of a call."""

    def __init__(self, side: str, standin: bool, max_host_gb: float):
        self.side, self.standin, self.cupy = side, standin, None
        self.max_host_bytes = max_host_gb * 1e9
        if side == "cupy" and not standin:
            import cupy

            self.cupy = cupy

    def sync(self) -> None:
        if self.cupy is not None:
            self.cupy.cuda.get_current_stream().synchronize()

    def free_bytes(self) -> float:
        if self.cupy is not None:
            free, _ = self.cupy.cuda.runtime.memGetInfo()
            return float(free + self.cupy.get_default_memory_pool().free_bytes())
        return self.max_host_bytes

    def reset_peak(self) -> None:
        if self.cupy is not None:
            self.cupy.get_default_memory_pool().free_all_blocks()

    def peak_bytes(self) -> float | None:
        """Bytes the CuPy pool holds (its high-water mark since :meth:`reset_peak`); None off CuPy."""
        if self.cupy is not None:
            return float(self.cupy.get_default_memory_pool().total_bytes())
        return None


def _time_blocks(step, sync, t_step_guess: float, budget: float) -> dict:
    """Blocks of ``k`` steps (block about budget / 5) until ``budget`` s; min and median s/step."""
    k = int(max(1, min(200, (budget / 5) / max(t_step_guess, 1e-7))))
    per, t_start = [], time.perf_counter()
    while len(per) < 3 or (time.perf_counter() - t_start < budget and len(per) < 50):
        t0 = time.perf_counter()
        for _ in range(k):
            step()
        sync()
        per.append((time.perf_counter() - t0) / k)
    return {"t_step_s": min(per), "t_step_median_s": statistics.median(per), "blocks": len(per), "steps_per_block": k}


def _ours_cell(sampler, n, d, backend_name, device, rng_kind, dev: _Device, budget: float, fused: bool) -> dict:
    from smile_ref.backend import get_backend
    from smile_ref.backend.random import make_random
    from smile_ref.gradients.exact import Exact
    from smile_ref.integrators import cupy_fused
    from smile_ref.samplers import base as registry

    cupy_fused.set_enabled(None)
    cupy_fused.set_enabled(fused and cupy_fused.enabled())  # SMILE_REF_CUPY_FUSED=0 (failed probe) wins
    try:
        bk = get_backend(backend_name, "float64", device)
        target = StdGaussian(d)
        grad = Exact(target) if sampler == "mclmc" else iso_noise(target, NOISE_SIGMA)
        opts = step_params(sampler, d)
        step_size = opts.pop("step_size")
        kernel = registry.get(sampler)(target, grad, bk, step_size=step_size, n_warmup=0, **opts)
        rng = make_random(0, bk, rng_kind)
        dev.reset_peak()
        t0 = time.perf_counter()
        state = kernel.init(rng.normal((n, d)), rng)
        dev.sync()
        t_init = time.perf_counter() - t0
        holder = {"state": state, "rejected": 0}
        n_arrays = _count_state_arrays(state, n, d)

        def step():
            holder["state"], info = kernel.step(holder["state"], rng, False)
            holder["info"] = info

        t0 = time.perf_counter()
        step()
        dev.sync()
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        step()
        dev.sync()
        t_second = time.perf_counter() - t0
        peak = dev.peak_bytes()
        row = {"t_init_s": t_init, "t_first_step_s": t_first, "state_arrays_nd": n_arrays,
               "peak_pool_bytes": peak}
        row.update(_time_blocks(step, dev.sync, t_second, budget))
        from smile_ref.backend import to_numpy

        row["rejected_last_step"] = int(np.sum(to_numpy(holder["info"]["rejected"])))
        row["fused_active"] = bool(backend_name == "cupy" and cupy_fused.enabled())
        return row
    finally:
        cupy_fused.set_enabled(None)


def _bj_cell(n, d, dev_budget: float) -> dict:
    """BlackJAX MCLMC: jit(vmap(step)) in a ``lax.scan`` of ``SCAN`` steps; s/step, compile time."""
    import jax
    import jax.numpy as jnp
    import blackjax
    from blackjax.mcmc import integrators as I

    jax.config.update("jax_enable_x64", True)
    p = step_params("mclmc", d)
    eps, L = p["step_size"], p["L"]

    def logdensity(x):
        return -0.5 * jnp.sum(x * x)

    k0, k1, key = jax.random.split(jax.random.key(0), 3)
    t0 = time.perf_counter()
    x0 = jax.random.normal(k0, (n, d), dtype=jnp.float64)
    alg = blackjax.mclmc(logdensity, L=L, step_size=eps, integrator=I.isokinetic_mclachlan)
    state = jax.jit(jax.vmap(alg.init))(x0, jax.random.split(k1, n))
    jax.block_until_ready(state)
    t_init = time.perf_counter() - t0

    def one(carry, _):
        key, st = carry
        key, sub = jax.random.split(key)
        st, info = jax.vmap(alg.step)(jax.random.split(sub, n), st)
        return (key, st), info.energy_change[0]

    def fn(carry):
        return jax.lax.scan(one, carry, None, length=SCAN)

    carry = [(key, state)]
    t0 = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=0).lower(carry[0]).compile()
    compile_s = time.perf_counter() - t0

    def call():
        carry[0], out = compiled(carry[0])
        carry.append(out)
        del carry[1:]

    def sync():
        jax.block_until_ready(carry)

    t0 = time.perf_counter()
    call()
    sync()
    t_first = (time.perf_counter() - t0) / SCAN
    row = _time_blocks(call, sync, t_first * SCAN, dev_budget)
    row["t_step_s"] /= SCAN
    row["t_step_median_s"] /= SCAN
    row["steps_per_block"] *= SCAN
    row.update(t_init_s=t_init, compile_s=compile_s, t_first_step_s=t_first, state_arrays_nd=3,
               jax_device=str(jax.devices()[0]))
    try:
        row["peak_pool_bytes"] = float((jax.devices()[0].memory_stats() or {})["peak_bytes_in_use"])
    except Exception:  # noqa: BLE001 - CPU devices have no memory stats
        row["peak_pool_bytes"] = None
    return row


def _jax_free_bytes(default: float) -> float:
    try:
        import jax

        st = jax.devices()[0].memory_stats() or {}
        if "bytes_limit" in st:
            return float(st["bytes_limit"] - st.get("bytes_in_use", 0))
    except Exception:  # noqa: BLE001 - CPU devices have no memory stats
        pass
    return default


def timing(out: str, side: str, standin: bool, budget: float, cell_cap: float, cell_budget: float,
           env_path: str | None, max_host_gb: float, chains=None, dims=None) -> dict:
    """Run the timing cells of one side, rewriting ``out`` (shared by all sides) after every cell."""
    t_stage = time.perf_counter()
    chains = tuple(chains or (STANDIN_CHAINS if standin else CHAINS))
    dims = tuple(dims or (STANDIN_DIMS if standin else DIMS))
    envd = read_json(env_path) if env_path else None
    bw = (envd or {}).get("bandwidth")
    if not bw:  # env.json missing or without a bandwidth: measure here (device if possible, else host)
        try:
            bw = bandwidth_host() if (standin or side != "cupy") else bandwidth_cupy()
        except Exception:  # noqa: BLE001 - no CuPy: the error is recorded below
            bw = bandwidth_host()
    res = read_json(out) or {}
    res.setdefault("sides", {})
    res["bandwidth"] = res.get("bandwidth") or bw
    res["settings"] = {"chains": chains, "dims": dims, "samplers": SAMPLERS, "noise_sigma": NOISE_SIGMA,
                       "scan": SCAN, "standin": standin, "cell_budget_s": cell_budget, "cell_cap_s": cell_cap}
    me = {"side": side, "standin": standin, "budget_s": budget, "rows": [], "skipped": [],
          "date_utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    res["sides"][side] = me
    write_json(out, res)

    if side == "cupy":
        backend_name, device, rng_kind = ("array_api_strict", "device1", "host") if standin else ("cupy", None, "device")
        if not standin:
            try:
                import cupy

                cupy.cuda.runtime.getDeviceCount()
            except Exception as e:  # noqa: BLE001
                me["error"] = f"no usable CuPy/GPU: {type(e).__name__}: {e}"[:500]
                write_json(out, res)
                print(me["error"])
                return res
    elif side == "numpy":
        backend_name, device, rng_kind = "numpy", None, "host"
    elif side == "jax":
        backend_name = device = rng_kind = None
        try:
            import blackjax  # noqa: F401
            import jax

            me["jax_backend"] = jax.default_backend()
            if jax.default_backend() != "gpu":
                me["note"] = f"JAX default backend is {jax.default_backend()!r}, not 'gpu': BlackJAX timings are not GPU timings"
        except Exception as e:  # noqa: BLE001
            me["error"] = f"jax/blackjax not importable: {type(e).__name__}: {e}"
            write_json(out, res)
            print(me["error"])
            return res
    else:
        raise ValueError(f"side must be 'cupy', 'jax' or 'numpy', got {side!r}")
    dev = _Device(side, standin, max_host_gb)
    if rng_kind == "device":  # CupyRandom has never run before this script: fall back to the host source
        try:
            from smile_ref.backend import get_backend
            from smile_ref.backend.random import make_random

            make_random(0, get_backend(backend_name, "float64", device), "device").normal((2, 3))
        except Exception as e:  # noqa: BLE001
            me["device_rng_error"] = f"{type(e).__name__}: {e}"[:500]
            print(f"device random source failed ({me['device_rng_error']}); timing with the host source")
            rng_kind = "host"
    bw_bytes_s = float(res["bandwidth"]["copy_gbps"]) * 1e9

    first = "fused" if side == "cupy" else "default"  # "fused": CuPy's fast path on (the default there)
    variants = [(first, s, True, rng_kind) for s in SAMPLERS] if side != "jax" else [("blackjax", "mclmc", None, None)]
    unfused_cells = STANDIN_UNFUSED_CELLS if standin else UNFUSED_CELLS
    # priority order: a spread of sizes first (so a short budget still covers small, medium and large
    # cells), the rest after; the first cell of >= 10^5 elements calibrates the memory prediction
    grid = {(n, d) for n in chains for d in dims}
    cells = [c for c in PRIORITY_CELLS if c in grid] + sorted(grid - set(PRIORITY_CELLS), key=lambda c: c[0] * c[1])
    pred = {}
    bytes_per_elem = {}
    fixed = {}  # (variant, sampler) -> seconds of the last cell outside its timed blocks
    for n, d in cells:
        todo = list(variants)
        if side == "cupy" and (n, d) in unfused_cells:
            todo += [("unfused", s, False, rng_kind) for s in ("mclmc", "smile")]
            if not standin and n * d <= 10**6:  # host draws at 10^7+ elements: seconds per step
                todo += [("host_rng", "mclmc", True, "host")]
        for variant, sampler, fused, rk in todo:
            key = (variant, sampler)
            tp = pred.setdefault(key, AffineTime()).predict(n * d)
            if tp is None and variant in ("unfused", "host_rng") and ("fused", sampler) in pred:
                tf = pred[("fused", sampler)].predict(n * d)
                tp = None if tf is None else 3.0 * tf  # no point of its own yet: 3x the fused time
            base = {"variant": variant, "sampler": sampler, "n_chains": n, "d": d}
            elapsed = time.perf_counter() - t_stage
            left = budget - elapsed
            # memory: bytes per (n d) element calibrated on the largest cell so far (n d >= 10^5), else
            # a default of 24 float64 arrays (smile_ref) or 12 (BlackJAX)
            bpe = bytes_per_elem.get(sampler, (12 if side == "jax" else 24) * 8)
            need = bpe * n * d
            free = _jax_free_bytes(dev.free_bytes()) if side == "jax" else dev.free_bytes()
            if need > 0.85 * free:
                me["skipped"].append({**base, "reason": "memory", "predicted_bytes": need, "free_bytes": free})
                print(f"skip {variant} {sampler} n={n} d={d}: predicted {need / 1e9:.1f} GB > 85% of {free / 1e9:.1f} GB")
                continue
            # a cell: its fixed cost (build, init, compilation; measured on the previous cell of this
            # variant) + about 6 steps outside the timed blocks + the timed blocks
            est = None if tp is None else 6 * tp + fixed.get(key, 0.0) + (n * d * 2e-8 if rk == "host" else 0.0)
            if est is not None and (est > cell_cap or est + cell_budget > left):
                me["skipped"].append({**base, "reason": "time", "predicted_t_step_s": tp, "predicted_cell_s": est,
                                      "stage_left_s": left, "cell_cap_s": cell_cap})
                print(f"skip {variant} {sampler} n={n} d={d}: predicted {tp:.3g} s/step, cell {est:.3g} s "
                      f"(cap {cell_cap:g} s, {left:.0f} s left)")
                continue
            if left < 1.0:
                me["skipped"].append({**base, "reason": "stage budget used up", "stage_left_s": left})
                continue
            t_cell = time.perf_counter()
            try:
                if side == "jax":
                    row = _bj_cell(n, d, min(cell_budget, max(left - 1.0, 0.1)))
                else:
                    row = _ours_cell(sampler, n, d, backend_name, device, rk, dev, min(cell_budget, max(left - 1.0, 0.1)),
                                     fused)
                if row.get("peak_pool_bytes") and n * d >= 100_000 and variant in ("fused", "blackjax"):
                    bytes_per_elem[sampler] = 1.25 * row["peak_pool_bytes"] / (n * d)
            except Exception as e:  # noqa: BLE001 - recorded; the next cell still runs
                msg = f"{type(e).__name__}: {e}"[:500]
                me["skipped"].append({**base, "reason": "error", "error": msg})
                print(f"error {variant} {sampler} n={n} d={d}: {msg}")
                if "memory" in msg.lower():  # larger cells of this sampler would fail too
                    bytes_per_elem[sampler] = max(bytes_per_elem.get(sampler, 0.0), 2.0 * free / (n * d))
                gc.collect()
                dev.reset_peak()
                write_json(out, res)
                continue
            pred[key].add(n * d, row["t_step_s"])
            row["cell_wall_s"] = time.perf_counter() - t_cell
            fixed[key] = max(0.0, row["cell_wall_s"] - row["t_step_median_s"] * row["steps_per_block"] * row["blocks"])
            floor_bytes = 2 * 8 * n * d * row["state_arrays_nd"]
            row.update(base, rng=rk, floor_bytes=floor_bytes, t_floor_s=floor_bytes / bw_bytes_s,
                       ratio_to_floor=row["t_step_s"] / (floor_bytes / bw_bytes_s))
            me["rows"].append(row)
            print(f"{side:5s} {variant:8s} {sampler:6s} n={n:5d} d={d:8d}  {row['t_step_s'] * 1e3:10.4f} ms/step  "
                  f"floor x{row['ratio_to_floor']:.1f}")
            write_json(out, res)
    me["runtime_s"] = time.perf_counter() - t_stage
    write_json(out, res)
    return res


# ----------------------------------------------------------------------------------- summary
def _fmt(v, nd=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}g}"
    return str(v)


def _stages(log_path: str) -> list[dict]:
    rows = []
    try:
        with open(log_path) as f:
            for line in f:
                if line.startswith("STAGE\t"):
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) >= 5:
                        rows.append({"stage": parts[1], "status": parts[2], "rc": parts[3], "wall_s": parts[4],
                                     "timeout_s": parts[5] if len(parts) > 5 else ""})
    except OSError:
        pass
    return rows


def _junit(path: str) -> dict | None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    tot = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    tot["failed_names"] = [f"{c.get('classname')}::{c.get('name')}" for s in suites for c in s.iter("testcase")
                           if c.find("failure") is not None or c.find("error") is not None][:50]
    return tot


def _log_counts(path: str) -> dict:
    """PASSED / FAILED / ERROR / SKIPPED lines of a ``pytest -v`` log (for a run stopped by its timeout)."""
    counts = {"PASSED": 0, "FAILED": 0, "ERROR": 0, "SKIPPED": 0}
    failed = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                for k in counts:
                    if f" {k}" in line and "::" in line:
                        counts[k] += 1
                        if k in ("FAILED", "ERROR"):
                            failed.append(line.strip()[:200])
                        break
    except OSError:
        pass
    counts["_failed_lines"] = failed
    return counts


def check_outdir(outdir: str) -> dict:
    """The device tool's return limits: <= 8 files, each <= 16 MiB, <= 2 folders deep, plain names."""
    files, problems = [], []
    for root, dirs, names in os.walk(outdir):
        rel = os.path.relpath(root, outdir)
        depth = 0 if rel == "." else rel.count(os.sep) + 1
        for nm in dirs + names:
            if not _NAME_OK.match(nm):
                problems.append(f"bad name: {os.path.join(rel, nm)}")
        for nm in names:
            p = os.path.join(root, nm)
            size = os.path.getsize(p)
            files.append({"path": os.path.normpath(os.path.join(rel, nm)), "bytes": size})
            if size > MAX_FILE_BYTES:
                problems.append(f"over 16 MiB: {nm} ({size} bytes)")
            if depth > 2:
                problems.append(f"too deep: {os.path.join(rel, nm)}")
    if len(files) > MAX_FILES:
        problems.append(f"{len(files)} files > {MAX_FILES}")
    return {"files": sorted(files, key=lambda f: f["path"]), "problems": problems}


def timing_table(t: dict) -> list[str]:
    sides = t.get("sides", {})
    idx = {}
    for side, s in sides.items():
        for r in s.get("rows", []):
            idx[(side, r["variant"], r["sampler"], r["n_chains"], r["d"])] = r
    cells = sorted({(r[2], r[3], r[4]) for r in idx}, key=lambda c: (c[0], c[1] * c[2], c[2]))
    head = ["sampler", "n_chains", "d", "CuPy ms", "CuPy unfused ms", "NumPy ms", "BlackJAX ms", "CuPy / BJ",
            "NumPy / CuPy", "unfused / fused", "floor ms", "CuPy / floor"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s, n, d in cells:
        c = idx.get(("cupy", "fused", s, n, d))
        u = idx.get(("cupy", "unfused", s, n, d))
        npy = idx.get(("numpy", "default", s, n, d))
        bj = idx.get(("jax", "blackjax", s, n, d))
        ms = lambda r: None if r is None else r["t_step_s"] * 1e3  # noqa: E731
        ratio = lambda a, b: None if a is None or b is None else a["t_step_s"] / b["t_step_s"]  # noqa: E731
        out.append("| " + " | ".join([s, str(n), f"{d:,}", _fmt(ms(c)), _fmt(ms(u)), _fmt(ms(npy)), _fmt(ms(bj)),
                                      _fmt(ratio(c, bj)), _fmt(ratio(npy, c)), _fmt(ratio(u, c)),
                                      _fmt(None if c is None else c["t_floor_s"] * 1e3),
                                      _fmt(None if c is None else c["ratio_to_floor"])]) + " |")
    skipped = [(side, k) for side, sd in sides.items() for k in sd.get("skipped", [])]
    if skipped:
        out += ["", "Skipped cells:", ""]
        for side, k in skipped:
            why = k["reason"]
            if why == "memory":
                why += f" (predicted {k['predicted_bytes'] / 1e9:.1f} GB, free {k['free_bytes'] / 1e9:.1f} GB)"
            elif why == "time":
                why += f" (predicted {k['predicted_t_step_s']:.3g} s/step, cell {k['predicted_cell_s']:.3g} s)"
            elif why == "error":
                why += f": {k['error'][:200]}"
            out.append(f"- {side} {k['variant']} {k['sampler']} n={k['n_chains']} d={k['d']:,}: {why}")
    for side, sd in sides.items():
        for k in ("note", "error", "device_rng_error"):
            if sd.get(k):
                out.append(f"- {side} {k}: {sd[k]}")
    return out


def summary(outdir: str, total_budget: float) -> str:
    envd = read_json(os.path.join(outdir, "env.json")) or {}
    val = read_json(os.path.join(outdir, "validate.json")) or {}
    tim = read_json(os.path.join(outdir, "timing.json")) or {}
    junit = _junit(os.path.join(outdir, "tests.xml"))
    stages = _stages(os.path.join(outdir, "run.log"))
    md = ["# smile_ref GPU run: summary", ""]
    md.append(f"Stand-in run (array_api_strict device1 / host NumPy; NOT GPU numbers): {envd.get('standin')}  ")
    md.append(f"Device: {envd.get('gpu_name')}; CUDA driver {envd.get('cuda_driver_version')}, runtime "
              f"{envd.get('cuda_runtime_version')}; CuPy {envd.get('cupy')}; JAX {envd.get('jax')} "
              f"({envd.get('jax_backend')}); BlackJAX {envd.get('blackjax')}; NumPy {envd.get('numpy')}; "
              f"Python {envd.get('python')}  ")
    bw = envd.get("bandwidth") or {}
    md.append(f"Bandwidth: {_fmt(bw.get('copy_gbps'))} GB/s ({bw.get('method')})  ")
    md.append(f"Fused CuPy kernels probe: {json.dumps(envd.get('fused_probe'))}")
    md += ["", "## Stages", "", "| stage | status | rc | wall s | timeout s |", "|---|---|---|---|---|"]
    md += [f"| {s['stage']} | {s['status']} | {s['rc']} | {s['wall_s']} | {s['timeout_s']} |" for s in stages]
    tot = sum(float(s["wall_s"]) for s in stages if s["wall_s"].replace(".", "", 1).isdigit())
    md.append(f"\nTotal wall time of the stages: {tot:.0f} s (budget {total_budget:.0f} s)")
    md += ["", "## Tests", ""]
    if junit:
        md.append(f"{junit['tests']} tests, {junit['failures']} failures, {junit['errors']} errors, "
                  f"{junit['skipped']} skipped")
        md += [f"- FAILED {n}" for n in junit["failed_names"]]
    else:
        counts = _log_counts(os.path.join(outdir, "tests.log"))
        failed = counts.pop("_failed_lines")
        md.append("no junit file (the stage did not finish); counted from tests.log: "
                  + ", ".join(f"{v} {k.lower()}" for k, v in counts.items()))
        md += [f"- {ln}" for ln in failed][:50]
    md += ["", "## Backend agreement", ""]
    for part in ("agreement", "fused_agreement"):
        rows = val.get(part)
        if rows:
            keys = list(rows[0])
            md += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            md += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
            md.append("")
    for part in ("analytical", "uci"):
        rows = val.get(part)
        md += [f"## {part} ({_fmt(val.get(part + '_runtime_s'))} s)", ""]
        if rows:
            keys = list(rows[0])
            md += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
            md += ["| " + " | ".join(_fmt(r.get(k)) for k in keys) + " |" for r in rows]
        else:
            md.append(f"not run or not finished: {val.get(part + '_error', 'no result')}")
        md.append("")
    md += ["## Time per step (minimum over blocks)", ""]
    if envd.get("standin"):
        md += ["Stand-in run: the CuPy columns are smile_ref on array_api_strict device1, BlackJAX runs on JAX's "
               "CPU backend, the floor uses the host copy bandwidth. None of these are GPU numbers.", ""]
    md += timing_table(tim)
    act = {r.get("fused_active") for r in tim.get("sides", {}).get("cupy", {}).get("rows", []) if r["variant"] == "fused"}
    if act:
        md.append(f"\nFused CuPy kernels active in the 'CuPy' column: {sorted(act, key=str)}")
    chk = check_outdir(outdir)
    md += ["", "## Output folder", ""]
    md += [f"- {f['path']}: {f['bytes']} bytes" for f in chk["files"]]
    md.append("- within the device tool's return limits" if not chk["problems"] else
              "- PROBLEMS: " + "; ".join(chk["problems"]))
    text = "\n".join(md) + "\n"
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("env")
    e.add_argument("out")
    e.add_argument("--standin", action="store_true")
    t = sub.add_parser("timing")
    t.add_argument("out")
    t.add_argument("--side", required=True, choices=["cupy", "jax", "numpy"])
    t.add_argument("--standin", action="store_true")
    t.add_argument("--budget", type=float, default=60.0, help="seconds for the whole stage")
    t.add_argument("--cell-budget", type=float, default=None, help="seconds of timed blocks per cell")
    t.add_argument("--cell-cap", type=float, default=None, help="skip cells predicted to take longer")
    t.add_argument("--env", default=None, help="env.json with the measured bandwidth")
    t.add_argument("--max-host-gb", type=float, default=None)
    t.add_argument("--chains", type=int, nargs="+")
    t.add_argument("--dims", type=int, nargs="+")
    s = sub.add_parser("summary")
    s.add_argument("outdir")
    s.add_argument("--total-budget", type=float, default=480.0)
    a = ap.parse_args(argv)
    if a.cmd == "env":
        env(a.out, a.standin)
    elif a.cmd == "timing":
        cell_budget = a.cell_budget if a.cell_budget is not None else (0.05 if a.standin else 0.4)
        cell_cap = a.cell_cap if a.cell_cap is not None else (2.0 if a.standin else 15.0)
        max_host = a.max_host_gb if a.max_host_gb is not None else (1.0 if a.standin else 64.0)
        timing(a.out, a.side, a.standin, a.budget, cell_cap, cell_budget, a.env, max_host, a.chains, a.dims)
    else:
        summary(a.outdir, a.total_budget)
    return 0


if __name__ == "__main__":
    sys.exit(main())
