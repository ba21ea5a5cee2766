"""GPU validation of smile_ref on CuPy (issue 8).

STATUS: ready and tested with the array_api_strict stand-in (``--allow-cpu-standin``); NOT yet run on
a GPU -- no GPU time was left for the session that wrote it, and none was lent to the next one.

Checks
------
1. backend agreement: identical seeds (the host RandomSource draws every random number on the host,
   so both runs consume the same normals) give the same trajectories on NumPy and on the other
   backend for ``mclmc``, ``smile``, ``psmile``, ``sgld`` (``run_chains(..., backend=...)``); max abs
   deviation of the recorded samples vs a float tolerance (1e-8 in float64, 1e-3 in float32).  The
   NumPy reference runs in the SAME dtype: the host generator draws float32 normals with a different
   algorithm than float64 ones, so float32 vs float64 runs are different random streams.
2. the quick analytical bias benchmark (``smile_ref.verification.analytical.run_benchmark`` with
   ``QUICK_CONFIG`` and ``backend``/``dtype``/``device`` set; ``--bench-scale`` shrinks it).
3. the quick UCI benchmark (``smile_ref.verification.uci.run_uci`` with the quick budget on airfoil and energy,
   DE / SMILE / pSMILE / SGLD; ``--tiny``: tiny budget, energy, DE and SMILE); compare its table with
   ``docs/results/uci-benchmark.md`` (CPU): the numbers agree in distribution, not bit for bit, because the
   GPU's summation order changes pre-training and the chains amplify the difference.
4. throughput: steps/s of ``smile`` and ``mclmc`` (McLachlan, fixed step) for d in ``--dims`` and
   chains in ``--chains`` (default {100, 10000} x {64, 1024}).

Usage::

    python validation/gpu_validate.py --out validation/results/gpu          # needs CuPy + a GPU
    python validation/gpu_validate.py --allow-cpu-standin --tiny             # array_api_strict device1

Without a GPU and without ``--allow-cpu-standin`` it prints why and exits with code 0.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SAMPLERS = {"mclmc": {"burn_in": 20}, "smile": {"tuner": None}, "psmile": {"tuner": None}, "sgld": {}}


def _gpu_available() -> str | None:
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        return None
    except Exception as e:  # noqa: BLE001 - any failure means "no usable GPU"
        return f"{type(e).__name__}: {e}"


def backend_agreement(backend, device, dtype, n_steps=50, n_chains=4, d=10):
    from smile_ref.gradients.noise import AdditiveNoise
    from smile_ref.run.driver import run_chains
    from smile_ref.targets.gaussian import Gaussian

    tgt = Gaussian(np.zeros(d), np.diag(np.linspace(0.5, 2.0, d) ** 2))
    x0 = np.random.default_rng(5).normal(size=(n_chains, d)).astype(dtype)
    tol = 1e-8 if dtype == "float64" else 1e-3
    rows = []
    for name, opts in SAMPLERS.items():
        opts = dict(opts)
        burn = opts.pop("burn_in", 0)
        grad = None if name == "mclmc" else AdditiveNoise(tgt, 0.25)
        step = {"mclmc": 0.5, "smile": 0.05, "psmile": 0.05, "sgld": 0.01}[name]
        kw = dict(n_chains=n_chains, n_steps=n_steps, burn_in=burn, seed=11, gradient=grad, step_size=step,
                  initial_position=x0, progress=False, **opts)
        ref = run_chains(name, tgt, backend="numpy", dtype=dtype, **kw)
        oth = run_chains(name, tgt, backend=backend, dtype=dtype, device=device, **kw)
        dev = float(np.max(np.abs(np.asarray(oth.samples, dtype=np.float64) - ref.samples)))
        rows.append({"sampler": name, "backend": f"{backend}/{device}/{dtype}", "max_abs_dev": dev,
                     "tol": tol, "ok": bool(dev < tol)})
    return rows


def analytical(backend, device, dtype, scale=1.0):
    from smile_ref.verification.analytical import QUICK_CONFIG, run_benchmark

    cfg = dict(QUICK_CONFIG, backend=backend, dtype=dtype, device=device, progress=False, workers=1)
    if scale < 1.0:
        cfg.update(noises=["iso"], samplers=["smile"], step_sizes={"smile": [3e-2]}, n_replicates=2,
                   chains_per_replicate=4, n_steps=max(20, int(2000 * scale)), burn_in=max(10, int(500 * scale)),
                   thinning=1)
    out = run_benchmark(cfg)
    return [{k: r[k] for k in ("noise", "sampler", "step_size", "b2_mean", "b2_se")} for r in out["records"]], \
        out["runtime_s"]


def uci(backend, device, dtype, tiny=False):
    import tempfile

    from smile_ref.ensembles import EnsembleConfig
    from smile_ref.verification.uci import run_uci

    cfg = EnsembleConfig.tiny() if tiny else EnsembleConfig.quick()
    datasets, methods = (("energy",), ("de", "smile")) if tiny else (("airfoil", "energy"), ("de", "smile", "psmile", "sgld"))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        rows = run_uci(datasets, (0,), methods, config=cfg, out_dir=work, backend=backend, dtype=dtype, device=device,
                       progress=False, log=lambda *a: None)
    keys = ("dataset", "method", "lppd", "rmse", "coverage_90", "grad_evals", "wall_time")
    return [{k: r[k] for k in keys} for r in rows], time.perf_counter() - t0


def throughput(backend, device, dtype, dims, chains, n_steps):
    from smile_ref.run.driver import run_chains
    from smile_ref.targets.gaussian import Gaussian

    rows = []
    for d in dims:
        tgt = Gaussian(np.zeros(d), np.eye(d))
        for n in chains:
            for name, opts in (("smile", {"tuner": None, "step_size": 0.05}),
                               ("mclmc", {"tuner": None, "step_size": 0.5, "L": 3.0})):
                kw = dict(n_chains=n, seed=0, progress=False, backend=backend, dtype=dtype, device=device, **opts)
                run_chains(name, tgt, n_steps=2, **kw)  # warm-up (kernels, allocations)
                t0 = time.perf_counter()
                run_chains(name, tgt, n_steps=n_steps, block_size=n_steps, **kw)
                dt = time.perf_counter() - t0
                rows.append({"sampler": name, "d": d, "n_chains": n, "steps_per_s": n_steps / dt})
    return rows


def _md(rows):
    keys = list(rows[0])
    f = lambda v: f"{v:.3g}" if isinstance(v, float) else str(v)
    return "\n".join(["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
                     + ["| " + " | ".join(f(r[k]) for k in keys) + " |" for r in rows])


def main(argv=None):
    ap = argparse.ArgumentParser(description="GPU validation of smile_ref (CuPy)")
    ap.add_argument("--allow-cpu-standin", action="store_true",
                    help="without a GPU, run the same checks on array_api_strict's device1")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--tiny", action="store_true", help="tiny budget (tests): small benchmark and throughput")
    ap.add_argument("--dims", type=int, nargs="+", default=[100, 10000])
    ap.add_argument("--chains", type=int, nargs="+", default=[64, 1024])
    ap.add_argument("--throughput-steps", type=int, default=100)
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    why = _gpu_available()
    if why is None:
        backend, device = "cupy", None
    elif a.allow_cpu_standin:
        backend, device = "array_api_strict", "device1"
        print(f"no GPU ({why}); CPU stand-in: array_api_strict on device1")
    else:
        print(f"No GPU/CuPy available ({why}); nothing to validate. "
              "Use --allow-cpu-standin to run the checks on array_api_strict's device1.")
        return 0
    if a.tiny:
        a.dims, a.chains, a.throughput_steps = [8], [4], 5
    t0 = time.time()
    res = {"backend": backend, "device": device, "dtype": a.dtype, "machine": platform.platform(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    res["agreement"] = backend_agreement(backend, device, a.dtype, n_steps=10 if a.tiny else 50)
    print(_md(res["agreement"]))
    res["analytical"], res["analytical_runtime_s"] = analytical(backend, device, a.dtype, 0.01 if a.tiny else 1.0)
    print(_md(res["analytical"]))
    res["uci"], res["uci_runtime_s"] = uci(backend, device, a.dtype, tiny=a.tiny)
    print(_md(res["uci"]))
    res["throughput"] = throughput(backend, device, a.dtype, a.dims, a.chains, a.throughput_steps)
    print(_md(res["throughput"]))
    res["runtime_s"] = time.time() - t0
    print(f"runtime {res['runtime_s']:.1f} s")
    if a.out:
        os.makedirs(a.out, exist_ok=True)
        with open(os.path.join(a.out, "gpu_validate.json"), "w") as fh:
            json.dump(res, fh, indent=1, default=str)
        with open(os.path.join(a.out, "gpu_validate.md"), "w") as fh:
            fh.write("\n\n".join(_md(res[k]) for k in ("agreement", "analytical", "uci", "throughput")) + "\n")
    return 0 if all(r["ok"] for r in res["agreement"]) else 1


if __name__ == "__main__":
    sys.exit(main())
