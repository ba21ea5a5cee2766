"""MILE's two rules for L: split-halves ESS (smile_ref's default) against BlackJAX's whole-chain ESS.

MILE's warm-up (``"mclmc"`` with ``tuner="mile"``: phases 0.8/0.1/0.1 of the warm-up, target
``Var[dE]/d`` decaying 0.5 -> 0.1; Sommer et al., ICLR 2025, arXiv 2502.06335) sets
``L = 0.4 eps mean_i(n / ESS_i)`` from the positions of its phase-3 window.  ``ess_method="split"``
(smile_ref's default) takes ``ESS_i`` from :func:`smile_ref.diagnostics.ess` (``"basic"``, the chain
split in halves); ``ess_method="blackjax"`` from BlackJAX's ``effective_sample_size`` on the whole chain
(:func:`smile_ref.tuners.mclmc.ess_blackjax`, what the authors' MILE code calls).  Everything else is
smile_ref's default MILE; the two rules see the same draws until the end of the warm-up (the rule acts
once, at its last step), so the tuned step size is the same and only L differs.

Targets
-------
``icg``: :func:`smile_ref.targets.ill_conditioned_gaussian` with d = 100 (scales 0.1 .. 10, rotation seed
0), start ``N(0, I)``, initial step size smile_ref's default ``0.25 sqrt(d)``.
``funnel``: :class:`smile_ref.targets.Funnel` with d = 10, ``theta_scale = 3`` (the SMILE experiments' and
this project's analytical benchmark's funnel), same start and step size.
``mlp``: the UCI pipeline's model (:class:`smile_ref.targets.MLP` 16-16-16 ReLU, N(0, 1) prior, learned
noise scale) on airfoil (split seed 0), full-batch gradient, initial step size 1e-2 (the pipeline's MILE
default), each chain started at one member of an AdamW deep ensemble
(:func:`smile_ref.ensembles.pretrain_ensemble` with the pipeline's settings, seeded by the seed).

Measures, per seed (independent chains: 4 per seed, 2 for the MLP; budgets in ``BUDGETS``)
----------------------------------------------------------------------------------------
Tuned ``eps`` and ``L`` (chain means); ESS per gradient evaluation of the sampling phase: bulk ESS
(:func:`smile_ref.diagnostics.ess`) of ``x`` and of ``x^2``, min and median over coordinates.  For the
Gaussian and the funnel the ESS pools the seed's chains (all start in the one mode); for the MLP, whose
chains start in different modes (one per ensemble member), it is each chain's own ESS averaged over the
chains, of the parameters, of the log-density and of the predictive mean at 5 test points.  Over seeds:
mean +- standard error, and the paired difference ``split - blackjax`` +- its standard error.

A rule is *better on a target* when, for every decision metric of the target (min ESS per gradient of x
and of x^2; for the MLP also the log-density and the min over predictions), the paired difference
favours it, and for at least one by more than 2 standard errors.

Usage::

    python -m validation.mile_ess_rules --out validation/results/mile_ess_rules [--seeds 0 1 2 3 4 5]
    python -m validation.mile_ess_rules --quick --out /tmp/mile_ess_quick      # seconds (tests)
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np

import smile_ref
from smile_ref.diagnostics import ess
from smile_ref.io import atomic_write_json, atomic_write_text, read_json
from smile_ref.tuners import mclmc_tuner

RULES = ("split", "blackjax")
TARGETS = ("icg", "funnel", "mlp")
#: (warm-up steps, sampling steps, chains per seed) per target: the full budget and --quick
BUDGETS = {"full": {"icg": (10_000, 20_000, 4), "funnel": (10_000, 40_000, 4), "mlp": (2_000, 2_000, 2)},
           "quick": {"icg": (200, 200, 2), "funnel": (200, 200, 2), "mlp": (100, 60, 2)}}
PRETRAIN_EPOCHS = {"full": 200, "quick": 5}
N_PRED = 5  # test points whose predictive mean is a summary function of the MLP
DECISION = {"icg": ("x_min", "x2_min"), "funnel": ("x_min", "x2_min"),
            "mlp": ("x_min", "x2_min", "logdensity", "pred_min")}


def make_target(name: str, epochs: int):
    """``(target, initial positions or None, initial step size or None, extra)``; ``extra`` holds the MLP's
    test inputs and pre-training cost."""
    from smile_ref import targets

    if name == "icg":
        return targets.ill_conditioned_gaussian(100, seed=0), None, None, {}
    if name == "funnel":
        return targets.Funnel(10, theta_scale=3.0), None, None, {}
    if name != "mlp":
        raise ValueError(f"target must be one of {TARGETS}, got {name!r}")
    from smile_ref.data import load_uci
    from smile_ref.ensembles import EnsembleConfig, pretrain_ensemble

    data = load_uci("airfoil", seed=0)
    t = targets.MLP(data.X_train, data.y_train, hidden=(16, 16, 16), activation="relu", prior_scale=1.0)
    return t, data, 1e-2, {"config": EnsembleConfig.paper(pretrain_max_epochs=epochs), "pretrain": pretrain_ensemble}


def _per_grad(e, n_grads):
    e = np.asarray(e, dtype=np.float64) / n_grads
    return float(np.min(e)), float(np.median(e))


def measure(name: str, target, res, n_steps: int, grads_per_step: float, extra) -> dict:
    """ESS per gradient evaluation of the sampling phase (see the module docstring)."""
    s = np.asarray(res.samples, dtype=np.float64)  # (n, S, d), thinning 1
    n = s.shape[0]
    out = {}
    if name != "mlp":
        g = n * n_steps * grads_per_step
        out["x_min"], out["x_med"] = _per_grad(ess(s), g)
        out["x2_min"], out["x2_med"] = _per_grad(ess(s * s), g)
        return out
    g = n_steps * grads_per_step
    lp = np.asarray(res.info["logdensity"][-n_steps:], dtype=np.float64).T  # (n, S)
    X_pred = extra["data"].X_test[:N_PRED]
    pred = np.stack([np.asarray(target.predict(s[c], X_pred)[0]) for c in range(n)])  # (n, S, N_PRED)
    rows = {k: [] for k in ("x_min", "x_med", "x2_min", "x2_med", "logdensity", "pred_min", "pred_med")}
    for c in range(n):
        one = s[c : c + 1]
        for key, e in (("x", ess(one)), ("x2", ess(one * one))):
            lo, med = _per_grad(e, g)
            rows[f"{key}_min"].append(lo)
            rows[f"{key}_med"].append(med)
        rows["logdensity"].append(_per_grad(ess(lp[c][None, :, None]), g)[0])
        lo, med = _per_grad(ess(pred[c : c + 1]), g)
        rows["pred_min"].append(lo)
        rows["pred_med"].append(med)
    return {k: float(np.mean(v)) for k, v in rows.items()}


def run_one(name: str, seed: int, rule: str, budget: str) -> dict:
    """One seed, one rule: tuned parameters, ESS per gradient, cost."""
    W, S, n = BUDGETS[budget][name]
    target, data, step, extra = make_target(name, PRETRAIN_EPOCHS[budget])
    init, pre_cost = None, 0.0
    if name == "mlp":
        cfg, pretrain = extra["config"], extra["pretrain"]
        pre = pretrain(target, data.X_val, data.y_val, n_members=n, seed=seed, learning_rate=cfg.pretrain_lr,
                       weight_decay=cfg.pretrain_weight_decay, batch_size=cfg.pretrain_batch_size,
                       max_epochs=cfg.pretrain_max_epochs, patience=cfg.pretrain_patience, progress=False)
        init, pre_cost = np.asarray(pre.params, dtype=np.float64), float(np.mean(pre.n_gradient_evals))
        extra = {"data": data}
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # health is recorded below (rejections), not printed per run
        warnings.simplefilter("ignore", smile_ref.errors.RunHealthWarning)
        res = smile_ref.run_chains("mclmc", target, n_chains=n, n_steps=S, burn_in=W, seed=seed, step_size=step,
                                   initial_position=init, progress=False,
                                   tuner=mclmc_tuner(energy_var_schedule="mile", ess_method=rule))
    wall = time.perf_counter() - t0
    grads_per_step = (res.n_gradient_evals - 1.0) / (W + S)
    rec = {"target": name, "seed": seed, "rule": rule, "n_chains": n, "n_warmup": W, "n_samples": S,
           "eps": float(np.mean(res.info["step_size"][-1])), "L": float(np.mean(res.info["L"][-1])),
           "eps_chains": [float(v) for v in res.info["step_size"][-1]],
           "L_chains": [float(v) for v in res.info["L"][-1]],
           "rejected_warmup": int(np.sum(res.info["rejected"][:W])), "rejected_sampling": int(np.sum(res.info["rejected"][W:])),
           "grads_per_step": float(grads_per_step), "pretrain_grads": pre_cost, "seconds": round(wall, 2)}
    rec.update(measure(name, target, res, S, grads_per_step, extra))
    return rec


def _mse(v):
    v = np.asarray(v, dtype=np.float64)
    return float(np.mean(v)), (float(np.std(v, ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan"))


def summarise(records: list) -> dict:
    """Per target and rule mean +- SE over seeds; paired ``split - blackjax`` +- SE; the decision."""
    out = {}
    for name in sorted({r["target"] for r in records}, key=TARGETS.index):
        by = {rule: {r["seed"]: r for r in records if r["target"] == name and r["rule"] == rule} for rule in RULES}
        seeds = sorted(set(by["split"]) & set(by["blackjax"]))
        keys = ["eps", "L"] + [k for k in LABELS if k not in ("eps", "L") and k in by["split"][seeds[0]]]
        s = {"seeds": seeds, "rules": {}, "paired": {}}
        for rule in RULES:
            s["rules"][rule] = {k: _mse([by[rule][q][k] for q in seeds]) for k in keys}
        for k in keys:
            s["paired"][k] = _mse([by["split"][q][k] - by["blackjax"][q][k] for q in seeds])
        s["L_ratio"] = _mse([by["split"][q]["L"] / by["blackjax"][q]["L"] for q in seeds])
        s["eps_identical"] = all(by["split"][q]["eps_chains"] == by["blackjax"][q]["eps_chains"] for q in seeds)
        s["better"] = decide(s["paired"], DECISION[name])
        out[name] = s
    return out


def decide(paired: dict, metrics) -> str | None:
    """The rule the paired differences favour on every decision metric, beyond 2 SE for at least one."""
    diffs = [paired[m] for m in metrics]
    for rule, sign in (("split", 1.0), ("blackjax", -1.0)):
        if all(sign * m > 0 for m, _ in diffs) and any(sign * m > 2.0 * se for m, se in diffs):
            return rule
    return None


LABELS = {"eps": "ε", "L": "L", "x_min": "x min", "x_med": "x median", "x2_min": "x² min", "x2_med": "x² median",
          "logdensity": "log-density", "pred_min": "prediction min", "pred_med": "prediction median"}


def _pm(m, se, sci=True):
    f = (lambda v: f"{v:.3g}") if not sci else (lambda v: f"{v:.2e}")
    return f"{f(m)} ± {f(se)}"


def markdown(summary: dict, meta: dict) -> str:
    lines = ["# MILE: L from split-halves ESS (smile_ref) vs whole-chain BlackJAX ESS (authors)", "",
             f"Budget `{meta['budget']}`; seconds {meta['seconds']:.0f}; Python {meta['python']}. Mean ± SE over "
             "seeds; ESS per gradient evaluation of the sampling phase; paired = split − blackjax.", ""]
    for name, s in summary.items():
        W, S, n = BUDGETS[meta["budget"]][name]
        lines += [f"## {name} (warm-up {W}, sampling {S}, {n} chains per seed, seeds {s['seeds']})", "",
                  "| quantity | split (default) | blackjax (authors) | paired difference |", "|---|---|---|---|"]
        for k, (m, se) in s["paired"].items():
            a, b = s["rules"]["split"][k], s["rules"]["blackjax"][k]
            sci = k not in ("eps", "L")
            lines.append(f"| {LABELS.get(k, k)} | {_pm(*a, sci)} | {_pm(*b, sci)} | {_pm(m, se, sci)} |")
        lines += ["", f"L split / L blackjax: {_pm(*s['L_ratio'], False)}; tuned ε identical for both rules: "
                      f"{'yes' if s['eps_identical'] else 'no'}; better rule (decision metrics "
                      f"{', '.join(LABELS[m] for m in DECISION[name])}): {s['better'] or 'neither'}.", ""]
    better = {s["better"] for s in summary.values()}
    verdict = better.pop() if len(better) == 1 and None not in better and len(summary) == len(TARGETS) else None
    lines.append(f"Better on all three targets: {verdict or 'neither rule'}.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="validation/results/mile_ess_rules")
    ap.add_argument("--seeds", nargs="+", type=int, default=None, help="default 0..5 (--quick: 0 1)")
    ap.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    ap.add_argument("--quick", action="store_true", help="a tiny budget (seconds; for tests)")
    ap.add_argument("--from-records", nargs="+", default=None, metavar="JSON",
                    help="run nothing: summarise the records of earlier runs (their mile_ess_rules.json or "
                         "records_partial.json; a later file's record of the same target, seed and rule wins)")
    a = ap.parse_args(argv)
    budget = "quick" if a.quick else "full"
    seeds = a.seeds if a.seeds is not None else ([0, 1] if a.quick else list(range(6)))
    if len(seeds) < 2 or len(set(seeds)) != len(seeds):
        ap.error("--seeds needs at least two distinct seeds (standard errors over seeds)")
    os.makedirs(a.out, exist_ok=True)
    t0 = time.perf_counter()
    records = []
    if a.from_records:
        merged = {}
        for path in a.from_records:
            doc = read_json(path, "records file")
            for r in (doc["records"] if isinstance(doc, dict) else doc):
                merged[(r["target"], r["seed"], r["rule"])] = r
        records = sorted(merged.values(), key=lambda r: (TARGETS.index(r["target"]), r["seed"], RULES.index(r["rule"])))
        seeds = sorted({r["seed"] for r in records})
        if {r["n_warmup"] for r in records if r["target"] == "icg"} - {BUDGETS[budget]["icg"][0]}:
            ap.error("--from-records: the records were run with another budget (pass --quick for quick records)")
    for name in ([] if a.from_records else a.targets):
        for seed in seeds:
            for rule in RULES:
                records.append(run_one(name, seed, rule, budget))
                r = records[-1]
                print(f"{name} seed {seed} {rule}: eps {r['eps']:.4g} L {r['L']:.4g} x_min {r['x_min']:.3e} "
                      f"x2_min {r['x2_min']:.3e} ({r['seconds']} s)", flush=True)
                atomic_write_json(os.path.join(a.out, "records_partial.json"), records)  # survives an interruption
    summary = summarise(records)
    seconds = sum(r["seconds"] for r in records) if a.from_records else time.perf_counter() - t0
    meta = {"budget": budget, "budgets": BUDGETS[budget], "seeds": seeds, "seconds": seconds,
            "python": platform.python_version(), "numpy": np.__version__, "argv": list(argv or sys.argv[1:])}
    atomic_write_json(os.path.join(a.out, "mile_ess_rules.json"), {"meta": meta, "records": records, "summary": summary})
    md = markdown(summary, meta)
    atomic_write_text(os.path.join(a.out, "mile_ess_rules.md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
