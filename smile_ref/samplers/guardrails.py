"""Guardrails: reject non-finite or exploding steps per chain, without host syncs.

A step is rejected for a chain when its new log-density, gradient, position or
energy error is non-finite, or when ``|dE|`` exceeds ``max_energy_error``.  The
rejected chain's position, log-density and gradient are restored from before
the step (all with ``xp.where`` masks: no data-dependent shapes, no host
synchronisation), and the sampler decides what happens to the velocity.  The
count of rejections is reported in ``info["rejected"]`` and so in
``ChainResult.info``; steps that met a non-finite value are also flagged in
``info["nonfinite"]``.  NaN never reaches recorded samples.

The SGLD-family samplers (``sgld``, ``psgld``, ``sghmc``, ``bnp_sgld``,
``constant_sgd``) evaluate the gradient estimate at the *proposal* and carry
it in their state (:func:`evaluate_checked`): a proposal whose log-density,
gradient or position is not finite is rejected, and the next step reuses the
gradient of the accepted position, so a chain never sits at a point where the
next step must fail again.
"""
from __future__ import annotations

import math

import numpy as np

from ..backend import host_checks_cheap, to_numpy
from ..backend.namespace import eager_all, eager_any, eager_max, eager_min
from ..backend.validate import check_positive_float
from ..tuners.base import ResetRule

__all__ = ["step_is_bad", "step_masks", "select_chains", "default_max_energy_error", "energy_limit",
           "evaluate_checked", "evaluate_zero_and_clip", "check_initial_finite"]


def default_max_energy_error(dim: int) -> float:
    """Default energy-error guardrail ``100 max(1, sqrt(d))`` of ``"mclmc"`` and of ``"smile"``/``"psmile"`` with
    a tuner that has no reset rule of its own (``tuner="mclmc"``, the default).

    With ``Var[dE] / d`` tuned to ``5e-4``, ``|dE|`` has a standard deviation of about ``0.02 sqrt(d)``; the
    guardrail is 5000 of those, so it only catches divergences and gradient spikes.

    Examples
    --------
    >>> default_max_energy_error(1), default_max_energy_error(10000)
    (100.0, 10000.0)
    """
    return 100.0 * max(1.0, math.sqrt(int(dim)))


def energy_limit(max_energy_error: float) -> ResetRule:
    """The fixed energy guardrail as a :class:`~smile_ref.tuners.base.ResetRule`: reject ``|dE| > max_energy_error``.

    Examples
    --------
    >>> import numpy as np
    >>> energy_limit(1.0).mask(None, np.array([0.5, -2.0]), np).tolist()
    [False, True]
    """
    limit = check_positive_float(max_energy_error, "max_energy_error")

    def mask(tuner_state, energy_error, xp):
        return xp.abs(energy_error) > limit

    return ResetRule(mask, f"energy_limit({limit:g})")


def step_is_bad(xp, position, logdensity, grad, energy_error, max_energy_error: float):
    """Boolean ``(n,)`` mask of chains whose step must be rejected."""
    finite = xp.isfinite(logdensity) & xp.isfinite(energy_error)
    finite = finite & xp.all(xp.isfinite(position), axis=-1) & xp.all(xp.isfinite(grad), axis=-1)
    too_big = xp.abs(xp.where(finite, energy_error, 0.0)) > max_energy_error
    return (~finite) | too_big


def all_finite_eager(xp, a) -> bool:
    """Every entry of ``a`` finite (a host read; ``False`` may also mean "not known").

    A NumPy array is summed in one pass: a NaN or an infinite entry makes the sum non-finite, so a
    finite sum proves every entry finite; a sum that overflows returns ``False`` although every entry
    is finite, and the caller's exact path then decides.  Other namespaces take ``max`` and ``min``
    (two reductions without temporaries; NaN propagates).
    """
    if isinstance(a, np.ndarray):
        return math.isfinite(float(np.add.reduce(a, axis=None)))
    return math.isfinite(float(eager_max(xp, a))) and math.isfinite(float(eager_min(xp, a)))


