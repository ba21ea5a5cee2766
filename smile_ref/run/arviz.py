"""Conversion of recorded chains to ArviZ's ``xarray.DataTree`` layout (the ``arviz`` extra).

:func:`chains_to_datatree` builds, through :func:`arviz_base.from_dict`, a tree with the groups

``posterior``
    The recorded draws, dims ``(chain, draw)`` plus the parameter dimension: by default one
    variable ``x`` of shape ``(chain, draw, d)`` with the dimension ``x_dim_0`` and integer
    coordinates ``0..d-1`` (ArviZ's default naming; ``arviz_stats.summary`` labels its rows
    ``x[0]``, ``x[1]``, ...); with ``var_names`` (or a target whose ``describe()`` holds
    ``param_names``) one scalar variable per coordinate instead.
``sample_stats``
    smile_ref's per-step ``info`` at the steps that produced the recorded draws, under ArviZ's
    conventional names where one exists (list below), plus per-draw counts of the guardrail
    events over the ``thinning`` steps that end at each draw.
``warmup_sample_stats``
    The same statistics for every warm-up step (``draw`` = warm-up step ``0..n_warmup-1``; warm-up
    is never thinned).  There is no ``warmup_posterior``: the driver does not keep warm-up
    positions.

Alignment.  ``info`` rows are steps (warm-up first); with ``n_warmup = W`` and thinning ``k``,
draw ``s`` (0-based) is the position after step ``t_s = W + (s + 1) k - 1``, so
``sample_stats[key][c, s] = info[key][t_s, c]``.  Steps after the last recorded draw (the
``n_steps mod k`` trailing ones) appear in no group.

Names (smile_ref ``info`` key -> ``sample_stats`` variable):

* ``step_size`` -> ``step_size``: the step size used by the step;
* ``energy_error`` -> ``energy_error``: energy error of the step (MCLMC, SMILE);
* ``logdensity`` -> ``lp``: log-density at the position after the step (the mini-batch
  estimate when the gradient is a mini-batch one);
* ``rejected`` -> ``diverging``: the guardrail rejected the step (non-finite values, or an
  energy error above the sampler's threshold);
* ``nonfinite`` -> ``nonfinite``: the step produced non-finite values (SMILE);
* counts ``n_rejected`` and ``n_nonfinite`` (int64): rejected / non-finite steps among the
  ``thinning`` steps that end at the draw (sampling groups only);
* any other key keeps its name (``kinetic_change``, ``L``, ``loss``, ``window_end``).
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np

__all__ = ["chains_to_datatree", "STAT_NAMES", "ARVIZ_EXTRA_MESSAGE"]

STAT_NAMES = {"logdensity": "lp", "rejected": "diverging"}
"""smile_ref ``info`` key -> ArviZ ``sample_stats`` name, where they differ."""

_COUNTED = {"rejected": "n_rejected", "nonfinite": "n_nonfinite"}

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


def _stats_group(info: dict, rows: np.ndarray, window: int | None) -> dict:
    """ArviZ-named ``(chain, draw)`` arrays of ``info`` at ``rows``; counts over the ``window`` steps ending there."""
    out = {}
    for key, v in info.items():
        v = np.asarray(v)
        out[STAT_NAMES.get(key, key)] = np.ascontiguousarray(v[rows].T)
        if window is not None and key in _COUNTED:
            c = np.cumsum(np.concatenate([np.zeros((1, v.shape[1]), np.int64), v.astype(np.int64)]), axis=0)
            out[_COUNTED[key]] = np.ascontiguousarray((c[rows + 1] - c[rows + 1 - window]).T)
    return out


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
):
    """Recorded chains (and their per-step ``info``) as an ArviZ ``xarray.DataTree``.

    Parameters
    ----------
    samples : array-like (n_chains, n_draws, d)
        Host draws (as :attr:`smile_ref.ChainResult.samples`); their dtype is kept.
    info : dict of array-like (n_warmup + n_steps, n_chains), optional
        Per-step diagnostics, warm-up rows first (as :attr:`smile_ref.ChainResult.info`); it
        must cover at least the ``n_warmup + n_draws * thinning`` steps that produced the draws.
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
    for key, v in info.items():
        shape = np.shape(v)
        if len(shape) != 2 or shape[1] != n_chains or shape[0] < n_warmup + n_draws * thinning:
            raise ValueError(
                f"info[{key!r}] must have shape (>= n_warmup + n_draws * thinning = {n_warmup + n_draws * thinning}, "
                f"{n_chains}) (steps, chains), got {shape}"
            )
    if info:
        rows = n_warmup + (np.arange(n_draws) + 1) * thinning - 1
        data["sample_stats"] = _stats_group(info, rows, thinning)
        if save_warmup and n_warmup > 0:
            data["warmup_sample_stats"] = _stats_group(info, np.arange(n_warmup), None)
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
                              var_names=var_names, var_name=var_name, save_warmup=save_warmup, attrs=attrs)


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
    samples, infos, metas = [], [], []
    for m in range(n_members):
        path = os.path.join(os.fspath(result.out_dir), "members", f"member_{m:03d}.npz")
        if not os.path.exists(path):
            raise FileNotFoundError(f"member file {path!r} is missing (the run did not finish member {m})")
        with np.load(path, allow_pickle=False) as z:
            samples.append(np.asarray(z["samples"]))
            infos.append({k[len("info/"):]: np.asarray(z[k]) for k in z.files if k.startswith("info/")})
            metas.append(json.loads(str(z["meta"])))
    keys = set(infos[0])
    if any(set(i) != keys for i in infos) or len({s.shape for s in samples}) != 1:
        raise ValueError("the members of this run recorded different draws or info keys; cannot stack them as chains")
    info = {k: np.stack([i[k] for i in infos], axis=1) for k in sorted(keys)}
    attrs = result_attrs(result.sampler, n_warmup=int(cfg.get("n_warmup", 0)), thinning=int(cfg.get("thinning", 1)),
                         sampling_time=float(result.wall_time.get("sampling", 0.0)),
                         n_gradient_evals=float(result.n_gradient_evals.get("sampling", 0.0)),
                         out_dir=str(result.out_dir), chains_are="ensemble members")
    return chains_to_datatree(np.stack(samples), info, n_warmup=int(cfg.get("n_warmup", 0)),
                              thinning=int(cfg.get("thinning", 1)), var_names=var_names, var_name=var_name,
                              save_warmup=save_warmup, attrs=attrs,
                              chain_coords=np.array([int(mt["member"]) for mt in metas]))
