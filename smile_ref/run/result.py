"""The result of :func:`smile_ref.run_chains`: :class:`ChainResult` (draws, ``info`` rows, exact counters, health)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..io import atomic_save_npz

__all__ = ["ChainResult"]


@dataclass
class ChainResult:
    """Output of :func:`run_chains`.

    Attributes
    ----------
    samples : numpy.ndarray, shape (n_chains, n_draws, d)
        Recorded positions after warm-up (host array, dtype of the run); draw ``s`` is the
        position after step ``t_s = n_warmup + (s + 1) thinning - 1`` (steps counted from 0).
    info : dict of numpy.ndarray, each of shape (n_rows, n_chains)
        Per-step diagnostics (energy error, step size, rejections, ...) at the steps
        ``info_steps``: first ``n_warmup_rows`` warm-up rows, then the sampling rows.  With the
        default ``run_chains(info="thinned", warmup_info="all")`` the sampling rows are the steps
        ``t_s`` of the draws (``sampling_info(key)[s]`` belongs to ``samples[:, s]``) and every key
        is its value at ``t_s``; the extra keys ``n_rejected``, ``n_nonfinite`` (int64) and
        ``max_abs_energy_error`` aggregate the window of ``thinning`` steps that ends at ``t_s``
        (each warm-up row is a window of one step, or with ``warmup_info="thinned"`` of the steps
        since the previous warm-up row).  ``info="all", warmup_info="all"``: one row per step,
        ``info_steps = 0 .. n_warmup + n_steps - 1``, no extra keys.  Layouts and window rules:
        :mod:`smile_ref.run.recording`.
    info_steps : numpy.ndarray of int64, shape (n_rows,)
        0-based step index of each row of ``info`` (warm-up steps ``0 .. n_warmup - 1`` first).
    n_warmup_rows : int
        Number of warm-up rows at the head of ``info``.
    stats : StepStats
        Exact per-chain counters over **every** step, whatever ``info`` keeps (rejections,
        non-finite steps, step-size range, energy-error counts per phase;
        :class:`~smile_ref.run.stats.StepStats`); run health reads these.
    info_mode, warmup_info_mode : str
        The ``info`` / ``warmup_info`` arguments of the run.
    n_gradient_evals : float
        Cost per chain in full-data gradient equivalents (a mini-batch gradient
        of batch b counts b/N).
    state : Any
        Final sampler state (arrays of the run's namespace and device).
    health : RunHealth or None
        :class:`~smile_ref.run.health.RunHealth` of the run (rejections, non-finite steps,
        step-size range, frozen chains, R-hat/ESS; ``health.ok``); see ``docs/run-health.md``.
    """

    samples: np.ndarray
    info: dict
    n_gradient_evals: float
    state: Any
    sampler: str
    n_warmup: int
    thinning: int
    seed: Any
    backend: str
    dtype: str
    wall_time: float
    meta: dict = field(default_factory=dict)
    health: Any = None
    info_steps: Any = None
    n_warmup_rows: int | None = None
    stats: Any = None
    info_mode: str = "all"
    warmup_info_mode: str = "all"

    def __post_init__(self):
        if self.info_steps is None:  # the per-step layout (info_mode = warmup_info_mode = "all")
            total = max((int(np.shape(v)[0]) for v in self.info.values()), default=self.n_warmup)
            self.info_steps = np.arange(total, dtype=np.int64)
        if self.n_warmup_rows is None:
            self.n_warmup_rows = int(np.count_nonzero(np.asarray(self.info_steps) < self.n_warmup))

    @property
    def n_chains(self) -> int:
        return self.samples.shape[0]

    @property
    def n_rejected(self) -> int:
        """Total number of guardrail rejections over all chains and **all** steps (every step counted)."""
        if self.stats is not None:
            r = self.stats.total("rejected")
            return int(r.sum()) if r is not None else 0
        r = self.info.get("rejected")
        return int(r.sum()) if r is not None else 0

    def sampling_info(self, key: str) -> np.ndarray:
        """``info[key]`` rows of the sampling phase, shape (n_sampling_rows, n_chains).

        With ``info="thinned"`` (default) row ``s`` is the draw ``samples[:, s]``'s step; with
        ``info="all"`` every sampling step.  ``ValueError`` for ``info="summary"`` (use ``stats``).
        """
        if self.info_mode == "summary":
            raise ValueError("this run kept no sampling rows (run_chains(info='summary')); its exact counts are in "
                             "ChainResult.stats, or rerun with info='thinned' or 'all'")
        return self._info_key(key)[self.n_warmup_rows :]

    def warmup_info(self, key: str) -> np.ndarray:
        """``info[key]`` rows of the warm-up phase, shape (n_warmup_rows, n_chains) (see ``info_steps``).

        ``ValueError`` for ``warmup_info="summary"`` (use ``stats``).
        """
        if self.warmup_info_mode == "summary" and self.n_warmup > 0:
            raise ValueError("this run kept no warm-up rows (run_chains(warmup_info='summary')); its exact counts "
                             "are in ChainResult.stats, or rerun with warmup_info='thinned' or 'all'")
        return self._info_key(key)[: self.n_warmup_rows]

    def _info_key(self, key: str) -> np.ndarray:
        if key not in self.info:
            raise KeyError(f"info has no key {key!r}; recorded keys: {sorted(self.info)}")
        return self.info[key]

    def to_arviz(self, *, var_names=None, var_name: str = "x", save_warmup: bool = True):
        """The run as an ArviZ ``xarray.DataTree`` (needs the ``arviz`` extra).

        Groups ``posterior`` (dims ``chain``, ``draw`` and ``x_dim_0``, or one variable per
        name in ``var_names`` or in the target's ``param_names``), ``sample_stats`` (``info`` at
        the steps that produced the draws: ``step_size``, ``energy_error``, ``lp``,
        ``diverging`` = ``rejected``, ``nonfinite``, and the counts ``n_rejected`` /
        ``n_nonfinite`` and ``max_abs_energy_error`` over each thinning window; the same with
        ``info="thinned"`` and ``info="all"``) and ``warmup_sample_stats`` (the warm-up rows).  Warm-up positions are not kept by the driver, so there is no
        ``warmup_posterior``.  See :mod:`smile_ref.run.arviz` for the alignment and names.

        Examples
        --------
        >>> import smile_ref as sr
        >>> res = sr.run_chains("sgld", sr.targets.Gaussian.isotropic(2), n_chains=2, n_steps=20,
        ...                     seed=0, step_size=0.1, progress=False)
        >>> res.to_arviz()["posterior"]["x"].shape
        (2, 20, 2)
        """
        from .arviz import chain_result_to_datatree

        return chain_result_to_datatree(self, var_names=var_names, var_name=var_name, save_warmup=save_warmup)

    def save(self, path) -> None:
        """Write samples, info and metadata to ``path`` (``.npz``, atomic, no pickles)."""
        import json

        arrays = {"samples": self.samples, "info_steps": np.asarray(self.info_steps)}
        arrays.update({f"info/{k}": v for k, v in self.info.items()})
        if self.stats is not None:
            arrays.update(self.stats.to_arrays())
        meta = dict(self.meta, sampler=self.sampler, n_warmup=self.n_warmup, thinning=self.thinning,
                    info_mode=self.info_mode, warmup_info_mode=self.warmup_info_mode,
                    seed=self.seed, backend=self.backend, dtype=self.dtype, wall_time=self.wall_time,
                    n_gradient_evals=self.n_gradient_evals)
        arrays["meta"] = np.asarray(json.dumps(meta, sort_keys=True, default=str))
        atomic_save_npz(path, arrays)
