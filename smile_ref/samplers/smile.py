"""SMILE and pSMILE: stochastic-gradient microcanonical Langevin steps (Sommer et al. 2026).

Registered as ``"smile"`` and ``"psmile"``.  Name mapping to the paper:

=====================  ==================================================
paper                  smile_ref
=====================  ==================================================
SMILE                  ``"smile"`` with ``tuner="energy_error"`` (the authors' Gamma tuner)
SMILE-naive            ``"smile"`` with ``tuner=None`` and a fixed ``step_size``
pSMILE                 ``"psmile"``
pSMILE-naive           ``"psmile"`` with ``tuner=None``
MILE                   ``"mclmc"`` with ``tuner="mile"`` (full batch)
=====================  ==================================================

One step (McLachlan isokinetic integrator, authors' ``src/kernels/smile.py``):

1. draw one mini-batch ``B_t`` (or one noise draw) for the whole step;
2. ``B A B A B`` with ``A: x <- x + tau S u`` followed by a gradient on
   ``B_t`` and ``B: esh_velocity_update(u, S g_hat, tau)``; the first ``B``
   reuses the gradient stored at the end of the previous step (batch
   ``B_{t-1}``), so a step costs 2 mini-batch gradients;
3. gradients: entries clipped to ``+-gradient_clip`` (1e6); a gradient with a
   NaN or infinite entry makes the step non-finite, so it is rejected
   (``nonfinite_gradient="reject"``, the default); ``nonfinite_gradient="zero_and_clip"``
   is the authors' code: NaN entries set to 0 and infinite ones clipped, the
   step kept unless the whole gradient is NaN.  Either way the step is flagged in
   ``info["nonfinite"]``.  After a rejected non-finite step the next step of that chain
   integrates with half the step size (``backoff``, halved again after every further
   non-finite step, back to 1 after any other step): with the velocity zeroed and the
   stored gradient restored the next step would otherwise repeat the failed move exactly
   and the chain would freeze at the border of a non-finite region.  The tuner's step
   size (``info["step_size"]``) is not changed; ``nonfinite_backoff=False`` (the authors'
   preset) turns the halving off;
4. energy error ``dE = dK - (l_new - l_old)``: by default both log-densities
   use ``B_t`` (``energy_error="same_batch"``; one extra log-density
   evaluation, counted as one gradient evaluation); the authors' code uses
   ``l_old`` from ``B_{t-1}`` (``energy_error="cross_batch"``), which adds an
   ``eps``-independent batch-noise term to ``dE``;
5. reset guardrail: a chain whose ``|dE|`` exceeds ``max_energy_error`` (default
   ``100 max(1, sqrt(d))`` as in ``"mclmc"``, for the default ``tuner="mclmc"`` and any tuner
   without its own reset rule; with ``tuner="energy_error"``: the tuner's Gamma quantile after
   step 10 instead; with ``tuner=None``: only ``max_energy_error`` if given), or whose step
   produced a non-finite value, is rejected:
   position restored, **velocity set to zero** (the next ``B`` then points
   along the next gradient); by default the stored log-density and gradient are
   restored too; ``reset_keeps_rejected_gradient=True`` reproduces the
   authors' code, which keeps those of the rejected position;
6. tuner update: by default the Var[dE]/d tuner (``tuner="mclmc"``,
   :func:`~smile_ref.tuners.mclmc.mclmc_tuner`, target ``Var[dE] / d = 5e-4``), which adapts
   during warm-up (``burn_in``) and holds the step size afterwards; ``tuner="energy_error"``
   is the authors' Gamma energy-error tuner
   (:func:`~smile_ref.tuners.energy_error.energy_error_tuner`), which stays active during
   sampling unless ``adapt_during_sampling=False``;
7. ``"psmile"``: ``S = diag(1 / sigma_tilde)`` from
   :func:`~smile_ref.preconditioners.noise_scale.noise_scale_preconditioner`,
   held fixed within a step and updated after it with the raw final gradient;
   keeps adapting through warm-up and sampling unless
   ``freeze_preconditioner=True`` (frozen after warm-up).  The estimate is the temporal variance of the raw
   gradient, noise *plus* the score's variation along the path: where the latter is not small against the
   noise (low-noise problems) ``S`` is not the ideal ``1/sigma`` and a continuous-time bias remains
   (predicted for long EMA windows by :mod:`smile_ref.theory.psmile_ema`); ``preconditioner="dense"`` (an smile_ref
   extension for correlated noise) uses ``S = c C^{-1/2}`` from the EMA gradient covariance ``C``
   (:func:`~smile_ref.preconditioners.noise_scale.dense_noise_scale_preconditioner`).

Code layout: ``run_chains`` calls :meth:`SMILE.step`, which is :meth:`SMILE.transition` (steps 1-5 at the
step size, ``L`` and ``S`` of ``state.adaptation``; the integrator is
:func:`~smile_ref.integrators.isokinetic.isokinetic_step_carry` and its ESH velocity update) followed by
:meth:`~smile_ref.samplers.adaptation.Adaptation.update` (steps 6-7 and the warm-up clock).

Why the default is not the authors' Gamma tuner: with the same-batch energy error its fitted
Gamma shape collapses whenever the level of ``|dE|`` falls faster than its moving averages
forget (after a warm-up transient, or because the step size shrank), and at ``|dE| < 1e-3`` its
absolute ``1e-6`` regulariser does the same; below a shape of 0.018 every quantile is negative, so
every step is rejected and shrinks the step size, an absorbing state (ICG d=10 at
``step_size=1e-2``: 100 % rejections and ``eps = 1e-8`` after 700 steps).  See
``docs/smile-defaults.md``; ``tuner="energy_error"`` keeps the authors' rule exactly.

``preset="authors"`` reproduces the authors' code (``SMILE``/``SMILET``/``NOISYSMILE`` of
``src/kernels/smile.py``) exactly; see :data:`AUTHORS_PRESETS` and ``docs/conventions.md``.

Partial refresh: ``refresh=None`` (default) turns MCLMC's partial refresh on only for an exact
(non-stochastic) gradient with ``tuner="mclmc"``, with ``L = sqrt(d)`` initially and tuned by the
tuner (without gradient noise the dynamics would be deterministic and not sample the target);
otherwise no refresh (the gradient noise is the only randomness, as in the authors' code).
``refresh=True`` with ``L`` adds it explicitly, ``refresh=False`` never.  The initial velocity is
zero.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple

import numpy as np

from ..backend.validate import check_bool, check_choice, check_positive_float
from ..errors import SmileRefWarning
from ..integrators.coefficients import get_integrator
from ..backend import host_checks_cheap
from ..backend.namespace import eager_max, eager_min
from ..integrators.isokinetic import IntegratorState, isokinetic_step_carry
from ..integrators.esh_lean import ESH_FORM_NAMES
from ..integrators.metric import DenseMetric
from ..integrators.refresh import partial_refresh
from ..preconditioners.noise_scale import dense_noise_scale_preconditioner, noise_scale_preconditioner
from ..tuners.base import Tuner, TuningParams, identity
from ..tuners.energy_error import energy_error_tuner
from ..tuners.mclmc import mclmc_tuner
from .adaptation import Adaptation, AdaptationInput, AdaptationState, adaptation_view
from .base import IsokineticKernel, register
from .smile_config import AUTHORS_PRESETS, DEFAULT_TUNER, SMILEConfig, apply_preset
from .info import IsokineticInfo
from .guardrails import (any_chain, check_initial_finite, default_max_energy_error, energy_limit, select_chains,
                         step_masks)

__all__ = ["SMILEState", "SMILE", "build_smile", "build_psmile", "SMILEConfig", "DEFAULT_TUNER", "AUTHORS_PRESETS",
           "apply_preset"]


class SMILEState(NamedTuple):
    integrator: IntegratorState
    adaptation: AdaptationState  # step size, L, tuner and preconditioner states, the warm-up clock
    grad_state: dict
    grad_sqrt_diag: Any = None  # first_b_preconditioner="previous": the S the stored gradient was scaled by
    sampling_started: bool = False  # warmup_boundary_reset: the boundary reset has been applied
    backoff: Any = None  # (n,) factor on the integrator's step size: halved after each non-finite step
    direction: Any = None  # the last B's e = S g/|S g| and |S g|, reused by the next step's first B (a cache)

    _transient = ("direction",)  # not checkpointed: recomputed bit-identically when None

    @property
    def position(self):
        """``(n, d)`` positions of the chains (the integrator state's), as every sampler state has."""
        return self.integrator.position

    # read through to the adaptation state: step size, L (MCLMC: and M^{-1/2}) of the next step, ...
    params = adaptation_view("params")
    tuner_state = adaptation_view("tuner_state")
    precond_state = adaptation_view("precond_state")
    warmup_step = adaptation_view("warmup_step")


class SMILE(IsokineticKernel):
    """SMILE / pSMILE kernel; see the module docstring. Build with :func:`build_smile` / :func:`build_psmile`.

    Examples
    --------
    >>> import numpy as np, smile_ref
    >>> from smile_ref import gradients, targets
    >>> t = targets.Gaussian.diagonal(np.array([1.0, 4.0]))
    >>> res = smile_ref.run_chains("smile", t, step_size=0.5, n_chains=4, n_steps=2000, burn_in=500,
    ...                            seed=0, progress=False)
    >>> res.samples.shape, res.health.ok
    ((4, 2000, 2), True)
    >>> bool(abs(res.samples[..., 1].var() - 4.0) < 0.5)
    True

    pSMILE with additive gradient noise of standard deviation 1 (preconditioned by its estimated scale):

    >>> res = smile_ref.run_chains("psmile", t, gradient=gradients.AdditiveNoise(t, 1.0), step_size=0.1,
    ...                            n_chains=4, n_steps=2000, burn_in=1000, seed=0, progress=False)
    >>> res.health.ok
    True
    """

    _ones_memo = None  # the last all-ones backoff array made by transition (reused while no step is non-finite)

    def __init__(self, target, gradient, backend, step_size, n_warmup, config: SMILEConfig | None = None, *,
                 preconditioned=False):
        if config is None:
            config = SMILEConfig()
        if not isinstance(config, SMILEConfig):
            raise TypeError(f"config must be a SMILEConfig, got {type(config).__name__}")
        self.config = c = config
        integrator, tuner, tuner_options = c.integrator, c.tuner, c.tuner_options
        adapt_during_sampling, refresh, L, energy_error = c.adapt_during_sampling, c.refresh, c.L, c.energy_error
        reset_keeps_rejected_gradient, gradient_clip, max_energy_error = (
            c.reset_keeps_rejected_gradient, c.gradient_clip, c.max_energy_error)
        freeze_preconditioner, preconditioner, preconditioner_options = (
            c.freeze_preconditioner, c.preconditioner, c.preconditioner_options)
        nonfinite_gradient, nonfinite_backoff = c.nonfinite_gradient, c.nonfinite_backoff
        self.esh_form = check_choice(c.esh_form, "esh_form", ESH_FORM_NAMES)
        self.name = "psmile" if preconditioned else "smile"
        self.target, self.gradient, self.backend, self.xp = target, gradient, backend, backend.xp
        self.dim = int(target.dim)
        self.n_warmup = int(n_warmup)
        if step_size is None:
            raise ValueError(f"step_size is required for {self.name!r} (the initial step size; the paper "
                             "chooses it from {1e-2, 1e-3, 1e-4})")
        self.step_size0 = check_positive_float(step_size, "step_size")
        self.coefficients = get_integrator(integrator)
        self.energy_error = check_choice(energy_error, "energy_error", ("same_batch", "cross_batch"))
        self.judge_energy_error = self.energy_error != "cross_batch"  # cross-batch dE holds a batch difference
        self.keep_rejected = check_bool(reset_keeps_rejected_gradient, "reset_keeps_rejected_gradient")
        self.clip = check_positive_float(gradient_clip, "gradient_clip")
        self._clip_sq_half = 0.25 * self.clip * self.clip  # (clip / 2)^2: see _evaluate
        self.nonfinite_gradient = check_choice(nonfinite_gradient, "nonfinite_gradient", ("reject", "zero_and_clip"))
        self.nonfinite_backoff = check_bool(nonfinite_backoff, "nonfinite_backoff")
        if refresh is not None:
            refresh = check_bool(refresh, "refresh (None for automatic, True or False)")
        stochastic = bool(getattr(gradient, "stochastic", False))
        # automatic refresh: an exact gradient leaves the dynamics deterministic (no gradient noise), so the
        # default Var[dE]/d tuner path adds MCLMC's partial refresh with L tuned by that tuner
        self.auto_refresh = refresh is None and tuner == "mclmc" and not stochastic
        self.refresh = self.auto_refresh or bool(refresh)
        if self.refresh and L is None and not self.auto_refresh:
            raise ValueError("refresh=True needs L (the momentum decoherence length)")
        if L is not None:
            self.L0 = check_positive_float(L, "L")
        else:
            self.L0 = math.sqrt(self.dim) if self.auto_refresh else math.inf
        self.adapt_during_sampling = check_bool(adapt_during_sampling, "adapt_during_sampling")
        tuner_options = dict(tuner_options or {})
        if tuner is None:
            self.tuner = identity()
        elif isinstance(tuner, Tuner):
            self.tuner = tuner
        else:
            check_choice(tuner, "tuner", ("energy_error", "mclmc"))
            self.tuner = energy_error_tuner(**tuner_options) if tuner == "energy_error" else mclmc_tuner(**tuner_options)
        if tuner == "mclmc" and self.energy_error == "cross_batch" and stochastic:
            raise ValueError(
                "energy_error='cross_batch' adds the difference of two mini-batch (or noise-draw) log-densities to "
                "dE, which does not shrink with the step size, so tuner='mclmc' (the default, a Var[dE]/d target) "
                "cannot tune on it; use energy_error='same_batch' (the default) or the authors' combination "
                "tuner='energy_error' (docs/smile-defaults.md)")
        if tuner == "mclmc" and self.n_warmup == 0:
            warnings.warn(f"{self.name!r} with tuner='mclmc' (the default) tunes the step size during warm-up "
                          f"only; with burn_in=0 it stays at step_size={self.step_size0:g} for the whole run. "
                          "Pass burn_in (e.g. 1000), or tuner=None for a fixed step size on purpose.",
                          SmileRefWarning, stacklevel=4)
        if max_energy_error is not None:
            self.max_energy_error = check_positive_float(max_energy_error, "max_energy_error")
        elif tuner is not None and self.tuner.reset_rule is None:  # an adaptive tuner without its own reset rule: the
            # "mclmc" sampler's default guardrail; without it one gradient spike (|dE| up to 3e7 on bikesharing)
            # drives the Var[dE]/d tuner to its floor (docs/ensembles.md)
            self.max_energy_error = default_max_energy_error(self.dim)
        else:
            self.max_energy_error = math.inf
        # the reset rules applied on top of the non-finite rejection: the tuner's own (the Gamma
        # quantile of the authors' tuner) and the fixed energy guardrail, when finite
        self.reset_rules = tuple(r for r in (self.tuner.reset_rule, energy_limit(self.max_energy_error)
                                             if math.isfinite(self.max_energy_error) else None) if r is not None)
        check_choice(preconditioner, "preconditioner", ("diag", "dense"))
        self.dense = preconditioned and preconditioner == "dense"
        make = dense_noise_scale_preconditioner if self.dense else noise_scale_preconditioner
        self.precond = make(**(preconditioner_options or {})) if preconditioned else None
        self.freeze_preconditioner = check_bool(freeze_preconditioner, "freeze_preconditioner")
        self.adaptation = Adaptation(self.tuner, self.n_warmup, preconditioner=self.precond,
                                     adapt_during_sampling=self.adapt_during_sampling,
                                     freeze_preconditioner=self.freeze_preconditioner)
        self.extra_eval = self.energy_error == "same_batch" and bool(getattr(gradient, "stochastic", False))
        self.grad_evals_per_step = self.coefficients.n_grad + (1 if self.extra_eval else 0)
        self.init_grad_evals = 1
        self._init_authors_options(c.initial_state, c.warmup_boundary_reset, c.first_b_preconditioner)

    def _init_authors_options(self, initial_state, warmup_boundary_reset, first_b_preconditioner):
        """Options that reproduce the authors' state handling (``preset="authors"``).

        ``initial_state="zero"``: stored gradient and log-density 0 at init, no evaluation (the first
        ``B`` leaves ``u = 0`` unchanged); with ``energy_error="cross_batch"`` the log-density term of
        ``dE`` is dropped for chains whose stored log-density is exactly 0 (the authors' marker).
        ``warmup_boundary_reset=True``: at the first sampling step after a warm-up, velocity, stored
        gradient and log-density are set to 0 (the authors rebuild the state from the warm-up state).
        ``first_b_preconditioner="previous"`` (``"psmile"``): the first ``B`` of a step uses the stored
        gradient scaled by the *previous* step's preconditioner (the authors store ``g / sigma_tilde``);
        ``"current"`` (default) rescales it by the current one.
        """
        self.initial_state = check_choice(initial_state, "initial_state", ("evaluate", "zero"))
        if not isinstance(warmup_boundary_reset, bool):
            raise TypeError(f"warmup_boundary_reset must be a bool, got {warmup_boundary_reset!r}")
        self.boundary_reset = warmup_boundary_reset
        check_choice(first_b_preconditioner, "first_b_preconditioner", ("current", "previous"))
        if first_b_preconditioner == "previous" and (self.precond is None or self.dense):
            raise ValueError("first_b_preconditioner='previous' needs the diagonal preconditioner ('psmile', "
                             "preconditioner='diag')")
        self.stale_first_b = first_b_preconditioner == "previous"
        self.zero_gate = self.energy_error == "cross_batch" and (initial_state == "zero" or warmup_boundary_reset)
        if self.initial_state == "zero":
            self.init_grad_evals = 0

    def _evaluate(self, x, batch, acc=None, finite=None):
        """``(logp_hat, g)`` with ``g`` clipped to ``+-gradient_clip``.

        ``"reject"``: NaN and infinite entries become NaN, and ``acc`` (a list) receives
        ``(row non-finite, row non-finite)`` per chain, so that a non-finite value in *any* evaluation of
        the step (a middle one leaves the velocity unchanged through the ESH update's fallback and would
        otherwise go unnoticed) rejects the step.  ``"zero_and_clip"`` (authors): NaN entries become 0,
        infinite ones are clipped; ``acc`` receives ``(any entry non-finite, all entries NaN)`` per chain.

        On NumPy and ``array_api_strict`` (host reads are cheap) ``"reject"`` first takes ``max g``
        and ``min g`` (two reductions, no temporaries): when both are finite no entry is NaN or
        infinite, the ``where`` selects nothing and is skipped, and so is the clip when both lie
        within the bounds (same values).  ``finite`` (a list) then receives ``True``.
        """
        xp = self.xp
        lp, g = self._evaluator()(x, batch)
        if self.nonfinite_gradient == "reject":
            if finite is not None and host_checks_cheap(xp):
                # NumPy: one pass, |g|_2^2 = g.g; finite and <= (clip/2)^2 proves every entry finite and inside
                # the clip (|g_i| <= |g|_2; the factor 2 covers the rounding of g.g), so g is returned as it is
                if isinstance(g, np.ndarray) and float(np.vdot(g, g)) <= self._clip_sq_half:
                    finite.append(True)
                    return lp, g
                hi, lo = float(eager_max(xp, g)), float(eager_min(xp, g))
                if math.isfinite(hi) and math.isfinite(lo):
                    finite.append(True)
                    return lp, (g if -self.clip <= lo and hi <= self.clip else xp.clip(g, -self.clip, self.clip))
            ok = xp.isfinite(g)
            if acc is not None:  # a non-finite entry in any evaluation (not only the last) rejects the step
                bad = ~xp.all(ok, axis=-1)
                acc.append((bad, bad))
            return lp, xp.where(ok, xp.clip(g, -self.clip, self.clip), xp.nan)
        nan = xp.isnan(g)
        if acc is not None:
            acc.append((xp.any(~xp.isfinite(g), axis=-1), xp.all(nan, axis=-1)))
        return lp, xp.clip(xp.where(nan, 0.0, g), -self.clip, self.clip)

    def sqrt_diag(self, state):
        """The diagonal preconditioner ``S`` of the next step: pSMILE's ``diag(1/sigma_tilde)``, else ``None``
        (also for the dense preconditioner, whose ``S`` is a matrix)."""
        return None if self.dense else self.adaptation.sqrt_diag(state.adaptation)

    def init(self, position, rng) -> SMILEState:
        b = self.backend
        n = position.shape[0]
        gstate = self.gradient.init(n, rng)
        if self.initial_state == "zero":  # authors: zero stored gradient and log-density, no evaluation
            lp, g = b.zeros((n,)), self.xp.zeros_like(position)
        else:
            batch, gstate = self.gradient.draw(gstate, rng, position)
            lp, g = self._evaluate(position, batch)
            check_initial_finite(self.xp, self.xp.isfinite(lp) & self.xp.all(self.xp.isfinite(g), axis=-1), self.name)
        u = self.xp.zeros_like(position)
        params = TuningParams(b.full((n,), self.step_size0), b.full((n,), self.L0), None)
        adapt = self.adaptation.init(params, g)
        gsd = self.adaptation.sqrt_diag(adapt) if self.stale_first_b else None
        return SMILEState(IntegratorState(position, u, lp, g), adapt, gstate, gsd, False, b.full((n,), 1.0))

    def step(self, state: SMILEState, rng, warmup: bool):
        """One SMILE step of every chain: :meth:`transition` at the adaptation's parameters, then
        :meth:`~smile_ref.samplers.adaptation.Adaptation.update` (tuner, preconditioner, warm-up clock)."""
        state, info, report = self.transition(state, rng, warmup)
        return state._replace(adaptation=self.adaptation.update(state.adaptation, report, dim=self.dim,
                                                                warmup=warmup)), info

    def transition(self, state: SMILEState, rng, warmup: bool):
        """The kernel at fixed ``(step size, L, S)`` of ``state.adaptation`` (steps 1-5 of the module docstring).

        Returns ``(state, info, report)``: the new state with the adaptation state unchanged, the step's
        :class:`~smile_ref.samplers.info.IsokineticInfo`, and the
        :class:`~smile_ref.samplers.adaptation.AdaptationInput` for the adaptation.  ``warmup`` matters
        here only for ``warmup_boundary_reset``.
        """
        xp = self.xp
        p, old = state.params, state.integrator
        n, d = old.position.shape
        started = state.sampling_started
        if self.boundary_reset and not warmup and not started:
            started = True
            if self.n_warmup > 0:  # authors: the sampling kernel starts from the warm-up state with u, g, l = 0
                old = IntegratorState(old.position, xp.zeros_like(old.momentum), xp.zeros_like(old.logdensity),
                                      xp.zeros_like(old.logdensity_grad))
        u = old.momentum
        if self.refresh:
            u = partial_refresh(u, 0.5 * p.step_size, p.L, rng.normal((n, d)))
        batch, gstate = self.gradient.draw(state.grad_state, rng, old.position)
        acc: list = []  # per evaluation (entries non-finite or replaced, whole row NaN): see _evaluate
        fin: list = []  # reject, eager namespaces: one True per evaluation known to be all-finite
        eps = p.step_size * state.backoff  # backoff = 1 except right after a non-finite step (exact: x * 1.0 = x)
        start = old._replace(momentum=u)
        f = lambda x: self._evaluate(x, batch, acc, fin)  # noqa: E731
        if self.dense:  # S = c C^{-1/2} (symmetric), fixed within the step: A is x + tau S u, B the ESH update on S g
            sqrt_diag = None
            new, dK, direction = isokinetic_step_carry(xp, start, eps, f, self.coefficients, None, state.direction,
                                                       metric=DenseMetric(self.precond.matrices(state.precond_state)[0]),
                                                       esh_form=self.esh_form)
        else:
            sqrt_diag = self.adaptation.sqrt_diag(state.adaptation)
            if self.stale_first_b:  # authors: the first B sees S_{t-1} g_{t-1}, not S_t g_{t-1}
                start = start._replace(logdensity_grad=old.logdensity_grad * (state.grad_sqrt_diag / sqrt_diag))
            new, dK, direction = isokinetic_step_carry(xp, start, eps, f, self.coefficients, sqrt_diag, state.direction,
                                                       esh_form=self.esh_form)
        # the log-density at the old position on the same batch (no gradient where the estimator allows it)
        lp_old = self._logdensity_evaluator()(old.position, batch) if self.extra_eval else old.logdensity
        if self.zero_gate and not self.extra_eval:  # authors: no log-density term while the stored one is 0
            dE = dK - xp.where(lp_old != 0.0, new.logdensity - lp_old, 0.0)
        else:
            dE = dK - (new.logdensity - lp_old)
        # fin has one entry per integrator evaluation when all were finite: the stored gradient is finite
        grad_finite = len(fin) == self.coefficients.n_grad
        nonfinite = step_masks(xp, new.position, new.logdensity, new.logdensity_grad, dE, math.inf, grad_finite)[0]
        met_nonfinite = nonfinite
        for replaced, all_nan in acc:  # an all-NaN gradient is no gradient: reject the step
            nonfinite = nonfinite | all_nan
            met_nonfinite = met_nonfinite | replaced | all_nan
        reset = nonfinite
        if self.reset_rules:
            dE_finite = xp.where(nonfinite, 0.0, dE)
            for rule in self.reset_rules:
                reset = reset | rule.mask(state.tuner_state, dE_finite, xp)
        # every mask below is a subset of reset: with no chain reset (eager namespaces) the wheres select
        # nothing and are skipped
        any_reset = any_chain(xp, reset)
        u_new = new.momentum
        if self.refresh:
            u_new = partial_refresh(u_new, 0.5 * p.step_size, p.L, rng.normal((n, d)))
        keep_new_grad = nonfinite if self.keep_rejected else reset  # chains whose stored (lp, g) revert
        if any_reset:
            u_new = xp.where(reset[:, None], 0.0, u_new)
            integ = IntegratorState(
                select_chains(xp, reset, old.position, new.position),
                u_new,
                select_chains(xp, keep_new_grad, old.logdensity, new.logdensity),
                select_chains(xp, keep_new_grad, old.logdensity_grad, new.logdensity_grad),
            )
        else:
            integ = IntegratorState(new.position, u_new, new.logdensity, new.logdensity_grad)
        # adaptation around the kernel. TuneInput contract: +inf where the step met a non-finite value;
        # a non-finite step must not reach the preconditioner's statistics (finite steps: unchanged)
        dE_t = xp.where(nonfinite, xp.inf, dE) if any_reset else dE
        g_pre = None
        if self.precond is not None:
            g_pre = select_chains(xp, nonfinite, old.logdensity_grad, new.logdensity_grad) if any_reset \
                else new.logdensity_grad
        report = AdaptationInput(dE_t, integ.position, reset, g_pre)
        info = IsokineticInfo(
            energy_error=xp.where(nonfinite, 0.0, dE) if any_reset else dE,
            kinetic_change=xp.where(nonfinite, 0.0, dK) if any_reset else dK,
            step_size=p.step_size,
            rejected=reset,
            nonfinite=met_nonfinite,
            logdensity=integ.logdensity,
        )
        backoff = state.backoff
        if self.nonfinite_backoff:
            if any_reset:
                backoff = xp.where(nonfinite, 0.5 * state.backoff, xp.ones_like(state.backoff))
            elif state.backoff is self._ones_memo:  # the all-ones array this kernel made (never modified in place)
                backoff = state.backoff
            else:
                backoff = self._ones_memo = xp.ones_like(state.backoff)
        gsd = state.grad_sqrt_diag
        if self.stale_first_b:
            gsd = select_chains(xp, keep_new_grad, state.grad_sqrt_diag, sqrt_diag) if any_reset else sqrt_diag
        return SMILEState(integ, state.adaptation, gstate, gsd, started, backoff, direction), info, report


def _config(name: str, preset, config, options: dict) -> SMILEConfig:
    """The kernel's :class:`SMILEConfig`: ``config`` (or ``preset``'s, or the defaults) with ``options`` applied."""
    if config is None:
        return SMILEConfig.from_options(apply_preset(name, preset, options))
    if not isinstance(config, SMILEConfig):
        raise TypeError(f"config must be a SMILEConfig (e.g. SMILEConfig.authors()), got {type(config).__name__}")
    if preset is not None:
        raise ValueError("give preset or config, not both (SMILEConfig.authors() is preset='authors')")
    return config.with_options(**options)


@register("smile")
def build_smile(target, gradient, backend, step_size=None, n_warmup=0, preset=None, config=None, **options) -> SMILE:
    """``"smile"``: SMILE with the Var[dE]/d tuner (default), the authors' SMILE (``tuner="energy_error"``) or
    SMILE-naive (``tuner=None``).

    ``config``: a :class:`SMILEConfig` (defaults: ``SMILEConfig()``); ``preset="authors"`` is
    ``config=SMILEConfig.authors()`` (the authors' ``SMILET``; ``SMILE`` with ``tuner=None``).  Keyword
    ``options`` override single fields (:func:`apply_preset`, :meth:`SMILEConfig.with_options`).
    """
    return SMILE(target, gradient, backend, step_size, n_warmup, _config("smile", preset, config, options),
                 preconditioned=False)


@register("psmile")
def build_psmile(target, gradient, backend, step_size=None, n_warmup=0, preset=None, config=None, **options) -> SMILE:
    """``"psmile"``: pSMILE with the Var[dE]/d tuner (default), with the authors' Gamma tuner
    (``tuner="energy_error"``) or pSMILE-naive (``tuner=None``).

    ``preset="authors"`` (``config=SMILEConfig.authors(preconditioned=True)``): the authors' ``NOISYSMILE``,
    including its running-mean re-initialisation (``docs/errata.md``) and the previous step's
    preconditioner on the stored gradient; keyword ``options`` override single fields.
    """
    return SMILE(target, gradient, backend, step_size, n_warmup, _config("psmile", preset, config, options),
                 preconditioned=True)
