"""Health of ``run_chains("smile"/"psmile", ...)`` with default options over a grid of initial step sizes.

For every target x gradient estimator x initial step size x sampler x tuner configuration the script runs
``n_chains`` chains (``burn_in`` warm-up steps, then ``n_steps`` sampling steps) and reports the fraction of
rejected sampling steps, the range over chains of the final step size, the number of frozen chains (no
accepted step in the last 10 % of the run) and, for Gaussian targets, the median over coordinates of the
relative error of the estimated variance (``|Var_hat / Var - 1|``, pooled over chains).  Used for the table in
``docs/smile-defaults.md``.

The MLP starts from ``MLP.init_params`` (He-normal weights, zero biases; ``--prior-init``: standard-normal
draws, the targets' generic default).

Configurations: ``default`` (no tuner option: smile_ref's default) and ``gamma`` (``tuner="energy_error"``, the
authors' Gamma energy-error tuner with smile_ref's other defaults).

``--spiral-plot PATH`` instead records the Gamma tuner's statistics per step (EMA mean ``mu`` and standard
deviation ``s``, fitted shape ``k``, step size, rejections) on the two reproducers of the death spiral (ICG d=10,
exact gradient, step size 1e-2; the airfoil MLP with mini-batches of 32 from standard-normal draws, step size
1e-3, same-batch and cross-batch energy errors) and plots them.

Usage::

    python -m validation.smile_defaults --out validation/results/smile_defaults [--quick] [--only default]
    python -m validation.smile_defaults --spiral-plot docs/results/smile-gamma-spiral.png
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
from smile_ref.io import atomic_write_text

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


def one(sampler, target, gradient, step_size, opts, n_chains, burn_in, n_steps, seed, prior_init=False):
    t0 = time.time()
    x0 = None
    if isinstance(target, targets.MLP) and not prior_init:  # He-normal weights, zero biases (MLP.init_params)
        x0 = target.init_params(np.random.default_rng(seed), n_chains)
    try:
        res = smile_ref.run_chains(sampler, target, gradient=gradient, n_chains=n_chains, n_steps=n_steps,
                                   burn_in=burn_in, step_size=step_size, seed=seed, progress=False,
                                   initial_position=x0, info="all", **opts)  # per-step traces below
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


def run(quick: bool, out: str, only=None, samplers=("smile", "psmile"), problem=None, prior_init=False) -> dict:
    t0 = time.time()
    n_chains, burn_in, n_steps = (4, 1000, 1000) if quick else (4, 2000, 2000)
    rows = []
    for label, target, gfac, glabel, grid in problems(quick):
        if problem and problem not in label:
            continue
        for sampler in samplers:
            for step_size in grid:
                for cname, opts in CONFIGS.items():
                    if only and cname not in only:
                        continue
                    r = one(sampler, target, gfac(target), step_size, opts, n_chains, burn_in, n_steps, seed=1,
                            prior_init=prior_init)
                    r.update(target=label, gradient=glabel, sampler=sampler, step_size0=step_size, config=cname)
                    rows.append(r)
                    print(json.dumps(r), flush=True)
    doc = {"rows": rows, "quick": quick, "n_chains": n_chains, "burn_in": burn_in, "n_steps": n_steps,
           "smile_ref": smile_ref.__version__ if hasattr(smile_ref, "__version__") else None,
           "platform": platform.platform(), "numpy": np.__version__, "runtime_s": time.time() - t0,
           "date": time.strftime("%Y-%m-%d")}
    atomic_write_text(os.path.join(out, "smile_defaults.json"), json.dumps(doc, indent=1))
    return doc


def gamma_trace(sampler, target, gradient, n_chains, n_steps, step_size, seed=0, **opts):
    """Per-step ``(mu, s, k, |dE|, eps, rejected)`` of the Gamma tuner, each ``(n_steps, n_chains)``."""
    from smile_ref.backend import get_backend, make_random, to_numpy
    from smile_ref.gradients import Exact
    from smile_ref.samplers import base as registry

    bk = get_backend("numpy", "float64")
    rnd = make_random(seed, bk, "host")
    algo = registry.get(sampler)(target, gradient or Exact(target), bk, step_size=step_size, n_warmup=0,
                                 tuner="energy_error", **opts)
    st = algo.init(target.initial_position(rnd, n_chains), rnd)
    rows = []
    for _ in range(n_steps):
        mu, sd = to_numpy(st.tuner_state.mu), to_numpy(st.tuner_state.s)
        st, info = algo.step(st, rnd, False)
        rows.append([mu, sd, mu**2 / (sd**2 + 1e-6), np.abs(to_numpy(info["energy_error"])),
                     to_numpy(info["step_size"]), to_numpy(info["rejected"])])
    A = np.asarray(rows, dtype=float)
    return {k: A[:, i] for i, k in enumerate(("mu", "s", "k", "abs_dE", "eps", "rejected"))}


def spiral_plot(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mlp = make_mlp("airfoil")
    runs = {
        "ICG d=10, exact, eps0=1e-2": gamma_trace("smile", targets.ill_conditioned_gaussian(10), None, 4, 1500, 1e-2),
        "airfoil MLP, mini-batch, same_batch": gamma_trace("smile", mlp, MiniBatch(mlp, 32), 4, 3000, 1e-3),
        "airfoil MLP, mini-batch, cross_batch": gamma_trace("smile", mlp, MiniBatch(mlp, 32), 4, 3000, 1e-3,
                                                            energy_error="cross_batch"),
    }
    fig, ax = plt.subplots(3, len(runs), figsize=(4.2 * len(runs), 8.5), sharex="col")
    for j, (name, tr) in enumerate(runs.items()):
        T = np.arange(tr["k"].shape[0])
        ax[0, j].semilogy(T[3:], tr["k"][3:], lw=0.8)
        ax[0, j].set_ylim(1e-7, 1e3)
        for kz, lab in ((0.574, "k_D (no growth)"), (0.0278, "k_U (always shrink)"), (0.0184, "k_R (always reject)")):
            ax[0, j].axhline(kz, ls="--", lw=0.8, color="k" if "R" in lab else "0.5")
            ax[0, j].text(T[-1], kz, lab, ha="right", va="bottom", fontsize=7)
        ax[0, j].set_title(name, fontsize=9)
        ax[0, j].set_ylabel("fitted shape k = mu^2/(s^2+1e-6)")
        ax[1, j].semilogy(T, tr["eps"], lw=0.8)
        ax[1, j].set_ylabel("step size")
        rate = np.array([np.convolve(tr["rejected"][:, c], np.ones(50) / 50, mode="valid") for c in range(4)]).T
        ax[2, j].plot(T[49:], rate, lw=0.8)
        ax[2, j].set_ylabel("rejected (50-step mean)")
        ax[2, j].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return {name: {"final_eps": tr["eps"][-1].tolist(), "rejected": tr["rejected"].mean(0).tolist(),
                   "median_k_last_third": np.median(tr["k"][-tr["k"].shape[0] // 3:], axis=0).tolist()}
            for name, tr in runs.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="validation/results/smile_defaults")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--only", nargs="*", choices=sorted(CONFIGS))
    p.add_argument("--samplers", nargs="*", default=["smile", "psmile"])
    p.add_argument("--problem", help="run only the problems whose label contains this string")
    p.add_argument("--prior-init", action="store_true",
                   help="start the MLP from standard-normal draws instead of MLP.init_params (He normal)")
    p.add_argument("--spiral-plot", metavar="PATH", help="plot the Gamma tuner's death spiral and exit")
    args = p.parse_args(argv)
    if args.spiral_plot:
        print(json.dumps(spiral_plot(args.spiral_plot), indent=1))
        return
    run(args.quick, args.out, args.only, tuple(args.samplers), args.problem, args.prior_init)


if __name__ == "__main__":
    main()
