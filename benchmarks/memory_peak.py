"""Peak memory of a long recorded run against what it must hold: samples + sampler state.

Run by hand (not a test), from the repository root::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python benchmarks/memory_peak.py [--sampler smile] [--chains 256] \
        [--dim 1000] [--steps 20000] [--burn-in 2000] [--thinning 10] [--info thinned] [--warmup-info all] \
        [--out benchmarks/results]

Each measurement runs ``run_chains`` in a fresh child process (so the parent's imports and earlier runs do not
count) and reads the child's peak resident set size (``VmHWM`` from ``/proc/self/status``, Linux) after the
run.  The ratio reported is ``peak RSS / (bytes of samples + bytes of the final state + baseline RSS after
imports)``; the baseline (interpreter, NumPy, SciPy, smile_ref) is measured in the same child before the run.
The bound quoted in ``docs/performance.md`` is ``<= 1.5``.  ``info`` (the recorded diagnostics rows: with the
default ``info="thinned"`` one row per draw plus one per warm-up step) and ``stats`` (exact per-chain counters) are
not part of the denominator: they are overhead the driver adds.  A second ratio without the baseline in the
denominator, ``(peak RSS - baseline) / (samples + state)``, is reported too.
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


def measure(**args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(args, queue))
    proc.start()
    out = queue.get()
    proc.join()
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
    a = ap.parse_args(argv)
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
