"""Proximal score-matching VI (our formulation of Kim 2026, arXiv 2602.05873; registered as ``"score_vi"``).

At iteration ``t`` draw ``theta_1..theta_M ~ q_t`` (constants: no reparameterisation), form
unbiased mini-batch scores ``s_hat(theta_m)`` and minimise over the family parameters

.. math::

    J_t(\\lambda) = \\frac1M \\sum_m \\|\\nabla_\\theta \\log q_\\lambda(\\theta_m) - \\hat s(\\theta_m)\\|^2
                   + \\beta\\,\\widehat{KL}(q_t \\| q_\\lambda),
    \\qquad \\widehat{KL} = -\\frac1M\\sum_m \\log q_\\lambda(\\theta_m) + \\text{const},

then set ``q_{t+1} = q_lambda``.  The paper's full text is unavailable; this is our reading
(docs/derivations/score-vi.md, theory/score_vi.py).

Closed forms (per coordinate ``j``; bars are sample means, ``V_j``, ``C_j`` the biased sample
variance of ``theta_j`` and covariance of ``(theta_j, s_j)``):

* diagonal, ``beta = 0`` (natural coordinates ``h = tau m``, ``grad log q = h - tau theta``;
  a least-squares problem): ``tau_j = -C_j / V_j``, ``h_j = s_bar_j + tau_j theta_bar_j``.
  **Guard**: a coordinate with ``tau_j <= 0`` or non-finite keeps its previous ``(m_j, tau_j)``
  (``on_invalid="skip"``, counted in ``n_guarded``) or raises (``on_invalid="raise"``).
* diagonal, ``beta > 0``: with ``dbar = m - theta_bar``, stationarity in ``m`` gives
  ``dbar = 2 s_bar / (2 tau + beta)``, and in ``tau``

  .. math:: f(\\tau) = (2\\tau + \\beta/2)(V + \\bar d^2) + 2C - 2\\bar d\\,\\bar s - \\beta/(2\\tau) = 0,

  which has a root in ``(0, inf)`` (``f(0+) = -inf``, ``f(inf) = +inf``) found by bisection in
  ``log tau`` (so ``beta > 0`` never produces ``tau <= 0``).
* full covariance, ``beta = 0``: over symmetric ``P`` the normal equations are the Lyapunov
  equation ``C P + P C = -(B + B^T)`` with ``C = Cov_m(theta)`` and ``B = Cov_m(theta, s)``,
  solved in the eigenbasis of ``C``; ``m = theta_bar + P^{-1} s_bar``.  On a Gaussian target with
  exact scores ``B = -C P*`` so one step with ``M >= d + 1`` returns ``P = P*`` exactly.
  A non-SPD ``P`` is skipped or raised.
* non-Gaussian families with hand-written parameter derivatives (:class:`~smile_ref.vi.sinh_arcsinh.SinhArcsinh`,
  and :class:`~smile_ref.vi.flow.SinhArcsinhFlow` through its ``objective_grads``):
  ``K = n_inner`` Adam steps (step ``inner_lr``) on ``J_t`` from ``q_t`` (:func:`inner_update`).
* full covariance, ``beta > 0``: ``K = n_inner`` preconditioned, SPD-preserving descent steps on the
  jointly convex ``J`` (see :func:`full_update`).

Choice of ``beta`` and divergence.  On a Gaussian target ``N(mu, P^{-1})`` the mean map of the
mean-field update has Jacobian ``I - 2 (2D + beta I)^{-1} P`` at its fixed point (``D = diag P``):
the iteration converges iff ``2D + beta I - P`` is positive definite (docs/derivations/score-vi.md,
statement 3), so ``beta = 0`` diverges whenever ``2D - P`` is indefinite (the 10-d ill-conditioned
Gaussian: mean error 1.9e18 after 200 iterations).  The bound ``lambda_max(P - 2D)`` is unknown
before the fit, so the default ``beta="auto"`` adapts it: it starts at 0 (the exact one-step update
for the full Gaussian family) and monitors the sample means of successive iterates in units of
their standard deviations, ``r_t = rms_j((theta_bar_t - theta_bar_{t-1})_j / sd_{t,j})``.  On the
population iteration ``r_t`` never grows when the map converges (it is the
``D^{1/2}``-norm of a step of a symmetric contraction); Monte Carlo noise keeps it near
``sqrt(2/M)``.  Two consecutive iterations with ``r_t > 1`` and ``r_t > 1.2 r_{t-1}`` mark
divergence: the fit returns to the last iterate with ``r <= 1`` (the anchor) and sets
``beta <- max(2 beta, max_j 1 / Var theta_j)`` (a precision scale; doubling reaches any bound in
logarithmically many restarts).  With a numeric ``beta`` the same signal over
:data:`DIVERGENCE_PATIENCE` consecutive iterations, or non-finite family parameters, raises
:class:`~smile_ref.errors.VIDivergenceError` naming ``beta``.
"""
from __future__ import annotations

