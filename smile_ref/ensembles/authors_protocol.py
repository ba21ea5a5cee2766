"""The SMILE authors' UCI protocol (their public code and ``uci_benchmarks`` configurations), cell by cell.

What differs from smile_ref's own protocol (``smile_ref.verification.uci``; rows of ``docs/conventions.md``):

* **data**: the authors' splits for seeds 1-3 (shipped indices), features and target standardised with
  the statistics of all rows, and only full test batches of 256 scored
  (:func:`smile_ref.data.load_uci_authors`);
* **deep ensemble**: AdamW (lr 1e-2, wd 5e-3, batch 64, <= 200 epochs, patience 10) on the mean squared
  error, i.e. ``sigma`` fixed at 1 (``pretrain_fix_log_sigma=0``), each epoch's incomplete last batch
  skipped; the chains start at the members' weights with ``log sigma = 0``;
* **gradient estimator**: ``MiniBatch(target, 256, scale="floor", schedule="authors")``;
* **samplers** (``preset="authors"``): SMILE-naive (``"smile"``, ``tuner=None``), pSMILE-naive (``"psmile"``,
  ``tuner=None``; their ``noisysmile`` config with ``reset_prob=1``, ``adaption_prob=0`` never adapts or
  resets), each over the step sizes ``eps`` in {1e-2, 1e-3, 1e-4}, and adaptive SGHMC
  (``"sghmc_adaptive"``, their ``adasghmc``: ``eps = 1e-3``, ``mdecay = 0.05``, i.e. ``step_size = eps^2``);
* **schedule**: step-wise (50 000 warm-up + 10 000 sampling steps, thinning 10) or epoch-wise (their
  ``epoch_wise_sampling``: every count multiplied by the ``floor(N_train / 256)`` batches of an epoch, so
  a "step" of the configuration is an epoch of mini-batch steps);
* **deep-ensemble metric**: the member spread as predictive scale
  (:func:`~smile_ref.ensembles.predict.member_spread_metrics`).

``psmile_carry`` is pSMILE-naive with the running noise mean carried between steps
(``preconditioner_options={"carry_mean": True}``) instead of the authors' re-initialisation (erratum P1).

Every cell is one :func:`~smile_ref.ensembles.run_ensemble` call under
``out_dir/<data set>/seed<k>/<method>/<mode>_eps<eps>/`` (resumable); the deep ensemble is shared per data set
and seed (``out_dir/<data set>/seed<k>/pretrain.npz``).
"""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..data.authors_splits import AUTHORS_SEEDS, load_uci_authors
from ..errors import RunHealthWarning
from ..io import read_npz
from ..targets import MLP
from .config import EnsembleConfig
from .pipeline import run_ensemble
from .predict import member_spread_metrics

__all__ = ["AUTHORS_METHODS", "AUTHORS_EPS_GRID", "AUTHORS_MODES", "authors_config", "run_authors_uci",
           "summarise_cells", "cells_table"]

#: ``method -> (registered sampler, options)`` of the authors' UCI configurations.
AUTHORS_METHODS = {
    "smile": ("smile", {"preset": "authors", "tuner": None}),
    "psmile": ("psmile", {"preset": "authors", "tuner": None}),
    "psmile_carry": ("psmile", {"preset": "authors", "tuner": None, "preconditioner_options": {"carry_mean": True}}),
    "sghmc_adaptive": ("sghmc_adaptive", {"preset": "authors", "alpha": 0.05}),
}
#: The authors' search grid of (their) step size eps.
AUTHORS_EPS_GRID = (1e-2, 1e-3, 1e-4)
AUTHORS_MODES = ("step", "epoch")
_KEYS = ("lppd", "rmse", "coverage_80", "coverage_90", "coverage_95")


