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

    python -m validation.uci_benchmark --quick                      # ~ minutes on 2 cores
    python -m validation.uci_benchmark --budget paper --datasets airfoil energy --seeds 0 1 2
    python -m validation.uci_benchmark --quick --executor process --workers 2

``--protocol authors`` runs the SMILE authors' UCI protocol instead
(:mod:`smile_ref.ensembles.authors_protocol`: their splits for seeds 1-3, all-rows standardisation, full test
batches of 256, deep ensemble pre-trained with sigma = 1, naive fixed-step SMILE/pSMILE over the eps grid
step-wise and/or epoch-wise, adaptive SGHMC, the deep ensemble's member spread as its scale) and writes one
row per (data set, seed, method, schedule, eps) cell to ``results.json`` and ``table.md``::

    python -m validation.uci_benchmark --protocol authors --datasets airfoil energy --seeds 1 \
        --methods de smile psmile sghmc_adaptive --modes step --eps 1e-2 1e-3 1e-4 --out runs/uci_authors

``--n-warmup``, ``--n-samples`` and ``--thinning`` override the budget's counts (a reduced budget: the
output names it).
"""
from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

from smile_ref.ensembles import EnsembleConfig
from smile_ref.ensembles.store import atomic_write_json
from smile_ref.io import atomic_write_text
from smile_ref.verification.uci import ALL_METHODS, METHODS, markdown_table, plot_cost, plot_intervals, run_uci, summarise


def _int_at_least(lo, what):
    """argparse type: an integer >= ``lo``."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < lo:
            raise argparse.ArgumentTypeError(f"expected a {what} integer, got {text!r}")
        return v
    return parse


_positive_int = _int_at_least(1, "positive")
_nonneg_int = _int_at_least(0, "non-negative")


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def _authors_main(ap, args, config, budget, label):
    from smile_ref.ensembles.authors_protocol import (AUTHORS_EPS_GRID, AUTHORS_METHODS, cells_table,
                                                      run_authors_uci, summarise_cells)

    if args.grid or args.executor != "vectorised" or args.collect:
        ap.error("--protocol authors runs its grid cell by cell in this process: --grid, --executor and --collect "
                 "are for --protocol smile_ref")
    allowed = ("de",) + tuple(AUTHORS_METHODS)
    methods = args.methods if args.methods is not None else ["de", "smile", "psmile", "sghmc_adaptive"]
    bad = [m for m in methods if m not in allowed]
    if bad:
        ap.error(f"--methods {' '.join(bad)}: not a method of --protocol authors (choose from {', '.join(allowed)})")
    datasets = args.datasets if args.datasets is not None else ["airfoil", "energy"]
    seeds = args.seeds if args.seeds is not None else [1]
    bad = [s for s in seeds if s not in (1, 2, 3)]
    if bad:
        ap.error(f"--seeds {' '.join(map(str, bad))}: the authors' splits are seeds 1, 2, 3")
    eps = args.eps if args.eps is not None else list(AUTHORS_EPS_GRID)
    out = args.out or f"validation/results/uci_authors_{budget}"
    os.makedirs(out, exist_ok=True)
    t0 = time.perf_counter()
    rows = run_authors_uci(datasets, seeds, methods, modes=args.modes, eps_grid=eps, sghmc_eps=args.sghmc_eps,
                           config=config, out_dir=out, backend=args.backend, dtype=args.dtype,
                           progress=args.progress or None)
    runtime = time.perf_counter() - t0
    summary = summarise_cells(rows)
    atomic_write_json(os.path.join(out, "results.json"),
                      {"protocol": "authors", "budget": label, "config": config.to_dict(), "seeds": seeds,
                       "records": rows, "summary": summary, "runtime_s": runtime})
    md = (f"# UCI benchmark, the SMILE authors' protocol ({label})\n\n{config.n_members} members, "
          f"{config.n_warmup} warm-up + {config.n_samples} sampling steps, thinning {config.thinning}, batch "
          f"{config.batch_size} (epoch-wise rows: every count times floor(N_train / batch)); seeds {seeds}; backend "
          f"{args.backend} {args.dtype}. Metrics on the standardised (all rows) test split, full batches of 256 "
          f"only; de: member spread as predictive scale.\n\n" + cells_table(summary) +
          f"\n\nRuntime {runtime:.0f} s.\n")
    atomic_write_text(os.path.join(out, "table.md"), md)
    print(md)
    print(f"written to {out}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--protocol", choices=("smile_ref", "authors"), default="smile_ref",
                    help="smile_ref's protocol (default) or the SMILE authors' (their splits, preprocessing, "
                         "samplers and metrics; see the module docstring)")
    ap.add_argument("--modes", nargs="+", choices=("step", "epoch"), default=["step"],
                    help="--protocol authors: step-wise and/or epoch-wise sampling (default: step)")
    ap.add_argument("--eps", nargs="+", type=_positive_float, default=None,
                    help="--protocol authors: SMILE/pSMILE step sizes (default: 1e-2 1e-3 1e-4)")
    ap.add_argument("--sghmc-eps", nargs="+", type=_positive_float, default=[1e-3],
                    help="--protocol authors: adaptive SGHMC's eps (learning rate eps^2; default: 1e-3)")
    ap.add_argument("--n-warmup", type=_nonneg_int, default=None, help="override the budget's warm-up steps")
    ap.add_argument("--n-samples", type=_positive_int, default=None, help="override the budget's sampling steps")
    ap.add_argument("--thinning", type=_positive_int, default=None, help="override the budget's thinning")
    ap.add_argument("--quick", action="store_true", help="quick budget, seed 0 only (minutes on 2 cores)")
    ap.add_argument("--budget", choices=("paper", "quick", "tiny"), default=None)
    ap.add_argument("--datasets", nargs="+", default=None, choices=["airfoil", "energy", "bikesharing"],
                    help="default: all three (smile_ref), airfoil energy (authors)")
    ap.add_argument("--seeds", nargs="+", type=int, default=None)
    ap.add_argument("--methods", nargs="+", default=None,
                    help=f"methods to run (default: {' '.join(METHODS)}; choices {', '.join(ALL_METHODS)}); "
                         "smile_gamma/psmile_gamma use the Gamma energy-error tuner instead of the pipeline's "
                         "Var[dE]/d tuner. --protocol authors: de smile psmile psmile_carry sghmc_adaptive "
                         "(default: de smile psmile sghmc_adaptive)")
    ap.add_argument("--members", type=_positive_int, default=None, help="override the number of members")
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
    overrides = {k: v for k, v in (("n_members", args.members), ("n_warmup", args.n_warmup),
                                   ("n_samples", args.n_samples), ("thinning", args.thinning)) if v is not None}
    if overrides:
        try:
            config = replace(config, **overrides)
        except ValueError as exc:
            ap.error(str(exc))
    label = budget if not overrides else f"{budget} budget with " + ", ".join(f"{k}={v}" for k, v in overrides.items())
    if args.protocol == "authors":
        return _authors_main(ap, args, config, budget, label)
    if args.methods is None:
        args.methods = list(METHODS)
    bad = [m for m in args.methods if m not in ALL_METHODS]
    if bad:
        ap.error(f"--methods {' '.join(bad)}: not a method of --protocol smile_ref (choose from {', '.join(ALL_METHODS)})")
    if args.modes != ["step"] or args.eps is not None or args.sghmc_eps != [1e-3]:
        ap.error("--modes, --eps and --sghmc-eps are for --protocol authors")
    if args.datasets is None:
        args.datasets = ["airfoil", "energy", "bikesharing"]
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
    atomic_write_text(os.path.join(out, "table.md"), md)
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
