"""Kernel speed of smile_ref against a minimal NumPy loop and BlackJAX, as ratios from one run.

Run by hand (not a test), from the repository root::

    OPENBLAS_NUM_THREADS=1 python benchmarks/kernel_speed.py [--quick] [--out benchmarks/results] \
        [--minimal ../shared/bench/minimal_sgmclmc.py]

Writes ``kernel_speed.json`` and ``kernel_speed.md`` to ``--out`` (git-ignored); the numbers quoted in
``docs/performance.md`` come from it.  Three measurements:

1. **SMILE-naive vs the minimal loop.**  The reference is the 30-line NumPy SG-MCLMC loop of
   ``shared/bench/minimal_sgmclmc.py`` (McLachlan ESH steps, one additive-noise draw per step shared by
   the step's two gradient evaluations, thinning 10).  smile_ref runs the same dynamics through its
   public entry point, ``run_chains("smile", Gaussian.diagonal(1/prec), gradient=AdditiveNoise(target,
   cov), tuner=None, step_size=eps, thinning=10)``, on the same target, noise covariance and step size.
   Process CPU time (``time.process_time``) of whole runs, repetitions interleaved (ours, minimal,
   ours, ...) so that a change in machine load hits both; the ratio is min(ours)/min(minimal).  Cases
   ``(n_chains, d)`` = (256, 6) (the theory-validation workload), (1, 100), (64, 100).
2. **MCLMC vs BlackJAX.**  smile_ref's ``"mclmc"`` (``tuner=None``, fixed ``eps = 0.25 sqrt(d)``,
   ``L = sqrt(d)``, exact gradient of ``N(0, I_d)``) against ``blackjax.mclmc`` with
   ``isokinetic_mclachlan`` in one jitted ``lax.scan`` (float64, compiled once), wall time per step at
   1 x 100, rounds interleaved (ours, BlackJAX, ...); the ratio of the minima and the median of the
   per-round ratios.  Skipped without jax/blackjax (the ``crosscheck`` extra).
3. **Full-array passes per SMILE step** at 64 x 10^4: the run is made with an ``ndarray`` subclass
   whose ``__array_ufunc__`` / ``__array_function__`` count every NumPy call that reads or writes an
   array of ``n_chains * d`` or more elements (an elementwise operation, a reduction over rows, a
   ``where``, a copy).  The count per step is the difference between two run lengths divided by the
   difference in steps, so initialisation and recording drop out.  A pass that NumPy performs inside one
   call (``vecdot`` reads two arrays) counts once: the number is a lower bound on memory traffic in units
   of one array, not bytes.
4. **ESH forms** (``esh_form="robust"``, the default, against ``"lean"``): the integrator step alone
   (:func:`_integrator_loop`, McLachlan, direction carried as the samplers do) and the ESH update alone
   (:data:`smile_ref.integrators.ESH_FORMS`) per form, against the same parts of the minimal loop
   (its McLachlan step with the same gradient function, and its ``esh``), process CPU time of
   interleaved repetitions in one run; full-array passes per integrator step and per ESH call of
   both forms at 64 x 10^4, and per SMILE-naive step (``run_chains(..., esh_form=...)``).
   ``--only-esh-forms`` runs this part alone.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time

import numpy as np

import smile_ref
from smile_ref import gradients, targets
from smile_ref.io import atomic_write_text
from smile_ref.run.timing import kernel_bar_workload, load_reference, run_header

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MINIMAL = os.path.join(os.path.dirname(_ROOT), "shared", "bench", "minimal_sgmclmc.py")


def load_minimal(path: str):
    """Import the reference loop from its file (it is an external reference, not part of smile_ref)."""
    return load_reference(path, "minimal_sgmclmc")


workload = kernel_bar_workload


def ours_run(prec, chol, eps, n_steps, n_chains, seed):
    target = targets.Gaussian.diagonal(1.0 / prec)
    grad = gradients.AdditiveNoise(target, cov=chol @ chol.T)
    return smile_ref.run_chains("smile", target, gradient=grad, n_chains=n_chains, n_steps=n_steps, seed=seed,
                                step_size=eps, tuner=None, thinning=10, progress=False)


def cpu_time(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def compare_minimal(minimal, cases, reps: int, log=print) -> list[dict]:
    rows = []
    for n, d, n_steps in cases:
        prec, chol = workload(d)
        eps = 0.1 * math.sqrt(d)
        ours_t, ref_t = [], []
        ours_run(prec, chol, eps, 20, n, 0)  # warm caches (imports, cached target parameters)
        minimal.run(prec, chol, eps, 20, n, 0)
        for r in range(reps):
            ours_t.append(cpu_time(lambda: ours_run(prec, chol, eps, n_steps, n, r)))
            ref_t.append(cpu_time(lambda: minimal.run(prec, chol, eps, n_steps, n, r)))
        row = {"n_chains": n, "d": d, "n_steps": n_steps, "eps": eps,
               "ours_us_per_step": 1e6 * min(ours_t) / n_steps, "minimal_us_per_step": 1e6 * min(ref_t) / n_steps,
               "ratio": min(ours_t) / min(ref_t), "ratio_median": float(np.median(ours_t) / np.median(ref_t))}
        rows.append(row)
        log(f"smile vs minimal  {n:5d} x {d:<6d} ours {row['ours_us_per_step']:9.1f} us/step  "
            f"minimal {row['minimal_us_per_step']:9.1f} us/step  ratio {row['ratio']:.2f}")
    return rows


def have_blackjax() -> bool:
    return importlib.util.find_spec("jax") is not None and importlib.util.find_spec("blackjax") is not None


def blackjax_mclmc_runner(n: int, d: int, n_steps: int):
    """A callable returning the wall seconds per step of one run of BlackJAX MCLMC (McLachlan) on ``N(0, I_d)``
    in one jitted ``lax.scan`` of ``n_steps`` steps (compiled here, before the first timed call)."""
    import jax
    import jax.numpy as jnp
    import blackjax
    from blackjax.mcmc.integrators import isokinetic_mclachlan

    jax.config.update("jax_enable_x64", True)
    eps, L = 0.25 * math.sqrt(d), math.sqrt(d)
    alg = blackjax.mclmc(lambda x: -0.5 * jnp.sum(x * x), L=L, step_size=eps, integrator=isokinetic_mclachlan)
    k0, k1, key = jax.random.split(jax.random.key(0), 3)
    state = jax.vmap(alg.init)(jax.random.normal(k0, (n, d), dtype=jnp.float64), jax.random.split(k1, n))

    def body(carry, _):
        key, st = carry
        key, sub = jax.random.split(key)
        st, info = jax.vmap(alg.step)(jax.random.split(sub, n), st)
        return (key, st), info.energy_change

    run = jax.jit(lambda c: jax.lax.scan(body, c, None, length=n_steps))
    box = [(key, state)]
    jax.block_until_ready(run(box[0]))  # compile

    def once() -> float:
        t0 = time.perf_counter()
        box[0], out = run(box[0])
        jax.block_until_ready((box[0], out))
        return (time.perf_counter() - t0) / n_steps

    return once


def ours_mclmc_once(n: int, d: int, n_steps: int, seed: int) -> float:
    """Wall seconds per step of one ``run_chains("mclmc", ...)`` on the same target, step size and ``L``."""
    target = targets.Gaussian.isotropic(d)
    eps, L = 0.25 * math.sqrt(d), math.sqrt(d)
    t0 = time.perf_counter()
    smile_ref.run_chains("mclmc", target, n_chains=n, n_steps=n_steps, seed=seed, step_size=eps, L=L, tuner=None,
                         thinning=10, progress=False)
    return (time.perf_counter() - t0) / n_steps


def mclmc_vs_blackjax(n: int, d: int, n_steps: int, rounds: int) -> dict:
    """Interleaved rounds (ours, BlackJAX, ours, ...; one warm-up run of ours first): per-round times, the ratio
    of the minima and the median of the per-round ratios (a change in machine load hits both sides of a round)."""
    theirs = blackjax_mclmc_runner(n, d, n_steps)
    ours_mclmc_once(n, d, max(n_steps // 10, 10), 0)  # warm caches
    o, t = [], []
    for r in range(rounds):
        o.append(ours_mclmc_once(n, d, n_steps, r + 1))
        t.append(theirs())
    ratios = sorted(a / b for a, b in zip(o, t))
    return {"ours_s_per_step": min(o), "blackjax_s_per_step": min(t), "ratio": min(o) / min(t),
            "median_of_ratios": float(np.median(ratios)), "ratios": ratios, "rounds": rounds}


class CountingArray(np.ndarray):
    """``ndarray`` subclass that counts NumPy calls touching an array of at least ``threshold`` elements."""

    threshold = 0
    count = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        out = kwargs.get("out", ())
        arrays = [a for a in (*inputs, *out) if isinstance(a, np.ndarray)]
        if any(a.size >= CountingArray.threshold for a in arrays):
            CountingArray.count += 1
        inputs = tuple(a.view(np.ndarray) if isinstance(a, CountingArray) else a for a in inputs)
        if out:
            kwargs["out"] = tuple(a.view(np.ndarray) if isinstance(a, CountingArray) else a for a in out)
        res = getattr(ufunc, method)(*inputs, **kwargs)
        if isinstance(res, tuple):
            return tuple(_wrap(r) for r in res)
        return _wrap(res)

    def __array_function__(self, func, types, args, kwargs):
        flat = [a for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
        flat += [b for a in args if isinstance(a, (list, tuple)) for b in a if isinstance(b, np.ndarray)]
        if any(a.size >= CountingArray.threshold for a in flat):
            CountingArray.count += 1
        args = tuple(_unwrap(a) for a in args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        res = func(*args, **kwargs)
        return tuple(_wrap(r) for r in res) if isinstance(res, tuple) else _wrap(res)


def _unwrap(a):
    if isinstance(a, CountingArray):
        return a.view(np.ndarray)
    if isinstance(a, (list, tuple)):
        return type(a)(_unwrap(b) for b in a)
    return a


def _wrap(r):
    return r.view(CountingArray) if isinstance(r, np.ndarray) and not isinstance(r, CountingArray) else r


def passes_per_step(n: int, d: int, steps=(4, 12), **options) -> dict:
    """Full-array NumPy calls per SMILE-naive step (additive noise, no recording in between); ``options``
    go to ``run_chains`` (e.g. ``esh_form="lean"``)."""
    prec, chol = workload(d)
    target = targets.Gaussian.diagonal(1.0 / prec)
    grad = gradients.AdditiveNoise(target, cov=np.diag(np.diag(chol) ** 2))
    x0 = np.random.default_rng(0).normal(size=(n, d)).view(CountingArray)
    counts = []
    for k in steps:
        CountingArray.threshold, CountingArray.count = n * d, 0
        smile_ref.run_chains("smile", target, gradient=grad, n_chains=n, n_steps=k, seed=0, step_size=0.1,
                             tuner=None, thinning=k, initial_position=x0, progress=False, block_size=10**6,
                             **options)
        counts.append(CountingArray.count)
    per_step = (counts[1] - counts[0]) / (steps[1] - steps[0])
    return {"n_chains": n, "d": d, "passes_per_step": per_step, "counts": dict(zip(map(str, steps), counts))}


def _noise_and_start(n: int, d: int, counting: bool = False):
    """Start ``x``, eight additive-noise draws and ``eps`` of the integrator-alone workload (shared with the
    minimal loop's step, :func:`_minimal_integrator_loop`)."""
    prec, chol = workload(d)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)) / np.sqrt(prec)
    if counting:
        x = x.view(CountingArray)
    return prec, x, [rng.normal(size=(n, d)) * np.diag(chol) for _ in range(8)], 0.1 * math.sqrt(d)


