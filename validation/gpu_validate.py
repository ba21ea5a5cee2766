"""GPU validation of smile_ref on CuPy: backend agreement, analytical bias, quick UCI, throughput.

STATUS: ready and tested with the array_api_strict stand-in (``--allow-cpu-standin``); NOT yet run on
a GPU.  ``validation/gpu_run.sh`` runs its parts as separate stages (``--parts``, ``--json``, ``--budget``).

Checks
------
1. ``agreement``: identical seeds (the host RandomSource draws every random number on the host,
   so both runs consume the same normals) give the same trajectories on NumPy and on the other
   backend for **every registered sampler** (``smile_ref.samplers.available()``;
   ``run_chains(..., backend=...)``); max abs deviation of the recorded samples vs a float tolerance
   (1e-8 in float64, 1e-3 in float32).  The NumPy reference runs in the SAME dtype: the host
   generator draws float32 normals with a different algorithm than float64 ones, so float32 vs float64
   runs are different random streams.  On CuPy, ``fused_agreement`` also compares the isokinetic
   samplers (``mclmc``, ``smile``, ``psmile``) with the fused CuPy kernels on and off
   (``smile_ref.integrators.cupy_fused``), same tolerance.
2. ``analytical``: cells of the quick analytical bias benchmark
   (``smile_ref.verification.analytical.run_benchmark`` with ``QUICK_CONFIG`` and
   ``backend``/``dtype``/``device`` set), one cell per call, iso noise first, until ``--budget``
   seconds are used (the cells left out are listed); ``--tiny``: one short cell.
3. ``uci``: the quick UCI benchmark (``smile_ref.verification.uci.run_uci`` with the quick budget on
   energy then airfoil, DE / SMILE / pSMILE / SGLD, one (data set, method) per call until
   ``--budget``); ``--tiny``: tiny budget, energy, DE and SMILE.  Compare with
   ``docs/results/uci-benchmark.md`` (CPU): the numbers agree in distribution, not bit for bit,
   because the GPU's summation order changes pre-training and the chains amplify the difference.
4. ``throughput``: steps/s of ``smile`` and ``mclmc`` (McLachlan, fixed step) for d in ``--dims`` and
   chains in ``--chains`` (default {100, 10000} x {64, 1024}); ``validation/gpu_bench.py timing``
   is the full timing study.

Usage::

    python -m validation.gpu_validate --out validation/results/gpu          # needs CuPy + a GPU
    python -m validation.gpu_validate --allow-cpu-standin --tiny             # array_api_strict device1
    python -m validation.gpu_validate --parts agreement --json OUT/validate.json --budget 25

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

SAMPLERS = {"mclmc": {"burn_in": 20}, "smile": {"tuner": None}, "psmile": {"tuner": None}, "sgld": {}}
#: per-sampler settings of the agreement runs (step size, options); samplers not listed use ``_DEFAULT``
AGREEMENT = {"mclmc": (0.5, {"burn_in": 20}), "smile": (0.05, {"tuner": None}), "psmile": (0.05, {"tuner": None}),
             "sgld": (0.01, {}), "psgld": (0.01, {}), "sghmc": (0.01, {}), "constant_sgd": (0.01, {"n_data": 1}),
             "bnp_sgld": (1e-3, {})}
_DEFAULT = (0.01, {})
PARTS = ("agreement", "analytical", "uci", "throughput")


def _gpu_available() -> str | None:
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        return None
    except Exception as e:  # noqa: BLE001 - any failure means "no usable GPU"
        return f"{type(e).__name__}: {e}"


def _agreement_problem(name, d):
    """``(target, gradient)`` of the agreement run of sampler ``name`` (a GLM for ``bnp_sgld``)."""
    from smile_ref.gradients.noise import AdditiveNoise
    from smile_ref.targets.gaussian import Gaussian

    if name == "bnp_sgld":  # needs a GLM (its preconditioner reads the design matrix)
        from smile_ref.gradients.minibatch import MiniBatch
        from smile_ref.targets.glm import LogisticRegression

        r = np.random.default_rng(2)
        X = r.normal(size=(200, d)) / np.sqrt(d)
        y = (r.uniform(size=200) < 1 / (1 + np.exp(-X @ r.normal(size=d)))).astype(float)
        tgt = LogisticRegression(X, y, prior_scale=1.0)
        return tgt, MiniBatch(tgt, 50)
    tgt = Gaussian(np.zeros(d), np.diag(np.linspace(0.5, 2.0, d) ** 2))
    return tgt, (None if name == "mclmc" else AdditiveNoise(tgt, 0.25))


def backend_agreement(backend, device, dtype, n_steps=50, n_chains=4, d=10, samplers=None):
    """NumPy vs ``backend`` from the same host random stream, every registered sampler (or ``samplers``)."""
    from smile_ref.run.driver import run_chains
    from smile_ref.samplers import available

    x0 = np.random.default_rng(5).normal(size=(n_chains, d)).astype(dtype)
    tol = 1e-8 if dtype == "float64" else 1e-3
    rows = []
    for name in (samplers or available()):
        step, opts = AGREEMENT.get(name, _DEFAULT)
        opts = dict(opts)
        burn = opts.pop("burn_in", 0)
        tgt, grad = _agreement_problem(name, d)
        kw = dict(n_chains=n_chains, n_steps=n_steps, burn_in=burn, seed=11, gradient=grad, step_size=step,
                  initial_position=(x0 * 0.1 if name == "bnp_sgld" else x0), progress=False, **opts)
        t0 = time.perf_counter()
        try:
            ref = run_chains(name, tgt, backend="numpy", dtype=dtype, **kw)
            oth = run_chains(name, tgt, backend=backend, dtype=dtype, device=device, **kw)
        except Exception as e:  # noqa: BLE001 - recorded; the other samplers still run
            rows.append({"sampler": name, "backend": f"{backend}/{device}/{dtype}", "max_abs_dev": None, "tol": tol,
                         "ok": False, "error": f"{type(e).__name__}: {e}"[:300], "wall_s": time.perf_counter() - t0})
            continue
        dev = float(np.max(np.abs(np.asarray(oth.samples, dtype=np.float64) - ref.samples)))
        rows.append({"sampler": name, "backend": f"{backend}/{device}/{dtype}", "max_abs_dev": dev,
                     "tol": tol, "ok": bool(dev < tol), "error": None, "wall_s": time.perf_counter() - t0})
    return rows


def fused_agreement(dtype, n_steps=50, n_chains=4, d=10):
    """On CuPy: the isokinetic samplers with the fused kernels on vs off (same host random stream)."""
    from smile_ref.integrators import cupy_fused
    from smile_ref.run.driver import run_chains

    x0 = np.random.default_rng(5).normal(size=(n_chains, d)).astype(dtype)
    tol = 1e-8 if dtype == "float64" else 1e-3
    rows = []
    for name in ("mclmc", "smile", "psmile"):
        step, opts = AGREEMENT[name]
        opts = dict(opts)
        burn = opts.pop("burn_in", 0)
        tgt, grad = _agreement_problem(name, d)
        kw = dict(n_chains=n_chains, n_steps=n_steps, burn_in=burn, seed=11, gradient=grad, step_size=step,
                  initial_position=x0, progress=False, backend="cupy", dtype=dtype, **opts)
        try:
            cupy_fused.set_enabled(True)
            a = run_chains(name, tgt, **kw).samples
            cupy_fused.set_enabled(False)
            b = run_chains(name, tgt, **kw).samples
            dev = float(np.max(np.abs(np.asarray(a, dtype=np.float64) - b)))
            rows.append({"sampler": name, "compare": f"fused vs unfused, cupy/{dtype}", "max_abs_dev": dev,
                         "tol": tol, "ok": bool(dev < tol), "error": None})
        except Exception as e:  # noqa: BLE001
            rows.append({"sampler": name, "compare": f"fused vs unfused, cupy/{dtype}", "max_abs_dev": None,
                         "tol": tol, "ok": False, "error": f"{type(e).__name__}: {e}"[:300]})
        finally:
            cupy_fused.set_enabled(None)
    return rows


def analytical_cells(backend, device, dtype, budget, tiny=False):
    """Quick-benchmark cells one at a time (iso noise first) until ``budget`` s; ``(records, skipped, s)``."""
    from smile_ref.verification.analytical import QUICK_CONFIG, run_benchmark

    base = dict(QUICK_CONFIG, backend=backend, dtype=dtype, device=device, progress=False, workers=1)
    if tiny:
        base.update(n_replicates=2, chains_per_replicate=4, n_steps=20, burn_in=10, thinning=1)
        cells = [("iso", "smile", 3e-2)]
    else:
        cells = [(nz, s, h) for nz in base["noises"] for s in base["samplers"] for h in base["step_sizes"][s]]
    keys = ("noise", "sampler", "step_size", "b2_mean", "b2_se", "theory_b2", "wall_s")
    t0 = time.perf_counter()
    rows, skipped, last = [], [], 0.0
    for nz, s, h in cells:
        left = budget - (time.perf_counter() - t0)
        if last * 1.2 > left:
            skipped.append({"noise": nz, "sampler": s, "step_size": h, "reason": f"budget ({left:.0f} s left)"})
            continue
        t1 = time.perf_counter()
        out = run_benchmark(dict(base, noises=[nz], samplers=[s], step_sizes={s: [h]}))
        last = time.perf_counter() - t1
        r = out["records"][0]
        r["wall_s"] = last
        rows.append({k: r.get(k) for k in keys})
    return rows, skipped, time.perf_counter() - t0


def uci_runs(backend, device, dtype, budget, tiny=False):
    """Quick UCI runs, one (data set, method) per call, until ``budget`` s; ``(rows, skipped, s)``."""
    import tempfile

    from smile_ref.ensembles import EnsembleConfig
    from smile_ref.verification.uci import run_uci

    cfg = EnsembleConfig.tiny() if tiny else EnsembleConfig.quick()
    datasets, methods = (("energy",), ("de", "smile")) if tiny else (("energy", "airfoil"), ("de", "smile", "psmile", "sgld"))
    keys = ("dataset", "method", "lppd", "rmse", "coverage_90", "grad_evals", "wall_time")
    t0 = time.perf_counter()
    rows, skipped, last = [], [], 0.0
    with tempfile.TemporaryDirectory() as work:
        for ds in datasets:
            for m in methods:
                left = budget - (time.perf_counter() - t0)
                if last * 1.2 > left:
                    skipped.append({"dataset": ds, "method": m, "reason": f"budget ({left:.0f} s left)"})
                    continue
                t1 = time.perf_counter()
                out = run_uci((ds,), (0,), (m,), config=cfg, out_dir=work, backend=backend, dtype=dtype,
                              device=device, progress=False, log=lambda *a: None)
                last = time.perf_counter() - t1
                rows += [{k: r.get(k) for k in keys} for r in out]
    return rows, skipped, time.perf_counter() - t0


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


def _write_json(path, obj):
    """Write ``obj`` as JSON to ``path`` atomically (:func:`smile_ref.io.atomic_write_text`)."""
    from smile_ref.io import atomic_write_text  # smile_ref is imported where used, as everywhere in this file

    atomic_write_text(path, json.dumps(obj, indent=1, default=str))


def main(argv=None):
    ap = argparse.ArgumentParser(description="GPU validation of smile_ref (CuPy)")
    ap.add_argument("--allow-cpu-standin", action="store_true",
                    help="without a GPU, run the same checks on array_api_strict's device1")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--tiny", action="store_true", help="tiny budget (tests): small benchmark and throughput")
    ap.add_argument("--parts", nargs="+", choices=PARTS, default=None,
                    help="run only these parts (default: all)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds for the analytical and UCI parts (cells beyond it are skipped and listed)")
    ap.add_argument("--json", default=None, help="merge the results into this JSON file (written after each part)")
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
        if a.json:
            res = _read(a.json)
            res.setdefault("no_gpu", f"{why}")
            _write_json(a.json, res)
        return 0
    if a.tiny:
        a.dims, a.chains, a.throughput_steps = [8], [4], 5
    parts = a.parts or list(PARTS)
    budget = a.budget if a.budget is not None else (1e9 if a.parts is None else 60.0)
    t0 = time.time()
    res = _read(a.json) if a.json else {}
    res.update({"backend": backend, "device": device, "dtype": a.dtype, "machine": platform.platform(),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})

    def save():
        if a.json:
            _write_json(a.json, res)

    ok = True
    if "agreement" in parts:
        res["agreement"] = backend_agreement(backend, device, a.dtype, n_steps=10 if a.tiny else 50)
        print(_md(res["agreement"]))
        ok &= all(r["ok"] for r in res["agreement"])
        save()
        if backend == "cupy":
            res["fused_agreement"] = fused_agreement(a.dtype, n_steps=10 if a.tiny else 50)
            print(_md(res["fused_agreement"]))
            ok &= all(r["ok"] for r in res["fused_agreement"])
            save()
    if "analytical" in parts:
        try:
            if a.parts is None:  # the historical single-run mode of this script
                res["analytical"], res["analytical_runtime_s"] = analytical(backend, device, a.dtype,
                                                                            0.01 if a.tiny else 1.0)
            else:
                res["analytical"], res["analytical_skipped"], res["analytical_runtime_s"] = analytical_cells(
                    backend, device, a.dtype, budget, tiny=a.tiny)
            print(_md(res["analytical"]))
        except Exception as e:  # noqa: BLE001 - recorded; the next part still runs
            res["analytical_error"] = f"{type(e).__name__}: {e}"[:500]
            print(res["analytical_error"])
            ok = False
        save()
    if "uci" in parts:
        try:
            if a.parts is None:
                res["uci"], res["uci_runtime_s"] = uci(backend, device, a.dtype, tiny=a.tiny)
            else:
                res["uci"], res["uci_skipped"], res["uci_runtime_s"] = uci_runs(backend, device, a.dtype, budget,
                                                                                 tiny=a.tiny)
            if res["uci"]:
                print(_md(res["uci"]))
        except Exception as e:  # noqa: BLE001
            res["uci_error"] = f"{type(e).__name__}: {e}"[:500]
            print(res["uci_error"])
            ok = False
        save()
    if "throughput" in parts:
        res["throughput"] = throughput(backend, device, a.dtype, a.dims, a.chains, a.throughput_steps)
        print(_md(res["throughput"]))
        save()
    res["runtime_s"] = time.time() - t0
    print(f"runtime {res['runtime_s']:.1f} s")
    save()
    if a.out:
        from smile_ref.io import atomic_write_text

        _write_json(os.path.join(a.out, "gpu_validate.json"), res)
        atomic_write_text(os.path.join(a.out, "gpu_validate.md"),
                          "\n\n".join(_md(res[k]) for k in ("agreement", "analytical", "uci", "throughput")
                                     if res.get(k)) + "\n")
    return 0 if ok else 1


def _read(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


if __name__ == "__main__":
    sys.exit(main())
