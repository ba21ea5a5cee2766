"""Where the time and the memory of one smile_ref step go (used by blackjax_compare.py).

Parts (all NumPy float64, single process, fixed step size, exact gradients):

* :func:`bandwidth`: memory bandwidth from a big ``np.copyto`` (2 passes) and ``np.add(out=)``
  (3 passes), the cost of a freshly allocated result (``a + b``: page faults of a new ``mmap``)
  and the cost of one standard normal of NumPy's PCG64 generator;
* :func:`overhead`: ``(t_step - 2 t_grad) / t_grad`` (gradient-equivalents) of MCLMC and SMILE on
  the standard Gaussian, logistic regression and an MLP (synthetic data);
* :func:`breakdown`: per-stage time of one step from timing wrappers around the sampler's
  building blocks (RNG draws, refresh, B = ESH velocity update, A = position update, gradient,
  guardrail, chain selection), and the cProfile top functions where the step is Python bound;
* :func:`esh_proposal`: a bit-identical variant of the ESH update (prototype, not in smile_ref),
  checked for equality on random and edge-case inputs, and timed;
* :func:`env_experiment`: the same step in fresh subprocesses with the default environment, with
  ``OPENBLAS_NUM_THREADS=1`` (``np.vecdot`` calls BLAS ``ddot`` per row, which OpenBLAS threads for
  rows longer than ~10^4; on a busy machine the thread hand-offs cost up to 300x; the summation
  order, hence the last bits, depends on the thread count) and additionally with glibc's
  ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``/``MALLOC_TOP_PAD_`` (freed temporaries stay in
  the heap: no page faults for new arrays; bit-identical);
* :func:`memory`: peak RSS growth and tracemalloc peak (NumPy reports its buffers to tracemalloc)
  over the first ``s1`` and the next ``s2 - s1`` steps, in a subprocess;
* :func:`bytes_floor`: bytes one step must move, time at the measured bandwidth, and the gap.
"""
from __future__ import annotations

import cProfile
import gc
import io
import json
import math
import os
import pstats
import subprocess
import sys
import time

import numpy as np

from blackjax_compare import ours_stepper, standard_gaussian, step_params, time_calls

_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**32), "MALLOC_TRIM_THRESHOLD_": str(2**36),
               "MALLOC_TOP_PAD_": str(2**30)}


def _best(fn, k=5):
    fn()
    return min(_t(fn) for _ in range(k))