def step_masks(xp, position, logdensity, grad, energy_error, max_energy_error: float, grad_finite: bool = False):
    """``(nonfinite, bad)``: :func:`step_is_bad` with ``max_energy_error = inf`` and with ``max_energy_error``.

    On NumPy and ``array_api_strict`` (:func:`~smile_ref.backend.host_checks_cheap`; host reads)
    the common case where everything is finite costs two reductions per ``(n, d)`` array instead
    of a boolean temporary and a row reduction; ``grad_finite=True`` (the caller already knows
    every entry of ``grad`` is finite) skips ``grad``.  Same masks as :func:`step_is_bad`.
    """
    if host_checks_cheap(xp):
        small = xp.isfinite(logdensity) & xp.isfinite(energy_error)
        if (eager_all(xp, small) and (grad_finite or all_finite_eager(xp, grad))
                and all_finite_eager(xp, position)):
            nonfinite = ~small
            bad = nonfinite if max_energy_error == math.inf else xp.abs(energy_error) > max_energy_error
            return nonfinite, bad
    nonfinite = step_is_bad(xp, position, logdensity, grad, energy_error, math.inf)
    if max_energy_error == math.inf:
        return nonfinite, nonfinite
    return nonfinite, step_is_bad(xp, position, logdensity, grad, energy_error, max_energy_error)


def any_chain(xp, mask) -> bool:
    """``False`` only when the namespace is eager (host reads are cheap) and no entry of ``mask`` is set.

    Lets a step skip its ``where``s when no chain is rejected; on other namespaces it is always
    ``True`` (branch-free, the ``where``s run and select nothing).
    """
    return eager_any(xp, mask) if host_checks_cheap(xp) else True


def select_chains(xp, bad, old, new):
    """``old`` where ``bad`` else ``new``; works for ``(n,)`` and ``(n, d)`` arrays."""
    mask = bad if new.ndim == 1 else bad[:, None]
    return xp.where(mask, old, new)


def evaluate_checked(xp, gradient, x, batch):
    """``(logp_hat, g_hat, finite)`` at ``x``: ``finite`` is ``(n,)``, true where ``x``, ``logp_hat`` and
    every entry of ``g_hat`` are finite."""
    lp, g = gradient.evaluate(x, batch)
    finite = xp.isfinite(lp) & xp.all(xp.isfinite(g), axis=-1) & xp.all(xp.isfinite(x), axis=-1)
    return lp, g, finite


def evaluate_zero_and_clip(xp, gradient, x, batch, clip):
    """The SMILE authors' gradient handling for the SG-MCMC kernels: ``(logp_hat, g_hat, finite, raw_nonfinite)``.

    With ``clip`` (a positive float) NaN entries of ``g_hat`` are set to 0 and the rest clipped to ``+-clip``,
    so only ``x`` and ``logp_hat`` decide ``finite``; ``raw_nonfinite`` flags the chains whose raw gradient had a
    non-finite entry (counted in ``info["nonfinite"]``).  With ``clip=None`` this is :func:`evaluate_checked`
    and ``raw_nonfinite = ~finite``.
    """
    lp, g, finite = evaluate_checked(xp, gradient, x, batch)
    if clip is None:
        return lp, g, finite, ~finite
    g = xp.clip(xp.where(xp.isnan(g), 0.0, g), -clip, clip)
    return lp, g, xp.isfinite(lp) & xp.all(xp.isfinite(x), axis=-1), ~finite


def check_initial_finite(xp, finite, sampler: str) -> None:
    """``ValueError`` naming ``initial_position`` and the chains whose log-density or gradient is not finite."""
    if not bool(xp.all(finite)):
        bad = np.flatnonzero(~np.asarray(to_numpy(finite), dtype=bool)).tolist()
        raise ValueError(f"initial_position: the log-density or gradient estimate is not finite for chains {bad} "
                         f"({sampler} cannot start there; start inside the support of the target)")