import math

from ..backend import array_namespace
from ..errors import VIDivergenceError
from ..backend.validate import check_positive_int
from ._common import batch_stats, check_on_invalid, invalid, outer_mean
from .families import DiagGaussian, FullGaussian, is_spd

__all__ = ["ScoreVI", "diag_update", "full_update", "score_matching_objective", "DIVERGENCE_PATIENCE"]

DIVERGENCE_PATIENCE = 5  # consecutive growing iterations before a numeric beta raises
_GROWTH, _STEP = 1.2, 1.0  # r_t > _GROWTH r_{t-1} and r_t > _STEP (standard deviations)
_MAX_RESTARTS = 60


def score_matching_objective(q, theta, s, beta: float = 0.0):
    """``J = mean_m ||grad log q(theta_m) - s_m||^2 - beta mean_m log q(theta_m)`` (0-d array)."""
    xp = array_namespace(theta)
    r = q.score(theta) - s
    out = xp.mean(xp.sum(r * r, axis=1))
    if beta > 0.0:
        out = out - beta * xp.mean(q.log_prob(theta))
    return out


def _solve_tau(V, C, sbar, beta: float, n_bisect: int = 80):
    """Root of ``f(tau)`` (module docstring) by bisection in ``log tau`` on ``[1e-12, 1e12] / V``."""
    xp = array_namespace(V)
    lo = xp.log(1e-12 / V)
    hi = xp.log(1e12 / V)

    def f(logt):
        tau = xp.exp(logt)
        dbar = 2.0 * sbar / (2.0 * tau + beta)
        return (2.0 * tau + 0.5 * beta) * (V + dbar * dbar) + 2.0 * C - 2.0 * dbar * sbar - 0.5 * beta / tau

    for _ in range(n_bisect):
        mid = 0.5 * (lo + hi)
        pos = f(mid) > 0.0
        hi = xp.where(pos, mid, hi)
        lo = xp.where(pos, lo, mid)
    return xp.exp(0.5 * (lo + hi))


def diag_update(q: DiagGaussian, theta, s, beta: float = 0.0, on_invalid: str = "skip"):
    """One proximal score-matching update of a :class:`DiagGaussian`; returns ``(q_new, n_guarded)``."""
    xp = array_namespace(theta)
    tbar, sbar, tc, sc = batch_stats(theta, s)
    V = xp.mean(tc * tc, axis=0)
    C = xp.mean(tc * sc, axis=0)
    if beta == 0.0:
        tau = -C / V
        h = sbar + tau * tbar
        m = h / tau
    else:
        tau = _solve_tau(V, C, sbar, beta)
        m = tbar + 2.0 * sbar / (2.0 * tau + beta)
    ok = xp.isfinite(tau) & (tau > 0.0) & xp.isfinite(m)
    n_bad = int(xp.sum(xp.astype(~ok, xp.int64)))
    if n_bad:
        invalid(on_invalid, f"score_vi diagonal update: {n_bad} coordinate(s) with precision tau <= 0 or non-finite")
    tau = xp.where(ok, tau, q.precision)
    m = xp.where(ok, m, q.loc)
    return DiagGaussian(m, tau), n_bad


