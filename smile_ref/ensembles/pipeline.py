"""SMILE ensembles for Bayesian neural networks: pre-train, sample per member, predict.

The pipeline of Sommer et al. (2026, Sec. 3.4 and Sec. 5; authors' ``src/training``):

1. **Deep ensemble.**  ``M`` networks trained with AdamW and early stopping on the validation
   split (:func:`~smile_ref.ensembles.pretrain.pretrain_ensemble`, all members in one batched
   evaluation).
2. **One chain per member.**  Each member's trained weights start one chain of any registered
   sampler: ``"smile"``, ``"psmile"``, ``"mclmc"`` (full batch, MILE's tuning schedule),
   ``"sgld"``, ``"psgld"``, ``"bnp_sgld"``, ``"sghmc"``; ``n_warmup`` steps of warm-up/tuning
   (discarded), then ``n_samples`` steps keeping every ``thinning``-th position.
3. **Prediction.**  The posterior predictive is the uniform mixture over all members and all
   retained draws (``S = M * n_samples // thinning`` parameter vectors):
   ``p(y | x, D) ~= (1/S) sum_s p(y | x, theta_s)``; the deep ensemble alone (``S = M``) is
   evaluated the same way.  Metrics: :mod:`smile_ref.ensembles.metrics`, on the standardised
   scale of the training split (as the paper reports them); ``rmse_original`` is in data units.

Execution
---------
By default all members run as chains of one vectorised :func:`smile_ref.run_chains` call (one
batched matmul per layer for all members).  With ``executor`` each member is a separate task:
``"process"`` (a local :class:`~concurrent.futures.ProcessPoolExecutor`), ``"dask"`` (a Dask
``LocalCluster``, or the scheduler at ``scheduler_address``; needs the ``dask`` extra), a running Dask
scheduler's address (``"dask://HOST:PORT"``, ``"tcp://HOST:PORT"``), a ``distributed.Client`` or any
:class:`concurrent.futures.Executor` instance (:func:`~smile_ref.ensembles.executors.resolve_executor`).  Random inputs are seeded per *group* of members
run together (``SeedSequence(seed, spawn_key=(1, *members))``), so a member's chain depends on
the seed and on whether it ran alone or in a group, never on scheduling order.

With ``out_dir`` every member's draws are written atomically as it finishes
(:class:`~smile_ref.ensembles.store.RunStore`), groups are checkpointed every
``config.checkpoint_every`` steps, and a re-run with the same arguments skips finished members and
resumes interrupted ones, so a crash loses at most ``checkpoint_every`` steps.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field

from pathlib import Path

import numpy as np

from ..backend import array_namespace, get_backend, to_numpy
from ..backend.validate import check_nonneg_int, check_positive_float
from ..errors import RunHealthWarning
from ..gradients import Exact, MiniBatch
from ..run import run_chains
from ..errors import CorruptFileError, ResumeMismatchError
from ..io import atomic_save_npz, check_writable, read_npz
from ..targets import MLP
from ..targets.mlp import check_hidden
from ..targets._digest import array_digest
from .config import EnsembleConfig, sampler_setup
from .executors import resolve_executor
from .pretrain import pretrain_ensemble
from .metrics import mixture_quantile
from .predict import ensemble_metrics, predict_params
from .store import RunStore

__all__ = ["run_ensemble", "EnsembleResult", "MemberTask", "sample_members"]


@dataclass
class EnsembleResult:
    """Metrics, cost and timing of one ensemble run.

    Attributes
    ----------
    metrics : dict
        ``{"de": {...}, "sampled": {...}}`` on the test split and ``{"de_val": ..., "sampled_val":
        ...}`` on the validation split (``"sampled*"`` absent for ``sampler="de"``); each a dict of
        :func:`~smile_ref.ensembles.metrics.regression_metrics` /
        :func:`~smile_ref.ensembles.metrics.classification_metrics`.
    n_gradient_evals : dict
        Per member, in full-data gradient equivalents: ``pretrain``, ``sampling`` and ``total``.
    wall_time : dict
        Seconds: ``pretrain``, ``sampling``, ``predict``.
    members : list of dict
        Per member: initial and final step size, guardrail rejections, draws kept, and ``health``:
        the problems :func:`smile_ref.run.health.run_health` found in the member's chain (``[]``:
        healthy).  The members' runs do not warn one by one; :func:`run_ensemble` emits one
        :class:`~smile_ref.errors.RunHealthWarning` listing the unhealthy members.
    predictions : dict or None
        Regression only: host arrays over (a seeded subset of at most 150 points of) the test split
        (standardised units, ``index`` into the test split) of the truth ``y``,
        the predictive mean ``mean`` and the central 90 % interval ``lower_90``/``upper_90`` of the
        final ensemble (the sampled one, or the deep ensemble for ``sampler="de"``).
    """

    sampler: str
    metrics: dict
    n_gradient_evals: dict
    wall_time: dict
    members: list = field(default_factory=list)
    config: dict = field(default_factory=dict)
    out_dir: str | None = None
    predictions: dict | None = None

    def to_arviz(self, *, var_names=None, var_name: str = "x", save_warmup: bool = True):
        """Members as chains of an ArviZ ``xarray.DataTree`` (needs the ``arviz`` extra).

        The draws are read from the member files under ``out_dir`` (the result itself holds
        metrics only), so the run must have been made with ``out_dir``.  Layout as
        :meth:`smile_ref.ChainResult.to_arviz`; the ``chain`` coordinate is the member index.
        """
        from ..run.arviz import ensemble_to_datatree

        return ensemble_to_datatree(self, var_names=var_names, var_name=var_name, save_warmup=save_warmup)

    def to_json(self) -> dict:
        return {"sampler": self.sampler, "metrics": self.metrics, "n_gradient_evals": self.n_gradient_evals,
                "wall_time": self.wall_time, "members": self.members, "config": self.config,
                "out_dir": self.out_dir}


@dataclass(frozen=True)
class MemberTask:
    """Everything a worker needs to sample a group of members (picklable: host arrays and names)."""

    sampler: str
    X: np.ndarray
    y: np.ndarray
    model: dict
    config: EnsembleConfig
    seed: int
    backend: str
    dtype: str
    out_dir: str | None
    progress: bool | None = False
    device: str | None = None


def _group_seed(seed: int, members) -> np.random.SeedSequence:
    return np.random.SeedSequence(int(seed), spawn_key=(1,) + tuple(int(m) for m in members))


def sample_members(task: MemberTask, members, init: np.ndarray) -> list[dict]:
    """Run one chain per member in ``members`` from ``init`` (len(members), dim) (host float64).

    Returns one dict per member with ``samples`` (n_draws, dim), ``info`` and ``meta``; with
    ``task.out_dir`` each member file is also written atomically (and the group resumed from its
    checkpoint if one exists).  Top-level so that process pools and Dask can pickle it.
    """
    members = tuple(int(m) for m in members)
    cfg = task.config
    target = MLP(task.X, task.y, **task.model)
    step, opts, full = sampler_setup(task.sampler, cfg)
    gradient = Exact(target) if full else MiniBatch(target, min(cfg.batch_size, target.n_data), **cfg.minibatch_options)
    store = RunStore(task.out_dir) if task.out_dir is not None else None
    ckpt = store.checkpoint_path(members) if store is not None else None
    bk = get_backend(task.backend, task.dtype, task.device)
    with warnings.catch_warnings():  # per-member health goes to meta["health"]; run_ensemble warns once
        warnings.simplefilter("ignore", RunHealthWarning)
        res = run_chains(task.sampler, target, n_chains=len(members), n_steps=cfg.n_samples, burn_in=cfg.n_warmup,
                         thinning=cfg.thinning, seed=_group_seed(task.seed, members), gradient=gradient,
                         step_size=step, backend=bk, initial_position=bk.asarray(np.asarray(init, dtype=np.float64)),
                         progress=task.progress, checkpoint=ckpt,
                         checkpoint_every=cfg.checkpoint_every if store else None, resume=store is not None, **opts)
    out = []
    for j, m in enumerate(members):
        info = {k: v[:, j] for k, v in res.info.items()}
        steps = res.stats.get("sampling", "step_size_last")  # the step size of the last step (every step counted)
        meta = {"member": m, "group": list(members), "sampler": task.sampler, "n_gradient_evals": res.n_gradient_evals,
                "wall_time": res.wall_time, "group_size": len(members), "initial_step_size": step,
                "final_step_size": float(steps[j]) if steps is not None else step,
                "n_rejected": int(res.stats.total("rejected")[j]) if res.stats.total("rejected") is not None else 0,
                "n_draws": int(res.samples.shape[1]),
                "health": res.health.chain_problems(j) if res.health is not None else []}
        arrays = {"samples": res.samples[j], "info_steps": res.info_steps}  # step of each info row
        arrays.update({f"info/{k}": v for k, v in info.items()})
        if store is not None:
            store.save_member(m, arrays, meta)
        out.append({"samples": res.samples[j], "info": info, "meta": meta})
    if ckpt is not None and ckpt.exists():
        ckpt.unlink()
    return out


def _check_sampler_options(sampler, target, config, bk) -> None:
    """Construct ``sampler`` with the configured options (no init, no step); errors name ``sampler_options``."""
    from ..samplers import base as registry

    step, opts, full = sampler_setup(sampler, config)
    try:
        gradient = (Exact(target) if full else
                    MiniBatch(target, min(config.batch_size, target.n_data), **config.minibatch_options))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"EnsembleConfig.minibatch_options={config.minibatch_options!r} are not valid for "
                        f"MiniBatch: {exc}") from None
    try:
        registry.get(sampler)(target, gradient, bk, step_size=step, n_warmup=config.n_warmup, **opts)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"EnsembleConfig.sampler_options={config.sampler_options!r} are not valid for sampler "
                        f"{sampler!r}: {exc}") from None


def _warn_member_health(sampler: str, members_info: list[dict]) -> None:
    """One :class:`~smile_ref.errors.RunHealthWarning` listing the unhealthy members (``members[i]["health"]``)."""
    sick = [(row["member"], row["health"]) for row in members_info if row.get("health")]
    if sick:
        listed = "; ".join(f"member {m}: {', '.join(p)}" for m, p in sick[:8])
        more = f"; and {len(sick) - 8} more" if len(sick) > 8 else ""
        warnings.warn(f"ensemble ({sampler}): {len(sick)}/{len(members_info)} members unhealthy ({listed}{more}); "
                      "see EnsembleResult.members[i]['health'] and docs/run-health.md", RunHealthWarning,
                      stacklevel=3)


def _describe(sampler, config, seed, model, data, backend, dtype):
    setup = None
    if sampler != "de":  # the resolved defaults too, so that a changed default is not resumed silently
        step, opts, full = sampler_setup(sampler, config)
        setup = {"step_size": step, "options": opts, "full_batch": full}
    return {"sampler": sampler, "sampler_setup": setup, "config": config.to_dict(), "seed": int(seed), "model": model,
            "data": {"name": getattr(data, "name", ""), "task": data.task,
                     "train_sha256": array_digest(data.X_train, data.y_train),
                     "val_sha256": array_digest(data.X_val, data.y_val)},
            "backend": backend, "dtype": dtype}


def _pretrain_description(config, seed, model, data, backend, dtype) -> dict:
    keys = ("n_members", "pretrain_lr", "pretrain_weight_decay", "pretrain_batch_size", "pretrain_max_epochs",
            "pretrain_patience", "pretrain_drop_last", "pretrain_fix_log_sigma")
    d = _describe("de", config, seed, model, data, backend, dtype)
    d["config"] = {k: d["config"][k] for k in keys if k in d["config"]}  # the last two only when not default
    del d["sampler"], d["sampler_setup"]
    return json.loads(json.dumps(d, sort_keys=True, default=str))


def _pretrain(path, description, target, data, config, seed, backend, dtype, device, progress):
    """Deep-ensemble weights (M, dim) host float64 and their metadata; loaded from ``path`` when it
    holds a pre-training of the same description, trained (and saved atomically) otherwise."""
    if path is not None and Path(path).exists():
        z = read_npz(path, "pretrain file")
        try:
            meta = json.loads(str(z["meta"]))
            params = z["params"]
        except (KeyError, ValueError) as exc:
            raise CorruptFileError(f"pretrain file {os.fspath(path)!r} lacks its parameters or metadata "
                                   f"({type(exc).__name__}: {exc}); delete it to retrain") from None
        if meta.get("description") != description:
            raise ResumeMismatchError(f"pretrain file {os.fspath(path)!r} was written for a different model, data, "
                                      "seed or pre-training budget; delete it or use another path")
        if params.shape != (config.n_members, target.dim) or not np.all(np.isfinite(params)):
            raise CorruptFileError(f"pretrain file {os.fspath(path)!r}: 'params' has shape {params.shape} or "
                                   f"non-finite values, expected finite ({config.n_members}, {target.dim})")
        return params, meta
    pre = pretrain_ensemble(target, data.X_val, data.y_val, n_members=config.n_members, seed=int(seed),
                            learning_rate=config.pretrain_lr, weight_decay=config.pretrain_weight_decay,
                            batch_size=min(config.pretrain_batch_size, target.n_data),
                            max_epochs=config.pretrain_max_epochs, patience=config.pretrain_patience,
                            backend=backend, dtype=dtype, device=device, progress=progress,
                            drop_last=config.pretrain_drop_last, fix_log_sigma=config.pretrain_fix_log_sigma)
    params = np.asarray(to_numpy(pre.params), dtype=np.float64)
    meta = {"n_gradient_evals": float(np.mean(pre.n_gradient_evals)), "wall_time": float(pre.wall_time),
            "n_epochs": [int(e) for e in pre.n_epochs], "best_epoch": [int(e) for e in pre.best_epoch],
            "best_val_loss": [float(v) for v in pre.best_val_loss], "description": description}
    if path is not None:
        atomic_save_npz(path, {"params": params, "history/train_loss": np.asarray(pre.history["train_loss"]),
                               "history/val_loss": np.asarray(pre.history["val_loss"]),
                               "meta": np.asarray(json.dumps(meta, sort_keys=True, default=str))})
    return params, meta


def _interval_predictions(target, params_list, data, max_points: int = 150):
    """Predictive mean and central 90 % interval at (at most ``max_points``, a seeded random subset of) the test
    points, for plots; the interval needs a bisection over all S mixture components per point."""
    if target.task != "regression":
        return None
    n = data.X_test.shape[0]
    idx = np.sort(np.random.default_rng(0).permutation(n)[:max_points]) if n > max_points else np.arange(n)
    mean, log_sigma = predict_params(target, params_list, data.X_test[idx])
    xp = array_namespace(mean)
    bounds = mixture_quantile(mean, log_sigma, [0.05, 0.95])
    return {"index": idx, "y": np.asarray(data.y_test[idx], dtype=np.float64),
            "mean": to_numpy(xp.mean(mean, axis=0)), "lower_90": to_numpy(bounds[0, :]),
            "upper_90": to_numpy(bounds[1, :])}


def run_ensemble(data, sampler: str = "smile", *, config: EnsembleConfig | None = None, seed: int = 0,
                 hidden=(16, 16, 16), activation: str = "relu", prior_scale: float = 1.0,
                 backend: str = "numpy", dtype: str = "float64", device=None, out_dir=None, executor=None,
                 n_workers: int | None = None, scheduler_address: str | None = None,
                 pretrain_path=None, progress: bool | None = None) -> EnsembleResult:
    """Deep ensemble + one chain per member + predictive metrics (Sommer et al. 2026, Sec. 5).

    Parameters
    ----------
    data : smile_ref.data.DataSplit
        Standardised train/validation/test split (:func:`smile_ref.data.load_uci`,
        :func:`~smile_ref.data.load_sklearn` or :func:`~smile_ref.data.make_split`).
    sampler : str
        A registered sampler name (see :data:`~smile_ref.ensembles.config.SAMPLER_DEFAULTS`) or
        ``"de"`` for the deep ensemble alone.
    config : EnsembleConfig, optional
        Budgets; default :meth:`EnsembleConfig.paper`.
    seed : int
        Seeds the network initialisation, pre-training batches and every sampler draw.
    hidden, activation, prior_scale
        The :class:`~smile_ref.targets.MLP` (paper: 16-16-16, ReLU, N(0, 1) prior).
    backend, dtype : str
        Array library and precision (names, so that worker processes can rebuild them).
    device : optional
        Device of the backend (e.g. a CuPy device id, or ``"device1"`` of array_api_strict).
    out_dir : path, optional
        Write pre-training, per-member draws, checkpoints and metrics there; resume from it.
    executor : None, "process", "dask", scheduler address, distributed.Client or concurrent.futures.Executor
        ``None``: all members vectorised in this process; otherwise one member per task
        (:func:`~smile_ref.ensembles.executors.resolve_executor`), e.g. ``"dask://127.0.0.1:8786"``
        for the workers of a running Dask scheduler.
    n_workers, scheduler_address
        Pool size for ``"process"``/``"dask"``; Dask scheduler to connect to instead of a local
        cluster.
    pretrain_path : path, optional
        Where the deep ensemble is stored (default ``out_dir/pretrain.npz``); several samplers run
        on the same data and seed can share one pre-training this way (it is reused only if it was
        written for the same model, data, seed and pre-training budget).
    progress : bool, optional
        Progress bars (default: on for a terminal, off under ``CI``).

    Returns
    -------
    EnsembleResult
    """
    from ..data.splits import DataSplit

    if not isinstance(data, DataSplit):
        raise TypeError(f"data must be a smile_ref.data.DataSplit (e.g. load_uci('airfoil')), got {type(data).__name__}")
    config = EnsembleConfig.paper() if config is None else config
    if not isinstance(config, EnsembleConfig):
        raise TypeError(f"config must be an EnsembleConfig, got {type(config).__name__}")
    if not isinstance(sampler, str):
        raise TypeError(f"sampler must be a sampler name (str), got {sampler!r}")
    if sampler != "de":
        sampler_setup(sampler, config)  # validates the name early
    seed = check_nonneg_int(seed, "seed")
    model = {"hidden": list(check_hidden(hidden)), "activation": activation, "task": data.task,
             "prior_scale": check_positive_float(prior_scale, "prior_scale")}
    if data.task == "classification":
        model["n_classes"] = int(max(data.y_train.max(), data.y_val.max(), data.y_test.max())) + 1
    target = MLP(data.X_train, data.y_train, **model)
    if out_dir is not None:
        if not isinstance(out_dir, (str, os.PathLike)):
            raise TypeError(f"out_dir must be a path (str or os.PathLike), got {type(out_dir).__name__}")
        if os.path.exists(out_dir) and not os.path.isdir(out_dir):
            raise NotADirectoryError(f"out_dir={os.fspath(out_dir)!r} is a file, expected a directory")
    bk = get_backend(backend, dtype, device)
    if sampler != "de":
        # build the sampler once (cheap, no step) so that a typo in sampler_options fails before anything is
        # written to out_dir: a run.json recording the typo would lock out_dir against the corrected call
        _check_sampler_options(sampler, target, config, bk)
    if out_dir is not None:
        check_writable(os.path.join(out_dir, "run.json"), "out_dir")  # before pre-training, not after
    store = RunStore(out_dir) if out_dir is not None else None
    if store is not None:
        store.claim(_describe(sampler, config, seed, model, data, backend, dtype))

    t0 = time.perf_counter()
    if pretrain_path is None and store is not None:
        pretrain_path = store.pretrain_path()
    init, pre_meta = _pretrain(pretrain_path, _pretrain_description(config, seed, model, data, backend, dtype),
                               target, data, config, seed, backend, dtype, device, progress)
    t_pre = time.perf_counter() - t0
    t_pre = pre_meta.get("wall_time", t_pre)

    params_de = bk.asarray(init)
    tp = time.perf_counter()
    metrics = {"de": ensemble_metrics(target, [params_de], data.X_test, data.y_test),
               "de_val": ensemble_metrics(target, [params_de], data.X_val, data.y_val)}
    t_pred = time.perf_counter() - tp
    members_info: list[dict] = []
    t_sample = 0.0
    n_sampling = 0.0
    if sampler != "de":
        task = MemberTask(sampler, data.X_train, data.y_train, model, config, int(seed), backend, dtype,
                          None if out_dir is None else str(out_dir), progress if executor is None else False, device)
        done: dict[int, dict] = {}
        if store is not None:
            for m in range(config.n_members):
                if store.is_done(m):
                    arrays, meta = store.load_member(m)
                    done[m] = {"samples": arrays["samples"], "meta": meta}
        todo = [m for m in range(config.n_members) if m not in done]
        ts = time.perf_counter()
        if todo:
            ex, close = resolve_executor(executor, n_workers=n_workers, scheduler_address=scheduler_address)
            try:
                if ex is None:
                    for r in sample_members(task, todo, init[todo]):
                        done[r["meta"]["member"]] = r
                else:
                    futures = [ex.submit(sample_members, task, (m,), init[m:m + 1]) for m in todo]
                    for fut in futures:
                        r = fut.result()[0]
                        done[r["meta"]["member"]] = r
            finally:
                close()
        t_sample = time.perf_counter() - ts
        tp = time.perf_counter()
        draws = [bk.asarray(np.asarray(done[m]["samples"], dtype=np.float64)) for m in range(config.n_members)]
        metrics["sampled"] = ensemble_metrics(target, draws, data.X_test, data.y_test)
        metrics["sampled_val"] = ensemble_metrics(target, draws, data.X_val, data.y_val)
        t_pred += time.perf_counter() - tp
        n_sampling = float(np.mean([done[m]["meta"]["n_gradient_evals"] for m in range(config.n_members)]))
        members_info = [{k: done[m]["meta"][k] for k in ("member", "initial_step_size", "final_step_size",
                                                          "n_rejected", "n_draws", "wall_time")}
                        for m in range(config.n_members)]
        for m, row in enumerate(members_info):
            row["health"] = list(done[m]["meta"].get("health", []))
        _warn_member_health(sampler, members_info)
    if data.y_scaler is not None:
        for key in list(metrics):
            if "rmse" in metrics[key]:
                metrics[key]["rmse_original"] = float(metrics[key]["rmse"] * float(data.y_scaler.scale))
    result = EnsembleResult(
        sampler=sampler, metrics=metrics,
        n_gradient_evals={"pretrain": float(pre_meta["n_gradient_evals"]), "sampling": n_sampling,
                          "total": float(pre_meta["n_gradient_evals"]) + n_sampling},
        wall_time={"pretrain": float(t_pre), "sampling": float(t_sample), "predict": t_pred},
        members=members_info, config=config.to_dict(), out_dir=None if out_dir is None else str(out_dir),
        predictions=_interval_predictions(target, draws if sampler != "de" else [params_de], data))
    if store is not None:
        store.save_result(result.to_json())
    return result

