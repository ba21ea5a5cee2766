"""Where the time of one smile_ref step goes, and how far it is from the bytes it must move.

Run by hand (not a test), from the repository root with smile_ref installed (or ``PYTHONPATH=.``),
after ``benchmarks/blackjax_compare.py`` (its JSON gives the measured step times of the bytes floor)::

    python benchmarks/step_anatomy.py [--quick] [--compare benchmarks/results/blackjax_compare.json] \
        [--out benchmarks/results]

Writes ``step_anatomy.json`` and ``step_anatomy.md`` to ``--out`` (git-ignored), after every part.
The memory of kernel steps (peak growth over many steps) is measured by
``benchmarks/memory_peak.py --kernel-steps S1 S2``.
Target: the standard Gaussian ``N(0, I_d)`` (``Gaussian.isotropic(d)``), fixed ``eps = 0.25 sqrt(d)``,
``L = sqrt(d)``, kernels stepped by :class:`smile_ref.run.timing.FixedStepper`.

Parts (all NumPy float64, single process, fixed step size, exact gradients):

* :func:`bandwidth`: memory bandwidth from a big ``np.copyto`` (2 passes) and ``np.add(out=)``
  (3 passes), the cost of a freshly allocated result (``a + b``: page faults of a new ``mmap``)
  and the cost of one standard normal of NumPy's PCG64 generator;
* :func:`overhead`: ``(t_step - 2 t_grad) / t_grad`` (gradient-equivalents) of MCLMC and SMILE on
  the standard Gaussian, logistic regression and an MLP (synthetic data);
* :func:`breakdown`: per-stage time of one step from timing wrappers around the sampler's
  building blocks (RNG draws, refresh, B = ESH velocity update, A = position update, gradient,
  guardrail, chain selection), and the cProfile top functions where the step is Python bound;
* :func:`esh_paths`: smile_ref's ESH velocity updates: of the robust form the branch-free
  ``esh_robust.esh_general`` and the eager fast path (``esh_eager.esh_fast_columns`` /
  ``esh_fast_row``, no fallback ``where``s), checked for bit-equality on random and edge-case rows,
  and timed with the dispatching ``ESH_FORMS["robust"]`` and ``ESH_FORMS["lean"]``;
* :func:`env_experiment`: the same step in fresh subprocesses with the default environment, with
  ``OPENBLAS_NUM_THREADS=1`` (``np.vecdot`` calls BLAS ``ddot`` per row, which OpenBLAS threads for
  rows longer than ~10^4; on a busy machine the thread hand-offs cost up to 300x; the summation
  order, hence the last bits, depends on the thread count) and additionally with glibc's
  ``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``/``MALLOC_TOP_PAD_`` (freed temporaries stay in
  the heap: no page faults for new arrays; bit-identical);
* :func:`bytes_floor`: bytes one step must move, time at the measured bandwidth, and the gap.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import subprocess
import sys
import time

import numpy as np

import smile_ref.integrators.isokinetic as iso
from smile_ref.integrators import ESH_FORMS
from smile_ref.integrators.esh_eager import esh_fast_columns, esh_fast_row
from smile_ref.integrators.esh_robust import esh_general
from smile_ref.io import atomic_write_text
from smile_ref.run.timing import FixedStepper, time_calls
from smile_ref.targets import Gaussian

_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**32), "MALLOC_TRIM_THRESHOLD_": str(2**36),
               "MALLOC_TOP_PAD_": str(2**30)}


def step_params(d: int) -> tuple[float, float]:
    """Fixed ``(eps, L) = (0.25 sqrt(d), sqrt(d))`` (smile_ref's untuned MCLMC defaults)."""
    return 0.25 * math.sqrt(d), math.sqrt(d)


def stepper(sampler: str, target, n: int, eps: float, L: float) -> FixedStepper:
    """``"mclmc"`` (refresh length ``L``) or ``"smile"`` at fixed ``eps``, NumPy float64, seed 0."""
    return FixedStepper(sampler, target, n, eps, L=L if sampler == "mclmc" else None)


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
        t = Gaussian.isotropic(d) if name == "standard_gaussian" else (_logreg() if name == "logistic_regression" else _mlp())
        d = t.dim
        eps, L = step_params(d)
        if name != "standard_gaussian":  # posterior scale ~ 1/sqrt(N): a small stable step
            eps, L = 1e-3 * math.sqrt(d), 0.01 * math.sqrt(d)
        x = np.random.default_rng(1).standard_normal((n, d)) * (1.0 if name == "standard_gaussian" else 0.1)
        row = {"target": name, "d": d, "n_chains": n, "eps": eps,
               "t_grad": time_calls(lambda: t.logdensity_and_grad(x), budget / 3)["min"]}
        for s in ("mclmc", "smile"):
            st = stepper(s, t, n, eps, L)
            row[f"t_{s}"] = time_calls(st.step, budget)["min"]
            row[f"overhead_{s}"] = (row[f"t_{s}"] - 2 * row["t_grad"]) / row["t_grad"]
            row[f"rejected_{s}"] = st.rejected
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
    import smile_ref.samplers.mclmc as mm
    import smile_ref.samplers.smile as sm

    target = Gaussian.isotropic(d)
    st = stepper(sampler, target, n, *step_params(d))
    step = st.step
    step()
    T = _Timers()
    mod = mm if sampler == "mclmc" else sm
    T.wrap(st.rng, "normal", "rng normal draws")
    T.wrap(target, "logdensity_and_grad", "gradient (target)")
    if sampler == "mclmc":
        T.wrap(mm, "refresh_with_nu", "O: partial refresh")
    else:
        T.wrap(st.kernel, "_evaluate", "_evaluate (gradient + NaN/clip)")
    T.wrap(mod, "isokinetic_step_carry", "isokinetic_step (total)")
    st.kernel.clear_evaluator_cache()  # the kernel caches its gradient evaluator: rebuild it through the wrappers
    T.wrap(iso, "b_substep", "B: ESH velocity update")
    T.wrap(iso, "position_substep", "A: position update")
    T.wrap(mod, "step_masks", "guardrail step_masks")
    T.wrap(mod, "select_chains", "select_chains")
    try:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        total = (time.perf_counter() - t0) / steps
    finally:
        T.restore()
        st.kernel.clear_evaluator_cache()
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
    step = stepper(sampler, Gaussian.isotropic(d), n, *step_params(d)).step
    step()
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(steps):
        step()
    pr.disable()
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("tottime").print_stats(top)
    return "\n".join(ln for ln in s.getvalue().splitlines() if ln.strip())[-3000:]


# ------------------------------------------------------------------------------- ESH update
def _edge_rows(r, nn: int, dd: int):
    """``u`` (unit rows), ``g`` spanning 600 decades, and rows that need a fallback: zero ``u``, zero ``g``,
    NaN ``g``, ``u`` antiparallel to ``g``."""
    u = r.standard_normal((nn, dd))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    g = r.standard_normal((nn, dd)) * 10.0 ** r.uniform(-300, 300, size=(nn, 1))
    u[1] = 0.0
    g[2] = 0.0
    g[3, 0] = np.nan
    g[4] = -u[4] * 3.0
    return u, g


def _esh_fast_eager(u, g, tau, d):
    """The robust form's eager fast path ``(u', dK)``, or ``None`` where a row needs the branch-free form."""
    out = esh_fast_row(u, g, tau, d) if u.shape[0] == 1 else esh_fast_columns(np, u, g, tau, d)
    return None if out is None else out[:2]


def esh_paths(n: int, d: int, budget: float, trials: int = 40) -> dict:
    """Bit-equality and time of smile_ref's ESH velocity updates (robust: ``esh_general``, the eager fast path
    and ``ESH_FORMS["robust"]`` dispatching between them; and ``ESH_FORMS["lean"]``, timed only).

    Odd trials: random rows only (the eager fast path applies); even trials: edge rows too (the fast
    path declines with ``None`` and ``ESH_FORMS["robust"]`` falls back to ``esh_general``).  Every output
    of ``ESH_FORMS["robust"]`` and of the fast path, where taken, is compared bit by bit with ``esh_general``.
    """
    r = np.random.default_rng(5)
    equal, fast_cases = True, 0
    for trial in range(trials):
        nn, dd = 6, int(r.integers(2, 50))
        if trial % 2:
            u = r.standard_normal((nn, dd))
            u /= np.linalg.norm(u, axis=1, keepdims=True)
            g = r.standard_normal((nn, dd)) * 10.0 ** r.uniform(-100, 100, size=(nn, 1))
        else:
            u, g = _edge_rows(r, nn, dd)
        tau = float(10.0 ** r.uniform(-3, 3)) if trial % 4 < 2 else r.uniform(0, 5, size=(nn, 1))
        with np.errstate(all="ignore"):  # NaN/huge rows overflow in discarded intermediates
            ref = esh_general(np, u, g, tau, dd)
            outs = [ESH_FORMS["robust"](np, u, g, tau, dd), _esh_fast_eager(u, g, tau, dd)]
        if outs[1] is None:
            outs.pop()
        else:
            fast_cases += 1
        for out in outs:
            equal &= all(np.array_equal(p, q, equal_nan=True) for p, q in zip(ref, out))
            equal &= not np.shares_memory(out[0], u)
    u = r.standard_normal((n, d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    g = r.standard_normal((n, d))
    tau = r.uniform(0.1, 1, size=(n, 1))
    fast = _esh_fast_eager(u, g, tau, d)
    if fast is not None:
        equal &= all(np.array_equal(p, q) for p, q in zip(esh_general(np, u, g, tau, d), fast))
    t_general = time_calls(lambda: esh_general(np, u, g, tau, d), budget)["min"]
    t_fast = time_calls(lambda: _esh_fast_eager(u, g, tau, d), budget)["min"]
    t_core = time_calls(lambda: ESH_FORMS["robust"](np, u, g, tau, d), budget)["min"]
    t_lean = time_calls(lambda: ESH_FORMS["lean"](np, u, g, tau, d), budget)["min"]
    t_where = time_calls(lambda: np.where(tau[:, :1] > 2.0, u, g), budget / 4)["min"]
    return {"n_chains": n, "d": d, "bit_identical": bool(equal), "cases": trials, "fast_path_cases": fast_cases,
            "fast_path_taken": fast is not None, "t_esh_general": t_general, "t_esh_fast_eager": t_fast,
            "t_esh_core": t_core, "t_esh_lean": t_lean, "saving_per_step_3B": 3 * (t_general - t_fast), "t_full_where": t_where}


# ------------------------------------------------------------------------------- subprocesses
def _worker(script, args, env_extra=None, timeout=900, replace_env=False) -> dict:
    env = dict(env_extra or {}) if replace_env else dict(os.environ, **(env_extra or {}))
    out = subprocess.run([sys.executable, script] + args, capture_output=True, text=True, env=env, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def step_worker(sampler: str, n: int, d: int, calls: int) -> dict:
    step = stepper(sampler, Gaussian.isotropic(d), n, *step_params(d)).step
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
def run_all(quick: bool, script: str, compare_rows=(), log=print, save=None) -> dict:
    """All parts; ``quick`` shrinks sizes and step counts.

    ``script`` is this file (run in subprocesses by :func:`env_experiment`); ``compare_rows`` are the
    ``"compare"`` rows of ``blackjax_compare.json`` (the bytes floor uses the largest ``d`` at 64
    chains).  ``save(res)`` is called after every part (partial results survive an interrupted run).
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
    res["esh_paths"] = [esh_paths(n, d, budget) for n, d in (((1, 100), (64, 10_000)) if quick else
                                                              ((1, 100), (64, 10_000), (64, 100_000)))]
    log(f"esh paths: {json.dumps(res['esh_paths'])}")
    save(res)
    mcases = [("mclmc", 64, 10_000, 30), ("mclmc", 64, 100_000, 3)] if quick else \
        [("mclmc", 64, 10_000, 40), ("mclmc", 64, 100_000, 4), ("smile", 64, 100_000, 4), ("mclmc", 64, 1_000_000, 2)]
    res["env"] = env_experiment(script, mcases)
    log(f"env: {json.dumps(res['env'])}")
    save(res)
    return res


def _fmt(v, nd=2):
    return f"{v:.{nd}f}" if isinstance(v, float) else str(v)


def markdown(a: dict) -> str:
    a = {"overhead": [], "breakdown": [], "profile_small": "", "esh_paths": [], "env": [], "floor": None, **a}
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
          "## ESH velocity update: branch-free esh_general vs eager fast path (robust form), and the lean form", "",
          "```",
          json.dumps(a["esh_paths"], indent=1), "```", "",
          "## Environment: OpenBLAS threads (np.vecdot -> BLAS ddot per row) and glibc malloc (ms per step, min)", "",
          "| sampler | n | d | " + " | ".join(ENV_VARIANTS) + " |", "|---|---|---|" + "---|" * len(ENV_VARIANTS)]
    L += [f"| {r['sampler']} | {r['n_chains']} | {r['d']:,} | " + " | ".join(f"{r[k] * 1e3:.1f}" for k in ENV_VARIANTS)
          + " |" for r in a["env"]]
    L += ["", "## Bytes floor", "", "```", json.dumps(a["floor"], indent=1), "```"]
    return "\n".join(L)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join("benchmarks", "results"))
    ap.add_argument("--quick", action="store_true", help="smaller sizes, fewer steps")
    ap.add_argument("--compare", default=None,
                    help="blackjax_compare.json for the bytes floor's measured step times "
                         "(default: <out>/blackjax_compare.json if it exists)")
    ap.add_argument("--step-worker", nargs=4, metavar=("SAMPLER", "N", "D", "CALLS"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.step_worker:
        s, n, d, calls = a.step_worker
        print(json.dumps(step_worker(s, int(n), int(d), int(calls))))
        return 0
    path = a.compare or os.path.join(a.out, "blackjax_compare.json")
    rows = []
    if os.path.isfile(path):
        with open(path) as f:
            rows = json.load(f).get("compare", [])
    elif a.compare:
        raise SystemExit(f"--compare {a.compare!r}: no such file")
    head = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": " ".join(sys.argv),
            "compare_json": path if rows else None, "cpu_count": os.cpu_count(), "numpy": np.__version__,
            "env": {k: os.environ[k] for k in _THREAD_VARS if k in os.environ}}
    os.makedirs(a.out, exist_ok=True)

    def save(res):
        atomic_write_text(os.path.join(a.out, "step_anatomy.json"), json.dumps({**head, **res}, indent=1))
        atomic_write_text(os.path.join(a.out, "step_anatomy.md"),
                          f"# Anatomy of one smile_ref step\n\n`{head['command']}` ({head['date_utc']})\n\n"
                          + markdown(res) + "\n")

    res = run_all(a.quick, os.path.abspath(__file__), rows, log=print, save=save)
    print(markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
