"""Command line: regime map of the SG-MCLMC bias prediction against smile_ref's own sampler.

For a matrix of Gaussian test cases (dimension d x noise strength x aligned/rotated target) it compares
the default continuous-time prediction
:func:`smile_ref.theory.sg_mclmc_bias.predicted_second_moments` (with its stated error and its
warnings) with simulations of ``run_chains("smile", tuner=None, gradient=AdditiveNoise(...))``:
independent chains, per-chain time averages of ``x x^T``, standard errors across chains.

Cells (``case``): target ``Σ_t = Q_R diag(linspace(0.5, 1.5, d)) Q_Rᵀ`` (``Q_R`` = identity for
"aligned", a seeded random rotation for "rotated"), diagonal noise ``Σ ∝ geomspace(1, 8, d)``
scaled so that the velocity decorrelation rate
``λ = ε tr Σ/(2 d (d-1))`` (:func:`~smile_ref.theory.sg_mclmc_bias.regime_numbers`) is
0.1 (weak), 0.5 (intermediate) or 6 (strong), plus two hold-outs at 0.05 ("weaker", d = 3, 4 aligned).  The step sizes keep the per-step kick
``ε √tr Σ/(d-1) = √(2 d ε λ/(d-1))`` at or below 0.3, so that the continuous-time law is what is
tested (the O(kick²) discrete-time departure is ≈ 0.05-0.09 kick², below 1 %).

Per cell and diagonal coordinate i (``r_i = Var(x_i)/Σ_t,ii``): ``z_i = (sim - pred)/SE``, the
relative deviation ``|sim/pred - 1|``.  A cell **passes** when every coordinate is within
``max(4 SE, 3 % of pred)``; the **stated error covers** the observed one when every entry of
``E[x xᵀ]`` satisfies ``|sim - pred| <= err + 3 SE`` (``err`` = the prediction's stated absolute
error; 3 SE for the sampling noise, failure probability per entry 2.7e-3 when the prediction is exact).

Output (``--out``, written atomically with :mod:`smile_ref.io`): ``regime_map.json`` (one record per
cell, resumable: finished cells are kept unless ``--redo``), ``regime_map.md`` (the table).
Examples::

    python -m validation.sg_mclmc_regime_map --out docs/results/sg-mclmc-regime-map
    python -m validation.sg_mclmc_regime_map --out /tmp/rm --cells d3-weak-aligned --redo
    python -m validation.sg_mclmc_regime_map --quick --out /tmp/rm_quick

Cost: predictions seconds to 6 minutes per cell (d = 10 rotated), simulations 5-90 s per cell, one core.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings

import numpy as np

from smile_ref.gradients import AdditiveNoise
from smile_ref.io import atomic_save_npz, atomic_write_json, atomic_write_text, read_npz
from smile_ref.run import run_chains
from smile_ref.targets import Gaussian
from smile_ref.theory.sg_mclmc_bias import predicted_second_moments, regime_numbers

#: regime -> (decorrelation rate λ, step size ε, time units T, burn-in fraction, chains M).  Strong noise:
#: the position relaxes slowly (overdamped mobility ~ 1/(d λ), covariance relaxation time ~ σ² d λ/2, about 45
#: time units at d = 10), so T = ``STRONG_T_PER_D`` * d there, a third of it burn-in.
REGIMES = {
    "weak": (0.1, 0.02, 200.0, 0.25, 500),
    "intermediate": (0.5, 0.02, 100.0, 0.2, 1000),
    "strong": (6.0, 0.005, None, 1 / 3, 300),
}
STRONG_T_PER_D = 60.0
DIMS = (3, 4, 6, 10)
SEED = 20261202


def case(d, rate, eps, rotated=False, seed=0):
    """``(Σ_t, Σ)`` of one cell (module doc); also the theory tests' ``_case``."""
    rng = np.random.default_rng(seed)
    lamt = np.linspace(0.5, 1.5, d)
    if rotated:
        Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
        St = (Q * lamt) @ Q.T
    else:
        St = np.diag(lamt)
    lam = np.geomspace(1.0, 8.0, d)
    S = np.diag(lam / lam.sum() * rate * 2 * d * (d - 1) / eps)
    return St, S


