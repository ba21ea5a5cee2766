"""MCLMC sampler overhead in gradient-equivalents, chain scaling and ESS per gradient.

Run by hand (not a test), from the repository root with smile_ref installed (or ``PYTHONPATH=.``)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/mclmc_overhead.py --out bench_out [--label after] [--baseline before/mclmc_overhead.json]

For every target in {diagonal Gaussian (d in --dims), dense Gaussian (d = 100 only)} and
every ``n_chains`` in --chains it measures (min over repeats of the mean over a block of
steps, NumPy backend by default):

* ``t_grad``: one batched ``target.logdensity_and_grad(x)`` with ``x`` of shape ``(n, d)``
  (what the sampler calls through :class:`~smile_ref.gradients.Exact`, input checks included);
* ``t_rng``: one ``(n, d)`` standard-normal draw of the host random source (MCLMC draws two per step);
* ``t_step``: one MCLMC step (McLachlan, fixed step size, ``tuner=None``) through
  ``kernel.step`` directly (:class:`smile_ref.run.timing.FixedStepper`), and through :func:`smile_ref.run_chains` (``wall_time / steps``,
  recording every step's position and info into the host buffers);
* overhead in gradient-equivalents ``(t_step - n_grad t_grad) / t_grad`` (``n_grad = 2``);
* chain scaling ``t_step(64 chains) / t_step(1 chain)`` (64 would mean no batching gain).

Targets: "diag" is ``diagonal_gaussian_condition(d, 1e4)`` (stored as its variance vector, elementwise
gradient, ``O(n d)``); "dense" is ``ill_conditioned_gaussian(d)`` (the ICG, gradient ``(n, d) @ (d, d)``, ``O(n d^2)``).

ESS: tuned MCLMC (``tuner="mclmc"``) on ``diagonal_gaussian_condition(100, 1e4)``; ESS from
:func:`smile_ref.diagnostics.ess` (``method="basic"`` and ``"bulk"``) of ``x`` and ``x^2``,
minimum over coordinates, divided by the gradient evaluations of all chains (sampling phase,
and including warm-up).

Writes ``<label>.json`` and ``<label>.md`` to ``--out`` and prints the table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time

import numpy as np

import smile_ref
from smile_ref import targets
from smile_ref.backend import get_backend
from smile_ref.diagnostics import ess
from smile_ref.run.timing import FixedStepper


def _timeit(fn, min_time: float, repeats: int) -> float:
    """Seconds per call: min over ``repeats`` of the mean over a block lasting >= ``min_time``."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    k = max(1, int(math.ceil(min_time / one)))
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        best = min(best, (time.perf_counter() - t0) / k)
    return best


_TARGETS: dict = {}


def _target(kind: str, d: int):
    """``(target, smallest marginal sd)``, cached: the dense ICG factorises its (d, d) covariance, O(d^3)."""
    key = (kind, d)
    if key not in _TARGETS:
        if kind == "diag":
            t = targets.diagonal_gaussian_condition(d, 1e4)
            sd_min = 1e-2  # sqrt(condition^{-1/2})
        else:
            t = targets.ill_conditioned_gaussian(d)
            sd_min = float(np.sqrt(np.min(np.linalg.eigvalsh(t.cov))))
        _TARGETS[key] = (t, sd_min)
    return _TARGETS[key]


def _fixed_step_size(target, sd_min) -> float:
    """A stable fixed step: 0.5 sqrt(d) times the smallest marginal standard deviation."""
    return 0.5 * math.sqrt(target.dim) * sd_min