def _lyap_solve(lam, Q, R):
    """Solve ``C X + X C = R`` for symmetric ``X`` given ``C = Q diag(lam) Q^T``."""
    return Q @ ((Q.mT @ R @ Q) / (lam[:, None] + lam[None, :])) @ Q.mT


def full_update(q: FullGaussian, theta, s, beta: float = 0.0, on_invalid: str = "skip", n_inner: int = 50):
    """One score-matching update of a :class:`FullGaussian`; returns ``(q_new, n_guarded)``.

    ``beta = 0``: closed form (Lyapunov equation, module docstring).  ``beta > 0``: ``J`` is jointly convex in
    the natural parameters ``(h, P)`` (the score term is affine in them, ``h^T P^{-1} h`` and ``-log det P`` are
    convex), so after the exact ``m``-step ``m(P) = theta_bar + 2 (2P + beta I)^{-1} s_bar`` the reduced
    objective in ``P`` is convex.  We take up to ``n_inner`` preconditioned gradient steps from ``P_t``:
    direction ``Delta`` solving ``C Delta + Delta C = G`` (``C`` the sample covariance of ``theta``), and with
    ``D = mean(d d^T)``, ``d = m - theta``, gradient
    ``G = sym(2 mean((P d - s) d^T)) + (beta/2)(D - P^{-1})``, with Armijo backtracking that keeps ``P`` SPD.
    """
    xp = array_namespace(theta)
    tbar, sbar, tc, sc = batch_stats(theta, s)
    C = outer_mean(tc, tc)
    lam, Q = xp.linalg.eigh(0.5 * (C + C.mT))
    if not bool(xp.min(lam) > 0.0):
        return q, invalid(on_invalid, "score_vi full update: sample covariance of theta is singular "
                                      "(need n_samples >= d + 1)")
    if beta == 0.0:
        B = outer_mean(tc, sc)
        P = _lyap_solve(lam, Q, -(B + B.mT))
        P = 0.5 * (P + P.mT)
        if not is_spd(P):
            return q, invalid(on_invalid, "score_vi full update: the fitted precision is not positive definite")
        m = tbar + sbar @ xp.linalg.inv(P)
    else:
        P, m = _full_beta_inner(q.precision, theta, s, tbar, sbar, beta, n_inner, lam, Q)
    if not bool(xp.all(xp.isfinite(m))):
        return q, invalid(on_invalid, "score_vi full update: non-finite mean")
    return FullGaussian(m, precision=P), 0


def _full_beta_inner(P, theta, s, tbar, sbar, beta: float, n_inner: int, lam, Q):
    """Inner solver for ``beta > 0`` (see :func:`full_update`); returns ``(P, m)``.

    The preconditioner uses the sample covariance ``C = Q diag(lam) Q^T`` of ``theta`` (``D = C + dbar dbar^T``
    at any ``m``; one eigendecomposition per outer iteration).
    """
    xp = array_namespace(theta)
    d = int(theta.shape[1])
    eye = xp.eye(d, dtype=theta.dtype, device=theta.device)

    def mean_of(P):
        return tbar + 2.0 * (xp.linalg.solve(2.0 * P + beta * eye, sbar[:, None]))[:, 0]

    def objective(P):
        m = mean_of(P)
        dd = m[None, :] - theta
        r = dd @ P - s
        logdet = 2.0 * xp.sum(xp.log(xp.linalg.diagonal(xp.linalg.cholesky(P))))
        return (xp.mean(xp.sum(r * r, axis=1)) + beta * (0.5 * xp.mean(xp.sum((dd @ P) * dd, axis=1))
                - 0.5 * logdet)), m, dd, r

    J, m, dd, r = objective(P)
    for _ in range(n_inner):
        D = outer_mean(dd, dd)
        X = 2.0 * outer_mean(r, dd)
        G = 0.5 * (X + X.mT) + 0.5 * beta * (D - xp.linalg.inv(P))
        step = _lyap_solve(lam, Q, G)
        step = 0.5 * (step + step.mT)
        slope = float(xp.sum(G * step))
        if not slope > 0.0 or not math.isfinite(slope):
            break
        eta, accepted = 1.0, False
        while eta > 1e-8:
            P_new = P - eta * step
            if is_spd(P_new):
                J_new, m_new, dd_new, r_new = objective(P_new)
                if bool(J_new <= J - 1e-4 * eta * slope):
                    accepted = True
                    break
            eta *= 0.5
        if not accepted:
            break
        P, J, m, dd, r = 0.5 * (P_new + P_new.mT), J_new, m_new, dd_new, r_new
        if eta * slope <= 1e-13 * (1.0 + abs(float(J))):
            break
    return P, m


