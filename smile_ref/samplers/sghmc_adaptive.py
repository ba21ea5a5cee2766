"""Adaptive SGHMC (AdaSGHMC), registered as ``"sghmc_adaptive"``.

Springenberg, Klein, Falkner & Hutter (NeurIPS 2016, "Bayesian optimization with robust Bayesian
neural networks"), in the form of the SMILE authors' kernel
(``src/kernels/sghmc.py``: ``AdaSGHMCWarmup`` for warm-up, ``SGHMC`` for sampling).  With
``g_hat`` an estimate of ``grad log pi``, learning rate ``eta = step_size`` (``eps = sqrt(eta)``,
the authors' step size) and friction ``alpha`` (their ``mdecay``), one step, per coordinate ``i``
and for every chain at once, is

.. math::

    m' = (1 - \\alpha)\\,m + \\epsilon\\,\\hat g + z\\,\\sqrt{\\max(2\\alpha\\,s_i - \\eta\\,s_i^2,\\ 10^{-7})},
    \\qquad \\theta' = \\theta + \\epsilon\\,m' / s_i,\\qquad z \\sim N(0, 1),

with ``m`` the momentum in gradient units.  In velocity units ``v = eps m / s_i`` this is SGHMC
(``"sghmc"``) with a per-coordinate learning rate ``eta / s_i`` and gradient-noise estimate
``beta_hat_i = eta s_i / 2`` (the matched value ``eta_i V_i / 2`` for ``V_i = s_i^2``):
``v' = (1 - alpha) v + (eta/s_i) g_hat + N(0, 2 alpha eta / s_i - eta^2)``.

Preconditioner ``s_i``: during warm-up (``warmup=True`` steps of the driver) a per-chain,
per-coordinate estimate of the root second moment of the gradient, from a moving window ``tau``
(all three start at 1):

.. math::

    \\tau \\leftarrow \\tau\\,(1 - \\bar g^2 / (s^2 + 10^{-7})) + 1,\\quad
    \\bar g \\leftarrow \\operatorname{clip}(\\bar g\\,(1 - r) - \\hat g\\,r,\\ \\pm 10^6),\\quad
    s \\leftarrow \\sqrt{\\max(s^2 (1 - r) + \\hat g^2 r,\\ 10^{-7})},\\quad r = 1/(\\tau + 1),

``tau`` updated first (so ``r`` uses the new ``tau``).  For a gradient of mean small against its
spread, ``tau`` grows by about 1 per step and ``s^2`` is close to the running mean of
``g_hat^2`` over the warm-up: ``E[g_hat^2] = a^2 Var theta + V`` per coordinate on a Gaussian
``N(0, 1/a)`` with gradient-noise variance ``V``.  After warm-up ``s`` is frozen and the momentum
is set to zero once (the authors rebuild their sampler from the warm-up state, which keeps ``s``
and zeroes ``m``).  The exact stationary variance for a frozen ``s`` is derived in
``smile_ref.theory.sghmc_adaptive``.

Options
-------
alpha : float in (0, 1], default 0.05 (the authors' ``mdecay``).
moment_gradient : ``"current"`` (default) or ``"previous"``.  Which gradient enters the warm-up
    moment update of a step: the one the step uses, or the one of
    the step before (the authors' kernel, which updates the moments before it evaluates the new
    gradient; at the first step this is their initial zero gradient).
gradient_clip : positive float or None (default).  With a value (the authors' 1e6), NaN gradient
    entries are set to 0 and the rest clipped, and the step is kept.

``preset="authors"`` sets ``moment_gradient="previous"`` and ``gradient_clip=1e6``; pass
``step_size = eps**2`` and ``alpha = mdecay``.  Explicit options win.  Their kernel's
``mresampling`` (momentum resampling probability, default 0) and ``num_integration_steps``
(default 1) are fixed at their defaults.

Gradient at the proposal: as in ``"sghmc"``, ``g_hat(theta')`` is evaluated at the end of the
step and carried in the state.  Guardrails: a proposal whose position, momentum, log-density or
gradient is not finite is rejected (position and gradient kept, **momentum set to zero**);
``info["rejected"]`` and ``info["nonfinite"]`` flag the step; ``info["step_size"]`` is ``eta``
(the per-coordinate step is ``eta / s_i``).
"""
from __future__ import annotations

