"""Preconditioned SGLD with an RMSprop preconditioner (pSGLD), registered as ``"psgld"``.

Li, Chen, Carlson & Carin (AAAI 2016, "Preconditioned stochastic gradient
Langevin dynamics for deep neural networks"), Algorithm 1, in the ULA units of
smile_ref (their ``eps_t = 2 h_t``).  One step, for every chain at once:

.. math::

    V &\\leftarrow \\alpha V + (1-\\alpha)\\,\\hat g \\odot \\hat g, \\qquad
    G = 1 \\oslash (\\lambda + \\sqrt V), \\\\
    \\theta' &= \\theta + h\\,G \\odot \\hat g + h\\,\\Gamma + \\sqrt{2 h G} \\odot \\xi,
    \\qquad \\Gamma_i = \\partial G_i / \\partial\\theta_i,

with ``V_0 = 0``, ``alpha = 0.99``, ``lam = 1e-5`` (the paper's defaults).
Li et al. accumulate ``V`` from the mean per-example likelihood gradient
``g_bar``; here it is accumulated from the estimator's ``g_hat`` (the full
log-posterior estimate ``≈ N g_bar`` for large ``N``), so ``G`` is about
``N`` times smaller than theirs for the same data (``docs/conventions-sgmcmc.md``).

The divergence term ``Gamma``
-----------------------------
For a state-dependent diagonal preconditioner ``G(theta)`` the Itô SDE
``d theta = [G grad log pi + Gamma] dt + sqrt(2G) dW`` leaves ``pi`` invariant
only with ``Gamma_i = d G_i / d theta_i``.  RMSprop's ``G_t`` is a function of
the *history* of gradients ``g_hat(theta_1), ..., g_hat(theta_t)``, hence of
``theta`` only indirectly; Li et al. drop ``Gamma`` in practice, arguing it is
``O(1 - alpha)`` when ``V`` changes slowly.  ``gamma_correction`` (default
``False``, the paper's practice):

* with the RMSprop preconditioner, ``True`` treats ``V`` as frozen within the
  step (a function of the past only), for which ``Gamma = 0`` exactly: both
  settings then run the same update.  The contribution of the *current*
  gradient to ``V``, ``Gamma_i = -(1-alpha) g_i d_i g_i / ((lam + sqrt V_i)^2 sqrt V_i)``
  (needs the Hessian diagonal), is **not** computed: pSGLD as implemented is
  biased by ``O(1 - alpha)`` and by the ``O(h)`` discretisation.
* with ``preconditioner=callable(theta) -> G`` (shape ``(n, d)``, a genuinely
  state-dependent diagonal preconditioner; ``V`` is then unused),
  ``gamma_correction=True`` adds ``h Gamma`` with
  ``Gamma = divergence(theta)`` (required, shape ``(n, d)``).  Without it the
  1-D stationary density of the SDE is ``∝ pi(theta) / G(theta)`` (zero
  probability flux; ``theory.psgld``): the bias of dropping ``Gamma`` is
  computable and tested.

Options: ``alpha``, ``lam``, ``schedule`` (as for ``"sgld"``),
``gamma_correction``, ``preconditioner``, ``divergence``.  As in ``"sgld"``, the
gradient estimate is evaluated at the proposal (with the next step's draw) and
carried in the state: ``init`` evaluates it once, each step once.  Guardrails: a
proposal whose position, log-density or gradient is not finite, or whose
preconditioner is not finite and positive, is rejected (position, ``V`` and the
stored gradient of the accepted point kept; ``info["rejected"]``,
``info["nonfinite"]``).
"""
from __future__ import annotations

from typing import NamedTuple

from ..backend import device_of
from ..backend.validate import check_float_in, check_positive_float
from .base import Kernel, register
from .sgmcmc_config import PSGLDConfig
from .info import LangevinInfo
from .guardrails import check_initial_finite, evaluate_checked, select_chains
from .sgld import parse_schedule

__all__ = ["PSGLDState", "PSGLD", "PSGLDConfig", "build_psgld"]


class PSGLDState(NamedTuple):
    position: object
    V: object
    grad_state: dict
    t: int
    logdensity: object = None  # (n,) estimate at position
    grad: object = None  # (n, d) gradient estimate at position