def cells(quick=False):
    """All cells ``{name, d, regime, rotated, rate, eps, T, burn, M}`` (``quick``: d = 3, short runs)."""
    out = []
    for d in ((3,) if quick else DIMS):
        for regime, (rate, eps, T0, burn, M0) in REGIMES.items():
            for rotated in (False, True):
                T, M = (STRONG_T_PER_D * d if T0 is None else T0), M0
                if quick:
                    T, M = T / 10, 100
                out.append({"name": f"d{d}-{regime}-{'rotated' if rotated else 'aligned'}", "d": d,
                            "regime": regime, "rotated": rotated, "rate": rate, "eps": eps, "T": T,
                            "burn": burn, "M": M})
    if not quick:  # hold-outs of the weak-noise extrapolation: half the noise of the weak cells
        for d in (3, 4):
            out.append({"name": f"d{d}-weaker-aligned", "d": d, "regime": "weaker", "rotated": False, "rate": 0.05,
                        "eps": 0.02, "T": 400.0, "burn": 0.25, "M": 500})
    return out


def predict(cell):
    """Default prediction ``(C, err, warnings, seconds)`` of one cell."""
    St, S = case(cell["d"], cell["rate"], cell["eps"], cell["rotated"])
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        C, err = predicted_second_moments(St, S, cell["eps"], return_error=True)
    msgs = [str(w.message) for w in rec if issubclass(w.category, RuntimeWarning)]
    return C, float(err), msgs, time.perf_counter() - t0


def simulate(cell, seed):
    """Per-chain time averages of ``x xᵀ`` (shape ``(M, d, d)``) from smile_ref's SMILE, no tuner.

    Chains start from the target ``N(0, Σ_t)`` (independent of the prediction), the first ``burn`` of the
    ``T/ε`` steps are dropped, every 5th step is kept.
    """
    d, eps = cell["d"], cell["eps"]
    St, S = case(d, cell["rate"], eps, cell["rotated"])
    t = Gaussian(np.zeros(d), St)
    n = int(round(cell["T"] / eps))
    x0 = np.random.default_rng(seed + 1).standard_normal((cell["M"], d)) @ np.linalg.cholesky(St).T
    res = run_chains("smile", t, gradient=AdditiveNoise(t, S), n_chains=cell["M"], n_steps=n,
                     burn_in=int(n * cell["burn"]), step_size=eps, tuner=None, seed=seed, thinning=5,
                     initial_position=x0, progress=False)
    x = np.asarray(res.samples)
    return np.mean(x[:, :, :, None] * x[:, :, None, :], axis=1)


def compare(C, err, est, St):
    """Per-coordinate and per-entry comparison numbers of one cell (module doc)."""
    M, d = est.shape[0], est.shape[1]
    mean = est.mean(0)
    se = est.std(0, ddof=1) / math.sqrt(M)
    dg = np.arange(d)
    dev = np.abs(mean - C)
    tol = np.maximum(4 * se[dg, dg], 0.03 * np.abs(C[dg, dg]))
    iu = np.triu_indices(d)
    cover = (dev[iu] - err) / se[iu]
    return {
        "pred_ratio": (C[dg, dg] / St[dg, dg]).tolist(),
        "sim_ratio": (mean[dg, dg] / St[dg, dg]).tolist(),
        "se_ratio": (se[dg, dg] / St[dg, dg]).tolist(),
        "z_diag": ((mean[dg, dg] - C[dg, dg]) / se[dg, dg]).tolist(),
        "max_abs_z_diag": float(np.max(np.abs(mean - C)[dg, dg] / se[dg, dg])),
        "max_abs_z_all": float(np.max(dev[iu] / se[iu])),
        "max_rel_dev_diag": float(np.max(dev[dg, dg] / np.abs(C[dg, dg]))),
        "max_rel_se_diag": float(np.max(se[dg, dg] / np.abs(C[dg, dg]))),
        "stated_rel": float(err / np.max(np.abs(C))),
        "passes": bool(np.all(dev[dg, dg] <= tol)),
        "covered": bool(np.all(cover <= 3.0)),
        "max_excess_over_err_se": float(np.max(cover)),
        "max_abs_z_target": float(np.max(np.abs(mean - St)[iu] / se[iu])),
    }


