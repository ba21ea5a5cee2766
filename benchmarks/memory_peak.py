"""Peak memory of a long recorded run against what it must hold: samples + sampler state.

Run by hand (not a test), from the repository root::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/memory_peak.py [--sampler smile] [--chains 256] \
        [--dim 1000] [--steps 20000] [--burn-in 2000] [--thinning 10] [--info thinned] [--warmup-info all] \
        [--out benchmarks/results]
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/memory_peak.py --kernel-steps 100 1000 \
        --sampler mclmc --chains 64 --dim 100000 [--out benchmarks/results]

Each measurement runs ``run_chains`` in a fresh child process (so the parent's imports and earlier runs do not
count) and reads the child's peak resident set size (``VmHWM`` from ``/proc/self/status``, Linux) after the
run.  The ratio reported is ``peak RSS / (bytes of samples + bytes of the final state + baseline RSS after
imports)``; the baseline (interpreter, NumPy, SciPy, smile_ref) is measured in the same child before the run.
The bound quoted in ``docs/performance.md`` is ``<= 1.5``.  ``info`` (the recorded diagnostics rows: with the
default ``info="thinned"`` one row per draw plus one per warm-up step) and ``stats`` (exact per-chain counters) are
not part of the denominator: they are overhead the driver adds.  A second ratio without the baseline in the
denominator, ``(peak RSS - baseline) / (samples + state)``, is reported too.

``--kernel-steps S1 S2`` measures the kernel alone instead (:func:`kernel_step_memory`, no recording): ``S1``
then ``S2 - S1`` steps of ``kernel.step`` on ``N(0, I_d)`` at the untuned defaults ``eps = 0.25 sqrt(d)``,
``L = sqrt(d)`` (:class:`smile_ref.run.timing.FixedStepper`), with the peak RSS (``VmHWM``, reset before each
phase through ``/proc/self/clear_refs``) and tracemalloc's peak of NumPy's buffers, each relative to the memory
held before the phase, in MiB and in ``(n, d)`` arrays: a step that leaked would grow the second phase's peak.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import multiprocessing as mp
import os
import sys
import time


def _proc_status_bytes(key: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmHWM``: peak RSS, ``VmRSS``: current RSS) in bytes (Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not found in /proc/self/status (Linux only)")


def _state_bytes(state) -> int:
    import numpy as np

    total = 0
    stack = [state]
    while stack:
        s = stack.pop()
        if isinstance(s, np.ndarray):
            total += s.nbytes
        elif isinstance(s, (tuple, list)):
            stack.extend(s)
        elif isinstance(s, dict):
            stack.extend(s.values())
    return total


def _child(args: dict, queue) -> None:
    import warnings

    import numpy as np

    import smile_ref
    from smile_ref import targets

    target = targets.Gaussian.isotropic(args["dim"])
    base = _proc_status_bytes("VmRSS")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = smile_ref.run_chains(args["sampler"], target, n_chains=args["chains"], n_steps=args["steps"],
                                   burn_in=args["burn_in"], thinning=args["thinning"], seed=0,
                                   step_size=args["step_size"], progress=False, info=args["info"],
                                   warmup_info=args["warmup_info"])
    peak = _proc_status_bytes("VmHWM")
    info_bytes = sum(v.nbytes for v in res.info.values())
    stats_bytes = sum(v.nbytes for v in res.stats.to_arrays().values())
    queue.put({"baseline_rss": base, "peak_rss": peak, "samples_bytes": int(res.samples.nbytes),
               "state_bytes": _state_bytes(res.state), "info_bytes": int(info_bytes), "stats_bytes": int(stats_bytes),
               "wall_s": res.wall_time, "finite": bool(all(np.isfinite(c).all() for c in res.samples)),
               "health_ok": bool(res.health.ok), "warnings": [str(w.message)[:300] for w in caught]})


def _reset_peak_rss() -> bool:
    """Reset VmHWM (Linux >= 4.0: write 5 to /proc/self/clear_refs); ``ru_maxrss`` cannot be reset
    and is inherited from the parent across exec, so it is not used."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def kernel_step_memory(sampler: str, n: int, d: int, s1: int, s2: int) -> dict:
    """Peak memory of ``s1`` then ``s2 - s1`` steps of ``kernel.step`` in this process (nothing recorded)."""
    import tracemalloc

    from smile_ref.run.timing import FixedStepper
    from smile_ref.targets import Gaussian

    mib = 2**20
    tracemalloc.start()
    st = FixedStepper(sampler, Gaussian.isotropic(d), n, 0.25 * math.sqrt(d),
                      L=math.sqrt(d) if sampler == "mclmc" else None)
    st.step()  # first step: caches (target parameters on the backend, tiny-constant cache)
    arr = 8 * n * d / mib
    out = {"sampler": sampler, "n_chains": n, "d": d, "steps": [s1, s2], "array_mib": arr}
    t0 = time.perf_counter()
    for phase, k in (("first", s1), ("rest", s2 - s1)):
        gc.collect()
        cur0 = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        rss0 = _proc_status_bytes("VmRSS") / mib
        out["hwm_reset"] = _reset_peak_rss()
        for _ in range(k):
            st.step()
        cur1, peak = tracemalloc.get_traced_memory()
        hwm, rss1 = _proc_status_bytes("VmHWM") / mib, _proc_status_bytes("VmRSS") / mib
        out[phase] = {"steps": k, "rss_before_mib": rss0, "rss_after_mib": rss1, "peak_rss_mib": hwm,
                      "peak_rss_growth_arrays": (hwm - rss0) / arr, "traced_before_mib": cur0 / mib,
                      "traced_after_mib": cur1 / mib, "traced_peak_growth_arrays": (peak - cur0) / mib / arr}
    out["seconds"] = time.perf_counter() - t0
    tracemalloc.stop()
    out["peak_rss_change_rest_vs_first_mib"] = out["rest"]["peak_rss_mib"] - out["first"]["peak_rss_mib"]
    return out