class PSGLD(Kernel):
    """pSGLD kernel; see the module docstring. Build with :func:`build_psgld`.

    Examples
    --------
    >>> import numpy as np, smile_ref
    >>> from smile_ref import gradients, targets
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> t = targets.LinearRegression(X, X @ np.array([1.0, -0.5, 0.25]) + rng.normal(size=500))
    >>> res = smile_ref.run_chains("psgld", t, gradient=gradients.MiniBatch(t, batch_size=50), step_size=1e-4,
    ...                            n_chains=4, n_steps=2000, burn_in=1000, seed=0, progress=False)
    >>> res.samples.shape, res.health.ok
    ((4, 2000, 3), True)
    """

    name = "psgld"
    grad_evals_per_step = 1
    init_grad_evals = 1

    def __init__(self, target, gradient, backend, step_size=None, n_warmup=0, config: PSGLDConfig | None = None,
                 **options):
        self.config = c = PSGLDConfig.resolve(None, config, options)
        alpha, lam, schedule, gamma_correction, preconditioner, divergence = c.alpha, c.lam, c.schedule, c.gamma_correction, c.preconditioner, c.divergence
        self.target, self.gradient, self.backend = target, gradient, backend
        self.xp = backend.xp
        self.dim = int(target.dim)
        self.h = parse_schedule(schedule, step_size)
        self.alpha = check_float_in(alpha, "alpha", 0.0, 1.0, lo_open=True, hi_open=True)
        self.lam = check_positive_float(lam, "lam")
        if not isinstance(gamma_correction, bool):
            raise TypeError(f"gamma_correction must be a bool, got {gamma_correction!r}")
        self.gamma_correction = gamma_correction
        if preconditioner is not None and not callable(preconditioner):
            raise TypeError("preconditioner must be None or a callable theta (n, d) -> G (n, d)")
        if divergence is not None and not callable(divergence):
            raise TypeError("divergence must be None or a callable theta (n, d) -> Gamma (n, d)")
        if divergence is not None and preconditioner is None:
            raise ValueError("divergence is only used with a state-dependent preconditioner=callable")
        if gamma_correction and preconditioner is not None and divergence is None:
            raise ValueError(
                "gamma_correction=True with preconditioner=callable needs divergence=callable(theta) -> "
                "Gamma with Gamma_i = dG_i/dtheta_i, shape (n, d)"
            )
        self.preconditioner, self.divergence = preconditioner, divergence

    def init(self, position, rng) -> PSGLDState:
        xp = self.xp
        V = xp.zeros(position.shape, dtype=position.dtype, device=device_of(position))
        gstate = self.gradient.init(position.shape[0], rng)
        batch, gstate = self.gradient.draw(gstate, rng, position)
        lp, g, finite = evaluate_checked(xp, self.gradient, position, batch)
        check_initial_finite(xp, finite, self.name)
        return PSGLDState(position, V, gstate, 0, lp, g)

    def _check(self, arr, x, name):
        if tuple(arr.shape) != tuple(x.shape):
            raise ValueError(f"{name}(theta) must return shape {tuple(x.shape)}, got {tuple(arr.shape)}")
        return arr

    def step(self, state: PSGLDState, rng, warmup: bool):
        xp = self.xp
        x = state.position
        n, d = x.shape
        h = float(self.h(state.t))
        g = state.grad
        z = rng.normal((n, d), dtype=x.dtype)
        if self.preconditioner is None:
            V = self.alpha * state.V + (1.0 - self.alpha) * (g * g)
            G = 1.0 / (self.lam + xp.sqrt(V))
            drift = G * g  # Gamma = 0 for V frozen within the step (see module docstring)
        else:
            V = state.V
            G = self._check(self.preconditioner(x), x, "preconditioner")
            drift = G * g
            if self.gamma_correction:
                drift = drift + self._check(self.divergence(x), x, "divergence")
        new = x + h * drift + xp.sqrt((2.0 * h) * G) * z
        batch, gstate = self.gradient.draw(state.grad_state, rng, new)
        lp_new, g_new, finite = evaluate_checked(xp, self.gradient, new, batch)
        bad = ~(finite & xp.all(xp.isfinite(drift), axis=-1)
                & xp.all(xp.isfinite(G), axis=-1) & xp.all(G > 0, axis=-1))
        info = LangevinInfo(
            step_size=xp.full((n,), h, dtype=x.dtype, device=device_of(x)),
            rejected=bad,
            nonfinite=bad,
            # drift^2 / injected variance, mean over coordinates: (h G g)^2 / (2 h G) = h G g^2 / 2
            drift_noise_ratio=(0.5 * h) * xp.mean(drift * g, axis=-1),
        )
        return PSGLDState(select_chains(xp, bad, x, new), select_chains(xp, bad, state.V, V), gstate, state.t + 1,
                          select_chains(xp, bad, state.logdensity, lp_new), select_chains(xp, bad, g, g_new)), info


@register("psgld")
def build_psgld(target, gradient, backend, step_size=None, n_warmup=0, preset=None, config=None, **options) -> PSGLD:
    """Build the ``"psgld"`` sampler: ``config`` (a :class:`PSGLDConfig`) with keyword ``options`` overriding its
    fields; ``"psgld"`` has no presets."""
    return PSGLD(target, gradient, backend, step_size, n_warmup, PSGLDConfig.resolve(preset, config, options))