def time_case(kind, d, n, bk, args) -> dict:
    target, sd_min = _target(kind, d)
    eps = _fixed_step_size(target, sd_min)
    st = FixedStepper("mclmc", target, n, eps, backend=bk, count_rejected=False)
    rng = st.rng
    x = rng.normal((n, d))
    t_grad = _timeit(lambda: target.logdensity_and_grad(x), args.min_time, args.repeats)
    t_rng = _timeit(lambda: rng.normal((n, d)), args.min_time, args.repeats)
    t_step = _timeit(st.step, args.min_time, args.repeats)

    # run_chains: wall_time covers the step loop and recording (not init); cap the sample buffer
    n_rc = int(max(10, min(2000, args.min_time / max(t_step, 1e-7), 2e8 / (8 * n * d))))
    best_rc, rej = math.inf, 0.0
    for r in range(max(2, args.repeats // 2)):
        res = smile_ref.run_chains("mclmc", target, n_chains=n, n_steps=n_rc, seed=r, step_size=eps,
                                   tuner=None, backend=bk, progress=False)
        best_rc = min(best_rc, res.wall_time / n_rc)
        rej = res.n_rejected / (n_rc * n)  # every step counted, whatever info rows are kept
    n_grad = st.kernel.grad_evals_per_step
    return {
        "target": kind, "d": d, "n_chains": n, "step_size": eps, "n_grad_per_step": n_grad,
        "t_grad_s": t_grad, "t_rng_s": t_rng, "t_step_kernel_s": t_step, "t_step_run_chains_s": best_rc,
        "overhead_grad_equiv_kernel": (t_step - n_grad * t_grad) / t_grad,
        "overhead_grad_equiv_run_chains": (best_rc - n_grad * t_grad) / t_grad,
        "rejected_fraction": rej, "run_chains_steps": n_rc,
    }


def ess_case(bk, args) -> dict:
    target = targets.diagonal_gaussian_condition(100, 1e4)
    n, burn, steps = args.ess_chains, args.ess_warmup, args.ess_steps
    res = smile_ref.run_chains("mclmc", target, n_chains=n, n_steps=steps, burn_in=burn, seed=args.seed,
                               backend=bk, progress=False)
    s = res.samples.astype(np.float64)
    out = {"d": 100, "condition": 1e4, "n_chains": n, "burn_in": burn, "n_steps": steps,
           "tuned_step_size": float(np.mean(res.info["step_size"][-1])),
           "tuned_L": float(np.mean(res.info["L"][-1])) if "L" in res.info else None,
           "rejected": res.n_rejected}
    grads_sampling = n * steps * 2.0
    grads_total = n * res.n_gradient_evals
    for method in ("basic", "bulk"):
        e1 = float(np.min(ess(s, method=method)))
        e2 = float(np.min(ess(s**2, method=method)))
        out[f"min_ess_x_{method}"] = e1
        out[f"min_ess_x2_{method}"] = e2
        out[f"ess_per_grad_x_{method}"] = e1 / grads_sampling
        out[f"ess_per_grad_x2_{method}"] = e2 / grads_sampling
        out[f"ess_per_grad_incl_warmup_{method}"] = min(e1, e2) / grads_total
    return out


def _fmt_us(t):
    return f"{t * 1e6:,.1f}"


def table(rows, baseline=None) -> str:
    base = {(r["target"], r["d"], r["n_chains"]): r for r in (baseline or [])}
    head = ["target", "d", "chains", "t_grad us", "t_rng us", "t_step us (kernel)", "t_step us (run_chains)",
            "overhead [grad-eq] kernel", "overhead run_chains"]
    if base:
        head += ["t_step before us", "speed-up"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["target"], str(r["d"]), str(r["n_chains"]), _fmt_us(r["t_grad_s"]), _fmt_us(r["t_rng_s"]),
                 _fmt_us(r["t_step_kernel_s"]), _fmt_us(r["t_step_run_chains_s"]),
                 f"{r['overhead_grad_equiv_kernel']:.1f}", f"{r['overhead_grad_equiv_run_chains']:.1f}"]
        b = base.get((r["target"], r["d"], r["n_chains"]))
        if base:
            cells += [_fmt_us(b["t_step_kernel_s"]), f"{b['t_step_kernel_s'] / r['t_step_kernel_s']:.2f}x"] if b \
                else ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def scaling_lines(rows) -> list[str]:
    by = {(r["target"], r["d"], r["n_chains"]): r for r in rows}
    out = []
    for (kind, d, n), r in sorted(by.items()):
        one = by.get((kind, d, 1))
        if n > 1 and one is not None:
            ratio = r["t_step_kernel_s"] / one["t_step_kernel_s"]
            out.append(f"- {kind} d={d}: t_step({n} chains) / t_step(1 chain) = {ratio:.2f} (vs {n} for no batching)")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output directory for <label>.json and <label>.md")
    p.add_argument("--label", default="mclmc_overhead")
    p.add_argument("--dims", type=int, nargs="+", default=[100, 10000])
    p.add_argument("--chains", type=int, nargs="+", default=[1, 64])
    p.add_argument("--dense-dims", type=int, nargs="*", default=[100], help="dims of the dense ICG target")
    p.add_argument("--backend", default="numpy", choices=["numpy", "array_api_strict", "cupy"])
    p.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    p.add_argument("--min-time", type=float, default=0.3, help="seconds per timing block")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--ess-chains", type=int, default=4)
    p.add_argument("--ess-warmup", type=int, default=2000)
    p.add_argument("--ess-steps", type=int, default=20000)
    p.add_argument("--no-ess", action="store_true")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--baseline", default=None, help="JSON of an earlier run to compare t_step with")
    args = p.parse_args(argv)

    bk = get_backend(args.backend, args.dtype)
    cases = [("diag", d) for d in args.dims] + [("dense", d) for d in args.dense_dims]
    rows = []
    for kind, d in cases:
        for n in args.chains:
            r = time_case(kind, d, n, bk, args)
            rows.append(r)
            print(f"{kind:5s} d={d:6d} n={n:3d}  step {r['t_step_kernel_s'] * 1e6:10.1f} us  "
                  f"grad {r['t_grad_s'] * 1e6:9.1f} us  overhead {r['overhead_grad_equiv_kernel']:8.1f} grad-eq",
                  flush=True)
    ess_res = None if args.no_ess else ess_case(bk, args)
    baseline = None
    if args.baseline:
        with open(args.baseline) as f:
            baseline = json.load(f)["timings"]
    machine = {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
               "python": platform.python_version(), "numpy": np.__version__, "backend": args.backend,
               "dtype": args.dtype, "smile_ref": smile_ref.__file__}
    result = {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([os.path.basename(sys.executable)] + sys.argv), "machine": machine,
              "timings": rows, "ess": ess_res}
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{args.label}.json"), "w") as f:
        json.dump(result, f, indent=2)
    md = [f"# MCLMC overhead ({args.label})", "", f"Date (UTC): {result['date_utc']}  ",
          f"Machine: {machine['platform']}, {machine['cpu_count']} CPUs, Python {machine['python']}, "
          f"NumPy {machine['numpy']}, backend {args.backend} {args.dtype}  ", f"Command: `{result['command']}`", "",
          table(rows, baseline), "", "Chain scaling (kernel step):", *scaling_lines(rows), ""]
    if ess_res is not None:
        md += ["ESS (tuned MCLMC, diagonal Gaussian d=100, condition 1e4):", "",
               "```", json.dumps(ess_res, indent=2), "```", ""]
    text = "\n".join(md)
    with open(os.path.join(args.out, f"{args.label}.md"), "w") as f:
        f.write(text)
    print(text)
    return result


if __name__ == "__main__":
    main()
