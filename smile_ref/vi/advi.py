"""Automatic differentiation VI (ADVI; Kucukelbir et al., JMLR 2017), with hand-written reparameterised gradients.

Mean-field (``family="diag_gaussian"``): ``theta = m + sigma * eps``, parameters ``(m, omega = log sigma)``;
full-rank (``family="full_gaussian"``): ``theta = m + L eps``, ``L`` lower triangular with diagonal
``exp(omega)``.  With ``s_hat = grad log p_hat(theta)`` the unbiased (mini-batch: likelihood scaled
by ``N/B`` through the gradient estimator) ELBO gradients are

.. math::

    \\nabla_m = \\overline{\\hat s}, \\qquad
    \\nabla_{\\omega_j} = \\overline{\\hat s_j \\sigma_j \\varepsilon_j} + 1 \\ \\text{(mean-field)},

    \\nabla_{L_{jk}} = \\overline{\\hat s_j \\varepsilon_k}\\ (j > k), \\qquad
    \\nabla_{\\omega_j} = \\overline{\\hat s_j \\varepsilon_j}\\, e^{\\omega_j} + 1 \\ \\text{(full-rank)},

(the ``+1`` is the entropy gradient ``d/d omega_j sum_j omega_j``).  Ascent by Adam with step
``lr`` (``b1 = 0.9``, ``b2 = 0.999``, ``eps = 1e-8``).  The trace is the negative ELBO estimate
``-mean_m log p_hat(theta_m) - H[q]``, ``H = sum_j omega_j + d/2 (1 + log 2 pi)``.
Non-finite parameters after a step are skipped or raised (``on_invalid``).
"""
from __future__ import annotations

import math

from ..backend import array_namespace, device_of
from ._common import check_on_invalid, invalid
from .families import DiagGaussian, FullGaussian

__all__ = ["ADVI", "elbo_gradients"]


def elbo_gradients(kind: str, m, omega, Loff, eps, s):
    """Reparameterised ELBO gradients ``(g_m, g_omega, g_Loff)`` (``g_Loff`` strictly lower, full-rank only)."""
    xp = array_namespace(s)
    M = float(s.shape[0])
    gm = xp.mean(s, axis=0)
    if kind == "diag_gaussian":
        return gm, xp.mean(s * eps, axis=0) * xp.exp(omega) + 1.0, None
    G = s.mT @ eps / M                                  # G_jk = mean(s_j eps_k)
    g_omega = xp.linalg.diagonal(G) * xp.exp(omega) + 1.0
    return gm, g_omega, xp.tril(G, k=-1)


class ADVI:
    """The ``"advi"`` algorithm: Adam step ``lr > 0``."""

    def __init__(self, lr: float = 1e-2, on_invalid: str = "skip"):
        lr = float(lr)
        if not (math.isfinite(lr) and lr > 0.0):
            raise ValueError(f"lr must be a finite float > 0, got {lr!r}")
        self.lr = lr
        self.on_invalid = check_on_invalid(on_invalid)

    def init(self, q0):
        xp = q0.xp
        if isinstance(q0, DiagGaussian):
            params = {"m": q0.loc, "omega": -0.5 * xp.log(q0.precision)}
        else:
            L = q0.chol
            params = {"m": q0.loc, "omega": xp.log(xp.linalg.diagonal(L)), "Loff": xp.tril(L, k=-1)}
        return {"kind": q0.kind, "params": params, "adam": {k: (xp.zeros_like(v), xp.zeros_like(v))
                                                           for k, v in params.items()}}

    def _L(self, params):
        xp = array_namespace(params["m"])
        d = int(params["m"].shape[0])
        eye = xp.eye(d, dtype=params["m"].dtype, device=device_of(params["m"]))
        return params["Loff"] + eye * xp.exp(params["omega"])[None, :]

    def sample(self, state, random, M):
        p = state["params"]
        eps = random.normal((M, int(p["m"].shape[0])), dtype=p["m"].dtype)
        if state["kind"] == "diag_gaussian":
            return p["m"][None, :] + eps * array_namespace(eps).exp(p["omega"])[None, :], eps
        return p["m"][None, :] + eps @ self._L(p).mT, eps

    def update(self, state, theta, eps, logp, s, t):
        xp = array_namespace(theta)
        p = state["params"]
        d = int(theta.shape[1])
        entropy = xp.sum(p["omega"]) + 0.5 * d * (1.0 + math.log(2.0 * math.pi))
        objective = -(xp.mean(logp) + entropy)
        gm, gw, gL = elbo_gradients(state["kind"], p["m"], p["omega"], p.get("Loff"), eps, s)
        grads = {"m": gm, "omega": gw}
        if gL is not None:
            grads["Loff"] = gL
        b1, b2, k = 0.9, 0.999, t + 1
        new_p, new_adam = {}, {}
        for name, g in grads.items():
            mo, ve = state["adam"][name]
            mo = b1 * mo + (1.0 - b1) * g
            ve = b2 * ve + (1.0 - b2) * g * g
            step = self.lr * (mo / (1.0 - b1**k)) / (xp.sqrt(ve / (1.0 - b2**k)) + 1e-8)
            new_p[name] = p[name] + step                # ascent on the ELBO
            new_adam[name] = (mo, ve)
        if not all(bool(xp.all(xp.isfinite(v))) for v in new_p.values()):
            return state, objective, invalid(self.on_invalid, f"advi step {t}: non-finite parameters")
        return {"kind": state["kind"], "params": new_p, "adam": new_adam}, objective, 0

    def family(self, state):
        p = state["params"]
        xp = array_namespace(p["m"])
        if state["kind"] == "diag_gaussian":
            return DiagGaussian(p["m"], xp.exp(-2.0 * p["omega"]))
        L = self._L(p)
        return FullGaussian(p["m"], L @ L.mT)
