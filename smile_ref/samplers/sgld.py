"""Stochastic-gradient Langevin dynamics (SGLD), registered as ``"sgld"``.

Welling & Teh (ICML 2011, "Bayesian learning via stochastic gradient Langevin
dynamics"), written in the ULA form used throughout smile_ref (see
``docs/conventions-sgmcmc.md``).  For a target ``pi ∝ exp(-U)`` and an estimate
``g_hat`` of ``grad log pi = -grad U`` with noise covariance ``C``, one step,
for every chain at once, is

.. math::

    \\theta' = \\theta + h_t\\,\\hat g(\\theta) + \\sqrt{2 h_t}\\,\\xi,
    \\qquad \\xi \\sim N(0, I),

i.e. Welling & Teh's ``Delta theta = (eps_t/2) g_hat + N(0, eps_t)`` with
``eps_t = 2 h_t``.

Options
-------
schedule : ``"constant"`` (default) or ``("polynomial", a, b, gamma)``
    ``h_t = a (b + t)^{-gamma}`` (Welling & Teh Sec. 3, with their
    ``eps_t = 2 h_t``), ``t = 0, 1, ...`` counting every step (warm-up
    included).  ``step_size`` must equal ``h_0 = a b^{-gamma}`` (checked), so
    that ``step_size`` always means the first step size.  ``info["step_size"]``
    records ``h_t``, e.g. for Welling & Teh's step-size-weighted averages.
noise_correction : None or a covariance estimate ``C`` of ``g_hat`` (``(d, d)``
    SPD, ``(d,)`` diagonal or a positive scalar)
    Inject ``N(0, 2 h I - h^2 C)`` instead of ``N(0, 2 h I)``: the total noise
    ``h^2 C + (2 h I - h^2 C) = 2 h I`` is then that of full-gradient ULA, so on
    a linear-Gaussian model the stationary covariance equals noise-free ULA's
    exactly (``theory.sgld``).  Needs ``h C < 2 I``: ``ValueError`` when an
    eigenvalue of ``h_0 C`` is ``>= 2`` (``h_t`` is non-increasing, so ``h_0``
    is the worst case).  The device of the SGHMC authors' ``sgld.m``, which
    injects ``2 eta (1 - eta V / 2)``.
variant : ``"sgld"`` (default) or ``"msgld"``
    ``"msgld"``: the modified SGLD of Vollmer, Zygalakis & Teh (JMLR 2016,
    Eq. 9/20), ``theta' = theta + h_V f_hat + sqrt(h_V) (I - (h_V/2) Cov f_hat) xi``
    with ``f_hat = g_hat/2`` and ``h_V = 2h``, i.e. in our units

    .. math:: \\theta' = \\theta + h\\hat g + \\sqrt{2h}\\,(I - \\tfrac{h}{4} C)\\,\\xi,

    injected covariance ``2h I - h^2 C + h^3 C^2/8`` (noise correction to first
    order).  Needs ``noise_correction=C`` (the covariance of ``g_hat``).

``C`` is a fixed (state-independent) estimate.  With a decreasing schedule the
``(d, d)`` noise factor is recomputed on the host at every step (one small
host-to-device copy per step); with a constant step it is computed once.

Gradient at the proposal: the estimate ``g_hat(theta')`` is evaluated at the end of the step that
proposes ``theta'`` (with the mini-batch / noise draw of the *next* step) and carried in the state, so
that ``init`` evaluates ``g_hat(theta_0)`` once and every step costs one evaluation (the random stream
is consumed in the same order as drawing the batch at the start of each step, so finite runs give the
same numbers).  Guardrail: a proposal whose position, log-density or gradient estimate is not finite
is rejected (position and gradient of the accepted point kept); ``info["rejected"]`` and
``info["nonfinite"]`` flag it.  A rejected chain reuses its stored gradient (and mini-batch) in the
next step, so it never sits at a point where the next step must fail again.  A non-finite
gradient at ``initial_position`` is a ``ValueError``.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple

import numpy as np

from ..backend import device_of
from ..backend.validate import check_choice, check_host_vector, check_positive_float, check_spd
from .base import Kernel, register
from .sgmcmc_config import SGLDConfig
from .info import LangevinInfo
from .guardrails import check_initial_finite, evaluate_checked, select_chains

__all__ = ["SGLDState", "SGLD", "SGLDConfig", "build_sgld", "parse_schedule", "as_covariance"]


class SGLDState(NamedTuple):
    position: object
    grad_state: dict
    t: int
    logdensity: object = None  # (n,) estimate at position (from the carried evaluation)
    grad: object = None  # (n, d) gradient estimate at position


def parse_schedule(schedule, step_size):
    """Return ``h(t)`` for ``"constant"`` or ``("polynomial", a, b, gamma)``; check ``step_size == h(0)``."""
    if step_size is None:
        raise ValueError("step_size is required (the first step size h_0 > 0)")
    h0 = check_positive_float(step_size, "step_size")
    if schedule == "constant" or schedule is None:
        return lambda t: h0
    if not (isinstance(schedule, (tuple, list)) and len(schedule) == 4 and schedule[0] == "polynomial"):
        raise ValueError(
            "schedule must be 'constant' or ('polynomial', a, b, gamma) meaning h_t = a (b + t)^-gamma; "
            f"got {schedule!r}"
        )
    a = check_positive_float(schedule[1], "schedule a")
    b = check_positive_float(schedule[2], "schedule b")
    gamma = check_positive_float(schedule[3], "schedule gamma", allow_zero=True)
    first = a * b ** (-gamma)
    if not math.isclose(first, h0, rel_tol=1e-9):
        raise ValueError(
            f"step_size must equal the schedule's first step h_0 = a b^-gamma = {first!r}, got {step_size!r}"
        )
    return lambda t: a * (b + t) ** (-gamma)


def as_covariance(C, d: int, name: str = "noise_correction") -> np.ndarray:
    """Host ``(d, d)`` SPD matrix from a positive scalar, a ``(d,)`` diagonal or a ``(d, d)`` matrix."""
    if isinstance(C, numbers.Real) and not isinstance(C, bool):
        return check_positive_float(C, name) * np.eye(d)
    ndim = np.ndim(C) if isinstance(C, (list, tuple, np.ndarray)) else len(getattr(C, "shape", (0, 0, 0)))
    if ndim == 1:
        v = check_host_vector(C, name, d)
        if np.any(v <= 0):
            raise ValueError(f"{name} given as a (d,) diagonal must have positive entries")
        return np.diag(v)
    if ndim == 2:
        return check_spd(C, name, d)
    raise ValueError(f"{name} must be a positive scalar, a ({d},) diagonal or a ({d}, {d}) SPD matrix")


class SGLD(Kernel):
    """SGLD / noise-corrected SGLD / mSGLD kernel; see the module docstring. Build with :func:`build_sgld`.

    Examples
    --------
    >>> import numpy as np, smile_ref
    >>> from smile_ref import gradients, targets
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> t = targets.LinearRegression(X, X @ np.array([1.0, -0.5, 0.25]) + rng.normal(size=500))
    >>> res = smile_ref.run_chains("sgld", t, gradient=gradients.MiniBatch(t, batch_size=50), step_size=1e-4,
    ...                            n_chains=4, n_steps=2000, burn_in=1000, seed=0, progress=False)
    >>> res.samples.shape, res.health.ok
    ((4, 2000, 3), True)
    >>> bool(np.all(np.abs(res.samples.mean(axis=(0, 1)) - t.mean) < 0.02))
    True
    """

    name = "sgld"
    grad_evals_per_step = 1
    init_grad_evals = 1

    def __init__(self, target, gradient, backend, step_size=None, n_warmup=0, config: SGLDConfig | None = None,
                 **options):
        self.config = c = SGLDConfig.resolve(None, config, options)
        schedule, noise_correction, variant = c.schedule, c.noise_correction, c.variant
        self.target, self.gradient, self.backend = target, gradient, backend
        self.xp = backend.xp
        self.dim = d = int(target.dim)
        self.h = parse_schedule(schedule, step_size)
        self.constant = schedule in ("constant", None)
        self.variant = check_choice(variant, "variant", ("sgld", "msgld"))
        self.C = None if noise_correction is None else as_covariance(noise_correction, d)
        if self.variant == "msgld" and self.C is None:
            raise ValueError("variant='msgld' needs noise_correction=C, the covariance of the gradient estimate")
        if self.C is not None and self.variant == "sgld":
            h0 = self.h(0)
            lam = float(np.linalg.eigvalsh(self.C)[-1])
            if h0 * lam >= 2.0:
                raise ValueError(
                    "noise_correction needs h C < 2 I (injected covariance 2hI - h^2 C must be positive definite); "
                    f"largest eigenvalue of h_0 C is {h0 * lam:.6g} >= 2: reduce step_size"
                )
        self._cache: dict = {}

    def _noise_factor(self, h: float, like):
        """Backend ``(d, d)`` matrix ``L`` with ``L L^T`` = injected covariance (``None``: ``sqrt(2h) I``)."""
        if self.C is None:
            return None
        key = (h, str(like.dtype), str(device_of(like)))
        hit = self._cache.get(key)
        if hit is None:
            eye = np.eye(self.dim)
            if self.variant == "msgld":
                L = math.sqrt(2.0 * h) * (eye - 0.25 * h * self.C)
            else:
                L = np.linalg.cholesky(2.0 * h * eye - h * h * self.C)
            hit = self.xp.asarray(np.ascontiguousarray(L), dtype=like.dtype, device=device_of(like))
            if not self.constant:
                self._cache.clear()
            self._cache[key] = hit
        return hit

    def init(self, position, rng) -> SGLDState:
        gstate = self.gradient.init(position.shape[0], rng)
        batch, gstate = self.gradient.draw(gstate, rng, position)
        lp, g, finite = evaluate_checked(self.xp, self.gradient, position, batch)
        check_initial_finite(self.xp, finite, self.name)
        return SGLDState(position, gstate, 0, lp, g)

    def step(self, state: SGLDState, rng, warmup: bool):
        xp = self.xp
        x, g = state.position, state.grad
        n, d = x.shape
        h = float(self.h(state.t))
        z = rng.normal((n, d), dtype=x.dtype)
        L = self._noise_factor(h, x)
        noise = z * math.sqrt(2.0 * h) if L is None else z @ L.mT
        new = x + h * g + noise
        batch, gstate = self.gradient.draw(state.grad_state, rng, new)
        lp_new, g_new, finite = evaluate_checked(xp, self.gradient, new, batch)
        bad = ~finite
        info = LangevinInfo(
            step_size=xp.full((n,), h, dtype=x.dtype, device=device_of(x)),
            rejected=bad,
            nonfinite=bad,
            # drift^2 / injected variance, mean over coordinates: (h g)^2 / (2 h) = h g^2 / 2
            drift_noise_ratio=(0.5 * h) * xp.mean(g * g, axis=-1),
        )
        return SGLDState(select_chains(xp, bad, x, new), gstate, state.t + 1,
                         select_chains(xp, bad, state.logdensity, lp_new), select_chains(xp, bad, g, g_new)), info


@register("sgld")
def build_sgld(target, gradient, backend, step_size=None, n_warmup=0, preset=None, config=None, **options) -> SGLD:
    """Build the ``"sgld"`` sampler: ``config`` (an :class:`SGLDConfig`) with keyword ``options`` overriding its
    fields (``schedule``, ``noise_correction``, ``variant``); ``"sgld"`` has no presets."""
    return SGLD(target, gradient, backend, step_size, n_warmup, SGLDConfig.resolve(preset, config, options))