import math
from typing import NamedTuple

from ..backend import device_of
from ..backend.validate import check_choice, check_float_in, check_optional, check_positive_float
from .base import Kernel, register
from .sgmcmc_config import AUTHORS_ADASGHMC, AdaSGHMCConfig
from .info import LangevinInfo
from .guardrails import check_initial_finite, evaluate_zero_and_clip, select_chains

__all__ = ["AdaSGHMCState", "AdaSGHMC", "AdaSGHMCConfig", "build_sghmc_adaptive", "AUTHORS_PRESET"]

AUTHORS_PRESET = AUTHORS_ADASGHMC  # the values of preset="authors" (AdaSGHMCConfig.authors())
_FLOOR = 1e-7  # the authors' floors of s^2, of the window denominator and of the noise variance
_SMOOTH_CLIP = 1e6  # the authors' clip of the smoothed gradient


class AdaSGHMCState(NamedTuple):
    position: object
    momentum: object  # (n, d), gradient units: the velocity is sqrt(eta) * momentum / sd
    grad_state: dict
    logdensity: object  # (n,) estimate at position
    grad: object  # (n, d) gradient estimate at position
    tau: object  # (n, d) moving-window length
    smooth_grad: object  # (n, d) smoothed -gradient
    sd: object  # (n, d) root second moment of the gradient (the preconditioner)
    prev_grad: object  # (n, d) gradient of the previous step (moment_gradient="previous")
    warming: bool = False  # the last step was a warm-up step


