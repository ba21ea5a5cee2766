"""Score-based VI vs ADVI vs GSM vs BaM against a reference posterior.

Targets
-------
* ``gauss``: Gaussian in d = 50 with condition number 1e3 (``ill_conditioned_gaussian`` with standard
  deviations logspace(log10 0.1, log10 3.162)); reference: the exact mean and covariance.
* ``logreg``: Bayesian logistic regression on scikit-learn's bundled breast-cancer data (569 x 30,
  standardised, intercept column, N(0, I) prior), shuffled with seed 0 and split 455 train / 114 test;
  reference: MCLMC (``run_chains("mclmc")``, 4 chains x 20 000 steps after 5 000 tuning steps).

Methods: ``score_vi`` (diagonal, beta in {0, 10, 100}; full, beta in {0, 1}), ``advi`` (mean-field and full-rank,
Adam lr 1e-2), ``gsm`` and ``bam`` (lam = 1) -- all with ``n_samples = 64`` per iteration, full-batch scores,
and mini-batch scores (b = 32) for logreg.

Metrics: ``KL(q || N_ref)`` (``N_ref`` the Gaussian with the reference mean and covariance, exact for
``gauss``), the largest standardised mean error ``max_j |m_j - m_ref,j| / sd_ref,j``, the mean absolute log
variance ratio, test NLL and ECE (10 equal-width bins, posterior predictive over 2 000 draws of q) for
logreg, score evaluations (full-data units) and wall time to convergence (first recorded iteration whose
KL is within 10 % (or 0.01) of the final KL; "—" when the final KL is not finite or above the first
recorded one, or when every iteration was skipped).  The diagonal score_vi mean iteration converges iff ``2D + beta I - P`` is positive definite
(docs/derivations/score-vi.md): ``lambda_max(P - 2D)`` is 66 for gauss and about 40 for logreg.

Run: ``python -m validation.vi_compare --out results/vi_compare [--quick]``; writes ``table.md``,
``results.json`` and ``kl_curves.png``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import time

import numpy as np

from smile_ref import fit_vi, run_chains
from smile_ref.backend import to_numpy
from smile_ref.diagnostics import gaussian_kl
from smile_ref.gradients import MiniBatch
from smile_ref.targets import LogisticRegression
from smile_ref.targets.gaussian import ill_conditioned_gaussian


def breast_cancer():
    """The breast-cancer data bundled with scikit-learn (read from the package's CSV; no sklearn import)."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or spec.origin is None:
        raise SystemExit("vi_compare needs scikit-learn installed (for its bundled breast-cancer data)")
    path = os.path.join(os.path.dirname(spec.origin), "datasets", "data", "breast_cancer.csv")
    raw = np.loadtxt(path, delimiter=",", skiprows=1)
    return raw[:, :-1], raw[:, -1]


def logreg_problem(seed=0):
    X, y = breast_cancer()
    perm = np.random.default_rng(seed).permutation(len(y))
    X, y = X[perm], y[perm]
    X = (X - X.mean(0)) / X.std(0)
    X = np.hstack([np.ones((len(X), 1)), X])
    n_tr = 455
    return LogisticRegression(X[:n_tr], y[:n_tr], prior_scale=1.0), X[n_tr:], y[n_tr:]


def predictive_metrics(draws, X, y, n_bins=10):
    z = draws @ X.T
    p = np.mean(0.5 * (1.0 + np.tanh(0.5 * z)), axis=0)
    p = np.clip(p, 1e-12, 1 - 1e-12)
    nll = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    conf = np.maximum(p, 1 - p)
    pred = (p > 0.5).astype(float)
    bins = np.minimum((conf - 0.5) / 0.5 * n_bins, n_bins - 1).astype(int)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.mean() * abs(np.mean(pred[sel] == y[sel]) - conf[sel].mean())
    return nll, float(ece)


def kl_to_ref(q, ref_mean, ref_cov):
    return float(gaussian_kl(to_numpy(q.mean), to_numpy(q.cov), ref_mean, ref_cov))


CONFIGS = [
    ("score_vi diag b=0", "score_vi", "diag_gaussian", {"beta": 0.0}),
    ("score_vi diag b=10", "score_vi", "diag_gaussian", {"beta": 10.0}),
    ("score_vi diag b=100", "score_vi", "diag_gaussian", {"beta": 100.0}),
    ("score_vi full b=0", "score_vi", "full_gaussian", {"beta": 0.0}),
    ("score_vi full b=1", "score_vi", "full_gaussian", {"beta": 1.0}),
    ("advi mean-field", "advi", "diag_gaussian", {"lr": 1e-2}),
    ("advi full-rank", "advi", "full_gaussian", {"lr": 1e-2}),
    ("gsm", "gsm", "full_gaussian", {}),
    ("bam lam=1", "bam", "full_gaussian", {"lam": 1.0}),
]


def run_one(label, method, family, opts, target, ref_mean, ref_cov, n_iter, M, gradient, seed, every, test):
    curve = []
    cb_time = [0.0]

    def cb(t, q):
        if (t + 1) % every == 0:
            t0 = time.perf_counter()
            curve.append((t + 1, kl_to_ref(q, ref_mean, ref_cov)))
            cb_time[0] += time.perf_counter() - t0

    r = fit_vi(method, target, family, n_iter=n_iter, n_samples=M, seed=seed, gradient=gradient, callback=cb, **opts)
    wall = r.wall_time - cb_time[0]          # fit time without the KL recording
    kl = kl_to_ref(r.family, ref_mean, ref_cov)
    sd = np.sqrt(np.diag(ref_cov))
    row = {"label": label, "kl": kl, "mean_err": float(np.max(np.abs(r.mean - ref_mean) / sd)),
           "logvar_err": float(np.mean(np.abs(np.log(np.diag(r.cov) / np.diag(ref_cov))))),
           "n_skipped": r.n_skipped, "evals_total": r.n_gradient_evals, "wall_total": wall,
           "curve": curve}
    conv = None
    moved = r.n_skipped < n_iter                                # every iteration skipped: never moved
    if moved and math.isfinite(kl) and curve and kl <= curve[0][1]:   # no convergence time for a diverging run
        tol = max(0.1 * abs(kl), 0.01)
        for i, (t, v) in enumerate(curve):
            if all(abs(w - kl) <= tol for _, w in curve[i:]):
                conv = t
                break
    row["iters_conv"] = conv
    row["evals_conv"] = None if conv is None else r.n_gradient_evals * conv / n_iter
    row["wall_conv"] = None if conv is None else wall * conv / n_iter
    if test is not None:
        draws = r.sample(2000, seed=1)
        row["nll"], row["ece"] = predictive_metrics(draws, *test)
    return row


def fmt(v, spec=".3g"):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return format(v, spec)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--quick", action="store_true", help="fewer iterations and a shorter MCMC reference")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    n_iter = 300 if a.quick else 1000
    M = 64
    results = {}

    gauss = ill_conditioned_gaussian(dim=50, seed=0, c_min=0.1, c_max=0.1 * math.sqrt(1e3))
    problems = [("gauss (d=50, cond 1e3)", gauss, gauss.mean, gauss.cov, None, [None])]
    lr_target, Xte, yte = logreg_problem(a.seed)
    t0 = time.perf_counter()
    ref = run_chains("mclmc", lr_target, n_chains=4, n_steps=5000 if a.quick else 20000,
                     burn_in=2000 if a.quick else 5000, seed=a.seed, progress=False)
    ref_wall = time.perf_counter() - t0
    s = ref.samples.reshape(-1, lr_target.dim)
    problems.append(("logreg (breast cancer, d=31)", lr_target, s.mean(0), np.cov(s.T), (Xte, yte),
                     [None, MiniBatch(lr_target, 32)]))
    ref_nll, ref_ece = predictive_metrics(s[np.random.default_rng(0).choice(len(s), 2000, replace=False)], Xte, yte)

    lines = ["# VI comparison (smile_ref validation/vi_compare.py)", "",
             f"n_samples = {M} per iteration, {n_iter} iterations, seed {a.seed}. KL = KL(q ‖ N(reference mean, "
             "reference covariance)); mean err = max_j |m_j − m_ref,j|/sd_ref,j; log-var err = mean_j "
             "|log(var_j/var_ref,j)|; evals in full-data score units; *conv* = first recorded iteration after "
             "which KL stays within 10 % (or 0.01) of its final value.", ""]
    lines.append(f"logreg MCMC reference: MCLMC, {s.shape[0]} draws, {ref_wall:.1f} s, "
                 f"{ref.n_gradient_evals * 4:.3g} gradient evals; test NLL {ref_nll:.4f}, ECE {ref_ece:.4f}.")
    lines.append("")
    for pname, target, rm, rc, test, grads in problems:
        for g in grads:
            gname = "full-batch" if g is None else f"mini-batch b={g.batch_size}"
            key = f"{pname} / {gname}"
            floor = 0.5 * (np.sum(np.log(np.diag(np.linalg.inv(rc)))) - np.linalg.slogdet(np.linalg.inv(rc))[1])
            lines += [f"## {key}", "", f"KL of the mean-field optimum (floor for the diagonal family): {floor:.4g} "
                      "(exact for gauss; Gaussian approximation of the reference for logreg).", "",
                      "| method | KL | mean err | log-var err | NLL | ECE | skipped | iters conv | evals conv | "
                      "wall conv (s) | wall total (s) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
            rows = []
            for label, method, family, opts in CONFIGS:
                print(f"[vi_compare] {key}: {label}", flush=True)
                row = run_one(label, method, family, opts, target, rm, rc, n_iter, M, g, a.seed, max(1, n_iter // 100),
                              test)
                rows.append(row)
                lines.append(f"| {label} | {fmt(row['kl'])} | {fmt(row['mean_err'])} | {fmt(row['logvar_err'])} | "
                             f"{fmt(row.get('nll'), '.4f')} | {fmt(row.get('ece'), '.4f')} | {row['n_skipped']} | "
                             f"{fmt(row['iters_conv'], 'd')} | {fmt(row['evals_conv'])} | {fmt(row['wall_conv'], '.3f')} | "
                             f"{row['wall_total']:.2f} |")
            lines.append("")
            results[key] = rows
    with open(os.path.join(a.out, "table.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(os.path.join(a.out, "results.json"), "w") as fh:
        json.dump(results, fh, indent=1, default=float)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
        for ax, (key, rows) in zip(axes[0], results.items()):
            for row in rows:
                if row["curve"]:
                    t, v = zip(*row["curve"])
                    ax.semilogy(t, np.maximum(np.array(v, dtype=float), 1e-12), label=row["label"])
            ax.set_title(key, fontsize=9)
            ax.set_xlabel("iteration")
            ax.set_ylabel("KL(q || N_ref)")
        axes[0][0].legend(fontsize=7)
        fig.savefig(os.path.join(a.out, "kl_curves.png"), dpi=110, bbox_inches="tight")
    except ImportError:
        pass
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
