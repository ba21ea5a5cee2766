"""Command line: the SMILE paper's analytical bias benchmark (Sommer et al. 2026, Sec. 6.1).

Runs :func:`smile_ref.verification.analytical.run_benchmark` (see its module docstring for the
exact setting: targets, noise structures with ``Cov[xi] = 256 C_y``, samplers,
metric, theory curve) and writes into ``--out``:

* ``results.json``: configuration and one record per (target, noise, sampler, eps);
* ``table.md``: ``b^2`` mean +- SE across replicates at every step size;
* ``b2_<target>.png``: ``b^2`` vs ``eps`` (log-log), one panel per noise structure,
  error bars = SE across replicates, dashed = overdamped theory where it exists.

All files are written atomically (:mod:`smile_ref.io`).  Examples::

    python -m validation.analytical_bias --quick --out validation/results/analytical_quick
    python -m validation.analytical_bias --out validation/results/analytical_full --workers 2
    python -m validation.analytical_bias --quick --out validation/results/q --executor dask --workers 4
    python -m validation.analytical_bias --out validation/results/full --executor dask://10.0.0.5:8786

``--executor`` says where the cells run, one task per cell: ``serial``, ``process`` (a pool of
``--workers`` processes), ``dask`` (a local Dask cluster of ``--workers`` workers; the ``dask`` extra)
or a running Dask scheduler's address (``dask://HOST:PORT``, ``tcp://HOST:PORT``; its workers must
be able to import smile_ref).  Default: ``serial`` for ``--workers 1``, else ``process``.  The records
are identical whichever runs them (every cell is seeded by its own parameters), except ``wall_s``.
    python -m validation.analytical_bias --targets icg --noises aniso --samplers smile psmile \
        --scaling fixed_eps_sigma --out validation/results/aniso_fixed_eps_sigma
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

from smile_ref.ensembles.executors import parse_scheduler_address
from smile_ref.verification.analytical import (FULL_CONFIG, QUICK_CONFIG, noise_covariance, run_benchmark,
                                               theory_b2)

from smile_ref.io import atomic_write, atomic_write_text

LABEL = {"smile": "SMILE-naive", "psmile": "pSMILE-naive", "sgld": "SGLD", "sghmc": "SGHMC"}


def _fmt(x, se=None):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    return f"{x:.3g}" if se is None or not math.isfinite(se) else f"{x:.3g} ± {se:.2g}"


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def markdown_table(result: dict) -> str:
    """One row per (target, noise, sampler, scaling), one column per step size (``b^2`` ± SE)."""
    recs = result["records"]
    rows: dict = {}
    for r in recs:
        rows.setdefault((r["target"], r["noise"], r["sampler"], r["scaling"]), []).append(r)
    cfg = result["config"]
    lines = [f"b^2 = (1/d) sum_i (Ehat[x_i^2] - E[x_i^2])^2 / Var[x_i^2]: mean ± SE over "
             f"{cfg['n_replicates']} replicates of {cfg['chains_per_replicate']} chains, {cfg['n_steps']} steps "
             f"after {cfg['burn_in']} burn-in, thinning {cfg['thinning']}, init {cfg['init']!r}, "
             f"ICG scales {cfg.get('icg_scales', [0.1, 10.0])} (paper: [0.1, 10]), "
             f"noise Cov = {cfg['noise_batch']:g} C_y. 'noise' = pure Monte-Carlo level E[b^2 | unbiased]; "
             "'theory' = SMILE/pSMILE: overdamped prediction (r = overdamped-regime ratio, needs r >> 1); SGLD/SGHMC: exact stationary b^2 of the linear recursion (ICG).", ""]
    lines += ["| target | noise | sampler | scaling | eps: b^2 ± SE (noise) | theory | r | rejected / non-finite chains |",
              "|---|---|---|---|---|---|---|---|"]
    for (t, nz, s, sc), rs in rows.items():
        rs = sorted(rs, key=lambda r: r["step_size"])
        cells = "; ".join(f"{r['step_size']:.2g}: {_fmt(r['b2_mean'], r['b2_se'])} ({r['noise_mean']:.1g})" for r in rs)
        ths = [r["theory_b2"] for r in rs]
        th = ", ".join(_fmt(v) for v in ths) if any(v is not None for v in ths) and len(set(ths)) > 1 else ths[0]
        rr = ", ".join(f"{r['overdamped_ratio']:.1g}" for r in rs) if rs[0]["overdamped_ratio"] is not None else "—"
        rej = ", ".join(f"{r['n_rejected']}/{r['n_nonfinite_chains']}" for r in rs)
        lines.append(f"| {t} | {nz} | {LABEL[s]} | {sc} | {cells} | {th if isinstance(th, str) else (_fmt(th) if th is not None else '—')} | {rr} | {rej} |")
    lines.append("")
    lines.append(f"Runtime {result['runtime_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def plot(result: dict, out: str) -> list[str]:
    """``b2_<target>.png`` per target: one panel per noise, b^2 vs eps (log-log) with error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recs = result["records"]
    files = []
    for t in dict.fromkeys(r["target"] for r in recs):
        noises = list(dict.fromkeys(r["noise"] for r in recs if r["target"] == t))
        ncol = min(4, len(noises))
        nrow = math.ceil(len(noises) / ncol)
        fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.4 * nrow), squeeze=False)
        for ax, nz in zip(axes.flat, noises):
            for k, (s, sc) in enumerate(dict.fromkeys((r["sampler"], r["scaling"]) for r in recs
                                                      if r["target"] == t and r["noise"] == nz)):
                rs = sorted((r for r in recs if r["target"] == t and r["noise"] == nz and r["sampler"] == s
                             and r["scaling"] == sc), key=lambda r: r["step_size"])
                rs = [r for r in rs if _finite(r["b2_mean"]) and 0 < r["b2_mean"] < 1e12]
                if not rs:
                    continue
                eps = [r["step_size"] for r in rs]
                b2 = [r["b2_mean"] for r in rs]
                se = [min(r["b2_se"], 0.999 * r["b2_mean"]) if _finite(r["b2_se"]) else 0.0 for r in rs]
                lab = LABEL[s] + ("" if sc == "fixed_sigma" else " (fixed eps·Σ)")
                line = ax.errorbar(eps, b2, yerr=se, marker="o", ms=3, capsize=2, label=lab)
                ax.plot(eps, [max(r["noise_mean"], 1e-12) for r in rs], ":", color=line[0].get_color(), lw=0.8)
                th = [r["theory_b2"] for r in rs]
                if all(v is not None for v in th) and all(v > 1e-12 for v in th) and s in ("smile", "psmile"):
                    ax.plot(eps, th, "--", color=line[0].get_color(), lw=1.2, label=f"{LABEL[s]} overdamped th.")
                elif any(v is not None and v > 1e-12 for v in th):
                    e2, t2 = zip(*[(e, v) for e, v in zip(eps, th) if v is not None and v > 1e-12])
                    kind = "exact stationary" if s in ("sgld", "sghmc") else "overdamped th."
                    ax.plot(e2, t2, "--", color=line[0].get_color(), lw=1.2, label=f"{LABEL[s]} {kind}")
                elif all(v is not None for v in th):
                    line.set_label(lab + " (theory: 0)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{t}: {nz} noise")
            ax.set_xlabel("step size eps")
            ax.set_ylabel("b²")
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=6)
        for ax in list(axes.flat)[len(noises):]:
            ax.axis("off")
        fig.suptitle("dotted: Monte-Carlo noise level of b²; error bars: SE over replicates", fontsize=8)
        fig.tight_layout()
        path = os.path.join(out, f"b2_{t}.png")
        atomic_write(path, lambda fh, fig=fig: fig.savefig(fh, format="png", dpi=90))
        plt.close(fig)
        files.append(path)
    return files


