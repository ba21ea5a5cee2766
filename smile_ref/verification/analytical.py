"""The SMILE paper's analytical bias benchmark (Sommer et al. 2026, arXiv 2602.06500, Sec. 6.1).

:func:`run_benchmark` runs every (target, noise, sampler, step size) cell of a
configuration with :func:`smile_ref.run_chains` and returns plain-Python
results; ``validation/analytical_bias.py`` is the command-line front end
(tables, plots, atomic writes).

Setting (Sommer et al. 2026, Sec. 6.1)
--------------------------------------
Targets (d = 10): the ill-conditioned Gaussian ``N(0, Q diag(c^2) Q^T)``,
``c = logspace(-1, 1, 10)`` (``"icg"``), Neal's funnel with ``theta ~ N(0, 3^2)``
(``"funnel"``) and the banana / Rosenbrock target (``"rosenbrock"``, chains start at
its ``paper_initial_point`` ``(1,..,1,2,..,2)`` with ``init="zero"``).

Gradient noise :class:`smile_ref.gradients.AdditiveNoise`: ``g_hat = grad log pi + xi``.
The paper's mini-batch log-density ``log pi(x) + sum_{i in B} y_i . x`` with
``b = 256`` unit-scale data points has ``Cov[xi] = 256 C_y`` (1 - b/N ~ 1); we draw
the CLT version ``xi ~ 256 C_y`` directly (``noise_batch = 256``), with ``C_y``:

* ``"iso"``: ``I``; ``"aniso"``: ``diag(c^2)``; ``"corr"``: the ICG covariance
  ``Q diag(c^2) Q^T`` (used for all three targets, as in the paper);
* ``"spatial"``: the correlated term times ``f(x) = exp(-x_2 / ell)`` (zero-based
  coordinate 2; ``ell`` = 6.5 ICG, 9 funnel, 1.414 Rosenbrock), with
  ``spatial_mode="potential"``: ``g_hat`` is the autodiff gradient of the tilted
  log-density as in the paper's code;
* ``"laplace"``, ``"student_t"`` (``df``, default 5), ``"lognormal"`` (``sigma``,
  default 0.5): non-Gaussian ``xi = L z`` with unit-variance ``z``, same
  covariance as ``"aniso"`` (``256 diag(c^2)``).

``scaling="fixed_eps_sigma"`` replaces ``Sigma`` by ``Sigma eps_ref / eps``: the
continuous-time noise strength ``eps Sigma / (d-1)^2`` of SG-MCLMC
(``docs/derivations/sg-mclmc-continuous-time.md``) is then the same at every step size, so
``eps -> 0`` is a true continuous-time limit.  With the paper's ``"fixed_sigma"``,
``eps -> 0`` is *also* a weak-noise limit.

Samplers: ``"smile"`` / ``"psmile"`` with ``tuner=None`` (SMILE-naive / pSMILE-naive,
McLachlan, no refresh), ``"sgld"``, ``"sghmc"`` (``alpha = 0.01``, ``beta_hat = 0``).

Metric (Sec. 6.1): ``b^2 = (1/d) sum_i (Ehat[x_i^2] - E[x_i^2])^2 / Var[x_i^2]``
per replicate by :func:`smile_ref.diagnostics.bias_metric_se`; reported: the mean
over replicates and its standard error ``sd / sqrt(R)`` across replicates.
Replicates are disjoint groups of chains of one run (every chain draws its own
noise, so the groups are independent; one run is cheaper than R runs because the
cost is per-step Python overhead).

Theory (SGLD, SGHMC): on ``"icg"`` with any non-spatial noise the recursions are linear, so
their exact stationary second moments follow from a discrete Lyapunov equation
(:func:`smile_ref.theory.sgld.stationary_cov`, :func:`smile_ref.theory.sghmc.stationary_cov`): the
noise-induced "hot" bias ``~ h Sigma / 2`` (SGLD) and ``~ eta Sigma / (2 alpha)`` (SGHMC,
``beta_hat = 0``), valid once the chains have converged.

Theory (SMILE): for ``"icg"`` with Gaussian ``iso``/``aniso``/``corr`` noise,
:func:`smile_ref.theory.sg_mclmc_bias.predicted_second_moments` (SMILE) and
:func:`~smile_ref.theory.sg_mclmc_bias.preconditioned_second_moments` (pSMILE, ideal
diagonal preconditioner) with ``regime="overdamped"`` give ``E[x x^T]``, turned into
``b^2_th = (1/d) sum_i (C_ii - Sigma_t,ii)^2 / (2 Sigma_t,ii^2)``.  The overdamped
limit needs ``r = rate_axis_min sigma_min(Sigma_t) >> 1`` (the slowest per-axis velocity
decorrelation rate times the smallest target scale,
:func:`~smile_ref.theory.sg_mclmc_bias.regime_numbers`); ``r`` is
recorded with each cell (for the paper's setting ``r < 0.01``: the regime does not
apply and the curve is shown for reference only).  The overdamped prediction does
not depend on ``eps`` (checked: identical at eps = 0.01 and 0.1); it is slow
(~1-2 min per covariance), so values are cached in ``analytical_theory.json``.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
import warnings
from concurrent.futures import as_completed

import numpy as np

from smile_ref import gradients, targets
from smile_ref.diagnostics import bias_metric_se
from smile_ref.errors import CorruptFileError, RunHealthWarning
from smile_ref.io import atomic_write_json, read_json
from smile_ref.run import run_chains
from smile_ref.theory.sg_mclmc_bias import predicted_second_moments, preconditioned_second_moments, regime_numbers

__all__ = ["TARGETS", "NOISES", "SAMPLERS", "QUICK_CONFIG", "FULL_CONFIG", "make_target", "noise_covariance",
           "make_gradient", "theory_b2", "run_cell", "run_benchmark"]

TARGETS = ("icg", "funnel", "rosenbrock")
NOISES = ("iso", "aniso", "corr", "spatial", "laplace", "student_t", "lognormal")
SAMPLERS = ("smile", "psmile", "sgld", "sghmc")
SPATIAL_LENGTH = {"icg": 6.5, "funnel": 9.0, "rosenbrock": 1.414}
SAMPLER_OPTIONS = {"smile": {"tuner": None}, "psmile": {"tuner": None}, "sgld": {},
                   "sghmc": {"alpha": 0.01, "beta_hat": 0.0}}
DIM = 10
THEORY_CACHE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analytical_theory.json")

_DEFAULTS = dict(targets=["icg"], noises=["iso", "aniso"], samplers=["smile", "psmile"],
                 step_sizes={"smile": [1e-2], "psmile": [1e-2], "sgld": [1e-4], "sghmc": [1e-2]},
                 step_sizes_by_target={}, scaling="fixed_sigma", eps_ref=1e-2, noise_batch=256,
                 n_replicates=2, chains_per_replicate=32, n_steps=2000, burn_in=1000, thinning=10,
                 init="zero", icg_scales=[0.1, 10.0], seed=0, workers=1, df=5.0, lognormal_sigma=0.5, theory=True, progress=True,
                 backend="numpy", dtype="float64", device=None)  # backend/dtype/device: passed to run_chains

# quick: the ICG family with scales (1, 1) (= N(0, I) in d = 10), which mixes in ~10^3 steps; the
# paper's ICG (scales 0.1..10) needs >~10^5 SMILE steps at this noise level (one relaxation time of its
# widest direction ~ 10^4 steps), far beyond a one-minute budget.
QUICK_CONFIG = dict(_DEFAULTS, noises=["iso", "aniso", "corr"], samplers=["smile", "psmile", "sgld"],
                    step_sizes={"smile": [1e-2, 3e-2, 1e-1], "psmile": [1e-2, 3e-2, 1e-1],
                                "sgld": [1e-4, 1e-3, 1e-2]},
                    icg_scales=[1.0, 1.0], n_replicates=4, chains_per_replicate=32, n_steps=2000, burn_in=500,
                    init="exact", workers=2)

FULL_CONFIG = dict(_DEFAULTS, targets=list(TARGETS), noises=list(NOISES), samplers=list(SAMPLERS),
                   step_sizes={"smile": list(np.logspace(-3, -1, 5)), "psmile": list(np.logspace(-3, -1, 5)),
                               "sgld": list(np.logspace(-6, -4, 5)), "sghmc": list(np.logspace(-3, -1, 5))},
                   step_sizes_by_target={"rosenbrock": {"smile": list(np.logspace(-5, -3, 5)),
                                                        "psmile": list(np.logspace(-5, -3, 5))}},
                   n_replicates=4, chains_per_replicate=32, n_steps=40000, burn_in=20000, init="zero",
                   workers=2)


def make_target(name: str, icg_scales=(0.1, 10.0)):
    """``"icg"`` (seed 0; ``icg_scales = (c_min, c_max)``, paper (0.1, 10)), ``"funnel"`` or ``"rosenbrock"``, d = 10."""
    if name == "icg":
        return targets.ill_conditioned_gaussian(dim=DIM, seed=0, c_min=float(icg_scales[0]), c_max=float(icg_scales[1]))
    if name == "funnel":
        return targets.Funnel(dim=DIM)
    if name == "rosenbrock":
        return targets.Rosenbrock(dim=DIM)
    raise ValueError(f"target must be one of {TARGETS}, got {name!r}")


def noise_covariance(noise: str, noise_batch: float = 256.0) -> np.ndarray:
    """``Cov[xi] = noise_batch * C_y`` of a noise structure (``(d, d)`` host array; ``C_y`` as in the paper)."""
    c = np.logspace(-1, 1, DIM)
    if noise == "iso":
        cy = np.eye(DIM)
    elif noise in ("aniso", "laplace", "student_t", "lognormal"):
        cy = np.diag(c**2)
    elif noise in ("corr", "spatial"):
        cy = make_target("icg").cov  # the paper's ICG covariance, whatever the target
    else:
        raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")
    return float(noise_batch) * np.asarray(cy, dtype=np.float64)


def make_gradient(target, target_name: str, noise: str, cov, df=5.0, lognormal_sigma=0.5):
    """The :class:`~smile_ref.gradients.AdditiveNoise` estimator of one noise structure."""
    if noise in ("iso", "aniso", "corr"):
        return gradients.AdditiveNoise(target, cov)
    if noise == "spatial":
        return gradients.AdditiveNoise(target, cov, spatial=gradients.exp_spatial(2, SPATIAL_LENGTH[target_name]),
                                       spatial_mode="potential")
    if noise == "laplace":
        return gradients.AdditiveNoise(target, cov, distribution="laplace")
    if noise == "student_t":
        return gradients.AdditiveNoise(target, cov, distribution="student_t", df=df)
    if noise == "lognormal":
        return gradients.AdditiveNoise(target, cov, distribution="lognormal", sigma=lognormal_sigma)
    raise ValueError(f"noise must be one of {NOISES}, got {noise!r}")


def _b2_from_diag(m2, target):
    m2 = np.asarray(m2, dtype=np.float64)
    return float(np.mean((m2 - target.second_moment) ** 2 / target.second_moment_var))


def theory_b2(target_name, noise, sampler, eps, cov, *, icg_scales=(0.1, 10.0), compute=False):
    """Overdamped-limit prediction ``(b2_th, r)`` or ``(None, r)`` where no theory applies / is cached.

    ``r = regime_numbers(Sigma_t, cov, eps)["rate_sigma_min"]`` (overdamped regime needs ``r >> 1``).
    Isotropic Gaussian noise: ``b2_th = 0`` (continuous time; discretisation not included).
    """
    if target_name == "icg" and sampler in ("sgld", "sghmc") and noise != "spatial":
        return _linear_theory_b2(sampler, eps, cov, make_target("icg", icg_scales)), None
    if target_name != "icg" or sampler not in ("smile", "psmile") or noise not in ("iso", "aniso", "corr"):
        return None, None
    target = make_target("icg", icg_scales)
    r = float(regime_numbers(target.cov, cov, eps)["rate_sigma_min"])
    if noise == "iso":
        return 0.0, r
    digest = hashlib.sha1(np.ascontiguousarray(np.concatenate([(cov / np.trace(cov)).ravel(), target.cov.ravel()]))
                          .round(12).tobytes()).hexdigest()[:12]
    key = f"{noise}:{sampler}:{digest}"
    cache = {}
    if os.path.exists(THEORY_CACHE):
        try:
            cache = read_json(THEORY_CACHE, "theory cache")
        except CorruptFileError:  # a damaged cache is recomputed, not trusted
            cache = {}
    if key not in cache:
        if not compute:
            return None, r
        fn = predicted_second_moments if sampler == "smile" else preconditioned_second_moments
        cache[key] = np.diag(fn(target.cov, cov, eps, regime="overdamped")).tolist()
        atomic_write_json(THEORY_CACHE, cache, indent=1, sort_keys=False)
    return _b2_from_diag(cache[key], target), r


def _linear_theory_b2(sampler, eps, cov, target):
    """Exact stationary b^2 of SGLD / SGHMC on a Gaussian target (linear recursions; any noise law).

    SGLD: ``S = (I - hP) S (I - hP)^T + h^2 cov + 2h I`` (:func:`smile_ref.theory.sgld.stationary_cov`);
    SGHMC (alpha = 0.01, beta_hat = 0): :func:`smile_ref.theory.sghmc.stationary_cov`.  Only the noise
    covariance enters second moments.  ``None`` where the recursion is unstable.
    """
    P = np.linalg.inv(target.cov)
    try:
        if sampler == "sgld":
            from smile_ref.theory.sgld import stationary_cov

            S = stationary_cov(P, eps, cov)
        else:
            from smile_ref.theory.sghmc import stationary_cov

            S = stationary_cov(P, eps, SAMPLER_OPTIONS["sghmc"]["alpha"], SAMPLER_OPTIONS["sghmc"]["beta_hat"],
                               cov)[:DIM, :DIM]
    except ValueError:
        return None
    return _b2_from_diag(np.diag(S), target)


def _seed(config, *parts) -> int:
    h = hashlib.sha256(json.dumps([config["seed"], *parts]).encode()).hexdigest()
    return int(h[:8], 16)


def run_cell(config, target_name, noise, sampler, eps) -> dict:
    """One (target, noise, sampler, step size) cell: a run of ``R * chains_per_replicate`` chains."""
    t0 = time.perf_counter()
    scales = config["icg_scales"]
    target = make_target(target_name, scales)
    cov = noise_covariance(noise, config["noise_batch"])
    if config["scaling"] == "fixed_eps_sigma":
        cov = cov * (config["eps_ref"] / eps)
    elif config["scaling"] != "fixed_sigma":
        raise ValueError(f"scaling must be 'fixed_sigma' or 'fixed_eps_sigma', got {config['scaling']!r}")
    grad = make_gradient(target, target_name, noise, cov, config["df"], config["lognormal_sigma"])
    R, m = int(config["n_replicates"]), int(config["chains_per_replicate"])
    n = R * m
    seed = _seed(config, target_name, noise, sampler, float(eps), config["scaling"])
    if config["init"] == "zero":
        x0 = np.zeros((n, DIM))
        if target_name == "rosenbrock":
            x0 = np.tile(target.paper_initial_point, (n, 1))
    elif config["init"] == "exact":
        x0 = target.exact_sample(np.random.default_rng(seed + 1), n)
    else:
        raise ValueError(f"init must be 'zero' or 'exact', got {config['init']!r}")
    with warnings.catch_warnings():  # the benchmark sweeps step sizes on purpose up to large energy errors
        warnings.simplefilter("ignore", RunHealthWarning)
        res = run_chains(sampler, target, n_chains=n, n_steps=int(config["n_steps"]),
                         burn_in=int(config["burn_in"]), thinning=int(config["thinning"]), seed=seed,
                         gradient=grad, step_size=float(eps), initial_position=x0, progress=False,
                         backend=config.get("backend", "numpy"), dtype=config.get("dtype", "float64"),
                         device=config.get("device"), **SAMPLER_OPTIONS[sampler])
    s = res.samples
    finite = np.all(np.isfinite(s), axis=(1, 2))
    reps = []
    for k in range(R):
        grp = s[k * m:(k + 1) * m]
        grp = grp[np.all(np.isfinite(grp), axis=(1, 2))]
        if grp.shape[0] == 0:
            reps.append(dict(b2=math.nan, se=math.nan, noise_mean=math.nan, noise_sd=math.nan, m2=[math.nan] * DIM))
            continue
        bm = bias_metric_se(grp, target.second_moment, target.second_moment_var)
        reps.append({k2: float(getattr(bm, k2)) for k2 in ("b2", "se", "noise_mean", "noise_sd")})
        reps[-1]["m2"] = np.mean(grp**2, axis=(0, 1)).tolist()  # Ehat[x_i^2] of this replicate
    b2 = np.array([r["b2"] for r in reps])
    ok = np.isfinite(b2)
    mean = float(np.mean(b2[ok])) if ok.any() else math.nan
    se = float(np.std(b2[ok], ddof=1) / math.sqrt(ok.sum())) if ok.sum() > 1 else math.nan
    pooled = bias_metric_se(s[finite], target.second_moment, target.second_moment_var) if finite.any() else None
    th, r = (None, None)
    if config.get("theory", True) and config["scaling"] == "fixed_sigma":
        th, r = theory_b2(target_name, noise, sampler, eps, cov, icg_scales=scales)
    return dict(target=target_name, noise=noise, sampler=sampler, step_size=float(eps), scaling=config["scaling"],
                noise_cov_trace=float(np.trace(cov)), second_moment=np.asarray(target.second_moment).tolist(),
                second_moment_var=np.asarray(target.second_moment_var).tolist(), b2_mean=mean, b2_se=se, replicates=reps,
                noise_mean=float(np.mean([r_["noise_mean"] for r_ in reps])),
                b2_pooled=None if pooled is None else float(pooled.b2),
                b2_pooled_se=None if pooled is None else float(pooled.se),
                noise_mean_pooled=None if pooled is None else float(pooled.noise_mean),
                n_rejected=int(res.n_rejected), n_nonfinite_chains=int((~finite).sum()),
                theory_b2=th, overdamped_ratio=r, wall_s=time.perf_counter() - t0)


def _cells(config):
    for tname in config["targets"]:
        for noise in config["noises"]:
            for sampler in config["samplers"]:
                grid = config.get("step_sizes_by_target", {}).get(tname, {}).get(sampler, config["step_sizes"][sampler])
                for eps in grid:
                    yield tname, noise, sampler, float(eps)


def _validate(config):
    cfg = dict(_DEFAULTS)
    unknown = set(config) - set(cfg)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; allowed: {sorted(cfg)}")
    cfg.update(config)
    for key, allowed in (("targets", TARGETS), ("noises", NOISES), ("samplers", SAMPLERS)):
        bad = [v for v in cfg[key] if v not in allowed]
        if bad:
            raise ValueError(f"config[{key!r}] has unknown entries {bad}; allowed: {allowed}")
    if int(cfg["n_replicates"]) < 2:
        raise ValueError("n_replicates must be >= 2 (the error bars are the SE across replicates)")
    return cfg


def run_benchmark(config: dict, on_record=None, executor=None) -> dict:
    """Run every cell of ``config`` (keys: see ``_DEFAULTS``; missing keys take defaults).

    Returns ``{"config": ..., "records": [cell dicts], "runtime_s": float}``; each
    record holds ``target, noise, sampler, step_size, scaling, b2_mean, b2_se``
    (mean and SE across replicates), the exact ``second_moment`` and
    ``second_moment_var``, per-replicate ``replicates`` (b2, its within-run SE
    (batch means; it underestimates when chains are shorter than a few
    relaxation times), the batch-means pure-noise level ``noise_mean`` and
    ``noise_sd``, and ``m2`` = Ehat[x_i^2]), pooled
    values, rejection counts, ``theory_b2`` and ``overdamped_ratio``.
    ``on_record(records)``, if given, is called after every finished cell (for
    incremental output), with the finished records in cell order.

    ``executor`` says where the cells run, one task per cell: ``"serial"`` (this process),
    ``"process"``, ``"dask"``, a Dask scheduler address (``"dask://HOST:PORT"``), a
    ``distributed.Client`` or any :class:`concurrent.futures.Executor`
    (:func:`smile_ref.ensembles.executors.resolve_executor`; pools created here get
    ``config["workers"]`` workers).  ``None`` keeps the ``workers`` rule: serial for
    ``workers <= 1``, else a process pool.  Every cell is seeded by its own parameters, so the
    records are the same wherever the cells run (all but ``wall_s``).
    """
    from smile_ref.ensembles.executors import resolve_executor

    cfg = _validate(config)
    cells = list(_cells(cfg))
    t0 = time.perf_counter()
    records = []

    def report(rec, i):
        if cfg["progress"]:
            th = "" if rec["theory_b2"] is None else f" theory={rec['theory_b2']:.3g}"
            print(f"[{i}/{len(cells)}] {rec['target']:10s} {rec['noise']:9s} {rec['sampler']:6s} "
                  f"eps={rec['step_size']:.3g}: b2={rec['b2_mean']:.4g} +- {rec['b2_se']:.2g} "
                  f"(noise {rec['noise_mean']:.2g}){th} [{rec['wall_s']:.1f}s]", flush=True)

    workers = int(cfg["workers"])
    if executor is None:
        executor = "serial" if workers <= 1 else "process"
    pool, close = resolve_executor(executor, n_workers=max(workers, 1))
    try:
        if pool is None:
            for i, cell in enumerate(cells, 1):
                records.append(run_cell(cfg, *cell))
                report(records[-1], i)
                if on_record is not None:
                    on_record(records)
        else:
            futs = {pool.submit(run_cell, cfg, *cell): k for k, cell in enumerate(cells)}
            done = {}
            for i, fut in enumerate(as_completed(futs), 1):
                done[futs[fut]] = fut.result()
                report(done[futs[fut]], i)
                if on_record is not None:
                    on_record([done[k] for k in sorted(done)])
            records = [done[k] for k in sorted(done)]
    finally:
        close()
    return {"config": json.loads(json.dumps(cfg, default=float)), "records": records,
            "runtime_s": time.perf_counter() - t0}
