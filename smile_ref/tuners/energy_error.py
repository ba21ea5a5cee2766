"""The SMILE energy-error tuner with its reset guardrail (Sommer et al. 2026, "SMILE tuner").

Rule, as in the authors' public code (``SMILET`` / ``NOISYSMILE._sample_step``),
per chain, with ``a = |dE|`` the absolute energy error of the step:

1. Fit a Gamma law to ``a`` by moments from exponential moving averages
   ``mu`` (mean) and ``s`` (standard deviation):
   ``k = mu^2 / (s^2 + 1e-6)``, ``theta = (s^2 + 1e-6) / mu``.
2. Quantiles by Wilson-Hilferty:
   ``Q(p) = theta k (1 - 1/(9k) + z_p / (3 sqrt(k)))^3``, ``z_p = Phi^{-1}(p)``.
3. Reset threshold ``R = Q(reset_prob)`` (default 0.98); a step with ``a > R``
   at counter ``t >= 10`` is rejected by the sampler (position restored,
   velocity set to zero).
4. Step size: ``eps <- eps (1 - strength)`` if ``a > Q(1 - 2 alpha/3)``,
   ``eps <- eps (1 + strength)`` if ``a < Q(alpha/3)``, ``alpha = 0.1``,
   ``strength = 0.02``; clipped to ``[1e-8, 10]``; frozen while ``t < 10``.
5. EMA update with ``beta = 0.01`` (also on reset steps, thresholds computed
   from the *old* statistics; on a reset step smile_ref feeds ``min(a, R)``
   instead of ``a``, see below): ``mu <- a`` for ``t < 3`` else
   ``(1 - beta) mu + beta a`` (clipped to ``[1e-6, 1e6]``);
   ``v <- [t != 1] (1 - beta) s^2 + beta (a - mu)^2``; ``s = sqrt(v / c)`` with
   ``c = 1`` for ``t < 5`` and ``c = 1 - 0.5^{t-4}`` otherwise (the authors' bias
   correction, reproduced as written), clipped to ``[1e-6, 1e7]``; ``t <- t + 1``.

What it converges to: the rule is *scale-free* (multiplying every ``|dE|`` by a
constant changes no decision), so it has no absolute energy-variance target.
The log step size drifts by ``strength * (P(a < D) - P(a > U))`` per step, so
``eps`` is stationary where the *shape* of the ``|dE|`` law makes the two tail
probabilities equal.  For Gaussian ``dE`` (half-normal ``a``) and
``alpha = 0.1`` the drift is about zero; Laplace and heavy-tailed ``dE`` give a
negative drift, so the step size shrinks until integration error no longer
dominates the shape (see ``docs/derivations/smile-tuner.md`` and
``tests/test_energy_error_tuner.py``).  The Wilson-Hilferty lower quantile is
``<= 0`` when ``k <~ 0.9``; then the step size can only decrease.

Death spiral and the winsorised update (``winsorize_rejected``)
----------------------------------------------------------------
In the authors' code the EMAs take the raw ``|dE|`` of a rejected step.  One
outlier (measured on the UCI bikesharing BNN with pSMILE: ``|dE| ~ 4.8e3``
against ``mu ~ 0.8``) then sets ``mu <- mu + beta a`` (~48) and
``s ~ sqrt(beta) a`` (~470), so the fitted shape ``k = mu^2/s^2`` drops to
~0.01.  There the Wilson-Hilferty cube root is negative for *every* quantile
(``1 - 1/(9k) + z/(3 sqrt k) < 0``), so ``R < 0`` and ``U < 0``: every later
step is rejected and shrinks ``eps``, and since ``s`` decays like
``(1 - beta)^{t/2}`` but ``mu`` like ``(1 - beta)^t``, ``k`` keeps falling: the
chain never recovers (``eps`` reached its floor 1e-8 with 2,462 of 3,000 steps
rejected).  A rejected step is by definition an outlier of the fitted law, so
smile_ref's default (``winsorize_rejected=True``) updates the statistics with
``min(a, R)``, the largest value the law accepts; ``False`` reproduces the
authors' code.  Non-rejected steps are unaffected.

The absorbing state, and why this is not smile_ref's default tuner
------------------------------------------------------------------
The cube's base ``1 - 1/(9k) + z/(3 sqrt k)`` is negative for ``k < k(z)`` with
``1/sqrt(k(z)) = (3 z + sqrt(9 z^2 + 36)) / 2``: ``k = 0.574`` for the grow
threshold, ``0.0278`` for the shrink threshold, ``0.0184`` for ``R``.  Below
``k_R = 0.0184`` every step is rejected and shrinks ``eps``; with the winsorised
update ``k`` is then pinned at ``k_R`` (feeding ``mu`` when ``R <= 0`` raises it
by ``1/(1 - beta)``, feeding ``R ~ 0+`` lowers it again), an absorbing state.
Two ways lead there besides a single outlier: ``|dE| << 1e-3``, where the
absolute ``1e-6`` in ``k = mu^2 / (s^2 + 1e-6)`` drives ``k`` to 0 (exact
gradients: ICG d=10 at ``eps = 1e-2`` has ``|dE| ~ 1e-8``, so ``k = 1e-6`` from
step 2); and a falling ``|dE|`` level, after which ``k`` decays like
``(1 - beta)^t`` because the variance EMA forgets at half the rate of the mean
(a warm-up transient; with a same-batch ``dE ~ eps^p`` every shrink of ``eps`` is
such a fall).  ``"smile"``/``"psmile"`` therefore default to the Var[dE]/d tuner
(``docs/smile-defaults.md``); this rule is ``tuner="energy_error"``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

from scipy.stats import norm

from ..backend import array_namespace
from ..backend.validate import check_float_in, check_positive_float
from .base import ResetRule, TuneInput, Tuner, TuningParams

__all__ = ["EnergyErrorState", "energy_error_tuner", "gamma_wilson_hilferty_quantile"]


class EnergyErrorState(NamedTuple):
    mu: Any  # (n,) EMA mean of |dE|
    s: Any  # (n,) EMA std of |dE|
    t: int  # step counter (starts at 1)


def gamma_wilson_hilferty_quantile(xp, mu, s, z: float):
    """Wilson-Hilferty quantile of the moment-fitted Gamma law of ``|dE|`` at normal score ``z``."""
    var = s * s + 1e-6
    k = mu * mu / var
    theta = var / mu
    base = 1.0 - 1.0 / (9.0 * k) + z / (3.0 * xp.sqrt(k))
    return theta * k * base * base * base


def energy_error_tuner(reset_prob: float = 0.98, alpha: float = 0.1, strength: float = 0.02,
                       smoothing: float = 0.01, freeze_steps: int = 10,
                       step_size_bounds: tuple[float, float] = (1e-8, 10.0),
                       winsorize_rejected: bool = True) -> Tuner:
    """Build the SMILE energy-error tuner (defaults: the values of all the paper's configs).

    Parameters
    ----------
    reset_prob : float in (0, 1)
        Gamma quantile above which a step is rejected (0.98; code default 0.99).
    alpha : float in (0, 1)
        Adaptation probability: shrink above ``Q(1 - 2 alpha / 3)``, grow below
        ``Q(alpha / 3)`` (0.1; code default 0.05).
    strength : float
        Multiplicative step-size change per step (0.02).
    smoothing : float
        EMA weight ``beta`` (0.01).
    freeze_steps : int
        No resets and no step-size changes while ``t < freeze_steps`` (10).
    winsorize_rejected : bool
        Update the statistics with ``min(|dE|, R)`` on rejected steps (default;
        prevents the death spiral described in the module docstring) or with
        the raw ``|dE|`` as in the authors' code (``False``).
    """
    if not isinstance(winsorize_rejected, bool):
        raise TypeError(f"winsorize_rejected must be a bool, got {winsorize_rejected!r}")
    reset_prob = check_float_in(reset_prob, "reset_prob", 0.0, 1.0, True, True)
    alpha = check_float_in(alpha, "alpha", 0.0, 1.0, True, True)
    strength = check_float_in(strength, "strength", 0.0, 1.0, False, True)
    beta = check_float_in(smoothing, "smoothing", 0.0, 1.0, True, False)
    lo, hi = (check_positive_float(v, "step_size_bounds") for v in step_size_bounds)
    z_reset = float(norm.ppf(reset_prob))
    z_up = float(norm.ppf(1.0 - 2.0 * alpha / 3.0))
    z_down = float(norm.ppf(alpha / 3.0))
    freeze = int(freeze_steps)

    def init(params: TuningParams) -> EnergyErrorState:
        xp_zero = params.step_size * 0.0
        return EnergyErrorState(xp_zero, xp_zero, 1)

    def reset_mask(state: EnergyErrorState, energy_error, xp):
        """Chains whose step is rejected: ``|dE| > Q(reset_prob)`` once ``t >= freeze_steps``."""
        if state.t < freeze:
            return xp.zeros_like(energy_error, dtype=xp.bool)
        a = xp.abs(energy_error)
        R = gamma_wilson_hilferty_quantile(xp, state.mu, state.s, z_reset)
        return a > R

    def update(state: EnergyErrorState, params: TuningParams, inp: TuneInput):
        xp = array_namespace(params.step_size)
        t = state.t
        raw = xp.abs(inp.energy_error)
        # a non-finite energy error (caught by the sampler's guardrail) shrinks the step size and
        # leaves the statistics untouched, so that one NaN cannot poison the EMAs
        finite = xp.isfinite(raw)
        a = xp.where(finite, raw, state.mu)
        eps = params.step_size
        if t >= freeze:
            if winsorize_rejected:  # a rejected step (a > R) enters the statistics as R
                R = gamma_wilson_hilferty_quantile(xp, state.mu, state.s, z_reset)
                a = xp.where(a > R, xp.where(R > 0.0, R, state.mu), a)
            U = gamma_wilson_hilferty_quantile(xp, state.mu, state.s, z_up)
            D = gamma_wilson_hilferty_quantile(xp, state.mu, state.s, z_down)
            one = xp.ones_like(a)
            factor = xp.where(a > U, (1.0 - strength) * one, xp.where(a < D, (1.0 + strength) * one, one))
        else:
            factor = xp.ones_like(a)
        factor = xp.where(finite, factor, 1.0 - strength)
        eps = xp.clip(eps * factor, lo, hi)
        mu = a if t < 3 else (1.0 - beta) * state.mu + beta * a
        mu = xp.clip(mu, 1e-6, 1e6)
        resid = a - mu
        v = beta * resid * resid if t == 1 else (1.0 - beta) * state.s * state.s + beta * resid * resid
        c = 1.0 if t < 5 else 1.0 - 0.5 ** (t - 4)
        s = xp.clip(xp.sqrt(v / c), 1e-6, 1e7)
        mu = xp.where(finite, mu, state.mu)
        s = xp.where(finite, s, state.s)
        return params._replace(step_size=eps), EnergyErrorState(mu, s, t + 1)

    return Tuner(init, update, "energy_error", None, ResetRule(reset_mask, "gamma_quantile"))
