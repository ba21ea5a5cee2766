"""Constant-learning-rate SGD as a sampler (Mandt, Hoffman & Blei, JMLR 18(134), 2017), ``"constant_sgd"``.

Convention (Mandt et al. Eq. 2-5).  The loss is the mean per-example loss; a mini-batch ``B`` of
size ``S`` gives

    L_S(theta) = -(1/S) sum_{i in B} log p(x_i | theta) - (1/N) log p(theta),

i.e. the prior enters every per-example loss ``l_i = -log p(x_i|theta) - (1/N) log p(theta)`` with
weight ``1/N`` (so ``N L = -log posterior`` up to a constant).  smile_ref's estimators return
``g_hat = grad log prior + (N/S) sum_B grad log p(x_i|theta) ≈ -grad U`` for ``pi ∝ exp(-U)``,
hence ``grad L_S = -g_hat / N`` exactly.  ``N`` is ``target.n_data`` (or the ``n_data`` option).

One step, for all chains at once (``eps`` = ``learning_rate``, ``H`` = ``preconditioner``,
``m`` = ``momentum``; ``m = 1 - mu`` for Mandt's damping ``mu`` of Sec. 4.3, Eq. 23):

    v'     = m v - eps H grad L_S(theta)          (one gradient evaluation at theta)
    theta' = theta + v'

``H`` may be ``None`` (identity), a positive scalar, a positive ``(d,)`` diagonal or an SPD
``(d, d)`` matrix.  With ``H = optimal_preconditioner(S, N, C)`` and ``learning_rate=1`` this is
Mandt's Thm 2 (stationary covariance ``(N A)^{-1}`` in the OU limit).

Iterate averaging.  After warm-up, ``state.average`` holds the running mean of all sampling
iterates (Polyak averaging, Mandt Sec. 6.1) and ``state.n_averaged`` their number.

IASG (Mandt Sec. 6.2, Algorithm 1), ``iasg=True``: sampling steps are cut into consecutive windows
of ``window`` steps (default ``round(N/S)``, one pass over the data); at the end of each window
``state.position`` becomes the window mean (and stays there until the next window ends), and
``info["window_end"]`` is true.  The driver records ``state.position`` every ``thinning`` steps:
use ``thinning = window`` so that each draw is exactly one window mean (other values record the
latest completed window, repeating it or skipping windows).  Without ``iasg`` ``position`` is the
SGD iterate.

Gradient at the proposal (as ``"sgld"``): the estimate at a new iterate is drawn and evaluated at the
end of the step that proposes it and carried in the state (``init`` evaluates once at ``theta_0``).
Guardrail: a proposed iterate whose gradient estimate, log-density estimate or value is not finite
is rejected: the chain keeps its old iterate and its gradient, and has its velocity zeroed
(``info["rejected"]``, ``info["nonfinite"]``); its next step uses half the learning rate (halved
again after every further rejection, back to ``eps`` after an accepted step), because SGD injects no
noise and the carried gradient would otherwise repeat the rejected move exactly.
``init_grad_evals = grad_evals_per_step = 1``; ``info`` has ``step_size`` (= ``eps``), ``rejected``,
``nonfinite``, ``loss`` (``L_S(theta)`` at the iterate the step starts from, from the mini-batch
log-density estimate ``-logp_hat/N``) and ``window_end``.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ..backend import device_of, to_numpy
from ..backend.validate import check_bool, check_float_in, check_positive_float, check_positive_int, check_spd
from .base import Kernel, register
from .sgmcmc_config import ConstantSGDConfig
from .info import SGDInfo
from .guardrails import check_initial_finite, evaluate_checked

__all__ = ["ConstantSGDState", "ConstantSGD", "ConstantSGDConfig", "build_constant_sgd"]


class ConstantSGDState(NamedTuple):
    position: Any  # recorded output: iterate, or latest window mean (IASG)
    theta: Any  # SGD iterate
    velocity: Any
    average: Any  # running mean of the sampling iterates
    n_averaged: int
    window_sum: Any
    window_count: int
    grad_state: dict
    logdensity: Any = None  # (n,) estimate at theta
    grad: Any = None  # (n, d) gradient estimate at theta
    backoff: Any = None  # (n,) factor on the learning rate: halved after each rejected (non-finite) step


def _parse_preconditioner(H, d):
    """``("none"|"scalar"|"diag"|"full", host value)``."""
    if H is None:
        return "none", None
    if isinstance(H, (int, float)) and not isinstance(H, bool):
        return "scalar", check_positive_float(H, "preconditioner")
    arr = np.asarray(H, dtype=np.float64) if isinstance(H, (list, tuple, np.ndarray)) else None
    if arr is None:
        arr = np.asarray(to_numpy(H), dtype=np.float64)
    if arr.ndim == 0:
        return "scalar", check_positive_float(float(arr), "preconditioner")
    if arr.ndim == 1:
        if arr.shape[0] != d or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"preconditioner as a vector must have shape ({d},) with positive finite entries, got shape {arr.shape}")
        return "diag", arr
    if arr.ndim == 2:
        return "full", check_spd(arr, "preconditioner", d)
    raise ValueError(f"preconditioner must be None, a scalar, shape ({d},) or ({d}, {d}); got shape {arr.shape}")


class ConstantSGD(Kernel):
    """Constant SGD (optionally preconditioned, with momentum, averaged, IASG); see the module docstring.

    Build with :func:`build_constant_sgd`.

    Examples
    --------
    >>> import numpy as np, smile_ref
    >>> from smile_ref import gradients, targets
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(500, 3))
    >>> t = targets.LinearRegression(X, X @ np.array([1.0, -0.5, 0.25]) + rng.normal(size=500))
    >>> res = smile_ref.run_chains("constant_sgd", t, gradient=gradients.MiniBatch(t, batch_size=50),
    ...                            step_size=1e-3, n_chains=4, n_steps=2000, burn_in=1000, seed=0, progress=False)
    >>> res.samples.shape, res.health.ok
    ((4, 2000, 3), True)
    """

    name = "constant_sgd"
    grad_evals_per_step = 1
    init_grad_evals = 1

    def __init__(self, target, gradient, backend, step_size=None, n_warmup=0, config: ConstantSGDConfig | None = None,
                 **options):
        self.config = c = ConstantSGDConfig.resolve(None, config, options)
        learning_rate, preconditioner, momentum, iasg, window, n_data = c.learning_rate, c.preconditioner, c.momentum, c.iasg, c.window, c.n_data
        self.target, self.gradient, self.backend = target, gradient, backend
        self.xp = backend.xp
        self.dim = d = int(target.dim)
        if learning_rate is None and step_size is None:
            raise ValueError("constant_sgd needs learning_rate (or step_size): the constant eps of theta' = theta - eps H grad L_S")
        if learning_rate is not None and step_size is not None and float(learning_rate) != float(step_size):
            raise ValueError(f"give learning_rate or step_size, not two different values ({learning_rate} vs {step_size})")
        self.eps = check_positive_float(learning_rate if learning_rate is not None else step_size, "learning_rate")
        if n_data is None:
            n_data = getattr(target, "n_data", None)
            if n_data is None:
                raise ValueError("constant_sgd needs N: the target has no n_data; pass n_data= (N = 1 uses grad L = -g_hat)")
        self.n_data = check_positive_int(n_data, "n_data")
        self.momentum = check_float_in(momentum, "momentum", 0.0, 1.0, hi_open=True)
        self.kind, H = _parse_preconditioner(preconditioner, d)
        self.H = H if self.kind in ("none", "scalar") else backend.asarray(H)
        self.iasg = check_bool(iasg, "iasg")
        if window is None:
            S = getattr(gradient, "batch_size", None)
            window = max(1, int(round(self.n_data / S))) if S else None
        if self.iasg and window is None:
            raise ValueError("iasg=True needs window= (steps per window; Mandt et al. use N/S) when the gradient has no batch_size")
        self.window = check_positive_int(window, "window") if window is not None else None
        self.n_warmup = int(n_warmup)
        self._scale = self.eps / self.n_data  # -eps * grad L_S = (eps/N) g_hat

    def _direction(self, g):
        """``-eps H grad L_S = (eps/N) H g_hat`` for ``g`` of shape ``(n, d)``."""
        if self.kind == "none":
            return self._scale * g
        if self.kind == "scalar":
            return (self._scale * self.H) * g
        if self.kind == "diag":
            return self._scale * (g * self.H[None, :])
        return self._scale * (g @ self.H)  # H symmetric: (H g^T)^T = g H

    def _observed(self, state) -> dict:
        """``position``, ``velocity`` and the target's exact ``logdensity`` at the position."""
        return dict(super()._observed(state), velocity=state.velocity)

    def init(self, position, rng) -> ConstantSGDState:
        xp = self.xp
        n = position.shape[0]
        gstate = self.gradient.init(n, rng)
        batch, gstate = self.gradient.draw(gstate, rng, position)
        lp, g, finite = evaluate_checked(xp, self.gradient, position, batch)
        check_initial_finite(xp, finite, self.name)
        zeros = xp.zeros_like(position)
        ones = xp.ones((n,), dtype=position.dtype, device=_device(position))
        return ConstantSGDState(position, position, zeros, position, 0, zeros, 0, gstate, lp, g, ones)

    def step(self, state: ConstantSGDState, rng, warmup: bool):
        xp = self.xp
        theta, lp, g = state.theta, state.logdensity, state.grad
        v_new = self._direction(g) * state.backoff[:, None]  # backoff = 1 except after a rejection (exact)
        if self.momentum != 0.0:
            v_new = self.momentum * state.velocity + v_new
        th_new = theta + v_new
        batch, gstate = self.gradient.draw(state.grad_state, rng, th_new)
        lp_new, g_new, ok = evaluate_checked(xp, self.gradient, th_new, batch)
        bad = ~ok
        th_new = xp.where(ok[:, None], th_new, theta)
        v_new = xp.where(ok[:, None], v_new, 0.0)
        lp_keep, g_keep = xp.where(ok, lp_new, lp), xp.where(ok[:, None], g_new, g)
        backoff = xp.where(ok, xp.ones_like(state.backoff), 0.5 * state.backoff)
        n = theta.shape[0]
        position, average, n_avg, wsum, wcount = state.position, state.average, state.n_averaged, state.window_sum, state.window_count
        end = False
        if warmup:
            average, n_avg, wcount = th_new, 0, 0
            if not self.iasg:
                position = th_new
        else:
            n_avg += 1
            average = th_new if n_avg == 1 else average + (th_new - average) / float(n_avg)
            if self.iasg:
                wsum = th_new if wcount == 0 else wsum + th_new
                wcount += 1
                if wcount == self.window:
                    position, wcount, end = wsum / float(self.window), 0, True
            else:
                position = th_new
        info = SGDInfo(
            step_size=xp.full((n,), self.eps, dtype=theta.dtype, device=_device(theta)),
            rejected=bad,
            nonfinite=bad,
            loss=-lp / float(self.n_data),
            window_end=xp.full((n,), end, dtype=xp.bool, device=_device(theta)),
        )
        return ConstantSGDState(position, th_new, v_new, average, n_avg, wsum, wcount, gstate, lp_keep, g_keep,
                                backoff), info


def _device(x):
    return device_of(x)


@register("constant_sgd")
def build_constant_sgd(target, gradient, backend, step_size=None, n_warmup=0, preset=None, config=None,
                       **options) -> ConstantSGD:
    """Build the ``"constant_sgd"`` sampler: ``config`` (a :class:`ConstantSGDConfig`) with keyword ``options``
    overriding its fields; ``"constant_sgd"`` has no presets."""
    return ConstantSGD(target, gradient, backend, step_size, n_warmup, ConstantSGDConfig.resolve(preset, config, options))
