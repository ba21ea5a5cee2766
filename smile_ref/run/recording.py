"""Recording of the per-step ``info`` of a run into host rows, thinned like ``samples`` or in full.

Layout.  ``info[key]`` has shape ``(n_rows, n_chains)``: first the warm-up rows, then the
sampling rows; ``steps[r]`` is the 0-based step index (warm-up steps ``0 .. W-1`` first) whose
value row ``r`` holds.  With ``W`` warm-up steps, ``N`` sampling steps and thinning ``k``
(``n_draws = N // k``):

=================  ==========================================================================
mode               rows recorded
=================  ==========================================================================
sampling "all"     every sampling step (``N`` rows)
sampling "thinned" the steps that produced the draws, ``t_s = W + (s + 1) k - 1`` (``n_draws``
                   rows, row ``s`` aligned with ``samples[:, s]``)
warm-up "all"      every warm-up step (``W`` rows)
warm-up "thinned"  steps ``k-1, 2k-1, ...`` and the last warm-up step ``W-1`` (``ceil(W / k)`` rows)
"summary"          no rows (the phase is summarised by :class:`~smile_ref.run.stats.StepStats`)
=================  ==========================================================================

Each row holds every per-step key at its step.  When a phase is thinned, the rows also carry
aggregates over the **window** of the row, the steps after the previous recorded step of the same
phase up to and including the row's step (the first window of a phase starts at the phase's
first step; the ``N mod k`` sampling steps after the last draw are in no window):

* ``n_rejected``, ``n_nonfinite`` (int64): rejected / non-finite steps in the window;
* ``max_abs_energy_error``: the largest ``|energy_error|`` in the window (NaN if one was NaN).

They are present in both phases' rows whenever one phase is thinned (a step of a phase recorded in
full is a window of one step).  With both phases ``"all"`` the arrays are exactly the per-step
arrays and no aggregate is added.  Every step, recorded or not, is accumulated into the exact
counters :class:`~smile_ref.run.stats.StepStats` that run health reads.
"""
from __future__ import annotations

import numpy as np

from .stats import StepStats

__all__ = ["InfoRecorder", "INFO_MODES", "WINDOW_KEYS", "check_info_mode"]

INFO_MODES = ("thinned", "all", "summary")

#: aggregate row key -> (per-step key, reduction); see the module docstring.
WINDOW_KEYS = {"n_rejected": ("rejected", np.add), "n_nonfinite": ("nonfinite", np.add),
               "max_abs_energy_error": ("energy_error", np.maximum)}