class AdaSGHMC(Kernel):
    """Adaptive SGHMC kernel; see the module docstring. Build with :func:`build_sghmc_adaptive`.

    Examples
    --------
    >>> import numpy as np, smile_ref
    >>> from smile_ref import gradients, targets
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> t = targets.LinearRegression(X, X @ np.array([1.0, -0.5, 0.25]) + rng.normal(size=500))
    >>> res = smile_ref.run_chains("sghmc_adaptive", t, gradient=gradients.MiniBatch(t, batch_size=50),
    ...                            step_size=1e-2, n_chains=4, n_steps=2000, burn_in=1000, seed=0, progress=False)
    >>> res.samples.shape, res.health.ok
    ((4, 2000, 3), True)
    """

    name = "sghmc_adaptive"
    grad_evals_per_step = 1
    init_grad_evals = 1

    def __init__(self, target, gradient, backend, step_size=None, n_warmup=0, config: AdaSGHMCConfig | None = None,
                 **options):
        self.config = c = AdaSGHMCConfig.resolve(None, config, options)
        alpha, moment_gradient, gradient_clip = c.alpha, c.moment_gradient, c.gradient_clip
        self.target, self.gradient, self.backend = target, gradient, backend
        self.xp = backend.xp
        self.dim = int(target.dim)
        if step_size is None:
            raise ValueError("step_size (the learning rate eta = eps**2 > 0) is required")
        self.eta = check_positive_float(step_size, "step_size")
        self.eps = math.sqrt(self.eta)
        self.alpha = check_float_in(alpha, "alpha", 0.0, 1.0, lo_open=True)
        self.moment_gradient = check_choice(moment_gradient, "moment_gradient", ("current", "previous"))
        self.clip = check_optional(gradient_clip, check_positive_float, "gradient_clip")

    def init(self, position, rng) -> AdaSGHMCState:
        xp = self.xp
        gstate = self.gradient.init(position.shape[0], rng)
        batch, gstate = self.gradient.draw(gstate, rng, position)
        lp, g, finite, _ = self._evaluate(position, batch)
        check_initial_finite(xp, finite, self.name)
        ones = xp.ones_like(position)
        return AdaSGHMCState(position, xp.zeros_like(position), gstate, lp, g, ones, ones, ones,
                             xp.zeros_like(position), False)

    def _evaluate(self, x, batch):
        """``(logp_hat, g_hat, finite, raw_nonfinite)`` at ``x`` (:func:`~.guardrails.evaluate_zero_and_clip`)."""
        return evaluate_zero_and_clip(self.xp, self.gradient, x, batch, self.clip)

    def update_moments(self, tau, smooth_grad, sd, g):
        """One warm-up update of ``(tau, smooth_grad, sd)`` with the gradient ``g`` (module docstring)."""
        xp = self.xp
        tau = tau * (1.0 - smooth_grad**2 / (sd**2 + _FLOOR)) + 1.0
        tp1 = tau + 1.0
        smooth_grad = xp.clip(smooth_grad * (1.0 - 1.0 / tp1) - g / tp1, -_SMOOTH_CLIP, _SMOOTH_CLIP)
        sd = xp.sqrt(xp.clip(sd**2 * (1.0 - 1.0 / tp1) + g**2 / tp1, _FLOOR, None))
        return tau, smooth_grad, sd

    def step(self, state: AdaSGHMCState, rng, warmup: bool):
        xp = self.xp
        x, m, g = state.position, state.momentum, state.grad
        n, d = x.shape
        tau, sg, sd, prev = state.tau, state.smooth_grad, state.sd, state.prev_grad
        if warmup:
            tau, sg, sd = self.update_moments(tau, sg, sd, prev if self.moment_gradient == "previous" else g)
        elif state.warming:
            m = xp.zeros_like(m)  # the authors' sampling kernel starts from the warm-up state with m = 0
        z = rng.normal((n, d), dtype=x.dtype)
        noise = xp.sqrt(xp.clip(2.0 * self.alpha * sd - (self.eps * sd) ** 2, _FLOOR, None))
        m_new = (1.0 - self.alpha) * m + self.eps * g + z * noise
        x_new = x + self.eps * m_new / sd
        batch, gstate = self.gradient.draw(state.grad_state, rng, x_new)
        lp_new, g_new, finite, raw_bad = self._evaluate(x_new, batch)
        bad = ~(finite & xp.all(xp.isfinite(m_new), axis=-1))
        info = LangevinInfo(
            step_size=xp.full((n,), self.eta, dtype=x.dtype, device=device_of(x)),
            rejected=bad,
            nonfinite=bad | raw_bad,
        )
        new = AdaSGHMCState(select_chains(xp, bad, x, x_new), xp.where(bad[:, None], 0.0, m_new), gstate,
                            select_chains(xp, bad, state.logdensity, lp_new), select_chains(xp, bad, g, g_new),
                            tau, sg, sd, g if self.moment_gradient == "previous" else prev, bool(warmup))
        return new, info


@register("sghmc_adaptive")
def build_sghmc_adaptive(target, gradient, backend, step_size=None, n_warmup=0, preset=None, config=None,
                         **options) -> AdaSGHMC:
    """Build the ``"sghmc_adaptive"`` sampler: ``config`` (an :class:`AdaSGHMCConfig`) or ``preset``'s record, with
    keyword ``options`` overriding its fields (``alpha``, ``moment_gradient``, ``gradient_clip``).

    ``preset="authors"`` (``config=AdaSGHMCConfig.authors()``): the SMILE authors' AdaSGHMC (module docstring): ``moment_gradient="previous"``,
    ``gradient_clip=1e6`` unless given explicitly.

    Examples
    --------
    >>> import numpy as np, smile_ref
    >>> from smile_ref import gradients, targets
    >>> t = targets.Gaussian.diagonal(np.ones(2))
    >>> res = smile_ref.run_chains("sghmc_adaptive", t, gradient=gradients.AdditiveNoise(t, 1.0), step_size=1e-3,
    ...                            n_chains=2, n_steps=200, burn_in=100, seed=0, progress=False)
    >>> res.samples.shape
    (2, 200, 2)
    """
    return AdaSGHMC(target, gradient, backend, step_size, n_warmup, AdaSGHMCConfig.resolve(preset, config, options))