def _kernel_child(args: tuple, queue) -> None:
    queue.put(kernel_step_memory(*args))


def _in_child(fn, args):
    """``fn(args, queue)`` in a fresh spawned process; returns what it put on the queue."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=fn, args=(args, queue))
    proc.start()
    out = queue.get()
    proc.join()
    return out


def measure(**args) -> dict:
    out = _in_child(_child, args)
    need = out["samples_bytes"] + out["state_bytes"] + out["baseline_rss"]
    out.update(args, ratio=out["peak_rss"] / need,
               ratio_without_baseline=(out["peak_rss"] - out["baseline_rss"]) / (out["samples_bytes"] + out["state_bytes"]))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sampler", default="smile")
    ap.add_argument("--chains", type=int, default=256)
    ap.add_argument("--dim", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--burn-in", type=int, default=2000)
    ap.add_argument("--thinning", type=int, default=10)
    ap.add_argument("--step-size", type=float, default=1.0)
    ap.add_argument("--info", default="thinned", choices=("thinned", "all", "summary"))
    ap.add_argument("--warmup-info", default="all", choices=("thinned", "all", "summary"))
    ap.add_argument("--out", default=None, help="folder for memory_peak.json (optional)")
    ap.add_argument("--kernel-steps", nargs=2, type=int, default=None, metavar=("S1", "S2"),
                    help="measure S1 then S2 - S1 kernel steps without recording (uses --sampler, --chains, --dim)")
    a = ap.parse_args(argv)
    if a.kernel_steps:
        s1, s2 = a.kernel_steps
        if not 0 < s1 < s2:
            raise SystemExit(f"--kernel-steps needs 0 < S1 < S2, got {s1} {s2}")
        row = _in_child(_kernel_child, (a.sampler, a.chains, a.dim, s1, s2))
        print(json.dumps(row, indent=1))
        if a.out:
            from smile_ref.io import atomic_write_text

            os.makedirs(a.out, exist_ok=True)
            name = f"memory_kernel_steps_{a.sampler}_{a.chains}x{a.dim}.json"
            atomic_write_text(os.path.join(a.out, name), json.dumps(row, indent=2, allow_nan=False))
        return 0
    row = measure(sampler=a.sampler, chains=a.chains, dim=a.dim, steps=a.steps, burn_in=a.burn_in,
                  thinning=a.thinning, step_size=a.step_size, info=a.info, warmup_info=a.warmup_info)
    gb = 1e-9
    print(f"{a.sampler} {a.chains} x {a.dim}, {a.steps} steps (+{a.burn_in} warm-up), thinning {a.thinning}: "
          f"peak RSS {row['peak_rss'] * gb:.2f} GB; samples {row['samples_bytes'] * gb:.2f} GB, state "
          f"{row['state_bytes'] * gb:.3f} GB, baseline {row['baseline_rss'] * gb:.2f} GB, info {row['info_bytes'] * gb:.3f} GB "
          f"(info={a.info}, warmup_info={a.warmup_info}), stats {row['stats_bytes'] * gb:.4f} GB; ratio {row['ratio']:.3f} "
          f"({row['ratio_without_baseline']:.3f} without the baseline); health ok: {row['health_ok']}; {row['wall_s']:.0f} s")
    if a.out:
        from smile_ref.io import atomic_write_text

        os.makedirs(a.out, exist_ok=True)
        name = f"memory_peak_{a.sampler}_{a.steps}_{a.info}.json"
        atomic_write_text(os.path.join(a.out, name), json.dumps(row, indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