def inner_update(q, theta, s, beta: float = 0.0, on_invalid: str = "skip", n_inner: int = 50,
                 inner_lr: float = 0.05):
    """``n_inner`` Adam steps on ``J_t`` for a family with ``param_derivatives`` (e.g. :class:`SinhArcsinh`).

    ``dJ/dlambda_j = mean_m [2 (g_mj - s_mj) dg_mj/dlambda_j] - beta mean_m dl_mj/dlambda_j`` (product family:
    parameter ``lambda_j`` only enters coordinate ``j``).  A non-finite step keeps the previous iterate
    (``on_invalid``).  Returns ``(q_new, n_guarded)``.
    """
    xp = array_namespace(theta)
    cls = type(q)
    params = q.params()
    mom = {k: (xp.zeros_like(v), xp.zeros_like(v)) for k, v in params.items()}
    b1, b2 = 0.9, 0.999
    build = q.replace if hasattr(q, "replace") else (lambda p: cls(**p))
    for k in range(1, n_inner + 1):
        cur = build(params)
        if hasattr(cur, "objective_grads"):  # non-product family (flow): full gradient of J_t by hand
            grads = cur.objective_grads(theta, s, beta)
        else:
            dg, dl = cur.param_derivatives(theta)
            r = cur.score(theta) - s
        new = {}
        for name, v in params.items():
            if hasattr(cur, "objective_grads"):
                g = grads[name]
            else:
                g = xp.mean(2.0 * r * dg[name], axis=0)
                if beta > 0.0:
                    g = g - beta * xp.mean(dl[name], axis=0)
            m1, m2 = mom[name]
            m1 = b1 * m1 + (1.0 - b1) * g
            m2 = b2 * m2 + (1.0 - b2) * g * g
            mom[name] = (m1, m2)
            new[name] = v - inner_lr * (m1 / (1.0 - b1**k)) / (xp.sqrt(m2 / (1.0 - b2**k)) + 1e-8)
        if not all(bool(xp.all(xp.isfinite(v))) for v in new.values()):
            return q, invalid(on_invalid, "score_vi inner step: non-finite family parameters")
        params = new
    return build(params), 0


