"""SMILE and pSMILE: stochastic-gradient microcanonical Langevin steps (Sommer et al. 2026).

Registered as ``"smile"`` and ``"psmile"``.  Name mapping to the paper:

=====================  ==================================================
paper                  smile_ref
=====================  ==================================================
SMILE                  ``"smile"`` (energy-error tuner on: the default)
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
   size (``info["step_size"]``) is not changed;
4. energy error ``dE = dK - (l_new - l_old)``: by default both log-densities
   use ``B_t`` (``energy_error="same_batch"``; one extra log-density
   evaluation, counted as one gradient evaluation); the authors' code uses
   ``l_old`` from ``B_{t-1}`` (``energy_error="cross_batch"``), which adds an
   ``eps``-independent batch-noise term to ``dE``;
5. reset guardrail: a chain whose ``|dE|`` exceeds the tuner's Gamma quantile
   (after step 10; with any other tuner, e.g. ``tuner="mclmc"``: ``max_energy_error``,
   default ``100 max(1, sqrt(d))`` as in ``"mclmc"``; with ``tuner=None``: only
   ``max_energy_error`` if given), or whose step produced a non-finite value, is rejected:
   position restored, **velocity set to zero** (the next ``B`` then points
   along the next gradient); by default the stored log-density and gradient are
   restored too; ``reset_keeps_rejected_gradient=True`` reproduces the
   authors' code, which keeps those of the rejected position;
6. tuner update (the SMILE energy-error tuner by default; it stays active
   during sampling unless ``adapt_during_sampling=False``);
7. ``"psmile"``: ``S = diag(1 / sigma_tilde)`` from
   :func:`~smile_ref.preconditioners.noise_scale.noise_scale_preconditioner`,
   held fixed within a step and updated after it with the raw final gradient;
   keeps adapting through warm-up and sampling unless
   ``freeze_preconditioner=True`` (frozen after warm-up); ``preconditioner="dense"`` (an smile_ref
   extension for correlated noise) uses ``S = c C^{-1/2}`` from the EMA gradient covariance ``C``
   (:func:`~smile_ref.preconditioners.noise_scale.dense_noise_scale_preconditioner`).

On the UCI Bayesian neural networks the Gamma tuner's step size drifts to the 1e-8 floor
(``docs/ensembles.md``, "Gamma-tuner collapse"); the ensemble pipeline therefore runs SMILE with
``tuner="mclmc"`` (Var[dE]/d target).

No partial refresh by default (the gradient noise is the only randomness);
``refresh=True`` with ``L`` adds MCLMC's partial refresh.  The initial
velocity is zero.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from ..backend.validate import check_choice, check_positive_float
from ..integrators.coefficients import get_integrator
from ..integrators.isokinetic import IntegratorState, isokinetic_step
from ..integrators.refresh import partial_refresh
from ..preconditioners.noise_scale import dense_noise_scale_preconditioner, noise_scale_preconditioner
from ..tuners.base import Tuner, TuneInput, TuningParams, identity
from ..tuners.energy_error import energy_error_tuner
from ..tuners.mclmc import mclmc_tuner
from .base import register
from .guardrails import select_chains, step_is_bad

__all__ = ["SMILEState", "SMILE", "build_smile", "build_psmile"]


class SMILEState(NamedTuple):
    integrator: IntegratorState
    params: TuningParams
    tuner_state: Any
    grad_state: dict
    precond_state: Any
    warmup_step: int
    backoff: Any = None  # (n,) factor on the integrator's step size: halved after each non-finite step


class SMILE:
    """SMILE / pSMILE kernel; see the module docstring."""

    def __init__(self, target, gradient, backend, step_size, n_warmup, *, preconditioned=False,
                 integrator="mclachlan", tuner="energy_error", adapt_during_sampling=True,
                 refresh=False, L=None, energy_error="same_batch", reset_keeps_rejected_gradient=False,
                 gradient_clip=1e6, max_energy_error=None, freeze_preconditioner=False,
                 preconditioner="diag", preconditioner_options=None, tuner_options=None,
                 nonfinite_gradient="reject"):
        self.name = "psmile" if preconditioned else "smile"
        self.target, self.gradient, self.backend, self.xp = target, gradient, backend, backend.xp
        self.dim = int(target.dim)
        self.n_warmup = int(n_warmup)
        if step_size is None:
            raise ValueError(f"step_size is required for {self.name!r} (the initial step size; the paper "
                             "chooses it from {{1e-2, 1e-3, 1e-4}})")
        self.step_size0 = check_positive_float(step_size, "step_size")
        self.coefficients = get_integrator(integrator)
        self.energy_error = check_choice(energy_error, "energy_error", ("same_batch", "cross_batch"))
        self.keep_rejected = bool(reset_keeps_rejected_gradient)
        self.clip = check_positive_float(gradient_clip, "gradient_clip")
        self.nonfinite_gradient = check_choice(nonfinite_gradient, "nonfinite_gradient", ("reject", "zero_and_clip"))
        self.refresh = bool(refresh)
        if self.refresh and L is None:
            raise ValueError("refresh=True needs L (the momentum decoherence length)")
        self.L0 = check_positive_float(L, "L") if L is not None else math.inf
        self.adapt_during_sampling = bool(adapt_during_sampling)
        tuner_options = dict(tuner_options or {})
        if tuner is None:
            self.tuner = identity()
        elif isinstance(tuner, tuple) and hasattr(tuner, "init"):
            self.tuner = tuner
        else:
            check_choice(tuner, "tuner", ("energy_error", "mclmc"))
            self.tuner = energy_error_tuner(**tuner_options) if tuner == "energy_error" else mclmc_tuner(**tuner_options)
        self.gamma_reset = hasattr(self.tuner, "reset_mask")
        if max_energy_error is not None:
            self.max_energy_error = check_positive_float(max_energy_error, "max_energy_error")
        elif tuner is not None and not self.gamma_reset:  # an adaptive tuner without its own reset rule: the
            # "mclmc" sampler's default guardrail; without it one gradient spike (|dE| up to 3e7 on bikesharing)
            # drives the Var[dE]/d tuner to its floor (docs/ensembles.md)
            self.max_energy_error = 100.0 * max(1.0, math.sqrt(self.dim))
        else:
            self.max_energy_error = math.inf
        check_choice(preconditioner, "preconditioner", ("diag", "dense"))
        self.dense = preconditioned and preconditioner == "dense"
        make = dense_noise_scale_preconditioner if self.dense else noise_scale_preconditioner
        self.precond = make(**(preconditioner_options or {})) if preconditioned else None
        self.freeze_preconditioner = bool(freeze_preconditioner)
        self.extra_eval = self.energy_error == "same_batch" and bool(getattr(gradient, "stochastic", False))
        self.grad_evals_per_step = self.coefficients.n_grad + (1 if self.extra_eval else 0)
        self.init_grad_evals = 1

    def _evaluate(self, x, batch, acc=None):
        """``(logp_hat, g)`` with ``g`` clipped to ``+-gradient_clip``.

        ``"reject"``: NaN and infinite entries become NaN, so that the step is non-finite and
        rejected.  ``"zero_and_clip"`` (authors): NaN entries become 0, infinite ones are clipped;
        ``acc`` (a list) receives ``(any entry non-finite, all entries NaN)`` per chain.
        """
        xp = self.xp
        lp, g = self.gradient.evaluate(x, batch)
        if self.nonfinite_gradient == "reject":
            return lp, xp.where(xp.isfinite(g), xp.clip(g, -self.clip, self.clip), xp.nan)
        nan = xp.isnan(g)
        if acc is not None:
            acc.append((xp.any(~xp.isfinite(g), axis=-1), xp.all(nan, axis=-1)))
        return lp, xp.clip(xp.where(nan, 0.0, g), -self.clip, self.clip)

    def _dense_step(self, old, step_size, batch, pstate, acc=None):
        """Isokinetic step in ``z = S^{-1} x`` (S symmetric, fixed within the step): MCLMC on
        ``p_z(z) ∝ p(S z)`` with score ``S g``; positions and gradients are mapped back to ``x``."""
        S, S_inv = self.precond.matrices(pstate)

        def mv(v, M):  # rows of v times the symmetric M, per chain
            return (v[:, None, :] @ M)[:, 0, :]

        def f_z(z):
            lp, g = self._evaluate(mv(z, S), batch, acc)
            return lp, mv(g, S)

        zs = IntegratorState(mv(old.position, S_inv), old.momentum, old.logdensity, mv(old.logdensity_grad, S))
        new, dK = isokinetic_step(zs, step_size, f_z, self.coefficients, None)
        return IntegratorState(mv(new.position, S), new.momentum, new.logdensity,
                               mv(new.logdensity_grad, S_inv)), dK

    def init(self, position, rng) -> SMILEState:
        b = self.backend
        n = position.shape[0]
        gstate = self.gradient.init(n, rng)
        batch, gstate = self.gradient.draw(gstate, rng, position)
        lp, g = self._evaluate(position, batch)
        bad = ~(self.xp.isfinite(lp) & self.xp.all(self.xp.isfinite(g), axis=-1))
        if bool(self.xp.any(bad)):
            from .guardrails import check_initial_finite

            check_initial_finite(self.xp, ~bad, self.name)
        u = self.xp.zeros_like(position)
        params = TuningParams(b.full((n,), self.step_size0), b.full((n,), self.L0), None)
        pstate = self.precond.init(g) if self.precond is not None else None
        return SMILEState(IntegratorState(position, u, lp, g), params, self.tuner.init(params), gstate, pstate, 0,
                          b.full((n,), 1.0))

    def step(self, state: SMILEState, rng, warmup: bool):
        xp = self.xp
        p, old = state.params, state.integrator
        n, d = old.position.shape
        u = old.momentum
        if self.refresh:
            u = partial_refresh(u, 0.5 * p.step_size, p.L, rng.normal((n, d)))
        batch, gstate = self.gradient.draw(state.grad_state, rng, old.position)
        acc: list = []  # zero_and_clip: per evaluation (entries replaced, all NaN)
        eps = p.step_size * state.backoff  # backoff = 1 except right after a non-finite step (exact: x * 1.0 = x)
        if self.dense:
            new, dK = self._dense_step(old._replace(momentum=u), eps, batch, state.precond_state, acc)
        else:
            sqrt_diag = self.precond.sqrt_diag(state.precond_state) if self.precond is not None else p.sqrt_diag
            new, dK = isokinetic_step(old._replace(momentum=u), eps,
                                      lambda x: self._evaluate(x, batch, acc), self.coefficients, sqrt_diag)
        lp_old = self._evaluate(old.position, batch)[0] if self.extra_eval else old.logdensity
        dE = dK - (new.logdensity - lp_old)
        nonfinite = step_is_bad(xp, new.position, new.logdensity, new.logdensity_grad, dE, math.inf)
        met_nonfinite = nonfinite
        for replaced, all_nan in acc:  # an all-NaN gradient is no gradient: reject the step
            nonfinite = nonfinite | all_nan
            met_nonfinite = met_nonfinite | replaced | all_nan
        if self.gamma_reset:
            reset = nonfinite | self.tuner.reset_mask(state.tuner_state, xp.where(nonfinite, 0.0, dE), xp)
        else:
            reset = nonfinite | (xp.abs(xp.where(nonfinite, 0.0, dE)) > self.max_energy_error)
        u_new = new.momentum
        if self.refresh:
            u_new = partial_refresh(u_new, 0.5 * p.step_size, p.L, rng.normal((n, d)))
        u_new = xp.where(reset[:, None], 0.0, u_new)
        keep_new_grad = nonfinite if self.keep_rejected else reset  # chains whose stored (lp, g) revert
        integ = IntegratorState(
            select_chains(xp, reset, old.position, new.position),
            u_new,
            select_chains(xp, keep_new_grad, old.logdensity, new.logdensity),
            select_chains(xp, keep_new_grad, old.logdensity_grad, new.logdensity_grad),
        )
        params, tstate, wstep = p, state.tuner_state, state.warmup_step
        if warmup or self.adapt_during_sampling:
            if self.gamma_reset:
                dE_t = xp.where(nonfinite, xp.inf, dE)
            else:
                dE_t = xp.where(reset, 0.0, dE)
            params, tstate = self.tuner.update(
                tstate, p, TuneInput(dE_t, integ.position, reset, wstep, max(self.n_warmup, 1), d))
        if warmup:
            wstep += 1
        pstate = state.precond_state
        if self.precond is not None and (warmup or not self.freeze_preconditioner):
            # a non-finite step must not reach the preconditioner's statistics (finite steps: unchanged)
            pstate = self.precond.update(pstate, select_chains(xp, nonfinite, old.logdensity_grad,
                                                               new.logdensity_grad))
        info = {
            "energy_error": xp.where(nonfinite, 0.0, dE),
            "kinetic_change": xp.where(nonfinite, 0.0, dK),
            "step_size": p.step_size,
            "rejected": reset,
            "nonfinite": met_nonfinite,
            "logdensity": integ.logdensity,
        }
        backoff = xp.where(nonfinite, 0.5 * state.backoff, xp.ones_like(state.backoff))
        return SMILEState(integ, params, tstate, gstate, pstate, wstep, backoff), info


@register("smile")
def build_smile(target, gradient, backend, step_size=None, n_warmup=0, **options) -> SMILE:
    """``"smile"``: SMILE (default) or SMILE-naive (``tuner=None``)."""
    return SMILE(target, gradient, backend, step_size, n_warmup, preconditioned=False, **options)


@register("psmile")
def build_psmile(target, gradient, backend, step_size=None, n_warmup=0, **options) -> SMILE:
    """``"psmile"``: pSMILE (default) or pSMILE-naive (``tuner=None``)."""
    return SMILE(target, gradient, backend, step_size, n_warmup, preconditioned=True, **options)
