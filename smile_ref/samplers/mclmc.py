"""Full-batch microcanonical Langevin Monte Carlo (MCLMC), registered as ``"mclmc"``.

Robnik, De Luca, Silverstein & Seljak (JMLR 2023, "Microcanonical Hamiltonian
Monte Carlo"); Robnik & Seljak (2024, "Fluctuation without dissipation").  One
step, for every chain at once (the O-B-A-B-A-B-O splitting of BlackJAX's
``isokinetic_mclachlan`` with Maruyama refresh):

1. half partial refresh ``u <- normalise(u + nu z1)``, ``nu^2 = (e^{eps/L} - 1)/d``
   (time ``eps/2``);
2. a palindromic isokinetic step (:func:`~smile_ref.integrators.isokinetic_step`,
   McLachlan by default) with gradient estimate ``g_hat`` of ``grad log pi``;
3. energy error ``dE = dK - (log pi(x') - log pi(x))``;
4. guardrail: a chain with a non-finite value (flagged in ``info["nonfinite"]``)
   or ``|dE| > max_energy_error`` is rejected (position, log-density, gradient restored; velocity redrawn
   uniformly on the sphere from the refresh draw ``z2``, so no extra random
   numbers are needed);
5. half partial refresh with ``z2``;
6. during warm-up, the tuner (default: :func:`~smile_ref.tuners.mclmc_tuner`)
   updates ``(eps, L, M^{-1/2})`` from ``dE``; ``tuner="mile"`` uses MILE's
   schedule (target Var[dE]/d decaying linearly from 0.5 to 0.1; Sommer et al.
   ICLR 2025), ``tuner=None`` keeps ``step_size`` and ``L`` fixed.

With a stochastic ``gradient`` estimator the same kernel runs on mini-batch
gradients (one batch per step shared by all sub-steps); ``"smile"`` is the
dedicated stochastic-gradient variant.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from ..backend.validate import check_bool, check_choice, check_positive_float
from ..integrators.coefficients import get_integrator
from ..integrators.esh_lean import ESH_FORM_NAMES
from ..integrators.isokinetic import IntegratorState, isokinetic_step_carry
from ..integrators.refresh import refresh_with_nu, full_refresh
from ..tuners.base import Tuner, TuningParams, identity
from ..tuners.mclmc import MILE_FRACTIONS, mclmc_tuner
from .adaptation import Adaptation, AdaptationInput, AdaptationState, adaptation_view
from .base import IsokineticKernel, register
from .info import IsokineticInfo
from .mclmc_config import MILE_AUTHORS_STEP_SIZE, MILE_AUTHORS_TUNER, MCLMCConfig
from ..backend import host_checks_cheap
from .guardrails import all_finite_eager, any_chain, default_max_energy_error, select_chains, step_masks

__all__ = ["MCLMCState", "MCLMC", "MCLMCConfig", "build_mclmc", "MILE_AUTHORS_TUNER", "MILE_AUTHORS_STEP_SIZE"]


class MCLMCState(NamedTuple):
    integrator: IntegratorState
    adaptation: AdaptationState  # step size, L, diagonal preconditioner, tuner state, the warm-up clock
    grad_state: dict
    direction: Any = None  # the last B's e = S g/|S g| and |S g|, reused by the next step's first B (a cache)

    _transient = ("direction",)  # not checkpointed: recomputed bit-identically when None

    @property
    def position(self):
        """``(n, d)`` positions of the chains (the integrator state's), as every sampler state has."""
        return self.integrator.position

    # read through to the adaptation state: step size, L and M^{-1/2} of the next step, ...
    params = adaptation_view("params")
    tuner_state = adaptation_view("tuner_state")
    warmup_step = adaptation_view("warmup_step")


def _make_tuner(tuner, desired_energy_var, diagonal_preconditioning, tuner_options) -> Tuner:
    if tuner_options is not None and not isinstance(tuner_options, dict):
        raise TypeError(f"tuner_options must be a dict of mclmc_tuner arguments, got {tuner_options!r}")
    if tuner is None:
        return identity()
    if isinstance(tuner, Tuner):
        return tuner
    check_choice(tuner, "tuner", ("mclmc", "mile"))
    extra = dict(tuner_options or {})
    if tuner == "mile":  # MILE's split with or without preconditioning
        return mclmc_tuner(diagonal_preconditioning=diagonal_preconditioning,
                           **{"energy_var_schedule": "mile",
                              **dict(zip(("frac_tune1", "frac_tune2", "frac_tune3"), MILE_FRACTIONS)), **extra})
    if desired_energy_var is not None:  # None: the tuner's default
        extra = {"desired_energy_var": desired_energy_var, **extra}
    return mclmc_tuner(diagonal_preconditioning=diagonal_preconditioning, **extra)


class MCLMC(IsokineticKernel):
    """MCLMC kernel; see the module docstring. Build with :func:`build_mclmc`.

    Examples
    --------
    >>> import numpy as np, smile_ref
    >>> from smile_ref import gradients, targets
    >>> t = targets.Gaussian.diagonal(np.array([1.0, 4.0]))
    >>> res = smile_ref.run_chains("mclmc", t, n_chains=4, n_steps=2000, burn_in=500, seed=0, progress=False)
    >>> res.samples.shape, res.health.ok
    ((4, 2000, 2), True)
    >>> bool(abs(res.samples[..., 1].var() - 4.0) < 0.5)
    True
    """

    name = "mclmc"

    def __init__(self, target, gradient, backend, step_size=None, n_warmup=0, config: MCLMCConfig | None = None,
                 **options):
        self.config = c = MCLMCConfig.resolve(None, config, options)
        self.target, self.gradient, self.backend = target, gradient, backend
        self.xp = backend.xp
        self.dim = int(target.dim)
        self.coefficients = get_integrator(c.integrator)
        self.n_warmup = int(n_warmup)
        if step_size is None:
            step_size = c.default_step_size
        if c.tuner is None and step_size is None:
            raise ValueError("step_size is required when tuner=None (fixed-step MCLMC)")
        d = self.dim
        self.step_size0 = check_positive_float(step_size, "step_size") if step_size is not None else 0.25 * math.sqrt(d)
        L = c.resolved_L(d)
        self.L0 = check_positive_float(L, "L") if c.L is not None else L
        self.refresh = check_bool(c.refresh, "refresh")
        self.esh_form = check_choice(c.esh_form, "esh_form", ESH_FORM_NAMES)
        self.diagonal_preconditioning = check_bool(c.diagonal_preconditioning, "diagonal_preconditioning")
        self.tuner = _make_tuner(c.tuner, c.desired_energy_var, c.diagonal_preconditioning, c.tuner_options)
        sqrt_diag, max_energy_error = c.sqrt_diag, c.max_energy_error
        if sqrt_diag is not None:
            from ..backend.validate import check_host_vector

            sd = check_host_vector(sqrt_diag, "sqrt_diag", d)
            if (sd <= 0).any():
                raise ValueError("sqrt_diag must be strictly positive")
            self.sqrt_diag0 = sd
        else:
            self.sqrt_diag0 = None
        self.max_energy_error = (
            check_positive_float(max_energy_error, "max_energy_error")
            if max_energy_error is not None
            else default_max_energy_error(d)
        )
        self.adaptation = Adaptation(self.tuner, self.n_warmup)  # adapts during warm-up only
        self.grad_evals_per_step = self.coefficients.n_grad
        self.init_grad_evals = 1

    # -- init ---------------------------------------------------------------
    def sqrt_diag(self, state):
        """The diagonal preconditioner ``M^{-1/2}`` of the next step (``None`` without preconditioning)."""
        return self.adaptation.sqrt_diag(state.adaptation)

    def init(self, position, rng) -> MCLMCState:
        xp, b = self.xp, self.backend
        n = position.shape[0]
        gstate = self.gradient.init(n, rng)
        batch, gstate = self.gradient.draw(gstate, rng, position)
        lp, g = self.gradient.evaluate(position, batch)
        bad = ~(xp.isfinite(lp) & xp.all(xp.isfinite(g), axis=-1))
        if bool(xp.any(bad)):
            from ..backend import to_numpy
            import numpy as np

            raise ValueError(
                "initial_position: log-density or gradient is not finite for chains "
                f"{np.flatnonzero(to_numpy(bad)).tolist()}"
            )
        u = full_refresh(rng.normal((n, self.dim)))
        sqrt_diag = None
        if self.diagonal_preconditioning and self.sqrt_diag0 is None:
            # a concrete array (not None) so that checkpoints carry the tuned preconditioner
            sqrt_diag = b.ones((n, self.dim))
        if self.sqrt_diag0 is not None:
            sqrt_diag = xp.broadcast_to(b.asarray(self.sqrt_diag0)[None, :], (n, self.dim))
            sqrt_diag = xp.asarray(sqrt_diag, copy=True)
        L = b.full((n,), self.L0 if self.refresh else math.inf)
        params = TuningParams(b.full((n,), self.step_size0), L, sqrt_diag)
        return MCLMCState(IntegratorState(position, u, lp, g), self.adaptation.init(params, None), gstate)

    # -- one step -------------------------------------------------------------
    def step(self, state: MCLMCState, rng, warmup: bool):
        """One MCLMC step of every chain: :meth:`transition` at the adaptation's parameters, then (in
        warm-up) :meth:`~smile_ref.samplers.adaptation.Adaptation.update`."""
        state, info, report = self.transition(state, rng)
        if warmup:
            state = state._replace(adaptation=self.adaptation.update(state.adaptation, report, dim=self.dim,
                                                                     warmup=True))
        return state, info

    _nu_memo = None  # (step_size, L, dtype, nu) of the last call of _refresh_nu

    def _refresh_nu(self, params: TuningParams, dtype):
        """``nu = sqrt((e^{2 (eps/2)/L} - 1)/d)`` as an ``(n, 1)`` column, shared by both half refreshes.

        Remembered for the very ``step_size`` and ``L`` arrays of the last call (identity: the arrays of a
        :class:`TuningParams` are never modified in place), so that a step at unchanged parameters (after
        warm-up, or without a tuner) reuses it; the memo holds references to them, so identity is exact.
        """
        memo = self._nu_memo
        if memo is not None and memo[0] is params.step_size and memo[1] is params.L and memo[2] == dtype:
            return memo[3]
        xp = self.xp
        n = params.step_size.shape[0]
        half, L = xp.reshape(0.5 * params.step_size, (n, 1)), xp.reshape(params.L, (n, 1))
        if half.dtype != dtype or L.dtype != dtype:
            half, L = xp.astype(half, dtype), xp.astype(L, dtype)
        nu = xp.sqrt(xp.expm1(2.0 * half / L) / self.dim)
        self._nu_memo = (params.step_size, params.L, dtype, nu)
        return nu

    def transition(self, state: MCLMCState, rng):
        """The kernel at fixed ``(step size, L, M^{-1/2})`` of ``state.adaptation`` (steps 1-5 of the module
        docstring): ``(state, info, report)`` with the adaptation state unchanged and the
        :class:`~smile_ref.samplers.adaptation.AdaptationInput` of the step."""
        xp = self.xp
        p = state.params
        old = state.integrator
        n, d = old.position.shape
        z2 = rng.normal((n, d))
        if self.refresh:
            nu = self._refresh_nu(p, old.momentum.dtype)
            u = refresh_with_nu(xp, old.momentum, nu, rng.normal((n, d)))
        else:
            u = old.momentum
        batch, gstate = self.gradient.draw(state.grad_state, rng, old.position)
        ev = self._evaluator()
        mid: list = []  # per-chain flags of evaluations with a non-finite gradient entry (any of the step's)

        def evaluate(x):
            lp, g = ev(x, batch)
            if host_checks_cheap(xp) and all_finite_eager(xp, g):
                return lp, g  # eager namespaces: one host read shows that every entry is finite
            mid.append(~xp.all(xp.isfinite(g), axis=-1))
            return lp, g

        new, dK, direction = isokinetic_step_carry(
            xp, old._replace(momentum=u), p.step_size, evaluate, self.coefficients, p.sqrt_diag, state.direction,
            esh_form=self.esh_form,
        )
        dE = dK - (new.logdensity - old.logdensity)
        # no entry in mid: every evaluation was proven finite, the stored gradient included
        nonfinite, bad = step_masks(xp, new.position, new.logdensity, new.logdensity_grad, dE,
                                    self.max_energy_error, grad_finite=not mid and host_checks_cheap(xp))
        for m in mid:  # a NaN in a middle evaluation leaves u unchanged (ESH fallback): reject that step too
            nonfinite, bad = nonfinite | m, bad | m
        if not any_chain(xp, bad):  # eager namespaces, no chain rejected: every where below selects nothing
            u_new = refresh_with_nu(xp, new.momentum, nu, z2) if self.refresh else new.momentum
            integ = IntegratorState(new.position, u_new, new.logdensity, new.logdensity_grad)
            dK_info = dK
            dE_tune = dE
        else:
            if self.refresh:
                # second half refresh with z2; a rejected chain gets z2/|z2| (u = 0, nu = 1): one pass
                bad_c = bad[:, None]
                u_new = refresh_with_nu(xp, xp.where(bad_c, 0.0, new.momentum), xp.where(bad_c, 1.0, nu), z2)
            else:
                u_new = select_chains(xp, bad, full_refresh(z2), new.momentum)
            integ = IntegratorState(
                select_chains(xp, bad, old.position, new.position),
                u_new,
                select_chains(xp, bad, old.logdensity, new.logdensity),
                select_chains(xp, bad, old.logdensity_grad, new.logdensity_grad),
            )
            dE_tune = xp.where(nonfinite, xp.inf, dE)  # the TuneInput contract: +inf where non-finite
            dE = xp.where(bad, 0.0, dE)
            dK_info = xp.where(bad, 0.0, dK)
        info = IsokineticInfo(
            energy_error=dE,
            kinetic_change=dK_info,
            step_size=p.step_size,
            L=p.L,
            rejected=bad,
            nonfinite=nonfinite,
            logdensity=integ.logdensity,
        )
        return (MCLMCState(integ, state.adaptation, gstate, direction), info,
                AdaptationInput(dE_tune, integ.position, bad))


@register("mclmc")
def build_mclmc(target, gradient, backend, step_size=None, n_warmup=0, preset=None, config=None, **options) -> MCLMC:
    """Build the ``"mclmc"`` sampler: ``config`` (an :class:`MCLMCConfig`, default ``MCLMCConfig()``) or
    ``preset``'s record, with keyword ``options`` overriding single fields.

    ``preset="authors"`` (``config=MCLMCConfig.authors()``) reproduces MILE's warm-up in the SMILE authors'
    code: ``tuner="mile"`` with the settings ``MILE_AUTHORS_TUNER`` (``N_eff = 100``, the schedule divisor
    ``n1 + n2 + 1``, the phase-2 moment weight after the update, BlackJAX's ESS on the whole chain for L),
    initial ``L = max(sqrt(d), 15)`` and initial step size 0.005 (their default; their UCI configs pass
    0.01).  ``tuner_options`` overrides single tuner settings key by key; explicit ``step_size`` and ``L``
    win.  Under ``preset="authors"`` the tuner must stay ``"mile"``.
    """
    if preset == "authors" and options.get("tuner", "mile") != "mile":
        raise ValueError(f"preset='authors' reproduces MILE's warm-up: tuner must be 'mile', got {options['tuner']!r}")
    return MCLMC(target, gradient, backend, step_size, n_warmup, MCLMCConfig.resolve(preset, config, options))
