"""Peak memory of a long recorded run against what it must hold: samples + sampler state.

Run by hand (not a test), from the repository root::

    OPENBLAS_NUM_THREADS=1 python benchmarks/memory_peak.py [--sampler mclmc] [--chains 256] [--dim 1000] \
        [--steps 20000] [--burn-in 2000] [--thinning 10] [--out benchmarks/results]

Each measurement runs ``run_chains`` in a fresh child process (so the parent's imports and earlier runs do not
count) and reads the child's peak resident set size (``VmHWM`` from ``/proc/self/status``, Linux) after the
run.  The ratio reported is ``peak RSS / (bytes of samples + bytes of the final state + baseline RSS after
imports)``; the baseline (interpreter, NumPy, SciPy, smile_ref) is measured in the same child before the run.
The bound quoted in ``docs/performance.md`` is ``<= 1.5``.  ``info`` (per-step diagnostics, all steps) is not
part of the denominator: it is overhead the driver adds.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys


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
    import numpy as np

    import smile_ref
    from smile_ref import targets

    target = targets.Gaussian.isotropic(args["dim"])
    base = _proc_status_bytes("VmRSS")
    res = smile_ref.run_chains(args["sampler"], target, n_chains=args["chains"], n_steps=args["steps"],
                               burn_in=args["burn_in"], thinning=args["thinning"], seed=0, step_size=args["step_size"],
                               progress=False)
    peak = _proc_status_bytes("VmHWM")
    info_bytes = sum(v.nbytes for v in res.info.values())
    queue.put({"baseline_rss": base, "peak_rss": peak, "samples_bytes": int(res.samples.nbytes),
               "state_bytes": _state_bytes(res.state), "info_bytes": int(info_bytes),
               "wall_s": res.wall_time, "finite": bool(np.isfinite(res.samples).all())})


def measure(**args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(args, queue))
    proc.start()
    out = queue.get()
    proc.join()
    need = out["samples_bytes"] + out["state_bytes"] + out["baseline_rss"]
    out.update(args, ratio=out["peak_rss"] / need)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sampler", default="mclmc")
    ap.add_argument("--chains", type=int, default=256)
    ap.add_argument("--dim", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--burn-in", type=int, default=2000)
    ap.add_argument("--thinning", type=int, default=10)
    ap.add_argument("--step-size", type=float, default=1.0)
    ap.add_argument("--out", default=None, help="folder for memory_peak.json (optional)")
    a = ap.parse_args(argv)
    row = measure(sampler=a.sampler, chains=a.chains, dim=a.dim, steps=a.steps, burn_in=a.burn_in,
                  thinning=a.thinning, step_size=a.step_size)
    gb = 1e-9
    print(f"{a.sampler} {a.chains} x {a.dim}, {a.steps} steps (+{a.burn_in} warm-up), thinning {a.thinning}: "
          f"peak RSS {row['peak_rss'] * gb:.2f} GB; samples {row['samples_bytes'] * gb:.2f} GB, state "
          f"{row['state_bytes'] * gb:.3f} GB, baseline {row['baseline_rss'] * gb:.2f} GB, info {row['info_bytes'] * gb:.2f} GB; "
          f"ratio {row['ratio']:.2f}; {row['wall_s']:.0f} s")
    if a.out:
        from smile_ref.io import atomic_write_text

        os.makedirs(a.out, exist_ok=True)
        atomic_write_text(os.path.join(a.out, "memory_peak.json"), json.dumps(row, indent=2, allow_nan=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