class ScoreVI:
    """The ``"score_vi"`` algorithm (see the module docstring).

    ``beta``: ``"auto"`` (default; adapted, see the module docstring) or a float ``>= 0`` (fixed;
    divergence raises :class:`~smile_ref.errors.VIDivergenceError`).  ``on_invalid`` in {skip, raise}.
    After a fit, ``beta_used`` is the final ``beta`` and ``n_restarts`` the number of returns to the anchor.
    """

    def __init__(self, beta="auto", on_invalid: str = "skip", n_inner: int = 50, inner_lr: float = 0.05):
        self.inner_lr = float(inner_lr)
        if not (math.isfinite(self.inner_lr) and self.inner_lr > 0.0):
            raise ValueError(f"inner_lr must be a finite float > 0, got {inner_lr!r}")
        self.n_inner = check_positive_int(n_inner, "n_inner")
        if isinstance(beta, str):
            if beta != "auto":
                raise ValueError(f"beta must be 'auto' or a finite float >= 0, got {beta!r}")
            self.auto, beta = True, 0.0
        else:
            if isinstance(beta, bool):
                raise TypeError(f"beta must be 'auto' or a finite float >= 0, got {beta!r}")
            beta = float(beta)
            if not (math.isfinite(beta) and beta >= 0.0):
                raise ValueError(f"beta must be a finite float >= 0 (or 'auto'), got {beta!r}")
            self.auto = False
        self.beta0 = beta
        self.beta = beta
        self.on_invalid = check_on_invalid(on_invalid)

    def init(self, q0):
        self.beta, self.beta_used, self.n_restarts = self.beta0, self.beta0, 0
        self._anchor, self._prev, self._r_prev, self._n_grow = q0, None, 0.0, 0
        return q0

    def sample(self, state, random, M):
        return state.sample(random, M), None

    def _watch(self, state, theta, t):
        """Divergence monitor on the sample means of successive iterates; returns a state to restart from or None."""
        xp = array_namespace(theta)
        tbar = xp.mean(theta, axis=0)
        var = xp.mean((theta - tbar[None, :]) ** 2, axis=0)
        growing, r = False, None
        if self._prev is not None:
            r = float(xp.sqrt(xp.mean((tbar - self._prev) ** 2 / var)))
            growing = (not math.isfinite(r)) or (r > _STEP and r > _GROWTH * self._r_prev)
        self._n_grow = self._n_grow + 1 if growing else 0
        if r is not None and not growing and r <= _STEP:
            self._anchor = state
        self._prev, self._r_prev = tbar, (r if r is not None and math.isfinite(r) else 0.0)
        patience = 2 if self.auto else DIVERGENCE_PATIENCE
        if self._n_grow < patience:
            return None
        if not self.auto:
            raise VIDivergenceError(
                f"score_vi diverged at iteration {t} with beta={self.beta:g}: the sample means of successive "
                f"iterates moved by {r:.3g} standard deviations, growing for {self._n_grow} iterations (the mean-field "
                "update converges only if 2 diag(P) + beta I - P is positive definite, P the target precision); "
                "use beta='auto' or a larger beta")
        if self.n_restarts >= _MAX_RESTARTS:
            raise VIDivergenceError(f"score_vi diverged at iteration {t}: beta='auto' reached beta={self.beta:g} "
                                    f"after {self.n_restarts} restarts without stabilising")
        scale = float(xp.max(1.0 / var))
        self.beta = max(2.0 * self.beta, scale if math.isfinite(scale) else 1.0)
        self.n_restarts += 1
        self._prev, self._r_prev, self._n_grow = None, 0.0, 0
        return self._anchor

    def on_nonfinite_scores(self, state, t):
        """Called by :func:`~smile_ref.vi.fit_vi` for an iteration skipped because a score at a sample of
        ``state`` was not finite: counted as a growing iteration (a diverged member samples at huge values)."""
        self._n_grow += 1
        patience = 2 if self.auto else DIVERGENCE_PATIENCE
        if self._n_grow < patience:
            return state
        if not self.auto:
            raise VIDivergenceError(
                f"score_vi diverged at iteration {t} with beta={self.beta:g}: the scores at samples of the last "
                f"{self._n_grow} iterates were not finite; use beta='auto' or a larger beta")
        if self.n_restarts >= _MAX_RESTARTS:
            raise VIDivergenceError(f"score_vi diverged at iteration {t}: beta='auto' reached beta={self.beta:g} "
                                    f"after {self.n_restarts} restarts without stabilising")
        self.beta = max(2.0 * self.beta, 1.0)
        self.beta_used = self.beta
        self.n_restarts += 1
        self._prev, self._r_prev, self._n_grow = None, 0.0, 0
        return self._anchor

    def update(self, state, theta, aux, logp, s, t):
        restart = self._watch(state, theta, t)
        if restart is not None:
            self.beta_used = self.beta
            return restart, score_matching_objective(restart, theta, s, self.beta), 0
        upd = diag_update if isinstance(state, DiagGaussian) else full_update
        if hasattr(state, "param_derivatives") or hasattr(state, "objective_grads"):
            q, n_bad = inner_update(state, theta, s, self.beta, self.on_invalid, self.n_inner, self.inner_lr)
        elif upd is full_update:
            q, n_bad = full_update(state, theta, s, self.beta, self.on_invalid, self.n_inner)
        else:
            q, n_bad = diag_update(state, theta, s, self.beta, self.on_invalid)
        self.beta_used = self.beta
        return q, score_matching_objective(q, theta, s, self.beta), n_bad

    def family(self, state):
        return state

