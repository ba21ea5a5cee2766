"""Where SMILE-naive's time goes relative to the 30-line NumPy loop: a cumulative ladder of one step.

Run by hand (not a test), from the repository root with smile_ref installed (or ``PYTHONPATH=.``)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/smile_ladder.py [--quick] \
        [--minimal ../shared/bench/minimal_sgmclmc.py] [--out benchmarks/results]

Workload: the kernel bar's (``benchmarks/kernel_speed.py``): ``N(0, diag(1/prec))`` with
``prec = 1/logspace(-0.5, 0.5, d)``, additive Gaussian gradient noise with standard deviations
``logspace(-0.5, 0.5, d)[::-1]``, one noise draw per step shared by the step's two evaluations, McLachlan
steps at ``eps = 0.1 sqrt(d)``, no tuner, no refresh.  Every rung runs the same dynamics; each adds one
layer of smile_ref on top of the previous one:

``minimal``
    the reference loop ``run(...)`` (thinning 10);
``integrator``
    smile_ref's integrator (:func:`~smile_ref.integrators.isokinetic_step_carry`, the carried
    direction) with the minimal loop's own gradient closure ``-prec x + xi`` and its draw
    ``normal @ chol.T``;
``+ estimator``
    the gradient through :class:`~smile_ref.gradients.AdditiveNoise`'s evaluator on
    :class:`~smile_ref.targets.Gaussian` (log-density with its normaliser, the noise tilt ``xi . x``);
``+ checks``
    the kernel's per-evaluation gradient handling (``SMILE._evaluate``: non-finite and clip checks);
``transition``
    ``SMILE.transition``: the random draws through the random source, the same-batch log-density at
    the old position (one more evaluation), ``dE``, the guardrail masks, the step record and the state;
``step``
    ``SMILE.step``: the adaptation wrapper (an identity tuner here);
``run_chains``
    the public entry point: recording (thinning 10, ``info="thinned"``) and the end-of-run health check.

Times are process CPU time per step, the minimum over interleaved repetitions (every rung once per
round); ratios are to the minimal loop of the same run.  Writes ``smile_ladder.json`` and
``smile_ladder.md`` to ``--out``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

import smile_ref
from smile_ref import gradients, targets
from smile_ref.backend import get_backend, make_random
from smile_ref.integrators import MCLACHLAN, IntegratorState, isokinetic_step_carry
from smile_ref.io import atomic_write_text
from smile_ref.run.timing import kernel_bar_workload, load_reference, run_header
from smile_ref.samplers import base as registry

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MINIMAL = os.path.join(os.path.dirname(_ROOT), "shared", "bench", "minimal_sgmclmc.py")
RUNGS = ("minimal", "integrator", "+ estimator", "+ checks", "transition", "step", "run_chains")


def load_minimal(path: str):
    """Import the reference loop from its file (it is an external reference, not part of smile_ref)."""
    return load_reference(path, "minimal_sgmclmc")


workload = kernel_bar_workload


def _kernel(prec, chol, eps):
    target = targets.Gaussian.diagonal(1.0 / prec)
    grad = gradients.AdditiveNoise(target, cov=chol @ chol.T)
    return registry.get("smile")(target, grad, get_backend("numpy", "float64", None), step_size=eps, n_warmup=0,
                                 tuner=None), target, grad


def _integrator_rung(prec, chol, eps, n, n_steps, seed, mode, kernel=None):
    """``n_steps`` integrator steps; ``mode``: "integrator", "+ estimator" or "+ checks"."""
    import array_api_compat.numpy as xp

    rng = np.random.default_rng(seed)
    d = prec.size
    x = rng.normal(size=(n, d)) / np.sqrt(prec)
    xi = rng.normal(size=(n, d)) @ chol.T
    ev = kernel._evaluator() if kernel is not None else None
    box = [xi]

    if mode == "integrator":
        def f(y):
            g = -prec * y + box[0]
            return 0.5 * np.sum(y * g, axis=1), g
    elif mode == "+ estimator":
        def f(y):
            return ev(y, box[0])
    else:
        def f(y):
            return kernel._evaluate(y, box[0], [], [])

    st = IntegratorState(x, np.zeros_like(x), *f(x))
    direction = None
    for _ in range(n_steps):
        box[0] = rng.normal(size=(n, d)) @ chol.T
        st, _, direction = isokinetic_step_carry(xp, st, eps, f, MCLACHLAN, None, direction)
    return st


def _kernel_rung(kernel, n, n_steps, seed, method):
    bk = kernel.backend
    rnd = make_random(seed, bk, "host")
    st = kernel.init(np.random.default_rng(seed).normal(size=(n, kernel.dim)), rnd)
    if method == "transition":
        for _ in range(n_steps):
            st = kernel.transition(st, rnd, False)[0]
    else:
        for _ in range(n_steps):
            st = kernel.step(st, rnd, False)[0]
    return st


def ladder(minimal, n: int, d: int, n_steps: int, reps: int) -> dict:
    """Per-step CPU time of every rung at ``n`` chains x ``d`` (min over ``reps`` interleaved rounds)."""
    prec, chol = workload(d)
    eps = 0.1 * math.sqrt(d)
    kernel, target, grad = _kernel(prec, chol, eps)

    def run(rung, seed, steps):
        if rung == "minimal":
            return minimal.run(prec, chol, eps, steps, n, seed)
        if rung in ("integrator", "+ estimator", "+ checks"):
            return _integrator_rung(prec, chol, eps, n, steps, seed, rung, kernel)
        if rung in ("transition", "step"):
            return _kernel_rung(kernel, n, steps, seed, rung)
        return smile_ref.run_chains("smile", target, gradient=grad, n_chains=n, n_steps=steps, seed=seed,
                                    step_size=eps, tuner=None, thinning=10, progress=False)

    for rung in RUNGS:  # warm caches (imports, cached target and noise parameters)
        run(rung, 0, 20)
    best = {r: math.inf for r in RUNGS}
    for rep in range(reps):
        for rung in RUNGS:
            t0 = time.process_time()
            run(rung, rep + 1, n_steps)
            best[rung] = min(best[rung], (time.process_time() - t0) / n_steps)
    base = best["minimal"]
    return {"n_chains": n, "d": d, "n_steps": n_steps, "eps": eps,
            "us_per_step": {r: 1e6 * best[r] for r in RUNGS}, "ratio": {r: best[r] / base for r in RUNGS}}


def render(result: dict) -> str:
    lines = ["## SMILE-naive step ladder (process CPU time per step, min over interleaved rounds)", "",
             f"{result['date']}, {result['machine']}, OPENBLAS_NUM_THREADS={result['openblas_threads']}, "
             f"{result['reps']} rounds", "",
             "| rung | " + " | ".join(f"{c['n_chains']} x {c['d']}: us (ratio)" for c in result["cases"]) + " |",
             "|---|" + "---|" * len(result["cases"])]
    for r in RUNGS:
        lines.append(f"| {r} | " + " | ".join(f"{c['us_per_step'][r]:.1f} ({c['ratio'][r]:.2f})"
                                             for c in result["cases"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (smoke test; ratios are noisy)")
    ap.add_argument("--minimal", default=DEFAULT_MINIMAL, help="path of minimal_sgmclmc.py")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--out", default=os.path.join(_ROOT, "benchmarks", "results"))
    args = ap.parse_args(argv)
    minimal = load_minimal(args.minimal)
    reps = args.reps or (1 if args.quick else 5)
    scale = 0.02 if args.quick else 1.0
    cases = [(256, 6, int(4000 * scale)), (1, 100, int(20000 * scale)), (64, 100, int(4000 * scale))]
    result = run_header(reps=reps, cases=[])
    for n, d, steps in cases:
        row = ladder(minimal, n, d, steps, reps)
        result["cases"].append(row)
        print(f"{n:4d} x {d:<4d} " + "  ".join(f"{r} {row['us_per_step'][r]:.0f} ({row['ratio'][r]:.2f})"
                                               for r in RUNGS), flush=True)
    os.makedirs(args.out, exist_ok=True)
    atomic_write_text(os.path.join(args.out, "smile_ladder.json"), json.dumps(result, indent=2, allow_nan=False))
    atomic_write_text(os.path.join(args.out, "smile_ladder.md"), render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
