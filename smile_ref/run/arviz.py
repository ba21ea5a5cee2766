"""Conversion of recorded chains to ArviZ's ``xarray.DataTree`` layout (the ``arviz`` extra).

:func:`chains_to_datatree` builds, through :func:`arviz_base.from_dict`, a tree with the groups

``posterior``
    The recorded draws, dims ``(chain, draw)`` plus the parameter dimension: by default one
    variable ``x`` of shape ``(chain, draw, d)`` with the dimension ``x_dim_0`` and integer
    coordinates ``0..d-1`` (ArviZ's default naming; ``arviz_stats.summary`` labels its rows
    ``x[0]``, ``x[1]``, ...); with ``var_names`` (or a target whose ``describe()`` holds
    ``param_names``) one scalar variable per coordinate instead.
``sample_stats``
    smile_ref's ``info`` at the steps that produced the recorded draws, under ArviZ's
    conventional names where one exists (list below), plus per-draw aggregates of the
    ``thinning`` steps that end at each draw (counts of guardrail events, largest ``|dE|``).
``warmup_sample_stats``
    The same statistics for the recorded warm-up rows: every warm-up step (``draw`` = warm-up step
    ``0..n_warmup-1``) with ``run_chains(warmup_info="all")``, or, with ``warmup_info="thinned"``,
    the steps ``ChainResult.info_steps[:n_warmup_rows]`` with their window aggregates; absent for
    ``warmup_info="summary"``.  There is no ``warmup_posterior``: the driver does not keep warm-up
    positions.

Alignment.  With ``n_warmup = W`` and thinning ``k``, draw ``s`` (0-based) is the position after
step ``t_s = W + (s + 1) k - 1``, and ``sample_stats[key][c, s]`` is ``info[key]`` at step ``t_s``:
the row ``s`` of the sampling rows of ``run_chains(info="thinned")`` (which also carries the window
aggregates, copied), or the row ``t_s`` of per-step ``info`` (``info="all"``; the aggregates are then
computed from the per-step rows).  Both give the same ``sample_stats``.  Steps after the last
recorded draw (the ``n_steps mod k`` trailing ones) appear in no group.

Names (smile_ref ``info`` key -> ``sample_stats`` variable):

* ``step_size`` -> ``step_size``: the step size used by the step;
* ``energy_error`` -> ``energy_error``: energy error of the step (MCLMC, SMILE);
* ``logdensity`` -> ``lp``: log-density at the position after the step (the mini-batch
  estimate when the gradient is a mini-batch one);
* ``rejected`` -> ``diverging``: the guardrail rejected the step (non-finite values, or an
  energy error above the sampler's threshold);
* ``nonfinite`` -> ``nonfinite``: the step produced non-finite values (SMILE);
* counts ``n_rejected`` and ``n_nonfinite`` (int64): rejected / non-finite steps among the
  ``thinning`` steps that end at the draw; ``max_abs_energy_error``: the largest ``|dE|`` among
  them (sampling group, and thinned warm-up rows);
* any other key keeps its name (``kinetic_change``, ``L``, ``loss``, ``window_end``).
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

__all__ = ["chains_to_datatree", "STAT_NAMES", "ARVIZ_EXTRA_MESSAGE"]

STAT_NAMES = {"logdensity": "lp", "rejected": "diverging"}
"""smile_ref ``info`` key -> ArviZ ``sample_stats`` name, where they differ."""

_WINDOW = {"rejected": ("n_rejected", np.add), "nonfinite": ("n_nonfinite", np.add),
           "energy_error": ("max_abs_energy_error", np.maximum)}
_WINDOW_NAMES = {name for name, _ in _WINDOW.values()}

ARVIZ_EXTRA_MESSAGE = (
    "to_arviz needs arviz-base and xarray (the 'arviz' extra): pip install 'smile_ref[arviz]'"
)


def _import_arviz_base():
    try:
        import arviz_base
        import xarray  # noqa: F401
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(ARVIZ_EXTRA_MESSAGE) from exc
    return arviz_base


def _check_names(var_names, d: int) -> list[str]:
    if isinstance(var_names, str) or not isinstance(var_names, Sequence):
        raise TypeError(f"var_names must be a sequence of {d} strings, got {type(var_names).__name__}")
    names = list(var_names)
    if len(names) != d or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"var_names must hold {d} non-empty strings (one per coordinate), got {names!r}")
    if len(set(names)) != d:
        raise ValueError(f"var_names must be distinct, got {names!r}")
    return names


def _stats_group(info: dict, rows: np.ndarray, window: int | None, keep_windows: bool = False) -> dict:
    """ArviZ-named ``(chain, draw)`` arrays of ``info`` at ``rows``.

    ``window``: ``rows`` are consecutive windows of ``window`` per-step rows (each ending at a row):
    the aggregates are computed from them.  ``keep_windows``: ``info`` already holds the aggregates
    of ``rows`` (thinned rows): they are copied.  Otherwise the aggregate keys are dropped.
    """
    out = {}
    for key, v in info.items():
        v = np.asarray(v)
        if key in _WINDOW_NAMES and not keep_windows:
            continue
        out[STAT_NAMES.get(key, key)] = np.ascontiguousarray(v[rows].T)
        if window is not None and key in _WINDOW and rows.size:
            name, op = _WINDOW[key]
            x = v.astype(bool).astype(np.int64) if op is np.add else np.abs(v)
            blocks = x[rows[0] + 1 - window: rows[-1] + 1].reshape(rows.size, window, v.shape[1])
            out[name] = np.ascontiguousarray(op.reduce(blocks, axis=1).T)
    return out


def _rows_of(steps: np.ndarray, wanted: np.ndarray, what: str) -> np.ndarray:
    """Indices of ``wanted`` steps in the sorted row steps ``steps``; ``ValueError`` if one is missing."""
    rows = np.searchsorted(steps, wanted)
    ok = (rows < steps.size) & (steps[np.minimum(rows, steps.size - 1)] == wanted) if steps.size else wanted < 0
    if not np.all(ok):
        raise ValueError(f"info has no row for step {int(wanted[~ok][0])} ({what}); info_steps do not match "
                         "n_warmup and thinning")
    return rows


def chains_to_datatree(
    samples,
    info: dict | None = None,
    *,
    n_warmup: int = 0,
    thinning: int = 1,
    var_names: Sequence[str] | None = None,
    var_name: str = "x",
    save_warmup: bool = True,
    attrs: dict | None = None,
    chain_coords=None,
    info_steps=None,
):
    """Recorded chains (and their ``info`` rows) as an ArviZ ``xarray.DataTree``.

    Parameters
    ----------
    samples : array-like (n_chains, n_draws, d)
        Host draws (as :attr:`smile_ref.ChainResult.samples`); their dtype is kept.
    info : dict of array-like (n_rows, n_chains), optional
        Diagnostics rows, warm-up rows first (as :attr:`smile_ref.ChainResult.info`): without
        ``info_steps``, one row per step covering at least the ``n_warmup + n_draws * thinning``
        steps that produced the draws.
    n_warmup, thinning : int
        Warm-up steps at the head of ``info`` and the thinning of ``samples`` (see the module
        docstring for the alignment ``t_s = n_warmup + (s + 1) thinning - 1``).
    var_names : sequence of d str, optional
        One scalar posterior variable per coordinate; default one variable ``var_name``.
    var_name : str
        Name of the single posterior variable (default ``"x"``, dimension ``x_dim_0``).
    save_warmup : bool
        Add ``warmup_sample_stats`` when ``n_warmup > 0`` (ArviZ's ``data.save_warmup``
        rcParam is not consulted).
    attrs : dict, optional
        Attributes of the posterior and sample-stats groups (strings and numbers).
    chain_coords : array-like (n_chains,), optional
        Coordinate values of ``chain`` (default ``0..n_chains-1``).
    info_steps : array-like of int (n_rows,), optional
        Step index of each row of ``info`` (:attr:`smile_ref.ChainResult.info_steps`); default
        ``0 .. n_rows - 1`` (one row per step).

    Returns
    -------
    xarray.DataTree

    Raises
    ------
    ImportError
        Without arviz-base / xarray (``pip install 'smile_ref[arviz]'``).

    Examples
    --------
    >>> import numpy as np
    >>> from smile_ref.run.arviz import chains_to_datatree
    >>> dt = chains_to_datatree(np.zeros((2, 5, 3)))
    >>> dict(dt["posterior"].sizes)
    {'chain': 2, 'draw': 5, 'x_dim_0': 3}
    """
    azb = _import_arviz_base()
    samples = np.asarray(samples)
    if samples.ndim != 3:
        raise ValueError(f"samples must have shape (n_chains, n_draws, d), got {samples.shape}")
    n_chains, n_draws, d = samples.shape
    n_warmup = int(n_warmup)
    thinning = int(thinning)
    if n_warmup < 0 or thinning < 1:
        raise ValueError(f"need n_warmup >= 0 and thinning >= 1, got n_warmup={n_warmup}, thinning={thinning}")
    if var_names is not None:
        names = _check_names(var_names, d)
        posterior = {n: samples[:, :, i] for i, n in enumerate(names)}
    else:
        if not isinstance(var_name, str) or not var_name:
            raise TypeError(f"var_name must be a non-empty string, got {var_name!r}")
        posterior = {var_name: samples}
    coords = {"chain": np.arange(n_chains) if chain_coords is None else np.asarray(chain_coords)}
    if coords["chain"].shape != (n_chains,):
        raise ValueError(f"chain_coords must have shape ({n_chains},), got {coords['chain'].shape}")
    data: dict[str, dict] = {"posterior": posterior}
    group_attrs: dict[str, Any] = {}
    info = {} if info is None else dict(info)
    n_rows = max((int(np.shape(v)[0]) for v in info.values()), default=0)
    steps = np.arange(n_rows) if info_steps is None else np.asarray(info_steps, dtype=np.int64)
    if steps.ndim != 1 or (steps.size > 1 and np.any(np.diff(steps) <= 0)):
        raise ValueError(f"info_steps must be an increasing 1-d array of step indices, got shape {steps.shape}")
    for key, v in info.items():
        shape = np.shape(v)
        if info_steps is None and (len(shape) != 2 or shape[1] != n_chains or shape[0] < n_warmup + n_draws * thinning):
            raise ValueError(
                f"info[{key!r}] must have shape (>= n_warmup + n_draws * thinning = {n_warmup + n_draws * thinning}, "
                f"{n_chains}) (steps, chains), got {shape}"
            )
        if info_steps is not None and shape != (steps.size, n_chains):
            raise ValueError(f"info[{key!r}] must have shape (len(info_steps) = {steps.size}, {n_chains}), got {shape}")
    if info:
        draw_steps = n_warmup + (np.arange(n_draws) + 1) * thinning - 1
        if n_draws and np.any(steps >= n_warmup):
            rows = _rows_of(steps, draw_steps, "a recorded draw")
            lo = int(np.searchsorted(steps, n_warmup))  # first sampling row
            per_step = steps[lo] == n_warmup and rows[-1] - lo == draw_steps[-1] - n_warmup
            if per_step:  # a row for every sampling step up to the last draw: aggregate the windows here
                data["sample_stats"] = _stats_group(info, rows, thinning)
            else:  # thinned rows: their window aggregates are in info
                data["sample_stats"] = _stats_group(info, rows, None, keep_windows=True)
        w_rows = np.flatnonzero(steps < n_warmup)
        if save_warmup and w_rows.size:
            thinned_warmup = w_rows.size < n_warmup
            data["warmup_sample_stats"] = _stats_group(info, w_rows, None, keep_windows=thinned_warmup)
    if attrs:
        group_attrs = {g: dict(attrs) for g in data}
    # each group is its own Dataset: ``draw`` runs over the draws, and over the warm-up steps in warmup groups
    with warnings.catch_warnings():
        # many chains with few draws is a legitimate smile_ref run (the dims are named by construction)
        warnings.filterwarnings("ignore", message="Found chain dimension to be longer than draw dimension")
        tree = azb.from_dict(data, save_warmup=save_warmup, coords=coords, attrs=group_attrs)
    return tree


def result_attrs(sampler: str, **extra) -> dict:
    """Posterior attributes naming smile_ref as the inference library (JSON/netCDF-safe values)."""
    from .. import __version__

    out = {"inference_library": "smile_ref",
           "inference_library_version": str(__version__),
           "sampler": str(sampler)}
    for k, v in extra.items():
        if v is None:
            continue
        out[k] = v if isinstance(v, (str, int, float, bool, np.integer, np.floating)) else repr(v)
    return out


def chain_result_to_datatree(result, *, var_names=None, var_name: str = "x", save_warmup: bool = True):
    """:meth:`smile_ref.ChainResult.to_arviz` (see there)."""
    if var_names is None:
        target = (result.meta or {}).get("config", {}).get("target")
        if isinstance(target, dict) and target.get("param_names"):
            var_names = list(target["param_names"])
    attrs = result_attrs(result.sampler, seed=result.seed, n_warmup=int(result.n_warmup),
                         thinning=int(result.thinning), backend=result.backend, dtype=result.dtype,
                         sampling_time=float(result.wall_time), n_gradient_evals=float(result.n_gradient_evals))
    return chains_to_datatree(result.samples, result.info, n_warmup=result.n_warmup, thinning=result.thinning,
                              var_names=var_names, var_name=var_name, save_warmup=save_warmup, attrs=attrs,
                              info_steps=result.info_steps)


def ensemble_to_datatree(result, *, var_names=None, var_name: str = "x", save_warmup: bool = True):
    """:meth:`smile_ref.ensembles.EnsembleResult.to_arviz` (see there): members as chains, read from ``out_dir``."""
    import json
    import os

    if result.sampler == "de":
        raise ValueError("a deep-ensemble result (sampler='de') has no draws to convert")
    if result.out_dir is None:
        raise ValueError("EnsembleResult.to_arviz reads the members' draws from out_dir; "
                         "run run_ensemble(..., out_dir=...) to keep them")
    cfg = result.config or {}
    n_members = int(cfg.get("n_members", len(result.members)))
    samples, infos, metas, steps = [], [], [], []
    for m in range(n_members):
        path = os.path.join(os.fspath(result.out_dir), "members", f"member_{m:03d}.npz")
        if not os.path.exists(path):
            raise FileNotFoundError(f"member file {path!r} is missing (the run did not finish member {m})")
        with np.load(path, allow_pickle=False) as z:
            samples.append(np.asarray(z["samples"]))
            infos.append({k[len("info/"):]: np.asarray(z[k]) for k in z.files if k.startswith("info/")})
            steps.append(np.asarray(z["info_steps"]) if "info_steps" in z.files else None)
            metas.append(json.loads(str(z["meta"])))
    keys = set(infos[0])
    same_steps = all((a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
                     for a, b in zip(steps, steps[1:]))
    if any(set(i) != keys for i in infos) or len({s.shape for s in samples}) != 1 or not same_steps:
        raise ValueError("the members of this run recorded different draws or info keys; cannot stack them as chains")
    info = {k: np.stack([i[k] for i in infos], axis=1) for k in sorted(keys)}
    attrs = result_attrs(result.sampler, n_warmup=int(cfg.get("n_warmup", 0)), thinning=int(cfg.get("thinning", 1)),
                         sampling_time=float(result.wall_time.get("sampling", 0.0)),
                         n_gradient_evals=float(result.n_gradient_evals.get("sampling", 0.0)),
                         out_dir=str(result.out_dir), chains_are="ensemble members")
    return chains_to_datatree(np.stack(samples), info, n_warmup=int(cfg.get("n_warmup", 0)),
                              thinning=int(cfg.get("thinning", 1)), var_names=var_names, var_name=var_name,
                              save_warmup=save_warmup, attrs=attrs,
                              chain_coords=np.array([int(mt["member"]) for mt in metas]), info_steps=steps[0])
