"""Health of ``run_chains("smile"/"psmile", ...)`` with default options over a grid of initial step sizes.

For every target x gradient estimator x initial step size x sampler x tuner configuration the script runs
``n_chains`` chains (``burn_in`` warm-up steps, then ``n_steps`` sampling steps) and reports the fraction of
rejected sampling steps, the range over chains of the final step size, the number of frozen chains (no
accepted step in the last 10 % of the run) and, for Gaussian targets, the median over coordinates of the
relative error of the estimated variance (``|Var_hat / Var - 1|``, pooled over chains).  Used for the table in
``docs/smile-defaults.md``.

Configurations: ``default`` (no tuner option: smile_ref's default) and ``gamma`` (``tuner="energy_error"``, the
authors' Gamma energy-error tuner with smile_ref's other defaults).

Usage::

    python validation/smile_defaults.py --out validation/results/smile_defaults [--quick] [--only default]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

import smile_ref
from smile_ref import targets
from smile_ref.gradients import AdditiveNoise, MiniBatch

CONFIGS = {"default": {}, "gamma": {"tuner": "energy_error"}}


def make_logreg(seed=0, n=2000, d=5):
    rs = np.random.default_rng(seed)
    X = rs.standard_normal((n, d))
    X = (X - X.mean(0)) / X.std(0)
    w = rs.standard_normal(d)
    y = (rs.random(n) < 1 / (1 + np.exp(-X @ w))).astype(float)
    return targets.LogisticRegression(X, y, prior_scale=1.0)


def make_mlp(name="airfoil"):
    from smile_ref.data import load_uci

    sp = load_uci(name, seed=0)
    return targets.MLP(sp.X_train, sp.y_train)


def problems(quick: bool):
    """``(label, target, gradient_factory, gradient label, step sizes)``."""
    grid = (1e-4, 1e-2, 1.0) if quick else (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
    icg = targets.ill_conditioned_gaussian(10)
    iso = targets.Gaussian.isotropic(1000)
    diag = targets.diagonal_gaussian_condition(1000, 1e2)
    lr = make_logreg()
    out = [
        ("ICG d=10", icg, lambda t: None, "exact", grid),
        ("ICG d=10", icg, lambda t: AdditiveNoise(t, 1.0), "additive noise, cov I", grid),
        ("isotropic Gaussian d=1000", iso, lambda t: None, "exact", grid),
        ("diagonal Gaussian d=1000, cond 1e2", diag, lambda t: None, "exact", grid),
        ("diagonal Gaussian d=1000, cond 1e2", diag, lambda t: AdditiveNoise(t, 1.0), "additive noise, cov I", grid),
        ("logistic regression N=2000 d=5", lr, lambda t: MiniBatch(t, 32), "mini-batch 32", grid),
        ("MLP airfoil d=658", make_mlp("airfoil"), lambda t: MiniBatch(t, 32), "mini-batch 32", grid),
    ]
    return out


def one(sampler, target, gradient, step_size, opts, n_chains, burn_in, n_steps, seed):
    t0 = time.time()
    try:
        res = smile_ref.run_chains(sampler, target, gradient=gradient, n_chains=n_chains, n_steps=n_steps,
                                   burn_in=burn_in, step_size=step_size, seed=seed, progress=False, **opts)
    except RuntimeError as exc:  # the Var[dE]/d tuner raises when its step size collapses
        return {"error": str(exc)[:200], "wall_s": time.time() - t0}
    rej = res.info["rejected"][burn_in:]
    eps = res.info["step_size"][-1]
    tail = res.info["rejected"][-max(1, (burn_in + n_steps) // 10):]
    row = {
        "rejected_sampling": float(rej.mean()),
        "rejected_warmup": float(res.info["rejected"][:burn_in].mean()) if burn_in else 0.0,
        "eps_min": float(eps.min()), "eps_max": float(eps.max()),
        "frozen_chains": int(np.sum(tail.all(axis=0))),
        "wall_s": time.time() - t0,
    }
    cov = getattr(target, "cov", None)
    if isinstance(target, targets.Gaussian) and res.samples.shape[1] > 1:
        x = res.samples.reshape(-1, target.dim)
        row["var_rel_err_median"] = float(np.median(np.abs(x.var(0) / np.diag(cov) - 1.0)))
    return row


def run(quick: bool, out: str, only=None, samplers=("smile", "psmile")) -> dict:
    t0 = time.time()
    n_chains, burn_in, n_steps = (4, 1000, 1000) if quick else (4, 2000, 2000)
    rows = []
    for label, target, gfac, glabel, grid in problems(quick):
        for sampler in samplers:
            for step_size in grid:
                for cname, opts in CONFIGS.items():
                    if only and cname not in only:
                        continue
                    r = one(sampler, target, gfac(target), step_size, opts, n_chains, burn_in, n_steps, seed=1)
                    r.update(target=label, gradient=glabel, sampler=sampler, step_size0=step_size, config=cname)
                    rows.append(r)
                    print(json.dumps(r), flush=True)
    doc = {"rows": rows, "quick": quick, "n_chains": n_chains, "burn_in": burn_in, "n_steps": n_steps,
           "smile_ref": smile_ref.__version__ if hasattr(smile_ref, "__version__") else None,
           "platform": platform.platform(), "numpy": np.__version__, "runtime_s": time.time() - t0,
           "date": time.strftime("%Y-%m-%d")}
    os.makedirs(out, exist_ok=True)
    tmp = os.path.join(out, "smile_defaults.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(tmp, os.path.join(out, "smile_defaults.json"))
    return doc


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="validation/results/smile_defaults")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="*", choices=sorted(CONFIGS))
    p.add_argument("--samplers", nargs="*", default=["smile", "psmile"])
    args = p.parse_args(argv)
    run(args.quick, args.out, args.only, tuple(args.samplers))


if __name__ == "__main__":
    main()