def authors_config(base: EnsembleConfig, n_train: int, mode: str = "step") -> EnsembleConfig:
    """``base`` with the authors' pre-training, mini-batch options and (``mode="epoch"``) epoch-wise counts."""
    if mode not in AUTHORS_MODES:
        raise ValueError(f"mode must be one of {AUTHORS_MODES}, got {mode!r}")
    cfg = replace(base, minibatch_options={"scale": "floor", "schedule": "authors"}, pretrain_drop_last=True,
                  pretrain_fix_log_sigma=0.0)
    if mode == "epoch":
        k = max(int(n_train) // min(cfg.batch_size, int(n_train)), 1)
        cfg = replace(cfg, n_warmup=cfg.n_warmup * k, n_samples=cfg.n_samples * k, thinning=cfg.thinning * k)
    return cfg


def _check_list(values, allowed, name):
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"{name}: unknown value(s) {bad}; expected some of {list(allowed)}")
    return values


def _de_row(split, name, seed, pretrain_path, model) -> dict:
    z = read_npz(pretrain_path, "pretrain file")
    target = MLP(split.X_train, split.y_train, **model)
    params = np.asarray(z["params"], dtype=np.float64)
    meta = json.loads(str(z["meta"]))
    m = member_spread_metrics(target, params, split.X_test, split.y_test)
    mv = member_spread_metrics(target, params, split.X_val, split.y_val)
    row = {"dataset": name, "seed": int(seed), "method": "de", "mode": "-", "eps": None, "val_lppd": mv["lppd"],
           "grad_evals": float(meta["n_gradient_evals"]), "wall_time": float(meta["wall_time"]),
           "n_test": int(split.X_test.shape[0]), "n_rejected": 0}
    row.update({k: m[k] for k in _KEYS})
    return row


def run_authors_uci(datasets=("airfoil", "energy"), seeds=(1,), methods=("de", "smile", "psmile", "sghmc_adaptive"),
                    modes=("step",), eps_grid=AUTHORS_EPS_GRID, config: EnsembleConfig | None = None,
                    out_dir="validation/results/uci_authors", backend: str = "numpy", dtype: str = "float64",
                    progress=None, sghmc_eps=(1e-3,), log=print) -> list[dict]:
    """Run every (data set, seed, method, mode, eps) cell of the authors' protocol; one row per cell.

    ``sghmc_eps``: the eps values of ``"sghmc_adaptive"`` (their configuration: 1e-3; pass ``eps_grid`` for the
    search).  ``"de"`` is evaluated from the shared pre-training (trained by the first sampled cell, or alone).
    Rows: ``lppd``, ``rmse``, ``coverage_*`` on the truncated test split, ``val_lppd``, cost per member in
    full-data gradient equivalents, the recorded wall time (pre-training + sampling + prediction) and
    ``n_rejected``.
    """
    from ..data.uci import UCI_DATASETS

    datasets = _check_list(datasets, UCI_DATASETS, "datasets")
    seeds = _check_list(seeds, AUTHORS_SEEDS, "seeds")
    methods = _check_list(methods, ("de",) + tuple(AUTHORS_METHODS), "methods")
    modes = _check_list(modes, AUTHORS_MODES, "modes")
    for e in list(eps_grid) + list(sghmc_eps):
        if isinstance(e, bool) or not isinstance(e, (int, float)) or not (math.isfinite(e) and e > 0):
            raise ValueError(f"step sizes must be positive finite numbers, got {e!r}")
    config = EnsembleConfig.paper() if config is None else config
    model = {"hidden": [16, 16, 16], "activation": "relu", "task": "regression", "prior_scale": 1.0}
    rows = []
    for name in datasets:
        for seed in seeds:
            split = load_uci_authors(name, int(seed))
            base = Path(out_dir) / name / f"seed{seed}"
            pre = base / "pretrain.npz"
            cell_rows = []
            for method in methods:
                if method == "de":
                    continue
                sampler, opts = AUTHORS_METHODS[method]
                grid = sghmc_eps if sampler == "sghmc_adaptive" else eps_grid
                for mode in modes:
                    for eps in grid:
                        step = float(eps) ** 2 if sampler == "sghmc_adaptive" else float(eps)
                        cfg = replace(authors_config(config, split.X_train.shape[0], mode), step_size=step,
                                      sampler_options=dict(opts))
                        t0 = time.perf_counter()
                        with warnings.catch_warnings(record=True) as caught:
                            warnings.simplefilter("always", RunHealthWarning)
                            res = run_ensemble(split, sampler, config=cfg, seed=int(seed), out_dir=base / method /
                                               f"{mode}_eps{eps:g}", pretrain_path=pre, backend=backend, dtype=dtype,
                                               progress=progress)
                        unhealthy = {int(x["member"]): list(x["health"]) for x in res.members if x.get("health")}
                        for w in caught:
                            if not issubclass(w.category, RunHealthWarning):
                                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
                        sampling = sum({float(x["wall_time"]) for x in res.members})
                        m, mv = res.metrics["sampled"], res.metrics["sampled_val"]
                        row = {"dataset": name, "seed": int(seed), "method": method, "mode": mode, "eps": float(eps),
                               "val_lppd": mv["lppd"], "grad_evals": res.n_gradient_evals["total"],
                               "wall_time": float(res.wall_time["pretrain"]) + sampling + float(res.wall_time["predict"]),
                               "sampling_time": sampling, "call_time": time.perf_counter() - t0,
                               "n_test": int(split.X_test.shape[0]), "n_samples": m["n_samples"],
                               "n_rejected": int(sum(x["n_rejected"] for x in res.members)),
                               "unhealthy_members": unhealthy, "de_sigma1_lppd": res.metrics["de"]["lppd"]}
                        row.update({k: m[k] for k in _KEYS})
                        cell_rows.append(row)
                        log(f"{name:11s} seed {seed} {method:14s} {mode:5s} eps {eps:<7g} LPPD {row['lppd']:8.4f}  "
                            f"RMSE {row['rmse']:.4f}  cov90 {row['coverage_90']:.3f}  {row['sampling_time']:7.1f} s")
            if "de" in methods:
                if not pre.exists():
                    run_ensemble(split, "de", config=authors_config(config, split.X_train.shape[0]), seed=int(seed),
                                 out_dir=base / "de", pretrain_path=pre, backend=backend, dtype=dtype, progress=progress)
                row = _de_row(split, name, seed, pre, model)
                cell_rows.insert(0, row)
                log(f"{name:11s} seed {seed} de (member spread)             LPPD {row['lppd']:8.4f}  "
                    f"RMSE {row['rmse']:.4f}  cov90 {row['coverage_90']:.3f}")
            rows.extend(cell_rows)
    return rows


