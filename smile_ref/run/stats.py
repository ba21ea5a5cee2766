"""Exact per-chain counters of a run's per-step ``info``, accumulated over every step.

:class:`StepStats` is what run health (:mod:`smile_ref.run.health`) reads, so that thinning the
recorded ``info`` rows (``run_chains(..., info="thinned")``) loses nothing the health checks need.
The driver feeds it each block of steps as it is copied to the host; every counter is exact:

* per phase (``"warmup"``, ``"sampling"``) and chain: the number of steps, of rejected steps
  (``info["rejected"]``) and of steps that met a non-finite value (``info["nonfinite"]``); the
  smallest, largest, first and last step size (``info["step_size"]``); the largest energy error
  ``max |dE|`` (NaN if some step had a NaN energy error); the number of steps with
  ``dE^2 / d > MAX_ENERGY_VAR_PER_DIM``, with ``dE^2 / d > SPIKE_ENERGY_VAR_PER_DIM`` and with a NaN
  ``dE``; and a histogram of ``log10(dE^2 / d)`` with :data:`BINS_PER_DECADE` bins per decade on
  ``[1e-12, 1e12]`` and one per decade from ``1e-320`` to ``1e-12`` and from ``1e12`` to ``1e308``
  (plus one bin below, for zero, and one above), used only to *report* the median of ``dE^2 / d``:
  to within a factor ``10^(1 / (2 BINS_PER_DECADE))`` on ``[1e-12, 1e12]``, ``10^(1/2)`` outside;
* per phase and chain, for the Langevin samplers that report ``info["drift_noise_ratio"]``: the number
  of steps with a ratio above :data:`~smile_ref.run.health.MAX_DRIFT_NOISE_RATIO` (NaN counts as
  above) and the largest ratio;
* per chain, over the whole run: the number of consecutive rejected steps that end at the last
  step, and the number of steps with ``info["window_end"]`` (IASG window means).

Counters of a key the sampler does not report are ``None``.  All arrays are host NumPy arrays;
:meth:`StepStats.to_arrays` / :meth:`StepStats.from_arrays` round-trip them through a checkpoint
bit for bit.
"""
from __future__ import annotations

import numpy as np

from .health import MAX_DRIFT_NOISE_RATIO, MAX_ENERGY_VAR_PER_DIM, SPIKE_ENERGY_VAR_PER_DIM

__all__ = ["StepStats", "PHASES", "BINS_PER_DECADE", "FINE_RANGE"]

PHASES = ("warmup", "sampling")
BINS_PER_DECADE = 16
FINE_RANGE = (1e-12, 1e12)  # 1/BINS_PER_DECADE-decade bins here, one-decade bins outside
_EDGES = np.concatenate([10.0 ** np.arange(-320, -12), 10.0 ** (np.arange(-12 * BINS_PER_DECADE, 12 * BINS_PER_DECADE)
                                                                  / BINS_PER_DECADE), 10.0 ** np.arange(12, 309)])
_N_BINS = _EDGES.size + 1  # underflow (incl. 0), the bins between the edges, overflow (incl. inf)

# per-phase counters: name -> (info key, dtype); energy counters follow the "energy_error" key
_COUNTS = {"rejected": "rejected", "nonfinite": "nonfinite"}
_STEP = ("step_size_min", "step_size_max", "step_size_first", "step_size_last")
_ENERGY = ("max_abs_energy_error", "energy_above", "energy_spikes", "energy_nan", "energy_hist")
_DRIFT = ("drift_noise_above", "drift_noise_max")


