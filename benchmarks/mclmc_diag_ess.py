"""ESS per gradient of tuned MCLMC with diagonal preconditioning: smile_ref vs BlackJAX, same warm-up budget.

Run by hand (not a test), from the repository root, with jax + blackjax (the ``crosscheck`` extra)::

    OPENBLAS_NUM_THREADS=1 python benchmarks/mclmc_diag_ess.py [--quick] [--seeds 0 1 2 3] [--out DIR]

Writes ``mclmc_diag_ess.json`` and ``mclmc_diag_ess.md`` to ``--out`` (default ``benchmarks/results``,
git-ignored); ``docs/performance.md`` quotes them.

Setting: ``diagonal_gaussian_condition(100, 1e4)`` (variances ``1e-2 ... 1e2``), 4 chains per seed started
from ``N(0, I)``, exact gradients, float64, McLachlan integrator (2 gradients per step).  Warm-up budget
``W`` steps for everybody; then ``S`` sampling steps with the tuned ``(eps, L, sqrt_diag)`` held.

* BlackJAX (1.7): ``mclmc_find_L_and_step_size(..., num_steps=3 W, diagonal_preconditioning=True)`` with
  its default fractions 0.1 / 0.1 / 0.1 of ``num_steps``: 0.3 W steps of step-size tuning, 0.3 W of
  step size and variances, 0.1 W of step-size re-tuning with the preconditioner, 0.3 W for the ESS
  (``W`` in all), then ``blackjax.mclmc`` in ``lax.scan``.
* smile_ref: ``run_chains("mclmc", ..., diagonal_preconditioning=True)`` with its default tuner (the
  preconditioned split 0.3 / 0.3 / 0.4 of ``W``, BlackJAX's proportions) and, for comparison, with MILE's
  0.8 / 0.1 / 0.1 (the split without preconditioning).

Reported per configuration: tuned step size and L (chain means), the preconditioner's rms error
``log(Var_hat / Var)`` over chains and coordinates (common scale removed), ESS per sampling gradient of ``x`` and of
``x^2`` (``smile_ref.diagnostics.ess``, bulk, minimum over the 100 coordinates, divided by the ``2 S n``
sampling gradients of the 4 chains), mean and standard error over seeds, the ratio of the means to BlackJAX and the
paired ratio (geometric mean over seeds of the per-seed ratio, with its standard error).
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
from smile_ref import targets
from smile_ref.diagnostics.ess import ess
from smile_ref.io import atomic_write_text
from smile_ref.tuners.mclmc import mclmc_tuner

SPLITS = {"smile_ref default (0.3/0.3/0.4)": None, "MILE split 0.8/0.1/0.1": (0.8, 0.1, 0.1)}


def _ess_per_grad(xs, n_grads):
    """min over coordinates of bulk ESS of x and x^2, per gradient; xs (chains, draws, d)."""
    return (float(np.min(np.asarray(ess(xs, method="bulk")))) / n_grads,
            float(np.min(np.asarray(ess(xs**2, method="bulk")))) / n_grads)


def _precond_error(var_hat, var):
    """rms over chains and coordinates of ``log(var_hat / var)`` after removing each chain's common scale
    (a diagonal preconditioner is defined up to a scale, which the step size absorbs)."""
    le = np.log(var_hat / var)
    le = le - le.mean(axis=1, keepdims=True)
    return float(np.sqrt(np.mean(le**2)))


def run_ours(target, W, S, n_chains, seed, fracs):
    t0 = time.process_time()
    res = smile_ref.run_chains("mclmc", target, n_chains=n_chains, n_steps=S, burn_in=W, seed=seed,
                               progress=False, diagonal_preconditioning=True,
                               tuner="mclmc" if fracs is None else
                               mclmc_tuner(diagonal_preconditioning=True, frac_tune1=fracs[0],
                                           frac_tune2=fracs[1], frac_tune3=fracs[2]),
                               initial_position=np.random.default_rng(1000 + seed).standard_normal((n_chains, target.dim)))
    e_x, e_x2 = _ess_per_grad(res.samples, 2 * S * n_chains)
    var_hat = np.asarray(res.state.params.sqrt_diag) ** 2
    return {"eps": float(np.mean(res.sampling_info("step_size")[0])), "L": float(np.mean(res.sampling_info("L")[0])),
            "ess_x": e_x, "ess_x2": e_x2, "precond_err": _precond_error(var_hat, target.variances),
            "cpu_s": time.process_time() - t0}


def run_blackjax(target, W, S, n_chains, seed):
    import jax
    import jax.numpy as jnp
    import blackjax
    import blackjax.mcmc.integrators as I

    inv_var = jnp.asarray(1.0 / target.variances)

    def logdensity(x):
        return -0.5 * jnp.sum(x * x * inv_var)

    x0 = jnp.asarray(np.random.default_rng(1000 + seed).standard_normal((n_chains, target.dim)))

    def one(x_init, key):
        k1, k2, k3 = jax.random.split(key, 3)
        st = blackjax.mcmc.mclmc.init(x_init, logdensity, k1)
        kern = blackjax.mcmc.mclmc.build_kernel(integrator=I.isokinetic_mclachlan)
        st, p, _ = blackjax.mclmc_find_L_and_step_size(kern, int(round(3 * W)), st, k2, logdensity_fn=logdensity,
                                                       diagonal_preconditioning=True)
        alg = blackjax.mclmc(logdensity, L=p.L, step_size=p.step_size, inverse_mass_matrix=p.inverse_mass_matrix,
                             integrator=I.isokinetic_mclachlan)

        def body(s, k):
            s, _ = alg.step(k, s)
            return s, s.position

        _, xs = jax.lax.scan(body, st, jax.random.split(k3, S))
        return xs, p.step_size, p.L, p.inverse_mass_matrix

    t0 = time.process_time()
    keys = jax.random.split(jax.random.key(seed), n_chains)
    xs, pe, pL, imm = jax.jit(jax.vmap(one))(x0, keys)
    xs = np.asarray(xs)
    e_x, e_x2 = _ess_per_grad(xs, 2 * S * n_chains)
    return {"eps": float(np.mean(pe)), "L": float(np.mean(pL)), "ess_x": e_x, "ess_x2": e_x2,
            "precond_err": _precond_error(np.asarray(imm), target.variances), "cpu_s": time.process_time() - t0}


def _summary(rows):
    out = {}
    for key in ("eps", "L", "ess_x", "ess_x2", "precond_err", "cpu_s"):
        v = np.array([r[key] for r in rows])
        out[key] = float(v.mean())
        out[key + "_se"] = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else math.nan
    return out


def _paired_ratio(ours, theirs):
    """Geometric mean of the per-seed ratios ``ours / theirs`` and its standard error (delta method on the
    mean log ratio over seeds; the same seed gives both codes the same initial positions)."""
    lr = np.log(np.asarray(ours) / np.asarray(theirs))
    se = float(lr.std(ddof=1) / math.sqrt(lr.size)) if lr.size > 1 else math.nan
    g = float(np.exp(lr.mean()))
    return {"ratio": g, "se": g * se}


def _fmt_paired(s):
    if "paired_ess_x" not in s:
        return "—"
    a, b = s["paired_ess_x"], s["paired_ess_x2"]
    return f"{a['ratio']:.2f} ± {a['se']:.2f} / {b['ratio']:.2f} ± {b['se']:.2f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="W = 600, S = 2000 (a smoke run)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    ap.add_argument("--warmup", type=int, default=6000)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--configs", nargs="+", choices=list(SPLITS), default=list(SPLITS),
                    help="smile_ref configurations to run (default: all)")
    ap.add_argument("--out", default=os.path.join("benchmarks", "results"))
    a = ap.parse_args(argv)
    W, S = (600, 2000) if a.quick else (a.warmup, a.steps)
    target = targets.diagonal_gaussian_condition(100, 1e4)
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import blackjax  # noqa: F401
        have_bj = True
    except ImportError as exc:
        print(f"blackjax not importable ({exc}): only smile_ref's rows are measured", file=sys.stderr)
        have_bj = False
    splits = {name: SPLITS[name] for name in a.configs}
    rows = {name: [] for name in splits}
    if have_bj:
        rows["blackjax"] = []
    for seed in a.seeds:
        for name, fr in splits.items():
            rows[name].append(run_ours(target, W, S, a.chains, seed, fr))
            print(name, seed, rows[name][-1], flush=True)
        if have_bj:
            rows["blackjax"].append(run_blackjax(target, W, S, a.chains, seed))
            print("blackjax", seed, rows["blackjax"][-1], flush=True)
    summ = {k: _summary(v) for k, v in rows.items()}
    if have_bj:
        for k in splits:
            for key in ("ess_x", "ess_x2"):
                summ[k]["paired_" + key] = _paired_ratio([r[key] for r in rows[k]], [r[key] for r in rows["blackjax"]])
    result = {"warmup": W, "steps": S, "chains": a.chains, "seeds": a.seeds, "target": "diagonal_gaussian_condition(100, 1e4)",
              "rows": rows, "summary": summ}
    lines = [f"W = {W} warm-up, S = {S} sampling steps, {a.chains} chains, seeds {a.seeds}", "",
             "| configuration | eps | L | preconditioner rms log error | ESS(x)/grad | ESS(x^2)/grad | "
             "ratio x vs BlackJAX | ratio x^2 | paired geometric-mean ratio x / x^2 (± SE) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k, s in summ.items():
        rx = s["ess_x"] / summ["blackjax"]["ess_x"] if have_bj else math.nan
        rx2 = s["ess_x2"] / summ["blackjax"]["ess_x2"] if have_bj else math.nan
        lines.append(f"| {k} | {s['eps']:.3g} ± {s['eps_se']:.2g} | {s['L']:.3g} ± {s['L_se']:.2g} | "
                     f"{s['precond_err']:.3f} ± {s['precond_err_se']:.3f} | "
                     f"{s['ess_x']:.4g} ± {s['ess_x_se']:.2g} | {s['ess_x2']:.4g} ± {s['ess_x2_se']:.2g} | "
                     f"{rx:.2f} | {rx2:.2f} | {_fmt_paired(s)} |")
    md = "\n".join(lines) + "\n"
    print(md)
    os.makedirs(a.out, exist_ok=True)
    atomic_write_text(os.path.join(a.out, "mclmc_diag_ess.json"), json.dumps(result, indent=1))
    atomic_write_text(os.path.join(a.out, "mclmc_diag_ess.md"), md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
