"""Wall time per step of smile_ref (NumPy) vs BlackJAX (jit, CPU), side by side.

Run by hand (not a test), from the repository root with smile_ref installed (or ``PYTHONPATH=.``), in an
environment with jax + blackjax (the ``crosscheck`` extra; without them only our columns are filled)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/blackjax_compare.py [--quick] [--out benchmarks/results]

Writes ``blackjax_compare.json`` and ``blackjax_compare.md`` to ``--out`` (git-ignored).

What is measured (float64 everywhere, ``jax_enable_x64``; target: standard Gaussian
``N(0, I_d)``, ``log p = -|x|^2/2``: ``Gaussian.isotropic(d)``, stored as its variance vector, so one gradient
is a few elementwise passes):

1. **time per step** for ``n_chains x d`` in {1, 64, 1024} x {100, 10^4, 10^6}; combinations whose
   sampler state ``(x, u, g)`` exceeds ``--max-state-gb`` (default 4 GB) are skipped and listed:

   * ours "mclmc": ``kernel.step`` of smile_ref's ``"mclmc"`` sampler (McLachlan, 2 gradients per
     step, partial refresh with two ``(n, d)`` host normal draws, fixed ``eps = 0.25 sqrt(d)``,
     ``L = sqrt(d)``, ``tuner=None``, exact gradient; :class:`smile_ref.run.timing.FixedStepper`);
   * ours "smile": ``kernel.step`` of ``"smile"`` (``tuner=None``, same ``eps``, exact gradient, so
     2 gradients per step, no refresh and no random numbers; its gradients pass NaN-zeroing and
     clipping);
   * BlackJAX "mclmc": ``blackjax.mclmc(logdensity, L, eps, integrator=isokinetic_mclachlan)``,
     ``jax.jit(jax.vmap(step))`` with the chain key split inside and the state donated, called in
     a Python loop with ``block_until_ready`` ("loop"), and the same step in ``lax.scan`` ("scan");
     compile time measured separately (``lower().compile()``);
   * BlackJAX "integrator": ``isokinetic_mclachlan`` alone, vmapped and jitted (no refresh, no
     random numbers): BlackJAX has no SMILE, and this is the BlackJAX step with SMILE's gradient
     cost (2 per step) and no RNG.  SMILE is compared with both BlackJAX rows.

   Ratios ``ours / BlackJAX`` use the faster of loop and scan (conservative for us).
2. overhead in gradient-equivalents, per-stage breakdown, peak memory, bytes floor: a separate run of
   ``benchmarks/step_anatomy.py``, which reads this script's JSON for its bytes floor.

Timing: per-call ``perf_counter`` times after one warm-up call (:func:`smile_ref.run.timing.time_calls`),
each case until ``--budget`` seconds or ``--max-calls`` calls (at least 3).  The tables use the
**minimum** over calls (the machine is shared: other jobs only ever add time); medians are in the JSON
(``*_median``).
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import sys
import time

import numpy as np

from smile_ref.run.timing import FixedStepper, time_calls
from smile_ref.targets import Gaussian

CHAINS = (1, 64, 1024)
DIMS = (100, 10_000, 1_000_000)
QUICK_CHAINS = (1, 64)
QUICK_DIMS = (100, 10_000)


# ----------------------------------------------------------------------------------- helpers
def state_bytes(n: int, d: int) -> int:
    """Bytes of the float64 sampler state ``(x, u, g)`` of ``n`` chains in ``d`` dimensions."""
    return 3 * 8 * n * d


def step_params(d: int) -> tuple[float, float]:
    """Fixed ``(eps, L) = (0.25 sqrt(d), sqrt(d))`` (smile_ref's untuned MCLMC defaults)."""
    return 0.25 * math.sqrt(d), math.sqrt(d)


def ours_stepper(sampler: str, target, n: int, eps: float, L: float, seed: int = 0) -> FixedStepper:
    """``sampler`` ("mclmc" with refresh length ``L``, or "smile") at fixed ``eps`` on NumPy float64."""
    if sampler not in ("mclmc", "smile"):
        raise ValueError(f"sampler must be 'mclmc' or 'smile', got {sampler!r}")
    return FixedStepper(sampler, target, n, eps, L=L if sampler == "mclmc" else None, seed=seed)


def have_jax() -> bool:
    try:
        import blackjax  # noqa: F401
        import jax  # noqa: F401
    except ImportError:
        return False
    return True


def bj_stepper(kind: str, n: int, d: int, eps: float, L: float, seed: int = 0, scan_length: int = 0):
    """Jitted BlackJAX step on ``n`` chains of ``N(0, I_d)``: ``(call, compile_s)``.

    ``kind``: ``"mclmc"`` (full kernel with refresh) or ``"integrator"`` (``isokinetic_mclachlan``
    only).  ``call()`` runs one step (``scan_length = 0``) or ``scan_length`` steps in one
    ``lax.scan`` and blocks until the result is ready.
    """
    import jax
    import jax.numpy as jnp
    import blackjax
    from blackjax.mcmc import integrators as I

    jax.config.update("jax_enable_x64", True)

    def logdensity(x):
        return -0.5 * jnp.sum(x * x)

    k0, k1, key = jax.random.split(jax.random.key(seed), 3)
    x0 = jax.random.normal(k0, (n, d), dtype=jnp.float64)
    if kind == "mclmc":
        alg = blackjax.mclmc(logdensity, L=L, step_size=eps, integrator=I.isokinetic_mclachlan)
        state = jax.jit(jax.vmap(alg.init))(x0, jax.random.split(k1, n))

        def one(carry):
            key, st = carry
            key, sub = jax.random.split(key)
            st, info = jax.vmap(alg.step)(jax.random.split(sub, n), st)
            return (key, st), info.energy_change
    elif kind == "integrator":
        integ = I.isokinetic_mclachlan(logdensity)
        lp, g = jax.jit(jax.vmap(jax.value_and_grad(logdensity)))(x0)
        u = jax.random.normal(k1, (n, d), dtype=jnp.float64)
        state = I.IntegratorState(x0, u / jnp.linalg.norm(u, axis=1, keepdims=True), lp, g)

        def one(carry):
            key, st = carry
            new, dk = jax.vmap(lambda s: integ(s, eps))(st)
            return (key, new), dk - new.logdensity + st.logdensity
    else:
        raise ValueError(f"kind must be 'mclmc' or 'integrator', got {kind!r}")

    if scan_length:
        def fn(carry):
            return jax.lax.scan(lambda c, _: one(c), carry, None, length=scan_length)
    else:
        fn = one
    carry = [(key, state)]
    t0 = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=0).lower(carry[0]).compile()
    compile_s = time.perf_counter() - t0

    def call():
        carry[0], out = compiled(carry[0])
        jax.block_until_ready((carry[0], out))

    return call, compile_s