def check_info_mode(value, name: str) -> str:
    """``value`` if it is one of :data:`INFO_MODES`; ``TypeError``/``ValueError`` naming ``name`` otherwise."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be one of {INFO_MODES} (a str), got {value!r}")
    if value not in INFO_MODES:
        raise ValueError(f"{name} must be one of {INFO_MODES}, got {value!r}")
    return value


def _window_values(key: str, v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=bool).astype(np.int64) if WINDOW_KEYS[key][1] is np.add else np.abs(v)


def window_aggregates(key: str, v: np.ndarray, ends: np.ndarray, carry: np.ndarray | None):
    """Aggregates of ``key`` over the windows ending at rows ``ends`` of the consecutive steps ``v``.

    ``carry`` is the aggregate of the steps of the current window before ``v`` (``None``: none).
    Returns ``(values at ends, carry after v)``.
    """
    op = WINDOW_KEYS[key][1]
    x = _window_values(key, v)
    m = x.shape[0]
    if ends.size == 0:
        part = op.reduce(x, axis=0)
        return x[:0], part if carry is None else op(carry, part)
    tail = int(ends[-1]) + 1
    cuts = np.concatenate([[0], ends[:-1] + 1]).astype(np.intp)
    win = op.reduceat(x[:tail], cuts, axis=0)  # piece i: steps cuts[i] .. ends[i]
    if carry is not None:
        win[0] = op(carry, win[0])
    return win, (op.reduce(x[tail:], axis=0) if tail < m else None)


class InfoRecorder:
    """Host rows of ``info`` (see the module docstring) and the exact :class:`StepStats` of a run.

    Parameters
    ----------
    mode, warmup_mode : {"thinned", "all", "summary"}
        Rows of the sampling and of the warm-up phase.
    n_warmup, n_steps, thinning, n_chains, dim : int
        The run's sizes.
    """

    def __init__(self, mode: str, warmup_mode: str, *, n_warmup: int, n_steps: int, thinning: int,
                 n_chains: int, dim: int):
        self.mode, self.warmup_mode = mode, warmup_mode
        self.n_warmup, self.n_chains = int(n_warmup), int(n_chains)
        W, N, k = int(n_warmup), int(n_steps), int(thinning)
        if warmup_mode == "all":
            w_steps = np.arange(W)
        elif warmup_mode == "thinned" and W > 0:
            w_steps = np.unique(np.concatenate([np.arange(k - 1, W, k), [W - 1]]))
        else:
            w_steps = np.arange(0)
        if mode == "all":
            s_steps = np.arange(W, W + N)
        elif mode == "thinned":
            s_steps = W + (np.arange(N // k) + 1) * k - 1
        else:
            s_steps = np.arange(0)
        self.steps = np.concatenate([w_steps, s_steps]).astype(np.int64)
        self.n_warmup_rows = int(w_steps.size)
        self.windowed = "thinned" in (mode, warmup_mode)
        self.info: dict[str, np.ndarray] = {}
        self.carry: dict[str, np.ndarray] = {}  # "<phase>/<key>": aggregate of the open window
        self.stats = StepStats(n_chains, dim)

    def _phase_mode(self, phase: str) -> str:
        return self.warmup_mode if phase == "warmup" else self.mode

    def add_block(self, t0: int, block: dict) -> None:
        """Record consecutive steps ``t0, t0 + 1, ...``: ``block[key]`` host arrays (m, n_chains)."""
        m = next((int(np.shape(v)[0]) for v in block.values()), 0)
        split = min(max(self.n_warmup - t0, 0), m)
        for phase, a, b in (("warmup", 0, split), ("sampling", split, m)):
            if b > a:
                self._add_segment(phase, t0 + a, {k: v[a:b] for k, v in block.items()})

    def _add_segment(self, phase: str, start: int, seg: dict) -> None:
        self.stats.update(phase, seg)
        if self._phase_mode(phase) == "summary":
            return
        m = next(iter(seg.values())).shape[0]
        lo, hi = np.searchsorted(self.steps, [start, start + m])
        rows = np.arange(lo, hi)
        local = self.steps[lo:hi] - start
        for key, v in seg.items():
            self._buffer(key, v.dtype)[rows] = v[local]
        if not self.windowed:
            return
        for wkey, (src, _) in WINDOW_KEYS.items():
            if src in seg:
                ck = f"{phase}/{wkey}"
                win, carry = window_aggregates(wkey, seg[src], local, self.carry.get(ck))
                self._buffer(wkey, win.dtype)[rows] = win
                if carry is None:
                    self.carry.pop(ck, None)
                else:
                    self.carry[ck] = carry

    def _buffer(self, key: str, dtype) -> np.ndarray:
        buf = self.info.get(key)
        if buf is None:
            buf = self.info[key] = np.zeros((self.steps.size, self.n_chains), dtype=dtype)
        return buf

    # ------------------------------------------------------------------ checkpoints
    def to_arrays(self) -> dict[str, np.ndarray]:
        """``info/<key>``, ``window/<phase>/<key>`` and ``stats/...`` arrays for a checkpoint."""
        out = {f"info/{k}": v for k, v in self.info.items()}
        out.update({f"window/{k}": v for k, v in self.carry.items()})
        out.update(self.stats.to_arrays())
        return out

    def restore(self, arrays: dict) -> None:
        """Load :meth:`to_arrays` output; ``ValueError``/``KeyError`` naming the entry if it does not fit."""
        want = (self.steps.size, self.n_chains)
        info = {k[len("info/"):]: np.array(v, copy=True) for k, v in arrays.items() if k.startswith("info/")}
        for k, v in info.items():
            if v.shape != want:
                raise ValueError(f"'info/{k}' has shape {v.shape}, expected {want}")
        carry = {k[len("window/"):]: np.array(v, copy=True) for k, v in arrays.items() if k.startswith("window/")}
        for k, v in carry.items():
            if v.shape != (self.n_chains,) or k.split("/")[-1] not in WINDOW_KEYS:
                raise ValueError(f"'window/{k}' is not a window aggregate of {self.n_chains} chains")
        self.stats = StepStats.from_arrays(arrays, self.n_chains)
        self.info, self.carry = info, carry