def summarise_cells(rows) -> list[dict]:
    """Mean and standard error over seeds per (data set, method, mode, eps) cell, in first-seen order."""
    order, groups = [], {}
    for r in rows:
        key = (r["dataset"], r["method"], r["mode"], r["eps"])
        if key not in groups:
            order.append(key)
            groups[key] = []
        groups[key].append(r)
    out = []
    for key in order:
        rs = groups[key]
        s = dict(zip(("dataset", "method", "mode", "eps"), key), n_seeds=len(rs), n_test=rs[0]["n_test"])
        for k in _KEYS + ("val_lppd", "grad_evals", "wall_time"):
            v = np.array([r[k] for r in rs], dtype=float)
            s[k] = float(v.mean())
            s[k + "_se"] = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
        s["n_rejected"] = int(sum(r.get("n_rejected", 0) for r in rs))
        out.append(s)
    return out


def _pm(v, se, digits=3):
    return f"{v:.{digits}f}" + (f" ± {se:.{digits}f}" if se is not None else "")


def cells_table(summary) -> str:
    """Markdown table of :func:`summarise_cells` (mean ± SE over seeds where there are several)."""
    lines = ["| data set | method | schedule | ε | seeds | LPPD | RMSE | cov. 90 % | val. LPPD | grad. evals / member "
             "| wall time (s) |", "|" + "---|" * 11]
    for s in summary:
        eps = "—" if s["eps"] is None else f"{s['eps']:g}"
        lines.append(f"| {s['dataset']} | {s['method']} | {s['mode']} | {eps} | {s['n_seeds']} | "
                     f"{_pm(s['lppd'], s['lppd_se'])} | {_pm(s['rmse'], s['rmse_se'])} | "
                     f"{_pm(s['coverage_90'], s['coverage_90_se'], 2)} | {_pm(s['val_lppd'], s['val_lppd_se'])} | "
                     f"{s['grad_evals']:.0f} | {s['wall_time']:.0f} |")
    return "\n".join(lines)
