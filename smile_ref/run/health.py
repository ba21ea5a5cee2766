"""Run health: what went wrong in a finished run, and what to change.

:func:`run_health` reads a finished run (recorded ``samples`` and per-step ``info``) and returns a
:class:`RunHealth`; :func:`smile_ref.run_chains` attaches it as ``ChainResult.health`` and emits one
:class:`~smile_ref.errors.RunHealthWarning` (or, with ``strict=True``, raises
:class:`~smile_ref.errors.RunHealthError`) when the run is unhealthy.  ``docs/run-health.md``
explains the thresholds.

A run is **unhealthy** when any chain

* rejects more than :data:`MAX_REJECTION_FRACTION` (20 %) of its sampling steps (warm-up steps
  when there are no sampling steps: warm-up is where tuners legitimately try step sizes that fail),
  and at least :data:`MIN_REJECTED` (10) steps, so that a smoke run of 8 steps with 2 rejections
  does not warn;
* has a step size that reached a floor: ``min eps <= STEP_SIZE_FLOOR`` (1e-8, the lower bound of
  the SMILE energy-error tuner) below the initial step size, or ``min eps <= COLLAPSE_FACTOR * eps_0``
  (a shrink by 1e6, for tuners with another floor);
* is **frozen**: with at least :data:`FROZEN_MIN_DRAWS` recorded draws, the last
  ``W = max(10, ceil(n_draws / 10))`` recorded positions are bit-identical; or every one of the last
  ``max(10, ceil(n_steps / 10))`` sampling steps was rejected (IASG window means, which repeat by
  design, are judged by the rejections only);
* met a non-finite value (log-density, gradient or position; ``info["nonfinite"]``) in a sampling
  step, or has a non-finite recorded sample;
* has an exploding energy error (samplers that report ``info["energy_error"]``): over the sampling
  steps, the median of ``dE^2 / d`` exceeds :data:`MAX_ENERGY_VAR_PER_DIM` (0.1, 200 times MCLMC's
  target ``Var[dE]/d = 5e-4``; for a tuner with a larger target, :data:`ENERGY_LIMIT_FACTOR` times its
  target, e.g. 20 for MILE, which ends its warm-up at ``Var[dE]/d = 0.1``), or more than :data:`MAX_SPIKE_FRACTION` (0.5 %) of the steps have
  ``dE^2 / d > SPIKE_ENERGY_VAR_PER_DIM`` (100).  This catches a huge fixed step size, which
  otherwise gives garbage with no rejection (SMILE/pSMILE without a tuner or guardrail: on a 5-d
  Gaussian ``step_size=5`` has median ``dE^2/d = 0.48``; ``step_size=50`` has a tiny median, because
  the velocity aligns with the gradient, but 1 % of its steps above 2.5e5).  Checked only with
  at least :data:`FROZEN_MIN_DRAWS` sampling steps, and not for SMILE's ``energy_error="cross_batch"``,
  whose energy error carries a step-size-independent mini-batch term;
* has a Langevin step that the drift dominates (SGLD and pSGLD, which report
  ``info["drift_noise_ratio"]`` ``r = h G g^2 / 2``, averaged over coordinates: the squared drift of the
  Euler-Maruyama step over the variance of its injected noise): more than half of the sampling steps
  have ``r > MAX_DRIFT_NOISE_RATIO`` (1), i.e. the median exceeds 1.  On ``N(0, s^2)`` with exact
  gradients and ``a = h G / s^2``, the chain ``x' = (1 - a) x + sqrt(2 h G) z`` is stationary with variance
  ``s^2 / (1 - a/2)`` and ``E[r] = (h G / 2) E[x^2] / s^4 = (a/2) / (1 - a/2)``: exactly the relative excess
  of its variance over the target's.  The limit 1 is a variance twice the target's (``a = 1``); the chain
  diverges at ``a = 2``.  With mini-batch gradients ``r`` adds ``h G Var[g] / 2``, the excess of gradient
  noise over injected noise (Welling & Teh 2011).  This catches a huge step size in pSGLD, whose RMSprop
  preconditioner normalises the gradient: finite garbage with no rejection and no non-finite value.

R-hat and bulk ESS (:mod:`smile_ref.diagnostics`) are reported when there are at least two chains
and :data:`FROZEN_MIN_DRAWS` draws, on at most :data:`MAX_DIAGNOSTIC_COORDS` evenly spaced
coordinates and :data:`MAX_DIAGNOSTIC_VALUES` values (fewer coordinates, then the first chains, for
large runs: the rank normalisation costs about 3 microseconds per value); they are information, not
triggers, because short healthy runs routinely have R-hat above 1.01.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..chainstats.ess import rhat_and_ess

__all__ = ["RunHealth", "run_health", "health_from_stats", "MAX_REJECTION_FRACTION", "MIN_REJECTED", "STEP_SIZE_FLOOR", "COLLAPSE_FACTOR",
           "FROZEN_MIN_DRAWS", "MAX_ENERGY_VAR_PER_DIM", "SPIKE_ENERGY_VAR_PER_DIM", "MAX_SPIKE_FRACTION",
           "MAX_DIAGNOSTIC_COORDS", "MAX_DIAGNOSTIC_VALUES", "MAX_DRIFT_NOISE_RATIO", "ENERGY_LIMIT_FACTOR"]

MAX_REJECTION_FRACTION = 0.2
MIN_REJECTED = 10
STEP_SIZE_FLOOR = 1e-8
COLLAPSE_FACTOR = 1e-6
FROZEN_MIN_DRAWS = 20
MAX_ENERGY_VAR_PER_DIM = 0.1
ENERGY_LIMIT_FACTOR = 200.0  # the limit in units of a tuner's own Var[dE]/d target (0.1 = 200 x MCLMC's 5e-4)
SPIKE_ENERGY_VAR_PER_DIM = 100.0
MAX_SPIKE_FRACTION = 0.005
MAX_DRIFT_NOISE_RATIO = 1.0
MAX_DIAGNOSTIC_COORDS = 32
MAX_DIAGNOSTIC_VALUES = 200_000  # R-hat/ESS on at most this many values (about 1 s on one CPU core)

_TUNED = ("smile", "psmile")


@dataclass(frozen=True)
class RunHealth:
    """Health summary of a finished run; per-chain arrays have shape ``(n_chains,)``.

    Attributes
    ----------
    sampler : str
    n_warmup, n_steps : int
        Warm-up and sampling steps.
    n_rejected : numpy.ndarray of int
        Rejected steps in the assessed phase (sampling, or warm-up if there is no sampling).
    rejection_fraction : numpy.ndarray of float
        ``n_rejected`` / steps of the assessed phase.
    n_nonfinite : numpy.ndarray of int
        Steps that met a non-finite value, warm-up included (``info["nonfinite"]``).
    n_nonfinite_sampling : numpy.ndarray of int
        The same, sampling steps only.
    step_size_min, step_size_max : numpy.ndarray of float, or None
        Range of ``info["step_size"]`` over all steps.
    at_floor : numpy.ndarray of bool
        The step size reached a floor (see the module docstring).
    frozen : numpy.ndarray of bool
        The chain stopped moving at the end of the run.
    energy_var_per_dim : numpy.ndarray of float, or None
        Median of ``dE^2 / d`` over the sampling steps, to within a factor 1.075 (from the
        histogram of :class:`~smile_ref.run.stats.StepStats`; NaN if a ``dE`` was NaN).
    energy_above_fraction : numpy.ndarray of float, or None
        Exact fraction of sampling steps with ``dE^2 / d > MAX_ENERGY_VAR_PER_DIM`` (NaN if a
        ``dE`` was NaN); above 0.5 means the median exceeds the limit (the trigger).
    energy_spike_fraction : numpy.ndarray of float, or None
        Fraction of sampling steps with ``dE^2 / d > SPIKE_ENERGY_VAR_PER_DIM``.
    drift_noise_fraction : numpy.ndarray of float, or None
        Langevin samplers: fraction of sampling steps with ``info["drift_noise_ratio"] >
        MAX_DRIFT_NOISE_RATIO`` (above 0.5: the trigger); ``drift_noise_max`` the largest ratio.
    n_nonfinite_samples : numpy.ndarray of int
        Recorded draws with a non-finite coordinate.
    rhat_max, ess_min : float or None
        Largest rank-normalised split R-hat and smallest bulk ESS over the assessed coordinates.
    problems : tuple of str
        One sentence per problem found (empty: healthy).
    remedies : tuple of str
        What to change.
    """

    sampler: str
    n_warmup: int
    n_steps: int
    n_rejected: np.ndarray
    rejection_fraction: np.ndarray
    n_nonfinite: np.ndarray
    n_nonfinite_sampling: np.ndarray
    step_size_min: np.ndarray | None
    step_size_max: np.ndarray | None
    at_floor: np.ndarray
    frozen: np.ndarray
    energy_var_per_dim: np.ndarray | None
    energy_spike_fraction: np.ndarray | None
    n_nonfinite_samples: np.ndarray
    rhat_max: float | None = None
    ess_min: float | None = None
    energy_above_fraction: np.ndarray | None = None
    energy_limit: float = MAX_ENERGY_VAR_PER_DIM
    drift_noise_fraction: np.ndarray | None = None
    drift_noise_max: np.ndarray | None = None
    problems: tuple = field(default_factory=tuple)
    remedies: tuple = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """``True`` when no problem was found."""
        return not self.problems

    @property
    def n_chains(self) -> int:
        return int(self.frozen.shape[0])

    def chain_problems(self, chain: int) -> list[str]:
        """Short labels of the problems of one chain (``[]``: healthy), e.g. for per-member reports."""
        j = int(chain)
        out = []
        if self.rejection_fraction[j] > MAX_REJECTION_FRACTION and self.n_rejected[j] >= MIN_REJECTED:
            out.append(f"{100 * self.rejection_fraction[j]:.1f} % rejected")
        if self.at_floor[j]:
            out.append(f"step size at floor ({self.step_size_min[j]:.3g})")
        if self.frozen[j]:
            out.append("frozen")
        if self.n_nonfinite_sampling[j] or self.n_nonfinite_samples[j]:
            out.append(f"{int(self.n_nonfinite_sampling[j])} non-finite sampling steps")
        if self.energy_var_per_dim is not None and self._exploding()[j]:
            out.append(f"energy error explodes (median dE^2/d = {self.energy_var_per_dim[j]:.3g}, "
                       f"{100 * self.energy_spike_fraction[j]:.2g} % spikes)")
        if self.drift_noise_fraction is not None and self.drift_noise_fraction[j] > 0.5:
            out.append(f"drift dominates the injected noise ({100 * self.drift_noise_fraction[j]:.0f} % of steps "
                       f"with h G g^2/2 > {MAX_DRIFT_NOISE_RATIO:g})")
        return out

    def _exploding(self) -> np.ndarray:
        if self.energy_var_per_dim is None:
            return np.zeros(self.n_chains, dtype=bool)
        return _exploding(self.energy_above_fraction, self.energy_var_per_dim, self.energy_spike_fraction,
                          self.energy_limit)

    def message(self) -> str:
        """The warning text: the problems, then the remedies."""
        if self.ok:
            return f"{self.sampler}: healthy run"
        return f"{self.sampler}: " + "; ".join(self.problems) + ". Remedy: " + " ".join(self.remedies)

    def summary(self) -> str:
        """Several lines: status, rejections, non-finite steps, step sizes, frozen chains, R-hat/ESS."""
        n = self.n_chains
        lines = [f"run health ({self.sampler}, {n} chains, {self.n_warmup} warm-up + {self.n_steps} steps): "
                 + ("ok" if self.ok else "UNHEALTHY")]
        lines.append(f"  rejected: {int(self.n_rejected.sum())} steps, max fraction per chain "
                     f"{100 * float(self.rejection_fraction.max(initial=0.0)):.2f} %")
        lines.append(f"  non-finite steps: {int(self.n_nonfinite.sum())} "
                     f"({int(self.n_nonfinite_sampling.sum())} while sampling); non-finite draws: "
                     f"{int(self.n_nonfinite_samples.sum())}")
        if self.step_size_min is not None:
            lines.append(f"  step size: min {float(self.step_size_min.min()):.3g}, max "
                         f"{float(self.step_size_max.max()):.3g}; at floor: {int(self.at_floor.sum())}/{n} chains")
        if self.energy_var_per_dim is not None:
            lines.append(f"  median dE^2/d: max over chains {float(self.energy_var_per_dim.max()):.3g}; steps with "
                         f"dE^2/d > {SPIKE_ENERGY_VAR_PER_DIM:g}: max {100 * float(self.energy_spike_fraction.max()):.2g} %")
        lines.append(f"  frozen chains: {int(self.frozen.sum())}/{n}")
        if self.rhat_max is not None:
            lines.append(f"  R-hat max {self.rhat_max:.4g}, bulk ESS min {self.ess_min:.4g}")
        for p in self.problems:
            lines.append(f"  problem: {p}")
        for r in self.remedies:
            lines.append(f"  remedy: {r}")
        return "\n".join(lines)

    __str__ = summary


def _frozen_positions(samples: np.ndarray) -> np.ndarray:
    n, m = samples.shape[:2]
    if m < FROZEN_MIN_DRAWS:
        return np.zeros(n, dtype=bool)
    w = max(10, math.ceil(m / 10))
    return np.array([bool(np.all(c[m - w:] == c[-1])) for c in samples], dtype=bool)  # one chain at a time


def _nonfinite_draws(samples: np.ndarray) -> np.ndarray:
    """Draws with a non-finite coordinate, per chain (one chain at a time: no full-size temporary)."""
    return np.array([int(np.count_nonzero(~np.isfinite(c).all(axis=-1))) for c in samples], dtype=np.int64)


def _rhat_ess(samples: np.ndarray, all_finite: bool):
    n, m, d = samples.shape
    if n < 2 or m < FROZEN_MIN_DRAWS or not all_finite:
        return None, None

    n_use = min(n, max(2, MAX_DIAGNOSTIC_VALUES // m))  # the first chains, if there are very many draws
    k = int(np.clip(MAX_DIAGNOSTIC_VALUES // (n_use * m), 1, min(d, MAX_DIAGNOSTIC_COORDS)))
    cols = np.unique(np.linspace(0, d - 1, k).round().astype(np.int64))
    sub = np.ascontiguousarray(samples[:n_use, :, cols], dtype=np.float64)
    with np.errstate(all="ignore"):
        r, e = (np.asarray(a) for a in rhat_and_ess(sub))
    r, e = r[np.isfinite(r)], e[np.isfinite(e)]
    return (float(r.max()) if r.size else None), (float(e.min()) if e.size else None)


def run_health(samples, info: dict, *, sampler: str, n_warmup: int, dim: int | None = None,
               check_energy: bool = True, energy_var_target: float | None = None) -> RunHealth:
    """Health summary of a finished run from its complete per-step ``info``.

    The counters of :class:`~smile_ref.run.stats.StepStats` are taken over ``info`` and judged by
    :func:`health_from_stats`, as :func:`smile_ref.run_chains` does with the counters it streams
    over every step.

    Parameters
    ----------
    samples : numpy.ndarray, shape (n_chains, n_draws, d)
        Recorded draws (host array).
    info : dict of numpy.ndarray, each (n_warmup + n_steps, n_chains)
        Per-step diagnostics (``rejected``, ``nonfinite``, ``step_size``, ``energy_error`` where
        the sampler reports them).
    sampler : str
        Name used in the messages.
    n_warmup : int
        Warm-up steps at the start of ``info``.
    dim : int, optional
        Dimension for ``dE^2 / d`` (default ``samples.shape[-1]``).
    check_energy : bool
        Judge ``info["energy_error"]`` (``False`` where it is not an integration error, e.g. SMILE's
        cross-batch energy error).
    energy_var_target : float, optional
        The step-size tuner's ``Var[dE] / d`` target (see :func:`health_from_stats`).

    Returns
    -------
    RunHealth

    Examples
    --------
    >>> import numpy as np
    >>> info = {"rejected": np.zeros((50, 2), bool), "step_size": np.full((50, 2), 0.1)}
    >>> h = run_health(np.random.default_rng(0).normal(size=(2, 50, 3)), info, sampler="sgld", n_warmup=0)
    >>> h.ok
    True
    >>> info["rejected"][:, 1] = True
    >>> h = run_health(np.zeros((2, 50, 3)), info, sampler="sgld", n_warmup=0)
    >>> h.ok, h.frozen.tolist()
    (False, [True, True])
    """
    from .stats import StepStats

    samples = np.asarray(samples)
    d = int(samples.shape[-1] if dim is None else dim)
    stats = StepStats.from_info(info, n_warmup, int(samples.shape[0]), d)
    return health_from_stats(samples, stats, sampler=sampler, check_energy=check_energy,
                             energy_var_target=energy_var_target)


def _exploding(above, median, spikes, limit):
    """Median ``dE^2 / d`` above ``limit`` (exactly counted for the default limit, from the histogram median
    otherwise), or too many spikes."""
    over = (above > 0.5) if limit == MAX_ENERGY_VAR_PER_DIM else (median > limit)
    return over | (spikes > MAX_SPIKE_FRACTION)


def health_from_stats(samples, stats, *, sampler: str, check_energy: bool = True,
                      energy_var_target: float | None = None) -> RunHealth:
    """Health summary of a finished run from its recorded draws and exact per-step counters.

    Parameters
    ----------
    samples : numpy.ndarray, shape (n_chains, n_draws, d)
        Recorded draws (host array).
    stats : StepStats
        :class:`~smile_ref.run.stats.StepStats` accumulated over every warm-up and sampling step
        (``ChainResult.stats``).
    sampler : str
        Name used in the messages.
    check_energy : bool
        Judge the energy error (see :func:`run_health`); ``dE^2 / d`` uses ``stats.dim``.
    energy_var_target : float, optional
        The step-size tuner's ``Var[dE] / d`` target (``Tuner.energy_var_target``): the energy limit is
        ``max(MAX_ENERGY_VAR_PER_DIM, ENERGY_LIMIT_FACTOR * energy_var_target)``.

    Returns
    -------
    RunHealth
    """
    samples = np.asarray(samples)
    n_chains = int(samples.shape[0])
    n_warmup, n_steps = stats.n_steps["warmup"], stats.n_steps["sampling"]
    phase_key = "sampling" if n_steps > 0 else "warmup"
    n_phase = n_steps if n_steps > 0 else n_warmup
    zeros = np.zeros(n_chains, dtype=np.int64)

    rej = stats.get(phase_key, "rejected")
    n_rej = zeros if rej is None else rej
    frac = n_rej / max(n_phase, 1)
    nf_all = stats.total("nonfinite")
    nf_all = zeros if nf_all is None else nf_all
    nf_samp = stats.get("sampling", "nonfinite") if n_steps > 0 else None
    nf_samp = zeros if nf_samp is None else nf_samp
    bad_draws = _nonfinite_draws(samples) if samples.size else zeros

    eps = stats.step_size_range()
    if eps is not None:
        e_min, e_max, e0 = eps
        at_floor = ((e_min <= STEP_SIZE_FLOOR * (1 + 1e-6)) & (e_min < e0)) | (e_min <= COLLAPSE_FACTOR * e0)
    else:
        e_min = e_max = None
        at_floor = np.zeros(n_chains, dtype=bool)

    # frozen by rejections: every one of the last w sampling steps rejected
    by_rej = np.zeros(n_chains, dtype=bool)
    if stats.trailing_rejected is not None and n_steps >= FROZEN_MIN_DRAWS:
        by_rej = stats.trailing_rejected >= max(10, math.ceil(n_steps / 10))
    iasg = stats.window_end is not None and bool(np.any(stats.window_end))
    frozen = by_rej if iasg else (by_rej | _frozen_positions(samples))

    evar = spikes = above = None
    if check_energy and stats.get("sampling", "energy_above") is not None and n_steps >= FROZEN_MIN_DRAWS:
        above = np.where(stats.get("sampling", "energy_nan") > 0, np.nan, stats.get("sampling", "energy_above") / n_steps)
        evar = stats.energy_median("sampling")
        spikes = stats.get("sampling", "energy_spikes") / n_steps

    drift_frac = drift_max = None
    if stats.get("sampling", "drift_noise_above") is not None and n_steps >= FROZEN_MIN_DRAWS:
        drift_frac = stats.get("sampling", "drift_noise_above") / n_steps
        drift_max = stats.get("sampling", "drift_noise_max")

    rhat_max, ess_min = _rhat_ess(samples, not np.any(bad_draws))

    problems, remedies = [], []
    phase = "sampling" if n_steps > 0 else "warm-up"
    tuned = sampler in _TUNED
    many = (frac > MAX_REJECTION_FRACTION) & (n_rej >= MIN_REJECTED)
    if np.any(many):
        k = int(np.sum(many))
        problems.append(f"{100 * float(frac[many].max()):.1f} % of {phase} steps rejected (more than "
                        f"{100 * MAX_REJECTION_FRACTION:.0f} % in {k}/{n_chains} chains)")
    if np.any(at_floor):
        problems.append(f"the step size reached the floor ({float(e_min.min()):.3g}) in "
                        f"{int(at_floor.sum())}/{n_chains} chains")
    if np.any(at_floor) or np.any(many):
        if tuned:
            remedies.append("lower step_size, or use tuner='mclmc' (Var[dE]/d target), or a longer burn_in;")
        else:
            remedies.append("lower step_size (or, for tuned samplers, a longer burn_in);")
    if np.any(frozen):
        problems.append(f"{int(frozen.sum())}/{n_chains} chains frozen (no movement over the last part of the run)")
        remedies.append("a frozen chain sits where every step fails: lower step_size and check the target and "
                        "gradient for non-finite regions;")
    if np.any(nf_samp) or np.any(bad_draws):
        what = f"{int(nf_samp.sum())} sampling steps met non-finite values (rejected)"
        if np.any(bad_draws):
            what += f", {int(bad_draws.sum())} recorded draws are non-finite"
        problems.append(what + f" in {int(np.sum((nf_samp > 0) | (bad_draws > 0)))}/{n_chains} chains")
        remedies.append("check the target and the gradient estimator for NaN/inf (log of zero, overflow) and "
                        "lower step_size;")
    limit = MAX_ENERGY_VAR_PER_DIM if energy_var_target is None else \
        max(MAX_ENERGY_VAR_PER_DIM, ENERGY_LIMIT_FACTOR * float(energy_var_target))
    exploding = np.zeros(n_chains, dtype=bool) if evar is None else _exploding(above, evar, spikes, limit)
    if np.any(exploding):
        problems.append(f"the energy error explodes in {int(exploding.sum())}/{n_chains} chains (median dE^2/d "
                        f"up to {float(evar.max()):.3g}, limit {limit:g}; up to "
                        f"{100 * float(spikes.max()):.2g} % of steps with dE^2/d > {SPIKE_ENERGY_VAR_PER_DIM:g}, limit "
                        f"{100 * MAX_SPIKE_FRACTION:g} %): the step size is far too large for the integrator")
        remedies.append("lower step_size or use a tuner (tuner='mclmc');")
    drifting = np.zeros(n_chains, dtype=bool) if drift_frac is None else drift_frac > 0.5
    if np.any(drifting):
        problems.append(f"the Langevin drift dominates the injected noise in {int(drifting.sum())}/{n_chains} chains "
                        f"(median of h G g^2/2 above {MAX_DRIFT_NOISE_RATIO:g}, largest {float(np.max(drift_max)):.3g}): "
                        "the Euler-Maruyama step is unstable or swamped by gradient noise, and its draws are not "
                        "from the target")
        remedies.append("lower step_size (the ratio scales with it);")
    remedies = list(dict.fromkeys(remedies))
    if problems:
        remedies.append("strict=True turns this warning into an error.")
    return RunHealth(sampler=sampler, n_warmup=int(n_warmup), n_steps=int(n_steps), n_rejected=n_rej,
                     rejection_fraction=frac, n_nonfinite=nf_all, n_nonfinite_sampling=nf_samp,
                     step_size_min=e_min, step_size_max=e_max, at_floor=at_floor, frozen=frozen,
                     energy_var_per_dim=evar, energy_spike_fraction=spikes, n_nonfinite_samples=bad_draws, rhat_max=rhat_max,
                     ess_min=ess_min, energy_above_fraction=above, energy_limit=limit, drift_noise_fraction=drift_frac,
                     drift_noise_max=drift_max, problems=tuple(problems), remedies=tuple(remedies))
