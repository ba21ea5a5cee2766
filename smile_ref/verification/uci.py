"""The UCI regression table of Sommer et al. (2026, Sec. 5, Table 2): core shared by
``validation/uci_benchmark.py`` and ``smile-ref verify``.

For each data set (airfoil, energy, bikesharing) and seed (= split), one deep ensemble is
pre-trained and shared by all methods: ``"de"`` (the deep ensemble alone), ``"smile"``,
``"psmile"``, ``"sgld"``, ``"sghmc"`` and ``"mclmc"`` (full-batch MCLMC with MILE's tuning:
MILE); ``"smile_gamma"``/``"psmile_gamma"`` on request (:data:`METHOD_VARIANTS`).  Each method's LPPD, RMSE and 80/90/95 % coverage on the test split, its validation LPPD,
its cost in gradient evaluations (full-data equivalents per member, pre-training included) and its
wall time (pre-training + sampling + prediction as recorded in the run's files, so that resumed runs
report the time their members took; ``call_time`` is the time of this call) are collected; :func:`summarise` gives mean and standard error over seeds.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data import load_uci
from ..ensembles import EnsembleConfig, run_ensemble
from ..ensembles.config import STEP_SIZE_GRIDS
from ..errors import RunHealthWarning

__all__ = ["PAPER_BEST_LPPD", "METHODS", "METHOD_VARIANTS", "ALL_METHODS", "run_uci", "summarise",
           "markdown_table", "plot_intervals", "plot_cost"]

#: Best LPPD reported for the paper (10 members, full budget).
PAPER_BEST_LPPD = {"airfoil": 0.28, "energy": 2.02, "bikesharing": 0.13}
METHODS = ("de", "smile", "psmile", "sgld", "sghmc", "mclmc")
#: Extra benchmark methods: ``name -> (registered sampler, sampler options)``.  ``"smile_gamma"`` and
#: ``"psmile_gamma"`` are SMILE/pSMILE with the authors' Gamma energy-error tuner instead of the
#: pipeline's Var[dE]/d tuner (``smile_ref.ensembles.config``, "SMILE/pSMILE tuner on BNNs").
METHOD_VARIANTS = {"smile_gamma": ("smile", {"tuner": "energy_error"}),
                   "psmile_gamma": ("psmile", {"tuner": "energy_error"})}
ALL_METHODS = METHODS[:3] + tuple(METHOD_VARIANTS) + METHODS[3:]
_KEYS = ("lppd", "rmse", "coverage_80", "coverage_90", "coverage_95")


def _run_one(split, name, seed, method, cfg, out, pretrain_path, **kw) -> dict:
    sampler = method
    if method in METHOD_VARIANTS:
        sampler, opts = METHOD_VARIANTS[method]
        cfg = replace(cfg, sampler_options={**opts, **cfg.sampler_options})
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:  # the table records the members' health instead
        warnings.simplefilter("always", RunHealthWarning)
        res = run_ensemble(split, sampler, config=cfg, seed=int(seed), out_dir=out, pretrain_path=pretrain_path, **kw)
    for w in caught:
        if not issubclass(w.category, RunHealthWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    call_time = time.perf_counter() - t0
    # recorded compute time, so that a resumed run reports the time its members took: pre-training (stored with
    # the deep ensemble) + sampling (each group's time, stored with its members) + prediction
    sampling = sum({float(x["wall_time"]) for x in res.members}) if res.members else 0.0
    wall = float(res.wall_time["pretrain"]) + sampling + float(res.wall_time["predict"])
    m = res.metrics["sampled" if method != "de" else "de"]
    mv = res.metrics["sampled_val" if method != "de" else "de_val"]
    row = {"dataset": name, "seed": int(seed), "method": method, "val_lppd": mv["lppd"],
           "grad_evals": res.n_gradient_evals["total"], "wall_time": wall, "call_time": call_time,
           "n_samples": m["n_samples"], "rmse_original": m.get("rmse_original"),
           "n_rejected": int(sum(x["n_rejected"] for x in res.members)),
           "step_size": (res.members[0]["initial_step_size"] if res.members else None),
           "final_step_size": ([x["final_step_size"] for x in res.members] if res.members else None),
           "unhealthy_members": {int(x["member"]): list(x["health"]) for x in res.members if x.get("health")}}
    row.update({k: m[k] for k in _KEYS})
    row["predictions"] = res.predictions
    return row


def run_uci(datasets=("airfoil", "energy", "bikesharing"), seeds=(0, 1, 2), methods=METHODS,
            config: EnsembleConfig | None = None, out_dir="validation/results/uci", executor=None,
            backend: str = "numpy", dtype: str = "float64", device=None, progress=None, step_sizes: dict | None = None,
            grid: bool = False, skip=(), collect: bool = False, log=print) -> list[dict]:
    """Run every (data set, seed, method); one row per run (see the module docstring).

    ``step_sizes`` maps a method to a step size overriding the config default.  ``grid=True`` runs every
    value of :data:`~smile_ref.ensembles.config.STEP_SIZE_GRIDS` for each sampler and keeps the run with the
    best *validation* LPPD (as the paper's search over {1e-2, 1e-3, 1e-4}); the row then lists every
    candidate under ``"grid"`` and its ``grad_evals`` counts the chosen run only (``grid_grad_evals``: all).
    Results live under ``out_dir/<data set>/seed<k>/<method>/`` (resumable: finished members are skipped).
    ``skip`` lists ``(data set, method)`` pairs not to run.  ``collect=True`` starts nothing: only runs whose
    ``result.json`` exists are read back (e.g. to tabulate runs made by several invocations).
    """
    config = EnsembleConfig.quick() if config is None else config
    kw = dict(backend=backend, dtype=dtype, device=device, executor=executor, progress=progress)
    skip = set(skip)
    rows = []
    for name in datasets:
        for seed in seeds:
            split = load_uci(name, seed=int(seed))
            base = Path(out_dir) / name / f"seed{seed}"
            for method in methods:
                if (name, method) in skip:
                    continue
                grid_eps = STEP_SIZE_GRIDS[METHOD_VARIANTS.get(method, (method,))[0]] if grid and method != "de" else ()
                run_dirs = [base / method / f"eps{e:g}" for e in grid_eps] or [base / method]
                if collect and not all((d / "result.json").exists() for d in run_dirs):
                    continue
                if grid_eps:
                    cands = [_run_one(split, name, seed, method, replace(config, step_size=float(e)), d,
                                      base / "pretrain.npz", **kw) for e, d in zip(grid_eps, run_dirs)]
                    row = dict(max(cands, key=lambda r: r["val_lppd"]))
                    row["grid"] = [{k: c[k] for k in ("step_size", "val_lppd", "lppd", "grad_evals")} for c in cands]
                    row["grid_grad_evals"] = float(sum(c["grad_evals"] for c in cands))
                else:
                    cfg = config
                    if step_sizes and method in step_sizes:
                        cfg = replace(config, step_size=float(step_sizes[method]))
                    row = _run_one(split, name, seed, method, cfg, base / method, base / "pretrain.npz", **kw)
                rows.append(row)
                log(f"{name:12s} seed {seed} {method:7s} LPPD {row['lppd']:8.4f}  RMSE {row['rmse']:.4f}  "
                    f"cov90 {row['coverage_90']:.3f}  grads {row['grad_evals']:9.1f}  {row['wall_time']:7.1f} s"
                    + (f"  eps {row['step_size']:g}" if row["step_size"] is not None else ""))
    return rows


def summarise(rows) -> list[dict]:
    """Mean and standard error over seeds per (data set, method)."""
    out = []
    keys = sorted({(r["dataset"], r["method"]) for r in rows},
                  key=lambda k: (k[0], ALL_METHODS.index(k[1]) if k[1] in ALL_METHODS else 99))
    for ds, meth in keys:
        rs = [r for r in rows if r["dataset"] == ds and r["method"] == meth]
        s = {"dataset": ds, "method": meth, "n_seeds": len(rs), "paper_best_lppd": PAPER_BEST_LPPD.get(ds)}
        for k in _KEYS + ("val_lppd", "grad_evals", "wall_time", "rmse_original"):
            v = np.array([r[k] for r in rs if r.get(k) is not None], dtype=float)
            if v.size == 0:
                continue
            s[k] = float(v.mean())
            s[k + "_se"] = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
        out.append(s)
    return out


def _pm(v, se, digits=3):
    if v is None:
        return "—"
    return f"{v:.{digits}f}" + (f" ± {se:.{digits}f}" if se is not None else "")


def markdown_table(summary) -> str:
    """The summary as a Markdown table (mean ± standard error over seeds)."""
    lines = ["| data set | method | LPPD | paper best LPPD | RMSE | cov. 80 % | cov. 90 % | cov. 95 % | "
             "grad. evals / member | wall time (s) |", "|" + "---|" * 10]
    for s in summary:
        lines.append(
            f"| {s['dataset']} | {s['method']} | {_pm(s['lppd'], s.get('lppd_se'))} | "
            f"{s['paper_best_lppd'] if s['paper_best_lppd'] is not None else '—'} | "
            f"{_pm(s['rmse'], s.get('rmse_se'))} | {_pm(s['coverage_80'], s.get('coverage_80_se'), 2)} | "
            f"{_pm(s['coverage_90'], s.get('coverage_90_se'), 2)} | {_pm(s['coverage_95'], s.get('coverage_95_se'), 2)} | "
            f"{s['grad_evals']:.0f} | {s['wall_time']:.1f} |")
    return "\n".join(lines)


def plot_intervals(rows, dataset, path, ncols: int = 3):
    """90 % predictive intervals vs truth on the test split (lowest seed, one panel per method, ``ncols`` per row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rs = [r for r in rows if r["dataset"] == dataset and r["seed"] == min(x["seed"] for x in rows)
          and r.get("predictions") is not None]
    if not rs:
        return
    ncols = min(ncols, len(rs))
    nrows = -(-len(rs) // ncols)
    with plt.rc_context({"font.size": 11}):
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols, 3.6 * nrows), sharey=True, squeeze=False)
        for ax, r in zip(axes.flat, rs):
            p = r["predictions"]
            order = np.argsort(p["mean"])
            k = np.arange(order.size)
            ax.fill_between(k, p["lower_90"][order], p["upper_90"][order], color="C0", alpha=0.3, lw=0,
                            label="90 % predictive interval")
            ax.plot(k, p["mean"][order], color="C0", lw=1.2, label="predictive mean")
            ax.scatter(k, p["y"][order], s=3, color="k", label="test target y")
            ax.set_title(f"{r['method']}: LPPD {r['lppd']:.2f}, 90 % coverage {r['coverage_90']:.2f}")
            ax.set_xlabel("test point (sorted by predictive mean)")
            ax.grid(True, alpha=0.3)
        for ax in axes.flat[len(rs):]:
            ax.set_visible(False)
        for row in axes:
            row[0].set_ylabel("y (standardised on the training split)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.0))
        fig.suptitle(f"UCI {dataset}, seed {rs[0]['seed']}: 90 % predictive intervals on the test split")
        fig.tight_layout(rect=(0, 0.05, 1, 1))
        fig.savefig(path, dpi=110)
        plt.close(fig)


def plot_cost(rows, path):
    """Test LPPD against gradient evaluations per member, one point per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({r["dataset"] for r in rows})
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.0 * len(datasets), 3.2), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        for i, m in enumerate(ALL_METHODS):
            rs = [r for r in rows if r["dataset"] == ds and r["method"] == m]
            if rs:
                ax.scatter([r["grad_evals"] for r in rs], [r["lppd"] for r in rs], color=f"C{i}", label=m, s=18)
        ax.set_xscale("log")
        ax.set_xlabel("gradient evaluations per member (full-data equivalents)")
        ax.set_ylabel("test LPPD")
        ax.set_title(ds)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