def _minimal_integrator_loop(minimal, n: int, d: int, n_steps: int):
    """The minimal loop's McLachlan step (its ``esh``, ``x + 0.5 eps u``, the gradient of :func:`_integrator_loop`)."""
    prec, x, noise, eps = _noise_and_start(n, d)
    u = np.zeros((n, d))
    u[:, 0] = 1.0
    b1 = minimal.B1
    g = -(x * prec) + noise[0]
    for t in range(n_steps):
        xi = noise[t % 8]
        u = minimal.esh(u, g, b1 * eps, d)
        x = x + 0.5 * eps * u
        g = -(x * prec) + xi
        lp = 0.5 * np.sum(x * g, axis=1)
        u = minimal.esh(u, g, (1 - 2 * b1) * eps, d)
        x = x + 0.5 * eps * u
        g = -(x * prec) + xi
        lp = 0.5 * np.sum(x * g, axis=1)
        u = minimal.esh(u, g, b1 * eps, d)
    return x, u, lp


def _integrator_loop(n: int, d: int, n_steps: int, carry: bool, counting: bool = False, esh_form: str = "robust"):
    """``n_steps`` McLachlan steps of the integrator alone on the SMILE-naive workload (one additive-noise
    draw per step): with ``carry`` through :func:`~smile_ref.integrators.isokinetic_step_carry` (the first
    B reuses the previous step's last direction), else :func:`~smile_ref.integrators.isokinetic_step_unchecked`."""
    import array_api_compat.numpy as xp

    from smile_ref.integrators import MCLACHLAN, IntegratorState, isokinetic_step_carry, isokinetic_step_unchecked

    prec, x, noise, eps = _noise_and_start(n, d, counting)
    xi = noise[0]

    def lg(y):
        g = -(y * prec) + xi
        return 0.5 * np.sum(y * g, axis=1), g

    st = IntegratorState(x, np.zeros_like(x), *lg(x))
    direction = None
    for t in range(n_steps):
        xi = noise[t % 8]
        if carry:
            st, _, direction = isokinetic_step_carry(xp, st, eps, lg, MCLACHLAN, None, direction, esh_form=esh_form)
        else:
            st, _ = isokinetic_step_unchecked(xp, st, eps, lg, MCLACHLAN, esh_form=esh_form)
    return st


