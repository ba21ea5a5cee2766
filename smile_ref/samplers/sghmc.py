"""Stochastic-gradient Hamiltonian Monte Carlo (SGHMC), registered as ``"sghmc"``.

Chen, Fox & Guestrin (ICML 2014, "Stochastic gradient Hamiltonian Monte
Carlo"), Sec. 3.3 / Eq. (15), the "SGD with momentum" form.  With ``g_hat`` an
estimate of ``grad log pi = -grad U`` (their ``-grad U_tilde``), one step, for
every chain at once, is

.. math::

    v' = (1 - \\alpha)\\,v + \\eta\\,\\hat g(\\theta) + N\\big(0,\\,2(\\alpha - \\hat\\beta)\\,\\eta\\,I\\big),
    \\qquad \\theta' = \\theta + v',

with learning rate ``eta = step_size`` (their ``eta = eps^2 M^{-1}``), friction
``alpha`` (their ``alpha = eps M^{-1} C``) and gradient-noise estimate
``beta_hat`` (their ``beta_hat = eps M^{-1} B_hat``; ``B = eps V / 2`` for a
gradient-noise variance ``V``, so the matched value is ``beta_hat = eta V / 2``).
``v = eps M^{-1} r``, so at stationarity ``Var v ≈ eta``; ``init`` draws
``v ~ N(0, eta I)``.

Exact discrete stationary variances on a Gaussian and the energy growth of the
friction-free limit are derived in ``theory.sghmc``.

Options
-------
alpha : float in (0, 1], default 0.01 (the authors suggest 0.01-0.1)
beta_hat : float in [0, alpha], default 0.  ``beta_hat > alpha`` is an error
    (negative injected variance), as in the authors' code.

``preset="authors"`` reproduces the plain SGHMC kernel of the SMILE authors' code
(``src/kernels/sghmc.py``, ``mdecay`` their friction, ``eps`` their step size).  Their update
``m' = (1 - mdecay) m + eps g + sqrt(2 mdecay - eps^2) z``, ``x' = x + eps m'`` is this one with
``v = eps m``, i.e. the mapping ``step_size = eps^2``, ``alpha = mdecay``,
``beta_hat = eps^2 / 2 = step_size / 2``; their momentum starts at 0 and NaN gradient entries are set
to 0 and the rest clipped to ``+-1e6``.  The preset sets ``beta_hat = step_size / 2``,
``initial_velocity="zero"`` and ``gradient_clip=1e6``; pass ``step_size = eps**2`` and
``alpha = mdecay`` (default 0.05 in their code).  Explicit options win.  Their kernel clips the noise
variance at ``1e-7`` where ``eps^2 > 2 mdecay``; smile_ref raises instead (``beta_hat > alpha``).


Gradient at the proposal: as in ``"sgld"``, ``g_hat(theta')`` is evaluated at
the end of the step (with the next step's draw) and carried in the state; ``init``
evaluates it once, each step once.  Guardrails: a proposal whose position,
velocity, log-density or gradient is not finite is rejected: the position and
stored gradient of the accepted point are kept and the **velocity is set to
zero** (as SMILE's reset; keeping it would push the chain straight back into the
region that failed, and redrawing it would need random numbers on every step).
``info["rejected"]`` and ``info["nonfinite"]`` flag the step.  With ``gradient_clip`` (the authors'
preset) NaN gradient entries are set to 0 and the rest clipped, the step is kept, and
``info["nonfinite"]`` still counts it.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

from ..backend import device_of
from ..backend.validate import check_positive_float
from .base import Kernel, register
from .sgmcmc_config import SGHMC_BETA_HAT_FROM_STEP, SGHMCConfig
from .info import LangevinInfo
from .guardrails import check_initial_finite, evaluate_zero_and_clip, select_chains

__all__ = ["SGHMCState", "SGHMC", "SGHMCConfig", "build_sghmc"]


class SGHMCState(NamedTuple):
    position: object
    velocity: object
    grad_state: dict
    logdensity: object = None  # (n,) estimate at position
    grad: object = None  # (n, d) gradient estimate at position


def _real(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


class SGHMC(Kernel):
    """SGHMC kernel in SGD-with-momentum form; see the module docstring. Build with :func:`build_sghmc`.

    Examples
    --------
    >>> import numpy as np, smile_ref
    >>> from smile_ref import gradients, targets
    >>> t = targets.Gaussian.diagonal(np.array([1.0, 4.0]))
    >>> res = smile_ref.run_chains("sghmc", t, gradient=gradients.AdditiveNoise(t, 1.0), step_size=1e-2,
    ...                            n_chains=4, n_steps=4000, burn_in=500, seed=0, progress=False)
    >>> res.samples.shape, res.health.ok
    ((4, 4000, 2), True)
    """

    name = "sghmc"
    grad_evals_per_step = 1
    init_grad_evals = 1

    def __init__(self, target, gradient, backend, step_size=None, n_warmup=0, config: SGHMCConfig | None = None,
                 **options):
        self.config = c = SGHMCConfig.resolve(None, config, options)
        alpha, beta_hat, initial_velocity, gradient_clip = c.alpha, c.beta_hat, c.initial_velocity, c.gradient_clip
        self.target, self.gradient, self.backend = target, gradient, backend
        self.xp = backend.xp
        self.dim = int(target.dim)
        if step_size is None:
            raise ValueError("step_size (the learning rate eta > 0) is required")
        self.eta = check_positive_float(step_size, "step_size")
        if isinstance(beta_hat, str):
            if beta_hat != SGHMC_BETA_HAT_FROM_STEP:
                raise ValueError(f"beta_hat must be a real number or {SGHMC_BETA_HAT_FROM_STEP!r}, got {beta_hat!r}")
            beta_hat = float(step_size) / 2.0
        self.alpha = _real(alpha, "alpha")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha (friction) must lie in (0, 1], got {alpha}")
        self.beta_hat = _real(beta_hat, "beta_hat")
        if self.beta_hat < 0.0:
            raise ValueError(f"beta_hat (gradient-noise estimate) must be >= 0, got {beta_hat}")
        if self.beta_hat > self.alpha:
            raise ValueError(
                f"beta_hat={beta_hat} > alpha={alpha}: the injected variance 2 (alpha - beta_hat) eta would be "
                "negative; increase alpha or decrease beta_hat (or step_size, since the matched beta_hat is eta V / 2)"
            )
        self.noise_scale = math.sqrt(2.0 * (self.alpha - self.beta_hat) * self.eta)
        if initial_velocity not in ("sample", "zero"):
            raise ValueError(f"initial_velocity must be 'sample' (v ~ N(0, eta I)) or 'zero', got {initial_velocity!r}")
        self.initial_velocity = initial_velocity
        self.clip = None if gradient_clip is None else check_positive_float(gradient_clip, "gradient_clip")

    def _observed(self, state) -> dict:
        """``position``, ``velocity`` and the target's exact ``logdensity`` at the position."""
        return dict(super()._observed(state), velocity=state.velocity)

    def init(self, position, rng) -> SGHMCState:
        n, d = position.shape
        if self.initial_velocity == "zero":
            v = self.xp.zeros_like(position)
        else:
            v = rng.normal((n, d), dtype=position.dtype) * math.sqrt(self.eta)
        gstate = self.gradient.init(n, rng)
        batch, gstate = self.gradient.draw(gstate, rng, position)
        lp, g, finite, _ = self._evaluate(position, batch)
        check_initial_finite(self.xp, finite, self.name)
        return SGHMCState(position, v, gstate, lp, g)

    def _evaluate(self, x, batch):
        """``(logp_hat, g_hat, finite, raw_nonfinite)`` at ``x`` (:func:`~.guardrails.evaluate_zero_and_clip`)."""
        return evaluate_zero_and_clip(self.xp, self.gradient, x, batch, self.clip)

    def step(self, state: SGHMCState, rng, warmup: bool):
        xp = self.xp
        x, v = state.position, state.velocity
        n, d = x.shape
        g = state.grad
        z = rng.normal((n, d), dtype=x.dtype)
        v_new = (1.0 - self.alpha) * v + self.eta * g + self.noise_scale * z
        x_new = x + v_new
        batch, gstate = self.gradient.draw(state.grad_state, rng, x_new)
        lp_new, g_new, finite, raw_bad = self._evaluate(x_new, batch)
        bad = ~(finite & xp.all(xp.isfinite(v_new), axis=-1))
        info = LangevinInfo(
            step_size=xp.full((n,), self.eta, dtype=x.dtype, device=device_of(x)),
            rejected=bad,
            nonfinite=bad | raw_bad,
        )
        return SGHMCState(select_chains(xp, bad, x, x_new), xp.where(bad[:, None], 0.0, v_new), gstate,
                          select_chains(xp, bad, state.logdensity, lp_new), select_chains(xp, bad, g, g_new)), info


@register("sghmc")
def build_sghmc(target, gradient, backend, step_size=None, n_warmup=0, preset=None, config=None,
                **options) -> SGHMC:
    """Build the ``"sghmc"`` sampler: ``config`` (an :class:`SGHMCConfig`) or ``preset``'s record, with keyword
    ``options`` overriding its fields (``alpha``, ``beta_hat``, ``initial_velocity``, ``gradient_clip``).

    ``preset="authors"`` (``config=SGHMCConfig.authors()``): the SMILE authors' plain SGHMC (module
    docstring): ``beta_hat = step_size / 2``, ``initial_velocity="zero"``, ``gradient_clip=1e6`` unless given
    explicitly.
    """
    return SGHMC(target, gradient, backend, step_size, n_warmup, SGHMCConfig.resolve(preset, config, options))