def run_cell(cell, seed=SEED, sim_cache=None, old=None):
    """Prediction + simulation + comparison of one cell, as a JSON-ready record.

    ``sim_cache``: folder of per-chain estimates (``<name>_<seed>.npz``), reused when present (the simulation
    does not depend on the prediction), so a changed prediction is re-scored without re-simulating.
    """
    St, S = case(cell["d"], cell["rate"], cell["eps"], cell["rotated"])
    same = old is not None and all(old.get(k) == cell[k] for k in ("d", "rate", "eps", "rotated"))
    if same:  # --reuse-predictions: the prediction of the earlier record (same inputs, same code assumed)
        C, err, msgs, tp = np.array(old["prediction"]), old["stated_error"], old["warnings"], old["predict_s"]
    else:
        C, err, msgs, tp = predict(cell)
    t0 = time.perf_counter()
    cseed = seed + 1000 * cell["d"] + (7 if cell["rotated"] else 0) + int(10 * cell["rate"])
    f = None if sim_cache is None else os.path.join(sim_cache, f"{cell['name']}_M{cell['M']}_T{cell['T']:g}_{cseed}.npz")
    if f is not None and os.path.exists(f):
        est = read_npz(f, "simulation cache")["est"]
    else:
        est = simulate(cell, cseed)
        if f is not None:
            os.makedirs(sim_cache, exist_ok=True)
            atomic_save_npz(f, {"est": est})
    ts = time.perf_counter() - t0
    rec = dict(cell)
    r = regime_numbers(St, S, cell["eps"])
    rec.update({"rate_sigma_min": r["rate_sigma_min"], "kick": r["kick"], "prediction": C.tolist(),
                "stated_error": err, "warned": bool(msgs), "warnings": msgs, "predict_s": tp, "simulate_s": ts,
                "sim_mean": est.mean(0).tolist()})
    rec.update(compare(C, err, est, St))
    return rec


def _fmt(v, n=3):
    return ", ".join(f"{x:.{n}f}" for x in v)


def markdown_table(records):
    """The regime map as a markdown table (one row per cell)."""
    head = ("| cell | rate·σ_min, kick | M × T | prediction r_i (stated err) | simulation r_i | SE (max) | "
            "max \\|z\\| diag / all | max rel. dev. | pass max(4 SE, 3 %) | err covers | warned |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n")
    rows = []
    for r in records:
        rows.append(
            f"| {r['name']} | {r['rate_sigma_min']:.3f}, {r['kick']:.2f} | {r['M']} × {r['T']:g} | "
            f"{_fmt(r['pred_ratio'])} ({100 * r['stated_rel']:.2g} %) | {_fmt(r['sim_ratio'])} | "
            f"{100 * r['max_rel_se_diag']:.2g} % | {r['max_abs_z_diag']:.1f} / {r['max_abs_z_all']:.1f} | "
            f"{100 * r['max_rel_dev_diag']:.2g} % | {'pass' if r['passes'] else '**FAIL**'} | "
            f"{'yes' if r['covered'] else '**no**'} | {'yes' if r['warned'] else 'no'} |")
    n_pass = sum(r["passes"] for r in records)
    n_cov = sum(r["covered"] for r in records)
    foot = (f"\n{n_pass}/{len(records)} cells pass max(4 SE, 3 %); stated error covers the observed deviation "
            f"(+3 SE) in {n_cov}/{len(records)}.  r_i = Var(x_i)/Σ_t,ii.\n")
    return head + "\n".join(rows) + "\n" + foot


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--cells", nargs="+", help="names of the cells to run (default: all)")
    p.add_argument("--redo", action="store_true", help="recompute the named cells even if already in the JSON")
    p.add_argument("--quick", action="store_true", help="d = 3 only, 100 chains, T/10 (smoke run, ~1 min)")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument("--reuse-predictions", action="store_true",
                   help="with --redo: keep each cell's earlier prediction (re-simulate or re-score only)")
    p.add_argument("--sim-cache", default=os.path.join("validation", "results", "sg_mclmc_regime_map_sims"),
                   help="folder of cached per-chain simulation estimates ('' = no cache)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "regime_map.json")
    known = {}
    if os.path.exists(path):
        with open(path) as fh:
            known = {r["name"]: r for r in json.load(fh)["records"]}
    todo = cells(args.quick)
    names = {c["name"] for c in todo}
    if args.cells:
        bad = sorted(set(args.cells) - names)
        if bad:
            p.error(f"unknown cell(s) {bad}; known: {sorted(names)}")
    command = " ".join(["python", "-m", "validation.sg_mclmc_regime_map", *(sys.argv[1:] if argv is None else argv)])

    def write():
        recs = [known[c["name"]] for c in todo if c["name"] in known]
        atomic_write_json(path, {"command": command, "seed": args.seed, "records": recs}, default=float)
        atomic_write_text(os.path.join(args.out, "regime_map.md"), markdown_table(recs))

    for c in todo:
        if args.cells and c["name"] not in args.cells:
            continue
        if c["name"] in known and not (args.redo and args.cells):
            continue
        t0 = time.perf_counter()
        known[c["name"]] = run_cell(c, args.seed, args.sim_cache or None,
                                   known.get(c["name"]) if args.reuse_predictions else None)
        r = known[c["name"]]
        print(f"{c['name']}: pass={r['passes']} covered={r['covered']} max|z|={r['max_abs_z_diag']:.1f} "
              f"rel={r['max_rel_dev_diag']:.3f} stated={r['stated_rel']:.3f} warned={r['warned']} "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
        write()
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