def build_config(args) -> dict:
    cfg = dict(QUICK_CONFIG if args.quick else FULL_CONFIG)
    if args.icg_scales is not None:
        cfg["icg_scales"] = list(args.icg_scales)
    for key in ("targets", "noises", "samplers", "n_replicates", "chains_per_replicate", "n_steps", "burn_in",
                "thinning", "init", "seed", "workers", "scaling", "noise_batch"):
        val = getattr(args, key)
        if val is not None:
            cfg[key] = val
    if args.n_eps is not None:
        import numpy as np

        span = {"smile": (-3, -1), "psmile": (-3, -1), "sgld": (-6, -4), "sghmc": (-3, -1)}
        cfg["step_sizes"] = {s: list(np.logspace(*span[s], args.n_eps)) for s in span}
        cfg["step_sizes_by_target"] = {"rosenbrock": {s: list(np.logspace(-5, -3, args.n_eps))
                                                      for s in ("smile", "psmile")}}
    if args.eps is not None:
        cfg["step_sizes"] = {s: list(args.eps) for s in ("smile", "psmile", "sgld", "sghmc")}
        cfg["step_sizes_by_target"] = {}
    cfg["theory"] = not args.no_theory
    return cfg


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small ICG run (about a minute on 2 cores)")
    p.add_argument("--out", required=True, help="output folder (created)")
    p.add_argument("--targets", nargs="+", choices=["icg", "funnel", "rosenbrock"])
    p.add_argument("--noises", nargs="+",
                   choices=["iso", "aniso", "corr", "spatial", "laplace", "student_t", "lognormal"])
    p.add_argument("--samplers", nargs="+", choices=["smile", "psmile", "sgld", "sghmc"])
    p.add_argument("--n-eps", dest="n_eps", type=int, help="log-spaced step sizes per sampler (paper ranges)")
    p.add_argument("--eps", nargs="+", type=float, help="explicit step sizes for every sampler (overrides --n-eps)")
    p.add_argument("--n-replicates", dest="n_replicates", type=int)
    p.add_argument("--chains-per-replicate", dest="chains_per_replicate", type=int)
    p.add_argument("--n-steps", dest="n_steps", type=int)
    p.add_argument("--burn-in", dest="burn_in", type=int)
    p.add_argument("--thinning", type=int)
    p.add_argument("--init", choices=["zero", "exact"], help="zero (paper) or exact target draws")
    p.add_argument("--scaling", choices=["fixed_sigma", "fixed_eps_sigma"])
    p.add_argument("--noise-batch", dest="noise_batch", type=float, help="Cov[xi] = noise_batch * C_y (paper 256)")
    p.add_argument("--icg-scales", dest="icg_scales", nargs=2, type=float, metavar=("C_MIN", "C_MAX"),
                   help="ICG standard deviations logspace(C_MIN, C_MAX) (paper 0.1 10; --quick uses 1 1)")
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, help="pool size for --executor process or dask")
    p.add_argument("--executor", help="serial, process, dask, or a Dask scheduler address dask://HOST:PORT "
                                      "(default: serial for --workers 1, else process)")
    p.add_argument("--no-theory", action="store_true", help="omit the overdamped theory curve")
    p.add_argument("--replot", metavar="RESULTS_JSON",
                   help="no simulation: rewrite table.md and plots from an existing results(.partial).json, "
                        "filling theory_b2 from the cache")
    args = p.parse_args(argv)
    if args.executor is not None and args.executor not in ("serial", "process", "dask"):
        try:
            if parse_scheduler_address(args.executor) is None:
                raise ValueError(f"executor must be serial, process, dask or a Dask scheduler address "
                                 f"dask://HOST:PORT, got {args.executor!r}")
        except ValueError as exc:
            p.error(str(exc))
    os.makedirs(args.out, exist_ok=True)
    if args.replot:
        with open(args.replot) as fh:
            result = json.load(fh)
        cfg = result["config"]
        for r in result["records"]:
            if r["theory_b2"] is None and r["scaling"] == "fixed_sigma":
                cov = noise_covariance(r["noise"], cfg["noise_batch"])
                r["theory_b2"], r["overdamped_ratio"] = theory_b2(r["target"], r["noise"], r["sampler"],
                                                                  r["step_size"], cov,
                                                                  icg_scales=cfg.get("icg_scales", (0.1, 10.0)))
        atomic_write_text(os.path.join(args.out, "results.json"), json.dumps(result, indent=1, default=float))
        atomic_write_text(os.path.join(args.out, "table.md"), markdown_table(result))
        plot(result, args.out)
        return 0
    cfg = build_config(args)
    print(f"analytical bias benchmark -> {args.out}\nconfig: {json.dumps(cfg, default=float)}", flush=True)
    t0 = time.perf_counter()
    command = " ".join(["python", "-m", "validation.analytical_bias", *(sys.argv[1:] if argv is None else argv)])

    def partial(records):
        atomic_write_text(os.path.join(args.out, "results.partial.json"),
                     json.dumps({"config": cfg, "records": records, "command": command,
                                 "runtime_s": time.perf_counter() - t0}, default=float))

    result = run_benchmark(cfg, on_record=partial, executor=args.executor)
    result["command"] = command
    atomic_write_text(os.path.join(args.out, "results.json"), json.dumps(result, indent=1, default=float))
    atomic_write_text(os.path.join(args.out, "table.md"), markdown_table(result))
    files = plot(result, args.out)
    print(f"wrote results.json, table.md, {', '.join(os.path.basename(f) for f in files)} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
