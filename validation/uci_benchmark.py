"""Command line: the SMILE paper's UCI regression table (Sommer et al. 2026, Sec. 5, Table 2).

Runs :func:`smile_ref.verification.uci.run_uci` (deep ensemble shared per data set and seed; then
SMILE, pSMILE, SGLD, SGHMC and full-batch MCLMC = MILE from the same members) and writes into
``--out``:

* ``results.json``: budget, one record per (data set, seed, method), and the summary;
* ``table.md``: LPPD, RMSE, 80/90/95 % coverage (mean ± SE over seeds), gradient evaluations per
  member (full-data equivalents, pre-training included) and wall time, next to the paper's best
  LPPD;
* ``intervals_<data set>.png``: 90 % predictive intervals vs truth on the test split (seed 0, one
  panel per method, test points sorted by predictive mean);
* ``lppd_vs_cost.png``: test LPPD against gradient evaluations, one point per run.

Per-member draws, checkpoints and pre-trainings live under ``--out/<data set>/seed<k>/``; a re-run
with the same arguments resumes (finished members are skipped).  Examples::

    python validation/uci_benchmark.py --quick                      # ~ minutes on 2 cores
    python validation/uci_benchmark.py --budget paper --datasets airfoil energy --seeds 0 1 2
    python validation/uci_benchmark.py --quick --executor process --workers 2
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from smile_ref.ensembles import EnsembleConfig  # noqa: E402
from smile_ref.ensembles.store import atomic_write_json  # noqa: E402
from smile_ref.verification.uci import ALL_METHODS, METHODS, markdown_table, plot_cost, plot_intervals, run_uci, summarise  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="quick budget, seed 0 only (minutes on 2 cores)")
    ap.add_argument("--budget", choices=("paper", "quick", "tiny"), default=None)
    ap.add_argument("--datasets", nargs="+", default=["airfoil", "energy", "bikesharing"])
    ap.add_argument("--seeds", nargs="+", type=int, default=None)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(ALL_METHODS),
                    help="methods to run (default: %(default)s); smile_gamma/psmile_gamma use the Gamma "
                         "energy-error tuner instead of the pipeline's Var[dE]/d tuner")
    ap.add_argument("--members", type=int, default=None, help="override the number of members")
    ap.add_argument("--executor", choices=("vectorised", "process", "dask"), default="vectorised")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--backend", default="numpy")
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--out", default=None)
    ap.add_argument("--grid", action="store_true",
                    help="run each sampler at every step size of its grid and keep the best validation LPPD")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--collect", action="store_true",
                    help="start nothing: tabulate and plot the finished runs under --out (several invocations)")
    args = ap.parse_args(argv)
    budget = args.budget or ("quick" if args.quick else "paper")
    config = getattr(EnsembleConfig, budget)()
    if args.members is not None:
        from dataclasses import replace

        config = replace(config, n_members=args.members)
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    out = args.out or f"validation/results/uci_{budget}"
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    rows = run_uci(args.datasets, seeds, args.methods, config=config, out_dir=out,
                   executor=None if args.executor == "vectorised" else args.executor, backend=args.backend,
                   dtype=args.dtype, progress=args.progress or None, grid=args.grid, collect=args.collect)
    summary = summarise(rows)
    runtime = time.perf_counter() - t0
    records = [{k: v for k, v in r.items() if k != "predictions"} for r in rows]
    atomic_write_json(os.path.join(out, "results.json"), {"budget": budget, "config": config.to_dict(),
                                                         "seeds": seeds, "records": records, "summary": summary,
                                                         "runtime_s": runtime})
    md = (f"# UCI benchmark ({budget} budget)\n\n{config.n_members} members, {config.n_warmup} warm-up + "
          f"{config.n_samples} sampling steps, thinning {config.thinning}, batch {config.batch_size}; seeds "
          f"{seeds}; backend {args.backend} {args.dtype}. Metrics on the standardised test split, mean ± SE over "
          f"seeds. Paper: best LPPD with 10 members and the full budget.\n\n" + markdown_table(summary) +
          f"\n\nRuntime {runtime:.0f} s.\n")
    tmp = os.path.join(out, ".table.md.tmp")
    with open(tmp, "w") as f:
        f.write(md)
    os.replace(tmp, os.path.join(out, "table.md"))
    try:
        for ds in args.datasets:
            plot_intervals(rows, ds, os.path.join(out, f"intervals_{ds}.png"))
        plot_cost(rows, os.path.join(out, "lppd_vs_cost.png"))
    except ImportError:
        print("matplotlib not installed: no plots (pip install 'smile_ref[plot]')")
    print(md)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