def carried_direction(cases, reps: int, passes_case=(64, 10_000), log=print) -> dict:
    """What carrying the first B's direction over saves (the sampler does not use it yet): process CPU time
    per integrator step with and without it, interleaved, and full-array passes per step at ``passes_case``."""
    rows = []
    for n, d, n_steps in cases:
        n_steps = max(n_steps // 4, 10)
        _integrator_loop(n, d, 10, True), _integrator_loop(n, d, 10, False)
        t_c, t_p = [], []
        for _ in range(reps):
            t_p.append(cpu_time(lambda: _integrator_loop(n, d, n_steps, False)))
            t_c.append(cpu_time(lambda: _integrator_loop(n, d, n_steps, True)))
        rows.append({"n_chains": n, "d": d, "plain_us_per_step": 1e6 * min(t_p) / n_steps,
                     "carry_us_per_step": 1e6 * min(t_c) / n_steps, "ratio": min(t_c) / min(t_p)})
        log(f"integrator step {n:5d} x {d:<6d} plain {rows[-1]['plain_us_per_step']:8.1f} us  carried "
            f"{rows[-1]['carry_us_per_step']:8.1f} us  ratio {rows[-1]['ratio']:.2f}")
    n, d = passes_case
    per = {}
    for carry in (False, True):
        counts = []
        for k in (3, 7):
            CountingArray.threshold, CountingArray.count = n * d, 0
            _integrator_loop(n, d, k, carry, counting=True)
            counts.append(CountingArray.count)
        per["carry" if carry else "plain"] = (counts[1] - counts[0]) / 4
    log(f"integrator passes per step at {n} x {d}: plain {per['plain']:.1f}, carried {per['carry']:.1f}")
    return {"timing": rows, "passes": {"n_chains": n, "d": d, **per}}


def _counted(fn, n: int, d: int) -> int:
    CountingArray.threshold, CountingArray.count = n * d, 0
    fn()
    return CountingArray.count


def _esh_inputs(n: int, d: int, counting: bool = False):
    r = np.random.default_rng(7)
    u = r.standard_normal((n, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    g = r.standard_normal((n, d))
    if counting:
        u, g = u.view(CountingArray), g.view(CountingArray)
    return u, g, 0.3 * math.sqrt(d)


def esh_forms(minimal, cases, reps: int, passes_case=(64, 10_000), log=print) -> dict:
    """``esh_form="robust"`` vs ``"lean"``: integrator step and ESH update alone against the minimal loop's
    (process CPU time, interleaved, min over ``reps``), and full-array passes at ``passes_case``."""
    import array_api_compat.numpy as xp

    from smile_ref.integrators import ESH_FORMS

    forms = ("robust", "lean")
    rows = []
    for n, d, n_steps in cases:
        u, g, tau = _esh_inputs(n, d)
        n_esh = 3 * n_steps
        runs = {f"step_{f}": (lambda f=f: _integrator_loop(n, d, n_steps, True, esh_form=f)) for f in forms}
        runs["step_minimal"] = lambda: _minimal_integrator_loop(minimal, n, d, n_steps)
        for f in forms:
            runs[f"esh_{f}"] = lambda f=f: [ESH_FORMS[f](xp, u, g, tau, d) for _ in range(n_esh)]
        runs["esh_minimal"] = lambda: [minimal.esh(u, g, tau, d) for _ in range(n_esh)]
        for fn in runs.values():  # warm up
            fn()
        best = {k: math.inf for k in runs}
        for _ in range(reps):
            for k, fn in runs.items():
                best[k] = min(best[k], cpu_time(fn))
        row = {"n_chains": n, "d": d, "n_steps": n_steps}
        for k, t in best.items():
            row[k + "_us"] = 1e6 * t / (n_steps if k.startswith("step") else n_esh)
        for part in ("step", "esh"):
            for f in forms:
                row[f"{part}_{f}_ratio"] = best[f"{part}_{f}"] / best[f"{part}_minimal"]
        rows.append(row)
        log(f"esh forms {n:5d} x {d:<6d} step us robust {row['step_robust_us']:9.1f} lean {row['step_lean_us']:9.1f} "
            f"minimal {row['step_minimal_us']:9.1f} (ratios {row['step_robust_ratio']:.2f}, {row['step_lean_ratio']:.2f});"
            f" ESH us {row['esh_robust_us']:8.1f} {row['esh_lean_us']:8.1f} {row['esh_minimal_us']:8.1f} "
            f"(ratios {row['esh_robust_ratio']:.2f}, {row['esh_lean_ratio']:.2f})")
    n, d = passes_case
    passes = {"n_chains": n, "d": d}
    for f in forms:
        c3, c7 = (_counted(lambda k=k: _integrator_loop(n, d, k, True, True, esh_form=f), n, d) for k in (3, 7))
        passes[f"step_{f}"] = (c7 - c3) / 4
        u, g, tau = _esh_inputs(n, d, counting=True)
        passes[f"esh_call_{f}"] = _counted(lambda: ESH_FORMS[f](xp, u, g, tau, d), n, d)
    passes["esh_call_minimal"] = _counted(lambda: minimal.esh(u, g, tau, d), n, d)
    passes["step_minimal"] = None
    for f in forms:
        try:
            passes[f"smile_{f}"] = passes_per_step(n, d, esh_form=f)["passes_per_step"]
        except (TypeError, ValueError) as exc:  # run_chains without the option
            passes[f"smile_{f}"] = None
            passes["smile_note"] = f"run_chains(esh_form=...) not available: {exc}"[:200]
    log(f"passes at {n} x {d}: integrator step robust {passes['step_robust']:.1f}, lean {passes['step_lean']:.1f}; "
        f"one ESH call robust {passes['esh_call_robust']}, lean {passes['esh_call_lean']}, minimal "
        f"{passes['esh_call_minimal']}; SMILE step robust {passes['smile_robust']}, lean {passes['smile_lean']}")
    return {"timing": rows, "passes": passes}


def render(result: dict) -> str:
    lines = ["# Kernel speed", "", f"Machine: {result['machine']}; {result['date']}"]
    if "passes" in result:  # not a --only-esh-forms run
        lines += _render_runs(result)
    return _render_parts(result, lines)


def _render_runs(result: dict) -> list:
    lines = ["", "## SMILE-naive (`run_chains`) vs the minimal NumPy loop (process CPU time, min over repetitions)", "",
             "| chains x d | steps | ours (us/step) | minimal (us/step) | ratio | ratio of medians |",
             "|---|---|---|---|---|---|"]
    for r in result["minimal"]:
        lines.append(f"| {r['n_chains']} x {r['d']} | {r['n_steps']} | {r['ours_us_per_step']:.1f} | "
                     f"{r['minimal_us_per_step']:.1f} | {r['ratio']:.2f} | {r['ratio_median']:.2f} |")
    bj = result.get("blackjax")
    lines += ["", "## MCLMC at 1 x 100 vs BlackJAX (jit, `lax.scan`, wall time per step)", ""]
    if bj:
        lines.append(f"ours {1e6 * bj['ours_s_per_step']:.1f} us/step, BlackJAX {1e6 * bj['blackjax_s_per_step']:.1f} "
                     f"us/step (minima over {bj.get('rounds', 1)} interleaved rounds), ratio {bj['ratio']:.2f}, "
                     f"median of the per-round ratios {bj.get('median_of_ratios', bj['ratio']):.2f}")
    else:
        lines.append("not measured (jax/blackjax not installed)")
    return lines


def _render_parts(result: dict, lines: list) -> str:
    cd = result.get("carried_direction")
    if cd:
        lines += ["", "## Integrator step alone, with the first B's direction carried over (not used by samplers yet)", "",
                  "| chains x d | plain (us/step) | carried (us/step) | ratio |", "|---|---|---|---|"]
        for r in cd["timing"]:
            lines.append(f"| {r['n_chains']} x {r['d']} | {r['plain_us_per_step']:.1f} | {r['carry_us_per_step']:.1f} | "
                         f"{r['ratio']:.2f} |")
        cp = cd["passes"]
        lines += ["", f"Full-array passes per integrator step at {cp['n_chains']} x {cp['d']}: plain {cp['plain']:.1f}, "
                  f"carried {cp['carry']:.1f}."]
    ef = result.get("esh_forms")
    if ef:
        lines += ["", "## ESH forms: integrator step and ESH update alone vs the minimal loop (us, ratio to minimal)", "",
                  "| chains x d | step robust | step lean | step minimal | ratio robust | ratio lean | ESH robust | "
                  "ESH lean | ESH minimal | ratio robust | ratio lean |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in ef["timing"]:
            lines.append(f"| {r['n_chains']} x {r['d']} | " + " | ".join(
                f"{r[k]:.1f}" if k.endswith("_us") else f"{r[k]:.2f}" for k in (
                    "step_robust_us", "step_lean_us", "step_minimal_us", "step_robust_ratio", "step_lean_ratio",
                    "esh_robust_us", "esh_lean_us", "esh_minimal_us", "esh_robust_ratio", "esh_lean_ratio")) + " |")
        lines += ["", "Full-array passes: " + ", ".join(f"{k} {v}" for k, v in ef["passes"].items()) + "."]
    if "passes" not in result:
        return "\n".join(lines) + "\n"
    p = result["passes"]
    lines += ["", f"## Full-array passes per SMILE step at {p['n_chains']} x {p['d']}", "",
              f"{p['passes_per_step']:.1f} NumPy calls per step touch an array of n x d elements "
              f"(counts {p['counts']})."]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs (smoke test; ratios are noisy)")
    ap.add_argument("--out", default=os.path.join(_ROOT, "benchmarks", "results"))
    ap.add_argument("--minimal", default=DEFAULT_MINIMAL, help="path of minimal_sgmclmc.py")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--only-esh-forms", action="store_true", help="only part 4 (robust vs lean ESH form)")
    args = ap.parse_args(argv)
    minimal = load_minimal(args.minimal)
    reps = args.reps or (2 if args.quick else 7)
    scale = 0.05 if args.quick else 1.0
    cases = [(256, 6, int(4000 * scale)), (1, 100, int(20000 * scale)), (64, 100, int(4000 * scale))]
    result = run_header()
    big = (64, 10_000 if not args.quick else 1000)
    result["esh_forms"] = esh_forms(minimal, cases + [(*big, max(int(40 * scale), 3))], reps, big)
    if args.only_esh_forms:
        result["minimal"] = []
        return _write(args.out, result)
    result["minimal"] = compare_minimal(minimal, cases, reps)
    if have_blackjax():
        bj = result["blackjax"] = mclmc_vs_blackjax(1, 100, int(5000 * scale) or 50, reps)
        print(f"mclmc 1 x 100: ours {1e6 * bj['ours_s_per_step']:.1f} us/step, BlackJAX scan "
              f"{1e6 * bj['blackjax_s_per_step']:.1f} us/step, ratio {bj['ratio']:.2f} (median of rounds "
              f"{bj['median_of_ratios']:.2f})")
    result["carried_direction"] = carried_direction(cases, reps, (64, 10_000 if not args.quick else 1000))
    result["passes"] = passes_per_step(64, 10_000 if not args.quick else 1000)
    print(f"passes per SMILE step at {result['passes']['n_chains']} x {result['passes']['d']}: "
          f"{result['passes']['passes_per_step']:.1f}")
    return _write(args.out, result)


def _write(out: str, result: dict) -> int:
    os.makedirs(out, exist_ok=True)
    atomic_write_text(os.path.join(out, "kernel_speed.json"), json.dumps(result, indent=2, allow_nan=False))
    atomic_write_text(os.path.join(out, "kernel_speed.md"), render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