def _t(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bandwidth(n_elems: int) -> dict:
    """Copy / add bandwidth (GB/s, bytes counted once per pass), fresh-allocation cost, RNG cost."""
    a, b, c = np.ones(n_elems), np.ones(n_elems), np.empty(n_elems)
    nb = 8 * n_elems
    t_copy = _best(lambda: np.copyto(c, a))
    t_add = _best(lambda: np.add(a, b, out=c))
    t_new = _best(lambda: a + b)
    g = np.random.Generator(np.random.PCG64(0))
    t_rng = _best(lambda: g.standard_normal(n_elems), 3)
    return {"array_mb": nb / 1e6, "copy_gbps": 2 * nb / t_copy / 1e9, "add_out_gbps": 3 * nb / t_add / 1e9,
            "t_pass_s": t_add / 3, "t_add_out_s": t_add, "t_add_new_s": t_new, "ns_per_normal": t_rng / n_elems * 1e9}


# ------------------------------------------------------------------------------- targets
def _logreg(n_data=10_000, p=100, seed=0):
    from smile_ref.targets.glm import LogisticRegression

    r = np.random.default_rng(seed)
    X = r.standard_normal((n_data, p)) / math.sqrt(p)
    y = (r.uniform(size=n_data) < 1 / (1 + np.exp(-X @ r.standard_normal(p)))).astype(float)
    return LogisticRegression(X, y, prior_scale=1.0)


def _mlp(n_data=2000, p=10, hidden=(50, 50), seed=0):
    from smile_ref.targets.mlp import MLP

    r = np.random.default_rng(seed)
    X = r.standard_normal((n_data, p))
    y = np.sin(X[:, 0]) + 0.1 * r.standard_normal(n_data)
    return MLP(X, y, hidden=hidden, activation="tanh", task="regression")


def overhead(quick: bool, budget: float) -> list[dict]:
    """Overhead in gradient-equivalents of MCLMC and SMILE per target and chain count."""
    cases = [("standard_gaussian", 100, 1), ("standard_gaussian", 10_000, 64),
             ("logistic_regression", None, 1), ("logistic_regression", None, 64), ("mlp", None, 1),
             ("mlp", None, 64)]
    if not quick:
        cases.insert(2, ("standard_gaussian", 100_000, 64))
    rows = []
    for name, d, n in cases:
        t = standard_gaussian(d) if name == "standard_gaussian" else (_logreg() if name == "logistic_regression" else _mlp())
        d = t.dim
        eps, L = step_params(d)
        if name != "standard_gaussian":  # posterior scale ~ 1/sqrt(N): a small stable step
            eps, L = 1e-3 * math.sqrt(d), 0.01 * math.sqrt(d)
        x = np.random.default_rng(1).standard_normal((n, d)) * (1.0 if name == "standard_gaussian" else 0.1)
        row = {"target": name, "d": d, "n_chains": n, "eps": eps,
               "t_grad": time_calls(lambda: t.logdensity_and_grad(x), budget / 3)["min"]}
        for s in ("mclmc", "smile"):
            step, holder = ours_stepper(s, t, n, eps, L)
            row[f"t_{s}"] = time_calls(step, budget)["min"]
            row[f"overhead_{s}"] = (row[f"t_{s}"] - 2 * row["t_grad"]) / row["t_grad"]
            row[f"rejected_{s}"] = holder["rejected"]
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------- breakdown
class _Timers:
    def __init__(self):
        self.t, self.calls, self._undo = {}, {}, []

    def wrap(self, owner, name, label):
        orig = getattr(owner, name)
        had = name in vars(owner) if not isinstance(owner, type(sys)) else True

        def w(*a, **k):
            t0 = time.perf_counter()
            try:
                return orig(*a, **k)
            finally:
                self.t[label] = self.t.get(label, 0.0) + time.perf_counter() - t0
                self.calls[label] = self.calls.get(label, 0) + 1

        setattr(owner, name, w)
        self._undo.append((owner, name, orig, had))

    def restore(self):
        for owner, name, orig, had in reversed(self._undo):
            if had:
                setattr(owner, name, orig)
            else:
                delattr(owner, name)


def breakdown(sampler: str, n: int, d: int, steps: int) -> dict:
    """Seconds per step of each building block (wrappers add ~1 us per call) and pass-equivalents."""
    import smile_ref.integrators.isokinetic as iso
    import smile_ref.samplers.mclmc as mm
    import smile_ref.samplers.smile as sm

    target = standard_gaussian(d)
    eps, L = step_params(d)
    step, holder = ours_stepper(sampler, target, n, eps, L)
    step()
    T = _Timers()
    mod = mm if sampler == "mclmc" else sm
    T.wrap(holder["rng"], "normal", "rng normal draws")
    T.wrap(target, "logdensity_and_grad", "gradient (target)")
    if sampler == "mclmc":
        T.wrap(mm, "refresh_with_nu", "O: partial refresh")
    else:
        T.wrap(holder["kernel"], "_evaluate", "_evaluate (gradient + NaN/clip)")
    T.wrap(mod, "isokinetic_step_unchecked", "isokinetic_step (total)")
    holder["kernel"]._ev_cache = None  # the kernel caches its gradient evaluator: rebuild it through the wrappers
    T.wrap(iso, "_esh_core", "B: ESH velocity update")
    T.wrap(iso, "_position_core", "A: position update")
    T.wrap(mod, "step_masks", "guardrail step_masks")
    T.wrap(mod, "select_chains", "select_chains")
    try:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        total = (time.perf_counter() - t0) / steps
    finally:
        T.restore()
        holder["kernel"]._ev_cache = None
    per = {k: v / steps for k, v in T.t.items()}
    inner = per.get("B: ESH velocity update", 0) + per.get("A: position update", 0)
    inner += per.get("_evaluate (gradient + NaN/clip)", per.get("gradient (target)", 0))
    per["isokinetic_step glue"] = per.pop("isokinetic_step (total)") - inner
    if "_evaluate (gradient + NaN/clip)" in per:
        per["NaN/clip of gradients"] = per.pop("_evaluate (gradient + NaN/clip)") - per["gradient (target)"]
    per["rest of step (wheres, dE, info)"] = total - sum(per.values())
    t_pass = bandwidth(n * d)["t_pass_s"]
    return {"sampler": sampler, "n_chains": n, "d": d, "steps": steps, "t_step": total, "t_pass": t_pass,
            "parts": {k: {"s": v, "fraction": v / total, "passes": v / t_pass} for k, v in per.items()},
            "calls_per_step": {k: c / steps for k, c in T.calls.items()}}


def profile_top(sampler: str, n: int, d: int, steps: int, top: int = 12) -> str:
    """cProfile of ``steps`` steps, top functions by internal time (Python-bound regime)."""
    step, _ = ours_stepper(sampler, standard_gaussian(d), n, *step_params(d))
    step()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(steps):
        step()
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(top)
    return "\n".join(ln for ln in s.getvalue().splitlines() if ln.strip())[-3000:]


# ------------------------------------------------------------------------------- proposal
def _esh_variant(xp, u, g, tau, d):
    """smile_ref's ``_esh_core`` with two bit-identical changes (prototype for the report):
    ``max|g|`` as ``max(max g, -min g)`` (no ``|g|`` temporary), and the three fallback ``where``s
    skipped when their per-row masks are all False (one ``any`` over ``n`` booleans each)."""
    import smile_ref.integrators.isokinetic as iso

    src = iso._esh_general
    if not hasattr(_esh_variant, "_fn"):
        import inspect
        import textwrap

        code = textwrap.dedent(inspect.getsource(src)).replace("def _esh_general(", "def _v(")
        code = code.replace("m = xp.max(xp.abs(g), axis=-1, keepdims=True)",
                            "m = xp.maximum(xp.max(g, axis=-1, keepdims=True), -xp.min(g, axis=-1, keepdims=True))")
        code = code.replace("u_new = xp.where(ok & bad & ~u_nonzero, e, raw)",
                            "m1 = ok & bad & ~u_nonzero\n    u_new = xp.where(m1, e, raw) if xp.any(m1) else raw")
        code = code.replace("u_new = xp.where((~ok) | (bad & u_nonzero), u, u_new)",
                            "m2 = (~ok) | (bad & u_nonzero)\n    u_new = xp.where(m2, u, u_new) if xp.any(m2) else u_new")
        code = code.replace("u_new = xp.where(ok & (c <= -1.0) & u_nonzero, u, u_new)",
                            "m3 = ok & (c <= -1.0) & u_nonzero\n    u_new = xp.where(m3, u, u_new) if xp.any(m3) else u_new")
        assert code.count("xp.any(m") == 3 and "xp.abs(g)" not in code, "smile_ref's _esh_core changed"
        ns = dict(vars(iso))
        exec(compile(code, "<esh_variant>", "exec"), ns)
        _esh_variant._fn = ns["_v"]
    return _esh_variant._fn(xp, u, g, tau, d)


def esh_proposal(n: int, d: int, budget: float) -> dict:
    """Bit-equality of :func:`_esh_variant` with ``_esh_core`` and the time of both."""
    import smile_ref.integrators.isokinetic as iso

    r = np.random.default_rng(5)
    equal, cases = True, 0
    for trial in range(40):  # random rows plus edge rows: zero u, zero g, NaN g, antiparallel, huge/tiny g
        nn, dd = 6, int(r.integers(2, 50))
        u = r.standard_normal((nn, dd))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        g = r.standard_normal((nn, dd)) * 10.0 ** r.uniform(-300, 300, size=(nn, 1))
        u[1] = 0.0
        g[2] = 0.0
        g[3, 0] = np.nan
        g[4] = -u[4] * 3.0
        tau = float(10.0 ** r.uniform(-3, 3)) if trial % 2 else r.uniform(0, 5, size=(nn, 1))
        with np.errstate(all="ignore"):  # NaN/huge rows overflow in discarded intermediates (both versions)
            a, b = iso._esh_core(np, u, g, tau, dd), _esh_variant(np, u, g, tau, dd)
        for p, q in zip(a, b):
            equal &= bool(np.array_equal(p, q, equal_nan=True)) and not np.shares_memory(p, u)
        cases += 1
    u = r.standard_normal((n, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    g = r.standard_normal((n, d))
    tau = r.uniform(0.1, 1, size=(n, 1))
    t_old = time_calls(lambda: iso._esh_core(np, u, g, tau, d), budget)["min"]
    t_new = time_calls(lambda: _esh_variant(np, u, g, tau, d), budget)["min"]
    big = [iso._esh_core(np, u, g, tau, d), _esh_variant(np, u, g, tau, d)]
    equal &= all(np.array_equal(p, q) for p, q in zip(*big))
    t_where = time_calls(lambda: np.where(tau[:, :1] > 2.0, u, g), budget / 4)["min"]
    return {"n_chains": n, "d": d, "bit_identical": equal, "random_cases": cases, "t_esh_core": t_old,
            "t_variant": t_new, "saving_per_step_3B": 3 * (t_old - t_new), "t_full_where": t_where}


# ------------------------------------------------------------------------------- subprocesses
def _worker(script, args, env_extra=None, timeout=900, replace_env=False) -> dict:
    env = dict(env_extra or {}) if replace_env else dict(os.environ, **(env_extra or {}))
    out = subprocess.run([sys.executable, script] + args, capture_output=True, text=True, env=env, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def step_worker(sampler: str, n: int, d: int, calls: int) -> dict:
    step, _ = ours_stepper(sampler, standard_gaussian(d), n, *step_params(d))
    t = time_calls(step, 1e9, max_calls=calls, min_calls=calls)
    return {"sampler": sampler, "n_chains": n, "d": d, "median": t["median"], "min": t["min"], "calls": calls}


ENV_VARIANTS = {
    "default": {},
    "openblas_1_thread": {"OPENBLAS_NUM_THREADS": "1"},
    "openblas_1_thread+malloc": {"OPENBLAS_NUM_THREADS": "1", **_MALLOC_ENV},
}
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS") + tuple(_MALLOC_ENV)


def env_experiment(script, cases, variants=ENV_VARIANTS) -> list[dict]:
    """Seconds per step (min over ``calls``) in fresh subprocesses per environment variant.

    "default" removes the thread and malloc variables from the environment (OpenBLAS then uses
    all cores for ``np.vecdot``, which calls BLAS ``ddot`` per row); the other variants set them.
    """
    rows = []
    base = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
    for sampler, n, d, calls in cases:
        row = {"sampler": sampler, "n_chains": n, "d": d, "calls": calls}
        for name, extra in variants.items():
            r = _worker(script, ["--step-worker", sampler, str(n), str(d), str(calls)], dict(base, **extra),
                        replace_env=True)
            row[name], row[name + "_median"] = r["min"], r["median"]
        rows.append(row)
    return rows


def _status_mib(key: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith(key + ":")) / 1024


def _reset_peak_rss() -> bool:
    """Reset VmHWM (Linux >= 4.0: write 5 to /proc/self/clear_refs); ``ru_maxrss`` cannot be reset
    and is inherited from the parent across exec, so it is not used."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_worker(n: int, d: int, s1: int, s2: int) -> dict:
    """Peak memory of ``s1`` then ``s2 - s1`` MCLMC steps (``kernel.step``, nothing recorded).

    Peak RSS (VmHWM, reset before each phase) and tracemalloc's peak of traced (NumPy) memory, both
    relative to the memory held before the phase, in MiB and in units of one ``(n, d)`` array.
    """
    import tracemalloc

    target = standard_gaussian(d)
    tracemalloc.start()
    step, holder = ours_stepper("mclmc", target, n, *step_params(d))
    step()  # first step: caches (target parameters on the backend, tiny-constant cache)
    arr = 8 * n * d / 2**20
    out = {"n_chains": n, "d": d, "steps": [s1, s2], "array_mib": arr}
    t0 = time.perf_counter()
    for phase, k in (("first", s1), ("rest", s2 - s1)):
        gc.collect()
        cur0 = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        rss0 = _status_mib("VmRSS")
        out["hwm_reset"] = _reset_peak_rss()
        for _ in range(k):
            step()
        cur1, peak = tracemalloc.get_traced_memory()
        hwm, rss1 = _status_mib("VmHWM"), _status_mib("VmRSS")
        out[phase] = {"steps": k, "rss_before_mib": rss0, "rss_after_mib": rss1, "peak_rss_mib": hwm,
                      "peak_rss_growth_arrays": (hwm - rss0) / arr, "traced_before_mib": cur0 / 2**20,
                      "traced_after_mib": cur1 / 2**20, "traced_peak_growth_arrays": (peak - cur0) / 2**20 / arr}
    out["seconds"] = time.perf_counter() - t0
    tracemalloc.stop()
    out["peak_rss_change_rest_vs_first_mib"] = out["rest"]["peak_rss_mib"] - out["first"]["peak_rss_mib"]
    return out


def memory(script, n, d, s1, s2) -> dict:
    return _worker(script, ["--memory-worker", str(n), str(d), str(s1), str(s2)], timeout=3600)


# ------------------------------------------------------------------------------- floor
def bytes_floor(n: int, d: int, bw: dict, measured: dict) -> dict:
    """Traffic of one MCLMC/SMILE step in passes over one ``(n, d)`` float64 array, and its time.

    ``one_pass``: read x, u, g and write x, u, g once (the gradient fused in; 6 passes), plus writing
    and reading the two normal arrays for MCLMC (4); impossible in practice because every B and O
    stage needs row reductions (norms, ``u.g``) before it can update.
    ``stagewise``: every stage reads its inputs and writes its outputs once, each reduction costs one
    extra read of its operands: O = 2 + 3, B = 2 + 3 (norm of the new u from ``c`` and ``zeta``),
    A + gradient = read x, u, write x, g = 4; O B A B A B O = 5 + 3 x 5 + 2 x 4 + 5 = 33, + 2 RNG
    writes = 35 for MCLMC; SMILE: 3 x 5 + 2 x 4 = 23.
    """
    arr = 8 * n * d
    t_pass = arr / (bw["add_out_gbps"] * 1e9)
    t_rng = 2 * n * d * bw["ns_per_normal"] * 1e-9
    out = {"n_chains": n, "d": d, "array_mb": arr / 1e6, "t_pass_s": t_pass, "t_rng_numpy_s": t_rng}
    for s, one, stage in (("mclmc", 10, 35), ("smile", 6, 23)):
        out[s] = {"one_pass_passes": one, "one_pass_gb": one * arr / 1e9, "one_pass_s": one * t_pass,
                  "stagewise_passes": stage, "stagewise_gb": stage * arr / 1e9, "stagewise_s": stage * t_pass}
        for who in ("ours", "bj"):
            key = f"{who}_{s}" if who == "ours" else ("bj_mclmc" if s == "mclmc" else "bj_integrator")
            if measured.get(key) is not None:
                t = measured[key]
                out[s][f"{who}_s"] = t
                out[s][f"{who}_gap_vs_stagewise"] = t / (stage * t_pass)
                rng = t_rng if (who == "ours" and s == "mclmc") else 0.0
                out[s][f"{who}_pass_equivalents_excl_rng"] = (t - rng) / t_pass
    return out


# ------------------------------------------------------------------------------- driver
def run_all(quick: bool, script: str, compare_rows=(), memory_steps=None, log=print, save=None) -> dict:
    """All parts; ``quick`` shrinks sizes and step counts (memory: 20/200 steps at d = 10^4).

    ``save(res)`` is called after every part (partial results survive an interrupted run);
    ``memory_steps = (0, 0)`` skips the memory part.
    """
    res = {}
    save = save or (lambda r: None)
    budget = 0.5 if quick else 1.5
    res["bandwidth"] = [bandwidth(n) for n in ((64 * 10**4,) if quick else (64 * 10**4, 64 * 10**6))]
    log(f"bandwidth: {json.dumps(res['bandwidth'])}")
    big = [r for r in compare_rows if r["n_chains"] == 64]
    ref = max(big, key=lambda r: r["d"]) if big else None
    res["floor"] = bytes_floor(64, ref["d"] if ref else 10**6, res["bandwidth"][-1], ref or {})
    save(res)
    res["overhead"] = overhead(quick, budget)
    log("overhead: " + "; ".join(f"{r['target']} n={r['n_chains']} d={r['d']}: mclmc {r['overhead_mclmc']:.2f}, "
                                  f"smile {r['overhead_smile']:.2f} grad-eq" for r in res["overhead"]))
    save(res)
    sizes = ((1, 100, 300), (64, 10_000, 30)) if quick else ((1, 100, 1000), (64, 10_000, 60), (64, 1_000_000, 2))
    res["breakdown"] = [breakdown(s, n, d, k) for n, d, k in sizes for s in ("mclmc", "smile")]
    res["profile_small"] = profile_top("mclmc", 1, 100, 300 if quick else 1000)
    log("breakdown done")
    save(res)
    res["esh_proposal"] = [esh_proposal(n, d, budget) for n, d in (((1, 100), (64, 10_000)) if quick else
                                                                    ((1, 100), (64, 10_000), (64, 100_000)))]
    log(f"esh proposal: {json.dumps(res['esh_proposal'])}")
    save(res)
    mcases = [("mclmc", 64, 10_000, 30), ("mclmc", 64, 100_000, 3)] if quick else \
        [("mclmc", 64, 10_000, 40), ("mclmc", 64, 100_000, 4), ("smile", 64, 100_000, 4), ("mclmc", 64, 1_000_000, 2)]
    res["env"] = env_experiment(script, mcases)
    log(f"env: {json.dumps(res['env'])}")
    save(res)
    n, d, s1, s2 = (64, 10_000, 20, 200) if quick else (64, 100_000, 100, 1000)
    if memory_steps:
        s1, s2 = memory_steps
    if s2 > 0:
        res["memory"] = memory(script, n, d, s1, s2)
        log(f"memory: {json.dumps(res['memory'])}")
        save(res)
    return res


def _fmt(v, nd=2):
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def markdown(a: dict) -> str:
    a = {"overhead": [], "breakdown": [], "profile_small": "", "esh_proposal": [], "env": [], "memory": None,
         "floor": None, **a}
    L = ["## Bandwidth", "", "| array MB | copy GB/s | add(out=) GB/s | add fresh / add(out=) | ns per normal |",
         "|---|---|---|---|---|"]
    L += [f"| {b['array_mb']:.0f} | {b['copy_gbps']:.1f} | {b['add_out_gbps']:.1f} | "
          f"{b['t_add_new_s'] / b['t_add_out_s']:.2f} | {b['ns_per_normal']:.2f} |" for b in a["bandwidth"]]
    L += ["", "## Overhead (gradient-equivalents, (t_step - 2 t_grad) / t_grad)", "",
          "| target | d | chains | t_grad ms | MCLMC ms | overhead MCLMC | SMILE ms | overhead SMILE |", "|---|---|---|---|---|---|---|---|"]
    L += [f"| {r['target']} | {r['d']:,} | {r['n_chains']} | {r['t_grad'] * 1e3:.3f} | {r['t_mclmc'] * 1e3:.3f} | "
          f"{r['overhead_mclmc']:.2f} | {r['t_smile'] * 1e3:.3f} | {r['overhead_smile']:.2f} |" for r in a["overhead"]]
    for b in a["breakdown"]:
        L += ["", f"## Breakdown {b['sampler']} n={b['n_chains']} d={b['d']:,}: {b['t_step'] * 1e3:.3f} ms per step, "
              f"one array pass {b['t_pass'] * 1e6:.1f} us", "", "| part | ms/step | fraction | passes | calls/step |",
              "|---|---|---|---|---|"]
        L += [f"| {k} | {v['s'] * 1e3:.3f} | {v['fraction']:.2f} | {v['passes']:.1f} | "
              f"{_fmt(b['calls_per_step'].get(k, '-'), 1)} |" for k, v in b["parts"].items()]
    L += ["", "## cProfile, MCLMC n=1 d=100 (top by internal time)", "", "```", a["profile_small"], "```", "",
          "## Bit-identical ESH-update variant (prototype, not in smile_ref)", "", "```",
          json.dumps(a["esh_proposal"], indent=1), "```", "",
          "## Environment: OpenBLAS threads (np.vecdot -> BLAS ddot per row) and glibc malloc (ms per step, min)", "",
          "| sampler | n | d | " + " | ".join(ENV_VARIANTS) + " |", "|---|---|---|" + "---|" * len(ENV_VARIANTS)]
    L += [f"| {r['sampler']} | {r['n_chains']} | {r['d']:,} | " + " | ".join(f"{r[k] * 1e3:.1f}" for k in ENV_VARIANTS)
          + " |" for r in a["env"]]
    L += ["", "## Memory", "", "```", json.dumps(a["memory"], indent=1), "```", "", "## Bytes floor", "", "```",
          json.dumps(a["floor"], indent=1), "```"]
    return "\n".join(L)