def bj_grad_time(n: int, d: int, budget: float) -> float:
    """Min seconds of one jitted, vmapped ``value_and_grad`` of ``-|x|^2/2`` on ``(n, d)``."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    f = jax.jit(jax.vmap(jax.value_and_grad(lambda x: -0.5 * jnp.sum(x * x))))
    x = jax.random.normal(jax.random.key(3), (n, d), dtype=jnp.float64)
    return time_calls(lambda: jax.block_until_ready(f(x)), budget)["min"]


# ----------------------------------------------------------------------------------- part 1
def compare_case(n: int, d: int, budget: float, max_calls: int, with_jax: bool) -> dict:
    """All timings of one ``(n_chains, d)`` cell (seconds per step) and the ratios."""
    eps, L = step_params(d)
    target = Gaussian.isotropic(d)
    row = {"n_chains": n, "d": d, "eps": eps, "L": L}
    x = np.random.default_rng(0).standard_normal((n, d))
    row["ours_grad"] = time_calls(lambda: target.logdensity_and_grad(x), budget / 4, max_calls)["min"]
    del x
    for sampler in ("mclmc", "smile"):
        stepper = ours_stepper(sampler, target, n, eps, L)
        t = time_calls(stepper.step, budget, max_calls)
        row[f"ours_{sampler}"], row[f"ours_{sampler}_median"] = t["min"], t["median"]
        row[f"ours_{sampler}_rejected"] = stepper.rejected
        del stepper
        gc.collect()
    if with_jax:
        row["bj_grad"] = bj_grad_time(n, d, budget / 4)
        for kind in ("mclmc", "integrator"):
            call, c_s = bj_stepper(kind, n, d, eps, L)
            t = time_calls(call, budget, max_calls)
            row[f"bj_{kind}_loop"], row[f"bj_{kind}_loop_median"], row[f"bj_{kind}_compile_s"] = t["min"], t["median"], c_s
            k = int(max(2, min(100, 0.5 / max(t["min"], 1e-6))))
            call, c_s = bj_stepper(kind, n, d, eps, L, scan_length=k)
            ts = time_calls(call, budget, max(3, max_calls // k))
            row[f"bj_{kind}_scan"], row[f"bj_{kind}_scan_compile_s"], row["scan_length"] = ts["min"] / k, c_s, k
            row[f"bj_{kind}_scan_median"] = ts["median"] / k
            row[f"bj_{kind}"] = min(row[f"bj_{kind}_loop"], row[f"bj_{kind}_scan"])
            del call
            gc.collect()
        row["ratio_mclmc"] = row["ours_mclmc"] / row["bj_mclmc"]
        row["ratio_smile_vs_bj_mclmc"] = row["ours_smile"] / row["bj_mclmc"]
        row["ratio_smile_vs_bj_integrator"] = row["ours_smile"] / row["bj_integrator"]
        row["bj_overhead_grad_equiv"] = (row["bj_mclmc"] - 2 * row["bj_grad"]) / row["bj_grad"]
    for s in ("mclmc", "smile"):
        row[f"ours_{s}_overhead_grad_equiv"] = (row[f"ours_{s}"] - 2 * row["ours_grad"]) / row["ours_grad"]
    return row


def compare(chains, dims, budget, max_calls, max_state_gb, with_jax, log=print) -> tuple[list, list]:
    rows, skipped = [], []
    for d in dims:
        for n in chains:
            if state_bytes(n, d) > max_state_gb * 1e9:
                skipped.append({"n_chains": n, "d": d, "state_gb": state_bytes(n, d) / 1e9})
                log(f"skip n={n} d={d}: state {state_bytes(n, d) / 1e9:.1f} GB > {max_state_gb} GB")
                continue
            r = compare_case(n, d, budget, max_calls, with_jax)
            rows.append(r)
            log(f"n={n:5d} d={d:8d}  ours mclmc {r['ours_mclmc'] * 1e3:10.3f} ms  smile {r['ours_smile'] * 1e3:10.3f} ms"
                + (f"  bj mclmc {r['bj_mclmc'] * 1e3:10.3f} ms  bj integ {r['bj_integrator'] * 1e3:10.3f} ms"
                   f"  ratio {r['ratio_mclmc']:.2f}" if with_jax else ""))
    return rows, skipped


def _ms(t):
    return "-" if t is None else (f"{t * 1e3:.3f}" if t < 1 else f"{t * 1e3:,.0f}")


def compare_table(rows) -> str:
    head = ["n_chains", "d", "ours MCLMC ms", "BJ MCLMC ms (loop / scan)", "ratio MCLMC", "ours SMILE ms",
            "BJ integrator ms (loop / scan)", "SMILE / BJ MCLMC", "SMILE / BJ integrator", "BJ compile s (MCLMC)"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        bj = "bj_mclmc" in r
        out.append("| " + " | ".join([
            str(r["n_chains"]), f"{r['d']:,}", _ms(r["ours_mclmc"]),
            f"{_ms(r['bj_mclmc_loop'])} / {_ms(r['bj_mclmc_scan'])}" if bj else "-",
            f"{r['ratio_mclmc']:.2f}" if bj else "-", _ms(r["ours_smile"]),
            f"{_ms(r['bj_integrator_loop'])} / {_ms(r['bj_integrator_scan'])}" if bj else "-",
            f"{r['ratio_smile_vs_bj_mclmc']:.2f}" if bj else "-",
            f"{r['ratio_smile_vs_bj_integrator']:.2f}" if bj else "-",
            f"{r['bj_mclmc_compile_s']:.2f}" if bj else "-"]) + " |")
    return "\n".join(out)


def _blas_name() -> str | None:
    try:
        return np.show_config(mode="dicts")["Build Dependencies"]["blas"]["name"]
    except Exception:  # noqa: BLE001 - informational only
        return None


def machine_info() -> dict:
    info = {"platform": platform.platform(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": _blas_name(),
            "env": {k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MALLOC_MMAP_THRESHOLD_",
                                               "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_") if k in os.environ}}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        pass
    if have_jax():
        import blackjax
        import jax

        info.update(jax=jax.__version__, blackjax=blackjax.__version__)
    return info


def write_results(res: dict, out: str, t_start: float) -> str:
    """Write ``blackjax_compare.{json,md}`` to ``out``; returns the Markdown."""
    res["runtime_s"], res["loadavg_end"] = time.time() - t_start, os.getloadavg()
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "blackjax_compare.json"), "w") as f:
        json.dump(res, f, indent=1)
    md = ["# smile_ref vs BlackJAX: time per step", "", f"Date (UTC): {res['date_utc']}  ",
          f"Machine: {json.dumps(res['machine'])}  ", f"Command: `{res['command']}`  ",
          f"Runtime: {res['runtime_s']:.0f} s; load average (1, 5, 15 min) at start {res['loadavg_start']}, "
          f"at end {res['loadavg_end']}", "", "Seconds per step: minimum over calls (medians in the JSON).", "",
          compare_table(res["compare"]), ""]
    if res["skipped"]:
        md += ["Skipped (state (x, u, g) above the memory limit): "
               + ", ".join(f"n={s['n_chains']} d={s['d']:,} ({s['state_gb']:.0f} GB)" for s in res["skipped"]), ""]
    text = "\n".join(md)
    with open(os.path.join(out, "blackjax_compare.md"), "w") as f:
        f.write(text)
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("benchmarks", "results"))
    ap.add_argument("--quick", action="store_true", help="chains {1, 64} x d {100, 10^4}")
    ap.add_argument("--budget", type=float, default=None, help="seconds per timed case")
    ap.add_argument("--max-calls", type=int, default=200)
    ap.add_argument("--max-state-gb", type=float, default=4.0)
    a = ap.parse_args(argv)
    with_jax = have_jax()
    if not with_jax:
        print("jax/blackjax not importable: BlackJAX columns are skipped (install the 'crosscheck' extra)")
    budget = a.budget if a.budget is not None else (0.5 if a.quick else 1.5)
    chains, dims = (QUICK_CHAINS, QUICK_DIMS) if a.quick else (CHAINS, DIMS)
    t_start = time.time()
    res = {"loadavg_start": os.getloadavg(), "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "command": " ".join([os.path.basename(sys.executable)] + sys.argv), "machine": machine_info(),
           "settings": {"budget_s": budget, "max_calls": a.max_calls, "max_state_gb": a.max_state_gb,
                        "quick": a.quick}}
    res["compare"], res["skipped"] = compare(chains, dims, budget, a.max_calls, a.max_state_gb, with_jax)
    print(write_results(res, a.out, t_start))
    return res


if __name__ == "__main__":
    main()
