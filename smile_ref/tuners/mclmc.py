"""MCLMC warm-up tuner: step size from the energy error, L from variances and ESS.

Reimplements the scheme of BlackJAX's ``mclmc_find_L_and_step_size``
(Robnik et al., "Microcanonical Hamiltonian Monte Carlo", JMLR 2023,
arXiv 2212.08549, Sec. "Tuning"; ``docs/derivations/mclmc-tuning.md``) as an ``init``/``update`` :class:`~smile_ref.tuners.base.Tuner`, with
MILE's warm-up split and energy-variance schedule (Sommer et al., ICLR 2025,
arXiv 2502.06335) and an explicit rejection equilibrium.

Warm-up windows (``N = n_warmup``, ``n_k = int(frac_tune_k * N)``)
--------------------------------------------------------------------
1. steps ``[0, n1)``: step size only;
2. steps ``[n1, n1+n2)``: step size and weighted streaming moments of ``x``
   (weight ``eps`` on accepted steps, 0 on rejected ones, as in BlackJAX);
   at the end ``L = sqrt(sum_i Var[x_i])`` per chain.  With
   ``diagonal_preconditioning``: ``sqrt_diag = sqrt(Var[x])``, ``L = sqrt(d)``,
   and the step size is re-tuned from a fresh average for ``n2 // 3`` steps
   taken from the start of the phase-3 window;
3. the remaining steps of ``[n1+n2, n1+n2+n3)``: step size held; positions are
   recorded in a preallocated ``(n, n_ess, d)`` buffer and at the end
   ``L = Lfactor * mean(eps) * mean_i(n_ess / ESS_i)`` per chain (skipped when
   fewer than 4 draws are left).  ``ESS_i`` is
   :func:`smile_ref.diagnostics.ess` (``method="basic"``: FFT autocovariances,
   Geyer's initial monotone sequence) of each chain alone; it splits the chain
   in halves (Vehtari et al. 2021) where BlackJAX uses the unsplit chain, which
   agree for a stationary chain up to O(1/n_ess).  ``mean(eps)`` is the mean
   step size over the window (= the held value unless rejections capped it).

Deviation from BlackJAX: BlackJAX splits ``0.1/0.1/0.1`` of the number of
*sampling* steps; here the fractions split the *warm-up* and default to MILE's
``0.8/0.1/0.1``, or, with diagonal preconditioning, to BlackJAX's proportions
``0.3/0.3/0.4`` (phase 3 includes the ``n2 // 3`` re-tune steps): the
preconditioner is only as good as the phase-2 variance estimate, and 10 % of
the warm-up halves the ESS per gradient on the d = 100 diagonal Gaussian
(``docs/performance.md``).  Steps after ``n1+n2+n3`` (when the fractions sum
to < 1) keep the held step size.

Step size (phases 1, 2 and the re-tune), per chain
-------------------------------------------------
.. math::

    \\xi = \\frac{\\Delta E^2}{d\\,V^*} + 10^{-8}, \\quad
    w = \\exp\\Big[-\\tfrac12\\Big(\\frac{\\log\\xi}{6\\,\\mathrm{trust}}\\Big)^2\\Big],

    X \\leftarrow rX + w\\,\\xi/\\epsilon^6, \\quad W \\leftarrow rW + w, \\quad
    r = \\frac{N_\\mathrm{eff}-1}{N_\\mathrm{eff}+1}, \\quad
    \\epsilon_\\mathrm{EMA} = (X/W)^{-1/6},

which uses :math:`\\mathrm{Var}[\\Delta E] \\propto \\epsilon^6` (McLachlan
integrator).  ``r`` makes the EMA's Kish effective sample size exactly
``N_eff``.  ``V*`` is ``desired_energy_var`` or, with ``energy_var_schedule``,
decays linearly over phases 1+2 (``"mile"``: 0.5 -> 0.1; MILE's own code
switches to an exponential decay when the start exceeds 2, not reproduced).

Rejected steps: an equilibrium, not a ratchet (blackjax #969, #973)
-------------------------------------------------------------------
A step the sampler's guardrail rejected (``TuneInput.rejected``, or a
non-finite ``dE``) carries no energy error.  Feeding ``dE = 0`` would read as
"step far too small" and grow ``eps`` (#969); a one-way cap
``eps_max <- 0.8 eps`` freezes the chain when the model, not the step size,
produces the NaNs (#973).  Here a rejection at step size ``eps`` is

* evidence for the step-size average: ``xi = f^-6`` with ``f = 0.8``, entered
  as ``w xi / eps_prop^6`` where ``eps_prop = (X/W)^{-1/6}`` is the uncapped
  proposal before the step ("the proposal should have been ``f * eps_prop``");
* a soft cap: ``cap <- f * eps`` on a rejection, ``cap <- cap * g`` with
  ``g = f^{-1/2}`` on every accepted step, dropped (``inf``) once it relaxes
  above the proposal; ``eps = min(eps_EMA, cap, step_size_max)``.

If rejections happen with probability ``p`` independently of ``eps``
(model-caused), the average has the fixed point
``eps_prop = eps_0 * ((1 - p f^-6) / (1 - p))^{1/6}`` (``eps_0`` the
no-rejection equilibrium; ``0.82 eps_0`` at ``p = 0.2``), and the cap has zero mean
log-drift at ``p = log g / (log g - log f) = 1/3``.  Both exist for
``p < f^6 = 0.26``: no collapse.  If rejections happen only above ``eps_bad``
(step-size-caused), both push ``eps`` back below ``eps_bad`` within a few
steps and it hovers there (rejection rate <= 26 %).  Above ``p = 0.26`` no
step size cures the rejections; ``eps`` then decays geometrically and falls
below the floor ``1e-12 * L_init`` (``sqrt(d)`` where ``L_init`` is infinite),
and :class:`RuntimeError` is raised.  At the end of the step-size tuning the
held step size is ``min(eps, f * eps_prop_last)`` when a rejection occurred in
the last ``N_eff`` steps (``eps_prop_last``: the uncapped proposal at the latest
rejection), so it lies below the step sizes just seen to fail;
afterwards the soft cap (relaxing up to the held value) remains active.

State
-----
:class:`MCLMCTunerState`: arrays only (checkpointable; the phase-2 moments and
the phase-3 buffer start as placeholders and take their shapes when their
window begins).  The phase-3 buffer is written in place (``buf[:, k, :] = x``)
so each step costs ``O(n d)``; it occupies ``n * n_ess * d`` floats.
float32 step sizes below about ``4e-7`` overflow ``eps^-6``.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, NamedTuple

from ..backend import array_namespace, device_of, to_numpy
from ..backend.validate import check_bool, check_choice, check_float_in, check_positive_float
from ..chainstats.ess import _cummin_last, autocovariance, ess
from .base import Tuner, TuneInput, TuningParams

__all__ = ["mclmc_tuner", "ess_blackjax", "MCLMCTunerState", "REJECT_SHRINK", "CAP_RELAX", "XI_REJECTED", "FLOOR_FACTOR"]

REJECT_SHRINK = 0.8  # f: a rejection says "the proposal should have been f * eps_prop"
CAP_RELAX = REJECT_SHRINK ** -0.5  # g: soft-cap growth per accepted step
FLOOR_FACTOR = 1e-12  # step-size floor relative to the initial L
MIN_ESS_DRAWS = 8  # fewer draws give no usable ESS: no ESS window, L is kept
XI_REJECTED = REJECT_SHRINK ** -6.0  # a rejected step enters the EMA as xi = f^-6
MILE_FRACTIONS = (0.8, 0.1, 0.1)  # warm-up split without preconditioning (MILE)
DIAG_FRACTIONS = (0.3, 0.3, 0.4)  # with diagonal preconditioning (BlackJAX's proportions)


class MCLMCTunerState(NamedTuple):
    """Per-chain state of :func:`mclmc_tuner` (all fields arrays with a leading chain axis)."""

    X: Any  # (n,) EMA of w * xi / eps^6
    W: Any  # (n,) EMA of w
    cap: Any  # (n,) soft step-size cap (inf = inactive)
    eps_hold: Any  # (n,) step size held after the step-size tuning
    last_rej_eps: Any  # (n,) uncapped proposal at the latest rejected step (inf = none)
    last_rej_step: Any  # (n,) its warm-up step index (-inf = none)
    n_rejected: Any  # (n,) int64 rejected warm-up steps
    L0: Any  # (n,) initial L (for the floor)
    wsum: Any  # (n,) phase-2 total weight
    mean: Any  # (n, d) phase-2 weighted mean ((n, 1) placeholder before)
    m2: Any  # (n, d) phase-2 weighted sum of squared deviations
    eps_sum: Any  # (n,) sum of step sizes over the ESS window
    buffer: Any  # (n, n_ess, d) ESS-window positions ((n, 0, 1) placeholder before)


def _windows(N: int, fr1: float, fr2: float, fr3: float, diag: bool):
    n1, n2, n3 = int(fr1 * N), int(fr2 * N), int(fr3 * N)
    n_re = n2 // 3 if (diag and n2 > 0) else 0
    e_tune = min(n1 + n2 + n_re, N)
    s_ess, e_ess = n1 + n2 + n_re, min(n1 + n2 + n3, N)
    if e_ess - s_ess < MIN_ESS_DRAWS:
        s_ess = e_ess = N + 1  # no ESS window
    return n1, n2, e_tune, s_ess, e_ess


def _check_schedule(energy_var_schedule, desired_energy_var):
    if energy_var_schedule is None:
        return desired_energy_var, desired_energy_var
    if isinstance(energy_var_schedule, str):
        if energy_var_schedule != "mile":
            raise ValueError(f"energy_var_schedule must be None, 'mile' or a (start, end) tuple, got {energy_var_schedule!r}")
        return 0.5, 0.1
    if not isinstance(energy_var_schedule, (tuple, list)) or len(energy_var_schedule) != 2:
        raise ValueError(f"energy_var_schedule must be None, 'mile' or a (start, end) tuple, got {energy_var_schedule!r}")
    return (check_positive_float(energy_var_schedule[0], "energy_var_schedule[0]"),
            check_positive_float(energy_var_schedule[1], "energy_var_schedule[1]"))


def _check_input(inp: TuneInput, eps):
    n = eps.shape[0]
    for name in ("step", "n_warmup", "dim"):
        v = getattr(inp, name)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"TuneInput.{name} must be a Python int, got {v!r}")
    if inp.n_warmup <= 0 or inp.dim <= 0 or inp.step < 0:
        raise ValueError(f"TuneInput needs step >= 0, n_warmup > 0, dim > 0; got {inp.step}, {inp.n_warmup}, {inp.dim}")
    if tuple(inp.energy_error.shape) != (n,):
        raise ValueError(f"TuneInput.energy_error must have shape ({n},), got {tuple(inp.energy_error.shape)}")
    if tuple(inp.rejected.shape) != (n,):
        raise ValueError(f"TuneInput.rejected must have shape ({n},), got {tuple(inp.rejected.shape)}")
    if tuple(inp.position.shape) != (n, inp.dim):
        raise ValueError(f"TuneInput.position must have shape ({n}, {inp.dim}), got {tuple(inp.position.shape)}")


def mclmc_tuner(desired_energy_var=5e-4, trust_in_estimate=1.5, num_effective_samples=150,
                frac_tune1=None, frac_tune2=None, frac_tune3=None, Lfactor=0.4,
                diagonal_preconditioning=False, energy_var_schedule=None, step_size_max=None,
                schedule_divisor="n12-1", moment_weight="step", ess_method="split") -> Tuner:
    """BlackJAX/MILE MCLMC warm-up tuner with a rejection equilibrium (see the module docstring).

    Parameters
    ----------
    desired_energy_var : float
        Target ``V* = Var[dE] / d`` (BlackJAX default 5e-4); ignored when
        ``energy_var_schedule`` is given.
    trust_in_estimate : float
        Width of the log-normal weight ``w(xi)`` in units of 6 (1.5).
    num_effective_samples : float > 1
        ``N_eff`` of the step-size EMA, ``r = (N_eff - 1)/(N_eff + 1)``.
    frac_tune1, frac_tune2, frac_tune3 : float in [0, 1], sum <= 1, or None
        Fractions of the warm-up for the three phases.  Defaults (``None``): MILE's 0.8/0.1/0.1 without
        preconditioning; with ``diagonal_preconditioning`` BlackJAX's proportions 0.3/0.3/0.4 (its
        0.1/0.1/0.1 of ``num_steps`` plus the step-size re-tune of ``n2 // 3`` steps), so that the variances
        behind the preconditioner are estimated over 30 % of the warm-up instead of 10 %
        (``benchmarks/mclmc_diag_ess.py``: ESS per gradient on the d = 100 diagonal Gaussian).
    Lfactor : float
        ``L = Lfactor * eps * mean_i(n / ESS_i)`` in phase 3 (0.4).
    diagonal_preconditioning : bool
        Set ``sqrt_diag = sqrt(Var[x])`` and ``L = sqrt(d)`` after phase 2.
    energy_var_schedule : None, "mile" or (start, end)
        Linear decay of ``V*`` over phases 1+2 (``"mile"`` = (0.5, 0.1)).
    step_size_max : float, optional
        Hard upper bound on the step size.
    schedule_divisor : {"n12-1", "n12+1"}
        ``energy_var_schedule`` progress at warm-up step ``t``: ``t / (n1 + n2 - 1)`` (reaches the end value
        at the last step of phase 2) or MILE's code's ``min(t / (n1 + n2 + 1), 1)``.
    moment_weight : {"step", "updated"}
        Weight of a phase-2 draw in the moments of ``x``: the step size the step used, or (MILE's code, as
        BlackJAX 1.2.2) the step size after this step's update.
    ess_method : {"split", "blackjax"}
        Phase-3 ESS of each chain: :func:`smile_ref.diagnostics.ess` (``"basic"``, split halves), or
        BlackJAX's ``effective_sample_size`` on the whole chain (MILE's code; :func:`ess_blackjax`).

    Returns
    -------
    Tuner
        ``init(params) -> MCLMCTunerState``; ``update(state, params, inp)``.
        ``update`` raises ``RuntimeError`` when the step size collapses.
    """
    desired_energy_var = check_positive_float(desired_energy_var, "desired_energy_var")
    trust = check_positive_float(trust_in_estimate, "trust_in_estimate")
    n_eff = check_positive_float(num_effective_samples, "num_effective_samples")
    if n_eff <= 1.0:
        raise ValueError(f"num_effective_samples must be > 1, got {num_effective_samples}")
    diag = check_bool(diagonal_preconditioning, "diagonal_preconditioning")
    defaults = DIAG_FRACTIONS if diag else MILE_FRACTIONS
    fr = [defaults[i] if v is None else check_float_in(v, f"frac_tune{i + 1}", 0.0, 1.0)
          for i, v in enumerate((frac_tune1, frac_tune2, frac_tune3))]
    if sum(fr) > 1.0 + 1e-9:
        raise ValueError(f"frac_tune1 + frac_tune2 + frac_tune3 must be <= 1, got {sum(fr)}")
    Lfactor = check_positive_float(Lfactor, "Lfactor")
    v_start, v_end = _check_schedule(energy_var_schedule, desired_energy_var)
    smax = None if step_size_max is None else check_positive_float(step_size_max, "step_size_max")
    check_choice(schedule_divisor, "schedule_divisor", ("n12-1", "n12+1"))
    check_choice(moment_weight, "moment_weight", ("step", "updated"))
    check_choice(ess_method, "ess_method", ("split", "blackjax"))
    r = (n_eff - 1.0) / (n_eff + 1.0)
    f, g = REJECT_SHRINK, CAP_RELAX
    xi_rej = XI_REJECTED

    def target_var(t: int, n12: int) -> float:
        if schedule_divisor == "n12+1":  # MILE's code: start - (start - end) * min(t / (n12 + 1), 1)
            return v_start - (v_start - v_end) * min(t / (n12 + 1), 1.0)
        if t >= n12 or n12 <= 1:
            return v_end
        return v_start + (v_end - v_start) * t / (n12 - 1)

    def init(params: TuningParams) -> MCLMCTunerState:
        eps = params.step_size
        xp = array_namespace(eps)
        if eps.ndim != 1 or tuple(params.L.shape) != tuple(eps.shape):
            raise ValueError(f"params.step_size and params.L must have shape (n,), got {tuple(eps.shape)}, {tuple(params.L.shape)}")
        n, dt, dev = eps.shape[0], eps.dtype, device_of(eps)

        def full(shape, v):
            return xp.full(shape, v, dtype=dt, device=dev)

        return MCLMCTunerState(
            X=full((n,), 0.0), W=full((n,), 0.0), cap=full((n,), math.inf),
            eps_hold=xp.asarray(eps, copy=True), last_rej_eps=full((n,), math.inf),
            last_rej_step=full((n,), -math.inf), n_rejected=xp.zeros((n,), dtype=xp.int64, device=dev),
            L0=xp.asarray(params.L, copy=True), wsum=full((n,), 0.0), mean=full((n, 1), 0.0),
            m2=full((n, 1), 0.0), eps_sum=full((n,), 0.0), buffer=full((n, 0, 1), 0.0),
        )

    def update(state: MCLMCTunerState, params: TuningParams, inp: TuneInput):
        eps = params.step_size
        xp = array_namespace(eps)
        _check_input(inp, eps)
        N, t, d = inp.n_warmup, inp.step, inp.dim
        if t >= N:
            return params, state
        n, dt, dev = eps.shape[0], eps.dtype, device_of(eps)
        n1, n2, e_tune, s_ess, e_ess = _windows(N, *fr, diag)
        L, sqrt_diag, st = params.L, params.sqrt_diag, state

        dE = inp.energy_error
        rej = inp.rejected | ~xp.isfinite(dE)
        V = target_var(t, n1 + n2)
        xi = xp.where(rej, 0.0, dE) ** 2 / (d * V) + 1e-8
        rej = rej | ~xp.isfinite(xi)
        # the uncapped proposal in force for this step: the EMA's value while tuning, else the held value
        if t < e_tune:
            eps_prop = _proposal(xp, st.X, st.W, eps)
        else:
            eps_prop = st.eps_hold
        st = st._replace(
            n_rejected=st.n_rejected + xp.astype(rej, xp.int64),
            last_rej_eps=xp.where(rej, eps_prop, st.last_rej_eps),
            last_rej_step=xp.where(rej, float(t), st.last_rej_step),
        )
        if t < e_tune:
            # a rejection is evidence "the proposal should have been f * eps_prop" (relative to the
            # uncapped proposal, so that soft-capped steps do not count twice)
            # accepted steps: xi / eps^6 = xi_prop / eps_prop^6 with xi_prop = xi (eps_prop / eps)^6 the
            # value the proposal would have produced (eps^6 law); the trust weight judges xi_prop, so a
            # soft-capped step is not down-weighted for being capped
            xi_prop = xp.where(rej, xi_rej, xi * (eps_prop / eps) ** 6)
            w = xp.exp(-0.5 * (xp.log(xi_prop) / (6.0 * trust)) ** 2)
            X = r * st.X + w * xi_prop / eps_prop**6
            W = r * st.W + w
            eps_ema = _proposal(xp, X, W, eps)
            cap = xp.where(rej, f * eps, g * st.cap)
            cap = xp.where(cap >= eps_ema, math.inf, cap)
            new_eps = xp.minimum(eps_ema, cap)
            st = st._replace(X=X, W=W, cap=cap)
            if n1 <= t < n1 + n2:
                w_eps = eps if moment_weight == "step" else new_eps
                st = _moments(xp, st, inp.position, xp.where(rej, 0.0, w_eps), t == n1, n, d, dt, dev)
                if t == n1 + n2 - 1:
                    var = st.m2 / xp.where(st.wsum > 0.0, st.wsum, 1.0)[:, None]
                    L = xp.sqrt(xp.sum(var, axis=1))
                    L = xp.where(L > 0.0, L, params.L)  # a phase too short to see any spread keeps L
                    if diag:
                        old = xp.ones((n, d), dtype=dt, device=dev) if sqrt_diag is None else sqrt_diag
                        sqrt_diag = xp.where(var > 0.0, xp.sqrt(var), old)
                        L = xp.full((n,), math.sqrt(d), dtype=dt, device=dev)
                        st = st._replace(X=xp.zeros_like(X), W=xp.zeros_like(W),
                                         cap=xp.full((n,), math.inf, dtype=dt, device=dev))
            if t == e_tune - 1:
                new_eps = _hand_over(xp, st, eps_ema, t, n_eff, f)  # the uncapped proposal
                st = st._replace(eps_hold=new_eps, cap=xp.full((n,), math.inf, dtype=dt, device=dev))
        else:
            cap = xp.where(rej, f * eps, g * st.cap)
            cap = xp.where(cap >= st.eps_hold, math.inf, cap)
            new_eps = xp.minimum(st.eps_hold, cap)
            st = st._replace(cap=cap)
            if s_ess <= t < e_ess:
                k = t - s_ess
                if k == 0:
                    st = st._replace(buffer=xp.zeros((n, e_ess - s_ess, d), dtype=dt, device=dev),
                                     eps_sum=xp.zeros((n,), dtype=dt, device=dev))
                st.buffer[:, k, :] = inp.position
                st = st._replace(eps_sum=st.eps_sum + eps)
                if t == e_ess - 1:  # the window has >= MIN_ESS_DRAWS draws (_windows)
                    T = e_ess - s_ess
                    tau = _mean_tau(xp, st.buffer, ess_method)
                    L_ess = Lfactor * (st.eps_sum / T) * tau
                    L = xp.where(xp.isfinite(L_ess) & (L_ess > 0.0), L_ess, L)
                    # the window's positions are needed only here: drop them from the state (memory of the
                    # sampling phase and of its checkpoints)
                    st = st._replace(buffer=xp.zeros((n, 0, 1), dtype=dt, device=dev))
        if t == N - 1:  # hand-over to sampling: the held value, below the latest failing proposal
            new_eps = _hand_over(xp, st, st.eps_hold, t, n_eff, f)
            st = st._replace(eps_hold=new_eps)
        if smax is not None:
            new_eps = xp.minimum(new_eps, smax)
        floor = FLOOR_FACTOR * xp.where(xp.isfinite(st.L0), st.L0, math.sqrt(d))
        if bool(xp.any(~(new_eps >= floor))):
            n_rej = _host_list(st.n_rejected)
            why = ("steps are rejected at every step size (non-finite values, or the sampler's energy guardrail); "
                   "the model, not the step size, produces them (or the energy error contains noise that does not "
                   "shrink with the step size, e.g. SMILE's energy_error='cross_batch')"
                   if any(k > 0 for k in n_rej) else
                   "no step was rejected, so the energy error did not shrink with the step size (an energy "
                   "error dominated by something other than integration error, e.g. gradient noise)")
            raise RuntimeError(
                f"MCLMC tuner: step size collapsed below {FLOOR_FACTOR:g} * L_init at warm-up step {t}: {why} "
                f"(rejected warm-up steps per chain: {n_rej}; step sizes: {_host_list(new_eps)})"
            )
        return TuningParams(new_eps, L, sqrt_diag), st

    return Tuner(init, update, "mclmc", float(v_end))


def _mean_tau(xp, buffer, method="split"):
    """``mean_i(T / ESS_i)`` of each chain alone, ESS from :func:`smile_ref.diagnostics.ess` (``"basic"``) or
    :func:`ess_blackjax`."""
    T = buffer.shape[1]
    if method == "blackjax":
        return xp.stack([xp.mean(T / ess_blackjax(buffer[c, :, :])) for c in range(buffer.shape[0])])
    return xp.stack([xp.mean(T / ess(buffer[c : c + 1, :, :], method="basic")) for c in range(buffer.shape[0])])


def ess_blackjax(x):
    """ESS of each column of one chain ``x`` (``(T, d)``, ``T >= 4``) as BlackJAX 1.2.2's ``effective_sample_size``.

    Unsplit chain; ``rho_t = 1 - (g_0 T/(T-1) - g_t) / g_0`` from the biased FFT autocovariance ``g_t``
    (:func:`smile_ref.diagnostics.autocovariance`), ``t < T_even = T - T mod 2``; pairs
    ``P_k = rho_{2k} + rho_{2k+1}`` kept while all of ``P_0..P_k`` are positive (last such ``k = K``, 0 if
    none), ``rho_{2K+2}`` kept if positive (the "improved" estimate), Geyer's monotone sequence (running
    minimum of the pair sums, a replaced pair entering as half its bound each), and
    ``tau = -1 + 2 sum(kept) - rho_{2K+2}``, floored at ``1 / log10(T)``; ``ESS = T / tau``.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).standard_normal((1000, 2))
    >>> ess_blackjax(x).shape
    (2,)
    """

    xp = array_namespace(x)
    dev = device_of(x)
    T, d = x.shape
    g = autocovariance(xp.permute_dims(x, (1, 0)), axis=-1)  # (d, T)
    var0 = g[:, 0:1] * T / (T - 1.0)
    wvar = var0 * (T - 1.0) / T
    te = T - T % 2
    rho = xp.concat([xp.ones((d, 1), dtype=x.dtype, device=dev), 1.0 - (var0 - g[:, 1:te]) / wvar], axis=-1)
    even, odd = rho[:, 0::2], rho[:, 1::2]
    K = even.shape[1]
    mask = xp.cumulative_sum(xp.astype(even + odd <= 0.0, xp.int64), axis=-1) == 0
    n_lead = xp.sum(xp.astype(mask, xp.int64), axis=-1)
    idx = xp.maximum(n_lead - 1, xp.zeros_like(n_lead)) + 1  # max_t + 1 (may be K: then no "improved" term)
    k = xp.arange(K, dtype=xp.int64, device=dev)[None, :]
    at = k == idx[:, None]
    zero = xp.zeros((), dtype=x.dtype, device=dev)
    odd = xp.where(mask, odd, zero)
    even = xp.where(xp.where(at, even > 0.0, mask), even, zero)
    pair = even + odd
    mono = _cummin_last(pair)
    prev = xp.concat([pair[:, 0:1], mono[:, :-1]], axis=-1)
    upd = pair > prev
    even = xp.where(upd, mono / 2.0, even)
    odd = xp.where(upd, mono / 2.0, odd)
    last = xp.minimum(idx, xp.asarray(K - 1, dtype=xp.int64, device=dev))[:, None] == k  # gather clamps in JAX
    tau = -1.0 + 2.0 * xp.sum(even + odd, axis=-1) - xp.sum(xp.where(last, even, zero), axis=-1)
    tau = xp.maximum(tau, xp.asarray(1.0 / math.log10(T), dtype=x.dtype, device=dev))
    return T / tau


def _proposal(xp, X, W, fallback):
    """``(X/W)^{-1/6}`` where ``W > 0`` (and ``X > 0``), else ``fallback``."""
    ok = (W > 0.0) & (X > 0.0)
    return xp.where(ok, (xp.where(ok, X, 1.0) / xp.where(ok, W, 1.0)) ** (-1.0 / 6.0), fallback)


def _hand_over(xp, st, eps, t, n_eff, f):
    """``min(eps, f * eps_prop_last)`` where a rejection happened in the last ``n_eff`` steps."""
    recent = (float(t) - st.last_rej_step) < n_eff
    return xp.where(recent, xp.minimum(eps, f * st.last_rej_eps), eps)


def _moments(xp, st, x, weight, first, n, d, dt, dev):
    """Weighted streaming mean and sum of squared deviations (West 1979)."""
    if first:
        st = st._replace(wsum=xp.zeros((n,), dtype=dt, device=dev), mean=xp.zeros((n, d), dtype=dt, device=dev),
                         m2=xp.zeros((n, d), dtype=dt, device=dev))
    wsum = st.wsum + weight
    frac = xp.where(wsum > 0.0, weight / xp.where(wsum > 0.0, wsum, 1.0), 0.0)[:, None]
    delta = x - st.mean
    mean = st.mean + frac * delta
    m2 = st.m2 + weight[:, None] * delta * (x - mean)
    return st._replace(wsum=wsum, mean=mean, m2=m2)


def _host_list(a):
    return to_numpy(a).tolist()
