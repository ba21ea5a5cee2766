"""Measured effect of the authors' pSMILE running-mean defect (P1) and of smile_ref's defaults on ``b^2``.

pSMILE-naive (``"psmile"``, ``tuner=None``, fixed ``eps``) on an ill-conditioned Gaussian (d = 10,
``icg_scales`` (0.3, 3): the paper's ICG family, narrower so that it mixes within the budget) with the
paper's additive noise ``Cov[xi] = 256 C_y`` (``aniso``: ``C_y = diag(c^2)``, ``c = logspace(-1, 1, 10)``;
``corr``: ``C_y`` = the paper's ICG covariance), from ``x = 0``, three preconditioner variants:

* ``authors (P1)``: ``preset="authors"`` (running mean re-initialised to 1 every step);
* ``authors + carry_mean``: the same with the mean carried (``preconditioner_options={"carry_mean": True}``);
* ``smile_ref default``: ``tuner=None`` and smile_ref's defaults.

Reported: ``b^2 = mean_i (E^[x_i^2] - E[x_i^2])^2 / Var[x_i^2]`` with its standard error and Monte-Carlo
noise floor (:func:`smile_ref.diagnostics.bias_metric_se`), and the mean preconditioner diagonal at the end
(what each variant preconditions by, after 500 more steps) against ``1/sqrt(diag Cov[xi])``, both normalised to
root mean square 1.

Usage::

    python -m validation.authors_differences [--steps 10000] [--chains 32] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

import smile_ref
from smile_ref.diagnostics import bias_metric_se
from smile_ref.samplers import base as registry
from smile_ref.verification.analytical import make_gradient, make_target, noise_covariance

VARIANTS = {
    "authors (P1)": {"preset": "authors"},
    "authors + carry_mean": {"preset": "authors", "preconditioner_options": {"carry_mean": True}},
    "smile_ref default": {},
}


def run(steps, chains, burn, eps, noises, seed=3, noise_batch=256.0):
    out = []
    target = make_target("icg", (0.3, 3.0))
    for noise in noises:
        cov = noise_covariance(noise, noise_batch)
        ideal = 1.0 / np.sqrt(np.diag(cov))
        ideal = ideal / np.sqrt(np.mean(ideal**2))
        for name, opts in VARIANTS.items():
            t0 = time.perf_counter()
            grad = make_gradient(target, "icg", noise, cov)
            res = smile_ref.run_chains("psmile", target, n_chains=chains, n_steps=steps, burn_in=burn, thinning=10,
                                       seed=seed, gradient=grad, step_size=eps, initial_position=np.zeros((chains, 10)),
                                       progress=False, tuner=None, **opts)
            bm = bias_metric_se(res.samples, target.second_moment, target.second_moment_var)
            # the preconditioner a short run of the same kernel ends with (the driver keeps no state)
            algo = registry.get("psmile")(target, make_gradient(target, "icg", noise, cov), smile_ref.backend.get_backend(),
                                          step_size=eps, n_warmup=0, tuner=None, **opts)
            rng = smile_ref.backend.make_random(seed, smile_ref.backend.get_backend())
            st = algo.init(res.samples[:, -1, :].copy(), rng)
            for _ in range(500):  # 5 EMA time constants
                st, _ = algo.step(st, rng, False)
            S = np.mean(algo.precond.sqrt_diag(st.precond_state), axis=0)
            S = S / np.sqrt(np.mean(S**2))
            out.append(dict(noise=noise, noise_batch=noise_batch, variant=name, b2=float(bm.b2), se=float(bm.se), noise_floor=float(bm.noise_mean),
                            sqrt_diag=S.tolist(), ideal_sqrt_diag=ideal.tolist(),
                            precond_error=float(np.sqrt(np.mean(np.log(S / ideal) ** 2))),
                            wall_s=round(time.perf_counter() - t0, 1)))
            print(json.dumps(out[-1]), flush=True)
    return out


def markdown(rows, meta):
    lines = [f"pSMILE-naive, ICG d = 10 (scales 0.3..3), Cov[xi] = {meta['noise_batch']:g} C_y, eps = {meta['eps']}, "
             f"{meta['chains']} chains x {meta['steps']} "
             f"steps (burn-in {meta['burn']}, thinning 10), seed {meta['seed']}.", "",
             "| noise | variant | b² ± SE | MC floor | rms log(S / S_ideal) |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['noise']} | {r['variant']} | {r['b2']:.4f} ± {r['se']:.4f} | {r['noise_floor']:.4f} | "
                     f"{r['precond_error']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10000)
    ap.add_argument("--burn", type=int, default=2000)
    ap.add_argument("--chains", type=int, default=32)
    ap.add_argument("--eps", type=float, default=0.01)
    ap.add_argument("--noises", nargs="*", default=["aniso", "corr"])
    ap.add_argument("--noise-batch", type=float, default=256.0,
                    help="Cov[xi] = noise_batch C_y (256: the paper's; small values: noise sd << 1)")
    ap.add_argument("--out", default="validation/results/authors_differences")
    a = ap.parse_args(argv)
    meta = dict(steps=a.steps, burn=a.burn, chains=a.chains, eps=a.eps, seed=3, noise_batch=a.noise_batch)
    rows = run(a.steps, a.chains, a.burn, a.eps, a.noises, noise_batch=a.noise_batch)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=1)
    md = markdown(rows, meta)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