class StepStats:
    """Exact per-chain counters over every step of a run (see the module docstring).

    Parameters
    ----------
    n_chains : int
    dim : int
        Dimension of the target (for ``dE^2 / d``).

    Attributes
    ----------
    n_steps : dict
        ``{"warmup": int, "sampling": int}``: steps accumulated per phase.
    phase : dict of dict of numpy.ndarray
        ``phase[p][name]`` per-chain counters of phase ``p`` (``rejected``, ``nonfinite``,
        ``step_size_min``, ``step_size_max``, ``step_size_first``, ``step_size_last``,
        ``max_abs_energy_error``, ``energy_above``, ``energy_spikes``, ``energy_nan``,
        ``energy_hist``); absent names: the sampler does not report that key.
    trailing_rejected : numpy.ndarray of int64 or None
        Consecutive rejected steps ending at the last accumulated step.
    window_end : numpy.ndarray of int64 or None
        Steps with ``info["window_end"]``.

    Examples
    --------
    >>> import numpy as np
    >>> s = StepStats(2, dim=1)
    >>> s.update("sampling", {"rejected": np.array([[True, False], [True, True]])})
    >>> s.total("rejected").tolist(), s.trailing_rejected.tolist()
    ([2, 1], [2, 1])
    """

    def __init__(self, n_chains: int, dim: int):
        self.n_chains = int(n_chains)
        self.dim = max(int(dim), 1)
        self.n_steps = {p: 0 for p in PHASES}
        self.phase: dict[str, dict[str, np.ndarray]] = {p: {} for p in PHASES}
        self.trailing_rejected: np.ndarray | None = None
        self.window_end: np.ndarray | None = None

    # ------------------------------------------------------------------ accumulation
    def update(self, phase: str, block: dict) -> None:
        """Add consecutive steps of one phase: ``block[key]`` host arrays of shape (m, n_chains)."""
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        m = next((int(np.shape(v)[0]) for v in block.values()), 0)
        if m == 0:
            return
        c = self.phase[phase]
        n = self.n_chains
        for name, key in _COUNTS.items():
            if key in block:
                v = np.asarray(block[key], dtype=bool)
                c[name] = c.get(name, np.zeros(n, np.int64)) + v.sum(axis=0, dtype=np.int64)
        if "rejected" in block:
            rej = np.asarray(block["rejected"], dtype=bool)
            run = np.zeros(n, np.int64) if self.trailing_rejected is None else self.trailing_rejected
            ok = ~rej
            # rejected steps after the last accepted one; all m rejected: the run continues
            self.trailing_rejected = np.where(ok.any(axis=0), np.argmax(ok[::-1], axis=0), run + m).astype(np.int64)
        if "window_end" in block:
            we = np.asarray(block["window_end"], dtype=bool).sum(axis=0, dtype=np.int64)
            self.window_end = we if self.window_end is None else self.window_end + we
        if "step_size" in block:
            eps = np.asarray(block["step_size"], dtype=np.float64)
            if "step_size_min" not in c:
                c["step_size_min"], c["step_size_max"] = eps.min(axis=0), eps.max(axis=0)
                c["step_size_first"] = eps[0].copy()
            else:
                c["step_size_min"] = np.minimum(c["step_size_min"], eps.min(axis=0))
                c["step_size_max"] = np.maximum(c["step_size_max"], eps.max(axis=0))
            c["step_size_last"] = eps[-1].copy()
        if "energy_error" in block:
            dE = np.asarray(block["energy_error"], dtype=np.float64)
            with np.errstate(all="ignore"):
                e2 = dE ** 2 / self.dim
                amax = np.abs(dE).max(axis=0)
            if "max_abs_energy_error" not in c:
                c.update(max_abs_energy_error=amax, energy_above=np.zeros(n, np.int64),
                         energy_spikes=np.zeros(n, np.int64), energy_nan=np.zeros(n, np.int64),
                         energy_hist=np.zeros((n, _N_BINS), np.int64))
            else:
                c["max_abs_energy_error"] = np.maximum(c["max_abs_energy_error"], amax)
            c["energy_above"] += (e2 > MAX_ENERGY_VAR_PER_DIM).sum(axis=0, dtype=np.int64)
            c["energy_spikes"] += (e2 > SPIKE_ENERGY_VAR_PER_DIM).sum(axis=0, dtype=np.int64)
            nan = np.isnan(e2)
            c["energy_nan"] += nan.sum(axis=0, dtype=np.int64)
            idx = np.searchsorted(_EDGES, np.where(nan, 0.0, e2), side="right")  # NaN: not binned
            flat = (idx + _N_BINS * np.arange(n)[None, :])[~nan]
            c["energy_hist"] += np.bincount(flat, minlength=n * _N_BINS).reshape(n, _N_BINS)
        if "drift_noise_ratio" in block:
            r = np.asarray(block["drift_noise_ratio"], dtype=np.float64)
            above = ~(r <= MAX_DRIFT_NOISE_RATIO)  # NaN counts as above
            with np.errstate(all="ignore"):
                rmax = np.where(np.isnan(r).any(axis=0), np.nan, r.max(axis=0))
            if "drift_noise_above" not in c:
                c["drift_noise_above"], c["drift_noise_max"] = np.zeros(n, np.int64), rmax
            else:
                c["drift_noise_max"] = np.maximum(c["drift_noise_max"], rmax)  # NaN propagates
            c["drift_noise_above"] += above.sum(axis=0, dtype=np.int64)
        self.n_steps[phase] += m

    @classmethod
    def from_info(cls, info: dict, n_warmup: int, n_chains: int, dim: int) -> "StepStats":
        """Counters of complete per-step ``info`` arrays (rows = steps, the first ``n_warmup`` warm-up)."""
        s = cls(n_chains, dim)
        total = max((int(np.shape(v)[0]) for v in info.values()), default=0)
        w = min(int(n_warmup), total)
        s.update("warmup", {k: np.asarray(v)[:w] for k, v in info.items()})
        s.update("sampling", {k: np.asarray(v)[w:total] for k, v in info.items()})
        return s

    # ------------------------------------------------------------------ reading
    def get(self, phase: str, name: str):
        """``phase[phase][name]`` or ``None``."""
        return self.phase[phase].get(name)

    def total(self, name: str) -> np.ndarray | None:
        """A count (``rejected``, ``nonfinite``) summed over both phases; ``None`` if never reported."""
        parts = [self.phase[p][name] for p in PHASES if name in self.phase[p]]
        return None if not parts else sum(parts[1:], parts[0].copy())

    def step_size_range(self):
        """``(min, max, first)`` step size per chain over the whole run, or ``None``."""
        have = [p for p in PHASES if "step_size_min" in self.phase[p]]
        if not have:
            return None
        lo = np.minimum.reduce([self.phase[p]["step_size_min"] for p in have])
        hi = np.maximum.reduce([self.phase[p]["step_size_max"] for p in have])
        return lo, hi, self.phase[have[0]]["step_size_first"]

    def energy_median(self, phase: str) -> np.ndarray | None:
        """Median of ``dE^2 / d`` per chain from the histogram (NaN where a ``dE`` was NaN).

        The estimate is the geometric centre of the bin that holds each middle order statistic
        (their mean for an even count, as the median is the mean of the two middle values): within a factor ``10^(1 / (2 BINS_PER_DECADE))``
        of the exact median on :data:`FINE_RANGE`, ``10^(1/2)`` outside it; 0 below ``1e-320``,
        ``inf`` above ``1e308``.
        """
        c = self.phase[phase]
        if "energy_hist" not in c:
            return None
        hist = c["energy_hist"]
        # bin 0 is [0, EDGES[0]), bin i is [EDGES[i-1], EDGES[i]), the last [EDGES[-1], inf]
        logs = np.log10(_EDGES)
        centres = np.concatenate([[0.0], 10.0 ** (0.5 * (logs[:-1] + logs[1:])), [np.inf]])
        cum = np.cumsum(hist, axis=1)
        out = np.full(self.n_chains, np.nan)
        for j in range(self.n_chains):
            k = int(cum[j, -1])
            if k == 0 or c["energy_nan"][j] > 0:
                continue
            lo = int(np.searchsorted(cum[j], (k - 1) // 2, side="right"))
            hi = int(np.searchsorted(cum[j], k // 2, side="right"))
            out[j] = centres[lo] if lo == hi else 0.5 * centres[lo] + 0.5 * centres[hi]
        return out

    # ------------------------------------------------------------------ checkpoints
    def to_arrays(self, prefix: str = "stats") -> dict[str, np.ndarray]:
        """Flat ``{prefix/...: array}`` for a checkpoint or a saved result."""
        out = {f"{prefix}/n_steps": np.array([self.n_steps[p] for p in PHASES], np.int64),
               f"{prefix}/dim": np.asarray(self.dim, np.int64)}
        for p in PHASES:
            out.update({f"{prefix}/{p}/{k}": v for k, v in self.phase[p].items()})
        if self.trailing_rejected is not None:
            out[f"{prefix}/trailing_rejected"] = self.trailing_rejected
        if self.window_end is not None:
            out[f"{prefix}/window_end"] = self.window_end
        return out

    @classmethod
    def from_arrays(cls, arrays: dict, n_chains: int, prefix: str = "stats") -> "StepStats":
        """Inverse of :meth:`to_arrays`; ``KeyError``/``ValueError`` if ``arrays`` do not hold one."""
        n_steps = np.asarray(arrays[f"{prefix}/n_steps"])
        s = cls(n_chains, int(arrays[f"{prefix}/dim"]))
        if n_steps.shape != (len(PHASES),):
            raise ValueError(f"'{prefix}/n_steps' has shape {n_steps.shape}")
        s.n_steps = {p: int(n_steps[i]) for i, p in enumerate(PHASES)}
        known = set(_COUNTS) | set(_STEP) | set(_ENERGY) | set(_DRIFT)
        for key, v in arrays.items():
            parts = key.split("/")
            if len(parts) == 3 and parts[0] == prefix and parts[1] in PHASES:
                if parts[2] not in known:
                    raise ValueError(f"unknown counter {key!r}")
                want = (n_chains, _N_BINS) if parts[2] == "energy_hist" else (n_chains,)
                if np.shape(v) != want:
                    raise ValueError(f"{key!r} has shape {np.shape(v)}, expected {want}")
                s.phase[parts[1]][parts[2]] = np.array(v, copy=True)
        for name in ("trailing_rejected", "window_end"):
            v = arrays.get(f"{prefix}/{name}")
            if v is not None:
                if np.shape(v) != (n_chains,):
                    raise ValueError(f"'{prefix}/{name}' has shape {np.shape(v)}, expected ({n_chains},)")
                setattr(s, name, np.array(v, copy=True))
        return s

    def equal(self, other: "StepStats") -> bool:
        """Bit-for-bit equality of every counter (NaN equal to NaN)."""
        a, b = self.to_arrays(), other.to_arrays()
        return set(a) == set(b) and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f")
                                        for k in a)
